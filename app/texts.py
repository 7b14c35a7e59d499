"""Message templates: tokens with fallbacks, validation, rendering, segments and cost."""
import math
import re
from datetime import date

TOKENS = ("first_name", "last_name", "city", "address", "year_built", "years_owned")
OPT_OUT_LINE = "Reply STOP to opt out."
COST_PER_SEGMENT = 0.01
_TOKEN = re.compile(r"\{([^{}|]*)(?:\|([^{}]*))?\}")

# GSM 03.38 basic set, and the extension set whose characters take two septets.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")


class TemplateError(ValueError):
    """A template the user wrote cannot be used; the message says how to fix it."""


def template_tokens(template):
    """[(token, fallback or None), ...] in order of appearance."""
    return [(m.group(1).strip(), m.group(2)) for m in _TOKEN.finditer(template or "")]


def validate_template(template):
    """Raise TemplateError for an empty template or an unknown token."""
    if not template or not template.strip():
        raise TemplateError("The message is empty: write the text to send.")
    unknown = sorted({name for name, _ in template_tokens(template) if name not in TOKENS})
    if unknown:
        listed = ", ".join("{" + name + "}" for name in unknown)
        allowed = ", ".join("{" + name + "}" for name in TOKENS)
        raise TemplateError(f"Unknown token {listed}. Use one of {allowed}, "
                            "optionally with a fallback such as {first_name|there}.")
    stray = _TOKEN.sub("", template)
    if "{" in stray or "}" in stray:
        raise TemplateError("A brace is not closed: write tokens as {first_name} or {first_name|there}.")


def render_template(template, values, opt_out_line=False):
    """Fill tokens from values; an empty value takes its fallback (or nothing)."""
    def fill(match):
        value = values.get(match.group(1).strip())
        if value is None or str(value).strip() == "":
            return match.group(2) or ""
        return str(value)

    text = _TOKEN.sub(fill, template)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    if opt_out_line and OPT_OUT_LINE.lower() not in text.lower():
        text = f"{text}\n{OPT_OUT_LINE}"
    return text


def token_values(contact, prop, today=None):
    """Token values for one contact and their property (either may be None)."""
    today = today or date.today()
    values = {"first_name": _title(getattr(contact, "first_name", None)),
              "last_name": _title(getattr(contact, "last_name", None))}
    if prop is not None:
        values.update(city=_title(prop.city), address=_title(prop.address), year_built=prop.year_built)
        if prop.purchase_date and prop.purchase_date.year > 1955:  # 1955-01-01 is a placeholder
            values["years_owned"] = max(0, today.year - prop.purchase_date.year
                                        - ((today.month, today.day) < (prop.purchase_date.month, prop.purchase_date.day)))
    return values


def _title(value):
    if not value:
        return value
    return value.title() if value.isupper() or value.islower() else value


def is_gsm7(text):
    return all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text)


def segment_info(text):
    """{"encoding", "length", "segments"}: GSM-7 160/153 per segment, UCS-2 70/67."""
    if is_gsm7(text):
        length = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 0 if length == 0 else 1 if length <= single else math.ceil(length / multi)
    return {"encoding": encoding, "length": length, "segments": segments}


def estimate_cost(segments, per_segment=COST_PER_SEGMENT):
    return round(segments * per_segment, 2)
