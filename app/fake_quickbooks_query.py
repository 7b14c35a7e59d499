"""The fake QuickBooks' query language: the documented subset.

SELECT * | COUNT(*) FROM Entity [WHERE a op v [AND ...]] [ORDERBY f [ASC|DESC]] [STARTPOSITION n]
[MAXRESULTS n]; op is =, <, >, <=, >=, IN (...) or LIKE; one entity, no OR, no JOIN. STARTPOSITION
is 1-based, MAXRESULTS defaults to 100 and may not pass 1000. `SELECT * FROM Customer` returns
active customers only unless the query names Active."""
import copy
import re
from datetime import datetime

QUERY = re.compile(
    r"^\s*select\s+(?P<what>\*|count\(\s*\*\s*\))\s+from\s+(?P<entity>\w+)"
    r"(?:\s+where\s+(?P<where>.+?))?"
    r"(?:\s+orderby\s+(?P<order>[\w.]+)(?:\s+(?P<direction>asc|desc))?)?"
    r"(?:\s+startposition\s+(?P<start>\d+))?(?:\s+maxresults\s+(?P<max>\d+))?\s*$", re.I | re.S)
CONDITION = re.compile(r"^\s*(?P<field>[\w.]+)\s*(?P<op><=|>=|!=|=|<|>|\bin\b|\blike\b)\s*(?P<value>.+?)\s*$",
                       re.I | re.S)
AND = re.compile(r"\s+and\s+", re.I)
STRING = re.compile(r"^'((?:[^'\\]|\\.)*)'$", re.S)
MAX_RESULTS = 1000


class QueryError(ValueError):
    pass


def _split_and(where):
    """Split on AND outside quotes."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(where):
        char = where[i]
        if char == "\\" and quoted and i + 1 < len(where):
            current += where[i:i + 2]
            i += 2
            continue
        if char == "'":
            quoted = not quoted
        if not quoted:
            match = AND.match(where, i)
            if match:
                parts.append(current)
                current, i = "", match.end()
                continue
        current += char
        i += 1
    if quoted:
        raise QueryError("unterminated string")
    return parts + [current]


def _literal(text):
    text = text.strip()
    quoted = STRING.match(text)
    if quoted:
        return quoted[1].replace("\\'", "'")
    if text.startswith("'"):
        raise QueryError(f"bad value {text!r}")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError as exc:
        raise QueryError(f"bad value {text!r}") from exc


def _value(text, op):
    if op == "in":
        inner = text.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise QueryError("IN needs a parenthesised list")
        return [_literal(v) for v in inner[1:-1].split(",") if v.strip()]
    return _literal(text)


def _field(obj, path):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
        else:
            value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    if isinstance(value, dict) and "value" in value:  # CustomerRef = '12' compares the reference id
        value = value["value"]
    return value


def _comparable(left, right):
    """Both sides as datetimes, numbers or lower-case strings."""
    if isinstance(right, bool) or isinstance(left, bool):
        return left, right
    try:
        return (datetime.fromisoformat(str(left).replace("Z", "+00:00")),
                datetime.fromisoformat(str(right).replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return float(left), float(right)
    except (TypeError, ValueError):
        return str(left).lower(), str(right).lower()


def _matches(obj, field, op, expected):
    actual = _field(obj, field)
    if actual is None:
        return False
    if op == "in":
        return any(_equal(actual, e) for e in expected)
    if op == "like":
        pattern = re.escape(str(expected).lower()).replace("%", ".*")
        return re.fullmatch(pattern, str(actual).lower()) is not None
    if op in ("=", "!="):
        return _equal(actual, expected) == (op == "=")
    try:
        left, right = _comparable(actual, expected)
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    except TypeError:  # a datetime compared with a date-only value, and the like
        return False


def _equal(actual, expected):
    left, right = _comparable(actual, expected)
    try:
        return left == right
    except TypeError:
        return False


def parse(text):
    match = QUERY.match(text or "")
    if not match:
        raise QueryError(f"cannot parse {text!r}")
    conditions = []
    if match["where"]:
        for part in _split_and(match["where"]):
            cond = CONDITION.match(part)
            if not cond:
                raise QueryError(f"cannot parse condition {part!r}")
            op = cond["op"].lower()
            conditions.append((cond["field"], op, _value(cond["value"], op)))
    return match, conditions


def run_query(fake, text):
    """The QueryResponse for one query over the fake's books."""
    match, conditions = parse(text)
    entity = {e.lower(): e for e in fake.entities}.get(match["entity"].lower())
    if entity is None:
        raise QueryError(f"unknown entity {match['entity']!r}")
    if entity == "Customer" and not any(f.lower() == "active" for f, _, _ in conditions):
        conditions.append(("Active", "=", True))
    with fake.lock:
        rows = [o for o in fake.entities[entity].values() if all(_matches(o, *c) for c in conditions)]
        if match["what"] != "*":
            return {"QueryResponse": {"totalCount": len(rows)}, "time": fake.now().isoformat()}
        if match["order"]:
            present = [r for r in rows if _field(r, match["order"]) is not None]
            missing = [r for r in rows if _field(r, match["order"]) is None]
            present.sort(key=lambda r: _comparable(_field(r, match["order"]), _field(r, match["order"]))[0],
                         reverse=(match["direction"] or "").lower() == "desc")
            rows = present + missing
        start = int(match["start"] or 1)
        limit = int(match["max"] or 100)
        if start < 1 or limit < 1 or limit > MAX_RESULTS:
            raise QueryError("STARTPOSITION must be 1 or more and MAXRESULTS between 1 and 1000")
        page = copy.deepcopy(rows[start - 1:start - 1 + limit])
    body = {"startPosition": start, "maxResults": len(page)}
    if page:
        body[entity] = page
    else:
        body = {}
    return {"QueryResponse": body, "time": fake.now().isoformat()}
