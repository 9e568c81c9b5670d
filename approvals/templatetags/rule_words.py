"""A policy rule's selectors as people read them: `{% load rule_words %}`.

{{ rule.kinds|kind_names }}           ->  Write-off, Return authorisation
{{ rule.risk_flags|flag_names }}      ->  Possible threshold splitting
{{ rule.min_amount|base_money }}      ->  €5,000.00 (rule amounts are in the base currency)
"""

from django import template
from django.conf import settings

from approvals.models import RequestKind
from approvals.selectors import flag_label
from portal.core import formatting

register = template.Library()
_KINDS = dict(RequestKind.choices)


@register.filter
def kind_names(codes) -> str:
    return ", ".join(_KINDS.get(code, str(code).replace("_", " ")) for code in codes or ())


@register.filter
def flag_names(codes) -> str:
    return ", ".join(flag_label(code) for code in codes or ())


@register.filter
def base_money(amount) -> str:
    return formatting.money(amount, settings.TOLLGATE_BASE_CURRENCY)
