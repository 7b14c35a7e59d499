"""What every screen looks like, in Chromium against `crm run`: the navigation bar on one row
at 1366 px for each role and collapsed on a phone, values shown for people, the 404 and 403
pages inside the layout, and a save that lands on the saved record. Every page visited is
saved as a screenshot in test-artifacts/ (1366x900 and 390x844)."""
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, sign_in
from tests.e2e.test_account_probes import create_user

DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
PASSWORD = "Look-journey-pass-9"
ROLES = {"admin": ADMIN_PASSWORD, "lookmarketer": PASSWORD, "lookstaff": PASSWORD}
TOP = {"admin": ["Home", "Inbox", "Contacts", "Lists", "Campaigns", "Imports", "Money", "Settings"],
       "lookmarketer": ["Home", "Inbox", "Contacts", "Lists", "Campaigns", "Imports", "Money", "Settings"],
       "lookstaff": ["Home", "Inbox", "Contacts", "Money"]}


def shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"look-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def users(live):
    create_user(live["url"], "lookmarketer", "Marketer", PASSWORD)
    create_user(live["url"], "lookstaff", "Staff", PASSWORD)
    return ROLES


def signed_in(browser, base, username, password, viewport):
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(60000)
    sign_in(page, base, username, password)
    return page


@pytest.mark.parametrize("username", list(ROLES))
def test_the_navigation_is_one_row_at_1366_px_in_the_order_of_daily_use(live, browser, users, username):
    page = signed_in(browser, live["url"], username, users[username], DESKTOP)
    try:
        items = page.locator("#main-menu > li")
        labels = [re.sub(r"\s*\d+$", "", re.sub(r"\s+", " ", t).strip()) for t in items.all_inner_texts()]
        assert labels == TOP[username]
        tops = {round(box["y"]) for box in (items.nth(i).bounding_box() for i in range(items.count()))}
        assert len(tops) == 1, f"the menu wraps onto {len(tops)} rows"
        assert page.locator(".crm-navbar").bounding_box()["height"] < 60
        assert page.locator("#global-search input[name=q]").is_visible()
        assert "Security" not in page.locator(".crm-navbar").inner_text()
        shoot(page, f"{username}-home-1366")
        if username == "admin":
            page.click("#main-menu >> text=Settings")
            settings = page.locator("#main-menu .open .dropdown-menu").inner_text()
            for item in ("Users", "Roles", "Audit log", "Failed events", "Opt-outs", "Integrations"):
                assert item in settings
            for internal in ("Base Permissions", "Views/Menus", "Permission on Views/Menus"):
                assert internal not in settings
            shoot(page, "admin-settings-menu-1366")
    finally:
        page.context.close()


@pytest.mark.parametrize("username", list(ROLES))
def test_on_a_phone_the_menu_collapses_and_tables_scroll_inside_their_box(live, browser, users, username):
    page = signed_in(browser, live["url"], username, users[username], PHONE)
    try:
        assert not page.locator("#main-menu").is_visible()
        page.click(".navbar-toggle")
        page.locator("#main-menu").wait_for(state="visible")
        shoot(page, f"{username}-menu-390")
        page.goto(live["url"] + "/contactview/list/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"
        shoot(page, f"{username}-contacts-390")
        if username != "lookstaff":  # staff have no contacts here, so their list has no table
            phone_header = page.locator(".contact-list th", has_text="Phone")
            assert phone_header.is_visible() and phone_header.bounding_box()["x"] + 40 <= PHONE["width"]
        page.goto(live["url"] + "/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"Home is {width} px wide on a {PHONE['width']} px screen"
        shoot(page, f"{username}-home-390")
    finally:
        page.context.close()


@pytest.fixture(scope="module")
def database(live):
    engine = create_engine(live["env"]["DATABASE_URL"])
    yield engine
    engine.dispose()


def test_a_new_contact_lands_on_its_page_formatted_in_the_company_zone_without_none(live, browser, users, database):
    base = live["url"]
    page = signed_in(browser, base, "lookmarketer", PASSWORD, DESKTOP)
    try:
        page.goto(base + "/contactview/add")
        assert "New contact" in page.inner_text("body")
        page.fill("input[name=first_name]", "MARY")
        page.fill("input[name=last_name]", "O'BRIEN")
        page.fill("input[name=phone]", "617.555.0163")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        assert re.search(r"/contactview/show/\d+$", page.url), page.url
        body = page.inner_text("body")
        assert "Contact saved" in body and "Added Row" not in body
        assert "O'Brien" in body and "(617) 555-0163" in body and "+16175550163" not in body
        assert not re.search(r"\bNone\b", body)
        # the list shows the stored UTC time in Boston time, to the minute
        contact_id = int(page.url.rsplit("/", 1)[1])
        with database.connect() as conn:
            created, received = conn.execute(text("SELECT created_at, name_as_received FROM contacts WHERE id = :id"),
                                             {"id": contact_id}).one()
        assert received == "MARY O'BRIEN"
        created = created if isinstance(created, datetime) else datetime.fromisoformat(created)
        local = created.replace(tzinfo=timezone.utc).astimezone(ZoneInfo("America/New_York"))
        expected = f"{local:%b} {local.day}, {local.year} {local.hour % 12 or 12}:{local:%M} {local:%p}"
        page.goto(base + "/contactview/list/?_flt_0_last_name=O'Brien")
        row = page.locator("tr", has_text="(617) 555-0163").inner_text()
        assert expected in row, (expected, row)
        assert not re.search(r"\bNone\b", page.inner_text("body"))
        shoot(page, "marketer-contacts-1366")
    finally:
        page.context.close()


def test_404_and_403_pages_sit_in_the_layout_with_a_way_back(live, browser, users):
    base = live["url"]
    page = signed_in(browser, base, "lookstaff", PASSWORD, DESKTOP)
    try:
        response = page.goto(base + "/no/such/page")
        assert response.status == 404
        assert page.locator(".crm-navbar").is_visible() and "Page not found" in page.inner_text("h2")
        page.goto(base + "/contactview/list/")
        with page.expect_navigation():  # a followed link, so the browser says where it came from
            page.evaluate("location.href = '/no/such/page'")
        page.click("#error-back")
        page.wait_for_url(base + "/contactview/list/")
        shoot(page, "staff-404-1366")
        response = page.goto(base + "/auditlogview/list/")
        assert response.status == 403
        assert "Not allowed" in page.inner_text("h2") and page.locator(".crm-navbar").is_visible()
        shoot(page, "staff-403-1366")
        assert page.request.get(base + "/favicon.ico").status == 200
    finally:
        page.context.close()
