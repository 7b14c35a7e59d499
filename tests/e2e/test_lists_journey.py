"""A marketer's list day in headless Chromium: an Excel upload, the list with its member count, the
search box finding a phone typed as people write it, and the list's export. Every screen visited is
saved in test-artifacts/."""
import csv
import io
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, sign_in
from tests.e2e.test_campaign_journey import eventually, upload
from tests.e2e.test_journeys import create_user

PEOPLE = [("Mary", "O'Brien", 9786567092, "mary@example.com")] + [
    (f"Neighbour{i}", "Quincy", f"617-555-{i:04d}", f"n{i}@example.com") for i in range(1, 11)] + [
    ("@SUM(1)", "Formula", "(617) 555-0999", None)]


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"lists-{name}.png"), full_page=True)


def sql(live, query, **params):
    engine = create_engine(live["env"]["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return conn.execute(text(query), params).scalar()
    finally:
        engine.dispose()


def test_marketer_uploads_xlsx_sees_the_list_searches_a_formatted_phone_and_exports_it(live, page, browser,
                                                                                          tmp_path):
    base = live["url"]
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    create_user(page, base, "lena", "Marketer", "Lena-pass-1234")
    marketer = browser.new_context(accept_downloads=True, viewport={"width": 1366, "height": 900}).new_page()
    marketer.set_default_timeout(60000)
    sign_in(marketer, base, "lena", "Lena-pass-1234")

    workbook = Workbook()
    workbook.active.append(["First Name", "Last Name", "Phone", "Email"])
    for row in PEOPLE:
        workbook.active.append(list(row))
    path = tmp_path / "excel-leads.xlsx"
    workbook.save(path)
    upload(marketer, base, path, "Excel leads")
    assert "/importview/mapping/" in marketer.url
    assert "Mary" in marketer.content() and "9786567092" in marketer.content()
    shot(marketer, "1-xlsx-mapping")
    marketer.click("#import-mapping button[type=submit]")
    assert eventually(lambda: marketer.inner_text("#import-status") == "succeeded", 90), \
        marketer.inner_text("#import-progress")
    assert marketer.inner_text("#import-done") == marketer.inner_text("#import-total") == "12"
    shot(marketer, "2-xlsx-imported")

    list_id = sql(live, "SELECT id FROM lists WHERE name = 'Excel leads'")
    members = sql(live, "SELECT count(*) FROM list_members WHERE list_id = :id", id=list_id)
    assert members == 12
    marketer.goto(base + "/listview/list/")
    row = marketer.locator("tr", has_text="Excel leads")
    assert "12" in row.inner_text().split()
    shot(marketer, "3-lists")
    marketer.goto(f"{base}/listview/show/{list_id}")
    assert marketer.inner_text("#member-count") == str(members)
    assert marketer.locator("#members a", has_text="Mary O'Brien").count() == 1
    assert marketer.locator("#text-this-list").is_visible() and marketer.locator("#export-list").is_visible()
    shot(marketer, "4-list-page")

    marketer.fill("#global-search input[name=q]", "(978) 656-7092")
    marketer.press("#global-search input[name=q]", "Enter")
    marketer.wait_for_selector("#contact-results")
    assert marketer.locator("#contact-results a").all_inner_texts() == ["Mary O'Brien"]
    shot(marketer, "5-search-phone")
    marketer.click("#contact-results a")
    marketer.wait_for_load_state()
    assert "/contactview/show/" in marketer.url and "Mary" in marketer.content()
    shot(marketer, "6-contact-found")

    marketer.goto(f"{base}/listview/show/{list_id}")
    with marketer.expect_download() as download:
        marketer.click("#export-list")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0][:4] == ["id", "first_name", "last_name", "phone"] and len(rows) - 1 == members
    assert ["Mary", "O'Brien", "+19786567092"] in [r[1:4] for r in rows]
    assert ["'@SUM(1)", "Formula", "+16175550999"] in [r[1:4] for r in rows]
    audited = sql(live, "SELECT changes FROM audit_log WHERE action = 'export' AND username = 'lena' "
                        "ORDER BY id DESC LIMIT 1")
    assert '"count": 12' in str(audited).replace("'", '"')
    shot(marketer, "7-after-export")

    # Home: the checklist ticked the import from its row; OpenPhone stays to do (the sandbox runs).
    marketer.goto(base + "/")
    assert marketer.get_attribute("#getting-started [data-step=import]", "data-done") == "yes"
    assert marketer.get_attribute("#getting-started [data-step=openphone]", "data-done") == "no"
    assert marketer.locator("#recent-replies").is_visible() and marketer.locator("#yesterday-box").is_visible()
    shot(marketer, "8-home")
    marketer.context.close()
