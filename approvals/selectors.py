"""Reads over approval requests, already scoped to the person asking."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, IntegerField, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from approvals import routing
from approvals.authority import Authority, as_authority
from approvals.models import (
    ApprovalRequest,
    ApprovalStep,
    Decision,
    HeldAt,
    PolicyRule,
    PolicyTier,
    RequestState,
    RiskFlag,
)
from portal.core.periods import membership_in_force
from sites import policies as site_policies
from sites.models import Membership
from sites.policies import Capability
from sites.roles import Role

User = get_user_model()


@dataclass(frozen=True)
class InboxFilters:
    site_id: int | None = None
    kind: str = ""
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    overdue: bool = False
    text: str = ""


@dataclass(frozen=True)
class InboxPage:
    requests: list[ApprovalRequest]
    next_cursor: tuple[datetime, int] | None


def inbox_for(
    who,
    *,
    filters: InboxFilters | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
    at: datetime | None = None,
) -> InboxPage:
    """What `who` (a user, or their Authority), or someone they stand in for, can decide now,
    soonest due first.

    Keyset-paginated on (due_at, id): pass the page's `next_cursor` as `after`. First the
    sites where the user could decide anything (one query); then the soonest-due waiting
    requests there, in batches, and the rows of those the user may decide (two queries a
    batch, usually one batch). Three queries, at most eight, whatever the reach and however
    long the queues: no query tests more than a bounded batch of requests, except the last
    resort for someone who can decide almost nothing of what waits at their sites.
    """
    authority = as_authority(who, at=at)
    at = authority.at
    filters = filters or InboxFilters()
    sites = deciding_sites(authority, filters.site_id)
    if not sites:
        return InboxPage([], None)
    waiting = inbox_filtered(
        ApprovalRequest.objects.filter(state=RequestState.IN_REVIEW), filters, at
    )
    steps = ApprovalStep.objects.filter(authority.steps(), request=OuterRef("pk"))
    found, cursor = _from_batches(Exists(steps), waiting, sites, after, limit + 1)
    if cursor is not _DONE:
        # Someone who can decide few of the requests at their busy sites: finish the page
        # with one query that tests every remaining request in order.
        rest = _after(waiting.filter(Exists(steps), site__in=sites), cursor)
        missing = limit + 1 - len(found)
        found += (
            rest.select_related("site", "requester")
            .defer(*LISTED_WITHOUT)
            .order_by("due_at", "pk")[:missing]
        )
    rows = found[:limit]
    more = len(found) > limit
    return InboxPage(rows, (rows[-1].due_at, rows[-1].pk) if more else None)


_DONE = object()
# What a list of requests never shows: each request's long texts and documents, left unread by
# the inbox and the lists built on it (reading one of them later costs a query).
LISTED_WITHOUT = ("reason", "details", "odoo_snapshot", "drift", "apply_error")


def _from_batches(decidable: Exists, waiting: QuerySet, sites: list[int], cursor, need: int):
    """The first `need` requests at `sites` that pass `decidable`, read in growing batches of
    the soonest due; with the cursor to go on from, or _DONE when the answer is complete."""
    # Twice the page at first: most people can decide about half of what waits at their sites.
    found, size = [], 2 * need
    for _ in range(INBOX_BATCHES):
        batch = list(_candidates(waiting, sites, cursor, size))
        if batch:
            # The per-step test runs on this batch only, not on every waiting request.
            theirs = ApprovalRequest.objects.filter(decidable, pk__in=[pk for pk, _due in batch])
            # Only as many rows as the page still lacks: the rest would be read and dropped.
            theirs = theirs.select_related("site", "requester").defer(*LISTED_WITHOUT)
            theirs = theirs.order_by("due_at", "pk")
            found += theirs[: need - len(found)]
        if len(found) >= need or len(batch) < size:
            return found[:need], _DONE
        cursor = (batch[-1][1], batch[-1][0])
        size *= 4
    return found, cursor


# Batches of candidates read before the last resort; each is four times the one before.
INBOX_BATCHES = 3
# Up to this many sites, each site's queue is read on its own (an index range per site) and
# the heads merged; beyond it, one walk over all waiting requests in due order is cheaper.
INBOX_PER_SITE_MAX = 24


def deciding_sites(authority: Authority, only: int | None = None) -> list[int]:
    """The open sites where the person, or someone they stand in for, holds a deciding role
    (narrowed to `only` when given): only requests there can be in their inbox."""
    sites = authority.deciding_site_ids()
    return [site for site in sites if site == only] if only else sites


def _candidates(waiting: QuerySet, sites: list[int], after, size: int) -> QuerySet:
    """(id, due_at) of the first `size` of `waiting` at `sites` after the cursor, in due order."""
    waiting = _after(waiting, after)
    if connection.vendor != "postgresql" or len(sites) > INBOX_PER_SITE_MAX:
        soonest = waiting.filter(site__in=sites)
    else:
        # The soonest `size` of each site (a range of the per-site inbox index), merged.
        per_site = (
            waiting.filter(site=RawSQL("granted.site_id", (), output_field=IntegerField()))
            .order_by("due_at", "pk")
            .values("pk", "due_at")[:size]
        )
        sql, params = per_site.query.sql_with_params()
        # Only Django's own compiled query is spliced in; every value travels as a parameter.
        heads = (
            "SELECT head.id FROM unnest(%s::integer[]) AS granted(site_id) "  # noqa: S608
            f"CROSS JOIN LATERAL ({sql}) AS head(id, due_at) "
            "ORDER BY head.due_at, head.id LIMIT %s"
        )
        soonest = ApprovalRequest.objects.filter(
            pk__in=RawSQL(heads, (sites, *params, size))  # noqa: S611
        )
    return soonest.order_by("due_at", "pk").values_list("pk", "due_at")[:size]


def _after(query: QuerySet, after: tuple[datetime, int] | None) -> QuerySet:
    if after is None:
        return query
    due, pk = after
    # The first condition is implied by the second; it lets PostgreSQL start the index walk
    # at the cursor instead of testing every later row.
    return query.filter(due_at__gte=due).filter(Q(due_at__gt=due) | Q(due_at=due, pk__gt=pk))


def inbox_filtered(query: QuerySet, filters: InboxFilters, at: datetime) -> QuerySet:
    """`query` (requests) narrowed by the inbox's filters, overdue meaning due before `at`."""
    if filters.site_id:
        query = query.filter(site=filters.site_id)
    if filters.kind:
        query = query.filter(kind=filters.kind)
    if filters.min_amount is not None:
        query = query.filter(amount_base__gte=filters.min_amount)
    if filters.max_amount is not None:
        query = query.filter(amount_base__lte=filters.max_amount)
    if filters.overdue:
        query = query.filter(due_at__lt=at)
    if filters.text:
        text = filters.text.strip()
        query = query.filter(
            Q(title__icontains=text) | Q(counterparty__icontains=text) | Q(reason__icontains=text)
        )
    return query


