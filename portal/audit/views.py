"""The decision trail: every event about one request or case, as a page meant to be printed."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from portal.audit.models import AuditEvent
from portal.audit.selectors import CASE_TYPE, REQUEST_TYPE, trail_for

# Short names for the URL; a full "app_label.model" names any other object.
OBJECT_TYPES = {"request": REQUEST_TYPE, "case": CASE_TYPE}
KIND_NAMES = {REQUEST_TYPE: "Approval request", CASE_TYPE: "Exception case"}


@login_required
def trail(request, object_type: str, object_id: str):
    """The timeline of one object; 404 when nothing about it is in the viewer's audit scope."""
    label = OBJECT_TYPES.get(object_type, object_type)
    try:
        events = trail_for(request.user, label, object_id)
    except AuditEvent.DoesNotExist:
        raise Http404("No such trail.") from None
    subject = next(event for event in reversed(events) if event.object_type == label)
    return render(
        request,
        "audit/trail.html",
        {
            "events": events,
            "subject": subject,
            "record_kind": KIND_NAMES.get(label, "Record"),
            "first": events[0],
            "last": events[-1],
        },
    )
