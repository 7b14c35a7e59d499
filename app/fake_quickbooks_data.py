"""Books for the fake QuickBooks: a small realistic company (the sandbox's morning screen) and
the benchmark's volume. Dates are relative to the fake's clock."""
import random
from datetime import timedelta

# (given, family, phones as people type them, email, street, city, zip). The first three share
# phones with `crm demo`'s contacts; one has no phone at all; one has three.
CUSTOMERS = [
    ("Maria", "Santos", {"PrimaryPhone": "(617) 555-0111"}, "maria.santos@example.com", "12 Elm St", "Quincy", "02169"),
    ("James", "O'Brien", {"Mobile": "617.555.0112 x12"}, None, "48 Hancock St", "Quincy", "02171"),
    ("Linda", "Nguyen", {"PrimaryPhone": "781-555-0113", "Mobile": "(781) 555-0199"}, "lnguyen@example.com",
     "7 Pond Rd", "Braintree", "02184"),
    ("Kevin", "Murphy", {"PrimaryPhone": "(617) 555-0123"}, "kmurphy@example.com", "3 Sea St", "Quincy", "02169"),
    ("Susan", "Costa", {"Mobile": "617 555 0124"}, "susan.costa@example.com", "91 Adams St", "Milton", "02186"),
    ("Daniel", "Flynn", {"PrimaryPhone": "+1 (781) 555-0125"}, None, "14 Union St", "Braintree", "02184"),
    ("Karen", "Doyle", {}, "karen.doyle@example.com", "220 Bridge St", "Weymouth", "02191"),
    ("Michael", "Chen", {"PrimaryPhone": "617.555.0127", "Mobile": "617-555-0128",
                         "AlternatePhone": "(617) 555-0129"}, "mchen@example.com", "5 Granite St", "Quincy", "02169"),
    ("Nancy", "Burke", {"Mobile": "7815550130"}, None, "61 Front St", "Weymouth", "02188"),
    ("Thomas", "Reilly", {"PrimaryPhone": "(508) 555-0131 ext. 4"}, "treilly@example.com", "18 Oak Ave",
     "Randolph", "02368"),
    ("Elaine", "Park", {"PrimaryPhone": "617-555-0132"}, "elaine.park@example.com", "77 Beale St", "Quincy", "02170"),
    ("Reilly Brothers", "Property Mgmt", {"PrimaryPhone": "(617) 555-0133"}, "office@reillybros.example.com",
     "400 Washington St", "Quincy", "02169"),
]
PHONE_FIELDS = ("PrimaryPhone", "Mobile", "AlternatePhone")


def _customer(given, family, phones, email, street, city, zip_code):
    fields = {"GivenName": given, "FamilyName": family, "DisplayName": f"{given} {family}",
              "FullyQualifiedName": f"{given} {family}", "Balance": 0, "Active": True,
              "BillAddr": {"Line1": street, "City": city, "CountrySubDivisionCode": "MA", "PostalCode": zip_code}}
    for name in PHONE_FIELDS:
        if phones.get(name):
            fields[name] = {"FreeFormNumber": phones[name]}
    if email:
        fields["PrimaryEmailAddr"] = {"Address": email}
    return fields


def _ref(customer):
    return {"value": customer["Id"], "name": customer["DisplayName"]}


def _estimate(customer, number, status, txn_date, amount, accepted=None):
    fields = {"DocNumber": str(number), "TxnDate": txn_date.isoformat(), "TxnStatus": status,
              "ExpirationDate": (txn_date + timedelta(days=30)).isoformat(), "TotalAmt": amount,
              "CustomerRef": _ref(customer), "BillAddr": dict(customer["BillAddr"]),
              "ShipAddr": dict(customer["BillAddr"]),
              "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail", "Description": "Foundation crack repair"}]}
    if accepted:
        fields["AcceptedDate"] = accepted.isoformat()
        fields["AcceptedBy"] = customer["DisplayName"]
    return fields


