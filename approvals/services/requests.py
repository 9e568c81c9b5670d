"""Raising, editing, submitting, withdrawing and resubmitting approval requests."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals import kinds, policies, risk, routing, uploads
from approvals.events import RequestWithdrawn
from approvals.models import ApprovalRequest, RequestState
from approvals.services.attachments import attach, carry_attachments
from approvals.services.common import audit_transition, locked, route_selector, summary
from approvals.services.review import close_open_steps, fast_path, open_review
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from portal.core.events import emit
from portal.core.textlimits import COMMENT_MAX, JUSTIFICATION_MAX, refuse_overlong

S = RequestState


def request_create(
    *,
    requester,
    kind: str,
    site,
    title: str,
    reason: str,
    amount: Decimal,
    currency: str,
    category: str = "",
    customer_class: str = "",
    counterparty: str = "",
    counterparty_ref: str = "",
    details: dict | None = None,
    odoo_model: str = "",
    odoo_id: int | None = None,
    odoo_snapshot: dict | None = None,
    odoo_author_ref: str = "",
    odoo_author: str = "",
    odoo_asked_at: datetime | None = None,
    by_system: bool = False,
    revision_of: ApprovalRequest | None = None,
) -> ApprovalRequest:
    """Record a draft request; `by_system` for requests raised from Odoo records, which say
    who made the record in Odoo and when it was made or asked for approval there."""
    refuse_overlong(JUSTIFICATION_MAX, reason=reason)
    if not by_system and not policies.may_raise(requester, site):
        raise PermissionDenied(f"You may not raise requests at {site.code}.")
    details = details or {}
    kinds.validate_request_fields(
        kind=kind,
        amount=amount,
        currency=currency,
        reason=reason,
        category=category,
        customer_class=customer_class,
        counterparty=counterparty,
        details=details,
        odoo_model=odoo_model,
    )
    with transaction.atomic():
        request = ApprovalRequest(
            kind=kind,
            site=site,
            requester=requester,
            title=title,
            reason=reason,
            amount=amount,
            currency=currency,
            category=category,
            customer_class=customer_class,
            counterparty=counterparty,
            counterparty_ref=counterparty_ref,
            details=details,
            odoo_model=odoo_model or (kinds.KINDS[kind].odoo_model if odoo_id else ""),
            odoo_id=odoo_id,
            odoo_snapshot=odoo_snapshot or {},
            odoo_author_ref=odoo_author_ref,
            odoo_author=odoo_author,
            odoo_asked_at=odoo_asked_at,
            revision_of=revision_of,
            revision=revision_of.revision + 1 if revision_of else 1,
        )
        request.full_clean(exclude=["state"])  # the state is the machine's to set
        request.save()
        audit_record(
            action="request.created",
            actor=None if by_system else requester,
            obj=request,
            site=site,
            after=summary(request),
        )
    return request


def request_raise(*, requester, submit: bool = True, attachments=(), **fields) -> ApprovalRequest:
    """Record a request with its documents and, unless `submit` is False, route it: all of it
    happens or none of it. `attachments` are uploaded files, checked by approvals.uploads."""
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        request = request_create(requester=requester, **fields)
        for upload in checked:
            attach(request, requester, upload)
        if submit:
            request = request_submit(actor=requester, request_id=request.pk)
    return request


_DRAFT_FIELDS = (
    "site",
    "title",
    "reason",
    "amount",
    "currency",
    "category",
    "customer_class",
    "counterparty",
    "counterparty_ref",
    "details",
)


def request_update_draft(
    *, actor, request_id: int, submit: bool = False, attachments=(), **changes
) -> ApprovalRequest:
    """The requester changes a draft (and may submit it at once); locks the request."""
    unknown = set(changes) - set(_DRAFT_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot change on a draft: {sorted(unknown)}.")
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        request = locked(request_id)
        if not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may change this draft.")
        if not policies.may_edit_draft(actor, request):
            raise Conflict(
                f"{request.reference} is already {request.get_state_display().lower()}; "
                "a submitted request can no longer be edited."
            )
        site = changes.get("site", request.site)
        if site.pk != request.site_id and not policies.may_raise(actor, site):
            raise PermissionDenied(f"You may not raise requests at {site.code}.")
        before = summary(request)
        for name, value in changes.items():
            setattr(request, name, value)
        kinds.validate_request_fields(
            kind=request.kind,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
            category=request.category,
            customer_class=request.customer_class,
            counterparty=request.counterparty,
            details=request.details or {},
            odoo_model=request.odoo_model,
        )
        request.full_clean(exclude=["state"])
        request.save()
        audit_record(
            action="request.edited",
            actor=actor,
            obj=request,
            site=request.site,
            before=before,
            after=summary(request),
        )
        for upload in checked:
            attach(request, actor, upload)
        if submit:
            request = request_submit(actor=actor, request_id=request.pk)
    return request


def request_submit(*, actor, request_id: int, at: datetime | None = None) -> ApprovalRequest:
    """Route a draft: approve it on the fast path, or open its first tiers for decision.

    Locks the request row.
    """
    at = at or timezone.now()
    with transaction.atomic():
        request = locked(request_id)
        if actor is not None and not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may submit this request.")
        if request.state != S.DRAFT:
            raise Conflict(f"This request is already {request.get_state_display().lower()}.")
        request.amount_base = routing.to_base(request.amount, request.currency, at=at)
        version = routing.version_in_force(request.site, at=at)
        if version is None:
            raise ValidationError(f"No approval policy is in force at {request.site.code}.")
        request.risk_flags = risk.assess(request, version=version, at=at)
        chosen = routing.route(version, route_selector(request))
        request.policy_version, request.rule = version, chosen.rule
        request.submit()
        request.submitted_at = at
        audit_transition(request, actor, "request.submitted", S.DRAFT)
        if chosen.auto_approve:
            fast_path(request, chosen, at)
        else:
            open_review(request, chosen, at)
    return request


def request_withdraw(*, actor, request_id: int, reason: str = "") -> ApprovalRequest:
    """The requester takes the request back while nothing is final; locks the request."""
    refuse_overlong(COMMENT_MAX, reason=reason)
    with transaction.atomic():
        request = locked(request_id)
        if not policies.is_requester(actor, request):
            raise PermissionDenied("Only the requester may withdraw this request.")
        if not policies.may_withdraw(actor, request):
            raise Conflict(
                f"{request.reference} is already {request.get_state_display().lower()}; "
                "it can no longer be withdrawn."
            )
        previous = request.state
        close_open_steps(request)
        request.withdraw()
        request.save()
        audit_transition(request, actor, "request.withdrawn", previous, comment=reason)
        # A case waiting for this write-off is handed back to its queue, not left waiting.
        emit(RequestWithdrawn(request))
    return request


_RESUBMIT_COPIES = (
    "kind",
    "site",
    "title",
    "amount",
    "currency",
    "category",
    "customer_class",
    "counterparty",
    "counterparty_ref",
    "details",
    "odoo_model",
    "odoo_snapshot",
    "odoo_author_ref",
    "odoo_author",
)


def request_resubmit(
    *, actor, request_id: int, reason: str, submit: bool = False, attachments=(), **changes
) -> ApprovalRequest:
    """Raise a rejected request again as its next revision, a new draft (routed at once when
    `submit`), with any new documents; the old one stays as it was."""
    allowed = {"title", "amount", "currency", "category", "customer_class", "details"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"These fields cannot change on resubmission: {sorted(unknown)}.")
    checked = [uploads.check(upload) for upload in attachments]
    with transaction.atomic():
        old = locked(request_id)
        if not policies.may_resubmit(actor, old):
            raise PermissionDenied("Only the requester may raise a rejected request again, once.")
        fields = {name: getattr(old, name) for name in _RESUBMIT_COPIES}
        fields.update(changes)
        new = request_create(
            requester=actor, reason=reason, odoo_id=old.odoo_id, revision_of=old, **fields
        )
        audit_record(
            action="request.resubmitted",
            actor=actor,
            obj=old,
            site=old.site,
            after={"next_revision": new.reference},
            comment=reason,
        )
        carry_attachments(old, new, actor)
        for upload in checked:
            attach(new, actor, upload)
        if submit:
            new = request_submit(actor=actor, request_id=new.pk)
    return new
