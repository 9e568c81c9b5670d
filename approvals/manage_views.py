"""Pages for one's own delegations and notifications and, for administrators, the policies.

Views read through selectors and change things only through services; a delegation or a
policy outside the viewer's reach answers 404.
"""

from collections import Counter
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from approvals import insight, policies, preferences, routing, services
from approvals.lint import lint
from approvals.manage_forms import (
    DelegationForm,
    PreferencesForm,
    PreviewForm,
    PublishForm,
    spec_to_json,
)
from approvals.models import ApprovalPolicy, Delegation
from approvals.selectors import delegate_candidates, policies_visible_to, role_holders
from approvals.specs import version_spec
from portal.core.formatting import day, moment, zone_of
from sites import policies as site_policies
from sites.policies import Capability
from sites.selectors import site_list_for_user

# --- delegations ------------------------------------------------------------------------------


def _delegations(user):
    """Delegations the viewer gave or received, newest first (one query)."""
    return (
        Delegation.objects.filter(Q(delegator=user.pk) | Q(delegate=user.pk))
        .select_related("delegator", "delegate", "site")
        .order_by("-starts_at", "-pk")
    )


def _status(delegation: Delegation, now) -> str:
    if delegation.revoked_at is not None:
        return "revoked"
    if delegation.ends_at <= now:
        return "ended"
    return "upcoming" if delegation.starts_at > now else "in force"


def _zone_of_sites(sites) -> ZoneInfo:
    """The zone most of these sites keep (the first by code on a tie); UTC without sites."""
    zones = Counter(site.time_zone for site in sites)
    return zone_of(zones.most_common(1)[0][0] if zones else "UTC")


def _period(delegation: Delegation, zone: ZoneInfo) -> str:
    """'Mon 7 Dec 2026 to Fri 11 Dec 2026' for whole days, else the two moments."""
    start, end = delegation.starts_at.astimezone(zone), delegation.ends_at.astimezone(zone)
    if start.time() == end.time() == time(0):
        last = (end - timedelta(days=1)).date()
        if last == start.date():
            return day(start.date())
        return f"{day(start.date())} to {day(last)}"
    return f"{moment(start, zone, with_zone=False)} to {moment(end, zone, with_zone=False)}"


