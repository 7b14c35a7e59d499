"""The campaign builder: one page (and the REST API) that checks a campaign as a whole, the live
preview, the sending forecast on the campaign page and the test text to the user's own phone."""
from datetime import time

import httpx
import pytest
from sqlalchemy import func, select

from app import campaigns, schedule
from app.models import AuditLog, Campaign, CampaignRecipient, ContactList, Message, OptOut
from tests.test_campaigns import NUMBER, TUESDAY_10AM, add_contact, bearer, make_campaign, phones

GOOD = {"name": "December cracks", "sending_number": NUMBER, "daily_limit": "60", "window_days": ["0", "1", "2"],
        "window_start": "09:00", "window_end": "17:00", "frequency_cap_days": "30", "append_opt_out_line": "y",
        "message_a": "Hi {first_name|there}, Matt from Attack A Crack. Free quotes.",
        "message_b": "Hey {first_name|there}, any cracks at {address}?"}
BAD = [
    ({"message_a": ""}, "message_a", "Write message A"),
    ({"message_a": "Hi {firstname}"}, "message_a", "Unknown token {firstname}"),
    ({"message_b": "Hi {frist_name|there}"}, "message_b", "Unknown token {frist_name}"),
    ({"window_end": "08:00"}, "window_end", "The window must end after it starts"),
    ({"lists": []}, "lists", "Choose at least one list"),
    ({"window_days": []}, "window_days", "Tick at least one sending day"),
    ({"daily_limit": "0"}, "daily_limit", "The daily limit must be between 1 and 6000"),
    ({"year_built_min": "1990", "year_built_max": "1950"}, "year_built_max", "latest year built is before"),
]


@pytest.fixture
def homeowners(db):
    lst = ContactList(name="Homeowners")
    db.session.add(lst)
    add_contact(db, "+16175551001", first="MARIA", lists=[lst])
    add_contact(db, "+16175551002", first="Joe", lists=[lst])
    db.session.commit()
    return lst.id


def form(list_id, **changes):
    return {**GOOD, "lists": [str(list_id)], **changes}


def campaign_count(db):
    db.session.expire_all()
    return db.session.scalar(select(func.count(Campaign.id)))


@pytest.mark.parametrize("change, field, message", BAD)
def test_bad_input_is_refused_on_the_page_with_what_was_typed_and_nothing_saved(
        db, client_for, post_form, homeowners, change, field, message):
    marketer = client_for("marketer")
    page = post_form(marketer, "/campaignview/add", form(homeowners, **change)).get_data(as_text=True)
    assert f'data-field="{field}">' in page and message in page
    assert "Nothing was saved" in page and 'value="December cracks"' in page  # the rest of the form stays
    assert campaign_count(db) == 0


@pytest.mark.parametrize("change, field, message", BAD)
def test_bad_input_is_refused_by_the_rest_api_with_the_same_words(db, client_for, homeowners, change, field, message):
    body = {**form(homeowners, **change)}
    answer = client_for("marketer").post("/api/v1/campaign/", json=body, headers=bearer("marketer"))
    assert answer.status_code == 422 and message in answer.get_json()["message"][field]
    assert campaign_count(db) == 0


def test_the_builder_saves_a_whole_campaign_and_lands_on_it(db, client_for, post_form, homeowners):
    marketer = client_for("marketer")
    answer = post_form(marketer, "/campaignview/add", form(homeowners, cities="Quincy, Braintree", not_replied="y",
                                                           start_date="2026-12-07"), follow_redirects=True)
    campaign = db.session.scalars(select(Campaign)).one()
    assert answer.request.path == f"/campaignview/show/{campaign.id}" and "Campaign saved" in answer.get_data(as_text=True)
    assert (campaign.name, campaign.window_days, campaign.daily_limit, str(campaign.start_date)) == (
        "December cracks", "0,1,2", 60, "2026-12-07")
    assert campaign.filters == {"cities": ["Quincy", "Braintree"], "not_replied": True}
    assert [v.label for v in campaign.variants] == ["A", "B"]
    audit = db.session.scalars(select(AuditLog).where(AuditLog.object_type == "campaigns")).all()
    assert audit, "the new campaign is in the audit log"
    # Editing a draft: B removed, a list added; the edit page shows what is saved.
    other = ContactList(name="Referrals")
    db.session.add(other)
    db.session.commit()
    page = marketer.get(f"/campaignview/edit/{campaign.id}").get_data(as_text=True)
    assert "Hey {first_name|there}, any cracks at {address}?</textarea>" in page and 'value="Quincy, Braintree"' in page
    post_form(marketer, f"/campaignview/edit/{campaign.id}", form(homeowners, message_b="",
                                                                 lists=[str(homeowners), str(other.id)]))
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert [v.label for v in campaign.variants] == ["A"] and len(campaign.lists) == 2


