"""Approval links in e-mails that a mail scanner cannot use to decide.

A link names one tier and one person, is signed with a salt of its own, expires after
`APPROVAL_LINK_MAX_AGE_HOURS` and works once. Opening it (a GET, which scanners do) only shows
a confirmation page; the decision is a POST by the signed-in person the link was made for, and
above `APPROVAL_LINK_REAUTH_AMOUNT` (base currency) they type their password again. The use of a
link is recorded in the audit ledger in the same transaction as the decision, which is also
what makes it single-use: a link whose use is on record is refused.
"""

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from approvals import services
from approvals.models import ApprovalRequest, ApprovalStep, Decision
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record

SALT = "tollgate.approvals.email-link"
USED = "approval_link.used"


class LinkInvalid(Exception):
    """The link is forged, expired, already used or not for the person holding it."""


@dataclass(frozen=True)
class Link:
    step_id: int
    user_id: int
    nonce: str


def max_age_seconds() -> int:
    return int(getattr(settings, "APPROVAL_LINK_MAX_AGE_HOURS", 72)) * 3600


def reauth_amount() -> Decimal:
    return Decimal(str(getattr(settings, "APPROVAL_LINK_REAUTH_AMOUNT", 10000)))


def make_token(step: ApprovalStep, person) -> str:
    """A signed token for `person` to decide `step`; a fresh nonce every time."""
    payload = {"s": step.pk, "u": person.pk, "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=SALT, compress=True)


def link_url(step: ApprovalStep, person) -> str:
    """The absolute address of the confirmation page, for the step e-mail."""
    path = reverse("approvals:email_link", args=[make_token(step, person)])
    return f"{settings.TOLLGATE_BASE_URL.rstrip('/')}{path}"


def read(token: str) -> Link:
    """The link a token stands for; LinkInvalid when forged, expired or malformed."""
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age_seconds())
        return Link(int(data["s"]), int(data["u"]), str(data["n"]))
    except signing.SignatureExpired:
        raise LinkInvalid("This link has expired. Open the request from your inbox.") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid("This link is not valid. Open the request from your inbox.") from None


def was_used(link: Link) -> bool:
    return AuditEvent.objects.filter(action=USED, context__link=link.nonce).exists()


def check(link: Link, user) -> None:
    """Refuse a link for someone else or one already used."""
    if user.pk != link.user_id:
        raise LinkInvalid("This link was sent to someone else. Open the request from your inbox.")
    if was_used(link):
        raise LinkInvalid("This link has already been used. Open the request from your inbox.")


def needs_password(request: ApprovalRequest) -> bool:
    return (request.amount_base or Decimal(0)) >= reauth_amount()


def link_decide(*, actor, link: Link, outcome: str, comment: str, password: str = "") -> Decision:
    """Decide the link's tier as `actor`, once; locks the request, records the link's use."""
    step = ApprovalStep.objects.select_related("request").filter(pk=link.step_id).first()
    if step is None:
        raise LinkInvalid("This link is not valid. Open the request from your inbox.")
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update(of=("self",)).get(pk=step.request_id)
        check(link, actor)
        if needs_password(request) and not actor.check_password(password):
            raise ValidationError({"password": "Enter your password to decide this amount."})
        if outcome == "approve":
            decision = services.request_approve(
                actor=actor, request_id=request.pk, step_id=step.pk, comment=comment
            )
        elif outcome == "reject":
            decision = services.request_reject(
                actor=actor, request_id=request.pk, step_id=step.pk, reason=comment
            )
        else:
            raise ValidationError({"outcome": "Choose approve or reject."})
        audit_record(
            action=USED,
            actor=actor,
            obj=request,
            site=request.site,
            after={"tier": step.position, "outcome": outcome},
            context={"link": link.nonce},
        )
    return decision
