"""The request page, its decisions and bulk approval (the e-mail links: approvals/link_views.py).

Every POST goes to one service. A request outside the viewer's scope answers 404 (through
approvals.selectors.request_for); which buttons show is asked of approvals.policies, so the page
and the services cannot disagree. Someone else deciding first (Conflict, or django-fsm refusing
the transition) answers the 409 page with the request's current state; bad input shows the form
again with the message and changes nothing.
"""

from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals import advice, policies, presenters, request_selectors, selectors, services
from approvals.authority import Authority, audience_among, authority_for, votes_of
from approvals.forms import (
    ApproveForm,
    BulkApproveForm,
    DelegateForm,
    RejectForm,
    WithdrawForm,
)
from approvals.models import ApprovalRequest, Attachment, HeldAt, PolicyRule
from portal.core import responses
from portal.core.errors import STALE
from sites import policies as site_policies
from sites.roles import Role

BULK_LIMIT = 200
# An inbox filter is a handful of short fields; anything longer is not one.
FROM_MAX = 500


def _request_or_404(request, request_id: int) -> ApprovalRequest:
    """The request if the viewer may see it (selectors.requests_visible_to), with what its page
    names beside it (the site, the requester, the policy and its rule) and whether it has any
    attachment in the same query."""
    visible = selectors.requests_visible_to(authority_for(request))
    related = visible.select_related("site", "requester", "policy_version__policy", "rule")
    related = related.annotate(
        has_attachments=Exists(Attachment.objects.filter(request=OuterRef("pk")))
    )
    try:
        return related.get(pk=request_id)
    except ApprovalRequest.DoesNotExist:
        raise Http404("No such approval request.") from None


def risk_flags(approval: ApprovalRequest) -> list[dict]:
    return [
        {"label": selectors.flag_label(flag["code"]), **flag} for flag in approval.risk_flags or []
    ]


def _page_context(request, approval: ApprovalRequest, from_query: str = "", **forms) -> dict:
    """Everything the request page shows; the decision forms may be passed in with errors.

    `from_query` is the inbox filter the viewer came from, carried on to "and next".

    The request's tiers and decisions are read once and serve the viewer's options, the policy
    path and who is pending; the site's grants are read once, with the names of the people
    holding them, for every pending tier and the colleagues of the delegation form; whether the
    viewer audits is judged from the roles their authority has read already.
    """
    sites = presenters.sites_named_in([approval])
    user = request.user
    deciding = authority_for(request)
    steps = list(approval.steps.order_by("position", "pk"))
    decisions = list(approval.decisions.select_related("actor", "on_behalf_of"))
    votes = votes_of(decisions)
    options = deciding.options_among(approval, steps, votes)
    actions = policies.available_actions(user, approval, options=options)
    option = options[0] if options else None
    comment_required = bool(option and option.step.comment_required)
    path = request_selectors.policy_path(approval, steps=steps, decisions=decisions)
    at_site = _SitePeople(deciding.at)
    pending = {
        tier.step.pk: at_site.named(
            tier.step.site_id,
            audience_among(
                tier.step, approval, votes, at_site.grants(tier.step.site_id), at=deciding.at
            ),
        )
        for tier in path
        if tier.step.state == "active"
    }
    for tier in path:
        if tier.step.pk in pending:
            names = (person.get_full_name() or person.username for person in pending[tier.step.pk])
            tier.pending = ", ".join(names)
    colleagues = None
    if actions["delegate"] is None and not forms.get("delegate_form"):
        others = {user.pk, approval.requester_id}
        colleagues = [p for p in at_site.people(approval.site_id) if p.pk not in others]
    retry = policies.may_retry_apply(user, approval)
    shown = advice.for_request(approval, deciding)
    initial = {**_step(option), "advice": shown.recommendation.label if shown else ""}
    audits_anywhere = site_policies.granted(deciding.grants, site_policies.Capability.AUDIT)
    return {
        "now": timezone.now(),
        "approval": approval,
        "actions": actions,
        "option": option,
        "on_behalf_of": _person(option.on_behalf_of_id, decisions) if option else None,
        "retry_allowed": retry,
        "retry_reason": None
        if retry
        else "Only an administrator of the site may retry, and only after a failed Odoo update.",
        "approve_form": forms.get("approve_form")
        or ApproveForm(comment_required=comment_required, initial=initial),
        "reject_form": forms.get("reject_form") or RejectForm(initial=initial),
        "advice": shown,
        "withdraw_form": forms.get("withdraw_form") or WithdrawForm(),
        "delegate_form": forms.get("delegate_form")
        or _delegate_form(approval, user, colleagues=colleagues)
        if actions["delegate"] is None
        else None,
        "flags": risk_flags(approval),
        # Most requests have none: then they are not asked for.
        "attachments": list(approval.attachments.all())
        if getattr(approval, "has_attachments", True)
        else [],
        "path": path,
        "pending": pending,
        "earlier": request_selectors.earlier_decisions(approval),
        "trend": request_selectors.site_trend(approval),
        "timeline": request_selectors.timeline(user, approval, audits=audits_anywhere),
        # The printable trail lives in the auditor area, which answers 404 to anyone else.
        "may_audit": site_policies.granted(
            deciding.grants, site_policies.Capability.AUDIT, approval.site_id
        ),
        "odoo_link": request_selectors.odoo_link(approval),
        "lines": presenters.line_items(approval, sites=sites),
        "no_lines": presenters.no_lines_sentence(approval),
        "detail_facts": presenters.facts(approval, sites=sites),
        "from_query": from_query,
        "odoo_record": presenters.odoo_record(approval),
        "base_currency": settings.TOLLGATE_BASE_CURRENCY,
        "next_link": next_url(approval.pk, from_query),
    }


