"""Errors every app's services raise besides Django's PermissionDenied and ValidationError."""

from django_fsm import ConcurrentTransition, TransitionNotAllowed


class Conflict(Exception):
    """Someone else got there first: the record changed since the caller looked.

    The API answers 409 and the portal shows the message; retrying the same action is pointless.
    """


# What a state change is refused with when its record moved on since the page was drawn: the
# portal shows the record as it is now (`portal.core.responses.stale`), the API answers 409.
STALE = (Conflict, TransitionNotAllowed, ConcurrentTransition)
