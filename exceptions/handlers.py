"""Exception cases that wait for an approval, moved on when the approval tells what happened.

Before commit: the case changes in the transaction of the decision it follows.
"""

from approvals.events import RequestDecided, RequestWithdrawn
from exceptions import services
from portal.core.events import BEFORE_COMMIT, subscribe


def register() -> None:
    """Subscribe the case handlers (from ExceptionsConfig.ready)."""
    subscribe(RequestDecided, linked_request_final, phase=BEFORE_COMMIT)
    subscribe(RequestWithdrawn, linked_request_final, phase=BEFORE_COMMIT)


def linked_request_final(event: RequestDecided | RequestWithdrawn) -> None:
    services.case_linked_request_decided(request=event.request)
