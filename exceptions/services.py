"""Every write to exception cases.

Raising follows the approvals pattern: one transaction, the open case for the same event locked
if there is one, the audit event written with the change. A second sighting of an open case
updates its evidence and counts an occurrence; it never opens a second case, and the
partial unique index on `dedupe_key` holds that even for two sightings racing each other.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions.models import OPEN_CASE_STATES, CaseKind, ExceptionCase, Queue, Severity
from portal.audit.services import audit_record

# Where a case lands and how long it may stay open, until the queue-rule configuration of the
# exceptions issue (#5) replaces these defaults.
DEFAULT_QUEUE = {
    CaseKind.SHIPMENT_DELAY: Queue.WAREHOUSE,
    CaseKind.DELIVERY_FAILED: Queue.CUSTOMER_SERVICE,
    CaseKind.RECEIPT_DISCREPANCY: Queue.WAREHOUSE,
    CaseKind.ASN_CONFLICT: Queue.PROCUREMENT,
    CaseKind.INVOICE_MISMATCH: Queue.FINANCE,
    CaseKind.RESERVATION_FAILURE: Queue.WAREHOUSE,
    CaseKind.PRICE_VARIANCE: Queue.FINANCE,
    CaseKind.RETURN_DAMAGE: Queue.CUSTOMER_SERVICE,
}
HOURS_BY_SEVERITY = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 24,
    Severity.MEDIUM: 72,
    Severity.LOW: 168,
}


def case_raise(
    *,
    kind: str,
    site,
    severity: str,
    title: str,
    source: str,
    dedupe_key: str,
    payload: dict,
    evidence: dict,
    amount_at_stake: Decimal | None = None,
    currency: str = "",
    odoo_model: str = "",
    odoo_id: int | None = None,
    at: datetime | None = None,
) -> tuple[ExceptionCase, bool]:
    """Open a case for an event, or add the sighting to its open case; returns (case, created)."""
    fields = {
        "kind": kind,
        "site": site,
        "severity": severity,
        "title": title,
        "source": source,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "evidence": evidence,
        "amount_at_stake": amount_at_stake,
        "currency": currency,
        "odoo_model": odoo_model,
        "odoo_id": odoo_id,
    }
    at = at or timezone.now()
    try:
        with transaction.atomic():
            return _raise(fields, at)
    except IntegrityError:
        # Another sighting of the same event opened the case a moment ago: join it.
        with transaction.atomic():
            return _raise(fields, at)


def _raise(fields: dict, at: datetime) -> tuple[ExceptionCase, bool]:
    existing = (
        ExceptionCase.objects.select_for_update()
        .filter(dedupe_key=fields["dedupe_key"], state__in=OPEN_CASE_STATES)
        .first()
    )
    if existing is not None:
        return _seen_again(existing, fields, at), False
    case = ExceptionCase(
        **fields,
        queue=DEFAULT_QUEUE[fields["kind"]],
        detected_at=at,
        last_seen_at=at,
        due_at=at + timedelta(hours=HOURS_BY_SEVERITY[fields["severity"]]),
    )
    case.full_clean(exclude=["state"])
    case.save()
    audit_record(
        action="case.opened",
        actor=None,
        obj=case,
        site=case.site,
        after={"kind": case.kind, "severity": case.severity, "queue": case.queue},
        context={"source": case.source},
    )
    return case, True


def _seen_again(case: ExceptionCase, values: dict, at: datetime) -> ExceptionCase:
    before = {"occurrences": case.occurrences, "evidence": case.evidence}
    case.occurrences += 1
    case.last_seen_at = at
    case.evidence = values["evidence"]
    case.payload = values["payload"]
    case.amount_at_stake = values["amount_at_stake"]
    case.save(
        update_fields=["occurrences", "last_seen_at", "evidence", "payload", "amount_at_stake"]
    )
    audit_record(
        action="case.seen_again",
        actor=None,
        obj=case,
        site=case.site,
        before=before,
        after={"occurrences": case.occurrences, "evidence": case.evidence},
        context={"source": values["source"]},
    )
    return case
