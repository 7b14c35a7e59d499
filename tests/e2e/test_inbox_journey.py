"""Staff answer texts on a phone (390 x 844): the Inbox with its unread count, a conversation that
refreshes while a reply is being written, a saved reply with its merge field filled, Done. The
fake OpenPhone receives exactly one text. Every screen visited is saved in test-artifacts/."""
import httpx

from tests.e2e.conftest import ADMIN_PASSWORD, ARTIFACTS, sign_in
from tests.e2e.test_campaign_journey import choose, eventually
from tests.e2e.test_journeys import create_user

PHONE = "+16175550177"
SAVED = "Hi {first_name|there}, we can come Friday at 10 to look at it. Does that work?"


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"inbox-{name}.png"), full_page=True)


def fits_the_screen(page):
    """Nothing wider than the phone's 390 px: the page does not scroll sideways (a mobile browser
    widens its layout to the widest element, so the width is compared with the screen's)."""
    return page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth, "
                         "window.innerWidth) <= 390")


def texts_to(fake):
    return [m for m in httpx.get(fake + "/_fake/sent").json()["data"] if m.get("to") in (PHONE, [PHONE])]


def simulate_reply(page, contact_url, text):
    """The homeowner texts in: the sandbox OpenPhone sends it through the real signed webhook."""
    page.goto(contact_url)
    page.fill("#simulate-reply input[name=body]", text)
    page.click("#simulate-reply button[type=submit]")
    assert eventually(lambda: (page.goto(contact_url), text in page.inner_text("#thread"))[1], 60), text


def test_staff_answer_a_text_on_a_phone_with_a_saved_reply_and_mark_it_done(live, page, browser):
    base, fake = live["url"], f"http://127.0.0.1:{live['sandbox_port']}"
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    create_user(page, base, "paula", "Staff", "Paula-pass-1234")
    page.goto(base + "/savedreplyview/add")
    page.fill("input[name=title]", "Book a visit")
    page.fill("textarea[name=body]", SAVED)
    page.click("button[type=submit], input[type=submit]")
    page.goto(base + "/contactview/add")
    page.fill("input[name=first_name]", "Rosa")
    page.fill("input[name=last_name]", "Phoneview")
    page.fill("input[name=phone]", PHONE)
    choose(page, "assigned_user", "Paula Staff")
    page.click("button[type=submit], input[type=submit]")
    page.goto(base + "/contactview/list/?_flt_0_last_name=Phoneview")
    page.locator("a[href*='/contactview/show/']").first.click()
    contact_url = page.url
    contact_id = contact_url.rstrip("/").split("/")[-1]
    simulate_reply(page, contact_url, "Hi, can someone look at the crack in my basement wall?")
    assert texts_to(fake) == []

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    violations = []
    context.on("console", lambda message: violations.append(message.text)
               if "Content Security Policy" in message.text else None)
    phone = context.new_page()
    phone.set_default_timeout(60000)
    sign_in(phone, base, "paula", "Paula-pass-1234")
    phone.goto(base + "/inbox/")
    assert phone.locator(".inbox-unread").first.text_content().strip() == "1"
    assert phone.inner_text("#folder-unread .folder-count") == "1"
    assert "crack in my basement wall" in phone.inner_text("#inbox-list")
    assert fits_the_screen(phone), "the Inbox scrolls sideways on a phone"
    shot(phone, "phone-unread")

    phone.click(f".inbox-item[data-contact='{contact_id}'] .inbox-name")
    phone.wait_for_selector("#send-text textarea")
    assert fits_the_screen(phone), "the conversation scrolls sideways on a phone"
    assert phone.locator(".inbox-unread").first.text_content().strip() == "0", "opening it reads it"
    phone.fill("#send-text textarea", "Let me check the calendar")
    simulate_reply(page, contact_url, "Also, it got wider after the rain.")
    # The auto-refresh brings the reply in (a selector wait: the page's CSP forbids evaluating strings).
    phone.wait_for_selector("#thread >> text=wider after the rain")
    assert phone.input_value("#send-text textarea") == "Let me check the calendar", "the refresh kept the draft"
    shot(phone, "phone-conversation-refreshed")

    phone.select_option("#saved-reply", label="Book a visit")
    reply = "Hi Rosa, we can come Friday at 10 to look at it. Does that work?"
    assert phone.input_value("#send-text textarea") == reply
    box = phone.locator("#send-text button[type=submit]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, "the Send button is on the screen"
    phone.click("#send-text button[type=submit]")
    phone.wait_for_selector("#thread .message-outgoing")
    assert reply in phone.inner_text("#thread .message-outgoing")
    assert phone.get_attribute("#thread .message-outgoing", "data-status") in ("queued", "sending", "sent",
                                                                              "delivered")
    shot(phone, "phone-reply-queued")
    assert eventually(lambda: len(texts_to(fake)) >= 1, 60), "the text never reached OpenPhone"

    phone.click("#mark-done button")
    phone.wait_for_url(base + "/inbox/")
    assert "comes back when they text or call again" in phone.content()
    assert phone.locator(f".inbox-item[data-contact='{contact_id}']").count() == 0
    phone.goto(base + "/inbox/?folder=done")
    assert phone.locator(f".inbox-item[data-contact='{contact_id}']").count() == 1
    assert fits_the_screen(phone)
    shot(phone, "phone-done")
    sent = texts_to(fake)
    assert [m["text"] for m in sent] == [reply], "exactly one text, the saved reply filled for Rosa"
    context.close()
    assert not violations, violations