def _invoice(customer, number, txn_date, amount, balance, estimate=None):
    fields = {"DocNumber": str(number), "TxnDate": txn_date.isoformat(),
              "DueDate": (txn_date + timedelta(days=15)).isoformat(), "TotalAmt": amount, "Balance": balance,
              "CustomerRef": _ref(customer), "LinkedTxn": []}
    if estimate:
        fields["LinkedTxn"].append({"TxnId": estimate["Id"], "TxnType": "Estimate"})
    return fields


def _payment(customer, txn_date, lines):
    return {"TxnDate": txn_date.isoformat(), "TotalAmt": sum(a for _, a in lines), "UnappliedAmt": 0,
            "CustomerRef": _ref(customer),
            "Line": [{"Amount": a, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]} for inv, a in lines]}


def seed_company(fake):
    """A dozen customers with estimates in every status, invoices (some past due) and payments
    this month and last month. Returns {"Customer": [...], ...} of what was created."""
    today = fake.now().date()
    created = {"Customer": [], "Estimate": [], "Invoice": [], "Payment": []}

    def add(entity, fields):
        obj = fake.add(entity, fields)
        created[entity].append(obj)
        return obj

    people = [add("Customer", _customer(*row)) for row in CUSTOMERS]
    maria, james, linda, kevin, susan, daniel, karen, michael, nancy, thomas, elaine, reilly = people
    day = timedelta(days=1)
    add("Estimate", _estimate(maria, 1001, "Accepted", today - 6 * day, 4850.0, accepted=today - 2 * day))
    add("Estimate", _estimate(kevin, 1002, "Accepted", today - 3 * day, 2200.0, accepted=today))
    add("Estimate", _estimate(james, 1003, "Pending", today - 5 * day, 3100.0))
    add("Estimate", _estimate(susan, 1004, "Pending", today - 1 * day, 1450.0))
    add("Estimate", _estimate(michael, 1005, "Pending", today - 12 * day, 9800.0))
    add("Estimate", _estimate(nancy, 1006, "Rejected", today - 20 * day, 6100.0))
    linda_est = add("Estimate", _estimate(linda, 1007, "Closed", today - 40 * day, 5200.0, accepted=today - 38 * day))
    daniel_est = add("Estimate", _estimate(daniel, 1008, "Closed", today - 50 * day, 3600.0, accepted=today - 47 * day))
    elaine_est = add("Estimate", _estimate(elaine, 1009, "Closed", today - 25 * day, 2750.0, accepted=today - 24 * day))
    add("Estimate", _estimate(thomas, 1010, "Pending", today - 2 * day, 1875.0))
    reilly_est = add("Estimate", _estimate(reilly, 1011, "Closed", today - 70 * day, 12400.0, accepted=today - 65 * day))
    add("Estimate", _estimate(karen, 1012, "Accepted", today - 9 * day, 3300.0, accepted=today - 4 * day))

    last_month_day = today.replace(day=1) - 20 * day
    this_month_day = max(today.replace(day=1), today - 3 * day)
    linda_inv = add("Invoice", _invoice(linda, 2001, today - 36 * day, 5200.0, 0.0, linda_est))
    daniel_inv = add("Invoice", _invoice(daniel, 2002, today - 45 * day, 3600.0, 1600.0, daniel_est))
    add("Invoice", _invoice(elaine, 2003, today - 22 * day, 2750.0, 2750.0, elaine_est))
    reilly_inv = add("Invoice", _invoice(reilly, 2004, today - 60 * day, 12400.0, 0.0, reilly_est))
    kevin_inv = add("Invoice", _invoice(kevin, 2005, today - 4 * day, 800.0, 0.0))
    add("Invoice", _invoice(michael, 2006, today - 2 * day, 450.0, 450.0))
    add("Payment", _payment(linda, this_month_day, [(linda_inv, 5200.0)]))
    add("Payment", _payment(daniel, last_month_day, [(daniel_inv, 2000.0)]))
    add("Payment", _payment(reilly, last_month_day, [(reilly_inv, 12400.0)]))
    add("Payment", _payment(kevin, this_month_day, [(kevin_inv, 800.0)]))
    for customer in people:
        customer["Balance"] = sum(i["Balance"] for i in created["Invoice"] if i["CustomerRef"]["value"] == customer["Id"])
    fake.change("Customer", "Update", reilly["Id"], {"Active": False}, notify=False)  # inactive, still has history
    return created


