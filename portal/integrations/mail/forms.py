"""The triage item's two forms: confirm (perhaps corrected) and dismiss."""

from django import forms

from portal.core.textlimits import COMMENT_MAX
from portal.integrations.mail.extractors import FIELDS, KINDS_BY_PURPOSE
from portal.integrations.mail.models import EventKind, TriageItem


def fields_of(purpose: str) -> list[str]:
    """The fields the events of a mailbox's purpose carry, in the order people read them."""
    names: list[str] = []
    for kind in KINDS_BY_PURPOSE[purpose]:
        names += [spec.name for spec in FIELDS[kind] if spec.name not in names]
    return names


class ConfirmForm(forms.Form):
    """What the mail announces, prefilled with what Tollgate read; every value may be corrected."""

    kind = forms.ChoiceField(label="The mail announces")

    def __init__(self, *args, item: TriageItem, **kwargs):
        extraction = item.message.extraction or {}
        found = extraction.get("fields", {})
        initial = {"kind": extraction.get("kind", "")} | {
            name: value.get("value", "") for name, value in found.items()
        }
        super().__init__(*args, initial=initial, **kwargs)
        kinds = KINDS_BY_PURPOSE[item.purpose]
        self.fields["kind"].choices = [("", "Choose…")] + [
            (kind, EventKind(kind).label) for kind in kinds
        ]
        labels = {spec.name: spec.label for kind in kinds for spec in FIELDS[kind]}
        for name in fields_of(item.purpose):
            source = found.get(name, {}).get("text", "")
            self.fields[name] = forms.CharField(
                label=labels[name],
                required=False,
                max_length=100,
                help_text=f"Read from: “{source}”" if source else "Not found in the mail.",
            )

    def values(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items() if name != "kind"}


class DismissForm(forms.Form):
    reason = forms.CharField(
        label="Why no event (required)",
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the mail needs no event."},
    )
