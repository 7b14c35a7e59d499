"""A/B statistics against known published values."""
import math

import pytest

from app.stats import chi_square, chi_square_sf, compare_variants, fisher_exact, wilson_interval


def test_chi_square_matches_the_textbook_value():
    # N(ad-bc)^2 / ((a+b)(c+d)(a+c)(b+d)) = 200 * 1500^2 / (100*100*55*145) = 5.6426...
    stat, df, p = chi_square([(20, 80), (35, 65)])
    assert stat == pytest.approx(5.642633, rel=1e-6)
    assert df == 1
    assert p == pytest.approx(0.017528, abs=1e-6)


@pytest.mark.parametrize("x, df, expected", [
    (3.841459, 1, 0.05), (6.634897, 1, 0.01), (5.991465, 2, 0.05), (7.814728, 3, 0.05),
    (0.0, 1, 1.0), (18.307038, 10, 0.05),
])
def test_chi_square_survival_function_matches_tables(x, df, expected):
    assert chi_square_sf(x, df) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("table, expected", [
    ((3, 1, 1, 3), 17 / 35),  # Fisher's tea-tasting experiment
    ((1, 9, 11, 3), 0.002759456),  # R fisher.test(matrix(c(1,11,9,3),2))
    ((0, 5, 5, 0), 2 / 252),
    ((0, 0, 0, 0), 1.0),
])
def test_fisher_exact_matches_known_p_values(table, expected):
    assert fisher_exact(*table) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("successes, trials, low, high", [
    (10, 100, 0.055225, 0.174366), (0, 10, 0.0, 0.277533), (5, 5, 0.565518, 1.0), (0, 0, 0.0, 0.0),
])
def test_wilson_interval_matches_known_values(successes, trials, low, high):
    lo, hi = wilson_interval(successes, trials)
    assert lo == pytest.approx(low, abs=1e-5) and hi == pytest.approx(high, abs=1e-5)


def test_compare_uses_chi_square_for_large_counts_and_fisher_for_small():
    large = compare_variants([("A", 20, 100), ("B", 35, 100)])
    assert large["test"] == "chi-square" and large["significant"]
    assert large["statistic"] == pytest.approx(5.642633, rel=1e-6)
    small = compare_variants([("A", 3, 4), ("B", 1, 4)])
    assert small["test"] == "Fisher's exact" and small["p_value"] == pytest.approx(17 / 35)
    assert not small["significant"]


def test_three_variants_use_chi_square_with_two_degrees_of_freedom():
    stat, df, p = chi_square([(10, 90), (20, 80), (30, 70)])
    assert df == 2
    assert stat == pytest.approx(12.5, rel=1e-9)  # expected 20/80 per row: 5 + 0 + 5 + 1.25 + 0 + 1.25
    assert p == pytest.approx(math.exp(-12.5 / 2), rel=1e-9)  # df=2: sf = exp(-x/2)
