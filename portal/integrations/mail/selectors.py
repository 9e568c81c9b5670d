"""Reads that list or scope mail in triage, and what Tollgate knows of the documents mails name."""

from django.db.models import Q, QuerySet

from approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from portal.integrations.mail import policies
from portal.integrations.mail.errors import MailRefused
from portal.integrations.mail.models import Mailbox, SenderTemplate, TriageItem, TriageState
from sites.models import Site


def triage_items_for(user, *, state: str = TriageState.OPEN) -> QuerySet[TriageItem]:
    """The triage items `user` works, in `state`, oldest waiting first (decided: newest first)."""
    order = ["created_at", "id"] if state == TriageState.OPEN else ["-decided_at", "-id"]
    return (
        TriageItem.objects.filter(policies.visible_items(user), state=state)
        .select_related("message__mailbox", "message__case", "site", "decided_by")
        .order_by(*order)
    )


def triage_item_for(user, item_id: int) -> TriageItem:
    """One item `user` works, in any state; TriageItem.DoesNotExist when out of their reach."""
    return (
        TriageItem.objects.filter(policies.visible_items(user))
        .select_related("message__mailbox", "message__case", "site", "decided_by")
        .get(pk=item_id)
    )


def active_templates() -> list[SenderTemplate]:
    return list(SenderTemplate.objects.filter(active=True).order_by("name"))


def known_document_site(reference: str) -> Site | None:
    """The site of an Odoo document Tollgate has synced (a case or a request names it), or None."""
    if not reference:
        return None
    case = (
        ExceptionCase.objects.filter(
            Q(payload__name=reference)
            | Q(payload__picking_ref=reference)
            | Q(payload__order_ref=reference)
            | Q(evidence__origin=reference)
            | Q(evidence__order=reference)
        )
        .select_related("site")
        .order_by("-id")
        .first()
    )
    if case is not None:
        return case.site
    request = (
        ApprovalRequest.objects.filter(
            Q(odoo_snapshot__name=reference) | Q(details__odoo_reference=reference)
        )
        .select_related("site")
        .order_by("-id")
        .first()
    )
    return request.site if request is not None else None


def site_named_by(reference: str) -> Site | None:
    """The open site whose code starts an Odoo transfer's name (AMS/OUT/00042), if any."""
    code = reference.split("/", 1)[0] if "/" in reference else ""
    return Site.objects.filter(code=code, active=True).first() if code else None


def template_named(name: str) -> SenderTemplate | None:
    return SenderTemplate.objects.filter(name=name).first() if name else None


def mailbox_named(name: str) -> Mailbox:
    """The mailbox called `name`; MailRefused naming the mailboxes there are when none is."""
    mailbox = Mailbox.objects.filter(name=name).first()
    if mailbox is None:
        names = ", ".join(Mailbox.objects.values_list("name", flat=True)) or "none yet"
        raise MailRefused(f"There is no mailbox called {name!r}; the mailboxes are: {names}.")
    return mailbox
