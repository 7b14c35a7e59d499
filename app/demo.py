"""A small fake data set so a new user sees a populated CRM."""
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import Contact, ContactList, ContactProperty, ListMember, Property

DEMO = [
    ("Maria", "Santos", "+16175550111", "12 Elm St", "Quincy", "02169", 1962),
    ("James", "O'Brien", "+16175550112", "48 Hancock St", "Quincy", "02171", 1971),
    ("Linda", "Nguyen", "+17815550113", "7 Pond Rd", "Braintree", "02184", 1985),
    ("Robert", "Kelly", "+17815550114", "230 Main St", "Weymouth", "02188", 1958),
    ("Patricia", "Walsh", "+16175550115", "15 Beach St", "Quincy", "02170", 1990),
]


def load_demo():
    """Idempotent: contacts are matched by phone, properties by key."""
    created = 0
    with audit.acting_as(None, "demo"):
        demo_list = db.session.scalar(select(ContactList).where(ContactList.name == "Demo homeowners"))
        if demo_list is None:
            demo_list = ContactList(name="Demo homeowners", description="Sample data from `crm demo`")
            db.session.add(demo_list)
        for first, last, phone, address, city, zip_code, year in DEMO:
            if db.session.scalar(select(Contact.id).where(Contact.phone == phone)):
                continue
            contact = Contact(first_name=first, last_name=last, phone=phone, source="demo",
                              mail_address=address, mail_city=city, mail_state="MA", mail_zip=zip_code)
            prop = Property(key=Property.key_for(None, address, city, zip_code), address=address, city=city,
                            state="MA", zip=zip_code, type="SFR", year_built=year)
            db.session.add_all([contact, prop])
            db.session.add(ContactProperty(contact=contact, property=prop, role="primary"))
            db.session.add(ListMember(list=demo_list, contact=contact))
            created += 1
        db.session.commit()
    return f"Demo data loaded: {created} new contacts in list 'Demo homeowners'."
