"""Campaigns against the database and the fake OpenPhone over loopback HTTP."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from app import campaign_settings, campaigns, winners
from app.campaigns import CampaignError
from app.models import (
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    Contact,
    ContactList,
    ContactProperty,
    ListMember,
    Message,
    OptOut,
    Property,
)
from app.opt_outs import opt_out
from tests.conftest import start_worker, wait_until

NUMBER = "+16175550100"
TUESDAY_10AM = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.fixture
def fake(app, fake_openphone):
    """The fake OpenPhone with no rate limit and immediate webhooks; campaigns send unspread."""
    fake_openphone.rate, fake_openphone.webhook_delay = 100_000, 0
    saved = {k: app.config[k] for k in ("OPENPHONE_RATE_PER_SECOND", "CAMPAIGN_SPREAD")}
    app.config.update(OPENPHONE_RATE_PER_SECOND=100_000, CAMPAIGN_SPREAD=False)
    fake_openphone.configure(delivery=None)
    yield fake_openphone
    app.config.update(saved)


def add_contact(db, phone, first="Ann", state="MA", city="Quincy", type_="SFR", year=1962, lists=()):
    contact = Contact(first_name=first, last_name="Lee", phone=phone)
    prop = Property(key=f"k{phone}{first}", address="12 Elm St", city=city, state=state, zip="02169",
                    type=type_, year_built=year)
    db.session.add_all([contact, prop, ContactProperty(contact=contact, property=prop)])
    for lst in lists:
        db.session.add(ListMember(list=lst, contact=contact))
    db.session.flush()
    return contact


def make_campaign(db, lists, variants=("Hi {first_name|there}, Matt from Attack A Crack.",), **fields):
    fields.setdefault("window_start", time(9))
    fields.setdefault("window_end", time(17))
    campaign = Campaign(name=fields.pop("name", "Spring"), sending_number=fields.pop("sending_number", NUMBER),
                        lists=list(lists), **fields)
    campaign.variants = [CampaignVariant(label=chr(65 + i), template=t) for i, t in enumerate(variants)]
    db.session.add(campaign)
    db.session.commit()
    return campaign


def planned_and_running(db, campaign, now=TUESDAY_10AM):
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id, now=now.astimezone(timezone.utc).replace(tzinfo=None))
    return campaigns.change_status(campaign.id, "running")


def phones(n, start=0):
    return [f"+1617555{1000 + start + i:04d}" for i in range(n)]


def recipients(db, campaign):
    campaign_id = campaign if isinstance(campaign, int) else campaign.id
    return db.session.scalars(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                              .order_by(CampaignRecipient.position, CampaignRecipient.id)).all()


# --- planning ----------------------------------------------------------------------------

def test_planning_records_every_exclusion_with_its_reason(db):
    homeowners, second = ContactList(name="Homeowners"), ContactList(name="Second")
    db.session.add_all([homeowners, second])
    ok = add_contact(db, "+16175551001", lists=[homeowners, second])  # in two lists: one recipient
    add_contact(db, None, first="NoPhone", lists=[homeowners])
    add_contact(db, "+16175551003", first="Stopped", lists=[homeowners])
    db.session.add(OptOut(phone="+16175551003", source="keyword"))
    add_contact(db, "+16175551004", first="Condo", type_="CND", lists=[homeowners])
    texted = add_contact(db, "+16175551005", first="Texted", lists=[homeowners])
    db.session.add(Message(direction="outgoing", status="sent", to_phone="+16175551005", contact=texted,
                           created_at=datetime(2025, 1, 1)))
    capped = add_contact(db, "+16175551006", first="Capped", lists=[homeowners])
    other = make_campaign(db, [homeowners], name="Earlier")
    db.session.add(CampaignRecipient(campaign=other, contact=capped, phone="+16175551006", status="sent",
                                     sent_at=datetime(2026, 11, 20)))
    db.session.commit()
    campaign = make_campaign(db, [homeowners, second], filters={"property_types": ["SFR"]})
    campaigns.change_status(campaign.id, "scheduled")
    counts = campaigns.plan_audience(campaign.id, now=datetime(2026, 12, 1, 15))
    assert counts == {"queued": 1, "no_valid_phone": 1, "opted_out": 1, "outside_filters": 1,
                      "frequency_cap": 1, "texted_before": 1}
    queued = [r for r in recipients(db, campaign) if r.status == "queued"]
    assert [r.contact_id for r in queued] == [ok.id] and queued[0].state == "MA"


def test_previously_texted_people_can_be_included(db):
    lst = ContactList(name="L")
    texted = add_contact(db, "+16175551005", lists=[lst])
    db.session.add(Message(direction="outgoing", status="sent", to_phone=texted.phone, created_at=datetime(2025, 1, 1)))
    campaign = make_campaign(db, [lst], include_previously_texted=True)
    campaigns.change_status(campaign.id, "scheduled")
    assert campaigns.plan_audience(campaign.id) == {"queued": 1}


def test_filters_on_city_zip_year_and_not_replied(db):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", city="QUINCY", year=1970, lists=[lst])
    add_contact(db, "+16175551002", city="Braintree", year=1970, lists=[lst])
    add_contact(db, "+16175551003", city="Quincy", year=1940, lists=[lst])
    replied = add_contact(db, "+16175551004", city="Quincy", year=1980, lists=[lst])
    db.session.add(Message(direction="incoming", status="received", contact=replied, from_phone=replied.phone))
    campaign = make_campaign(db, [lst], filters={"cities": ["Quincy"], "year_built_min": 1950,
                                                 "year_built_max": 2000, "not_replied": True})
    campaigns.change_status(campaign.id, "scheduled")
    assert campaigns.plan_audience(campaign.id) == {"queued": 1, "outside_filters": 3}


def test_ab_assignment_is_balanced_and_survives_replanning(db):
    lst = ContactList(name="L")
    for phone in phones(11):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst], variants=("A {first_name}", "B {first_name}"))
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id)
    first = [(r.phone, r.position, r.variant.label) for r in recipients(db, campaign)]
    labels = [label for _, _, label in first]
    assert labels.count("A") == 6 and labels.count("B") == 5
    assert labels[:4] == ["A", "B", "A", "B"]
    campaigns.plan_audience(campaign.id)  # the job ran twice
    db.session.expire_all()
    assert [(r.phone, r.position, r.variant.label) for r in recipients(db, campaign)] == first


# --- the state machine ------------------------------------------------------------------

@pytest.mark.parametrize("start, target", [
    ("draft", "running"), ("draft", "completed"), ("scheduled", "paused"), ("completed", "running"),
    ("cancelled", "running"), ("draft", "cancelled"), ("completed", "cancelled"), ("paused", "scheduled"),
])
def test_illegal_transitions_are_refused(db, start, target):
    lst = ContactList(name="L")
    campaign = make_campaign(db, [lst], status=start, planned_at=datetime(2026, 1, 1))
    with pytest.raises(CampaignError, match=f"A {start} campaign cannot become {target}"):
        campaigns.change_status(campaign.id, target)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == start


def test_scheduling_needs_an_audience_and_valid_templates(db):
    lst = ContactList(name="L")
    campaign = make_campaign(db, [lst], variants=("Hi {firstname}",))
    with pytest.raises(CampaignError, match="Variant A: Unknown token {firstname}"):
        campaigns.change_status(campaign.id, "scheduled")
    empty = make_campaign(db, [], name="No list")
    with pytest.raises(CampaignError, match="at least one list"):
        campaigns.change_status(empty.id, "scheduled")


def test_a_running_campaign_cannot_be_edited_but_can_be_cloned(db):
    lst = ContactList(name="L")
    campaign = make_campaign(db, [lst], status="running", variants=("A", "B"))
    campaign.variants[0].template = "Changed"  # through no form at all: the flush guard refuses it
    with pytest.raises(CampaignError, match="clone it instead"):
        db.session.commit()
    db.session.rollback()
    draft = make_campaign(db, [lst], name="Draft")
    campaign.variants[1].campaign = draft  # a move, by the relationship alone
    with pytest.raises(CampaignError, match="running campaign"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(campaign)
    with pytest.raises(CampaignError, match="Cancel it first"):
        db.session.commit()
    db.session.rollback()
    copy = campaigns.clone_campaign(campaign.id)
    assert copy.status == "draft" and [v.template for v in copy.variants] == ["A", "B"]
    assert copy.lists == [lst]
    copy.variants[0].template = "Changed"
    db.session.commit()
    db.session.expire_all()
    assert [v.template for v in db.session.get(Campaign, campaign.id).variants] == ["A", "B"]


# --- sending ------------------------------------------------------------------------------

def sent_to(fake):
    return sorted(m["to"][0] for m in fake.sent)


def test_campaign_texts_each_recipient_once_with_its_variant(db, fake):
    lst = ContactList(name="L")
    for i, phone in enumerate(phones(4)):
        add_contact(db, phone, first=f"Name{i}", lists=[lst])
    campaign = make_campaign(db, [lst], variants=("A: hi {first_name}", "B: hey {first_name}"))
    planned_and_running(db, campaign)
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM) == 4
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM) == 0  # the job ran twice
    assert sent_to(fake) == phones(4)
    bodies = sorted(m["text"] for m in fake.sent)
    assert bodies[0] == "A: hi Name0\nReply STOP to opt out." and bodies[-1].startswith("B: hey Name3")
    assert {r.status for r in recipients(db, campaign)} == {"sent"}
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "completed"


@pytest.mark.parametrize("local_time, expected", [
    ("08:59", 0), ("09:00", 3), ("16:59", 3), ("17:00", 0),
])
def test_nothing_goes_out_outside_the_campaign_window(db, fake, local_time, expected):
    lst = ContactList(name="L")
    for phone in phones(3):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    hour, minute = map(int, local_time.split(":"))
    now = TUESDAY_10AM.replace(hour=hour, minute=minute)
    assert campaigns.send_due_messages(campaign.id, now=now) == expected
    assert len(fake.sent) == expected


def test_weekend_sends_nothing_and_monday_resumes(db, fake):
    lst = ContactList(name="L")
    for phone in phones(2):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    saturday = TUESDAY_10AM + timedelta(days=4)
    assert campaigns.send_due_messages(campaign.id, now=saturday) == 0
    assert campaigns.send_due_messages(campaign.id, now=saturday + timedelta(days=2)) == 2


def test_the_legal_window_is_the_recipients_local_time(db, fake):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", state="MA", lists=[lst])
    add_contact(db, "+13105551002", state="CA", lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    # 10:30 in Boston is 07:30 in Los Angeles: only Massachusetts is texted.
    morning = TUESDAY_10AM.replace(minute=30)
    assert campaigns.send_due_messages(campaign.id, now=morning) == 1
    assert sent_to(fake) == ["+16175551001"]
    assert campaigns.send_due_messages(campaign.id, now=morning.replace(hour=11)) == 1
    assert sent_to(fake) == ["+13105551002", "+16175551001"]


def test_daily_limit_is_shared_by_two_campaigns_on_one_number(db, fake):
    first, second = ContactList(name="First"), ContactList(name="Second")
    for phone in phones(4):
        add_contact(db, phone, lists=[first])
    for phone in phones(4, start=100):
        add_contact(db, phone, lists=[second])
    one = make_campaign(db, [first], name="One", daily_limit=5)
    two = make_campaign(db, [second], name="Two", daily_limit=5)
    planned_and_running(db, one)
    planned_and_running(db, two)
    assert campaigns.send_due_messages(one.id, now=TUESDAY_10AM) == 4
    assert campaigns.send_due_messages(two.id, now=TUESDAY_10AM) == 1
    assert len(fake.sent) == 5
    assert campaigns.send_due_messages(two.id, now=TUESDAY_10AM + timedelta(days=1)) == 3


def test_the_days_quota_is_spread_across_the_window(app, db, fake):
    app.config["CAMPAIGN_SPREAD"] = True
    lst = ContactList(name="L")
    for phone in phones(10):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst], daily_limit=8)  # one per hour from 09:00
    planned_and_running(db, campaign)
    nine = TUESDAY_10AM.replace(hour=9)
    assert campaigns.send_due_messages(campaign.id, now=nine) == 1
    assert campaigns.send_due_messages(campaign.id, now=nine.replace(minute=59)) == 0
    assert campaigns.send_due_messages(campaign.id, now=nine.replace(hour=12, minute=30)) == 3
    assert campaigns.send_due_messages(campaign.id, now=nine.replace(hour=16, minute=59)) == 4


def test_opt_out_mid_campaign_stops_the_next_text(db, fake):
    lst = ContactList(name="L")
    for phone in phones(3):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM, max_messages=1) == 1
    db.session.add(OptOut(phone=phones(3)[1], source="keyword"))
    db.session.commit()
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM)
    assert sent_to(fake) == [phones(3)[0], phones(3)[2]]
    skipped = [r for r in recipients(db, campaign) if r.status == "skipped"]
    assert [(r.phone, r.exclusion_reason) for r in skipped] == [(phones(3)[1], "opted_out")]


def test_frequency_cap_holds_across_campaigns_at_send_time(db, fake):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", lists=[lst])
    one, two = make_campaign(db, [lst], name="One"), make_campaign(db, [lst], name="Two")
    planned_and_running(db, one)
    planned_and_running(db, two)  # planned before One texted anyone
    assert campaigns.send_due_messages(one.id, now=TUESDAY_10AM) == 1
    assert campaigns.send_due_messages(two.id, now=TUESDAY_10AM + timedelta(days=1)) == 0
    assert len(fake.sent) == 1
    assert recipients(db, two)[0].exclusion_reason == "frequency_cap"


def test_florida_allows_three_texts_per_person_per_day(db, fake):
    lst = ContactList(name="L")
    contact = add_contact(db, "+13055551001", state="FL", lists=[lst])
    for hours in (21, 22, 23):  # yesterday 11:00, 12:00 and 13:00
        db.session.add(Message(direction="outgoing", status="sent", to_phone=contact.phone, contact=contact,
                               created_at=TUESDAY_10AM.astimezone(timezone.utc).replace(tzinfo=None)
                               - timedelta(hours=hours)))
    campaign = make_campaign(db, [lst], include_previously_texted=True)
    planned_and_running(db, campaign)
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM) == 0
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM + timedelta(hours=1, minutes=1)) == 1


def test_a_phone_in_two_lists_is_texted_once(db, fake):
    one, two = ContactList(name="One"), ContactList(name="Two")
    add_contact(db, "+16175551001", first="Maria", lists=[one, two])
    campaign = make_campaign(db, [one, two])
    planned_and_running(db, campaign)
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM)
    assert sent_to(fake) == ["+16175551001"]


def test_nothing_is_sent_before_the_start_date_or_while_paused(db, fake):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", lists=[lst])
    campaign = make_campaign(db, [lst], start_date=date(2026, 12, 2))
    planned_and_running(db, campaign)
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM) == 0
    campaigns.change_status(campaign.id, "paused")
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM + timedelta(days=1)) == 0
    campaigns.change_status(campaign.id, "running")
    assert campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM + timedelta(days=1)) == 1


def test_declare_winner_sends_the_winner_to_the_rest(db, fake):
    lst = ContactList(name="L")
    for phone in phones(6):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst], variants=("Alpha", "Bravo"))
    planned_and_running(db, campaign)
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM, max_messages=2)
    bravo = [v for v in campaign.variants if v.label == "B"][0]
    preview = winners.winner_preview(campaign.id, bravo.id)
    assert winners.declare_winner(campaign.id, bravo.id, preview["fingerprint"]) == 2  # the two A's left
    campaigns.send_due_messages(campaign.id, now=TUESDAY_10AM)
    assert sorted(m["text"].split("\n")[0] for m in fake.sent) == ["Alpha"] + ["Bravo"] * 5


def test_recovery_requeues_running_campaigns_and_unsent_messages(app, db, fake, redis, run_jobs, sender_clock):
    sender_clock("2026-12-01T22:30:00+00:00")  # 17:30 in Boston: the campaign window is closed
    lst = ContactList(name="L")
    for phone in phones(2):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    campaign_id = campaign.id
    # A sender that died after claiming and queueing, before OpenPhone heard of it:
    ids = campaigns.claim_due(campaign.id, campaigns.sender_now(TUESDAY_10AM), limit=1)
    db.session.commit()
    assert len(ids) == 1 and not fake.sent
    db.session.remove()
    campaigns.recover_campaigns()
    run_jobs()
    assert not fake.sent  # not outside the window, even for a text claimed inside it
    sender_clock("2026-12-02T15:00:00+00:00")  # Wednesday 10:00 in Boston
    redis.flushdb()  # and Redis lost every job
    assert campaigns.recover_campaigns() == 2  # the unsent message, and a sender for the campaign
    assert campaigns.recover_campaigns() == 0  # idempotent while the jobs are queued
    run_jobs()
    assert sorted(m["to"][0] for m in httpx.get(fake.url + "/_fake/sent").json()["data"]) == phones(2)
    assert {r.status for r in recipients(db, campaign_id)} == {"sent"}


# --- through the web ------------------------------------------------------------------------

def test_marketer_creates_a_campaign_previews_and_schedules_it(db, client_for, post_form, run_jobs):
    lst = ContactList(name="Homeowners")
    db.session.add(lst)
    add_contact(db, "+16175551001", first="MARIA", lists=[lst])
    add_contact(db, None, first="Nophone", lists=[lst])
    db.session.commit()
    marketer = client_for("marketer")
    response = post_form(marketer, "/campaignview/add", {
        "name": "Spring cracks", "lists": str(lst.id), "sending_number": NUMBER, "daily_limit": "125",
        "window_days": ["0", "1", "2", "3", "4"], "window_start": "09:00", "window_end": "17:00",
        "frequency_cap_days": "30", "append_opt_out_line": "y", "property_types": "sfr, mfr",
        "year_built_min": "1950", "message_a": "Hi {first_name|there}, Matt here 🙂",
        "message_b": "Hello {first_name}, free quotes."}, follow_redirects=True)
    campaign = db.session.scalars(select(Campaign)).one()
    assert response.request.path == f"/campaignview/show/{campaign.id}"
    assert "Campaign saved" in response.get_data(as_text=True)
    assert campaign.filters == {"property_types": ["SFR", "MFR"], "year_built_min": 1950}
    assert [(v.label, v.template) for v in campaign.variants] == [
        ("A", "Hi {first_name|there}, Matt here 🙂"), ("B", "Hello {first_name}, free quotes.")]
    page = marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert "Hi Maria, Matt here 🙂" in page and "UCS-2" in page and "GSM-7" in page
    post_form(marketer, f"/campaignview/transition/{campaign.id}/scheduled")
    run_jobs()
    page = marketer.get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert 'class="reason-no_valid_phone">1<' in page
    assert "Estimated cost" in page and "<svg" in page


def test_illegal_transitions_are_refused_in_the_ui_and_the_api(app, db, client_for, post_form):
    campaign = make_campaign(db, [ContactList(name="L")])
    marketer = client_for("marketer")
    page = post_form(marketer, f"/campaignview/transition/{campaign.id}/running", follow_redirects=True)
    assert "A draft campaign cannot become running" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "draft"
    token = marketer.post("/api/v1/security/login", json={"username": "marketer", "password": "Test-password-1",
                                                          "provider": "db"}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"} if token and "access_token" in token else {}
    api = marketer.post(f"/api/v1/campaign_status/{campaign.id}", json={"status": "completed"}, headers=headers)
    assert api.status_code == 409
    assert "cannot become completed" in api.get_json()["message"]
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "draft"
    missing = campaign.id + 1000
    assert marketer.post(f"/api/v1/campaign_status/{missing}", json={"status": "scheduled"},
                         headers=headers).status_code == 404
    assert marketer.get(f"/api/v1/campaign/{missing}/results", headers=headers).status_code == 404
    page = post_form(marketer, f"/campaignview/transition/{missing}/scheduled", follow_redirects=True)
    assert page.status_code == 404 and db.session.query(Campaign).count() == 1


def test_running_campaign_messages_cannot_be_edited_in_the_ui(db, client_for, post_form):
    campaign = make_campaign(db, [ContactList(name="L")], status="running", variants=("Original",))
    variant = campaign.variants[0]
    page = post_form(client_for("marketer"), f"/campaignvariantview/edit/{variant.id}",
                     {"campaign": str(campaign.id), "label": "A", "template": "Changed"}, follow_redirects=True)
    assert "clone it instead" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(CampaignVariant, variant.id).template == "Original"


def test_staff_cannot_open_campaigns(db, client_for):
    campaign = make_campaign(db, [ContactList(name="L")])
    staff = client_for("staff")
    assert staff.get(f"/campaignview/show/{campaign.id}").status_code in (302, 403)
    assert staff.post(f"/api/v1/campaign_status/{campaign.id}", json={"status": "scheduled"}).status_code in (400, 401, 403)  # 400: no CSRF token


# --- a real worker, killed or robbed of its Redis mid-campaign ---------------------------------

def start_sender(app, fake):
    return start_worker(app, OPENPHONE_API_KEY="test-key", OPENPHONE_BASE_URL=fake.url,
                        OPENPHONE_RATE_PER_SECOND="1000", OPENPHONE_RECONCILE_AFTER_SECONDS="1",
                        CAMPAIGN_SPREAD="0", now=TUESDAY_10AM)


def finished(db, campaign_id):
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status != "sent")) == 0


def assert_texted_exactly_once(fake, expected_phones):
    """Counted where it matters: at the (fake) provider, one text per phone, none missing."""
    import collections

    counts = collections.Counter(m["to"][0] for m in fake.sent)
    assert sorted(counts) == sorted(expected_phones)
    assert set(counts.values()) == {1}, {phone: n for phone, n in counts.items() if n > 1}


def running_campaign(db, count):
    lst = ContactList(name="Crash")
    for phone in phones(count):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst], variants=("A {first_name}", "B {first_name}"))
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id)
    db.session.execute(Campaign.__table__.update().where(Campaign.id == campaign.id)
                       .values(status="running", started_at=datetime(2026, 12, 1)))
    db.session.commit()
    return campaign.id


@pytest.mark.slow
def test_worker_killed_mid_campaign_texts_everyone_exactly_once(app, db, fake):
    import signal

    campaign_id = running_campaign(db, 30)
    fake.configure(latency=0.05)
    worker = start_sender(app, fake)
    try:
        wait_until(lambda: len(fake.sent) >= 6, 60, "the worker never started sending")
        worker.send_signal(signal.SIGKILL)  # most likely mid-request: OpenPhone has it, the database does not
        worker.wait()
        assert len(fake.sent) < 30
        worker = start_sender(app, fake)
        wait_until(lambda: finished(db, campaign_id), 60, "the campaign did not finish after the restart")
    finally:
        worker.kill()
        worker.wait()
    assert_texted_exactly_once(fake, phones(30))


@pytest.mark.slow
def test_redis_flushed_mid_campaign_texts_everyone_exactly_once(app, db, fake, redis):
    campaign_id = running_campaign(db, 30)
    fake.configure(latency=0.05)
    worker = start_sender(app, fake)
    try:
        wait_until(lambda: len(fake.sent) >= 6, 60, "the worker never started sending")
        redis.flushdb()  # every queued job, registry and rate-limit key gone while a sender runs
        wait_until(lambda: len(fake.sent) >= 12, 60, "sending stopped")
        worker.kill()  # and once more with nothing left in Redis but a dead worker's traces
        worker.wait()
        redis.flushdb()
        assert len(fake.sent) < 30
        worker = start_sender(app, fake)
        wait_until(lambda: finished(db, campaign_id), 60, "the campaign did not finish after Redis lost its jobs")
    finally:
        worker.kill()
        worker.wait()
    assert_texted_exactly_once(fake, phones(30))


@pytest.mark.slow
def test_edits_at_every_door_while_a_real_sender_runs_text_nobody_twice_and_no_opt_out(
        app, db, fake, client_for, post_form):
    campaign_id = running_campaign(db, 30)
    fake.configure(latency=0.05)
    marketer = client_for("marketer")
    worker = start_sender(app, fake)
    try:
        wait_until(lambda: len(fake.sent) >= 6, 60, "the worker never started sending")
        # Edits while it runs: the builder, the REST API and the messages are refused, whole.
        campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
        values = {**campaign_settings.campaign_values(campaign), "message_a": "Changed {first_name}",
                  "daily_limit": "5"}
        page = post_form(marketer, f"/campaignview/edit/{campaign_id}", values).get_data(as_text=True)
        assert "A running campaign cannot be edited: clone it instead." in page
        put = marketer.put(f"/api/v1/campaign/{campaign_id}", json={"message_b": "B changed"},
                           headers=bearer("marketer"))
        assert put.status_code == 409 and "clone it instead" in put.get_json()["message"]["form"]
        # Paused: nothing more leaves; a person not yet texted opts out; then Resume.
        post_form(marketer, f"/campaignview/transition/{campaign_id}/paused")
        db.session.remove()
        waiting = db.session.scalars(select(CampaignRecipient.phone).where(
            CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status == "queued")
            .order_by(CampaignRecipient.position.desc()).limit(1)).one()
        opt_out(waiting, "manual", reason="asked on the phone")
        db.session.commit()
        assert marketer.post(f"/api/v1/campaign_status/{campaign_id}", json={"status": "running"},
                             headers=bearer("marketer")).status_code == 200

        def done():
            db.session.remove()
            return not db.session.scalar(select(func.count(CampaignRecipient.id)).where(
                CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status.in_(("queued", "sending"))))
        wait_until(done, 90, "the campaign did not finish after Resume")
    finally:
        worker.kill()
        worker.wait()
    assert_texted_exactly_once(fake, [phone for phone in phones(30) if phone != waiting])
    db.session.remove()
    assert db.session.get(Campaign, campaign_id).daily_limit == 125
    assert {v.template for v in db.session.get(Campaign, campaign_id).variants} == {"A {first_name}",
                                                                                   "B {first_name}"}


def test_home_dashboard_shows_todays_sending_and_what_waits(app, db, client_for):
    from app.models import utcnow

    lst = ContactList(name="L")
    contact = add_contact(db, "+16175551001", lists=[lst])
    campaign = make_campaign(db, [lst], name="Spring cracks", status="running", daily_limit=125)
    recipient = CampaignRecipient(campaign=campaign, contact=contact, phone=contact.phone, status="sent")
    db.session.add(recipient)
    db.session.flush()
    db.session.add_all([
        Message(direction="outgoing", status="sent", to_phone=contact.phone, from_phone=NUMBER, contact=contact,
                campaign_recipient_id=recipient.id, created_at=utcnow()),
        Message(direction="incoming", status="received", from_phone=contact.phone, contact=contact, created_at=utcnow()),
        OptOut(phone="+16175559999", source="keyword"),
        OptOut(phone_hash="0" * 64, source="erasure"),  # an erased contact's suppression is no opt-out request
    ])
    db.session.commit()
    page = client_for("marketer").get("/").get_data(as_text=True)
    assert "1 of 125" in page and "Spring cracks" in page
    assert 'id="dashboard-waiting">1<' in page and 'id="dashboard-optouts">1<' in page
    assert 'id="dashboard-waiting">0<' in client_for("staff").get("/").get_data(as_text=True)  # not their contact


def test_bulk_actions_on_selected_and_on_everything_matching_the_filter(db, client_for, post_form, run_jobs):
    target = ContactList(name="Target")
    db.session.add(target)
    anns = [add_contact(db, phone, first="Ann") for phone in phones(3)]
    bob = add_contact(db, "+16175552000", first="Bob")
    db.session.commit()
    marketer = client_for("marketer")
    form = marketer.post("/contactview/action_post", data={"action": "add_to_list", "rowid": [str(anns[0].id)],
                                                            "csrf_token": csrf(marketer)},
                         headers={"Referer": "http://localhost/contactview/list/?_flt_0_first_name=Ann"})
    assert form.status_code == 302 and "/contactview/bulk/add_to_list" in form.headers["Location"]
    page = marketer.get(form.headers["Location"]).get_data(as_text=True)
    assert "Every contact matching the current filter" in page
    post_form(marketer, "/contactview/bulk/add_to_list", {"ids": str(anns[0].id), "argument": str(target.id),
                                                          "scope": "selected", "search": ""})
    assert db.session.scalar(select(func.count()).select_from(ListMember)) == 1
    post_form(marketer, "/contactview/bulk/add_to_list", {"ids": str(anns[0].id), "argument": str(target.id),
                                                          "scope": "matching", "search": "_flt_0_first_name=Ann"})
    run_jobs()
    members = set(db.session.scalars(select(ListMember.contact_id)))
    assert members == {a.id for a in anns} and bob.id not in members
    csv_export = marketer.post("/contactview/action_post", data={"action": "export_csv", "csrf_token": csrf(marketer),
                                                                  "rowid": [str(bob.id)]})
    assert "+16175552000" in csv_export.get_data(as_text=True)
    drafted = marketer.post("/contactview/action_post", data={"action": "text_selected", "csrf_token": csrf(marketer),
                                                               "rowid": [str(a.id) for a in anns]})
    assert drafted.status_code == 302
    draft = db.session.scalars(select(Campaign)).one()
    assert draft.status == "draft" and len(draft.lists[0].members) == 3


def test_staff_has_no_bulk_actions(db, client_for):
    contact = add_contact(db, "+16175551001")
    db.session.commit()
    staff = client_for("staff")
    response = staff.post("/contactview/action_post", data={"action": "text_selected", "csrf_token": csrf(staff),
                                                            "rowid": [str(contact.id)]})
    assert response.status_code in (302, 403, 404)
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 0


def csrf(client):
    from flask import current_app

    from tests.conftest import csrf_token

    return csrf_token(current_app, client)


def test_variant_results_match_a_known_chi_square(db, client_for):
    from app import analytics

    lst = ContactList(name="L")
    campaign = make_campaign(db, [lst], status="running", variants=("Alpha", "Bravo"))
    alpha, bravo = campaign.variants
    rows = []
    for variant, replies in ((alpha, 20), (bravo, 35)):
        for i in range(100):
            rows.append(CampaignRecipient(campaign=campaign, variant=variant, phone=f"+1617{variant.label == 'B':d}55{i:05d}",
                                          status="sent", sent_at=datetime(2026, 12, 1, 15),
                                          replied_at=datetime(2026, 12, 1, 16) if i < replies else None))
    db.session.add_all(rows)
    db.session.commit()
    test = analytics.campaign_results(campaign.id)
    variants = test["variants"]
    assert [(v["label"], v["sent"], v["replied"]) for v in variants] == [("A", 100, 20), ("B", 100, 35)]
    assert test["test"] == "chi-square" and test["statistic"] == pytest.approx(5.642633, rel=1e-6)
    assert test["p_value"] == pytest.approx(0.017528, abs=1e-6)
    page = client_for("marketer").get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert "χ² = 5.643" in page.replace("&chi;&sup2;", "χ²") and "significant" in page
    assert "Declare winner" in page


def test_recipients_csv_has_every_outcome_and_no_formulas(db, client_for):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", first="=HYPERLINK(\"x\")", lists=[lst])
    add_contact(db, None, first="Nophone", lists=[lst])
    campaign = make_campaign(db, [lst])
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id)
    body = client_for("marketer").get(f"/campaignview/recipients_csv/{campaign.id}").get_data(as_text=True)
    lines = body.strip().splitlines()
    assert lines[0].startswith("position,phone,first_name")
    assert any("+16175551001" in line and "'=HYPERLINK" in line and ",queued," in line for line in lines)
    assert any(",excluded,no_valid_phone," in line for line in lines)


def test_recipients_csv_download_is_audited_with_who_and_how_many(db, client_for):
    from app.models import AuditLog

    lst = ContactList(name="L")
    for i in range(3):
        add_contact(db, f"+1617555100{i}", lists=[lst])
    campaign = make_campaign(db, [lst])
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.plan_audience(campaign.id)
    body = client_for("marketer").get(f"/campaignview/recipients_csv/{campaign.id}").get_data(as_text=True)
    assert len(body.strip().splitlines()) == 4
    export = db.session.scalars(select(AuditLog).filter_by(action="export")).one()
    assert (export.username, export.object_type, export.object_id) == ("marketer", "campaign_recipients",
                                                                       str(campaign.id))
    assert export.changes == {"count": 3}


# --- A/B numbers: one count per person, the same on the page, in the CSV and from the API ---------

def deliver_webhooks(app, fake):
    for body, headers in fake.take_webhooks():
        assert app.test_client().post("/webhooks/openphone", data=body, headers=headers).status_code == 200


def bearer(username):
    from flask_jwt_extended import create_access_token

    from tests.conftest import user_id

    return {"Authorization": f"Bearer {create_access_token(identity=str(user_id(username)), fresh=True)}"}


def page_variant_rows(html):
    """[[cell, ...], ...]: the A/B table's rows as text."""
    import re

    table = re.search(r'id="campaign-variants">(.*?)</table>', html, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = [re.sub(r"<[^>]+>|\s+", " ", c).replace("\u2013", "-").strip()
                 for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        rows.append(cells[:7])
    return rows


def test_ab_numbers_count_each_person_once_on_the_page_in_the_csv_and_the_api(app, db, fake, client_for,
                                                                              run_jobs, sender_clock):
    """Twelve people, A and B alternating by position (A: 1st, 3rd, ...; B: 2nd, 4th, ...).
    By hand:
      A (people 0, 2, 4, 6, 8, 10): 4 refused by OpenPhone, 8 reported undelivered -> failed 2, sent 4;
        delivered 0, 2, 10 (6 has no report) -> 3; person 0 replied three times -> replied 1;
        opted out 0; reply rate 1/4 = 25.0%, Wilson 95% 4.6%-69.9%.
      B (people 1, 3, 5, 7, 9, 11): all sent -> 6; delivered 1, 3, 9, 11 (5, 7 no report) -> 4;
        failed 0; replied 1 (a reply then STOP), 7 (twice, undelivered report), 9 -> 3; opted out 1;
        reply rate 3/6 = 50.0%, Wilson 95% 18.8%-81.2%.
      Test: expected counts under 5 -> Fisher's exact on [[1, 3], [3, 3]]: hypergeometric
        P(x) = C(4,x) C(6,4-x) / C(10,4) = 15, 80, 90, 24, 1 (/210) for x = 0..4; two-sided sums
        every P <= P(1) = 80: (15 + 80 + 24 + 1) / 210 = 4/7 = 0.5714."""
    sender_clock(TUESDAY_10AM.isoformat())
    lst = ContactList(name="L")
    people = phones(12)
    for i, phone in enumerate(people):
        add_contact(db, phone, first=f"P{i}", lists=[lst])
    campaign = make_campaign(db, [lst], variants=("A: hi {first_name}", "B: hey {first_name}"))
    campaign_id = campaign.id
    planned_and_running(db, campaign)
    for count, faults in ((4, {"delivery": "delivered"}), (1, {"fail_next": [400]}), (3, {"delivery": None}),
                          (1, {"delivery": "failed"}), (3, {"delivery": "delivered"})):
        fake.configure(**faults)
        assert campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM, max_messages=count) == count
    for person, text in ((0, "How much?"), (0, "Also the walkway"), (0, "Thanks"), (1, "Yes, interested"),
                         (1, "STOP"), (7, "Call me"), (7, "After 5 please"), (9, "Price?")):
        fake.reply(people[person], text)
    deliver_webhooks(app, fake)
    run_jobs()

    expected = {
        "A": {"sent": 4, "delivered": 3, "failed": 2, "replied": 1, "opted_out": 0},
        "B": {"sent": 6, "delivered": 4, "failed": 0, "replied": 3, "opted_out": 1},
    }
    rates = {"A": (0.25, 0.0456, 0.6994), "B": (0.5, 0.1876, 0.8124)}

    marketer = client_for("marketer")
    html = marketer.get(f"/campaignview/show/{campaign_id}").get_data(as_text=True)
    assert page_variant_rows(html) == [
        ["A", "4", "3", "2", "1", "0", "25.0% (4.6-69.9%)"],
        ["B", "6", "4", "0", "3", "1", "50.0% (18.8-81.2%)"],
    ]
    assert "Fisher's exact" in html.replace("&#39;", "'") and "p = 0.5714" in html
    progress = html[html.index('id="campaign-progress"'):]
    progress = " ".join(progress[:progress.index("</p>")].split())
    # the progress line agrees with the funnel below: 12 planned, 10 sent, 2 failed, nobody left
    assert "10 sent of 12 to text; 0 still to go, 2 failed." in progress
    funnel = html[html.index("<h5>Funnel</h5>"):]
    for step, total in (("Sent", 10), ("Delivered", 7), ("Failed", 2), ("Replied", 4), ("Opted out", 1)):
        assert f">{step}</text>" in funnel and f">{total}</text>" in funnel

    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(marketer.get(f"/campaignview/recipients_csv/{campaign_id}")
                                           .get_data(as_text=True))))
    assert len(rows) == 12
    from_csv = {label: {key: sum(int(r[key]) for r in rows if r["variant"] == label) for key in expected["A"]}
                for label in "AB"}
    assert from_csv == expected

    api = client_for("marketer").get(f"/api/v1/campaign/{campaign_id}/results", headers=bearer("marketer"))
    assert api.status_code == 200
    body = api.get_json()
    assert [v["label"] for v in body["variants"]] == ["A", "B"]
    for v in body["variants"]:
        assert {key: v[key] for key in expected["A"]} == expected[v["label"]]
        assert (v["reply_rate"], v["ci_low"], v["ci_high"]) == pytest.approx(rates[v["label"]], abs=5e-5)
    assert body["test"] == "Fisher's exact" and body["p_value"] == pytest.approx(4 / 7)
    assert client_for("staff").get(f"/api/v1/campaign/{campaign_id}/results",
                                   headers=bearer("staff")).status_code in (401, 403)