@login_required
def delegations(request):
    """The viewer's delegations, given and received, and a form to hand approvals on."""
    sites = list(site_policies.sites_where(request.user, Capability.DECIDE).order_by("code"))
    zone = _zone_of_sites(sites or site_policies.sites_where(request.user, Capability.VIEW))
    form = DelegationForm(
        request.POST or None,
        sites=sites,
        candidates=delegate_candidates(request.user, sites) if sites else [],
        zone=zone,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            delegation = services.delegation_create(
                actor=request.user,
                delegator=request.user,
                delegate=data["delegate"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                site=data["site"],
                kind=data["kind"],
                max_amount=data["max_amount"],
                note=data["note"],
            )
        except ValidationError as error:
            _errors_onto(form, error)
        else:
            messages.success(
                request,
                f"Your approvals go to {_name(data['delegate'])}, {_period(delegation, zone)}.",
            )
            return redirect("manage:delegations")
    now = timezone.now()
    rows = [(d, _status(d, now), _period(d, zone)) for d in _delegations(request.user)]
    return render(
        request,
        "manage/delegations.html",
        {
            "form": form,
            "given": [row for row in rows if row[0].delegator_id == request.user.pk],
            "received": [row for row in rows if row[0].delegate_id == request.user.pk],
            "may_decide_somewhere": bool(sites),
            "zone": zone,
            "base_currency": settings.TOLLGATE_BASE_CURRENCY,
        },
        status=400 if form.errors else 200,
    )


def _name(person) -> str:
    return person.get_full_name() or person.get_username()


def _errors_onto(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


@login_required
@require_POST
def delegation_revoke(request, delegation_id: int):
    """End one of the viewer's delegations now; someone else's answers 404."""
    delegation = (
        Delegation.objects.filter(pk=delegation_id).select_related("delegator", "delegate").first()
    )
    if delegation is None or not policies.may_manage_delegation(request.user, delegation.delegator):
        raise Http404("No such delegation.")
    services.delegation_revoke(actor=request.user, delegation_id=delegation.pk)
    messages.success(request, f"Your delegation to {_name(delegation.delegate)} is revoked.")
    return redirect("manage:delegations")


# --- notification preferences -----------------------------------------------------------------


@login_required
def preferences_page(request):
    """How the viewer wants to hear from Tollgate."""
    current = preferences.preference_for(request.user)
    initial = {
        "new_steps": current.new_steps,
        "reminders": current.reminders,
        "decisions_on_my_requests": current.decisions_on_my_requests,
    }
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        preferences.notification_preference_set(
            actor=request.user, user=request.user, **form.cleaned_data
        )
        messages.success(request, "Your notification preferences are saved.")
        return redirect("manage:preferences")
    return render(
        request,
        "manage/preferences.html",
        {"form": form, "email": request.user.email},
        status=400 if form.errors else 200,
    )


# --- policies (administrators) ----------------------------------------------------------------


def _administrator(user) -> None:
    """Only people who administer some site see the policy pages; others get 404."""
    if not site_policies.sites_administered_by(user).exists():
        raise Http404("No such page.")


def _policy(user, policy_id: int) -> ApprovalPolicy:
    policy = next((p for p in policies_visible_to(user) if p.pk == policy_id), None)
    if policy is None:
        raise Http404("No such policy.")
    return policy


def _may_publish(user, policy: ApprovalPolicy) -> bool:
    if policy.site_id:
        return site_policies.may_administer_site(user, policy.site)
    if policy.region_id:
        return site_policies.may_administer_region(user, policy.region)
    return site_policies.may_create_region(user)


@login_required
def policies_page(request):
    """The policies governing the administrator's sites, with their versions."""
    _administrator(request.user)
    return render(
        request, "manage/policies.html", {"policies": list(policies_visible_to(request.user))}
    )


@login_required
def policy_insight(request):
    """How people decided under each rule at the administrator's sites, and which rules could
    take a fast path; publishing stays on the policy's own pages."""
    _administrator(request.user)
    wanted = request.GET.get("days", "")
    days = int(wanted) if wanted.isascii() and wanted.isdigit() else insight.DEFAULT_DAYS
    if days not in insight.PERIODS:
        days = insight.DEFAULT_DAYS
    return render(
        request,
        "manage/policy_insight.html",
        {
            "insight": insight.for_administrator(request.user, days=days),
            "periods": insight.PERIODS,
            "minutes_per_decision": insight.MINUTES_PER_DECISION,
            "candidate_min": insight.CANDIDATE_MIN,
            "candidate_percent": int(insight.CANDIDATE_SHARE * 100),
            "base_currency": settings.TOLLGATE_BASE_CURRENCY,
        },
    )


@login_required
def policy_detail(request, policy_id: int):
    """One policy: its versions, and the rules and tiers of the chosen one."""
    _administrator(request.user)
    policy = _policy(request.user, policy_id)
    versions = list(policy.versions.all())
    chosen = versions[0] if versions else None
    wanted = request.GET.get("version", "")
    if wanted.isascii() and wanted.isdigit():
        chosen = next((v for v in versions if v.number == int(wanted)), None)
        if chosen is None:
            raise Http404("No such version.")
    return render(
        request,
        "manage/policy_detail.html",
        {
            "policy": policy,
            "versions": versions,
            "chosen": chosen,
            "may_publish": _may_publish(request.user, policy),
        },
    )


@login_required
def policy_preview(request):
    """ "Who would approve this?" for a draft that is never saved."""
    _administrator(request.user)
    form = PreviewForm(request.GET or None, sites=site_list_for_user(request.user))
    preview, problem = None, ""
    if form.is_bound and form.is_valid():
        try:
            preview = _route_preview(**form.cleaned_data)
        except ValidationError as error:
            problem = " ".join(error.messages)
    return render(
        request,
        "manage/policy_preview.html",
        {"form": form, "preview": preview, "problem": problem},
        status=400 if form.errors else 200,
    )


def _route_preview(*, site, kind, amount, currency, category, customer_class, risk_flags):
    """The route and eligible people, like approvals.selectors.who_would_approve, but with
    risk flags chosen by the administrator (who_would_approve previews unflagged requests)."""
    version = routing.version_in_force(site)
    if version is None:
        raise ValidationError(f"No approval policy is in force at {site.code}.")
    selector = routing.Selector(
        kind=kind,
        amount_base=routing.to_base(amount, currency),
        category=category,
        customer_class=customer_class,
        flags=frozenset(risk_flags),
    )
    chosen = routing.route(version, selector)
    tiers = [
        (stage, tier, list(role_holders([tier.role], tier.held_at, site)))
        for stage, tier in chosen.tiers
    ]
    return {
        "version": version,
        "rule": chosen.rule,
        "added_by": chosen.added_by,
        "fast_path": chosen.auto_approve,
        "amount_base": selector.amount_base,
        "tiers": tiers,
        "site": site,
    }


@login_required
def policy_publish(request, policy_id: int):
    """Check a new version of a policy and publish it; lint errors change nothing."""
    _administrator(request.user)
    policy = _policy(request.user, policy_id)
    if not _may_publish(request.user, policy):
        raise Http404("No such policy.")
    current = next(iter(policy.versions.all()), None)
    initial = {"spec": spec_to_json(version_spec(current))} if current else {}
    form = PublishForm(request.POST or None, initial=initial)
    problems, checked = [], False
    if request.method == "POST" and form.is_valid():
        spec = form.cleaned_data["spec"]
        effective_from = form.cleaned_data["effective_from"]
        if "publish" not in request.POST:
            problems = lint(policy, spec, at=effective_from or timezone.now())
            checked = True
        else:
            try:
                version = services.policy_publish(
                    actor=request.user, policy=policy, spec=spec, effective_from=effective_from
                )
            except ValidationError as error:
                problems = error.messages
            except PermissionDenied:
                raise Http404("No such policy.") from None
            else:
                messages.success(request, f"{version} is published.")
                return redirect("manage:policy", policy_id=policy.pk)
    return render(
        request,
        "manage/policy_publish.html",
        {
            "policy": policy,
            "current": current,
            "form": form,
            "problems": problems,
            "checked": checked,
        },
        status=400 if (problems or form.errors) else 200,
    )
