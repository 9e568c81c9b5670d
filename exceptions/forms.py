"""The portal's forms for the exception queues; the services validate again."""

from django import forms

from exceptions.models import CaseKind, Queue, Severity
from exceptions.rules import resolution_codes


class QueueFilterForm(forms.Form):
    queue = forms.ChoiceField(required=False, choices=[("", "All queues"), *Queue.choices])
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *CaseKind.choices])
    severity = forms.ChoiceField(required=False, choices=[("", "Any severity"), *Severity.choices])
    overdue = forms.BooleanField(required=False, label="Overdue only")
    mine = forms.BooleanField(required=False, label="Assigned to me")

    def __init__(self, *args, sites=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", "All sites")] + [
            (site.pk, f"{site.code} {site.name}") for site in sites
        ]


class AssignForm(forms.Form):
    owner = forms.TypedChoiceField(coerce=int, label="Assign to")

    def __init__(self, *args, people=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [
            (person.pk, person.get_full_name() or person.get_username()) for person in people
        ]
        self.fields["owner"].error_messages["invalid_choice"] = (
            "That person does not work this queue at this site."
        )


class ResolveForm(forms.Form):
    code = forms.ChoiceField(label="Resolution")
    note = forms.CharField(
        label="What was done (required)", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = [("", "Choose a resolution"), *resolution_codes(kind).items()]
        self.fields["code"].error_messages["required"] = "Choose a resolution."
        self.fields["note"].error_messages["required"] = "Say what was done."

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Say what was done.")
        return note


class ReasonForm(forms.Form):
    """Dismissing and reopening both need a reason."""

    reason = forms.CharField(
        label="Reason (required)", max_length=4000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, message: str = "Give a reason.", **kwargs):
        super().__init__(*args, **kwargs)
        self.message = message
        self.fields["reason"].error_messages["required"] = message

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(self.message)
        return reason
