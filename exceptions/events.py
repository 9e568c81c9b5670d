"""What happens to an exception case that other apps react to (see portal.core.events).

Emitted by exceptions.services inside the transaction that made the change; outbound webhooks
listen.
"""

from dataclasses import dataclass

from exceptions.models import ExceptionCase


@dataclass(frozen=True)
class CaseOpened:
    case: ExceptionCase


@dataclass(frozen=True)
class CaseClosed:
    """Resolved or dismissed."""

    case: ExceptionCase


@dataclass(frozen=True)
class CaseBreached:
    """The case passed its due time and was escalated."""

    case: ExceptionCase
