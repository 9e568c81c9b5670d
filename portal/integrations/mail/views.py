"""The triage queue and the triage item page.

Every POST goes to one mail service call. An item outside the person's reach answers 404; one
someone else decided first answers 409 with its state; bad input shows the form again with the
reason and changes nothing. The mail is shown as text, escaped: nothing from it is rendered as
markup.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from portal.core import responses
from portal.core.errors import Conflict
from portal.integrations.mail import reading, selectors, services
from portal.integrations.mail.forms import ConfirmForm, DismissForm
from portal.integrations.mail.models import TriageItem, TriageState

STALE = (Conflict, TransitionNotAllowed, ConcurrentTransition)
SHOWN = 200


@login_required
def triage(request):
    """The mails waiting for the person (or those decided), at the sites where they work them."""
    decided = request.GET.get("show") == "decided"
    items = selectors.triage_items_for(
        request.user, state=TriageState.CONFIRMED if decided else TriageState.OPEN
    )
    if decided:
        items = selectors.triage_items_for(request.user, state=TriageState.DISMISSED) | items
        items = items.order_by("-decided_at", "-id")
    rows = list(items[:SHOWN])
    return render(
        request,
        "mail/triage.html",
        {"rows": rows, "decided": decided, "more": len(rows) == SHOWN},
    )


def _item_or_404(user, item_id: int) -> TriageItem:
    try:
        return selectors.triage_item_for(user, item_id)
    except TriageItem.DoesNotExist:
        raise Http404("No such mail in triage.") from None


@login_required
def item(request, item_id: int):
    return _page(request, _item_or_404(request.user, item_id))


def _page(request, triage_item: TriageItem, *, status: int = 200, **forms):
    message = triage_item.message
    letter = reading.read(bytes(message.raw)) if message.raw else None
    extraction = message.extraction or {}
    context = {
        "item": triage_item,
        "message": message,
        "letter": letter,
        "confidence": extraction.get("confidence"),
        "template": extraction.get("template"),
        "is_open": triage_item.state == TriageState.OPEN,
        "confirm_form": forms.get("confirm_form") or ConfirmForm(item=triage_item),
        "dismiss_form": forms.get("dismiss_form") or DismissForm(auto_id="dismiss_%s"),
    }
    return render(request, "mail/item.html", context, status=status)


@login_required
@require_POST
def confirm(request, item_id: int):
    triage_item = _item_or_404(request.user, item_id)
    form = ConfirmForm(request.POST, item=triage_item)
    if not form.is_valid():
        return _page(request, triage_item, status=400, confirm_form=form)
    try:
        done = services.triage_confirm(
            actor=request.user,
            item_id=triage_item.pk,
            kind=form.cleaned_data["kind"],
            values=form.values(),
        )
    except ValidationError as error:
        for text in error.messages:
            form.add_error(None, text)
        return _page(request, triage_item, status=400, confirm_form=form)
    except STALE as error:
        return _stale(request, triage_item, error)
    case = done.message.case
    if case is None:
        messages.success(request, f"{done.message.reference} is confirmed; it needs no case.")
        return redirect("mail:triage")
    messages.success(request, f"{done.message.reference} is confirmed as {case.reference}.")
    return redirect("exceptions:detail", case.pk)


@login_required
@require_POST
def dismiss(request, item_id: int):
    triage_item = _item_or_404(request.user, item_id)
    form = DismissForm(request.POST, auto_id="dismiss_%s")
    if not form.is_valid():
        return _page(request, triage_item, status=400, dismiss_form=form)
    try:
        services.triage_dismiss(
            actor=request.user, item_id=triage_item.pk, reason=form.cleaned_data["reason"]
        )
    except STALE as error:
        return _stale(request, triage_item, error)
    messages.success(request, f"{triage_item.message.reference} is dismissed.")
    return redirect("mail:triage")


def _stale(request, triage_item: TriageItem, error: Exception):
    fresh = _item_or_404(request.user, triage_item.pk)
    return responses.stale(
        request,
        error,
        reference=fresh.message.reference,
        doing="triaging it",
        context={"triage_item": fresh},
    )
