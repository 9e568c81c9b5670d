"""Raising a case: a new case for an event, or one more sighting of its open case."""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions import routing
from exceptions.events import CaseOpened
from exceptions.models import OPEN_CASE_STATES, SEVERITY_RANK, ExceptionCase
from exceptions.services.common import set_due
from portal.audit.services import audit_record
from portal.core.events import emit


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
        .filter(site=fields["site"], dedupe_key=fields["dedupe_key"], state__in=OPEN_CASE_STATES)
        .first()
    )
    if existing is not None:
        return _seen_again(existing, fields, at), False
    queue = routing.queue_for(kind=fields["kind"], severity=fields["severity"], site=fields["site"])
    due = routing.due(severity=fields["severity"], queue=queue, site=fields["site"], since=at)
    case = ExceptionCase(
        **fields,
        queue=queue,
        detected_at=at,
        last_seen_at=at,
        due_at=due.due_at,
        remind_at=due.remind_at,
        escalation_role=due.escalation_role,
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
    emit(CaseOpened(case))
    return case, True


def _seen_again(case: ExceptionCase, values: dict, at: datetime) -> ExceptionCase:
    before = _stakes(case) | {"occurrences": case.occurrences, "evidence": case.evidence}
    case.occurrences += 1
    case.last_seen_at = at
    # The payload stays the one that opened the case, verbatim; the evidence takes what the
    # new sighting knows on top of what earlier ones (perhaps another source) established.
    case.evidence = {**case.evidence, **values["evidence"]}
    # The Odoo record may be learnt from the second source (a carrier report came first).
    if not case.odoo_model and values["odoo_model"]:
        case.odoo_model, case.odoo_id = values["odoo_model"], values["odoo_id"]
    _raise_stakes(case, values)
    case.save()
    audit_record(
        action="case.seen_again",
        actor=None,
        obj=case,
        site=case.site,
        before=before,
        after=_stakes(case) | {"occurrences": case.occurrences, "evidence": case.evidence},
        context={"source": values["source"]},
    )
    return case


def _raise_stakes(case: ExceptionCase, values: dict) -> None:
    """A more severe sighting, or one with more money at stake, lifts the case; never lowers it.

    A higher severity brings the due time forward (counted from detection); the queue stays, as
    its owner may already be working the case. Amounts in another currency than the case's are
    not compared.
    """
    if SEVERITY_RANK[values["severity"]] > SEVERITY_RANK[case.severity]:
        case.severity = values["severity"]
        set_due(case, case.detected_at)
    amount, currency = values["amount_at_stake"], values["currency"] or case.site.currency
    if amount is None:
        return
    if case.amount_at_stake is None:
        case.amount_at_stake, case.currency = amount, values["currency"]
    elif currency == (case.currency or case.site.currency) and amount > case.amount_at_stake:
        case.amount_at_stake = amount


def _stakes(case: ExceptionCase) -> dict:
    return {
        "severity": case.severity,
        "amount_at_stake": case.amount_at_stake,
        "currency": case.currency,
        "due_at": case.due_at,
    }
