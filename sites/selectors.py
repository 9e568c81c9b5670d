"""Reads that list or scope sites and memberships."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.core.periods import membership_in_force
from sites.models import Membership, Site
from sites.policies import Capability, sites_administered_by, sites_where


def site_list_for_user(user) -> QuerySet[Site]:
    """The sites `user` can see, with their regions, in a stable order."""
    return (
        sites_where(user, Capability.VIEW).select_related("region").order_by("region__code", "code")
    )


def sites_listed(site_ids) -> QuerySet[Site]:
    """The sites `site_ids`, with their regions, in site_list_for_user's order: for a caller that
    already holds the person's sites (their authority read the same grant rows)."""
    return (
        Site.objects.filter(pk__in=sorted(site_ids))
        .select_related("region")
        .order_by("region__code", "code")
    )


def memberships_in_force(user) -> QuerySet[Membership]:
    """The memberships of `user` that grant something right now."""
    now = timezone.now()
    return (
        Membership.objects.filter(membership_in_force(now), user=user.pk)
        .select_related("site", "region")
        .order_by("role", "id")
    )


def memberships_administered_by(user) -> QuerySet[Membership]:
    """The memberships at sites, or in regions with sites, that `user` administers."""
    administered = sites_administered_by(user)
    return Membership.objects.filter(
        Q(site__in=administered) | Q(region__sites__in=administered)
    ).distinct()
