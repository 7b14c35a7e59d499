"""Lists: member counts from rows, members by name, "Text this list", "Export", and the contacts picked
by hand for one campaign ("Text selected"), which never clutter Lists."""
import re
from datetime import timezone

from sqlalchemy import func, select

from app import campaigns
from app.models import Campaign, CampaignRecipient, Contact, ContactList, ListMember, OptOut
from tests.test_campaigns import NUMBER, TUESDAY_10AM, bearer, csrf


def people(db, count, lst=None, first="Ann", start=0):
    contacts = [Contact(first_name=f"{first}{i}", last_name="Lee", phone=f"+1617555{start + i:04d}")
                for i in range(count)]
    db.session.add_all(contacts)
    db.session.flush()
    if lst is not None:
        db.session.add_all([ListMember(list=lst, contact=c) for c in contacts])
    db.session.commit()
    return contacts


def test_the_list_of_lists_and_a_list_page_show_member_counts_and_members_by_name(db, client_for):
    spring, empty = ContactList(name="Spring"), ContactList(name="Empty one")
    db.session.add_all([spring, empty])
    members = people(db, 3, spring)
    people(db, 2, start=100)  # not on any list
    marketer = client_for("marketer")
    listing = marketer.get("/listview/list/").get_data(as_text=True)
    counts = dict(re.findall(r"<td>\s*(Spring|Empty one)\s*</td>\s*<td>\s*(\d+)\s*</td>", listing))
    assert counts == {"Spring": "3", "Empty one": "0"}
    page = marketer.get(f"/listview/show/{spring.id}").get_data(as_text=True)
    assert re.search(r'id="member-count">3<', page)
    for contact in members:
        assert f'<a href="/contactview/show/{contact.id}">{contact.first_name} Lee</a>' in page
        assert f"(617) 555-{contact.phone[-4:]}" in page  # +1617555xxxx as people read it
    assert "Members: [" not in page and "Spring, Spring" not in page
    assert f'href="/campaignview/add?list_id={spring.id}"' in page and 'id="export-list"' in page
    assert "Nobody is on this list yet" in marketer.get(f"/listview/show/{empty.id}").get_data(as_text=True)


def test_a_long_list_pages_its_members_and_counts_all_of_them(db, client_for):
    big = ContactList(name="Big")
    db.session.add(big)
    people(db, 120, big)
    marketer = client_for("marketer")
    first = marketer.get(f"/listview/show/{big.id}").get_data(as_text=True)
    last = marketer.get(f"/listview/show/{big.id}?members_page=2").get_data(as_text=True)
    assert re.search(r'id="member-count">120<', first) and "Page 1 of 3" in first and "Page 3 of 3" in last
    assert first.count("/contactview/show/") == 50 and last.count("/contactview/show/") == 20


def text_selected(marketer, ids):
    return marketer.post("/contactview/action_post", data={"action": "text_selected", "csrf_token": csrf(marketer),
                                                           "rowid": [str(i) for i in ids]})


def test_text_selected_leaves_no_list_in_lists_and_its_audience_is_exactly_the_picked_contacts(db, client_for):
    spring = ContactList(name="Spring")
    db.session.add(spring)
    picked = people(db, 4, spring)
    db.session.add(OptOut(phone=picked[3].phone, source="manual", active=True))
    db.session.commit()
    marketer = client_for("marketer")
    for _ in range(2):
        assert text_selected(marketer, [c.id for c in picked]).status_code == 302
    drafts = db.session.scalars(select(Campaign).order_by(Campaign.id)).all()
    assert len(drafts) == 2 and all(d.status == "draft" for d in drafts)
    listing = marketer.get("/listview/list/").get_data(as_text=True)
    assert "Spring" in listing and "Picked for campaign" not in listing and "Selected contacts" not in listing
    api = marketer.get("/api/v1/list/", headers=bearer("marketer")).get_json()
    assert [row["name"] for row in api["result"]] == ["Spring"]
    assert "Picked for campaign" not in marketer.get("/importview/upload").get_data(as_text=True)
    bulk = marketer.get(f"/contactview/bulk/add_to_list?ids={picked[0].id}").get_data(as_text=True)
    assert "Picked for campaign" not in bulk and "Spring" in bulk
    contact_page = marketer.get(f"/listmemberview/list/?_flt_0_contact={picked[0].id}").get_data(as_text=True)
    assert "Picked for campaign" not in contact_page
    hidden = drafts[0].lists[0]
    assert marketer.get(f"/listview/show/{hidden.id}").status_code == 404

    draft = drafts[0]
    draft.variants[0].template = "Hi {first_name|there}, Matt here."
    db.session.commit()
    campaigns.change_status(draft.id, "scheduled")
    campaigns.plan_audience(draft.id, now=TUESDAY_10AM.astimezone(timezone.utc).replace(tzinfo=None))
    db.session.expire_all()
    planned = dict(db.session.execute(select(CampaignRecipient.phone, CampaignRecipient.status)
                                      .where(CampaignRecipient.campaign_id == draft.id)).all())
    assert set(planned) == {c.phone for c in picked}
    assert planned[picked[3].phone] == "excluded"  # opted out: the send rules hold for picked contacts
    assert [planned[c.phone] for c in picked[:3]] == ["queued"] * 3


def test_deleting_the_campaign_deletes_its_picked_contacts_list_but_not_the_contacts(db, client_for):
    picked = people(db, 2)
    marketer = client_for("marketer")
    text_selected(marketer, [c.id for c in picked])
    campaign = db.session.scalars(select(Campaign)).one()
    db.session.delete(campaign)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(ContactList)) == 0
    assert db.session.scalar(select(func.count()).select_from(ListMember)) == 0
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 2


def test_staff_cannot_open_lists(db, client_for):
    lst = ContactList(name="Spring")
    db.session.add(lst)
    people(db, 1, lst)
    staff = client_for("staff")
    assert staff.get(f"/listview/show/{lst.id}").status_code in (302, 403)
    assert staff.get("/api/v1/list/", headers=bearer("staff")).status_code in (401, 403)
    assert NUMBER


def checked_lists(page):
    """{list name: checked?} of the campaign builder's audience checkboxes."""
    return {name.strip(): bool(checked) for checked, name in re.findall(
        r'<input type="checkbox" name="lists" value="\d+"\s*(checked)?>\s*([^<]+?)\s*<span', page)}


def test_text_this_list_opens_a_new_campaign_with_the_list_chosen(db, client_for):
    spring, fall = ContactList(name="Spring"), ContactList(name="Fall")
    db.session.add_all([spring, fall])
    picked = people(db, 2, spring)
    marketer = client_for("marketer")
    text_selected(marketer, [c.id for c in picked])
    draft = db.session.scalars(select(Campaign)).one()
    page = marketer.get(f"/campaignview/add?list_id={spring.id}").get_data(as_text=True)
    assert checked_lists(page) == {"Fall": False, "Spring": True}  # the picked contacts' list is not offered
    assert checked_lists(marketer.get("/campaignview/add").get_data(as_text=True)) == {"Fall": False, "Spring": False}
    hidden = draft.lists[0]
    assert checked_lists(marketer.get(f"/campaignview/add?list_id={hidden.id}").get_data(as_text=True)) == {
        "Fall": False, "Spring": False}
    own = checked_lists(marketer.get(f"/campaignview/edit/{draft.id}").get_data(as_text=True))
    assert own == {"Fall": False, f"Picked for campaign {draft.id}": True, "Spring": False}
