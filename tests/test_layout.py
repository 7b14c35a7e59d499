"""The site's frame: the navigation in the order of daily use for each role, 403 and 404 pages
inside the layout (JSON for the REST API), and the favicon."""
import re

import pytest

NAV = {"admin": ["Home", "Inbox", "Contacts", "Lists", "Campaigns", "Imports", "Money", "Settings"],
       "marketer": ["Home", "Inbox", "Contacts", "Lists", "Campaigns", "Imports", "Money", "Settings"],
       "staff": ["Home", "Inbox", "Contacts", "Money"]}


def top_menu(html):
    """The labels of the navigation bar's top row, in order."""
    body = html.split('id="main-menu">', 1)[1].split("navbar-right", 1)[0]
    items, depth = [], 0
    for tag, text in re.findall(r"<(/?ul)[^>]*>|<a[^>]*>(.*?)</a>", body, re.S):
        if tag == "ul":
            depth += 1
        elif tag == "/ul":
            depth -= 1
        elif depth == 0 and tag == "":
            label = re.sub(r"<[^>]+>|\s+", " ", text).strip()
            label = re.sub(r"\s*\d+$", "", label)  # the Inbox's unread count
            if label:
                items.append(label)
    return items


@pytest.mark.parametrize("username", list(NAV))
def test_the_navigation_reads_in_the_order_of_daily_use(db, client_for, username):
    page = client_for(username).get("/contactview/list/").get_data(as_text=True)
    assert top_menu(page) == NAV[username]
    for internal in ("Base Permissions", "Views/Menus", "Permission on Views/Menus", "List Users", "Security"):
        assert internal not in page
    if username == "admin":
        settings = page[page.index(">Settings<"):]
        for item in ("Users", "Roles", "Audit log", "Failed events", "Opt-outs", "Integrations", "Customers to review"):
            assert f"{item}</a>" in settings
    assert 'action="/search/"' in page and 'name="q"' in page


def test_a_missing_page_is_a_404_inside_the_layout_with_a_way_back(db, client_for):
    staff = client_for("staff")
    response = staff.get("/no/such/page", headers={"Referer": "http://localhost/contactview/list/"})
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Page not found" in page and 'id="main-menu"' in page
    assert re.search(r'<a[^>]*href="http://localhost/contactview/list/"[^>]*id="error-back"', page)


def test_a_page_the_role_may_not_open_is_a_403_inside_the_layout(db, client_for):
    response = client_for("staff").get("/auditlogview/list/")
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "Not allowed" in page and 'id="main-menu"' in page


def test_the_api_still_answers_json_for_a_missing_address(db, client_for):
    response = client_for("admin").get("/api/v1/no_such_thing/")
    assert response.status_code == 404 and response.get_json() == {"message": "Not Found"}


def test_the_favicon_is_served(app):
    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"
    assert response.mimetype == "image/vnd.microsoft.icon"


def test_the_style_sheet_lets_tables_scroll_inside_their_box(app):
    response = app.test_client().get("/static/crm/crm.css")
    assert response.status_code == 200 and b"overflow-x: auto" in response.data
