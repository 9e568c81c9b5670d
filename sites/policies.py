"""Who may do what at which site: the one place that answers it.

A person's reach is the set of sites where they hold a role through a membership in force right
now. The answers are built as SQL (`Exists` over django-guardian's direct-FK grant rows, joined
to the membership's dates and scope), so they nest inside other queries and cost one query
however many sites and memberships there are. An ended membership stops counting the moment it
ends, whether or not any job has run since; a deactivated user reaches nothing.

Business capabilities come from memberships only. The Django superuser flag opens the admin and
lets its holder administer every site (that is how a new installation gets its first
administrators); it never lets anyone raise, decide, work queues or audit.

guardian's own helpers (`get_objects_for_user`, `ObjectPermissionChecker`, its template tags)
must not be used on Site: they read the grant rows without the membership's dates.
"""

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from portal.core.periods import membership_in_force
from sites.models import Membership, Region, Site, SiteUserObjectPermission
from sites.roles import DECIDING_ROLES, Role, permission_codename


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
    Capability.DECIDE: DECIDING_ROLES,
    Capability.WORK_EXCEPTIONS: frozenset({Role.SITE_MANAGER, Role.REGIONAL_MANAGER, Role.FINANCE}),
    Capability.AUDIT: frozenset({Role.AUDITOR, Role.ADMIN}),
    Capability.ADMINISTER: frozenset({Role.ADMIN}),
}

# A closed site keeps its history and its administrators, but takes no new work.
_OPEN_SITES_ONLY = frozenset(
    {Capability.RAISE_REQUEST, Capability.DECIDE, Capability.WORK_EXCEPTIONS}
)


def _grant_rows(roles: Iterable[str], at: datetime | None) -> QuerySet[SiteUserObjectPermission]:
    """The grant rows of active people's memberships in force at `at`, for any of `roles`."""
    at = at or timezone.now()
    return SiteUserObjectPermission.objects.filter(
        user__is_active=True,
        permission__content_type__app_label="sites",
        permission__codename__in=[permission_codename(role) for role in roles],
    ).filter(
        membership_in_force(at, via="membership__"),
        # A row counts only while its membership still covers the site, so a row left behind
        # by a site moving to another region grants nothing.
        Q(membership__site=F("content_object")) | Q(membership__region=F("content_object__region")),
    )


def _grants_in_force(user, roles: Iterable[str], site_ref: str, at: datetime | None) -> Exists:
    return Exists(_grant_rows(roles, at).filter(user=user.pk, content_object=OuterRef(site_ref)))


def in_scope(
    user, capability: Capability, *, site_field: str | None = None, at: datetime | None = None
) -> Q:
    """A filter keeping the rows at whose site `user` may do `capability`.

    For a Site queryset leave `site_field` out; for a model that points at a site, name the
    foreign key (e.g. `site_field="site"`). It adds one `EXISTS` to the query it is used in.
    """
    if not _is_active(user):
        return Q(pk__in=[])
    prefix = f"{site_field}__" if site_field else ""
    condition = Q(_grants_in_force(user, GRANTED_BY[capability], site_field or "pk", at))
    if capability in _OPEN_SITES_ONLY:
        condition &= Q(**{f"{prefix}active": True})
    return condition


def holding(
    user,
    roles: Iterable[str],
    *,
    site_field: str,
    at: datetime | None = None,
    open_sites_only: bool = True,
) -> Q:
    """A filter keeping rows at whose site (open, unless told otherwise) `user` holds one of
    `roles` (one `EXISTS`)."""
    if not _is_active(user):
        return Q(pk__in=[])
    condition = Q(_grants_in_force(user, roles, site_field, at))
    if open_sites_only:
        condition &= Q(**{f"{site_field}__active": True})
    return condition


def sites_where(user, capability: Capability, *, at: datetime | None = None) -> QuerySet[Site]:
    """The sites at which `user` may do `capability`, as a lazy queryset (one query)."""
    return Site.objects.filter(in_scope(user, capability, at=at))


