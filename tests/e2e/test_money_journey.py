"""The owner's morning: `crm run` connects to the sandbox QuickBooks, the worker mirrors its books,
and the home page shows the money waiting; he follows a number to its rows and schedules a job."""
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from app import display
from tests.e2e.conftest import ADMIN_PASSWORD, sign_in


def wait_for(page, url, selector, text, timeout=180):
    """Reload until the element holds the text (the worker syncs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator(selector).count() and text in page.locator(selector).inner_text():
            return
        time.sleep(1)
    raise AssertionError(f"{selector} never showed {text!r}: {page.locator(selector).inner_text()!r}")


def test_money_waiting_shows_the_sandbox_books_and_a_job_gets_scheduled(live, page):
    base = live["url"]
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    # The sandbox company's dates count from the fake's (UTC) day; the home page counts business days.
    shift = (datetime.now(ZoneInfo("America/New_York")).date() - datetime.now(timezone.utc).date()).days
    # Accepted, not invoiced, not scheduled: Karen 4 days ago ($3,300), Maria 2 ($4,850), Kevin today ($2,200).
    wait_for(page, base + "/", "#money-unscheduled-count", "3")
    summary = page.locator("#money-unscheduled-summary").inner_text()
    assert "$10,350.00 of work" in summary
    assert "2 accepted over 24 h ago" in summary
    rows = page.locator("#money-unscheduled tr").all_inner_texts()
    assert [r.split("\t")[0].strip() for r in rows] == ["Karen Doyle", "Maria Santos", "Kevin Murphy"]
    # Open: James $3,100 (5 days), Susan $1,450 (1), Michael $9,800 (12), Thomas $1,875 (2).
    assert page.locator("#money-open-estimates").inner_text().strip() == \
        f"4 for $16,225.00, oldest {12 + shift} days"
    # Past due (due 15 days after the invoice): Daniel $1,600 (30 days late), Elaine $2,750 (7).
    assert page.locator("#money-past-due").inner_text().strip() == \
        f"2 owing $4,350.00, oldest {30 + shift} days late"
    # Payments: Linda $5,200 and Kevin $800 this month; Daniel $2,000 and Reilly $12,400 last month on
    # the day 20 days before the 1st, counted when today's day of the month has reached it.
    today = date.today()
    last_month_day = today.replace(day=1) - timedelta(days=20)
    last_month = "$14,400.00" if last_month_day.day <= today.day else "$0.00"
    payments = page.locator("#money-payments").inner_text()
    assert "$6,000.00" in payments and f"{last_month} the same days last month" in payments

    page.click("text=Open estimates")
    page.wait_for_load_state()
    listed = page.content()
    for doc in ("1003", "1004", "1005", "1010"):
        assert f">{doc}<" in listed or f"{doc}" in listed, doc
    assert "1006" not in listed and "1001" not in listed  # rejected, accepted

    page.goto(base + "/")
    page.click("#money-unscheduled >> text=Karen Doyle")
    page.wait_for_load_state()
    assert "Estimate #1012" in page.content() and "3300" in page.content().replace(",", "")
    job_url = page.url
    page.goto(job_url.replace("/show/", "/edit/"))
    page.fill("textarea[name=notes]", "Crack in the north wall; bring the injection kit")
    # What picking a day in the date picker leaves in its field.
    page.eval_on_selector("input[name=scheduled_for]", "(input, day) => { input.value = day; }",
                          (date.today() + timedelta(days=3)).isoformat())
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()
    page.goto(job_url)
    shown = page.locator("body").inner_text()
    assert "Scheduled" in shown and display.day(date.today() + timedelta(days=3)) in shown  # e.g. "Dec 3, 2026"
    assert "injection kit" in shown and "Balance due" in shown
    wait_for(page, base + "/", "#money-unscheduled-count", "2", timeout=30)
