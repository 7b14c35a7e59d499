"""The permission matrix: every view, action and API endpoint in the app's url_map, for every
role, against an explicit table of what each role may do. Views added later are covered by
the defaults: Staff is refused anything not in its allow-list, nobody but Admin reaches the
security screens or the audit log, and every endpoint is protected unless listed as public."""
import re

import pytest
from flask import g
from flask_jwt_extended import create_access_token
from flask_login import current_user, login_user
from sqlalchemy import func, select

from app.extensions import appbuilder
from app.models import Contact, ContactList, ListMember, Message, Todo
from app.security import AssignedToCurrentUser
from tests.conftest import csrf_token, user_id

ROLES = ("Admin", "Marketer", "Staff", "anonymous")
USERNAMES = {"Admin": "admin", "Marketer": "marketer", "Staff": "staff"}

# Reachable without logging in: login/logout, static files and the favicon, the health probe, the JWT
# login, and signed webhooks (their handlers check the provider's signature instead).
PUBLIC = re.compile(r"(static|appbuilder\.static|crm\.(static|favicon)|health\..*|HomeView\.index|AuthDBView\..*|UtilView\.back"
                    r"|LocaleView\.index|SecurityApi\.(login|refresh)|.*[Ww]ebhook.*)$")
SECURITY_VIEWS = re.compile(r"(User|Role|Permission|ViewMenu|Group|ResetPassword|ResetMyPassword|Security"
                            r"|OpenApi|Swagger|Menu)")
AUDIT_VIEWS = re.compile(r"Audit")
# Admin only: integration credentials (Settings -> Integrations).
ADMIN_ONLY_VIEWS = re.compile(r"IntegrationsView$")
# What every logged-in user may do to their own account.
SELF_SERVICE = {
    ("UserDBModelView", "can_userinfo"), ("UserDBModelView", "userinfoedit"),
    ("UserDBModelView", "resetmypassword"), ("UserInfoEditView", "can_this_form_get"),
    ("UserInfoEditView", "can_this_form_post"), ("ResetMyPasswordView", "can_this_form_get"),
    ("ResetMyPasswordView", "can_this_form_post"),
}
# Everything Staff may do; anything else (current or future) is refused.
CONVERSATION = {"can_list", "can_show", "can_send_text", "can_thread", "can_simulate_reply", "can_file"}
STAFF_ALLOWED = {
    "ContactView": {"can_list", "can_show", "can_edit", "can_send_text", "can_do_not_text"},
    "PossibleOptOutView": {"can_list"},
    "ContactApi": {"can_get", "can_info", "can_put"},
    "ContactMessageView": {"can_list"},
    "ContactPropertyView": {"can_list"},
    # The properties linked to their contacts, and on a property's page only their contacts among its owners.
    "PropertyView": {"can_list", "can_show"}, "PropertyContactView": {"can_list"}, "PropertyApi": {"can_get", "can_info"},
    "MessageView": CONVERSATION, "InboxView": CONVERSATION, "ConversationView": CONVERSATION,
    "MessageApi": {"can_get", "can_info"},
    "CallApi": {"can_get", "can_info"},
    "MediaView": {"can_get"},  # a photo or voicemail of their own contact (the view checks which)
    "ConversationApi": {"can_send_text"},
    "InboxApi": {"can_get"},
    "TodoView": {"can_list", "can_show", "can_add", "can_edit"},
    "HomeView": {"can_index"},
    # Their contacts' money: estimates, invoices, payments to read, jobs to schedule.
    **{f"{name}View": {"can_list", "can_show"} for name in ("Estimate", "Invoice", "Payment")},
    "JobView": {"can_list", "can_show", "can_edit"},
    **{f"{name}View": {"can_list"} for name in ("UnscheduledJob", "OpenEstimate", "PastDueInvoice", "MonthPayment",
                                                 "LastMonthPayment", "ContactEstimate", "ContactInvoice",
                                                 "ContactPayment", "ContactJob")},
    **{f"{name}Api": {"can_get", "can_info"} for name in ("Estimate", "Invoice", "Payment", "Job")},
    # Search and export find and hold their own contacts only (app/search.py scopes every query).
    "SearchView": {"can_index"}, "SearchApi": {"can_get"},
    "ExportView": {"can_contacts", "can_show", "can_download"}, "ExportApi": {"can_post", "can_get", "can_download"},
}
# Admin only: QuickBooks customers and the review of ambiguous matches.
QUICKBOOKS_ADMIN_VIEWS = re.compile(r"(QbCustomerView|CustomerReviewView)$")
# Grants the roles must keep (the job cannot be done without them).
REQUIRED = {
    "Marketer": {"ContactView": {"can_list", "can_show", "can_add", "can_edit", "can_export_data"},
                 "ContactApi": {"can_get", "can_post", "can_put"},
                 "PropertyView": {"can_list", "can_show", "can_add", "can_edit"},
                 "ListView": {"can_list", "can_show", "can_add", "can_edit"},
                 "OptOutView": {"can_list", "can_add"}, "OptOutApi": {"can_get", "can_post"},
                 "PossibleOptOutView": {"can_list", "confirm_opt_out", "dismiss_opt_out"},
                 "CampaignView": {"can_show", "can_add", "can_edit", "can_preview", "can_test_text", "can_transition",
                                  "can_winner", "can_undo_winner"},
                 "CampaignApi": {"can_get", "can_results", "can_post", "can_put"},
                 "CampaignStatusApi": {"can_post"}},
    "Staff": {"ContactView": {"can_list", "can_show", "can_edit", "can_do_not_text"}, "ContactApi": {"can_get", "can_put"},
              "ContactMessageView": {"can_list"}},
}