def regions_by_person(
    capability: Capability, regions: Iterable[int], *, at: datetime | None = None
) -> dict[int, set[int]]:
    """For each person who may do `capability` at some site of `regions`: in which of those
    regions they may (user id -> region ids; one query)."""
    rows = _grant_rows(GRANTED_BY[capability], at).filter(content_object__region__in=regions)
    if capability in _OPEN_SITES_ONLY:
        rows = rows.filter(content_object__active=True)
    reach: dict[int, set[int]] = {}
    for user_id, region_id in rows.values_list("user", "content_object__region").distinct():
        reach.setdefault(user_id, set()).add(region_id)
    return reach


class Grant(NamedTuple):
    """A role in force held by a person at a site, as the grant store records it. A named tuple
    rather than a frozen dataclass: a busy site has hundreds, built on every request page."""

    user_id: int
    role: Role
    site_id: int
    site_active: bool
    # Held through a membership on the site's region rather than on the site itself.
    regional: bool


def grants_in_force(user_ids: Iterable[int], *, at: datetime | None = None) -> list[Grant]:
    """Every role in force of the (active) people `user_ids`, site by site (one query)."""
    return _grants(_grant_rows(Role, at).filter(user__in=list(user_ids)))


def grants_at(site_id: int, *, at: datetime | None = None) -> list[Grant]:
    """Every role in force of active people at one site (one query)."""
    return _grants(_grant_rows(Role, at).filter(content_object=site_id))


class Person(NamedTuple):
    """Someone holding a role at a site, as a page names them (hundreds at a busy site)."""

    pk: int
    username: str
    first_name: str
    last_name: str

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_username(self) -> str:
        return self.username


def people_at(site_id: int, *, at: datetime | None = None) -> tuple[list[Grant], list[Person]]:
    """`grants_at(site_id)`, and the people holding those roles by username (one query): every
    active person with a membership in force on the site or its region, as the grant rows
    record it, for a page that names who may decide there and offers them as colleagues."""
    # Ordered by the database, so that names sort as everywhere else (its collation).
    rows = _grant_rows(Role, at).filter(content_object=site_id).order_by("user__username")
    grants, people = [], {}
    for user_id, codename, active, region_id, username, first, last in rows.values_list(
        "user",
        "permission__codename",
        "content_object__active",
        "membership__region",
        "user__username",
        "user__first_name",
        "user__last_name",
    ):
        role = _ROLES_BY_CODENAME.get(codename)
        if role is not None:
            grants.append(Grant(user_id, role, site_id, active, region_id is not None))
            if user_id not in people:
                people[user_id] = Person(user_id, username, first, last)
    return grants, list(people.values())


# A site's grant rows run to hundreds: each row's role is looked up, not parsed again.
_ROLES_BY_CODENAME = {permission_codename(role): role for role in Role}


def _grants(rows: QuerySet[SiteUserObjectPermission]) -> list[Grant]:
    found = []
    for user_id, codename, site_id, active, region_id in rows.values_list(
        "user",
        "permission__codename",
        "content_object",
        "content_object__active",
        "membership__region",
    ):
        role = _ROLES_BY_CODENAME.get(codename)
        if role is not None:
            found.append(Grant(user_id, role, site_id, active, region_id is not None))
    return found


def granted(grants: Iterable[Grant], capability: Capability, site_id: int | None = None) -> bool:
    """`may`, answered from one person's grant rows already read (`grants_in_force`) instead of
    a query: at `site_id`, or at some site when it is None."""
    roles = GRANTED_BY[capability]
    open_only = capability in _OPEN_SITES_ONLY
    return any(
        grant.role in roles
        and (grant.site_active or not open_only)
        and (site_id is None or grant.site_id == site_id)
        for grant in grants
    )


def may(user, capability: Capability, site: Site, *, at: datetime | None = None) -> bool:
    """Whether `user` may do `capability` at `site` right now (one query)."""
    return sites_where(user, capability, at=at).filter(pk=site.pk).exists()