# --- the state machine owns every edit ------------------------------------------------------------

def campaign_form(campaign, **changes):
    """The campaign edit form as the browser posts it, with some fields changed."""
    data = {"name": campaign.name, "lists": [str(lst.id) for lst in campaign.lists],
            "sending_number": campaign.sending_number, "daily_limit": str(campaign.daily_limit),
            "window_days": campaign.window_days, "window_start": campaign.window_start.strftime("%H:%M"),
            "window_end": campaign.window_end.strftime("%H:%M"), "frequency_cap_days": str(campaign.frequency_cap_days),
            "append_opt_out_line": "y", **{f"message_{v.label.lower()}": v.template for v in campaign.variants}}
    data.update(changes)
    return data


def test_a_scheduled_campaigns_audience_is_fixed_until_unscheduled_and_start_texts_the_new_list(
        app, db, fake, client_for, post_form, run_jobs, sender_clock):
    sender_clock(TUESDAY_10AM.isoformat())
    old, new = ContactList(name="Old list"), ContactList(name="New list")
    for phone in phones(2):
        add_contact(db, phone, lists=[old])
    for phone in phones(2, start=100):
        add_contact(db, phone, lists=[new])
    campaign = make_campaign(db, [old])
    campaign_id, new_id = campaign.id, new.id
    marketer = client_for("marketer")
    post_form(marketer, f"/campaignview/transition/{campaign_id}/scheduled")
    run_jobs()
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign.status == "scheduled" and campaign.planned_at is not None

    # The form says so before anyone types, and refuses an audience edit: the plan stays the plan.
    assert "Unschedule to edit them" in marketer.get(f"/campaignview/edit/{campaign_id}").get_data(as_text=True)
    assert "Unschedule to edit" in marketer.get(f"/campaignview/show/{campaign_id}").get_data(as_text=True)
    for change in ({"lists": [str(new_id)]}, {"frequency_cap_days": "0"}, {"include_previously_texted": "y"},
                   {"cities": "Braintree"}):
        # The refusal comes back on the same page with everything typed still there (name too).
        page = post_form(marketer, f"/campaignview/edit/{campaign_id}",
                         campaign_form(campaign, name="Renamed while refused", **change),
                         follow_redirects=True).get_data(as_text=True)
        assert "scheduled and its audience is planned: Unschedule to edit" in page, change
        assert 'value="Renamed while refused"' in page and "Hi {first_name|there}, Matt from Attack A Crack." in page
    refused = post_form(marketer, f"/campaignview/edit/{campaign_id}",
                        campaign_form(campaign, message_a="Changed text")).get_data(as_text=True)
    assert "Unschedule to edit them" in refused and "Changed text</textarea>" in refused
    # The REST API door: the same rules, the same words.
    api = marketer.put(f"/api/v1/campaign/{campaign_id}", json={"lists": [new_id], "name": "x"},
                       headers=bearer("marketer"))
    assert api.status_code == 409 and "Unschedule to edit lists" in api.get_json()["message"]["form"]
    api = marketer.put(f"/api/v1/campaign/{campaign_id}", json={"message_a": "Changed"}, headers=bearer("marketer"))
    assert api.status_code == 409 and "Unschedule to edit them" in api.get_json()["message"]["form"]
    # Sending settings may still change: the sender reads them as it goes.
    post_form(marketer, f"/campaignview/edit/{campaign_id}", campaign_form(campaign, daily_limit="50"))
    api = marketer.put(f"/api/v1/campaign/{campaign_id}", json={"window_days": [0, 1, 2, 3, 4, 5]},
                       headers=bearer("marketer"))
    assert api.status_code == 200 and api.get_json()["result"]["window_days"] == ["0", "1", "2", "3", "4", "5"]
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    assert [lst.name for lst in campaign.lists] == ["Old list"] and campaign.frequency_cap_days == 30
    assert not campaign.filters and campaign.daily_limit == 50 and campaign.name == "Spring"
    assert campaign.window_days == "0,1,2,3,4,5" and campaign.variants[0].template.startswith("Hi {first_name")
    assert not campaign.include_previously_texted

    # Unschedule (through the status API here): back to draft, the plan dropped; now the edit takes.
    unscheduled = marketer.post(f"/api/v1/campaign_status/{campaign_id}", json={"status": "draft"},
                                headers=bearer("marketer"))
    assert unscheduled.status_code == 200 and unscheduled.get_json()["status"] == "draft"
    assert recipients(db, campaign_id) == []
    post_form(marketer, f"/campaignview/edit/{campaign_id}", campaign_form(campaign, lists=[str(new_id)]))
    post_form(marketer, f"/campaignview/transition/{campaign_id}/scheduled")
    run_jobs()
    post_form(marketer, f"/campaignview/transition/{campaign_id}/running")
    run_jobs()
    campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM)
    assert sent_to(fake) == phones(2, start=100)