def requests_visible_to(who) -> QuerySet[ApprovalRequest]:
    """Every request `who` (a user or their Authority) may open; anything else answers 404."""
    return ApprovalRequest.objects.filter(as_authority(who).visible())


def request_for(who, request_id: int) -> ApprovalRequest:
    """One request if `who` may see it, else ApprovalRequest.DoesNotExist (shown as 404)."""
    return (
        requests_visible_to(who)
        .select_related("site", "requester", "policy_version")
        .get(pk=request_id)
    )


def role_holders(roles: list[str], held_at: str, site, *, at: datetime | None = None) -> QuerySet:
    """The active people holding one of `roles` where a tier held at `held_at` needs it."""
    at = at or timezone.now()
    scope = Q(region=site.region_id)
    if held_at == HeldAt.SITE:
        scope |= Q(site=site.pk)
    memberships = Membership.objects.filter(
        scope, membership_in_force(at), user=OuterRef("pk"), role__in=roles
    )
    return User.objects.filter(Exists(memberships), is_active=True).order_by("username")


def delegate_candidates(delegator, sites) -> list[tuple]:
    """The people `delegator` might hand approvals at `sites` to, by name: each with the regions
    of `sites` where they hold a role, and those roles in words (three queries)."""
    regions = {site.region_id for site in sites}
    reach = site_policies.regions_by_person(Capability.VIEW, regions)
    reach.pop(delegator.pk, None)
    people = User.objects.filter(pk__in=reach, is_active=True).order_by(
        "first_name", "last_name", "username"
    )
    now = timezone.now()
    held = (
        Membership.objects.filter(membership_in_force(now), user__in=list(reach))
        .filter(Q(site__region__in=regions) | Q(region__in=regions))
        .select_related("site", "region")
        .order_by("role", "id")
    )
    duties: dict[int, list[str]] = {}
    for membership in held:
        where = membership.site.name if membership.site else membership.region.name
        role = membership.get_role_display().lower()
        duties.setdefault(membership.user_id, []).append(f"{role}, {where}")
    return [(person, reach[person.pk], "; ".join(duties.get(person.pk, []))) for person in people]


