"""The campaign builder as a marketer uses it, in headless Chromium at 1366x900: a list and a
do-not-contact file uploaded, a campaign with messages A and B written on one page (live preview,
segments, estimate), refused when a merge field is wrong, a test to the marketer's own phone,
Schedule, the audience and its exclusions, Start; the fake OpenPhone receives exactly the texts
expected (the test once, each person once with their variant, nothing to the opted-out phone)."""
import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, sign_in
from tests.e2e.test_campaign_journey import eventually, upload
from tests.e2e.test_journeys import create_user

PEOPLE = [("Rita Builder", "+15085550701"), ("Omar Builder", "+15085550702"), ("Lena Builder", "+15085550703"),
          ("Stopped Builder", "+15085550704")]
MY_PHONE = "+15085550799"
MESSAGE_A = "Hi {first_name|there}, Matt from Attack A Crack in Quincy: free foundation crack quotes."
MESSAGE_B = "Hey {first_name|there}, family-run Attack A Crack here. Any cracks in your basement? Free quote."


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"builder-{name}.png"), full_page=True)


def test_marketer_builds_an_ab_campaign_on_one_page_tests_it_and_starts_it(live, page, browser, tmp_path):
    base, fake = live["url"], f"http://127.0.0.1:{live['sandbox_port']}"
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    create_user(page, base, "bea", "Marketer", "Bea-pass-12345")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    marketer = context.new_page()
    marketer.set_default_timeout(60000)
    sign_in(marketer, base, "bea", "Bea-pass-12345")

    people = tmp_path / "builder-people.csv"
    people.write_text("Full Name;Cell\n" + "".join(f"{name};{phone}\n" for name, phone in PEOPLE))
    upload(marketer, base, people, "Builder homeowners", fmt="contacts")
    marketer.click("#import-mapping button[type=submit]")
    assert eventually(lambda: marketer.inner_text("#import-status") == "succeeded", 60)
    stop = tmp_path / "builder-dnc.csv"
    stop.write_text(f"phone\n{PEOPLE[3][1]}\n")
    upload(marketer, base, stop, "", fmt="dnc")
    assert eventually(lambda: marketer.inner_text("#import-status") == "succeeded", 60)

    # One page: name, list, messages A and B with a live preview from a real member, the window.
    marketer.goto(base + "/campaignview/add")
    marketer.fill("#name", "Builder December")
    marketer.locator("#builder-lists label", has_text="Builder homeowners").locator("input").check()
    marketer.fill("#message_a", MESSAGE_A)
    marketer.fill("#message_b", MESSAGE_B.replace("{first_name|there}", "{frist_name}"))
    expect(marketer.locator("#preview-B .preview-error")).to_contain_text("Unknown token {frist_name}")
    marketer.fill("#message_b", MESSAGE_B)
    expect(marketer.locator("#preview-B .preview-body")).to_contain_text("Hey Rita, family-run")
    assert marketer.inner_text("#preview-A .preview-body").startswith("Hi Rita, Matt from Attack A Crack")
    assert "GSM-7, 1 segment per text" in marketer.inner_text("#preview-A .preview-count")
    assert marketer.inner_text("#preview-audience") == "4"  # people with a phone, before exclusions
    assert marketer.inner_text("#preview-cost") == "0.04"
    shot(marketer, "new-campaign")

    # A wrong merge field is refused on the same page, with everything typed still there.
    marketer.fill("#message_a", "Hi {firstname}, free quotes.")
    marketer.click("#builder-save")
    assert "Unknown token {firstname}" in marketer.inner_text("[data-field=message_a]")
    assert marketer.input_value("#message_b") == MESSAGE_B and marketer.input_value("#name") == "Builder December"
    shot(marketer, "refused")
    marketer.fill("#message_a", MESSAGE_A)
    marketer.click("#builder-save")
    marketer.wait_for_selector("#campaign-status")
    assert "Campaign saved" in marketer.inner_text("body")
    campaign_url = marketer.url

    # A test to my own phone, then Schedule: the audience, who is left out and why, when texts go out.
    marketer.select_option("#campaign-test select[name=variant]", "B")
    marketer.fill("#campaign-test input[name=phone]", "(508) 555-0799")
    marketer.click("#campaign-test button[type=submit]")
    assert "Test of message B queued to (508) 555-0799" in marketer.inner_text("body")
    marketer.click("button:has-text('Schedule')")
    assert eventually(lambda: (marketer.goto(campaign_url), marketer.locator("#campaign-plan").count())[1], 60)
    assert marketer.inner_text("#campaign-plan .plan-queued") == "3"
    assert marketer.inner_text("#campaign-plan .reason-opted_out") == "1"
    # The clock of the live server is a Tuesday 14:00 in Boston: inside the window, 3 people at 125 a day.
    assert marketer.inner_text("#campaign-forecast") == "First text goes out as soon as it starts, the last the same day (125 a day)."
    shot(marketer, "scheduled")
    # Scheduled: the audience and the messages are greyed out on Edit; the sending settings still save.
    marketer.goto(campaign_url.replace("/show/", "/edit/"))
    assert marketer.is_disabled("#message_a") and marketer.is_disabled("#builder-lists input[name=lists] >> nth=0")
    assert marketer.is_enabled("#daily_limit") and marketer.is_enabled("#name")
    shot(marketer, "scheduled-edit")
    marketer.fill("#daily_limit", "120")
    marketer.fill("#name", "Builder December (scheduled)")
    marketer.click("#builder-save")
    marketer.wait_for_selector("#campaign-status")
    assert "Campaign saved" in marketer.inner_text("body") and "Unschedule" in marketer.inner_text("body")
    assert "Builder December (scheduled)" in marketer.inner_text("body") and "(120 a day)" in marketer.inner_text("#campaign-forecast")
    shot(marketer, "scheduled-edited")
    marketer.click("button:has-text('Start')")

    mine = {phone for _, phone in PEOPLE} | {MY_PHONE}

    def my_texts():
        sent = [m for m in httpx.get(fake + "/_fake/sent").json()["data"] if m["to"][0] in mine]
        return sent if len(sent) >= 4 else None

    sent = eventually(my_texts, 90)
    assert sent, "the test and three campaign texts did not all reach the fake OpenPhone"
    by_phone = {}
    for message in sent:
        by_phone.setdefault(message["to"][0], []).append(message["text"])
    assert sorted(by_phone) == sorted([MY_PHONE, *[phone for _, phone in PEOPLE[:3]]])  # none to the opt-out
    assert all(len(texts) == 1 for texts in by_phone.values()), by_phone  # nobody twice
    assert by_phone[MY_PHONE][0].startswith("Hey Rita, family-run Attack A Crack here.")
    # A/B by position among the three texted: A, B, A
    assert [by_phone[phone][0].split(",")[0] for _, phone in PEOPLE[:3]] == ["Hi Rita", "Hey Omar", "Hi Lena"]
    assert eventually(lambda: (marketer.goto(campaign_url), "3 sent of 3 to text" in " ".join(
        marketer.inner_text("#campaign-progress").split()))[1], 60)
    shot(marketer, "running")
    context.close()
