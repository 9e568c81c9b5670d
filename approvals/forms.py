"""The portal's forms for deciding requests; the services validate again and have the last word."""

import html
from datetime import timedelta

from django import forms
from django.utils.choices import BaseChoiceIterator
from django.utils.safestring import mark_safe

from approvals.advice import LABELS as ADVICE_LABELS

# A hand-over from the request page covers an absence; a longer one is set up under "My
# delegations". The bound also keeps the day after `until` (where the delegation ends) a date.
DELEGATE_MAX_DAYS = 366


# The tier travels in a hidden field, so its own error would show nowhere on the page.
STALE_STEP = "The tier on this page is not valid any more; reload the page and decide again."


STRANGE_ADVICE = (
    "The recommendation sent with this decision is not one Tollgate gives; reload the page and "
    "decide again."
)


def _step_errors_shown(form: forms.Form) -> None:
    """Move an error of the hidden `step` or `advice` field to the form, where the page shows
    it."""
    if form.errors.pop("step", None):
        form.add_error(None, STALE_STEP)
    if form.errors.pop("advice", None):
        form.add_error(None, STRANGE_ADVICE)


def _advice_field() -> forms.ChoiceField:
    """The recommendation the page showed beside the form, recorded with the decision."""
    return forms.ChoiceField(
        choices=[("", ""), *ADVICE_LABELS.items()], required=False, widget=forms.HiddenInput
    )


class ApproveForm(forms.Form):
    step = forms.IntegerField(required=False, widget=forms.HiddenInput)
    advice = _advice_field()
    comment = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, comment_required: bool = False, **kwargs):
        kwargs.setdefault("auto_id", "approve_%s")
        super().__init__(*args, **kwargs)
        self.comment_required = comment_required
        self.fields["comment"].label = (
            "Comment (required for this tier)" if comment_required else ("Comment (optional)")
        )

    def clean_comment(self):
        comment = self.cleaned_data["comment"].strip()
        if self.comment_required and not comment:
            raise forms.ValidationError("This tier needs a comment with the approval.")
        return comment

    def clean(self):
        data = super().clean()
        _step_errors_shown(self)
        return data


class RejectForm(forms.Form):
    step = forms.IntegerField(required=False, widget=forms.HiddenInput)
    advice = _advice_field()
    reason = forms.CharField(
        label="Reason (required)", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "reject_%s")
        super().__init__(*args, **kwargs)
        self.fields["reason"].error_messages["required"] = "Say why the request is rejected."

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the request is rejected.")
        return reason

    def clean(self):
        data = super().clean()
        _step_errors_shown(self)
        return data


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        label="Why withdraw? (optional)",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "withdraw_%s")
        super().__init__(*args, **kwargs)


class BulkApproveForm(forms.Form):
    requests = forms.TypedMultipleChoiceField(coerce=int, label="Requests to approve")
    comment = forms.CharField(
        label="Comment for every approval",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["requests"].choices = choices
        self.fields["requests"].error_messages.update(
            {
                "required": "Select at least one request.",
                "invalid_choice": "One of the selected requests can no longer be bulk-approved; "
                "the list below is up to date.",
            }
        )
        self.fields["comment"].error_messages["required"] = "Write the comment for the approvals."


class LinkDecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    comment = forms.CharField(
        label="Comment (a reason is required to reject)",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    password = forms.CharField(
        label="Your password", required=False, widget=forms.PasswordInput(render_value=False)
    )

    def __init__(self, *args, needs_password: bool = False, comment_required=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_password = needs_password
        self.comment_required = comment_required
        if not needs_password:
            del self.fields["password"]

    def clean(self):
        data = super().clean()
        comment = (data.get("comment") or "").strip()
        if data.get("outcome") == "reject" and not comment:
            self.add_error("comment", "Say why the request is rejected.")
        if data.get("outcome") == "approve" and self.comment_required and not comment:
            self.add_error("comment", "This tier needs a comment with the approval.")
        if self.needs_password and not data.get("password"):
            self.add_error("password", "Enter your password to decide this amount.")
        data["comment"] = comment
        return data


class LongSelect(forms.Select):
    """A select of many options (every colleague at a site), written out directly rather than
    through a template and a dictionary per option; the markup is exactly forms.Select's."""

    def render(self, name, value, attrs=None, renderer=None):
        choices = list(self.choices)
        if self.allow_multiple_selected or any(isinstance(c[1], list | tuple) for c in choices):
            return super().render(name, value, attrs, renderer)
        wanted = set(self.format_value(value))
        parts = [f'<select name="{_escape(name)}"{_attrs(self.build_attrs(self.attrs, attrs))}>']
        chosen = False
        for option_value, label in choices:
            option_value = "" if option_value is None else option_value
            selected = not chosen and str(option_value) in wanted
            chosen = chosen or selected
            parts.append(
                f'\n  <option value="{_escape(option_value)}"{" selected" if selected else ""}>'
                f"{_escape(label)}</option>\n"
            )
        parts.append("\n</select>")
        # Every name, value and label above went through _escape.
        return mark_safe("".join(parts))  # noqa: S308


def _escape(value) -> str:
    """What the template's autoescape writes for `value`."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


def _attrs(attrs: dict) -> str:
    """HTML attributes as Django's widgets/attrs.html writes them, in their order."""
    return "".join(
        f" {_escape(name)}" if value is True else f' {_escape(name)}="{_escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


class _Pairs(BaseChoiceIterator):
    """Choices already as (value, label) pairs of plain values. Django normalizes a plain list
    of choices item by item, for the field and again for its widget (milliseconds for the
    hundreds of colleagues at a busy site); choices given as an iterator it takes as they are."""

    def __init__(self, pairs: list[tuple]):
        self.pairs = pairs

    def __iter__(self):
        return iter(self.pairs)


class DelegateForm(forms.Form):
    """Hand one's own decisions of this kind at this site, up to this amount, to a colleague."""

    delegate = forms.TypedChoiceField(coerce=int, label="Colleague", widget=LongSelect)
    until = forms.DateField(
        label="Until the end of",
        # A date input shows only an ISO value; the locale's format would leave it empty.
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=200)

    def __init__(self, *args, colleagues=(), today=None, **kwargs):
        kwargs.setdefault("auto_id", "delegate_%s")
        super().__init__(*args, **kwargs)
        self.today = today
        names = [
            (person.pk, person.get_full_name() or person.get_username()) for person in colleagues
        ]
        self.fields["delegate"].choices = _Pairs([("", "Choose a colleague"), *names])
        self.fields["delegate"].error_messages.update(
            {
                "required": "Choose the colleague who decides in your place.",
                "invalid_choice": "That person holds no role at this site.",
            }
        )
        self.fields["until"].error_messages["required"] = "Say until when."

    def clean_until(self):
        until = self.cleaned_data["until"]
        if self.today is not None and until < self.today:
            raise forms.ValidationError("Choose today or a later day.")
        if self.today is not None and until > self.today + timedelta(days=DELEGATE_MAX_DAYS):
            raise forms.ValidationError(
                "Choose a day within a year; set up a longer hand-over under My delegations."
            )
        return until
