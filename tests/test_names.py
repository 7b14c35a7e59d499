"""Names in proper case at every door that writes a contact: the rule, then the form, the REST
API, an import (PropertyRadar and a contacts file) and a QuickBooks sync."""
import csv
import io

import pytest
from sqlalchemy import select

from app.imports import import_counts
from app.models import Contact
from app.money import run_sync
from app.names import proper_name, proper_names
from tests.qb_records import MemorySource, customer
from tests.test_contacts import api
from tests.test_imports import _propertyradar_rows, import_bytes


@pytest.mark.parametrize("raw, cased", [
    ("MARY O'BRIEN", "Mary O'Brien"),
    ("O'BRIEN", "O'Brien"),
    ("MCDONALD", "McDonald"),
    ("MARY-ANN", "Mary-Ann"),
    ("DE LA CRUZ", "De la Cruz"),
    ("JUAN DE LA CRUZ", "Juan de la Cruz"),
    ("THANH LE", "Thanh Le"),
    ("JOHN SMITH III", "John Smith III"),
    ("SMITH JR.", "Smith Jr."),
    ("D'ANGELO", "D'Angelo"),
    ("mary o'brien", "Mary O'Brien"),
    ("ACME HOLDINGS LLC", "Acme Holdings LLC"),
    ("J.", "J."),
    ("JOSÉ ÁLVAREZ", "José Álvarez"),
    ("  ", "  "),
    ("@SUM(1)", "@SUM(1)"), ("UNIT 4B", "UNIT 4B"),  # not names: left as they came
    (None, None),
    # typed in mixed case: the person's own spelling stays
    ("McDonald", "McDonald"), ("deLancey", "deLancey"), ("Mary o'Brien", "Mary o'Brien"), ("MacKenzie", "MacKenzie"),
])
def test_proper_name(raw, cased):
    assert proper_name(raw) == cased


def test_the_name_as_received_is_kept_only_when_the_case_changed():
    assert proper_names({"first_name": "MARY", "last_name": "O'BRIEN"}) == {
        "first_name": "Mary", "last_name": "O'Brien", "name_as_received": "MARY O'BRIEN"}
    assert proper_names({"first_name": "Mary", "last_name": "O'Brien"}) == {"first_name": "Mary", "last_name": "O'Brien"}
    assert proper_names({"phone": "+16175550123"}) == {"phone": "+16175550123"}


def names(db, phone):
    db.session.expire_all()
    contact = db.session.scalar(select(Contact).filter_by(phone=phone))
    return contact.first_name, contact.last_name, contact.name_as_received


def test_the_contact_form_cases_a_shouted_name_and_keeps_a_typed_one(db, client_for, post_form):
    marketer = client_for("marketer")
    post_form(marketer, "/contactview/add", {"first_name": "MARY", "last_name": "O'BRIEN", "phone": "617-555-0140"})
    post_form(marketer, "/contactview/add", {"first_name": "Ann", "last_name": "deLancey", "phone": "617-555-0141"})
    assert names(db, "+16175550140") == ("Mary", "O'Brien", "MARY O'BRIEN")
    assert names(db, "+16175550141") == ("Ann", "deLancey", None)
    ann = db.session.scalar(select(Contact).filter_by(phone="+16175550141"))
    post_form(marketer, f"/contactview/edit/{ann.id}", {"first_name": "ANN", "last_name": "MCDONALD",
                                                         "phone": "617-555-0141"})
    assert names(db, "+16175550141") == ("Ann", "McDonald", "ANN MCDONALD")


def test_the_api_cases_names(app, db):
    created = api(app, "marketer")("POST", "/api/v1/contact/", {"first_name": "MARY-ANN", "last_name": "DE LA CRUZ",
                                                                "phone": "617-555-0142"})
    assert created.status_code == 201
    assert names(db, "+16175550142") == ("Mary-Ann", "De la Cruz", "MARY-ANN DE LA CRUZ")


def test_a_propertyradar_import_cases_owner_names_and_the_file_keeps_them(db, tmp_path):
    header, first = csv.reader(_propertyradar_rows(tmp_path, rows=1))
    row = dict(zip(header, first, strict=True))
    row.update({"Primary Name": "MARY O'BRIEN", "Primary Mobile Phone1": "617-555-0143", "Primary Email1": "",
                "Secondary Name": "SEAN MCDONALD III", "Secondary Mobile Phone1": "617-555-0144",
                "Secondary Email1": ""})
    out = io.StringIO()
    csv.writer(out).writerows([header, [row[h] for h in header]])
    data = out.getvalue().encode()
    imp = import_bytes(tmp_path, data, name="radar.csv", fmt="propertyradar")
    assert imp.status == "succeeded", imp.error
    assert names(db, "+16175550143") == ("Mary", "O'Brien", "MARY O'BRIEN")
    assert names(db, "+16175550144") == ("Sean", "McDonald III", "SEAN MCDONALD III")
    again = import_bytes(tmp_path, data, name="radar-again.csv", fmt="propertyradar")
    assert import_counts(again.id)["rows"] == {"unchanged": 1}


def test_a_contacts_file_cases_names_and_a_reimport_changes_nothing(db, tmp_path):
    data = b"First Name,Last Name,Mobile\nMARY,O'BRIEN,617-555-0145\nAnn,deLancey,617-555-0146\n"
    import_bytes(tmp_path, data, name="people.csv")
    assert names(db, "+16175550145") == ("Mary", "O'Brien", "MARY O'BRIEN")
    assert names(db, "+16175550146") == ("Ann", "deLancey", None)
    again = import_bytes(tmp_path, data, name="people-again.csv")
    assert import_counts(again.id)["rows"] == {"unchanged": 2}


def test_a_quickbooks_customer_becomes_a_contact_with_a_cased_name(db):
    source = MemorySource()
    source.put("Customer", customer(1, "PAT", "MCDONALD", phones={"Mobile": "617-555-0147"}))
    run_sync(source=source)
    assert names(db, "+16175550147") == ("Pat", "McDonald", "PAT MCDONALD")
