"""A/B statistics: Wilson intervals, Pearson's chi-square and Fisher's exact test."""
import math

Z95 = 1.959963984540054


def wilson_interval(successes, trials, z=Z95):
    """(low, high) 95% Wilson score interval for a proportion; (0, 0) with no trials."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def chi_square(table):
    """Pearson's chi-square (no continuity correction) for a k x m table of counts:
    (statistic, degrees of freedom, p-value). Rows or columns summing to zero are dropped."""
    rows = [r for r in table if sum(r) > 0]
    cols = [j for j in range(len(rows[0]) if rows else 0) if sum(r[j] for r in rows) > 0]
    if len(rows) < 2 or len(cols) < 2:
        return 0.0, 0, 1.0
    total = sum(r[j] for r in rows for j in cols)
    row_sums = [sum(r[j] for j in cols) for r in rows]
    col_sums = [sum(r[j] for r in rows) for j in cols]
    stat = 0.0
    for i, r in enumerate(rows):
        for k, j in enumerate(cols):
            expected = row_sums[i] * col_sums[k] / total
            stat += (r[j] - expected) ** 2 / expected
    df = (len(rows) - 1) * (len(cols) - 1)
    return stat, df, chi_square_sf(stat, df)


def chi_square_sf(x, df):
    """P(X >= x) for a chi-square variable with df degrees of freedom."""
    if x <= 0:
        return 1.0
    return _gamma_q(df / 2.0, x / 2.0)


def _gamma_q(a, x):
    """Regularised upper incomplete gamma Q(a, x) (series or continued fraction)."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(500):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def fisher_exact(a, b, c, d):
    """Two-sided Fisher's exact p-value for the 2x2 table [[a, b], [c, d]]."""
    row1, col1, n = a + b, a + c, a + b + c + d
    if n == 0:
        return 1.0

    def log_p(x):
        return (_log_comb(col1, x) + _log_comb(n - col1, row1 - x) - _log_comb(n, row1))

    observed = log_p(a)
    low, high = max(0, row1 - (n - col1)), min(row1, col1)
    p = sum(math.exp(log_p(x)) for x in range(low, high + 1) if log_p(x) <= observed + 1e-7)
    return min(1.0, p)


def _log_comb(n, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def compare_variants(counts):
    """counts: [(label, replied, sent), ...] -> {"test", "statistic", "p_value", "significant"}.
    Fisher's exact for two variants when any expected count is under 5, else chi-square."""
    table = [(replied, sent - replied) for _, replied, sent in counts if sent > 0]
    if len(table) < 2:
        return {"test": None, "statistic": None, "p_value": None, "significant": False}
    total = sum(a + b for a, b in table)
    replied = sum(a for a, _ in table)
    small = any(min(replied, total - replied) * (a + b) / total < 5 for a, b in table)
    if len(table) == 2 and small:
        (a, b), (c, d) = table
        p = fisher_exact(a, b, c, d)
        return {"test": "Fisher's exact", "statistic": None, "p_value": p, "significant": p < 0.05}
    stat, _, p = chi_square(table)
    return {"test": "chi-square", "statistic": stat, "p_value": p, "significant": p < 0.05}
