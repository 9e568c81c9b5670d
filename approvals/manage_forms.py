"""Forms of the manage pages: delegations, notification preferences, policy preview and publish.

They only read and check input; every change goes through a service.
"""

import json
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals.models import NotificationPreference, RequestKind, RiskFlag
from approvals.specs import RULE_FIELDS, TIER_FIELDS, RuleSpec, TierSpec, VersionSpec

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class PeopleSelect(forms.Select):
    """A list of people; each option names the regions where that person holds a role, so that
    static/js/people.js can narrow the list to the site chosen and to the name being typed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.regions: dict[str, str] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.regions:
            option["attrs"]["data-regions"] = self.regions[str(value)]
        return option


class SiteSelect(forms.Select):
    """The sites of a delegation; each option names its region for static/js/people.js."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.regions: dict[str, str] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"]["data-region"] = self.regions.get(str(value), "")
        return option


class DelegationForm(forms.Form):
    """Hand my approvals to someone for a period of days in my sites' zone, optionally narrowed.

    Only people holding a role in a region where I decide are offered, each marked with those
    regions so that the page narrows the list to the site chosen. Whether the person chosen
    works wherever the delegation reaches is the service's rule (a delegate sees the requests
    they may decide); its refusal is shown on the form.
    """

    delegate = forms.TypedChoiceField(
        coerce=int,
        label="Delegate",
        widget=PeopleSelect(attrs={"data-people": "", "class": "people"}),
        error_messages={"invalid_choice": "Choose someone from the list."},
    )
    starts_at = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text="From the start of this day.",
    )
    ends_at = forms.DateField(
        label="Until",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text="To the end of this day.",
    )
    site = forms.ChoiceField(
        required=False, label="Only at site", widget=SiteSelect(attrs={"data-people-site": ""})
    )
    kind = forms.ChoiceField(
        required=False, label="Only for", choices=[("", "Every kind"), *RequestKind.choices]
    )
    max_amount = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=16,
        decimal_places=2,
        label=f"Only up to ({settings.TOLLGATE_BASE_CURRENCY})",
    )
    note = forms.CharField(required=False, max_length=200, label="Note")

    def __init__(self, *args, sites, candidates, zone: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = {str(site.pk): site for site in sites}
        self.zone = zone
        self.candidates = {person.pk: (person, regions) for person, regions, _ in candidates}
        self.initial.setdefault("starts_at", timezone.now().astimezone(zone).date())
        site_field, delegate_field = self.fields["site"], self.fields["delegate"]
        site_field.choices = [
            ("", "Every site"),
            *((pk, f"{site.name} ({site.code})") for pk, site in self.sites.items()),
        ]
        site_field.widget.regions = {pk: str(site.region_id) for pk, site in self.sites.items()}
        delegate_field.choices = [
            ("", "Choose a person"),
            *((person.pk, _person_label(person, duties)) for person, _, duties in candidates),
        ]
        delegate_field.widget.regions = {
            str(person.pk): " ".join(map(str, sorted(regions))) for person, regions, _ in candidates
        }

    def clean_delegate(self):
        chosen = self.candidates.get(self.cleaned_data["delegate"])
        # One answer for "no such person" and "works elsewhere": the form must not tell who
        # exists in other regions.
        if chosen is None:
            raise ValidationError(
                "Choose someone from the list: they hold a role in a region where you decide."
            )
        return chosen[0]

    def clean_site(self):
        value = self.cleaned_data["site"]
        return self.sites.get(value) if value else None

    @staticmethod
    def _plausible(day: date) -> date:
        # Days at the ends of the calendar cannot be turned into moments in every zone.
        if not date(2000, 1, 1) <= day <= date(9998, 12, 31):
            raise ValidationError("Choose a day between the years 2000 and 9998.")
        return day

    def clean_starts_at(self) -> date:
        return self._plausible(self.cleaned_data["starts_at"])

    def clean_ends_at(self) -> date:
        return self._plausible(self.cleaned_data["ends_at"])

    def clean(self):
        data = super().clean()
        first, last = data.get("starts_at"), data.get("ends_at")
        if isinstance(first, date) and isinstance(last, date):
            if last < first:
                self.add_error(
                    "ends_at", "A delegation must end after it starts: choose a later last day."
                )
            else:
                # Whole days in the zone shown on the page, stored as UTC moments.
                data["starts_at"] = datetime.combine(first, time(0), tzinfo=self.zone)
                data["ends_at"] = datetime.combine(last + timedelta(days=1), time(0), self.zone)
        return data


def _person_label(person, duties: str) -> str:
    """'Ilse Bakker — site manager, Rotterdam': whom one picks, by name and what they do."""
    name = person.get_full_name() or person.get_username()
    return f"{name} — {duties}" if duties else name


class PreferencesForm(forms.Form):
    new_steps = forms.ChoiceField(
        label="When a decision waits for me",
        choices=NotificationPreference.NewSteps.choices,
        widget=forms.RadioSelect,
    )
    reminders = forms.BooleanField(
        required=False, label="Remind me when a decision nears its due time"
    )
    decisions_on_my_requests = forms.BooleanField(
        required=False, label="Tell me when a request I raised is decided"
    )


class PreviewForm(forms.Form):
    """A draft request that is never saved: who would have to approve it?"""

    kind = forms.ChoiceField(choices=RequestKind.choices)
    site = forms.ChoiceField()
    amount = forms.DecimalField(min_value=0, max_digits=16, decimal_places=2)
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$",
        max_length=3,
        initial=settings.TOLLGATE_BASE_CURRENCY,
        error_messages={"invalid": "Use a three-letter ISO 4217 code, e.g. EUR."},
    )
    category = forms.CharField(required=False, max_length=100)
    customer_class = forms.CharField(required=False, max_length=32, label="Customer class")
    risk_flags = forms.MultipleChoiceField(
        required=False,
        choices=RiskFlag.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Risk flags",
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = {str(site.pk): site for site in sites}
        self.fields["site"].choices = [
            (pk, f"{site.code} {site.name}") for pk, site in self.sites.items()
        ]

    def clean_site(self):
        return self.sites[self.cleaned_data["site"]]


# --- publishing ---------------------------------------------------------------------------------


def spec_to_json(spec: VersionSpec) -> str:
    """A version's specs as the JSON an administrator edits before publishing the next one."""
    return json.dumps(asdict(spec), indent=2, default=str, ensure_ascii=False)


_DECIMALS = {"sla_hours", "min_amount", "max_amount", "auto_approve_below"}
_LISTS = {"kinds", "categories", "customer_classes", "risk_flags"}


def spec_from_json(text: str) -> VersionSpec:
    """The specs in `text`, or a ValidationError that says where the text is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"Not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValidationError('Write an object with a list of "rules".')
    version_keys = {"rules", "fast_path_sample_rate", "drift_tolerance_pct"}
    version_keys |= {"cancel_in_odoo_on_reject", "note"}
    _no_unknown(data, version_keys, "The version")
    rules = tuple(_rule(index, rule) for index, rule in enumerate(data["rules"], start=1))
    values = {key: data[key] for key in version_keys - {"rules"} if key in data}
    for key in ("fast_path_sample_rate", "drift_tolerance_pct"):
        if key in values:
            values[key] = _decimal(values[key], f"The version's {key}")
    return VersionSpec(rules=rules, **values)


def _rule(index: int, data) -> RuleSpec:
    where = f"Rule {index}"
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: write it as an object.")
    _no_unknown(data, {*RULE_FIELDS, "tiers"}, where)
    if not data.get("name"):
        raise ValidationError(f"{where}: give it a name.")
    values = {}
    for key, value in data.items():
        if key == "tiers":
            continue
        if key in _DECIMALS:
            value = None if value in (None, "") else _decimal(value, f"{where} {key}")
        elif key in _LISTS:
            if not isinstance(value, list):
                raise ValidationError(f"{where}: {key} must be a list.")
            value = tuple(value)
        values[key] = value
    tiers = data.get("tiers", [])
    if not isinstance(tiers, list):
        raise ValidationError(f"{where}: tiers must be a list.")
    return RuleSpec(
        tiers=tuple(_tier(f"{where} tier {n}", tier) for n, tier in enumerate(tiers, start=1)),
        **values,
    )


def _tier(where: str, data) -> TierSpec:
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: write it as an object.")
    _no_unknown(data, set(TIER_FIELDS), where)
    if "role" not in data or "sla_hours" not in data:
        raise ValidationError(f"{where}: a tier needs a role and sla_hours.")
    values = dict(data)
    values["sla_hours"] = _decimal(values["sla_hours"], f"{where} sla_hours")
    for key in ("stage", "quorum"):
        if key in values and not isinstance(values[key], int):
            raise ValidationError(f"{where}: {key} must be a whole number.")
    return TierSpec(**values)


def _no_unknown(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(f"{where}: unknown field {', '.join(map(repr, unknown))}.")


def _decimal(value, where: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{where}: {value!r} is not a number.") from None
    if not number.is_finite():
        raise ValidationError(f"{where}: {value!r} is not a number.")
    return number


class PublishForm(forms.Form):
    spec = forms.CharField(
        label="Rules and tiers (JSON)",
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false"}),
    )
    effective_from = forms.DateTimeField(
        required=False,
        label="In force from (UTC; empty: now)",
        widget=DATETIME_INPUT,
        input_formats=DATETIME_FORMATS,
    )

    def clean_spec(self) -> VersionSpec:
        return spec_from_json(self.cleaned_data["spec"])