class _SitePeople:
    """The roles in force at a site and the people holding them (by username), read once per
    site for the page: who may decide each pending tier, and the colleagues to hand on to."""

    def __init__(self, at):
        self.at = at
        self.read: dict[int, tuple[list, list]] = {}

    def _at(self, site_id: int) -> tuple[list, list]:
        if site_id not in self.read:
            self.read[site_id] = site_policies.people_at(site_id, at=self.at)
        return self.read[site_id]

    def grants(self, site_id: int) -> list:
        return self._at(site_id)[0]

    def people(self, site_id: int) -> list:
        """Everyone holding a role at the site: selectors.role_holders (every role, at site),
        which the delegation service checks, as the grant rows record it."""
        return self._at(site_id)[1]

    def named(self, site_id: int, ids: set[int]) -> list:
        """The people `ids` of a tier's audience, by username: all of them hold a role at the
        tier's site (those holding its role, and their delegates who may view the site)."""
        return [person for person in self.people(site_id) if person.pk in ids]


def _colleagues(approval: ApprovalRequest, user):
    """People with a role at the request's site, other than the viewer and the requester."""
    people = selectors.role_holders(list(Role), HeldAt.SITE, approval.site)
    return list(people.exclude(pk__in=[user.pk, approval.requester_id]))


def _colleague(approval: ApprovalRequest, user, pk: int):
    """The colleague chosen on the delegate form (the form offers only `_colleagues`)."""
    return next((person for person in _colleagues(approval, user) if person.pk == pk), None)


def _delegate_form(approval: ApprovalRequest, user, data=None, colleagues=None) -> DelegateForm:
    today = timezone.now().astimezone(ZoneInfo(approval.site.time_zone)).date()
    return DelegateForm(
        data,
        colleagues=_colleagues(approval, user) if colleagues is None else colleagues,
        today=today,
        initial={"until": today + timedelta(days=3)},
    )


def _person(user_id, decisions=()):
    """The person `user_id`, taken from the decisions already read when one of them names
    them (a delegator has often voted), else read."""
    from django.contrib.auth import get_user_model

    if not user_id:
        return None
    for decision in decisions:
        for person in (decision.actor, decision.on_behalf_of):
            if person is not None and person.pk == user_id:
                return person
    return get_user_model().objects.filter(pk=user_id).first()


def _step(option) -> dict:
    return {"step": option.step.pk} if option else {}


def from_inbox(raw: str | None) -> str:
    """The inbox filter a decision came from, as a clean query string ("" for none).

    Only re-encoded and bounded here; the inbox validates every filter when it picks the
    next item, so a forged value can only narrow or widen the viewer's own inbox.
    """
    if not raw or len(raw) > FROM_MAX:
        return ""
    query = QueryDict(raw, mutable=True)
    query.pop("after", None)
    query.pop("from", None)
    return query.urlencode()


