"""Every write to sites, regions and memberships, and the grant rows they imply.

Grant rows (django-guardian direct-FK permissions on Site) are derived data: one row per
membership and site it covers. They are written inside the same transaction as the change that
implies them, with the region row locked, so a region membership covers a site the moment the
site is created and a grant racing a site's move cannot miss it. sites.policies also checks
each row's scope when reading, so a row can never grant more than its membership.
"""

from datetime import datetime, time

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.core.ledger import ledger_record
from sites import policies
from sites.models import Membership, MembershipChange, Region, Site, SiteUserObjectPermission
from sites.roles import DECIDING_ROLES, permission_codename


def region_create(*, actor, code: str, name: str) -> Region:
    """Create a region; only a superuser (or the system) may."""
    if not policies.may_create_region(actor):
        raise PermissionDenied("Only a superuser may create regions.")
    region = Region(code=code, name=name)
    region.full_clean()
    with transaction.atomic():
        region.save()
        ledger_record(
            action="region.created", actor=actor, obj=region, after={"code": code, "name": name}
        )
    return region


def region_rename(*, actor, region: Region, name: str) -> Region:
    """Change a region's display name; its code stays."""
    if not policies.may_administer_region(actor, region):
        raise PermissionDenied("You do not administer every site of this region.")
    before = region.name
    region.name = name
    region.full_clean()
    with transaction.atomic():
        region.save(update_fields=["name"])
        ledger_record(
            action="region.renamed",
            actor=actor,
            obj=region,
            region=region,
            before={"name": before},
            after={"name": name},
        )
    return region


@transaction.atomic
def site_create(
    *,
    actor,
    code: str,
    name: str,
    region: Region,
    time_zone: str,
    currency: str,
    odoo_company_id: int,
    odoo_warehouse_id: int | None = None,
    active: bool = True,
    opens_at: time | None = None,
    closes_at: time | None = None,
    business_days: str | None = None,
) -> Site:
    """Create a site; everyone holding a role on its region holds it here at once.

    Only a superuser (or the system) may: a site names its Odoo company and warehouse, which are
    the whole company's. Locks the region row, so that no region grant is written between our
    read and our write.
    """
    region = _lock_regions(region.pk)[0]
    if not policies.may_set_odoo_ids(actor):
        raise PermissionDenied("Only a superuser may add a site: it names an Odoo company.")
    if not policies.may_administer_region(actor, region):
        raise PermissionDenied("You do not administer every site of this region.")
    site = Site(
        code=code,
        name=name,
        region=region,
        time_zone=time_zone,
        currency=currency,
        odoo_company_id=odoo_company_id,
        odoo_warehouse_id=odoo_warehouse_id,
        active=active,
    )
    hours = {"opens_at": opens_at, "closes_at": closes_at, "business_days": business_days}
    for field, value in hours.items():
        if value is not None:
            setattr(site, field, value)
    site.full_clean()
    site.save()
    _sync_site_grants(site)
    ledger_record(action="site.created", actor=actor, obj=site, site=site, after=_site_fields(site))
    return site