def test_a_scheduled_campaign_can_be_cancelled_and_texts_nobody(app, db, fake, client_for, post_form, run_jobs):
    lst = ContactList(name="L")
    for phone in phones(2):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst])
    campaign_id = campaign.id
    campaigns.change_status(campaign_id, "scheduled")
    campaigns.plan_audience(campaign_id)
    page = client_for("marketer").get(f"/campaignview/show/{campaign_id}").get_data(as_text=True)
    assert "Unschedule (back to draft)" in page and ">\n      Cancel</button>" in page
    post_form(client_for("marketer"), f"/campaignview/transition/{campaign_id}/cancelled")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id).status == "cancelled"
    assert {(r.status, r.exclusion_reason) for r in recipients(db, campaign_id)} == {("skipped", "cancelled")}
    with pytest.raises(CampaignError, match="A cancelled campaign cannot become running"):
        campaigns.change_status(campaign_id, "running")
    assert campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM) == 0 and fake.sent == []


def test_a_plan_job_that_runs_after_unschedule_plans_nothing(db):
    """The plan job was queued by Schedule; Unschedule came first. (A job already planning holds
    the campaign row until it commits, so Unschedule waits for it and then drops its plan.)"""
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", lists=[lst])
    campaign = make_campaign(db, [lst])
    campaigns.change_status(campaign.id, "scheduled")
    campaigns.change_status(campaign.id, "draft")  # before the plan job ran
    assert campaigns.plan_audience(campaign.id) is None  # the job finds a draft and plans nothing
    assert recipients(db, campaign) == []
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).planned_at is None


