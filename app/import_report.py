"""An import's outcome counts in the owner's words: what the file had and what it made."""

FORMAT_NAMES = {"propertyradar": "PropertyRadar export", "contacts": "Contacts file", "dnc": "Do-not-contact list"}


def _line(key, label, count):
    return {"key": key, "label": label, "count": count}


def _contacts(outcomes, less=None):
    """Contacts created / updated / already there (people who are another's contact taken out)."""
    less = less or {}
    return [_line(f"contacts_{outcome}", label, outcomes.get(outcome, 0) - less.get(outcome, 0))
            for outcome, label in (("created", "Contacts created"), ("updated", "Contacts updated"),
                                   ("unchanged", "Contacts already there"))]


def report_lines(fmt, counts):
    """[{key, label, count}] from app.imports' counts: the rows' lines add up to the rows in the
    file, the people's lines to the people in it."""
    rows, people, sharing = counts["rows"], counts["people"], counts.get("sharing", {})
    lines = [_line("rows", "Rows in the file", sum(rows.values()))]
    if fmt == "dnc":
        lines += [_line("opt_outs_created", "Phones added to the do-not-contact list", rows.get("created", 0)),
                  _line("opt_outs_updated", "Phones on the list again (their opt-out had been revoked)",
                        rows.get("updated", 0)),
                  _line("opt_outs_unchanged", "Phones already on the list", rows.get("unchanged", 0)),
                  _line("rows_skipped", "Rows skipped (no valid phone)", rows.get("skipped", 0))]
        return lines
    if fmt != "propertyradar":
        return [*lines, *_contacts(rows),
                _line("rows_skipped", "People skipped (no phone or email)", rows.get("skipped", 0)),
                _line("rows_error", "Rows with errors", rows.get("error", 0))]
    lines += [_line("properties_created", "Properties created", rows.get("created", 0)),
              _line("properties_updated", "Properties updated", rows.get("updated", 0)),
              _line("properties_unchanged", "Properties unchanged", rows.get("unchanged", 0))]
    if rows.get("skipped"):
        lines.append(_line("rows_skipped", "Rows skipped (a repeated header)", rows["skipped"]))
    lines += [_line("rows_error", "Rows with errors", rows.get("error", 0)),
              _line("people", "People named in the file", sum(people.values())),
              *_contacts(people, sharing),
              _line("co_owners_sharing", "Co-owners sharing the primary owner's contact", sum(sharing.values())),
              _line("people_skipped", "People skipped (no phone or email)", people.get("skipped", 0)),
              *([_line("people_error", "People with errors", people["error"])] if people.get("error") else [])]
    return lines
