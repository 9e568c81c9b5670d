"""Reads over the audit ledger, already scoped to the person asking.

Who sees which events: the audit capability (Role.AUDITOR or Role.ADMIN through a membership in
force) is granted on sites, like every capability, so

* an event recorded at a site is visible to whoever may audit that site now;
* an event about a region rather than a site (a membership held at region scope, a regional
  policy, a region renamed) names the region in `context["region"]` and is visible to whoever
  may audit every site of that region;
* any other event without a site (sign-ins, global policies, currency rates, delegations valid
  everywhere, the ledger's own export events) may concern any site, so it is visible only to
  someone who may audit every site of the company.

The Django superuser flag grants nothing here (see sites.policies). Anything out of scope looks
exactly like something that does not exist.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q, QuerySet

from portal.audit.models import LEDGER_ORDER, AuditEvent
from portal.audit.trails import linked_events
from sites.models import Site
from sites.policies import Capability, in_scope, sites_where

REQUEST_TYPE = "approvals.approvalrequest"
CASE_TYPE = "exceptions.exceptioncase"


@dataclass(frozen=True)
class ExportFilters:
    """What an auditor asks for; dates are whole UTC days, both ends included."""

    date_from: date | None = None
    date_to: date | None = None
    sites: tuple[str, ...] = ()
    region: str = ""
    kind: str = ""
    actor: str = ""

    @property
    def narrowing(self) -> bool:
        return any(asdict(self).values())

    def as_dict(self) -> dict:
        """The filters as JSON values, for the manifest and the ledger."""
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "sites": list(self.sites),
            "region": self.region,
            "kind": self.kind,
            "actor": self.actor,
        }


def audits_every_site(user) -> bool:
    """Whether `user` may audit every site there is (and so the events that have no site)."""
    audited = sites_where(user, Capability.AUDIT)
    return audited.exists() and not Site.objects.exclude(in_scope(user, Capability.AUDIT)).exists()


def regions_audited_whole(user) -> list[str]:
    """Codes of the regions every site of which `user` may audit."""
    from sites.models import Region

    outside = Site.objects.exclude(in_scope(user, Capability.AUDIT)).values("region")
    return list(
        Region.objects.filter(sites__isnull=False)
        .exclude(pk__in=outside)
        .values_list("code", flat=True)
        .distinct()
    )


def events_visible_to(user) -> QuerySet[AuditEvent]:
    """Every event `user` may audit, in ledger order."""
    visible = Q(site__in=sites_where(user, Capability.AUDIT))
    if audits_every_site(user):
        visible |= Q(site__isnull=True)
    else:
        regions = regions_audited_whole(user)
        if regions:
            visible |= Q(site__isnull=True, context__region__in=regions)
    return AuditEvent.objects.filter(visible).order_by(*LEDGER_ORDER)


def events_for_export(user, filters: ExportFilters) -> QuerySet[AuditEvent]:
    """The events `user` may audit that match `filters`, in ledger order."""
    events = events_visible_to(user)
    if filters.date_from:
        events = events.filter(at__gte=_start_of(filters.date_from))
    if filters.date_to and filters.date_to < date.max:  # the last day there is ends nothing
        events = events.filter(at__lt=_start_of(filters.date_to + timedelta(days=1)))
    if filters.sites:
        events = events.filter(site__code__in=filters.sites)
    if filters.region:
        events = events.filter(
            Q(site__region__code=filters.region)
            | Q(site__isnull=True, context__region=filters.region)
        )
    if filters.kind:
        # "request", "request." and "request.approved" all mean what they say.
        family = filters.kind.rstrip(".")
        events = events.filter(Q(action=filters.kind) | Q(action__startswith=f"{family}."))
    if filters.actor:
        events = events.filter(Q(actor_label=filters.actor) | Q(actor__username=filters.actor))
    return events


def trail_for(user, object_type: str, object_id: str) -> list[AuditEvent]:
    """Every event `user` may audit about one object, oldest first; DoesNotExist if none.

    A request's trail also carries the delegations its decisions were taken under (the ties
    apps register in portal.audit.trails).
    """
    about = Q(object_type=object_type, object_id=str(object_id))
    about |= linked_events(object_type, object_id, export=False)
    events = list(
        events_visible_to(user).filter(about).select_related("site", "on_behalf_of", "actor")
    )
    if not any(e.object_type == object_type for e in events):
        raise AuditEvent.DoesNotExist(f"No trail for {object_type} {object_id} in your scope.")
    return events


def trail_for_export(user, object_type: str, object_id: str) -> QuerySet[AuditEvent]:
    """A trail as an auditor exports it: the object's events, the delegations its decisions
    used, and the request or case linked to it (a write-off's case and its approval request),
    in ledger order, all within `user`'s audit scope; DoesNotExist if none is about it."""
    about = Q(object_type=object_type, object_id=str(object_id))
    about |= linked_events(object_type, object_id, export=True)
    events = events_visible_to(user).filter(about)
    if not events.filter(object_type=object_type, object_id=str(object_id)).exists():
        raise AuditEvent.DoesNotExist(f"No trail for {object_type} {object_id} in your scope.")
    return events


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
