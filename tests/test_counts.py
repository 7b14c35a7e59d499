"""Contact counts and the pager: exact on SQLite; on PostgreSQL an estimate above
EstimatingInterface.EXACT_UP_TO, labelled as one, with a last-page link that reaches the last rows."""
import html
import json
import re

from flask_jwt_extended import create_access_token
from sqlalchemy import insert, select

from app.models import Contact, utcnow
from tests.conftest import user_id
from views.counts import EstimatedCount, EstimatingInterface

PAGE = 25  # Flask-AppBuilder's default page size


def add_contacts(db, n):
    """n contacts in one bulk INSERT, "Person 0" first (the list shows newest first)."""
    now = utcnow()
    db.session.execute(insert(Contact), [
        {"first_name": "Person", "last_name": str(i), "phone": f"+1617{2530000 + i}", "source": "manual",
         "created_at": now, "updated_at": now} for i in range(n)])
    db.session.commit()
    return db.session.scalars(select(Contact.id).order_by(Contact.id)).all()


def record_count(page):
    return re.search(r"Record Count:</strong>\s*([^<]+?)\s*<", page).group(1)


def shown_ids(page):
    return {int(pk) for pk in re.findall(r'/contactview/show/(\d+)"', page)}


def last_link(page):
    """The pager's "last page" link, or None when this is the last page."""
    match = re.search(r'<a href="([^"#]+)">&raquo;</a>', page)
    return html.unescape(match.group(1)) if match else None


def test_the_contact_list_counts_every_row_and_pages_to_the_last(db, client_for):
    ids = add_contacts(db, 4789)
    admin = client_for("admin")
    first = admin.get("/contactview/list/").get_data(as_text=True)
    assert record_count(first) == "4789"
    assert shown_ids(admin.get("/contactview/list/?page_ContactView=100").get_data(as_text=True)) == set(
        ids[::-1][100 * PAGE:101 * PAGE])
    last = admin.get(last_link(first)).get_data(as_text=True)
    assert "page_ContactView=191" in last_link(first)  # 4,789 rows are 192 pages of 25
    assert shown_ids(last) == set(ids[:4789 - 191 * PAGE]) and last_link(last) is None
    token = create_access_token(identity=str(user_id("admin")))
    api = admin.get("/api/v1/contact/?q=(page:0,page_size:5)", headers={"Authorization": f"Bearer {token}"})
    assert api.get_json()["count"] == 4789


def test_a_count_above_the_exact_limit_is_labelled_and_the_pager_reaches_the_last_rows(db, client_for,
                                                                                       monkeypatch):
    monkeypatch.setattr(EstimatingInterface, "EXACT_UP_TO", 1000)
    ids = add_contacts(db, 2610)
    admin = client_for("admin")
    first = admin.get("/contactview/list/").get_data(as_text=True)
    if db.engine.dialect.name == "postgresql":
        assert re.fullmatch(r"about [\d,]+ \(estimate\)", record_count(first))
    else:
        assert record_count(first) == "2610"
    assert shown_ids(first) == set(ids[-PAGE:])
    oldest = set(ids[:2610 - 104 * PAGE])  # 2,610 rows are 105 pages: the last holds 10
    for url in (last_link(first), "/contactview/list/?page_ContactView=5000"):
        last = admin.get(url).get_data(as_text=True)
        assert shown_ids(last) == oldest, url
        assert record_count(last) == "2610" and last_link(last) is None
        assert '<li class="active">\n            <a href="#">105</a>' in last
    search = admin.get("/contactview/list/?_flt_0_last_name=2609").get_data(as_text=True)
    assert record_count(search) == "1" and shown_ids(search) == {ids[-1]}


def test_an_estimated_count_says_it_is_an_estimate():
    count = EstimatedCount(1_234_567)
    assert str(count) == "about 1,234,567 (estimate)"
    assert json.loads(json.dumps({"count": count})) == {"count": 1234567}  # the API still gets a number
    assert count // 25 == 49382  # pagination arithmetic is unchanged
