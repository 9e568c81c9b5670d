"""The inbox's filters: one form over approval requests and exception cases."""

from datetime import datetime
from decimal import Decimal

from django import forms

from approvals.models import RequestKind
from exceptions.models import CaseKind, Queue


class InboxFilterForm(forms.Form):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(required=False, label="Kind")
    queue = forms.ChoiceField(
        required=False, choices=[("", "Any queue"), *Queue.choices], label="Queue"
    )
    min_amount = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=16, decimal_places=2, label="Amount from"
    )
    max_amount = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=16, decimal_places=2, label="Amount to"
    )
    overdue = forms.BooleanField(required=False, label="Overdue only")
    q = forms.CharField(required=False, max_length=100, label="Search")
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", "All sites")] + [
            (site.pk, f"{site.code} {site.name}") for site in sites
        ]
        self.fields["kind"].choices = [
            ("", "Any kind"),
            ("Approval requests", list(RequestKind.choices)),
            ("Exception cases", list(CaseKind.choices)),
        ]

    def clean(self):
        data = super().clean()
        low, high = data.get("min_amount"), data.get("max_amount")
        if low is not None and high is not None and low > high:
            self.add_error("max_amount", "The upper amount is below the lower one.")
        return data

    def clean_after(self) -> tuple[datetime, int] | None:
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        due, _, pk = raw.rpartition("~")
        try:
            moment = datetime.fromisoformat(due)
            if moment.tzinfo is None or not (pk.isascii() and pk.isdigit()):
                raise ValueError(raw)
        except ValueError:
            raise forms.ValidationError(
                "That page link is not valid any more; showing the first page."
            ) from None
        return moment, int(pk)

    @property
    def shows_requests(self) -> bool:
        data = self.cleaned_data
        return not data.get("queue") and data.get("kind", "") not in CaseKind.values

    @property
    def shows_cases(self) -> bool:
        return self.cleaned_data.get("kind", "") not in RequestKind.values


def cursor_text(cursor: tuple[datetime, int] | None) -> str:
    """The inbox's keyset cursor as a query-string value."""
    return f"{cursor[0].isoformat()}~{cursor[1]}" if cursor else ""