def expected(role, view, permission):
    """The table: may this role use this permission on this view?"""
    if role == "anonymous":
        return False
    if role == "Admin":
        return True
    if (view, permission) in SELF_SERVICE:
        return True
    if role == "Staff":
        return permission in STAFF_ALLOWED.get(view, set())
    if SECURITY_VIEWS.match(view) or AUDIT_VIEWS.search(view) or ADMIN_ONLY_VIEWS.match(view) \
            or QUICKBOOKS_ADMIN_VIEWS.match(view):
        return False
    if view in ("ContactView", "ContactApi") and permission in ("can_delete", "muldelete", "can_erase"):
        return False  # deleting or erasing a contact is for Admins
    return None  # Marketer elsewhere: the role's grant decides, nothing to enforce


def view_permissions():
    """(view, permission) for every permission of every registered view, actions included."""
    pairs = set()
    for view in appbuilder.baseviews:
        name = view.class_permission_name
        pairs.update((name, p) for p in view.base_permissions or ())
        for action in getattr(view, "actions", {}):
            pairs.add((name, view.get_action_permission_name(action)))
    return sorted(pairs)


def granted(app, username, view, permission):
    """What Flask-AppBuilder answers for this user, straight from its security manager."""
    with app.test_request_context():
        if username:
            login_user(appbuilder.sm.find_user(username=username))
        g.user = current_user
        return appbuilder.sm.has_access(permission, view)


@pytest.mark.parametrize("role", ROLES)
def test_role_grants_match_the_table(app, db, role):
    username = USERNAMES.get(role)
    wrong = []
    for view, permission in view_permissions():
        want = expected(role, view, permission)
        have = granted(app, username, view, permission)
        if want is not None and want != have:
            wrong.append(f"{view}.{permission}: expected {want}, granted {have}")
    for view, permissions in REQUIRED.get(role, {}).items():
        wrong += [f"{view}.{p}: required" for p in permissions if not granted(app, username, view, p)]
    assert not wrong, "\n".join(wrong)


# --- the same table through HTTP: every route in the url_map, for every role ---------------

ARGS = {"pk": "999999", "filename": "missing.csv", "version": "v1", "locale": "en", "group_by": "0"}


def endpoint_permission(view, endpoint):
    """The permission a route checks, or None when it checks none."""
    method = endpoint.split(".", 1)[1]
    func = getattr(view, method, None)
    if func is None or not hasattr(func, "_permission_name"):
        return None
    name = view.get_method_permission(method)
    return name if name.startswith("can_") else f"can_{name}"


