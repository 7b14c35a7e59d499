"""QuickBooks records as the API returns them, and an in-memory source the sync reads from."""
from datetime import datetime, timedelta, timezone


class CdcTooOld(Exception):
    pass


class MemorySource:
    """query_all / changes_since / get_entity over dicts, with a clock the test moves."""

    CdcTooOld = CdcTooOld

    def __init__(self):
        self.records = {"Customer": {}, "Estimate": {}, "Invoice": {}, "Payment": {}}
        self.deleted = {"Customer": {}, "Estimate": {}, "Invoice": {}, "Payment": {}}
        self.calls = []

    def put(self, entity, record, when=None):
        when = when or datetime.now(timezone.utc)
        old = self.records[entity].get(record["Id"])
        record = {**record, "SyncToken": str(int(old["SyncToken"]) + 1) if old else record.get("SyncToken", "0"),
                  "MetaData": {"LastUpdatedTime": when.isoformat()}}
        self.records[entity][record["Id"]] = record
        return record

    def delete(self, entity, qb_id, when=None):
        when = when or datetime.now(timezone.utc)
        self.records[entity].pop(qb_id)
        self.deleted[entity][qb_id] = {"Id": qb_id, "status": "Deleted",
                                       "MetaData": {"LastUpdatedTime": when.isoformat()}}

    def query_all(self, entity, where=None):
        self.calls.append(("query", entity, where))
        since = None
        if where and "LastUpdatedTime >" in where:
            since = datetime.fromisoformat(where.split("LastUpdatedTime > '")[1].rstrip("'").replace("Z", "+00:00"))
        for record in self.records[entity].values():
            if since is None or datetime.fromisoformat(record["MetaData"]["LastUpdatedTime"]) > since:
                yield record

    def changes_since(self, entities, since):
        self.calls.append(("cdc", tuple(entities), since))
        since = since.replace(tzinfo=timezone.utc)
        if datetime.now(timezone.utc) - since > timedelta(days=30):
            raise CdcTooOld("changedSince is more than 30 days ago")
        out = {}
        for entity in entities:
            rows = [*self.records[entity].values(), *self.deleted[entity].values()]
            out[entity] = [r for r in rows if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) > since]
        return out

    def get_entity(self, entity, qb_id):
        self.calls.append(("get", entity, qb_id))
        return self.records[entity].get(str(qb_id))


def customer(qb_id, given="Pat", family="Lee", phones=None, email=None, street=None, zip_code="02184", **extra):
    record = {"Id": str(qb_id), "SyncToken": "0", "DisplayName": f"{given} {family}".strip(), "GivenName": given,
              "FamilyName": family, "Active": True, "Balance": 0}
    for field, number in (phones or {}).items():
        record[field] = {"FreeFormNumber": number}
    if email:
        record["PrimaryEmailAddr"] = {"Address": email}
    if street:
        record["BillAddr"] = {"Line1": street, "City": "Braintree", "CountrySubDivisionCode": "MA",
                              "PostalCode": zip_code}
    record.update(extra)
    return record


def estimate(qb_id, customer_id, total, status="Pending", txn_date="2026-11-01", accepted=None, doc=None, **extra):
    record = {"Id": str(qb_id), "SyncToken": "0", "DocNumber": doc or f"E{qb_id}", "TxnStatus": status,
              "TxnDate": txn_date, "TotalAmt": total, "CustomerRef": {"value": str(customer_id), "name": "x"}}
    if accepted:
        record["AcceptedDate"] = accepted
    record.update(extra)
    return record


def invoice(qb_id, customer_id, total, balance, due, estimate_id=None, txn_date="2026-11-01"):
    record = {"Id": str(qb_id), "SyncToken": "0", "DocNumber": f"I{qb_id}", "TxnDate": txn_date, "DueDate": due,
              "TotalAmt": total, "Balance": balance, "CustomerRef": {"value": str(customer_id), "name": "x"},
              "LinkedTxn": [{"TxnId": str(estimate_id), "TxnType": "Estimate"}] if estimate_id else []}
    return record


def payment(qb_id, customer_id, txn_date, lines):
    return {"Id": str(qb_id), "SyncToken": "0", "TxnDate": txn_date, "TotalAmt": sum(a for _, a in lines),
            "UnappliedAmt": 0, "CustomerRef": {"value": str(customer_id), "name": "x"},
            "Line": [{"Amount": a, "LinkedTxn": [{"TxnId": str(i), "TxnType": "Invoice"}]} for i, a in lines]}