# --- Schedule refuses a message nobody wrote -------------------------------------------------------

def test_schedule_refuses_the_untouched_default_message_at_every_door(db, client_for, post_form):
    lst = ContactList(name="Homeowners")
    db.session.add(lst)
    contact = add_contact(db, "+16175551001", first="Jon", lists=[lst])
    db.session.commit()
    marketer = client_for("marketer")
    post_form(marketer, "/campaignview/add", {
        "name": "Untouched", "lists": str(lst.id), "sending_number": NUMBER, "daily_limit": "125",
        "window_days": "0,1,2,3,4", "window_start": "09:00", "window_end": "17:00", "frequency_cap_days": "30",
        "append_opt_out_line": "y", "message_a": campaigns.DEFAULT_TEMPLATE})
    from_form = db.session.scalars(select(Campaign).filter_by(name="Untouched")).one()
    assert "Hi Jon,\nReply STOP to opt out." in marketer.get(f"/campaignview/show/{from_form.id}").get_data(as_text=True)
    page = post_form(marketer, f"/campaignview/transition/{from_form.id}/scheduled", follow_redirects=True)
    assert "Variant A still has the default message" in page.get_data(as_text=True)
    marketer.post("/contactview/action_post", data={"action": "text_selected", "csrf_token": csrf(marketer),
                                                     "rowid": [str(contact.id)]})
    from_bulk = db.session.scalars(select(Campaign).where(Campaign.name.like("Text 1 selected%"))).one()
    api = marketer.post(f"/api/v1/campaign_status/{from_bulk.id}", json={"status": "scheduled"},
                        headers=bearer("marketer"))
    assert api.status_code == 409 and "Write the text to send" in api.get_json()["message"]
    db.session.expire_all()
    assert {c.status for c in db.session.scalars(select(Campaign))} == {"draft"}
    variant = db.session.get(Campaign, from_form.id).variants[0]
    post_form(marketer, f"/campaignvariantview/edit/{variant.id}",
              {"campaign": str(from_form.id), "label": "A", "template": "Hi {first_name|there}, Matt here."})
    post_form(marketer, f"/campaignview/transition/{from_form.id}/scheduled")
    db.session.expire_all()
    assert db.session.get(Campaign, from_form.id).status == "scheduled"