@dataclass(frozen=True)
class TierPreview:
    stage: int
    role: str
    held_at: str
    quorum: int
    sla_hours: Decimal
    people: list


@dataclass(frozen=True)
class RoutePreview:
    version: str
    rule: str
    fast_path: bool
    tiers: list[TierPreview]


def who_would_approve(
    *,
    site,
    kind: str,
    amount: Decimal,
    currency: str,
    requester=None,
    category: str = "",
    customer_class: str = "",
    at: datetime | None = None,
) -> RoutePreview:
    """For a draft that is not saved: its route and the people eligible at each tier.

    Writes nothing. Risk flags are not computed (they need the submitted request), so the
    preview shows the route of an unflagged request.
    """
    version = routing.version_in_force(site, at=at)
    if version is None:
        raise ValidationError(f"No approval policy is in force at {site.code}.")
    selector = routing.Selector(
        kind=kind,
        amount_base=routing.to_base(amount, currency, at=at),
        category=category,
        customer_class=customer_class,
    )
    chosen = routing.route(version, selector)
    tiers = []
    for stage, tier in chosen.tiers:
        people = role_holders([tier.role], tier.held_at, site, at=at)
        if requester is not None:
            people = people.exclude(pk=requester.pk)
        tiers.append(
            TierPreview(stage, tier.role, tier.held_at, tier.quorum, tier.sla_hours, list(people))
        )
    return RoutePreview(str(version), chosen.rule.name, chosen.auto_approve, tiers)


def sampled_for_review(user) -> QuerySet[ApprovalRequest]:
    """Fast-path approvals sampled for post-event review at sites where `user` is finance."""
    finance = site_policies.holding(user, [Role.FINANCE], site_field="site", open_sites_only=False)
    return ApprovalRequest.objects.filter(
        finance, sampled_for_review=True, post_review_done_at__isnull=True
    ).order_by("decided_at", "pk")


def policies_visible_to(user) -> QuerySet:
    """The policies that govern a site `user` can see: the global ones and those of the
    user's regions and sites, with their versions, rules and tiers prefetched."""
    from django.db.models import Prefetch

    from approvals.models import ApprovalPolicy, PolicyVersion
    from sites.policies import Capability, sites_where

    sites = sites_where(user, Capability.VIEW)
    rules = PolicyRule.objects.order_by("position").prefetch_related(
        Prefetch("tiers", queryset=PolicyTier.objects.order_by("position"))
    )
    versions = PolicyVersion.objects.select_related("published_by").prefetch_related(
        Prefetch("rules", queryset=rules)
    )
    scope = Q(site__in=sites) | Q(region__sites__in=sites)
    if sites.exists():
        scope |= Q(site__isnull=True, region__isnull=True)
    return (
        ApprovalPolicy.objects.filter(pk__in=ApprovalPolicy.objects.filter(scope).values("pk"))
        .select_related("region", "site")
        .prefetch_related(Prefetch("versions", queryset=versions.order_by("-number")))
        .order_by("id")
    )


def delegations_used(request_id: int) -> list[int]:
    """The delegations the decisions on one request were taken under."""
    used = Decision.objects.filter(request=request_id, delegation__isnull=False)
    return list(used.values_list("delegation", flat=True).distinct())


