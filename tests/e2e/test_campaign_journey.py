"""The whole loop a marketer and a staff member live through, in headless Chromium:
users, a PropertyRadar upload with its progress bar and rejected rows, a contacts file
with a mapping step, an A/B campaign, texts at the fake OpenPhone, a reply and a STOP
arriving as signed webhooks, the conversation, the opt-out, the charts, staff scoping."""
import csv
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app import display
from tests.conftest import SAMPLE
from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, sign_in
from tests.e2e.test_journeys import create_user


def eventually(check, timeout=60, every=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return check()


def choose(page, select_name, *labels):
    """Pick options of a (select2-enhanced) <select> by their visible text."""
    page.eval_on_selector(f"select[name={select_name}]", """(select, labels) => {
        for (const option of select.options) option.selected = labels.includes(option.text.trim());
        select.dispatchEvent(new Event('change', {bubbles: true}));
    }""", list(labels))


def upload(page, base, path, list_name, fmt="auto"):
    page.goto(base + "/importview/upload")
    page.set_input_files("input[name=file]", str(path))
    page.select_option("select[name=format]", fmt)
    page.fill("input[name=new_list]", list_name)
    page.click("#import-upload button[type=submit]")
    page.wait_for_load_state()


def test_marketer_imports_runs_an_ab_campaign_and_staff_sees_only_their_contacts(live, page, browser, tmp_path):
    base, fake = live["url"], f"http://127.0.0.1:{live['sandbox_port']}"
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    create_user(page, base, "mia", "Marketer", "Mia-pass-1234")
    create_user(page, base, "stan", "Staff", "Stan-pass-1234")

    # The marketer uploads a PropertyRadar export and watches the progress bar reach the end.
    marketer = browser.new_context(accept_downloads=True).new_page()
    sign_in(marketer, base, "mia", "Mia-pass-1234")
    export = tmp_path / "quincy.csv"
    subprocess.run([sys.executable, str(SAMPLE), "--rows", "400", "--seed", "11", "--messy",
                    "--out", str(export), "--truth", str(tmp_path / "truth.json")], check=True)
    upload(marketer, base, export, "Quincy homeowners")
    marketer.wait_for_selector("#import-bar")
    assert eventually(lambda: marketer.inner_text("#import-status") == "succeeded", 90), \
        marketer.inner_text("#import-progress")
    assert marketer.get_attribute("#import-bar", "style").replace(" ", "") == "width:100%;"
    # 400 properties; the licence line at the end is recorded as a "footer", not counted as a row
    assert marketer.inner_text("#import-done") == marketer.inner_text("#import-total") == "400"
    assert "Properties created" in marketer.inner_text("#import-counts")
    desktop = marketer.viewport_size
    marketer.set_viewport_size({"width": 390, "height": 844})
    for element in ("#import-report h2", "#import-counts", "#import-details"):  # inside the margins on a phone
        assert marketer.locator(element).bounding_box()["x"] >= 10, element
    marketer.set_viewport_size(desktop)
    assert "licence line" in marketer.inner_text("#import-footer")
    # the details under the header were refreshed by the same poll: no "queued" beside "succeeded"
    assert marketer.inner_text("#import-details [data-field=status]") == "succeeded"
    assert marketer.inner_text("#import-details [data-field=rows_done]") == "400"
    assert re.search(r"\d:\d\d [AP]M E[SD]T$", marketer.inner_text("#import-details [data-field=finished_at]"))

    # Rejected rows come back as a CSV with the original columns and a reason.
    with marketer.expect_download() as download:
        marketer.click("#import-rejected")
    rejected = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert rejected and all(row["reason"] for row in rejected)
    assert "APN" in rejected[0]

    # A generic contacts file goes through the mapping step.
    contacts_file = tmp_path / "referrals.csv"
    contacts_file.write_text("Full Name;Cell;E-mail\nRita Referral;617-555-0187;rita@example.com\n"
                             "No Phone;;nophone@example.com\n")
    upload(marketer, base, contacts_file, "Referrals", fmt="contacts")
    assert "/importview/mapping/" in marketer.url
    marketer.click("#import-mapping button[type=submit]")
    assert eventually(lambda: marketer.inner_text("#import-status") == "succeeded", 60)

    # An A/B campaign to the imported list: plan, start, and texts reach the fake OpenPhone.
    marketer.goto(base + "/campaignview/add")
    marketer.fill("#name", "November cracks")
    marketer.locator("#builder-lists label", has_text="Quincy homeowners").locator("input").check()
    marketer.fill("#message_a", "Hi {first_name|there}, Matt from Attack A Crack in Quincy: free foundation "
                                "crack quotes. Text us a photo.")
    marketer.fill("#message_b", "Hey {first_name|there}, family-run Attack A Crack here. Any cracks in your "
                                "basement on {address}? Free quote.")
    marketer.click("#builder-save")
    marketer.wait_for_selector("#campaign-status")
    campaign_url = marketer.url
    marketer.goto(campaign_url)
    marketer.click("button:has-text('Schedule')")
    assert eventually(lambda: (marketer.goto(campaign_url), marketer.locator("#campaign-plan").count())[1], 60)
    plan = marketer.inner_text("#campaign-plan")
    assert "To text" in plan and "Left out: No mobile phone" in plan
    marketer.click("button:has-text('Start')")
    def at_least_two_sent():  # the journey needs a replier and a stopper
        data = httpx.get(fake + "/_fake/sent").json()["data"]
        return data if len(data) >= 2 else None

    sent = eventually(at_least_two_sent, 90)
    assert sent, "fewer than two texts reached the fake OpenPhone"
    phones = sorted({m["to"][0] for m in sent})
    assert len(phones) == len(sent), "a phone got two texts"

    # A reply and a STOP arrive as signed webhooks.
    replier, stopper = phones[0], phones[1]
    httpx.post(fake + "/_fake/reply", json={"from": replier, "text": "How much to fix a basement crack?"})
    httpx.post(fake + "/_fake/reply", json={"from": stopper, "text": "STOP"})

    def contact_page(phone):
        marketer.goto(base + "/contactview/list/?_flt_0_phone=" + phone.replace("+", "%2B"))
        marketer.locator("a[href*='/contactview/show/']").first.click()
        return marketer.url

    replier_url = contact_page(replier)
    assert eventually(lambda: (marketer.goto(replier_url), "How much to fix" in marketer.inner_text("#thread"))[1])
    stopper_url = contact_page(stopper)
    assert eventually(lambda: (marketer.goto(stopper_url), "Opted out" in marketer.inner_text("#conversation"))[1])
    assert marketer.locator("#send-text").count() == 0
    marketer.goto(base + "/optoutview/list/")
    assert display.phone(stopper) in marketer.inner_text("body")  # shown as (617) 555-0123

    # The campaign's numbers move: one reply and one opt-out across the variants.
    def variant_totals():
        marketer.goto(campaign_url)
        return marketer.inner_text("#campaign-variants")
    assert eventually(lambda: "1" in variant_totals() and marketer.locator("svg").count() > 0)

    # On a phone (390 px) the campaign page does not scroll sideways, its previews wrap inside their
    # boxes and every column of the A/B table can be reached; Home fits too.
    marketer.set_viewport_size({"width": 390, "height": 844})
    marketer.goto(campaign_url)
    assert marketer.evaluate("document.documentElement.scrollWidth") <= 390
    assert marketer.evaluate("[...document.querySelectorAll('pre.campaign-preview')]"
                             ".every(p => p.scrollWidth <= p.clientWidth)")
    # the A/B table scrolls inside its box: scrolled to its end, the reply-rate column is on the screen
    marketer.evaluate("(box => { box.scrollLeft = box.scrollWidth; })"
                      "(document.querySelector('#campaign-variants').parentElement)")
    rate = marketer.locator("#campaign-variants th", has_text="Reply rate").bounding_box()
    assert 0 <= rate["x"] and rate["x"] + rate["width"] <= 390, "the A/B table's reply-rate column is cut off"
    marketer.goto(base + "/")
    assert marketer.evaluate("document.documentElement.scrollWidth") <= 390
    marketer.set_viewport_size({"width": 1280, "height": 720})

    # Declare winner asks first: both variants' numbers, the p-value, why it is early; then it moves
    # the people not yet texted, and Undo puts them back.
    marketer.goto(campaign_url)
    marketer.locator("#campaign-variants a:has-text('Declare winner')").last.click()
    marketer.wait_for_selector("#winner-confirm")
    assert "p = " in marketer.inner_text("#winner-test") and marketer.locator("#winner-variants tr").count() == 3
    assert "Too few texts sent to judge" in marketer.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    marketer.screenshot(path=str(ARTIFACTS / "campaign-winner-confirmation.png"), full_page=True)
    for _ in range(3):  # a text sent between the look and the click shows the new numbers instead
        with marketer.expect_navigation():  # read the page the click leads to, not the one it leaves
            marketer.click("#winner-confirm button[type=submit]")
        if "Winner declared" in marketer.inner_text("body"):
            break
    assert "Winner declared" in marketer.inner_text("body")
    marketer.screenshot(path=str(ARTIFACTS / "campaign-winner-declared.png"), full_page=True)
    with marketer.expect_navigation():
        marketer.click("#campaign-variants button:has-text('Undo winner')")
    assert "Winner undone" in marketer.inner_text("body")

    # The admin assigns the replier to the staff user, who then sees that contact and no other.
    page.goto(replier_url)
    contact_id = replier_url.rstrip("/").split("/")[-1]
    page.goto(f"{base}/contactview/edit/{contact_id}")
    choose(page, "assigned_user", "Stan Staff")
    page.click("button[type=submit], input[type=submit]")
    staff = browser.new_context().new_page()
    sign_in(staff, base, "stan", "Stan-pass-1234")
    staff.goto(base + "/contactview/list/")
    rows = staff.locator("a[href*='/contactview/show/']")
    assert rows.count() == 1
    staff.goto(stopper_url)
    assert "How much" not in staff.content() and staff.url != stopper_url or "404" in staff.content() or \
        "Not Found" in staff.content()
    staff.goto(replier_url)
    assert "How much to fix" in staff.inner_text("#thread")
    for context_page in (marketer, staff):
        context_page.context.close()
