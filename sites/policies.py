"""Who may do what at which site: the one place that answers it.

A person's reach is the set of sites where they hold a role through a membership in force right
now. The answers are built as SQL (`Exists` over django-guardian's direct-FK grant rows joined to
the membership's dates), so they can be nested inside other queries and cost one query however
many sites and memberships there are. An ended membership stops counting the moment it ends,
whether or not any job has run since.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from sites.models import Site, SiteUserObjectPermission
from sites.roles import Role, permission_codename


class Capability(StrEnum):
    VIEW = "view"
    RAISE_REQUEST = "raise_request"
    DECIDE = "decide"
    WORK_EXCEPTIONS = "work_exceptions"
    AUDIT = "audit"
    ADMINISTER = "administer"


GRANTED_BY: dict[Capability, frozenset[Role]] = {
    Capability.VIEW: frozenset(Role),
    Capability.RAISE_REQUEST: frozenset({Role.REQUESTER, Role.SITE_MANAGER, Role.REGIONAL_MANAGER}),
    Capability.DECIDE: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}),
    Capability.WORK_EXCEPTIONS: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}),
    Capability.AUDIT: frozenset({Role.AUDITOR, Role.ADMIN}),
    Capability.ADMINISTER: frozenset({Role.ADMIN}),
}

# Looking back is allowed at a closed site; acting there is not.
_READ_ONLY = frozenset({Capability.VIEW, Capability.AUDIT})


def grant_in_force(
    user, roles: Iterable[str], *, site_ref="pk", at: datetime | None = None
) -> Exists:
    """An `Exists` that is true where `user` holds one of `roles` at the site `site_ref` names.

    `site_ref` is resolved against the outer query: "pk" for a Site queryset, "site" (or
    "site_id") for a model that points at a site.
    """
    at = at or timezone.now()
    grants = SiteUserObjectPermission.objects.filter(
        user=user.pk,
        permission__content_type__app_label="sites",
        permission__codename__in=[permission_codename(role) for role in roles],
        content_object=OuterRef(site_ref),
        membership__valid_from__lte=at,
    ).filter(Q(membership__valid_to__isnull=True) | Q(membership__valid_to__gt=at))
    return Exists(grants)


def sites_where(user, capability: Capability, *, at: datetime | None = None) -> QuerySet[Site]:
    """The sites at which `user` may do `capability`, as a lazy queryset (one query)."""
    if not _is_active(user):
        return Site.objects.none()
    sites = Site.objects.filter(grant_in_force(user, GRANTED_BY[capability], at=at))
    if capability not in _READ_ONLY:
        sites = sites.filter(active=True)
    return sites


def may(user, capability: Capability, site: Site, *, at: datetime | None = None) -> bool:
    """Whether `user` may do `capability` at `site` right now (one query)."""
    return sites_where(user, capability, at=at).filter(pk=site.pk).exists()


def holds_role(user, role: str, site: Site, *, at: datetime | None = None) -> bool:
    """Whether `user` holds `role` at `site` through a membership in force (one query)."""
    if not _is_active(user):
        return False
    return Site.objects.filter(grant_in_force(user, [role], at=at), pk=site.pk).exists()


def _is_active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)