def test_the_rest_api_creates_a_campaign_and_edits_only_what_it_sends(db, client_for, homeowners):
    marketer = client_for("marketer")
    created = marketer.post("/api/v1/campaign/", json={**form(homeowners), "filters": {"zips": "02169"}},
                            headers=bearer("marketer"))
    assert created.status_code == 201
    campaign_id = created.get_json()["id"]
    changed = marketer.put(f"/api/v1/campaign/{campaign_id}", json={"daily_limit": 90}, headers=bearer("marketer"))
    assert changed.status_code == 200
    campaign = db.session.get(Campaign, campaign_id)
    assert (campaign.daily_limit, campaign.name, campaign.filters) == (90, "December cracks", {"zips": ["02169"]})
    assert len(campaign.variants) == 2
    assert marketer.put(f"/api/v1/campaign/{campaign_id + 99}", json={}, headers=bearer("marketer")).status_code == 404
    assert client_for("staff").post("/api/v1/campaign/", json=form(homeowners),
                                    headers=bearer("staff")).status_code in (401, 403)


def test_the_live_preview_fills_a_real_member_and_counts_segments_and_cost(db, client_for, post_form, homeowners):
    marketer = client_for("marketer")
    data = post_form(marketer, "/campaignview/preview", form(
        homeowners, message_a="Hi {first_name|there}, free quote?", message_b="Hi {first_name} 🙂 " + "x" * 70,
        append_opt_out_line="")).get_json()
    assert data["audience"] == 2 and data["sample"] == "MARIA Lee"
    a, b = data["variants"]["A"], data["variants"]["B"]
    assert (a["body"], a["length"], a["encoding"], a["segments"]) == ("Hi Maria, free quote?", 21, "GSM-7", 1)
    # "Hi Maria 🙂 " + 70 x: the emoji makes it UCS-2 (two units), 82 units > 70: two segments of 67
    assert (b["length"], b["encoding"], b["segments"]) == (82, "UCS-2", 2)
    assert (a["share"], a["cost"], b["cost"], data["cost"]) == (1, 0.01, 0.02, 0.03)
    bad = post_form(marketer, "/campaignview/preview", form(homeowners, message_a="Hi {frist}")).get_json()
    assert "Unknown token {frist}" in bad["variants"]["A"]["error"]


def test_the_campaign_page_says_when_texts_go_out_before_start_and_next_send_while_running(
        app, db, client_for, post_form, homeowners, sender_clock):
    sender_clock("2026-11-29T21:00:00-05:00")  # a Sunday night in Boston
    lst = db.session.get(ContactList, homeowners)
    for phone in phones(118, start=10):
        add_contact(db, phone, lists=[lst])
    db.session.commit()
    campaign = make_campaign(db, [lst], daily_limit=60, window_days="0,1,2,3,4")
    marketer = client_for("marketer")
    draft = marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert "First text goes out Monday 09:00 ET, the last about Dec 1 at 60 a day (2 sending days)." in draft
    assert "\u2013 (no texts sent yet)" in draft and "0.0% (0.0" not in draft  # no rate before a text went out
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id)
    page = marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    # 120 people at 60 a day: Monday and Tuesday
    assert 'class="plan-queued">120<' in page and 'class="reason-opted_out">0<' in page
    assert "First text goes out Monday 09:00 ET, the last about Dec 1 at 60 a day (2 sending days)." in page
    campaigns.change_status(campaign.id, "running")
    page = marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert "Next send Monday 09:00 ET, the last about Dec 1" in page
    assert ("Texts are spread over the window: 60 a day from 09:00 to 17:00 is about one every 8 minutes." in page)
    assert "0 sent of 120 to text; 120 still to go." in " ".join(page.split())