# --- variants frozen, deletes that keep the record, claimed texts that never leak ---------------

def test_a_variant_cannot_be_moved_out_of_or_into_a_running_campaign(db, client_for, post_form):
    lst = ContactList(name="L")
    running = make_campaign(db, [lst], name="Running", status="running", variants=("Original A",))
    draft = make_campaign(db, [lst], name="Draft", variants=("Draft A", "Draft B"))
    scheduled = make_campaign(db, [lst], name="Scheduled", status="scheduled", variants=("Sched A",))
    ran_variant, draft_b = running.variants[0], draft.variants[1]
    ids = {"running": running.id, "draft": draft.id, "scheduled": scheduled.id}
    marketer = client_for("marketer")
    attempts = [
        (f"/campaignvariantview/edit/{ran_variant.id}", {"campaign": str(ids["draft"]), "label": "C",
                                                        "template": "Original A"}, "running campaign"),
        (f"/campaignvariantview/edit/{draft_b.id}", {"campaign": str(ids["running"]), "label": "B",
                                                    "template": "Draft B"}, "running campaign"),
        (f"/campaignvariantview/edit/{ran_variant.id}", {"campaign": str(ids["running"]), "label": "A",
                                                        "template": "Changed"}, "clone it instead"),
        ("/campaignvariantview/add", {"campaign": str(ids["scheduled"]), "label": "B", "template": "New B"},
         "Unschedule to edit them"),
        (f"/campaignvariantview/delete/{ran_variant.id}", {}, "clone it instead"),
    ]
    for url, data, message in attempts:
        page = post_form(marketer, url, data, follow_redirects=True).get_data(as_text=True)
        assert message in page, url
    db.session.expire_all()
    by_campaign = {c.name: [(v.label, v.template) for v in c.variants] for c in db.session.scalars(select(Campaign))}
    assert by_campaign == {"Running": [("A", "Original A")], "Draft": [("A", "Draft A"), ("B", "Draft B")],
                           "Scheduled": [("A", "Sched A")]}
    # A draft's variants stay free to change.
    post_form(marketer, f"/campaignvariantview/edit/{draft_b.id}",
              {"campaign": str(ids["draft"]), "label": "B", "template": "Draft B, rewritten"})
    db.session.expire_all()
    assert db.session.get(CampaignVariant, draft_b.id).template == "Draft B, rewritten"