VOLUME = {"Customer": 10_000, "Estimate": 20_000, "Invoice": 15_000, "Payment": 12_000}
STATUSES = ("Pending", "Accepted", "Closed", "Rejected")
STREETS = ("Elm St", "Hancock St", "Pond Rd", "Main St", "Beach St", "Sea St", "Adams St", "Union St")
GIVEN = ("Maria", "James", "Linda", "Robert", "Patricia", "Kevin", "Susan", "Daniel", "Karen", "Michael")
FAMILY = ("Santos", "O'Brien", "Nguyen", "Kelly", "Walsh", "Murphy", "Costa", "Flynn", "Doyle", "Chen")


def seed_volume(fake, counts=None, seed=13):
    """The benchmark's books (10,000 customers, 20,000 estimates, 15,000 invoices, 12,000 payments
    by default), with phones in QuickBooks' free-text shapes and dates over two years."""
    counts = dict(VOLUME, **(counts or {}))
    rng = random.Random(seed)
    today = fake.now().date()
    start = fake.now() - timedelta(days=700)
    shapes = ("({a}) {b}-{c}", "{a}.{b}.{c}", "{a}-{b}-{c}", "{a}.{b}.{c} x12", "+1 {a} {b} {c}")

    def when(i, n):
        return start + timedelta(days=690 * i / max(n, 1))

    customers = []
    for i in range(counts["Customer"]):
        phone = rng.choice(shapes).format(a=rng.choice(("617", "781", "508")), b=f"{200 + i // 10000:03d}",
                                          c=f"{i % 10000:04d}")
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        fields = _customer(given, f"{family} {i}", {rng.choice(PHONE_FIELDS): phone} if i % 17 else {},
                           f"customer{i}@example.com" if i % 3 else None,
                           f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "Quincy", "02169")
        customers.append(fake.add("Customer", fields, when=when(i, counts["Customer"])))
    estimates = []
    for i in range(counts["Estimate"]):
        txn = today - timedelta(days=rng.randint(0, 700))
        status = rng.choice(STATUSES)
        accepted = txn + timedelta(days=rng.randint(0, 10)) if status in ("Accepted", "Closed") else None
        fields = _estimate(rng.choice(customers), 10_000 + i, status, txn, float(rng.randint(500, 20_000)),
                           accepted=min(accepted, today) if accepted else None)
        estimates.append(fake.add("Estimate", fields, when=when(i, counts["Estimate"])))
    by_id = {c["Id"]: c for c in customers}
    invoices = []
    for i in range(counts["Invoice"]):
        estimate = estimates[i] if i < len(estimates) and estimates[i]["TxnStatus"] == "Closed" else None
        customer = by_id[estimate["CustomerRef"]["value"]] if estimate else rng.choice(customers)
        amount = float(rng.randint(300, 15_000))
        fields = _invoice(customer, 50_000 + i, today - timedelta(days=rng.randint(0, 700)),
                          amount, amount if rng.random() < 0.2 else 0.0, estimate)
        invoices.append(fake.add("Invoice", fields, when=when(i, counts["Invoice"])))
    for i in range(counts["Payment"]):
        invoice = invoices[i % len(invoices)]
        fields = _payment(by_id[invoice["CustomerRef"]["value"]], today - timedelta(days=rng.randint(0, 700)),
                          [(invoice, invoice["TotalAmt"])])
        fake.add("Payment", fields, when=when(i, counts["Payment"]))
    return counts