def test_send_a_test_to_my_phone_goes_through_the_outbox_once_and_is_no_campaign_send(
        app, db, fake_openphone, client_for, post_form, homeowners, run_jobs, sender_clock):
    sender_clock(TUESDAY_10AM.isoformat())
    campaign = make_campaign(db, [db.session.get(ContactList, homeowners)],
                             variants=("Hi {first_name|there}, Matt here.", "Hey {first_name|there}!"))
    marketer = client_for("marketer")
    page = post_form(marketer, f"/campaignview/test_text/{campaign.id}", {"variant": "B", "phone": "(617) 555-0199"},
                     follow_redirects=True).get_data(as_text=True)
    assert "Test of message B queued to (617) 555-0199" in page
    run_jobs()
    sent = httpx.get(fake_openphone.url + "/_fake/sent").json()["data"]
    assert [(m["to"], m["text"]) for m in sent] == [(["+16175550199"], "Hey Maria!\nReply STOP to opt out.")]
    # Remembered for next time; audited; never a campaign text (no recipient, not in today's count).
    assert 'value="(617) 555-0199"' in marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "test_text")) == 1
    assert db.session.scalar(select(func.count(CampaignRecipient.id))) == 0
    assert campaigns.texts_sent_today(NUMBER, TUESDAY_10AM) == 0
    # An opted-out phone gets nothing; neither does anyone in quiet hours.
    db.session.add(OptOut(phone="+16175550198", source="manual", active=True))
    db.session.commit()
    page = post_form(marketer, f"/campaignview/test_text/{campaign.id}", {"variant": "A", "phone": "6175550198"},
                     follow_redirects=True).get_data(as_text=True)
    assert "The test cannot be sent: (617) 555-0198 has opted out" in page
    sender_clock("2026-12-01T22:30:00-05:00")
    page = post_form(marketer, f"/campaignview/test_text/{campaign.id}", {"variant": "A", "phone": "6175550199"},
                     follow_redirects=True).get_data(as_text=True)
    assert "It is quiet hours where that phone is" in page
    run_jobs()
    assert len(httpx.get(fake_openphone.url + "/_fake/sent").json()["data"]) == 1
    assert db.session.scalar(select(func.count(Message.id))) == 1


def test_unschedule_and_cancel_are_audited_at_both_doors(db, client_for, post_form, homeowners):
    lst = db.session.get(ContactList, homeowners)
    first, second = make_campaign(db, [lst], name="First"), make_campaign(db, [lst], name="Second")
    marketer = client_for("marketer")
    for campaign_id in (first.id, second.id):
        campaigns.change_status(campaign_id, "scheduled")
        campaigns.plan_audience(campaign_id)
    post_form(marketer, f"/campaignview/transition/{first.id}/draft")
    assert marketer.post(f"/api/v1/campaign_status/{second.id}", json={"status": "cancelled"},
                         headers=bearer("marketer")).status_code == 200
    rows = db.session.execute(select(AuditLog.object_id, AuditLog.username, AuditLog.changes).where(
        AuditLog.object_type == "campaigns", AuditLog.action == "update").order_by(AuditLog.id)).all()
    changes = [(object_id, username, row_changes["status"]) for object_id, username, row_changes in rows
               if "status" in (row_changes or {})]
    assert (str(first.id), "marketer", ["scheduled", "draft"]) in [(o, u, list(s)) for o, u, s in changes]
    assert (str(second.id), "marketer", ["scheduled", "cancelled"]) in [(o, u, list(s)) for o, u, s in changes]


def test_the_campaign_page_heads_with_its_name_and_times_to_the_minute_in_the_company_zone(db, client_for, homeowners):
    from datetime import datetime

    campaign = make_campaign(db, [db.session.get(ContactList, homeowners)], name="Heading check",
                             created_at=datetime(2026, 12, 1, 14, 5, 59, 123456), started_at=datetime(2026, 7, 1, 13, 0))
    page = client_for("marketer").get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert '<h2 id="campaign-name">Heading check</h2>' in page
    # stored as UTC: 14:05 UTC in December is 09:05 EST, 13:00 UTC in July is 09:00 EDT
    assert "created Dec 1, 2026 09:05 ET &middot; started Jul 1, 2026 09:00 ET</p>" in page
    assert "14:05:59" not in page and "None" not in page[page.index('id="campaign-name"'):]


@pytest.mark.parametrize(("start", "end", "limit", "said"), [
    ("08:00", "21:00", 500, "about one every 1.6 minutes"), ("09:00", "17:00", 60, "about one every 8 minutes"),
    ("09:00", "17:00", 10, "about one every 48 minutes"), ("09:00", "17:00", 960, "about 2 a minute"),
    ("09:00", "09:30", 6000, "as fast as OpenPhone allows")])
def test_the_pace_a_days_texts_are_spread_at_is_said_in_words(start, end, limit, said):
    text = schedule.describe_pace(time.fromisoformat(start), time.fromisoformat(end), limit)
    assert f"{limit} a day from {start} to {end} is {said}." in text