@transaction.atomic
def site_update(
    *,
    actor,
    site: Site,
    name: str | None = None,
    region: Region | None = None,
    time_zone: str | None = None,
    currency: str | None = None,
    odoo_company_id: int | None = None,
    odoo_warehouse_id: int | None = None,
    active: bool | None = None,
    opens_at: time | None = None,
    closes_at: time | None = None,
    business_days: str | None = None,
) -> Site:
    """Change a site; moving it to another region moves its region grants with it.

    Its Odoo company and warehouse change only by a superuser (or the system). Locks the old
    and the new region rows (in id order) and then the site row.
    """
    region_ids = {site.region_id, region.pk if region else site.region_id}
    locked = {r.pk: r for r in _lock_regions(*region_ids)}
    site = Site.objects.select_for_update().get(pk=site.pk)
    if not policies.may_administer_site(actor, site):
        raise PermissionDenied("You do not administer this site.")
    moving = region is not None and region.pk != site.region_id
    if moving and not policies.may_administer_region(actor, locked[region.pk]):
        raise PermissionDenied("You do not administer every site of the target region.")
    odoo = {"odoo_company_id": odoo_company_id, "odoo_warehouse_id": odoo_warehouse_id}
    if not policies.may_set_odoo_ids(actor) and any(
        value is not None and value != getattr(site, field) for field, value in odoo.items()
    ):
        raise PermissionDenied("Only a superuser may change a site's Odoo company or warehouse.")
    changes = {
        "name": name,
        "region": region,
        "time_zone": time_zone,
        "currency": currency,
        "odoo_company_id": odoo_company_id,
        "odoo_warehouse_id": odoo_warehouse_id,
        "active": active,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "business_days": business_days,
    }
    region_before = site.region_id
    before = _site_fields(site)
    for field, value in changes.items():
        if value is not None:
            setattr(site, field, value)
    site.full_clean()
    site.save()
    if site.region_id != region_before:
        _sync_site_grants(site)
    after = _site_fields(site)
    changed = {key for key in after if after[key] != before[key]}
    if changed:
        ledger_record(
            action="site.changed",
            actor=actor,
            obj=site,
            site=site,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    return site


def _site_fields(site: Site) -> dict:
    return {
        "name": site.name,
        "region": site.region.code,
        "time_zone": site.time_zone,
        "currency": site.currency,
        "odoo_company_id": site.odoo_company_id,
        "odoo_warehouse_id": site.odoo_warehouse_id,
        "active": site.active,
        "opens_at": site.opens_at,
        "closes_at": site.closes_at,
        "business_days": site.business_days,
    }


@transaction.atomic
def membership_grant(
    *,
    actor,
    user,
    role: str,
    site: Site | None = None,
    region: Region | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    note: str = "",
) -> Membership:
    """Give `user` a role at one site or at every site of one region, for a period.

    For a region, locks the region row so that a site created or moved meanwhile is covered.
    """
    if region is not None:
        region = _lock_regions(region.pk)[0]
    membership = Membership(
        user=user,
        role=role,
        site=site,
        region=region,
        valid_from=valid_from or timezone.now(),
        valid_to=valid_to,
        granted_by=actor,
        note=note,
    )
    membership.full_clean()
    _check_administers(actor, membership)
    _check_not_self_granted(actor, membership, before=None)
    membership.save()
    _record(membership, MembershipChange.Action.GRANTED, actor=actor, before=None)
    _sync_membership_grants(membership)
    return membership


@transaction.atomic
def membership_update(
    *, actor, membership: Membership, valid_from: datetime, valid_to: datetime | None, note: str
) -> Membership:
    """Move the start or end of a membership, or change its note. Locks the membership row."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_administers(actor, membership)
    before = _snapshot(membership)
    period_before = (membership.valid_from, membership.valid_to)
    membership.valid_from, membership.valid_to, membership.note = valid_from, valid_to, note
    membership.full_clean()
    _check_not_self_granted(actor, membership, before=period_before)
    if _snapshot(membership) == before:
        return membership
    membership.save(update_fields=["valid_from", "valid_to", "note"])
    _record(membership, MembershipChange.Action.CHANGED, actor=actor, before=before)
    return membership


@transaction.atomic
def membership_end(*, actor, membership: Membership, at: datetime | None = None) -> bool:
    """End a membership at `at` (default now); it grants nothing from then on.

    One that has not started yet is cancelled: its period becomes empty. Locks the membership
    row. Returns False, changing nothing, if it already ends by then.
    """
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_administers(actor, membership)
    at = at or timezone.now()
    if membership.valid_to is not None and membership.valid_to <= at:
        return False
    before = _snapshot(membership)
    membership.valid_to = max(at, membership.valid_from)
    membership.save(update_fields=["valid_to"])
    _record(membership, MembershipChange.Action.ENDED, actor=actor, before=before)
    return True


def _lock_regions(*region_ids: int) -> list[Region]:
    return list(Region.objects.select_for_update().filter(pk__in=region_ids).order_by("pk"))


def _check_administers(actor, membership: Membership) -> None:
    allowed = (
        policies.may_administer_site(actor, membership.site)
        if membership.site_id
        else policies.may_administer_region(actor, membership.region)
    )
    if not allowed:
        raise PermissionDenied(f"You do not administer {membership.scope_label}.")


def _check_not_self_granted(actor, membership: Membership, *, before) -> None:
    refusal = why_not_self_granted(actor, membership, before=before)
    if refusal:
        raise PermissionDenied(refusal)


def why_not_self_granted(actor, membership: Membership, *, before=None) -> str | None:
    """Why `actor` may not write `membership`, or None: no one gives themself a deciding role,
    nor lengthens their own; another administrator or a superuser must, so that deciding
    rights always come from someone else. `before` is the (valid_from, valid_to) being
    changed, None for a new grant; ending or shortening one's own role stays possible, as do
    roles that decide nothing."""
    if actor is None or actor.pk != membership.user_id or membership.role not in DECIDING_ROLES:
        return None
    if before is not None and not _lengthens(before, membership):
        return None
    return (
        f"You may not grant yourself the {membership.get_role_display().lower()} role: "
        "another administrator or a superuser must."
    )


def _lengthens(before, membership: Membership) -> bool:
    start, end = before
    if membership.valid_from < start:
        return True
    if end is None:
        return False
    return membership.valid_to is None or membership.valid_to > end


def _snapshot(membership: Membership) -> dict:
    return {
        "user": membership.user_id,
        "role": membership.role,
        "site": membership.site_id,
        "region": membership.region_id,
        "valid_from": membership.valid_from.isoformat(),
        "valid_to": membership.valid_to.isoformat() if membership.valid_to else None,
        "note": membership.note,
    }


def _record(membership: Membership, action: str, *, actor, before: dict | None) -> None:
    after = _snapshot(membership)
    MembershipChange.objects.create(
        membership=membership, action=action, actor=actor, before=before, after=after
    )
    ledger_record(
        action=f"membership.{action}",
        actor=actor,
        obj=membership,
        site=membership.site,
        region=membership.region,
        before=before,
        after=after
        | {
            "user": membership.user.get_username(),
            "scope": membership.scope_label,
            # Who granted the role in the first place; the event's actor is who made this change.
            "granted_by": membership.granted_by.get_username() if membership.granted_by else None,
        },
        reference=f"{membership.user.get_username()}: {membership.get_role_display()} "
        f"at {membership.scope_label}",
    )


def _role_permissions() -> dict[str, Permission]:
    site_type = ContentType.objects.get_for_model(Site)
    return {
        permission.codename: permission
        for permission in Permission.objects.filter(content_type=site_type)
    }


def _write_grants(pairs, permissions: dict[str, Permission]) -> None:
    """Write the grant row of each (membership, site) pair that does not have one yet."""
    SiteUserObjectPermission.objects.bulk_create(
        [
            SiteUserObjectPermission(
                user_id=membership.user_id,
                permission=permissions[permission_codename(membership.role)],
                content_object=site,
                membership=membership,
            )
            for membership, site in pairs
        ],
        ignore_conflicts=True,
    )


def _sync_membership_grants(membership: Membership) -> None:
    covered = [membership.site] if membership.site_id else list(membership.region.sites.all())
    _write_grants([(membership, site) for site in covered], _role_permissions())


def _sync_site_grants(site: Site) -> None:
    """Make the site's region-derived grant rows match the region it now belongs to."""
    SiteUserObjectPermission.objects.filter(
        content_object=site, membership__region__isnull=False
    ).exclude(membership__region=site.region_id).delete()
    _write_grants(
        [(membership, site) for membership in Membership.objects.filter(region=site.region_id)],
        _role_permissions(),
    )
