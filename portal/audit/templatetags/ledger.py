"""Ledger events in templates, told with the one mapping in `portal.audit.sentences`:
`{% load ledger %}` then `{{ event|event_words }}`, `{{ event|event_sentence }}`."""

import re

from django import template

from portal.audit import sentences
from portal.core.formatting import moment, money

register = template.Library()
_CODE = re.compile(r"^[a-z]+(_[a-z]+)+$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


@register.filter
def event_words(event):
    return sentences.event_words(event)


@register.filter
def event_sentence(event):
    return sentences.event_sentence(event)


@register.filter
def actor_name(event):
    return sentences.actor_name(event)


@register.filter
def person_name(person):
    return sentences.person_name(person)


@register.filter
def field_words(key) -> str:
    """A recorded field's name as words: 'due_at' -> 'due at'."""
    return str(key).replace("_", " ")


@register.filter
def ledger_value(value, zone=None) -> str:
    """A recorded value as text, never as Python: lists joined, mappings as 'key: value'."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{field_words(k)}: {ledger_value(v, zone)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(ledger_value(item, zone) for item in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if _ISO_MOMENT.match(text):
        return moment(text, zone)
    return text.replace("_", " ") if _CODE.match(text) else text


@register.filter
def ledger_pairs(recorded, zone=None) -> list[tuple[str, str]]:
    """A recorded before/after as (field, value) words; amounts as money when the record names
    its currency ('amount: €1,890.75')."""
    recorded = recorded or {}
    currency = recorded.get("currency") if isinstance(recorded.get("currency"), str) else ""
    pairs = []
    for key, value in recorded.items():
        if currency and str(key).endswith("amount") and value not in (None, ""):
            text = money(value, currency)
        else:
            text = ledger_value(value, zone)
        pairs.append((field_words(key), text))
    return pairs
