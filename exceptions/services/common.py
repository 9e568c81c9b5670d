"""What the case services share: a case's deadlines from its routing, and its owner's name."""

from datetime import datetime

from exceptions import routing
from exceptions.models import ExceptionCase


def set_due(case: ExceptionCase, since: datetime) -> None:
    """Set the due and reminder times and the escalation role `routing.due` gives the case."""
    due = routing.due(severity=case.severity, queue=case.queue, site=case.site, since=since)
    case.due_at, case.remind_at = due.due_at, due.remind_at
    case.escalation_role = due.escalation_role


def owner_name(case: ExceptionCase) -> str | None:
    return case.owner.get_username() if case.owner else None
