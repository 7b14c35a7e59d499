"""Money on screens and over the API: the home page's Money waiting (numbers worked out by hand),
the rows behind each number, staff scoping at every door, jobs edited, ambiguous customers reviewed."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import func, select

from app.models import AuditLog, Contact, Estimate, Job, QbCustomer
from app.money import run_sync
from tests.conftest import user_id
from tests.qb_records import MemorySource, customer, estimate, invoice, payment


def local_today(app):
    return datetime.now(ZoneInfo(app.config["CAMPAIGN_TIMEZONE"])).date()


def _iso(day):
    return day.isoformat()


@pytest.fixture
def books(app, db):
    """Two customers: Minnie (Staff "staff") and Theodora (Staff "staff2"), each with money."""
    today = local_today(app)
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    source = MemorySource()
    source.put("Customer", customer(1, "Minnie", "Mine", phones={"PrimaryPhone": "617-555-0101"}))
    source.put("Customer", customer(2, "Theodora", "Theirs", phones={"PrimaryPhone": "617-555-0102"}))
    # Minnie: accepted 3 days ago (late), accepted today (not late), a pending estimate 10 days old.
    source.put("Estimate", estimate(10, 1, 1500, status="Accepted", accepted=_iso(today - timedelta(days=3))))
    source.put("Estimate", estimate(11, 1, 250.50, status="Accepted", accepted=_iso(today)))
    source.put("Estimate", estimate(12, 1, 800, txn_date=_iso(today - timedelta(days=10)), doc="M12"))
    # Theodora: two pending estimates, 4 and 20 days old; one deleted pending estimate (not counted).
    source.put("Estimate", estimate(20, 2, 1000, txn_date=_iso(today - timedelta(days=4)), doc="T20"))
    source.put("Estimate", estimate(21, 2, 2000, txn_date=_iso(today - timedelta(days=20)), doc="T21"))
    source.put("Estimate", estimate(22, 2, 999, txn_date=_iso(today - timedelta(days=30)), doc="T22"))
    # Invoices: Minnie owes 300 of 500, 9 days late; Theodora 700, 2 days late; one not yet due; one paid.
    source.put("Invoice", invoice(30, 1, 500, 300, _iso(today - timedelta(days=9))))
    source.put("Invoice", invoice(31, 2, 700, 700, _iso(today - timedelta(days=2))))
    source.put("Invoice", invoice(32, 2, 400, 400, _iso(today + timedelta(days=5))))
    source.put("Invoice", invoice(33, 1, 100, 0, _iso(today - timedelta(days=40))))
    # Payments: this month 200 (Minnie, today) + 100 (Theodora, the 1st); last month: 50 on the 1st
    # (counted) and 75 on a day after today's day of the month (not counted, when such a day exists).
    source.put("Payment", payment(40, 1, _iso(today), [(30, 200)]))
    source.put("Payment", payment(41, 2, _iso(first), [(33, 100)]))
    source.put("Payment", payment(42, 1, _iso(last_month_end.replace(day=1)), [(33, 50)]))
    late_day = today.day + 1
    if late_day <= last_month_end.day:
        source.put("Payment", payment(43, 2, _iso(last_month_end.replace(day=late_day)), [(33, 75)]))
    run_sync(source=source)
    source.delete("Estimate", "22")
    run_sync(source=source)
    mine = db.session.scalar(select(Contact).filter_by(phone="+16175550101"))
    theirs = db.session.scalar(select(Contact).filter_by(phone="+16175550102"))
    mine.assigned_user_id, theirs.assigned_user_id = user_id("staff"), user_id("staff2")
    db.session.commit()
    return {"today": today, "mine": mine.id, "theirs": theirs.id, "source": source}


def _text(response):
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _cell(html, element_id):
    start = html.index(f'id="{element_id}"')
    return html[html.index(">", start) + 1:html.index("</", start)]


def test_money_waiting_shows_the_numbers_worked_out_by_hand(app, books, client_for):
    html = _text(client_for("admin").get("/"))
    assert html.index("Money waiting") < html.index("Texts sent today")
    # To-dos: Minnie's three, follow-ups of T20 and T21; T22's closed when it was deleted.
    assert _cell(html, "todos-today-count") == "5" and "#T22" not in html
    assert _cell(html, "money-unscheduled-count") == "2"
    summary = html[html.index('id="money-unscheduled-summary"'):html.index("</p>", html.index('id="money-unscheduled-summary"'))]
    assert "$1,750.50 of work" in summary and "1 accepted over 24 h ago" in summary
    rows = html[html.index('id="money-unscheduled"'):html.index("</table>", html.index('id="money-unscheduled"'))]
    assert "Minnie Mine" in rows and "$1,500.00" in rows and "3 days since accepted" in rows
    assert "$250.50" in rows and "0 days since accepted" in rows
    assert rows.count("(over 24 h)") == 1 and rows.count('class="danger"') == 1
    # Open: 800 (10 days) + 1000 (4 days) + 2000 (20 days); the deleted one is not counted.
    assert _cell(html, "money-open-estimates") == "3 for $3,800.00, oldest 20 days"
    # Past due: 300 (9 days late) + 700 (2 days late); not yet due and paid ones are not.
    assert _cell(html, "money-past-due") == "2 owing $1,000.00, oldest 9 days late"
    payments = html[html.index('id="money-payments"'):html.index("</td>", html.index('id="money-payments"'))]
    assert "$300.00</a>" in payments and "$50.00</a>" in payments


def test_staff_see_only_their_contacts_money_on_the_home_page(app, books, client_for):
    html = _text(client_for("staff").get("/"))
    # Minnie's automatic to-dos: schedule the job accepted 3 days ago, follow up the 10-day-old
    # estimate, chase the invoice 9 days late; Theodora's are not shown.
    assert _cell(html, "todos-today-count") == "3"
    assert "Schedule Minnie Mine" in html and "Follow up on estimate #M12" in html and "Chase Minnie Mine" in html
    assert "#T20" not in html
    assert _cell(html, "money-unscheduled-count") == "2"
    assert _cell(html, "money-open-estimates") == "1 for $800.00, oldest 10 days"
    assert _cell(html, "money-past-due") == "1 owing $300.00, oldest 9 days late"
    payments = html[html.index('id="money-payments"'):html.index("</td>", html.index('id="money-payments"'))]
    assert "$200.00</a>" in payments and "$50.00</a>" in payments
    other = _text(client_for("staff2").get("/"))
    assert _cell(other, "money-unscheduled-count") == "0" and "Minnie" not in other
    assert _cell(other, "money-open-estimates") == "2 for $3,000.00, oldest 20 days"


@pytest.mark.parametrize("link, present, absent", [
    ("/unscheduledjobview/list/", ["Estimate #E10", "Estimate #E11"], ["M12"]),
    ("/openestimateview/list/", ["M12", "T20", "T21"], ["T22", "E10"]),
    ("/pastdueinvoiceview/list/", ["I30", "I31"], ["I32", "I33"]),
])
def test_each_number_links_to_the_rows_behind_it(app, books, client_for, link, present, absent):
    html = _text(client_for("admin").get("/"))
    assert f'href="{link}"' in html
    listed = _text(client_for("admin").get(link))
    for doc in present:
        assert doc in listed, doc
    for doc in absent:
        assert doc not in listed, doc


def test_staff_cannot_reach_another_users_money_through_screens_api_or_info(app, db, books, client_for):
    staff = client_for("staff")
    headers = {"Authorization": f"Bearer {create_access_token(identity=str(user_id('staff')), fresh=True)}"}
    theirs_estimate = db.session.scalar(select(Estimate.id).where(Estimate.qb_id == "20"))
    mine_estimate = db.session.scalar(select(Estimate.id).where(Estimate.qb_id == "12"))
    for page in ("/estimateview/list/", "/invoiceview/list/", "/paymentview/list/", "/jobview/list/",
                 "/openestimateview/list/", "/pastdueinvoiceview/list/", "/monthpaymentview/list/"):
        html = _text(staff.get(page))
        assert "Theodora" not in html and "T20" not in html and "I31" not in html, page
    assert "M12" in _text(staff.get("/estimateview/list/"))
    assert staff.get(f"/estimateview/show/{theirs_estimate}").status_code == 404
    assert staff.get(f"/estimateview/show/{mine_estimate}").status_code == 200
    for resource, count in (("estimate", 3), ("invoice", 2), ("payment", 2), ("job", 2)):
        body = staff.get(f"/api/v1/{resource}/", headers=headers).get_json()
        assert body["count"] == count, resource
        assert all(row["contact"]["id"] == books["mine"] for row in body["result"]), resource
        info = staff.get(f"/api/v1/{resource}/_info", headers=headers).get_json()
        assert "Theodora" not in str(info), resource
    assert staff.get(f"/api/v1/estimate/{theirs_estimate}", headers=headers).status_code == 404
    assert staff.get(f"/api/v1/estimate/{mine_estimate}", headers=headers).status_code == 200
    admin = {"Authorization": f"Bearer {create_access_token(identity=str(user_id('admin')), fresh=True)}"}
    assert staff.get("/api/v1/estimate/", headers=admin).get_json()["count"] == 6  # the deleted one too, marked


def test_a_job_is_scheduled_from_its_page_and_audited(app, db, books, client_for, post_form):
    staff = client_for("staff")
    job = db.session.scalar(select(Job).join(Estimate).where(Estimate.qb_id == "10"))
    day = books["today"] + timedelta(days=2)
    response = post_form(staff, f"/jobview/edit/{job.id}", {"status": "Accepted", "scheduled_for": day.isoformat(),
                                                              "notes": "Bring the pump"})
    assert response.status_code == 302
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert (job.status, job.scheduled_for, job.notes) == ("Scheduled", day, "Bring the pump")
    assert db.session.scalar(select(func.count(AuditLog.id)).where(
        AuditLog.object_type == "jobs", AuditLog.object_id == str(job.id), AuditLog.action == "update")) == 1
    assert _cell(_text(staff.get("/")), "money-unscheduled-count") == "1"
    bad = post_form(staff, f"/jobview/edit/{job.id}", {"status": "Teleported", "scheduled_for": day.isoformat()})
    assert bad.status_code == 200 and "Not a valid choice" in bad.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Job, job.id).status == "Scheduled"
    theirs = post_form(client_for("staff2"), f"/jobview/edit/{job.id}", {"status": "Done"})
    assert theirs.status_code == 404


def test_the_contact_page_shows_its_money(app, books, client_for):
    html = _text(client_for("staff").get(f"/contactview/show/{books['mine']}"))
    for piece in ("Estimates", "Invoices", "Payments", "Jobs", "M12", "I30"):
        assert piece in html, piece


def test_an_ambiguous_customer_is_settled_by_a_person_picking_a_candidate(app, db, client_for, post_form):
    one = Contact(first_name="Dee", last_name="Dunn", phone="+16175550104")
    two = Contact(first_name="Eve", last_name="Dunn", phone="+16175550105")
    db.session.add_all([one, two])
    db.session.commit()
    source = MemorySource()
    source.put("Customer", customer(4, "Dee", "Dunn", phones={"PrimaryPhone": "617-555-0104",
                                                               "Mobile": "617-555-0105"}))
    source.put("Estimate", estimate(50, 4, 640))
    run_sync(source=source)
    qb = db.session.scalar(select(QbCustomer))
    assert qb.match == "ambiguous" and db.session.scalar(select(Estimate.contact_id)) is None
    admin = client_for("admin")
    listed = _text(admin.get("/customerreviewview/list/"))
    assert "Dee Dunn" in listed and "Pick the contact" in listed
    page = _text(admin.get(f"/customerreviewview/show/{qb.id}"))
    assert "Eve Dunn" in page and "Dee Dunn" in page
    stranger = Contact(first_name="Zed", phone="+16175550199")
    db.session.add(stranger)
    db.session.commit()
    refused = post_form(admin, f"/customerreviewview/choose/{qb.id}", {"contact_id": stranger.id})
    assert refused.status_code == 302
    db.session.expire_all()
    assert db.session.get(QbCustomer, qb.id).contact_id is None
    chosen = post_form(admin, f"/customerreviewview/choose/{qb.id}", {"contact_id": one.id})
    assert chosen.status_code == 302
    db.session.expire_all()
    qb = db.session.get(QbCustomer, qb.id)
    assert (qb.match, qb.contact_id) == ("chosen", one.id)
    assert db.session.scalar(select(Estimate.contact_id)) == one.id
    after = _text(admin.get("/customerreviewview/list/"))
    assert "is now linked to Dee Dunn" in after and "Pick the contact" not in after
    assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.object_type == "qb_customers",
                                                                  AuditLog.action == "update")) == 1
    run_sync(source=source, now=None)  # a later sync keeps the person's choice
    db.session.expire_all()
    assert db.session.get(QbCustomer, qb.id).contact_id == one.id
    assert client_for("staff").get(f"/customerreviewview/show/{qb.id}").status_code in (302, 403)