def test_a_running_campaign_cannot_be_deleted_and_its_claimed_text_never_goes_out_later(
        app, db, fake, client_for, post_form, run_jobs, sender_clock):
    from app import messages
    from app.models import AuditLog

    last_tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))  # before the real clock
    lst = ContactList(name="L")
    for phone in phones(2):
        add_contact(db, phone, lists=[lst])
    campaign = make_campaign(db, [lst], name="Doomed")
    campaign_id = campaign.id
    planned_and_running(db, campaign)
    assert campaigns.send_due_messages(campaign_id, now=last_tuesday, max_messages=1) == 1
    claimed = campaigns.claim_due(campaign_id, last_tuesday, limit=1)  # and the sender died before sending it
    assert len(claimed) == 1 and len(fake.sent) == 1

    marketer = client_for("marketer")
    page = post_form(marketer, f"/campaignview/delete/{campaign_id}", follow_redirects=True).get_data(as_text=True)
    assert "A running campaign cannot be deleted: Cancel it first" in page
    paused = marketer.post(f"/api/v1/campaign_status/{campaign_id}", json={"status": "paused"},
                           headers=bearer("marketer"))
    assert paused.status_code == 200
    page = post_form(marketer, f"/campaignview/delete/{campaign_id}", follow_redirects=True).get_data(as_text=True)
    assert "A paused campaign cannot be deleted" in page
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id) is not None

    post_form(marketer, f"/campaignview/transition/{campaign_id}/cancelled")
    db.session.expire_all()
    assert db.session.get(Message, claimed[0]).status == "cancelled"
    post_form(marketer, f"/campaignview/delete/{campaign_id}")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id) is None
    record = db.session.scalars(select(AuditLog).filter_by(action="delete", object_type="campaign_recipients")).one()
    assert record.username == "marketer" and record.changes["count"] == 2
    assert record.changes["by_status"] == {"sent": 1, "skipped": 1}
    assert [row[:2] for row in record.changes["texted"]] == [[phones(2)[0], "sent"]]
    assert db.session.scalars(select(AuditLog).filter_by(action="delete", object_type="campaigns")).one()

    # 23:30 in Boston: every recovery path runs; the claimed text is not a one-off and stays unsent.
    sender_clock("2026-11-25T04:30:00+00:00")
    messages.recover_sending(older_than=0)
    campaigns.recover_campaigns()
    run_jobs()
    assert len(fake.sent) == 1
    assert db.session.get(Message, claimed[0], populate_existing=True).status == "cancelled"


