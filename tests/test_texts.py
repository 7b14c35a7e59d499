"""Templates: tokens, fallbacks, validation, segments and cost."""
import pytest

from app.texts import TemplateError, estimate_cost, render_template, segment_info, validate_template


@pytest.mark.parametrize("template, values, expected", [
    ("Hey {first_name|there}, Matt here", {"first_name": "Ann"}, "Hey Ann, Matt here"),
    ("Hey {first_name|there}, Matt here", {"first_name": ""}, "Hey there, Matt here"),
    ("Hey {first_name|there}, Matt here", {}, "Hey there, Matt here"),
    ("Hi {first_name} in {city|your town}", {"city": "Quincy"}, "Hi in Quincy"),
    ("Built in {year_built}?", {"year_built": 1962}, "Built in 1962?"),
    ("{ first_name | friend }!", {}, " friend !".strip()),
])
def test_tokens_are_filled_with_values_or_fallbacks(template, values, expected):
    assert render_template(template, values) == expected


def test_opt_out_line_is_appended_once():
    assert render_template("Hi", {}, opt_out_line=True) == "Hi\nReply STOP to opt out."
    assert render_template("Hi. Reply STOP to opt out.", {}, opt_out_line=True).count("STOP") == 1


@pytest.mark.parametrize("template, fragment", [
    ("Hey {firstname}", "Unknown token {firstname}"),
    ("Hey {first_name} {zip}", "Unknown token {zip}"),
    ("Hey {first_name", "brace is not closed"),
    ("   ", "empty"),
])
def test_unknown_tokens_and_broken_templates_are_refused_with_a_clear_message(template, fragment):
    with pytest.raises(TemplateError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        validate_template(template)


def test_known_tokens_with_fallbacks_are_accepted():
    validate_template("Hey {first_name|there}, is {address} in {city} from {year_built}? {years_owned} {last_name}")


@pytest.mark.parametrize("text, encoding, length, segments", [
    ("a" * 160, "GSM-7", 160, 1), ("a" * 161, "GSM-7", 161, 2), ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3), ("€" * 80, "GSM-7", 160, 1), ("[" * 81, "GSM-7", 162, 2),
    ("a" * 69 + "’", "UCS-2", 70, 1), ("a" * 70 + "’", "UCS-2", 71, 2), ("😀" * 36, "UCS-2", 72, 2),
    ("a" * 134, "GSM-7", 134, 1), ("é" * 10, "GSM-7", 10, 1), ("", "GSM-7", 0, 0),
])
def test_segments_follow_gsm7_and_ucs2_sizes(text, encoding, length, segments):
    assert segment_info(text) == {"encoding": encoding, "length": length, "segments": segments}


def test_cost_is_a_cent_per_segment():
    assert estimate_cost(250) == 2.5
