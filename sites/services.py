"""Every write to sites, regions and memberships, and the grant rows they imply.

Grant rows (django-guardian direct-FK permissions on Site) are derived data: one row per
membership and site it covers. They are kept in step inside the same transaction as the change
that implies them, so a region membership covers a site the moment the site is created.
"""

from datetime import datetime

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from sites.models import Membership, MembershipChange, Region, Site, SiteUserObjectPermission
from sites.roles import permission_codename

SITE_FIELDS = (
    "code",
    "name",
    "region",
    "time_zone",
    "currency",
    "odoo_company_id",
    "odoo_warehouse_id",
    "active",
)


def region_create(*, code: str, name: str) -> Region:
    """Create a region."""
    region = Region(code=code, name=name)
    region.full_clean()
    region.save()
    return region


@transaction.atomic
def site_create(
    *,
    code: str,
    name: str,
    region: Region,
    time_zone: str,
    currency: str,
    odoo_company_id: int,
    odoo_warehouse_id: int | None = None,
    active: bool = True,
) -> Site:
    """Create a site; everyone holding a role on its region holds it here from now on."""
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
    site.full_clean()
    site.save()
    _sync_site_grants(site)
    return site


@transaction.atomic
def site_update(*, site: Site, **changes) -> Site:
    """Change a site's attributes; moving it to another region moves its region grants too.

    Locks the site row for the duration.
    """
    unknown = set(changes) - set(SITE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown site fields: {', '.join(sorted(unknown))}.")
    site = Site.objects.select_for_update().get(pk=site.pk)
    region_before = site.region_id
    for field, value in changes.items():
        setattr(site, field, value)
    site.full_clean()
    site.save()
    if site.region_id != region_before:
        _sync_site_grants(site)
    return site


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
    """Give `user` a role at one site or at every site of one region, for a period."""
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
    membership.save()
    _record(membership, MembershipChange.Action.GRANTED, actor=actor, before=None)
    _sync_membership_grants(membership)
    return membership


@transaction.atomic
def membership_set_period(
    *, actor, membership: Membership, valid_from: datetime, valid_to: datetime | None
) -> Membership:
    """Move the start or end of a membership. Locks the membership row."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    before = _snapshot(membership)
    membership.valid_from = valid_from
    membership.valid_to = valid_to
    membership.full_clean()
    membership.save(update_fields=["valid_from", "valid_to"])
    _record(membership, MembershipChange.Action.CHANGED, actor=actor, before=before)
    return membership


@transaction.atomic
def membership_end(*, actor, membership: Membership, at: datetime | None = None) -> Membership:
    """End a membership at `at` (default now); it grants nothing from then on.

    Locks the membership row. Ending one that already ends earlier changes nothing.
    """
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    at = at or timezone.now()
    if membership.valid_to is not None and membership.valid_to <= at:
        return membership
    if at <= membership.valid_from:
        raise ValidationError("A membership cannot end before it starts; it has not started yet.")
    before = _snapshot(membership)
    membership.valid_to = at
    membership.save(update_fields=["valid_to"])
    _record(membership, MembershipChange.Action.ENDED, actor=actor, before=before)
    return membership


def _snapshot(membership: Membership) -> dict:
    return {
        "user": membership.user_id,
        "role": membership.role,
        "site": membership.site_id,
        "region": membership.region_id,
        "valid_from": membership.valid_from.isoformat(),
        "valid_to": membership.valid_to.isoformat() if membership.valid_to else None,
    }


def _record(membership: Membership, action: str, *, actor, before: dict | None) -> None:
    MembershipChange.objects.create(
        membership=membership,
        action=action,
        actor=actor,
        before=before,
        after=_snapshot(membership),
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
