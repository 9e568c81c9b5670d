"""Checks a policy version must pass before it is published; each error names its rule.

Four mistakes would otherwise surface only when a request gets stuck: a tier naming a role that
decides nothing (a requester, auditor or administrator), a tier nobody can decide at some site
the version governs, two route rules that both claim the same request but
route it differently, and chains longer than anyone will work through.
"""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from approvals.models import (
    ApprovalPolicy,
    HeldAt,
    OnBreach,
    PolicyRule,
    PolicyVersion,
    RequestKind,
)
from approvals.specs import RuleSpec, TierSpec, VersionSpec
from portal.core.periods import membership_in_force
from sites.models import Membership, Site
from sites.roles import DECIDING_ROLES, Role

ROUTE, ADD = PolicyRule.Effect.ROUTE, PolicyRule.Effect.ADD

# Requesters raise, auditors read and administrators configure: a tier naming one of them would
# wait for a decision its holders are never meant to take (sites.roles.DECIDING_ROLES).
_DECIDERS = [role.label.lower() for role in Role if role in DECIDING_ROLES]
_ONLY_DECIDERS = (
    f"only the {', '.join(_DECIDERS[:-1])} and {_DECIDERS[-1]} roles decide approval tiers"
)


def lint(policy: ApprovalPolicy, spec: VersionSpec, *, at: datetime) -> list[str]:
    """Every reason `spec` may not be published for `policy` from `at`; empty when it may."""
    errors = _version_errors(spec)
    errors += [error for rule in spec.rules for error in _shape_errors(rule)]
    names = [rule.name for rule in spec.rules]
    errors += [
        f"Rule {name!r}: two rules have this name."
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
    if errors:
        return errors
    errors += _overlap_errors(spec)
    errors += _chain_errors(spec)
    errors += _staffing_errors(policy, spec, at)
    return errors


def _version_errors(spec: VersionSpec) -> list[str]:
    found = []
    if not 0 <= spec.fast_path_sample_rate <= 1:
        found.append("The fast-path sample rate must be between 0 and 1.")
    if spec.drift_tolerance_pct < 0:
        found.append("The drift tolerance cannot be negative.")
    if not spec.rules:
        found.append("A policy version needs at least one rule.")
    return found


def _shape_errors(rule: RuleSpec) -> list[str]:
    found = []
    longest = PolicyRule._meta.get_field("name").max_length
    if not rule.name.strip() or len(rule.name) > longest:
        found.append(f"a rule needs a name of 1 to {longest} characters")
    unknown = set(rule.kinds) - set(RequestKind.values)
    if unknown:
        found.append(f"unknown kinds {', '.join(sorted(unknown))}")
    bounded = rule.min_amount is not None and rule.max_amount is not None
    if bounded and rule.min_amount >= rule.max_amount:
        found.append("the amount band is empty (minimum is not below maximum)")
    if rule.effect == ROUTE and rule.risk_flags:
        found.append("a route rule cannot select on risk flags; use an add rule for flags")
    if rule.effect == ADD and rule.auto_approve_below is not None:
        found.append("an add rule cannot auto-approve")
    if not rule.tiers and not _always_fast(rule):
        found.append("it has no tiers, so requests it selects could never be approved")
    for index, tier in enumerate(rule.tiers, start=1):
        found += [f"tier {index}: {problem}" for problem in _tier_errors(tier)]
    return [f"Rule {rule.name!r}: {problem}." for problem in found]


def _tier_errors(tier: TierSpec) -> list[str]:
    found = []
    if tier.role not in Role.values:
        found.append(f"unknown role {tier.role!r}")
    elif tier.role not in DECIDING_ROLES:
        found.append(f"the {_label(tier.role)} role decides nothing ({_ONLY_DECIDERS})")
    if tier.held_at not in HeldAt.values:
        found.append(f"held at must be one of {', '.join(HeldAt.values)}")
    if tier.quorum < 1:
        found.append("the quorum must be at least 1")
    if tier.sla_hours < Decimal("0.25"):
        found.append("the SLA must be at least a quarter of an hour")
    if tier.stage < 1:
        found.append("stages are numbered from 1")
    if tier.escalation_role and tier.escalation_role not in Role.values:
        found.append(f"unknown escalation role {tier.escalation_role!r}")
    elif tier.escalation_role and tier.escalation_role not in DECIDING_ROLES:
        found.append(
            f"it escalates to the {_label(tier.escalation_role)} role, which decides nothing "
            f"({_ONLY_DECIDERS})"
        )
    if tier.on_breach not in OnBreach.values:
        found.append(
            f"unknown breach action {tier.on_breach!r}; use one of {', '.join(OnBreach.values)}"
        )
    if tier.on_breach == OnBreach.ESCALATE and not tier.escalation_role:
        found.append("it escalates on breach but names no escalation role")
    return found


def _label(role: str) -> str:
    return Role(role).label.lower()


def _always_fast(rule: RuleSpec) -> bool:
    return (
        rule.auto_approve_below is not None
        and rule.max_amount is not None
        and rule.max_amount <= rule.auto_approve_below
    )


def _overlap(a: RuleSpec, b: RuleSpec) -> bool:
    def meet(x, y):
        return not x or not y or bool(set(x) & set(y))

    low = max((v for v in (a.min_amount, b.min_amount) if v is not None), default=None)
    high = min((v for v in (a.max_amount, b.max_amount) if v is not None), default=None)
    amounts_meet = low is None or high is None or low < high
    return (
        amounts_meet
        and meet(a.kinds, b.kinds)
        and meet(a.categories, b.categories)
        and meet(a.customer_classes, b.customer_classes)
    )


def _overlap_errors(spec: VersionSpec) -> list[str]:
    routes = [rule for rule in spec.rules if rule.effect == ROUTE]
    found = []
    for index, first in enumerate(routes):
        for second in routes[index + 1 :]:
            if _overlap(first, second) and first.routing_key() != second.routing_key():
                found.append(
                    f"Rule {second.name!r}: it overlaps rule {first.name!r} (same kinds, "
                    "categories, customer classes and amounts) but routes differently."
                )
    return found


def _chain_errors(spec: VersionSpec) -> list[str]:
    limit = settings.APPROVAL_MAX_CHAIN
    adds = [rule for rule in spec.rules if rule.effect == ADD]
    found = []
    for rule in spec.rules:
        if rule.effect != ROUTE:
            continue
        joined = [add for add in adds if _overlap(rule, add)]
        length = len(rule.tiers) + sum(len(add.tiers) for add in joined)
        if length > limit:
            extra = f" with add rules {', '.join(repr(a.name) for a in joined)}" if joined else ""
            found.append(
                f"Rule {rule.name!r}: its chain can reach {length} tiers{extra}; "
                f"the maximum is {limit}."
            )
    return found


def governed_sites(policy: ApprovalPolicy, *, at: datetime) -> list[Site]:
    """The open sites where `policy` would be the most specific one in force at `at`."""
    sites = Site.objects.filter(active=True).select_related("region")
    if policy.site_id:
        return list(sites.filter(pk=policy.site_id))
    in_force = (
        PolicyVersion.objects.filter(effective_from__lte=at)
        .filter(Q(policy__retired_at__isnull=True) | Q(policy__retired_at__gt=at))
        .exclude(policy=policy)
    )
    own_site = Q(policy__versions__in=in_force)
    if policy.region_id:
        return list(sites.filter(region=policy.region_id).exclude(own_site).distinct())
    own_region = Q(region__policy__versions__in=in_force)
    return list(sites.exclude(own_site).exclude(own_region).distinct())


def _staffing_errors(policy: ApprovalPolicy, spec: VersionSpec, at: datetime) -> list[str]:
    # A version published with a past effective date is staffed by today's people.
    at = max(at, timezone.now())
    sites = governed_sites(policy, at=at)
    holders = _role_holders(at)
    found = []
    for rule in spec.rules:
        for index, tier in enumerate(rule.tiers, start=1):
            short = []
            for site in sites:
                count = len(_people(holders, tier.role, tier.held_at, site))
                if count < tier.quorum:
                    short.append((site.code, count))
            if short:
                found.append(_staffing_message(rule, index, tier, short))
    return found


def _staffing_message(rule: RuleSpec, index: int, tier: TierSpec, short) -> str:
    label = f"{tier.quorum} × {Role(tier.role).label} {HeldAt(tier.held_at).label}"
    if len(short) == 1:
        code, count = short[0]
        where = f"{count} {'person' if count == 1 else 'people'} at {code}"
    else:
        where = "too few people at " + ", ".join(f"{code} ({count})" for code, count in short)
    return (
        f"Rule {rule.name!r}, tier {index} ({label}): resolves to {where}; it needs {tier.quorum}."
    )


def _role_holders(at: datetime) -> dict[tuple[str, str, int], set[int]]:
    holders: dict[tuple[str, str, int], set[int]] = defaultdict(set)
    memberships = Membership.objects.filter(
        membership_in_force(at), user__is_active=True
    ).values_list("user_id", "role", "site_id", "region_id")
    for user_id, role, site_id, region_id in memberships:
        if site_id:
            holders[(role, "site", site_id)].add(user_id)
        else:
            holders[(role, "region", region_id)].add(user_id)
    return holders


def _people(holders, role: str, held_at: str, site: Site) -> set[int]:
    in_region = holders.get((role, "region", site.region_id), set())
    if held_at == HeldAt.REGION:
        return in_region
    return in_region | holders.get((role, "site", site.pk), set())