def test_pause_stops_texts_the_sender_had_already_claimed(app, db, fake):
    lst = ContactList(name="L")
    add_contact(db, "+16175551001", lists=[lst])
    campaign = make_campaign(db, [lst])
    planned_and_running(db, campaign)
    claimed = campaigns.claim_due(campaign.id, TUESDAY_10AM, limit=1)
    campaigns.change_status(campaign.id, "paused")
    from app.messages import send_message

    assert send_message(claimed[0]) is None and fake.sent == []
    campaigns.change_status(campaign.id, "running")
    assert send_message(claimed[0]) == "sent" and sent_to(fake) == ["+16175551001"]


# --- Declare winner: a confirmation that shows what it will do, does exactly that, and undoes -----

def test_declare_winner_confirms_the_numbers_moves_what_it_showed_is_audited_and_undoes(
        app, db, fake, client_for, post_form, run_jobs, sender_clock):
    import html
    import re

    from app.models import AuditLog

    # The worker's own sender finds the window closed (20:00); the test sends at 10:00 by hand.
    sender_clock(TUESDAY_10AM.replace(hour=20).isoformat())
    lst = ContactList(name="L")
    people = phones(20)
    for i, phone in enumerate(people):
        add_contact(db, phone, first=f"P{i}", lists=[lst])
    campaign = make_campaign(db, [lst], variants=("Alpha {first_name}", "Bravo {first_name}"))
    campaign_id = campaign.id
    alpha_id, bravo_id = (v.id for v in campaign.variants)
    planned_and_running(db, campaign)
    campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM, max_messages=4)  # people 0-3: A, B, A, B
    for person in (0, 1, 3):  # A: 1 of 2 replied; B: 2 of 2
        fake.reply(people[person], "Interested")
    deliver_webhooks(app, fake)
    run_jobs()

    # By hand: A 2 sent, 1 replied; B 2 sent, 2 replied. Fisher's exact on [[1, 1], [2, 0]]:
    # P(x) = C(2,x) C(2,3-x) / C(4,3) = 2/4, 2/4 for x = 1, 2, so p = 1.0. Not yet texted: people
    # 4-19, of whom 8 are on A (4, 6, ..., 18): 8 move to B.
    marketer = client_for("marketer")
    show = marketer.get(f"/campaignview/show/{campaign_id}").get_data(as_text=True)
    assert f"/campaignview/winner/{campaign_id}/{bravo_id}" in show
    page = marketer.get(f"/campaignview/winner/{campaign_id}/{bravo_id}").get_data(as_text=True)
    assert [row[:6] for row in page_variant_rows(page.replace('id="winner-variants"', 'id="campaign-variants"')
                                                 .replace(' class="success"', ""))] == [
        ["A", "2", "0", "0", "1", "0"], ["B (winner)", "2", "0", "0", "2", "0"]]
    assert "Fisher&#39;s exact: p = 1.0000" in page or "Fisher's exact: p = 1.0000" in page
    assert "The difference is not significant" in page
    assert "at least 100 per variant are needed (WINNER_MIN_SENT); sent so far: A (2), B (2)" in page
    assert re.search(r"8 recipients not yet texted will get variant B:\s+8 from A\.", page)
    assert {r.variant_id for r in recipients(db, campaign_id) if r.status == "queued" and r.position % 2} == {alpha_id}

    # A text goes out between the confirmation and the click: the confirmation is stale, nothing moves.
    fingerprint = html.unescape(re.search(r'name="fingerprint" value="([^"]+)"', page).group(1))
    campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM, max_messages=1)  # person 4 (A)
    stale = post_form(marketer, f"/campaignview/winner/{campaign_id}/{bravo_id}", {"fingerprint": fingerprint},
                      follow_redirects=True).get_data(as_text=True)
    assert "The numbers changed since the confirmation was shown" in stale
    assert "7 recipients not yet texted will get variant B" in stale  # shown again, as it now is
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id).winner_variant_id is None

    fingerprint = html.unescape(re.search(r'name="fingerprint" value="([^"]+)"', stale).group(1))
    post_form(marketer, f"/campaignview/winner/{campaign_id}/{bravo_id}", {"fingerprint": fingerprint})
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id).winner_variant_id == bravo_id
    queued = [r for r in recipients(db, campaign_id) if r.status == "queued"]
    assert len(queued) == 15 and {r.variant_id for r in queued} == {bravo_id}
    record = db.session.scalars(select(AuditLog).filter_by(action="declare_winner")).one()
    assert record.username == "marketer" and record.object_id == str(campaign_id)
    assert record.changes["winner"] == "B" and record.changes["moved"] == {"A": 7}
    # Now A 3 sent, 1 replied; B 2 and 2: [[1, 2], [2, 0]], P(x) = C(3,x) C(2,3-x) / C(5,3) = 3, 6, 1 (/10)
    # for x = 1..3; two-sided: (3 + 1) / 10 = 0.4.
    assert record.changes["p_value"] == pytest.approx(0.4) and len(record.changes["warnings"]) == 2
    assert record.changes["variants"] == {"A": {"sent": 3, "replied": 1}, "B": {"sent": 2, "replied": 2}}

    # Undo: everyone not yet texted is back on the variant the plan gave them, and it is audited.
    post_form(marketer, f"/campaignview/undo_winner/{campaign_id}")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign_id).winner_variant_id is None
    queued = [r for r in recipients(db, campaign_id) if r.status == "queued"]
    assert [(r.position, r.variant_id) for r in queued] == [
        (p, alpha_id if p % 2 else bravo_id) for p in range(6, 21)]
    assert db.session.scalars(select(AuditLog).filter_by(action="undo_winner")).one().changes["restored"] == 7
    campaigns.send_due_messages(campaign_id, now=TUESDAY_10AM)
    bodies = {m["to"][0]: m["text"].split(" ")[0] for m in fake.sent}
    assert [bodies[phone] for phone in people] == ["Alpha", "Bravo"] * 10


