"""Deciding from a step e-mail's link: the confirmation page and the decision it posts."""

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from approvals import email_links, selectors
from approvals.authority import authority_for
from approvals.forms import LinkDecisionForm
from approvals.models import RequestState
from approvals.views import add_errors, risk_flags, stale_page
from portal.core import responses
from portal.core.errors import STALE


@login_required
@require_http_methods(["GET", "POST"])
def email_link(request, token: str):
    """A link from a step e-mail: a GET only shows the confirmation; the POST decides."""
    try:
        link = email_links.read(token)
        email_links.check(link, request.user)
    except email_links.LinkInvalid as error:
        return render(request, "approvals/link_invalid.html", {"message": str(error)}, status=400)
    step = (
        selectors.requests_visible_to(authority_for(request))
        .filter(steps__pk=link.step_id)
        .select_related("site", "requester")
        .first()
    )
    if step is None:
        raise Http404("No such approval request.")
    approval = step
    tier = approval.steps.get(pk=link.step_id)
    needs_password = email_links.needs_password(approval)
    form_args = {"needs_password": needs_password, "comment_required": tier.comment_required}
    if request.method == "GET":
        form = LinkDecisionForm(**form_args)
        return _link_page(request, approval, tier, form)
    form = LinkDecisionForm(request.POST, **form_args)
    if form.is_valid() and needs_password and not _password_confirmed(request, form):
        form.add_error("password", "Enter your password to decide this amount.")
    if not form.is_valid():
        return _link_page(request, approval, tier, form, status=400)
    try:
        email_links.link_decide(
            actor=request.user,
            link=link,
            outcome=form.cleaned_data["outcome"],
            comment=form.cleaned_data["comment"],
            password=form.cleaned_data.get("password", ""),
        )
    except email_links.LinkInvalid as error:
        return render(request, "approvals/link_invalid.html", {"message": str(error)}, status=400)
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        add_errors(form, error, "comment")
        return _link_page(request, approval, tier, form, status=400)
    verb = "approved" if form.cleaned_data["outcome"] == "approve" else "rejected"
    messages.success(request, f"You {verb} {approval.reference}.")
    return redirect("approvals:detail", approval.pk)


def _password_confirmed(request, form: LinkDecisionForm) -> bool:
    """Check the typed password through the sign-in backends, so that failures count towards
    the same lockout as the sign-in form (a stolen session cannot guess the password here)."""
    person = authenticate(
        request, username=request.user.get_username(), password=form.cleaned_data["password"]
    )
    return person is not None and person.pk == request.user.pk


def _link_page(request, approval, tier, form, *, status=200):
    return render(
        request,
        "approvals/link_confirm.html",
        {
            "approval": approval,
            "tier": tier,
            "form": form,
            "flags": risk_flags(approval),
            "open": approval.state == RequestState.IN_REVIEW,
        },
        status=status,
    )
