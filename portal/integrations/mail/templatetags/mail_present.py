"""Template filters of the mail pages and the navigation: `{% load mail_present %}`."""

from decimal import Decimal, InvalidOperation

from django import template

from portal.core.formatting import percent
from portal.integrations.mail.policies import TRIAGE_ROLES

register = template.Library()


@register.filter
def confidence(value) -> str:
    """An extraction's confidence (0.72) as people read it: '72 %'."""
    try:
        return percent(Decimal(str(value)) * 100, digits=0)
    except (InvalidOperation, TypeError, ValueError):
        return "—"


@register.filter
def works_triage(roles) -> bool:
    """Whether the roles held (`nav_roles`) include one that works some mail in triage."""
    return bool(TRIAGE_ROLES & set(roles))