def requests_for(app):
    """(endpoint, view name, permission, method, url, form) for every protected route."""
    views = {view.endpoint: view for view in appbuilder.baseviews}
    for rule in app.url_map.iter_rules():
        blueprint, _, method_name = rule.endpoint.rpartition(".")
        view = views.get(blueprint)
        if PUBLIC.match(rule.endpoint):
            continue
        assert view is not None, f"{rule.rule} ({rule.endpoint}) is not a protected Flask-AppBuilder view"
        url = rule.rule
        for arg in rule.arguments:
            number = type(rule._converters[arg]).__name__ in ("IntegerConverter", "FloatConverter")
            url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", ARGS.get(arg, "999999" if number else "x"), url)
        if method_name in ("action", "action_post"):
            for action in view.actions:
                permission = view.get_action_permission_name(action)
                target = url.replace("/x/", f"/{action}/") if method_name == "action" else url
                form = {"action": action, "rowid": ARGS["pk"]} if method_name == "action_post" else {}
                yield rule.endpoint, view.class_permission_name, permission, "POST", target, form
            continue
        permission = endpoint_permission(view, rule.endpoint)
        assert permission, f"{rule.rule} ({rule.endpoint}) checks no permission and is not public"
        methods = rule.methods - {"HEAD", "OPTIONS"}
        if "GET" in methods and method_name != "delete":
            verb = "GET"
        else:
            verb = sorted(methods - {"GET"})[0]
        yield rule.endpoint, view.class_permission_name, permission, verb, url, {}


