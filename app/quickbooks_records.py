"""QuickBooks JSON records as mirror rows: pure functions, one per entity."""
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

ENTITIES = ("Customer", "Estimate", "Invoice", "Payment")


def _text(value, limit):
    if value is None:
        return None
    value = str(value).replace("\x00", "").strip()
    return value[:limit] or None


def _money(value):
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def _date(value):
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def parse_time(value):
    """QuickBooks' '2026-11-30T08:15:00-08:00' as naive UTC (how every DateTime is stored)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _token(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _ref(record, name):
    ref = record.get(name) or {}
    return _text(ref.get("value"), 32), _text(ref.get("name"), 255)


def _common(record):
    return {"qb_id": _text(record.get("Id"), 32), "sync_token": _token(record.get("SyncToken")),
            "deleted": str(record.get("status", "")).lower() == "deleted",
            "last_updated": parse_time((record.get("MetaData") or {}).get("LastUpdatedTime"))}


def _phone(record, name):
    return _text((record.get(name) or {}).get("FreeFormNumber"), 100)


def customer_row(record):
    row = _common(record)
    if row["deleted"]:
        return row
    bill = record.get("BillAddr") or {}
    row.update(
        display_name=_text(record.get("DisplayName"), 255), given_name=_text(record.get("GivenName"), 100),
        family_name=_text(record.get("FamilyName"), 100), company_name=_text(record.get("CompanyName"), 255),
        primary_phone=_phone(record, "PrimaryPhone"), mobile=_phone(record, "Mobile"),
        alternate_phone=_phone(record, "AlternatePhone"),
        email=_text((record.get("PrimaryEmailAddr") or {}).get("Address"), 255),
        bill_line1=_text(bill.get("Line1"), 255), bill_city=_text(bill.get("City"), 100),
        bill_state=_text(bill.get("CountrySubDivisionCode"), 30), bill_zip=_text(bill.get("PostalCode"), 20),
        active=record.get("Active", True) not in (False, "false"), balance=_money(record.get("Balance")))
    return row


def _address(record):
    """The ship address when it has a street, else the bill address: (line1, zip)."""
    for name in ("ShipAddr", "BillAddr"):
        address = record.get(name) or {}
        if address.get("Line1"):
            return _text(address.get("Line1"), 255), _text(address.get("PostalCode"), 20)
    return None, None


def estimate_row(record):
    row = _common(record)
    if row["deleted"]:
        return row
    customer, name = _ref(record, "CustomerRef")
    line1, zip_code = _address(record)
    row.update(doc_number=_text(record.get("DocNumber"), 30), status=_text(record.get("TxnStatus"), 20),
               txn_date=_date(record.get("TxnDate")), accepted_date=_date(record.get("AcceptedDate")),
               expiration_date=_date(record.get("ExpirationDate")), total=_money(record.get("TotalAmt")),
               customer_qb_id=customer, customer_name=name, address_line1=line1, address_zip=zip_code)
    return row


def _linked(links, kind):
    return [str(link.get("TxnId")) for link in links or [] if link.get("TxnType") == kind and link.get("TxnId")]


def invoice_row(record):
    row = _common(record)
    if row["deleted"]:
        return row
    customer, name = _ref(record, "CustomerRef")
    estimates = _linked(record.get("LinkedTxn"), "Estimate")
    row.update(doc_number=_text(record.get("DocNumber"), 30), txn_date=_date(record.get("TxnDate")),
               due_date=_date(record.get("DueDate")), total=_money(record.get("TotalAmt")),
               balance=_money(record.get("Balance")), customer_qb_id=customer, customer_name=name,
               estimate_qb_id=_text(estimates[0], 32) if estimates else None)
    return row


def payment_row(record):
    """The payment's row, and under "_applied" {invoice qb_id: amount} from its lines."""
    row = _common(record)
    if row["deleted"]:
        return row
    customer, name = _ref(record, "CustomerRef")
    applied = {}
    for line in record.get("Line") or []:
        invoices = _linked(line.get("LinkedTxn"), "Invoice")
        amount = _money(line.get("Amount")) or Decimal("0.00")
        for qb_id in invoices[:1]:  # a line pays one invoice
            applied[qb_id[:32]] = applied.get(qb_id[:32], Decimal("0.00")) + amount
    row.update(txn_date=_date(record.get("TxnDate")), amount=_money(record.get("TotalAmt")),
               unapplied=_money(record.get("UnappliedAmt")), customer_qb_id=customer, customer_name=name,
               _applied=applied)
    return row


PARSERS = {"Customer": customer_row, "Estimate": estimate_row, "Invoice": invoice_row, "Payment": payment_row}
