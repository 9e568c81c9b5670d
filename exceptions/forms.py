"""The portal's forms for the exception queues; the services validate again."""

from django import forms

from exceptions.models import CaseKind, Queue, Severity
from exceptions.rules import resolution_codes


class QueueFilterForm(forms.Form):
    show = forms.ChoiceField(
        required=False,
        choices=[("", "My queues"), ("all", "Every queue")],
        label="Show",
    )
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


class BulkAssignForm(forms.Form):
    """Several cases to oneself ("me") or to one person who works the queue at those sites.

    Each case is checked again by the service on its own; this form only reads the choice.
    """

    cases = forms.TypedMultipleChoiceField(coerce=int)
    to = forms.ChoiceField(choices=[("me", "me"), ("person", "person")])
    assignee = forms.CharField(required=False, label="Assign the selected cases to")

    def __init__(self, data=None, *, people=()):
        super().__init__(data)
        self.people = {str(person.pk): person for person in people}
        posted = data.getlist("cases") if data is not None else []
        self.fields["cases"].choices = [(v, v) for v in posted if str(v).isdigit()]
        self.fields["cases"].error_messages["required"] = "Select the cases to assign first."

    def clean(self):
        data = super().clean()
        if data.get("to") == "person" and data.get("assignee") not in self.people:
            raise forms.ValidationError("Choose someone who works these queues at these sites.")
        return data

    def chosen(self, me):
        """The person the cases go to."""
        return me if self.cleaned_data["to"] == "me" else self.people[self.cleaned_data["assignee"]]


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