def call(app, client, token, verb, url, form):
    if url.startswith("/api/"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.open(url, method=verb, json={} if verb in ("POST", "PUT") else None, headers=headers)
    if verb == "GET":
        return client.get(url)
    return client.open(url, method=verb, data={**form, "csrf_token": csrf_token(app, client)})


def refused(client, response):
    if response.status_code in (401, 403):
        return True
    if response.status_code == 302:
        with client.session_transaction() as session:
            flashes = session.pop("_flashes", [])
        return any("Access is Denied" in str(message) for _, message in flashes)
    return False


@pytest.mark.parametrize("role", ROLES)
def test_every_route_enforces_the_table(app, db, client_for, role):
    username = USERNAMES.get(role)
    client = client_for(username) if username else app.test_client()
    token = create_access_token(identity=str(user_id(username)), fresh=True) if username else None
    wrong = []
    for _endpoint, view, permission, verb, url, form in requests_for(app):
        response = call(app, client, token, verb, url, form)
        if response.status_code >= 500:
            wrong.append(f"{verb} {url}: {response.status_code}")
            continue
        want = expected(role, view, permission)
        if want is None:
            want = granted(app, username, view, permission)
        want = want and permission in _base_permissions(view, permission)
        if refused(client, response) == want:
            wrong.append(f"{verb} {url} ({view}.{permission}): expected {'access' if want else 'refusal'}, "
                         f"got {response.status_code}")
    assert not wrong, "\n".join(wrong)


def _base_permissions(view_name, permission):
    """Actions are not base permissions; a method outside base_permissions is refused to all."""
    for view in appbuilder.baseviews:
        if view.class_permission_name == view_name:
            actions = {view.get_action_permission_name(a) for a in getattr(view, "actions", {})}
            return set(view.base_permissions or ()) | actions
    return set()


@pytest.mark.parametrize("role,hidden", [
    ("Marketer", ["Security", "List Users", "Users", "Roles", "Audit log", "Integrations", "Failed events"]),
    ("Staff", ["Security", "Audit log", "Lists", "Opt-outs", "Imports", "Campaigns", "Settings"]),
])
def test_menus_hide_what_a_role_cannot_open(client_for, role, hidden):
    html = client_for(USERNAMES[role]).get("/").get_data(as_text=True)
    assert "Contacts" in html
    shown = [menu for menu in hidden if re.search(rf">\s*{menu}\s*<", html)]
    assert not shown, shown


# --- Staff scoping: only contacts assigned to them, everywhere --------------------------------

@pytest.fixture
def two_staff_contacts(db):
    mine = Contact(first_name="Minnie", last_name="Mine", phone="+16175550101", assigned_user_id=user_id("staff"))
    theirs = Contact(first_name="Theodora", last_name="Theirs", phone="+16175550102",
                     assigned_user_id=user_id("staff2"))
    the_list = ContactList(name="Street team")
    db.session.add_all([mine, theirs, the_list])
    db.session.flush()
    db.session.add_all([
        Message(contact_id=theirs.id, direction="outbound", body="Theirs-secret text", status="delivered",
                from_phone="+16175550100", to_phone=theirs.phone),
        Todo(title="Theirs-secret todo", contact_id=theirs.id),
        ListMember(list_id=the_list.id, contact_id=theirs.id),
    ])
    db.session.commit()
    return mine.id, theirs.id


def staff_readable_views(app):
    for view in appbuilder.baseviews:
        if hasattr(view, "datamodel") and (granted(app, "staff", view.class_permission_name, "can_list")
                                           or granted(app, "staff", view.class_permission_name, "can_get")):
            yield view


def test_every_model_view_staff_can_read_is_scoped(app, db):
    unscoped = [view.class_permission_name for view in staff_readable_views(app)
                if not any(isinstance(f, AssignedToCurrentUser) for f in view._base_filters.filters)]
    assert not unscoped


def test_staff_lists_and_searches_show_only_their_contacts(app, client_for, two_staff_contacts):
    mine, theirs = two_staff_contacts
    staff = client_for("staff")
    pages = [f"{view.route_base}/list/" for view in staff_readable_views(app) if not view.route_base.startswith("/api")]
    pages += ["/contactview/list/?_flt_0_first_name=Theo", "/contactview/list/?_flt_2_phone=555",
              f"/contactmessageview/list/?_flt_0_contact={theirs}", f"/contactpropertyview/list/?_flt_0_contact={theirs}"]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        html = response.get_data(as_text=True)
        assert "Theirs" not in html and "Theodora" not in html, page
    assert "Minnie" in staff.get("/contactview/list/").get_data(as_text=True)


@pytest.mark.parametrize("page", ["/contactview/show/{id}", "/contactview/edit/{id}",
                                  "/todoview/add", "/api/v1/contact/{id}"])
def test_staff_cannot_open_another_users_contact(app, client_for, two_staff_contacts, page):
    mine, theirs = two_staff_contacts
    staff = client_for("staff")
    token = create_access_token(identity=str(user_id("staff")), fresh=True)
    response = staff.get(page.format(id=theirs), headers={"Authorization": f"Bearer {token}"})
    if page == "/todoview/add":  # the contact picker offers only their own contacts
        assert response.status_code == 200
        assert "Minnie" in response.get_data(as_text=True) and "Theodora" not in response.get_data(as_text=True)
    else:
        assert response.status_code in (403, 404)
        assert staff.get(page.format(id=mine), headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("guess", [0, -1, 999999, "abc", "1%20OR%201=1"])
def test_guessed_ids_give_404(client_for, two_staff_contacts, guess):
    staff = client_for("staff")
    for page in ("/contactview/show/{}", "/contactview/edit/{}"):
        assert staff.get(page.format(guess)).status_code == 404


def test_staff_cannot_change_another_users_contact(app, db, client_for, post_form, two_staff_contacts):
    mine, theirs = two_staff_contacts
    staff = client_for("staff")
    token = create_access_token(identity=str(user_id("staff")), fresh=True)
    form = post_form(staff, f"/contactview/edit/{theirs}", {"first_name": "Hacked", "phone": "+16175550102"})
    api = staff.put(f"/api/v1/contact/{theirs}", json={"first_name": "Hacked"},
                    headers={"Authorization": f"Bearer {token}"})
    deleted = post_form(staff, f"/contactview/delete/{theirs}")
    assert form.status_code == 404 and api.status_code == 404 and deleted.status_code in (403, 404)
    db.session.expire_all()
    assert db.session.get(Contact, theirs).first_name == "Theodora"
    ok = staff.put(f"/api/v1/contact/{mine}", json={"notes": "called back"}, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    texts = db.session.scalar(select(func.count(Message.id)))
    text = staff.post("/api/v1/conversation/send_text", json={"contact_id": theirs, "body": "hi"},
                      headers={"Authorization": f"Bearer {token}"})
    assert text.status_code in (403, 404)
    assert db.session.scalar(select(func.count(Message.id))) == texts


def test_staff_api_lists_only_their_rows(app, db, client_for, two_staff_contacts):
    mine, theirs = two_staff_contacts
    staff = app.test_client()
    token = staff.post("/api/v1/security/login", json={"username": "staff", "password": "Test-password-1",
                                                       "provider": "db"}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    contacts = staff.get("/api/v1/contact/", headers=headers).get_json()
    assert [row["id"] for row in contacts["result"]] == [mine] and contacts["count"] == 1
    search = staff.get("/api/v1/contact/?q=(filters:!((col:last_name,opr:ct,value:Theirs)))", headers=headers)
    assert search.get_json()["count"] == 0
    messages = staff.get("/api/v1/message/", headers=headers).get_json()
    assert messages["count"] == 0
    assert staff.get("/api/v1/contact/", headers={"Authorization": "Bearer forged.token.value"}).status_code in (401, 422)


def test_staff_actions_on_another_users_contact_are_refused(app, db, client_for, two_staff_contacts):
    mine, theirs = two_staff_contacts
    staff = client_for("staff")
    before = db.session.scalar(select(Contact.updated_at).where(Contact.id == theirs))
    for view in appbuilder.baseviews:
        for action in getattr(view, "actions", {}):
            response = staff.post(f"{view.route_base}/action_post",
                                  data={"action": action, "rowid": theirs, "csrf_token": csrf_token(app, staff)})
            assert response.status_code in (302, 403, 404), (view.route_base, action)
    db.session.expire_all()
    assert db.session.scalar(select(Contact.updated_at).where(Contact.id == theirs)) == before
    assert db.session.get(Contact, theirs) is not None


# --- every option list, search form, picker and the dashboard: nothing of anyone else's -------------

# What Staff must never receive: another user's contact (name, phone in any format, address), the
# property and campaign that hang off it, a business-wide import, and other users' names.
SECRETS = ("Theodora", "Theirs", "555-0102", "5550102", "77 Hidden Lane", "99 Secret Street", "Secret Campaign",
           "secret-import.csv", "staff2", "Marketer User")
THEIR_PHONE = "+16175550102"


@pytest.fixture
def other_users_records(db, two_staff_contacts):
    """two_staff_contacts plus a property, a campaign recipient, a campaign text and an import
    that belong to the other Staff user's contact or to the business."""
    from app.models import Campaign, CampaignRecipient, ContactProperty, Import, Property

    mine, theirs = two_staff_contacts
    db.session.get(Contact, theirs).mail_address = "77 Hidden Lane"
    home = Property(key="secret-apn", address="99 Secret Street", city="Quincy")
    campaign = Campaign(name="Secret Campaign", status="running", sending_number="+16175550100",
                        window_start=__import__("datetime").time(9), window_end=__import__("datetime").time(17))
    db.session.add_all([home, campaign])
    db.session.flush()
    recipient = CampaignRecipient(campaign_id=campaign.id, contact_id=theirs, phone=THEIR_PHONE, status="sent")
    db.session.add_all([ContactProperty(contact_id=theirs, property_id=home.id, role="primary"), recipient,
                        Import(filename="secret-import.csv", size=1, sha256="0" * 64, stored_path="/nowhere",
                               format="contacts", status="running", rows_done=7, total_rows=9)])
    db.session.flush()
    db.session.add(Message(contact_id=theirs, campaign_recipient_id=recipient.id, direction="outgoing",
                           body="Campaign text", status="sent", from_phone="+16175550100", to_phone=THEIR_PHONE))
    db.session.commit()
    return mine, theirs


def leaked(text):
    return [secret for secret in SECRETS if secret in text]


def apis():
    from flask_appbuilder import ModelRestApi

    return [view for view in appbuilder.baseviews if isinstance(view, ModelRestApi)]


def related_calls(app, api, info):
    """Every page of every related-field option list _info offers (add, edit), and every
    /related/<column> route of the API if it has one."""
    import prison

    for key in ("add_columns", "edit_columns"):
        for field in info.get(key, []):
            if "values" not in field:
                continue
            for page in range(max(1, -(-field["count"] // 100))):
                query = prison.dumps({key: {field["name"]: {"page": page, "page_size": 100}}})
                yield f"/api/v1/{api.resource_name}/_info?q={query}"
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(f"/api/v1/{api.resource_name}/related/"):
            for column in api.datamodel.get_columns_list():
                if api.datamodel.is_relation(column):
                    yield rule.rule.replace("<column_name>", column)


@pytest.mark.parametrize("role", ROLES)
def test_every_info_and_related_endpoint_of_every_api_is_scoped(app, client_for, other_users_records, role):
    username = USERNAMES.get(role)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {create_access_token(identity=str(user_id(username)), fresh=True)}"} \
        if username else {}
    walked, wrong = 0, []
    for api in apis():
        response = client.get(f"/api/v1/{api.resource_name}/_info", headers=headers)
        walked += 1
        want = expected(role, api.class_permission_name, "can_info")
        if want is None:
            want = granted(app, username, api.class_permission_name, "can_info")
        if response.status_code != (200 if want else 401 if not username else 403):
            wrong.append(f"{api.resource_name}/_info: {response.status_code}, expected {'access' if want else 'refusal'}")
            continue
        if response.status_code != 200:
            continue
        urls = [f"/api/v1/{api.resource_name}/_info", *related_calls(app, api, response.get_json())]
        for url in urls:
            walked += 1
            answer = client.get(url, headers=headers)
            if answer.status_code != 200:
                wrong.append(f"{url}: {answer.status_code}")
            elif role == "Staff" and leaked(answer.get_data(as_text=True)):
                wrong.append(f"{url} shows {leaked(answer.get_data(as_text=True))}")
    assert walked and not wrong, "\n".join(wrong)


def staff_pages(app, mine):
    """Every page Staff can open: each GET route without arguments, and each <pk> route of a
    view Staff can read, opened on their own contact."""
    views = {view.endpoint: view for view in appbuilder.baseviews}
    for rule in app.url_map.iter_rules():
        view = views.get(rule.endpoint.rpartition(".")[0])
        if "GET" not in rule.methods or view is None or rule.rule.startswith(("/api/", "/static")):
            continue
        permission = endpoint_permission(view, rule.endpoint)
        if permission is None or not granted(app, "staff", view.class_permission_name, permission):
            continue
        if not rule.arguments:
            yield rule.rule
        elif rule.arguments == {"pk"} and getattr(view, "datamodel", None) is not None \
                and view.datamodel.obj is Contact:
            yield re.sub(r"<(?:[^:<>]+:)?pk>", str(mine), rule.rule)


def test_no_page_staff_can_open_shows_anyone_elses_records(app, client_for, other_users_records):
    mine, theirs = other_users_records
    staff = client_for("staff")
    pages = ["/", *staff_pages(app, mine)]  # the dashboard is the index: no permission of its own
    assert {"/", "/contactview/list/", "/contactmessageview/list/", "/contactpropertyview/list/",
            f"/contactview/edit/{mine}", "/todoview/add"} <= set(pages)
    wrong = []
    for page in pages:
        response = staff.get(page)
        text = response.get_data(as_text=True)
        if response.status_code >= 500 or leaked(text):
            wrong.append(f"{page}: {response.status_code} {leaked(text)}")
    assert not wrong, "\n".join(wrong)
    assert "Minnie" in staff.get("/contactview/list/").get_data(as_text=True)


def test_the_staff_dashboard_counts_only_their_own_things(app, db, client_for, other_users_records):
    mine, theirs = other_users_records
    admin = client_for("admin").get("/").get_data(as_text=True)
    assert "Secret Campaign" in admin and "secret-import.csv" in admin  # the business sees the business
    from app.models import Campaign, CampaignRecipient

    db.session.add(Message(contact_id=mine, direction="incoming", body="Call me", status="received",
                           from_phone="+16175550101", to_phone="+16175550100"))
    ours = Campaign(name="Spring Cracks", status="running", sending_number="+16175550100",
                    window_start=__import__("datetime").time(9), window_end=__import__("datetime").time(17))
    db.session.add(ours)
    db.session.flush()
    db.session.add(CampaignRecipient(campaign_id=ours.id, contact_id=mine, phone="+16175550101", status="queued"))
    db.session.commit()
    page = client_for("staff").get("/").get_data(as_text=True)
    assert "Spring Cracks" in page  # the campaign texting their contact, named
    assert not leaked(page)
    assert re.search(r'id="dashboard-waiting">\s*1\s*<', page)  # Minnie's unanswered text
    assert "dashboard-imports" not in page and "to your contacts" in page
    dashboard = page.split('id="dashboard"', 1)[1]
    links = re.findall(r'href="(/[^"]*)"', dashboard)
    assert all(client_for("staff").get(link).status_code < 400 for link in links), links  # no link to a 403


def test_staff_cannot_change_who_a_contact_is_assigned_to(app, db, client_for, post_form, two_staff_contacts):
    from app import contact_actions
    from app.contacts import ContactError

    mine, theirs = two_staff_contacts
    staff, other = user_id("staff"), user_id("staff2")
    client = client_for("staff")
    bearer = {"Authorization": f"Bearer {create_access_token(identity=str(staff), fresh=True)}"}

    def assigned():
        db.session.expire_all()
        return db.session.get(Contact, mine).assigned_user_id

    # the form: no such field to see, a posted one is not a choice, and saving the rest keeps it
    form = client.get(f"/contactview/edit/{mine}").get_data(as_text=True)
    assert 'name="assigned_user"' not in form and 'name="notes"' in form
    edit = {"first_name": "Minnie", "phone": "+16175550101", "notes": "called back"}
    post_form(client, f"/contactview/edit/{mine}", {**edit, "assigned_user": str(other)})
    assert assigned() == staff and db.session.get(Contact, mine).notes is None
    post_form(client, f"/contactview/edit/{mine}", edit)
    assert assigned() == staff and db.session.get(Contact, mine).notes == "called back"
    # the REST API: refused with the reason
    for value in (other, None):
        response = client.put(f"/api/v1/contact/{mine}", json={"assigned_user": value}, headers=bearer)
        assert response.status_code == 422 and "Only an Admin or a Marketer" in str(response.get_json())
        assert assigned() == staff
    # the bulk action: not offered, refused by the screen, and by the function every door calls
    assert "Assign to user" not in client.get("/contactview/list/").get_data(as_text=True)
    response = post_form(client, "/contactview/action_post", {"action": "assign", "rowid": mine})
    assert refused(client, response) and client.get("/contactview/bulk/assign").status_code in (302, 403)
    with pytest.raises(ContactError, match="Only an Admin or a Marketer"):
        contact_actions.apply("assign", [mine], str(other), user_id=staff)
    db.session.rollback()
    assert assigned() == staff
    # a Marketer still assigns, on the form's list and over the API
    assert "staff2" in client_for("marketer").get(f"/contactview/edit/{mine}").get_data(as_text=True)
    marketer = {"Authorization": f"Bearer {create_access_token(identity=str(user_id('marketer')), fresh=True)}"}
    assert client.put(f"/api/v1/contact/{mine}", json={"assigned_user": other}, headers=marketer).status_code == 200
    assert assigned() == other


def test_staff_see_only_the_properties_linked_to_their_contacts_at_every_door(app, db, client_for, post_form,
                                                                              other_users_records):
    from app.models import ContactProperty, Property

    mine, theirs = other_users_records
    shared = Property(key="shared-apn", address="5 Shared Road", city="Quincy")
    db.session.add(shared)
    db.session.flush()
    db.session.add_all([ContactProperty(contact_id=mine, property_id=shared.id, role="primary"),
                        ContactProperty(contact_id=theirs, property_id=shared.id, role="secondary")])
    db.session.commit()
    secret = db.session.scalar(select(Property.id).where(Property.key == "secret-apn"))
    staff = client_for("staff")
    listed = staff.get("/propertyview/list/").get_data(as_text=True)
    assert "5 Shared Road" in listed and not leaked(listed)
    assert "Properties" in staff.get("/").get_data(as_text=True)
    for search in ("/propertyview/list/?_flt_0_address=Secret", "/propertyview/list/?_flt_0_city=Quincy"):
        page = staff.get(search).get_data(as_text=True)
        assert staff.get(search).status_code == 200 and not leaked(page), search
    shown = staff.get(f"/propertyview/show/{shared.id}").get_data(as_text=True)
    assert "5 Shared Road" in shown and "Minnie" in shown and not leaked(shown)  # owners: their contact only
    assert staff.get(f"/propertyview/show/{secret}").status_code == 404
    contact_page = staff.get(f"/contactview/show/{mine}").get_data(as_text=True)
    assert f"/propertyview/show/{shared.id}" in contact_page  # the link on their contact's page opens
    assert staff.get(f"/propertyview/edit/{shared.id}").status_code == 403
    assert staff.get("/propertyview/add").status_code == 403
    assert post_form(staff, f"/propertyview/delete/{shared.id}").status_code == 403
    headers = {"Authorization": f"Bearer {create_access_token(identity=str(user_id('staff')), fresh=True)}"}
    api = app.test_client()
    assert [row["address"] for row in api.get("/api/v1/property/", headers=headers).get_json()["result"]] \
        == ["5 Shared Road"]
    assert api.get(f"/api/v1/property/{shared.id}", headers=headers).status_code == 200
    assert api.get(f"/api/v1/property/{secret}", headers=headers).status_code == 404
    assert api.put(f"/api/v1/property/{shared.id}", json={"address": "x"}, headers=headers).status_code == 403
    assert api.post("/api/v1/property/", json={"key": "k", "address": "x"}, headers=headers).status_code == 403
    assert db.session.get(Property, shared.id).address == "5 Shared Road"
