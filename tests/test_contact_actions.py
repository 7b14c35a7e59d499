"""Bulk actions on the contact list come back to the list as the user left it."""
import re

import pytest
from sqlalchemy import select

from app.models import AuditLog, Contact, ContactList, ListMember
from tests.conftest import csrf_token, user_id

FILTERED = "/contactview/list/?_flt_0_last_name=Sullivan&_oc_ContactView=first_name&_od_ContactView=asc&psize_ContactView=2"


def sullivans_and_others(db):
    sullivans = [Contact(first_name=f"Sue{i}", last_name="Sullivan", phone=f"+1617555{3000 + i}") for i in range(5)]
    others = [Contact(first_name=f"Ola{i}", last_name="Other", phone=f"+1617555{4000 + i}") for i in range(3)]
    db.session.add_all([*sullivans, *others, ContactList(name="Spring")])
    db.session.commit()
    return sullivans


def record_count(page):
    return re.search(r"Record Count:</strong>\s*([\d,]+)", page).group(1)


@pytest.mark.parametrize("name", ["assign", "add_to_list", "remove_from_list", "opt_out"])
def test_a_bulk_action_returns_to_the_filtered_sorted_paged_list(app, db, client_for, post_form, name):
    sullivans = sullivans_and_others(db)
    marketer = client_for("marketer")
    picked = [str(c.id) for c in sullivans[:2]]
    form = marketer.post("/contactview/action_post", data={"action": name, "rowid": picked,
                                                           "csrf_token": csrf_token(app, marketer)},
                         headers={"Referer": "http://localhost" + FILTERED + "&page_ContactView=1"})
    page = marketer.get(form.headers["Location"]).get_data(as_text=True)
    back = re.search(r'href="([^"]+)">Back', page).group(1).replace("&amp;", "&")
    argument = {"assign": str(user_id("staff")), "add_to_list": "", "remove_from_list": ""}.get(name, "")
    if name in ("add_to_list", "remove_from_list"):
        argument = str(db.session.scalar(select(ContactList.id)))
    done = post_form(marketer, form.headers["Location"], {"ids": ",".join(picked), "argument": argument,
                                                          "scope": "selected"})
    assert done.status_code == 302 and done.headers["Location"] == back
    assert back.startswith("/contactview/list/?") and "_flt_0_last_name=Sullivan" in back
    assert "page_ContactView=1" in back and "_oc_ContactView=first_name" in back
    listed = marketer.get(done.headers["Location"]).get_data(as_text=True)
    assert record_count(listed) == "5" and "contacts done" in listed
    assert "Sue2" in listed and "Sue0" not in listed and "Ola0" not in listed  # page 2 of 2 per page, by first name
    detail = db.session.scalar(select(AuditLog.detail).where(AuditLog.action == f"bulk_{name}"))
    assert detail == {"assign": f"user {argument}", "opt_out": None}.get(name, f"list {argument}")
    if name == "assign":
        assert {c.assigned_user_id for c in db.session.scalars(select(Contact).where(Contact.id.in_([int(i) for i in picked])))} \
            == {user_id("staff")}
    if name == "add_to_list":
        assert sorted(str(i) for i in db.session.scalars(select(ListMember.contact_id))) == sorted(picked)


def test_a_bulk_action_never_returns_off_the_site(app, db, client_for, post_form):
    sullivans = sullivans_and_others(db)
    marketer = client_for("marketer")
    for search in ("//evil.example/x", "https://evil.example/?_flt_0_last_name=Sullivan", "\r\nLocation: //evil"):
        done = post_form(marketer, "/contactview/bulk/assign", {"ids": str(sullivans[0].id), "scope": "selected",
                                                                 "argument": "", "search": search})
        location = done.headers["Location"]
        assert location.startswith("/contactview/list/") and "evil" not in location and "\n" not in location