def holds_role(user, role: str, site: Site, *, at: datetime | None = None) -> bool:
    """Whether `user` holds `role` at `site` through a membership in force (one query)."""
    if not _is_active(user):
        return False
    return Site.objects.filter(_grants_in_force(user, [role], "pk", at), pk=site.pk).exists()


def may_create_region(actor) -> bool:
    """Regions shape everyone's reach, so only a superuser (or the system) creates them."""
    return actor is None or _is_superuser(actor)


def may_set_odoo_ids(actor) -> bool:
    """A site's Odoo company and warehouse say where decisions are written and whose stock is
    read: the whole company's, so only a superuser (or the system) sets them."""
    return actor is None or _is_superuser(actor)


def sites_administered_by(actor) -> QuerySet[Site]:
    """The sites whose settings and memberships `actor` may change."""
    if actor is None or _is_superuser(actor):
        return Site.objects.all()
    return sites_where(actor, Capability.ADMINISTER)


def may_administer_site(actor, site: Site) -> bool:
    """Whether `actor` may change `site` and grant roles at it; None is the system itself."""
    if actor is None or _is_superuser(actor):
        return True
    return may(actor, Capability.ADMINISTER, site)


def may_administer_region(actor, region: Region) -> bool:
    """Whether `actor` administers every site of `region` (and so the region itself)."""
    if actor is None or _is_superuser(actor):
        return True
    sites = Site.objects.filter(region=region)
    return sites.exists() and not sites.exclude(in_scope(actor, Capability.ADMINISTER)).exists()


def _people_touching(sites: QuerySet[Site]) -> QuerySet[Membership]:
    """The holders of a membership, in force or not, on one of `sites` or on its region."""
    return Membership.objects.filter(Q(site__in=sites) | Q(region__sites__in=sites)).values("user")


def people_administered_by(actor) -> QuerySet:
    """The people every site of whose memberships (in force or not, at least one) `actor`
    administers: those an administrator may act for, e.g. hand on their approvals when they
    leave, or change their account. Someone with no role yet is no one's: whatever is done for
    them would follow them to sites given later, outside this administrator's reach."""
    people = get_user_model().objects.all()
    if actor is None or _is_superuser(actor):
        return people.filter(pk__in=_people_touching(Site.objects.all()))
    administered = sites_administered_by(actor)
    return people.filter(pk__in=_people_touching(administered)).exclude(
        pk__in=_people_touching(Site.objects.exclude(pk__in=administered))
    )


def may_administer_person(actor, person) -> bool:
    """Whether `person` is among `people_administered_by(actor)` (one query)."""
    return people_administered_by(actor).filter(pk=person.pk).exists()


def people_seen_by(actor) -> QuerySet:
    """The people an administrator deals with: everyone who holds or held a role at a site
    `actor` administers, and the newcomers who hold none anywhere yet (waiting for a first
    grant). A superuser sees everyone; no one else sees a superuser's account."""
    people = get_user_model().objects.all()
    if actor is None or _is_superuser(actor):
        return people
    administered = sites_administered_by(actor)
    if not administered.exists():
        return people.none()
    unplaced = ~Exists(Membership.objects.filter(user=OuterRef("pk")))
    return people.filter(Q(pk__in=_people_touching(administered)) | Q(unplaced), is_superuser=False)


def is_company_admin(user) -> bool:
    """Whether `user` is an active superuser: every site, and the pages that run the company
    (metrics, the mail outbox, company-wide admin)."""
    return _is_superuser(user)


def may_change_account(actor, person) -> bool:
    """Whether `actor` may change `person`'s account: a superuser anyone's; anyone else their
    own or that of someone they administer, but never a superuser's."""
    if _is_superuser(actor):
        return True
    if person.is_superuser:
        return False
    return person.pk == actor.pk or may_administer_person(actor, person)


def _is_active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def _is_superuser(user) -> bool:
    return _is_active(user) and user.is_superuser
