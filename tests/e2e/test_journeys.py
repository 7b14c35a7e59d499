"""Journeys a person would recognise, in a real headless Chromium against `crm run`."""
from tests.e2e.conftest import ADMIN_PASSWORD, sign_in


def create_user(page, base, username, role, password):
    page.goto(base + "/users/add")
    page.fill("input[name=first_name]", username.title())
    page.fill("input[name=last_name]", role)
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", f"{username}@example.com")
    page.eval_on_selector("select[name=roles]", """(select, role) => {
        for (const option of select.options) option.selected = option.text.trim() === role;
        select.dispatchEvent(new Event('change', {bubbles: true}));
    }""", role)
    page.fill("input[name=password]", password)
    page.fill("input[name=conf_password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()


def test_admin_creates_a_marketer_and_a_staff_user_who_can_sign_in(live, page, browser):
    base = live["url"]
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    for menu in ("Contacts", "Lists", "Settings"):
        assert page.locator(".navbar").get_by_text(menu, exact=True).first.is_visible()
    create_user(page, base, "maria", "Marketer", "Maria-pass-123")
    create_user(page, base, "sam", "Staff", "Sam-pass-123")
    page.goto(base + "/users/list/")
    assert "maria" in page.content() and "sam" in page.content()

    staff = browser.new_context().new_page()
    sign_in(staff, base, "sam", "Sam-pass-123")
    staff.goto(base + "/contactview/list/")
    assert staff.url.endswith("/contactview/list/")
    assert "Audit log" not in staff.locator(".navbar").inner_text()
    staff.context.close()


def wait_for_text(page, url, text, timeout=30):
    """Reload url until text appears (the worker and the webhooks run in the background)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if text in page.content():
            return True
        time.sleep(1)
    return False


def test_text_a_contact_see_it_delivered_and_the_reply_in_the_inbox(live, page):
    base = live["url"]
    sign_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(base + "/contactview/add")
    page.fill("input[name=first_name]", "Dana")
    page.fill("input[name=last_name]", "Journey")
    page.fill("input[name=phone]", "+16175550142")
    page.click("button[type=submit], input[type=submit]")
    page.goto(base + "/contactview/list/?_flt_0_last_name=Journey")
    page.get_by_text("Journey").first.wait_for()
    page.locator("a[href*='/contactview/show/']").first.click()
    contact_url = page.url

    page.fill("#send-text textarea[name=body]", "Hi Dana, this is Matt from Attack A Crack.")
    page.click("#send-text button[type=submit]")
    assert wait_for_text(page, contact_url, 'data-status="delivered"'), "the text never showed as delivered"
    assert "Hi Dana, this is Matt" in page.inner_text("#thread")

    page.fill("#simulate-reply input[name=body]", "Yes please, how much for a crack?")
    page.click("#simulate-reply button[type=submit]")
    assert wait_for_text(page, contact_url, "how much for a crack"), "the reply never reached the thread"
    page.goto(base + "/inbox/")
    assert "Dana" in page.content() and "how much for a crack" in page.content()
