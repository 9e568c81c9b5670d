"""Which other objects' events join one object's trail, as the apps that own the links say.

The ledger knows events, not what ties a request to the delegations its decisions were taken
under, or a case to the request it waits for: the app that owns such a tie registers it in its
AppConfig.ready() with `link_trails`. A tie `in_export_only` joins the trail an auditor exports
(portal.audit.selectors.trail_for_export), not the one a page shows.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Q

# The largest id a bigint column holds: an id past it, or no number at all, has no links.
LARGEST_ID = 2**63 - 1


@dataclass(frozen=True)
class TrailLink:
    """The objects of `related_type` that `related(object_id)` names join the trail of an
    object of `object_type`."""

    object_type: str
    related_type: str
    related: Callable[[int], Iterable]
    in_export_only: bool = False


_links: list[TrailLink] = []


def link_trails(
    object_type: str,
    related_type: str,
    related: Callable[[int], Iterable],
    *,
    in_export_only: bool = False,
) -> None:
    """Register a tie; registering the same one twice (a second `ready()`) keeps one."""
    link = TrailLink(object_type, related_type, related, in_export_only)
    if link not in _links:
        _links.append(link)


def linked_events(object_type: str, object_id: str, *, export: bool) -> Q:
    """The events (a filter of AuditEvent) of the objects tied to one object; `export` for the
    exported trail. An empty filter when nothing is tied to it."""
    text = str(object_id)
    found = Q()
    if not (text.isascii() and text.isdigit()) or int(text) > LARGEST_ID:
        return found
    for link in _links:
        if link.object_type == object_type and (export or not link.in_export_only):
            ids = [str(pk) for pk in link.related(int(text))]
            found |= Q(object_type=link.related_type, object_id__in=ids)
    return found