def _after_decision(request, approval: ApprovalRequest, verb: str):
    """Back to the request, or on to the next item of the inbox under the same filter."""
    origin = from_inbox(request.POST.get("from"))
    messages.success(request, f"You {verb} {approval.reference}.")
    if request.POST.get("then") != "next":
        return redirect(_detail_url(approval.pk, origin))
    url = next_url(approval.pk, origin)
    # A decision sent by htmx would otherwise swap the next page in under the old address.
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def next_url(request_id: int, origin: str) -> str:
    """The inbox's "next item after this one" under the filter `origin`."""
    return f"{reverse('inbox:next')}?{urlencode({'done': request_id, 'from': origin})}"


def _detail_url(request_id: int, origin: str) -> str:
    url = reverse("approvals:detail", args=[request_id])
    return f"{url}?{urlencode({'from': origin})}" if origin else url


def _render_page(request, approval, *, status=200, **forms):
    origin = from_inbox(request.POST.get("from") or request.GET.get("from"))
    return render(
        request,
        "approvals/detail.html",
        _page_context(request, approval, origin, **forms),
        status=status,
    )


def stale_page(request, request_id: int, error: Exception):
    """The 409 page: someone else decided first; show what the request looks like now."""
    approval = _request_or_404(request, request_id)
    page = {"approval": approval, "path": request_selectors.policy_path(approval)}
    return responses.stale(
        request, error, reference=approval.reference, doing="deciding", context=page
    )


@login_required
def detail(request, request_id: int):
    """What is asked and why, the Odoo record, risk, context, policy path and timeline."""
    approval = _request_or_404(request, request_id)
    return _render_page(request, approval)


@login_required
@require_POST
def approve(request, request_id: int):
    approval = _request_or_404(request, request_id)
    option = next(iter(authority_for(request).options(approval)), None)
    form = ApproveForm(request.POST, comment_required=bool(option and option.step.comment_required))
    if not form.is_valid():
        return _render_page(request, approval, status=400, approve_form=form)
    try:
        services.request_approve(
            authority=authority_for(request),
            actor=request.user,
            request_id=approval.pk,
            step_id=form.cleaned_data["step"],
            comment=form.cleaned_data["comment"],
            advice=form.cleaned_data["advice"],
        )
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        add_errors(form, error, "comment")
        return _render_page(request, approval, status=400, approve_form=form)
    return _after_decision(request, approval, "approved")


@login_required
@require_POST
def reject(request, request_id: int):
    approval = _request_or_404(request, request_id)
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _render_page(request, approval, status=400, reject_form=form)
    try:
        services.request_reject(
            authority=authority_for(request),
            actor=request.user,
            request_id=approval.pk,
            step_id=form.cleaned_data["step"],
            reason=form.cleaned_data["reason"],
            advice=form.cleaned_data["advice"],
        )
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        add_errors(form, error, "reason")
        return _render_page(request, approval, status=400, reject_form=form)
    return _after_decision(request, approval, "rejected")


@login_required
@require_POST
def withdraw(request, request_id: int):
    approval = _request_or_404(request, request_id)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return _render_page(request, approval, status=400, withdraw_form=form)
    try:
        services.request_withdraw(
            actor=request.user, request_id=approval.pk, reason=form.cleaned_data["reason"]
        )
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    messages.success(request, f"You withdrew {approval.reference}.")
    return redirect("approvals:detail", approval.pk)


@login_required
@require_POST
def retry_apply(request, request_id: int):
    approval = _request_or_404(request, request_id)
    try:
        services.request_retry_apply(actor=request.user, request_id=approval.pk)
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    messages.success(request, f"The Odoo update of {approval.reference} was sent again.")
    return redirect("approvals:detail", approval.pk)


@login_required
@require_POST
def delegate(request, request_id: int):
    """Hand one's own decisions on requests like this one to a colleague until a given day.

    The service refuses (409, 403) before it reads the colleague and the day, so someone the
    page offered no form is told why rather than shown errors on a form they never saw.
    """
    approval = _request_or_404(request, request_id)
    form = _delegate_form(approval, request.user, request.POST)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    chosen = data.get("delegate")
    colleague = _colleague(approval, request.user, chosen) if chosen else None
    until = data.get("until")
    zone = ZoneInfo(approval.site.time_zone)
    try:
        services.request_delegate(
            authority=authority_for(request),
            actor=request.user,
            request_id=approval.pk,
            delegate=colleague.get_username() if colleague else None,
            ends_at=datetime.combine(until + timedelta(days=1), time.min, zone) if until else None,
            note=data.get("note", ""),
        )
    except STALE as error:
        return stale_page(request, approval.pk, error)
    except PermissionDenied as error:
        return responses.refused(request, error)
    except ValidationError as error:
        if valid:
            add_errors(form, error, "delegate")
        return _render_page(request, approval, status=400, delegate_form=form)
    name = colleague.get_full_name() or colleague.get_username()
    messages.success(
        request,
        f"{name} may now decide {approval.get_kind_display().lower()} requests at "
        f"{approval.site.code} up to this amount in your place, until the end of "
        f"{until:%d %b %Y}.",
    )
    return redirect("approvals:detail", approval.pk)


