"""Administering approval policies: creating, publishing versions, retiring."""

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalPolicy, PolicyRule, PolicyTier, PolicyVersion
from approvals.specs import VersionSpec, rule_values, tier_values
from portal.audit.services import audit_record
from portal.core.errors import Conflict
from sites import policies as site_policies


def policy_create(*, actor, name: str, region=None, site=None) -> ApprovalPolicy:
    """Open a policy line for the whole company, a region or a site."""
    _check_administers_scope(actor, region=region, site=site)
    with transaction.atomic():
        policy = ApprovalPolicy(name=name, region=region, site=site)
        policy.full_clean()
        policy.save()
        audit_record(action="policy.created", actor=actor, obj=policy, site=site, region=region)
    return policy


def policy_publish(
    *, actor, policy: ApprovalPolicy, spec: VersionSpec, effective_from: datetime | None = None
) -> PolicyVersion:
    """Publish `spec` as the policy's next version, if it passes lint; locks the policy row.

    Requests already routed keep the version they were routed with.
    """
    _check_administers_scope(actor, region=policy.region, site=policy.site)
    now = timezone.now()
    effective_from = effective_from or now
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        _check_not_before_current(policy, effective_from, now)
        problems = _lint(policy, spec, effective_from)
        if problems:
            raise ValidationError(problems)
        last = policy.versions.order_by("-number").values_list("number", flat=True).first()
        version = PolicyVersion.objects.create(
            policy=policy,
            number=(last or 0) + 1,
            effective_from=effective_from,
            published_at=now,
            published_by=actor,
            note=spec.note,
            fast_path_sample_rate=spec.fast_path_sample_rate,
            drift_tolerance_pct=spec.drift_tolerance_pct,
            cancel_in_odoo_on_reject=spec.cancel_in_odoo_on_reject,
        )
        _write_rules(version, spec)
        audit_record(
            action="policy.published",
            actor=actor,
            obj=version,
            site=policy.site,
            region=policy.region,
            policy_version=version,
            after={"rules": [rule.name for rule in spec.rules], "effective_from": effective_from},
            comment=spec.note,
        )
    return version


def policy_retire(*, actor, policy: ApprovalPolicy, reason: str) -> ApprovalPolicy:
    """Stop a policy governing new requests; requests routed by it keep their version."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the policy is retired."})
    _check_administers_scope(actor, region=policy.region, site=policy.site)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        if policy.retired_at is not None:
            raise Conflict(f"{policy} was already retired.")
        policy.retired_at = timezone.now()
        policy.save(update_fields=["retired_at"])
        audit_record(
            action="policy.retired",
            actor=actor,
            obj=policy,
            site=policy.site,
            region=policy.region,
            after={"retired_at": policy.retired_at},
            comment=reason,
        )
    return policy


def _check_not_before_current(policy: ApprovalPolicy, effective_from: datetime, now) -> None:
    # The newest effective date wins, so a version dated before the one in force would never
    # govern anything; refuse it rather than publish a dead letter.
    current = (
        policy.versions.filter(effective_from__lte=now)
        .order_by("-effective_from", "-number")
        .first()
    )
    if current is not None and effective_from < current.effective_from:
        since = f"{current.effective_from:%Y-%m-%d %H:%M} UTC"
        message = f"{current} is in force since {since}; a new version cannot start before it."
        raise ValidationError({"effective_from": message})


def _lint(policy, spec, effective_from) -> list[str]:
    from approvals.lint import lint

    return lint(policy, spec, at=effective_from)


def _write_rules(version: PolicyVersion, spec: VersionSpec) -> None:
    for position, rule_spec in enumerate(spec.rules, start=1):
        rule = PolicyRule.objects.create(
            version=version, position=position, **rule_values(rule_spec)
        )
        PolicyTier.objects.bulk_create(
            PolicyTier(rule=rule, position=index, **tier_values(tier))
            for index, tier in enumerate(rule_spec.tiers, start=1)
        )


def _check_administers_scope(actor, *, region, site) -> None:
    if site is not None:
        allowed = site_policies.may_administer_site(actor, site)
    elif region is not None:
        allowed = site_policies.may_administer_region(actor, region)
    else:
        allowed = site_policies.may_create_region(actor)
    if not allowed:
        raise PermissionDenied("You do not administer this policy's scope.")