@dataclass(frozen=True)
class InboxEntry:
    """One request in the inbox, and whom the viewer would decide it for."""

    request: ApprovalRequest
    on_behalf_of: object | None
    comment_required: bool
    bulk_blocker: str | None


def inbox_entries(who, requests: list[ApprovalRequest], *, at=None) -> list[InboxEntry]:
    """Annotate a page of the inbox with "on behalf of" and bulk eligibility (four queries)."""
    firsts, delegators = _first_options(who, requests, at)
    if not requests:
        return []
    # The rules by their own keys: a lookup by primary key, not the requests read again.
    by_id = PolicyRule.objects.in_bulk({r.rule_id for r in requests if r.rule_id is not None})
    entries = []
    for request in requests:
        first = firsts.get(request.pk)
        entries.append(
            InboxEntry(
                request,
                delegators.get(first.on_behalf_of_id) if first else None,
                bool(first and first.step.comment_required),
                bulk_blocker(request, by_id.get(request.rule_id) if first else None),
            )
        )
    return entries


@dataclass(frozen=True)
class InboxRow:
    """One request on the inbox page, and whom the viewer would decide it for."""

    request: ApprovalRequest
    on_behalf_of: object | None


def inbox_rows(who, requests: list[ApprovalRequest], *, at=None) -> list[InboxRow]:
    """A page of the inbox with "on behalf of" only, as the inbox page shows it: inbox_entries
    without bulk eligibility, which only the bulk page needs (three queries; none for someone
    who stands in for nobody, since they decide everything in their own name)."""
    if not as_authority(who, at=at).covers:
        return [InboxRow(request, None) for request in requests]
    firsts, delegators = _first_options(who, requests, at)
    rows = []
    for request in requests:
        first = firsts.get(request.pk)
        rows.append(InboxRow(request, delegators.get(first.on_behalf_of_id) if first else None))
    return rows


def _first_options(who, requests, at) -> tuple[dict, dict]:
    """The first tier each request offers the viewer (request id -> option), and the people
    they would decide for (user id -> user)."""
    if not requests:
        return {}, {}
    options = as_authority(who, at=at).options_for(requests)
    firsts = {pk: found[0] for pk, found in options.items() if found}
    standing_in = {first.on_behalf_of_id for first in firsts.values() if first.on_behalf_of_id}
    delegators = User.objects.in_bulk(standing_in) if standing_in else {}
    return firsts, delegators


def bulk_blocker(request: ApprovalRequest, rule) -> str | None:
    """Why `request` must be decided on its own page, or None when it may be bulk-approved.

    Bulk approval is for routine work only: unflagged requests whose rule has a fast path.
    """
    if request.risk_flags:
        names = ", ".join(flag_label(flag["code"]) for flag in request.risk_flags)
        return f"Risk flags ({names}) — decide it on its own page."
    if rule is None or rule.auto_approve_below is None:
        return "Its rule has no fast path, so it is not routine — decide it on its own page."
    return None


def flag_label(code: str) -> str:
    """The risk flag's name as people read it."""
    try:
        return RiskFlag(code).label
    except ValueError:
        return code.replace("_", " ")


# Counts stop here (the page says "100+"): a count never reads a whole region's queue.
COUNT_CAP = 100


def inbox_count(who, filters: InboxFilters | None = None, *, at=None) -> dict[str, int | bool]:
    """How many requests `who` can decide now under `filters`, and how many are overdue, each
    counted up to COUNT_CAP; `more` says the total went past it (see `_soonest_decidable`)."""
    deciding = as_authority(who, at=at)
    found = _soonest_decidable(deciding, filters or InboxFilters(), COUNT_CAP + 1)
    return _counted(found, deciding.at)


@dataclass(frozen=True)
class InboxHead:
    """The first page of someone's inbox and its capped counts (see `inbox_head`)."""

    requests: list[ApprovalRequest]
    next_cursor: tuple[datetime, int] | None
    counts: dict[str, int | bool]


