"""Forms of the manage pages: delegations, notification preferences, policy preview and publish.

They only read and check input; every change goes through a service.
"""

import json
from dataclasses import asdict
from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from approvals.models import NotificationPreference, RequestKind, RiskFlag
from approvals.specs import RULE_FIELDS, TIER_FIELDS, RuleSpec, TierSpec, VersionSpec
from sites import policies as site_policies
from sites.policies import Capability

User = get_user_model()
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class DelegationForm(forms.Form):
    """Hand my approvals to someone for a period, optionally narrowed."""

    delegate = forms.CharField(max_length=150, label="Delegate (username)")
    starts_at = forms.DateTimeField(
        label="From (UTC)", widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    ends_at = forms.DateTimeField(
        label="Until (UTC)", widget=DATETIME_INPUT, input_formats=DATETIME_FORMATS
    )
    site = forms.ChoiceField(required=False, label="Only at site")
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

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = {str(site.pk): site for site in sites}
        self.fields["site"].choices = [
            ("", "Every site"),
            *((pk, f"{site.code} {site.name}") for pk, site in self.sites.items()),
        ]

    def clean_delegate(self):
        username = self.cleaned_data["delegate"].strip()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(self._no_colleague(username))
        return user

    @staticmethod
    def _no_colleague(username: str) -> str:
        # One answer for "no such person" and "works elsewhere": the form must not tell who
        # exists in other regions.
        return (
            f"No colleague called {username!r} holds a role in the region of the sites this "
            "delegation covers."
        )

    def _works_where_delegated(self, delegate, site) -> bool:
        """Whether `delegate` holds a role in every region the delegation reaches (one query).

        A delegate sees the requests they may decide; someone from another region would see
        that region's requests through the delegation alone.
        """
        covered = [site] if site else list(self.sites.values())
        regions = {covered_site.region_id for covered_site in covered}
        theirs = set(
            site_policies.sites_where(delegate, Capability.VIEW).values_list("region", flat=True)
        )
        return bool(regions) and regions <= theirs

    def clean_site(self):
        value = self.cleaned_data["site"]
        return self.sites.get(value) if value else None

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", "A delegation must end after it starts.")
        delegate = data.get("delegate")
        site_ok = "site" not in self.errors
        if delegate and site_ok and not self._works_where_delegated(delegate, data.get("site")):
            self.add_error("delegate", self._no_colleague(delegate.get_username()))
        return data


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