def test_declaring_the_trailing_variant_the_winner_says_which_one_is_ahead(app):
    from app.winners import _warnings

    results = {"p_value": 0.6, "significant": False, "test": "Fisher's exact", "variants": [
        {"label": "A", "sent": 64, "reply_rate": 3 / 64}, {"label": "B", "sent": 62, "reply_rate": 2 / 62}]}
    with app.app_context():
        trailing, leading = _warnings(results, "B"), _warnings(results, "A")
    assert "Variant B has the lower reply rate: A is ahead (4.7% against 3.2%)." in trailing
    assert not any("lower reply rate" in w for w in leading)
    assert all("this one ahead by chance" not in w for w in trailing + leading)


def test_existing_customers_are_excluded_unless_the_campaign_includes_them(db, client_for):
    from app.models import QbCustomer

    lst = ContactList(name="L")
    prospect = add_contact(db, "+16175551001", lists=[lst])
    customer = add_contact(db, "+16175551002", first="Cust", lists=[lst])
    former = add_contact(db, "+16175551003", first="Former", lists=[lst])
    db.session.add_all([QbCustomer(qb_id="1", contact_id=customer.id, match="phone"),
                        QbCustomer(qb_id="2", contact_id=former.id, match="phone", deleted=True)])
    campaign = make_campaign(db, [lst])
    campaigns.change_status(campaign.id, "scheduled")
    assert campaigns.plan_audience(campaign.id) == {"queued": 2, "existing_customer": 1}
    excluded = [r for r in recipients(db, campaign) if r.status == "excluded"]
    assert [(r.contact_id, r.exclusion_reason) for r in excluded] == [(customer.id, "existing_customer")]
    assert {r.contact_id for r in recipients(db, campaign) if r.status == "queued"} == {prospect.id, former.id}
    page = client_for("admin").get(f"/campaignview/show/{campaign.id}").get_data(as_text=True)
    assert "Left out: Existing customer" in page
    included = make_campaign(db, [lst], name="Everyone", include_existing_customers=True)
    campaigns.change_status(included.id, "scheduled")
    assert campaigns.plan_audience(included.id) == {"queued": 3}
    assert campaigns.clone_campaign(included.id).include_existing_customers is True