def inbox_head(who, filters: InboxFilters | None = None, *, limit: int, at=None) -> InboxHead:
    """The first `limit` requests `who` can decide now under `filters`, soonest due first (the
    rows and cursor of `approvals.selectors.inbox_for`'s first page, with their sites but not
    their requesters or long texts), with `inbox_count`'s counts: two queries in the common
    case, for the inbox page."""
    deciding = as_authority(who, at=at)
    found = _soonest_decidable(deciding, filters or InboxFilters(), max(COUNT_CAP, limit) + 1)
    counts = _counted(found, deciding.at)
    if not found:
        return InboxHead([], None, counts)
    shown = [pk for pk, _due in found[:limit]]
    page = list(
        ApprovalRequest.objects.filter(pk__in=shown)
        .select_related("site")
        .defer(*LISTED_WITHOUT)
        .order_by("due_at", "pk")
    )
    more = len(found) > limit
    return InboxHead(page, (page[-1].due_at, page[-1].pk) if more else None, counts)


def _soonest_decidable(deciding, filters: InboxFilters, need: int) -> list[tuple[int, datetime]]:
    """(id, due_at) of the first `need` requests the authority `deciding` may decide now under
    `filters`, soonest due first.

    Rather than have the database test every waiting request at the person's sites (hundreds
    of milliseconds for a region at a million requests), this reads the soonest due waiting
    requests in batches as `inbox_for` does, each batch with whether each one is the person's
    to decide: one query a batch, usually one batch.
    """
    at = deciding.at
    sites = deciding_sites(deciding, filters.site_id)
    if not sites:
        return []
    waiting = inbox_filtered(
        ApprovalRequest.objects.filter(state=RequestState.IN_REVIEW), filters, at
    )
    decidable = decidable_by(deciding)
    found: list[tuple[int, datetime]] = []
    cursor, size = None, 2 * need
    for _ in range(INBOX_BATCHES):
        batch = list(
            ApprovalRequest.objects.filter(
                pk__in=_candidates(waiting, sites, cursor, size).values("pk")
            )
            .annotate(theirs=decidable)
            .order_by("due_at", "pk")
            .values_list("pk", "due_at", "theirs")
        )
        found += [(pk, due) for pk, due, theirs in batch if theirs]
        if len(found) >= need or len(batch) < size:
            return found[:need]
        cursor = (batch[-1][1], batch[-1][0])
        size *= 4
    # Someone who can decide few of the requests at their busy sites: finish with one query
    # that tests every remaining request in order, as inbox_for does.
    rest = _after(waiting.filter(decidable, site__in=sites), cursor)
    return found + list(
        rest.order_by("due_at", "pk").values_list("pk", "due_at")[: need - len(found)]
    )


def decidable_by(deciding: Authority) -> Exists:
    """Whether a request (the outer query's row) has an active tier `deciding` may decide now,
    tested request by request.

    The second, redundant condition on the request keeps PostgreSQL from answering the test
    with one hashed pass over every tier the person may decide (it can hash only equalities):
    it picks that once a batch holds about two hundred candidates. For someone deciding at one
    site of a million requests that pass reads every active tier there, 3-14 ms, against about
    1.3 ms for an index lookup per candidate.
    """
    steps = ApprovalStep.objects.filter(
        deciding.steps(), request=OuterRef("pk"), request__gte=OuterRef("pk")
    )
    return Exists(steps)


def _counted(found: list[tuple[int, datetime]], at: datetime) -> dict[str, int | bool]:
    """The capped counts of the soonest due decidable requests: overdue ones come first, so a
    window of COUNT_CAP + 1 or more holds as many of them as there are, up to the cap."""
    return capped(len(found), sum(1 for _pk, due in found if due is not None and due < at))


def capped(total: int, overdue: int) -> dict[str, int | bool]:
    """Counts as the inbox shows them: each up to COUNT_CAP, and whether it went past."""
    return {
        "total": min(total, COUNT_CAP),
        "overdue": min(overdue, COUNT_CAP),
        "more": total > COUNT_CAP,
        "more_overdue": overdue > COUNT_CAP,
    }