def add_errors(form, error: ValidationError, default_field: str) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(default_field, error.messages)


# --- bulk approval ----------------------------------------------------------------------------


def _bulk_candidates(authority: Authority):
    """The inbox's requests split into routine groups (same kind and rule) and the others."""
    page = selectors.inbox_for(authority, limit=BULK_LIMIT)
    entries = selectors.inbox_entries(authority, page.requests)
    # Each group is named after its rule: one query for all of them, not one per group.
    rules = PolicyRule.objects.in_bulk({entry.request.rule_id for entry in entries} - {None})
    groups: dict[str, dict] = {}
    one_by_one = []
    for entry in entries:
        if entry.bulk_blocker:
            one_by_one.append(entry)
            continue
        approval = entry.request
        key = f"{approval.kind}:{approval.rule_id}"
        group = groups.setdefault(
            key,
            {
                "key": key,
                "kind": approval.get_kind_display(),
                "rule": rules.get(approval.rule_id),
                "entries": [],
                "totals": {},
            },
        )
        group["entries"].append(entry)
        totals = group["totals"]
        totals[approval.currency] = totals.get(approval.currency, 0) + approval.amount
    return list(groups.values()), one_by_one


@login_required
@require_http_methods(["GET", "POST"])
def bulk(request):
    """Approve routine requests of one kind and rule together, with one comment."""
    groups, one_by_one = _bulk_candidates(authority_for(request))
    chosen_key = request.POST.get("group") or request.GET.get("group") or ""
    group = next((g for g in groups if g["key"] == chosen_key), groups[0] if groups else None)
    choices = [(e.request.pk, e.request.reference) for e in group["entries"]] if group else []
    if request.method == "GET":
        return _bulk_page(request, groups, one_by_one, group, BulkApproveForm(choices=choices))
    form = BulkApproveForm(request.POST, choices=choices)
    if not form.is_valid():
        return _bulk_page(request, groups, one_by_one, group, form, status=400)
    outcomes = []
    for request_id in form.cleaned_data["requests"]:
        outcomes.append(
            _bulk_approve_one(
                request.user, request_id, form.cleaned_data["comment"], authority_for(request)
            )
        )
    return render(
        request,
        "approvals/bulk_result.html",
        {
            "outcomes": outcomes,
            "approved": sum(1 for o in outcomes if o["ok"]),
            "failed": sum(1 for o in outcomes if not o["ok"]),
        },
    )


def _bulk_page(request, groups, one_by_one, group, form, *, status=200):
    return render(
        request,
        "approvals/bulk.html",
        {"groups": groups, "group": group, "one_by_one": one_by_one, "form": form},
        status=status,
    )


def _bulk_approve_one(user, request_id: int, comment: str, authority=None) -> dict:
    """Approve one request through the service; report what happened to it."""
    approval = ApprovalRequest.objects.filter(pk=request_id).only("pk", "title").first()
    label = approval.reference if approval else f"#{request_id}"
    title = approval.title if approval else ""
    try:
        services.request_approve(
            actor=user, request_id=request_id, comment=comment, authority=authority
        )
    except STALE as error:
        return {
            "id": request_id,
            "reference": label,
            "title": title,
            "ok": False,
            "message": str(error) or "Someone else decided it first.",
        }
    except (PermissionDenied, ValidationError, Http404) as error:
        text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        return {
            "id": request_id,
            "reference": label,
            "title": title,
            "ok": False,
            "message": text or "It is no longer yours to decide.",
        }
    return {
        "id": request_id,
        "reference": label,
        "title": title,
        "ok": True,
        "message": "Approved.",
    }


# --- e-mail approval links --------------------------------------------------------------------
