"""Settings -> Integrations -> QuickBooks: connect through the fake's OAuth consent page, the
callback's state check, the status shown, and disconnect (revoked at Intuit); tokens never shown."""
import httpx
from sqlalchemy import select

from app import quickbooks
from app.models import AuditLog
from app.users import ensure_user
from tests.conftest import PASSWORD

PAGE = "/settings/integrations/"


def start_connect(client, post_form):
    answer = client.get(PAGE + "quickbooks/connect")
    assert answer.status_code == 302
    return answer.headers["Location"]


def consent(fake, authorize_url):
    """What the person's browser does at Intuit: open the consent page, click Connect."""
    page = httpx.get(authorize_url)
    link = page.text.split("href='")[1].split("'")[0].replace("&amp;", "&")
    back = httpx.URL(httpx.get(fake.url + link).headers["Location"])
    assert back.path == "/settings/integrations/quickbooks/callback"
    return f"{back.path}?{back.query.decode()}"


def test_admin_connects_quickbooks_and_the_page_shows_the_company_not_the_tokens(db, client_for, post_form,
                                                                               fake_quickbooks):
    admin = client_for("admin")
    assert "not connected" in admin.get(PAGE).get_data(as_text=True)
    callback = consent(fake_quickbooks, start_connect(admin, post_form))
    assert admin.get(callback).status_code == 302
    html = admin.get(PAGE).get_data(as_text=True)
    assert f"connected to QuickBooks company {fake_quickbooks.realm_id}" in html
    tokens = quickbooks._load()
    assert tokens["access_token"] not in html and tokens["refresh_token"] not in html
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("quickbooks%"))).all()
    assert actions == ["quickbooks_connected"]


def test_a_callback_with_a_forged_state_connects_nothing(db, client_for, post_form, fake_quickbooks):
    admin = client_for("admin")
    callback = consent(fake_quickbooks, start_connect(admin, post_form))
    forged = callback.replace("state=", "state=x")
    answer = admin.get(forged, follow_redirects=True)
    assert "was not started here" in answer.get_data(as_text=True)
    assert quickbooks.connection_status() == quickbooks.NOT_CONNECTED


def test_a_callback_started_by_another_admin_connects_nothing(app, db, client_for, post_form, fake_quickbooks):
    ensure_user("admin2", PASSWORD, "Admin")
    db.session.commit()
    callback = consent(fake_quickbooks, start_connect(client_for("admin"), post_form))
    answer = client_for("admin2").get(callback, follow_redirects=True)
    assert "was not started here" in answer.get_data(as_text=True)
    assert quickbooks.connection_status() == quickbooks.NOT_CONNECTED


def test_declined_consent_says_so(db, client_for, fake_quickbooks):
    answer = client_for("admin").get(PAGE + "quickbooks/callback?error=access_denied&state=x",
                                     follow_redirects=True)
    assert "QuickBooks was not connected: access_denied" in answer.get_data(as_text=True)


def test_disconnect_revokes_at_intuit_and_the_page_says_not_connected(db, client_for, post_form, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    refresh_token = quickbooks._load()["refresh_token"]
    admin = client_for("admin")
    answer = post_form(admin, PAGE + "quickbooks/disconnect", follow_redirects=True)
    assert "revoked at Intuit" in answer.get_data(as_text=True)
    assert refresh_token not in fake_quickbooks.refresh_tokens
    assert "not connected" in admin.get(PAGE).get_data(as_text=True)
    assert quickbooks.connection_status() == quickbooks.NOT_CONNECTED


def test_needs_reconnect_is_shown_with_a_reconnect_button(db, client_for, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    fake_quickbooks.refresh_tokens.clear()
    fake_quickbooks.expire_access_tokens()
    try:
        quickbooks.get_entity("Customer", "1")
    except quickbooks.QuickBooksDisconnected:
        pass
    html = client_for("admin").get(PAGE).get_data(as_text=True)
    assert "needs reconnecting" in html and "Reconnect QuickBooks" in html


def test_only_admins_can_connect_or_disconnect(db, client_for, post_form, fake_quickbooks):
    quickbooks.connect(fake_quickbooks.realm_id, fake_quickbooks.issue_refresh_token())
    for username in ("marketer", "staff"):
        client = client_for(username)
        connect = client.get(PAGE + "quickbooks/connect")
        assert fake_quickbooks.url not in connect.headers.get("Location", "")
        post_form(client, PAGE + "quickbooks/disconnect")
    assert quickbooks.connection_status() == quickbooks.CONNECTED
