"""Administration views of the approval engine: a window onto it, never a way around it.

Requests, decisions and published policy versions are read-only here: states move only through
approvals.services, and a policy changes by publishing a new version. Delegations and exchange
rates are added through their services; nothing is ever deleted.

Staff who are not superusers see the policies, requests and delegations of the sites they
administer (sites.admin_scope); exchange rates are the whole company's, for superusers only.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStep,
    CurrencyRate,
    Decision,
    Delegation,
    PolicyRule,
    PolicyTier,
    PolicyVersion,
)
from approvals.selectors import requests_visible_to
from portal.core.formatting import count
from sites.admin_scope import ScopedAdmin, SuperuserOnlyAdmin, administered_sites
from sites.policies import people_administered_by


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class VersionInline(ReadOnlyInline):
    model = PolicyVersion
    fields = ["number", "effective_from", "published_at", "published_by", "note"]
    readonly_fields = fields


def policies_governing(request, prefix: str = "") -> Q:
    """Policies (or rows reached through `prefix`) that govern a site the person administers:
    the site's own, its region's, and the company-wide ones."""
    sites = administered_sites(request)
    return (
        Q(**{f"{prefix}site__in": sites})
        | Q(**{f"{prefix}region__in": sites.values("region")})
        | Q(**{f"{prefix}site__isnull": True, f"{prefix}region__isnull": True})
    )


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = ["name", "scope_label", "created_at"]
    inlines = [VersionInline]

    def scope(self, request) -> Q:
        return policies_governing(request)


class RuleInline(ReadOnlyInline):
    model = PolicyRule
    fields = [
        "position",
        "name",
        "effect",
        "kinds",
        "min_amount",
        "max_amount",
        "categories",
        "customer_classes",
        "risk_flags",
        "auto_approve_below",
    ]
    readonly_fields = fields


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = ["__str__", "effective_from", "published_at", "published_by"]
    list_select_related = ["policy", "published_by"]
    inlines = [RuleInline]

    def scope(self, request) -> Q:
        return policies_governing(request, "policy__")


@admin.register(PolicyTier)
class PolicyTierAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = ["rule", "position", "stage", "role", "held_at", "quorum", "sla_hours"]
    list_select_related = ["rule__version__policy"]

    def scope(self, request) -> Q:
        return policies_governing(request, "rule__version__policy__")


class StepInline(ReadOnlyInline):
    model = ApprovalStep
    fields = ["round", "position", "stage", "role", "held_at", "quorum", "state", "due_at"]
    readonly_fields = fields


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["at", "outcome", "actor", "on_behalf_of", "comment", "policy_version"]
    readonly_fields = fields


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyMixin, ScopedAdmin):
    list_display = ["reference", "title", "kind", "site", "state", "amount", "currency", "due_at"]
    list_filter = ["state", "kind", "site"]
    search_fields = ["title", "counterparty"]
    list_select_related = ["site"]
    inlines = [StepInline, DecisionInline]
    actions = ["retry_apply"]

    def scope(self, request) -> Q:
        # Administrators see the requests of the sites they administer, to retry failed updates,
        # and anyone what they may see anyway.
        visible = requests_visible_to(request.user).values("pk")
        return Q(site__in=administered_sites(request)) | Q(pk__in=visible)

    @admin.action(description="Send the failed Odoo update again")
    def retry_apply(self, request, queryset) -> None:
        retried = 0
        for approval in queryset:
            try:
                services.request_retry_apply(actor=request.user, request_id=approval.pk)
                retried += 1
            except (PermissionDenied, ValidationError, ValueError) as error:
                self.message_user(request, f"{approval.reference}: {error}", messages.WARNING)
        self.message_user(request, f"{count(retried, 'request')} queued for Odoo again.")


_DELEGATION_FIELDS = [
    "delegator",
    "delegate",
    "starts_at",
    "ends_at",
    "site",
    "kind",
    "max_amount",
    "note",
]


class DelegationAdminForm(forms.ModelForm):
    """Refuses on the form what delegation_create would refuse, so the admin shows the reason
    (a delegate from another region, a period that ends before it starts, handing someone's
    approvals to oneself) instead of failing."""

    # The person filling the form in; DelegationAdmin.get_form sets it on the form's class.
    actor = None

    class Meta:
        model = Delegation
        fields = _DELEGATION_FIELDS

    def clean(self):
        data = super().clean()
        checked = ("delegator", "delegate", "starts_at", "ends_at")
        if all(data.get(name) for name in checked):
            refusal = services.why_not_hand_over(self.actor, data["delegator"], data["delegate"])
            if refusal:
                raise ValidationError({"delegate": refusal})
            services.delegation_check(
                site=data.get("site"), **{name: data[name] for name in checked}
            )
        return data


@admin.register(Delegation)
class DelegationAdmin(ScopedAdmin):
    form = DelegationAdminForm
    list_display = ["delegator", "delegate", "starts_at", "ends_at", "site", "kind", "revoked_at"]
    list_select_related = ["delegator", "delegate", "site"]
    autocomplete_fields = ["delegator", "delegate"]
    fields = _DELEGATION_FIELDS
    actions = ["revoke_now"]

    def scope(self, request) -> Q:
        # Those at a site the person administers, and those of people whose approvals they
        # may hand on (approvals.policies.may_manage_delegation).
        people = people_administered_by(request.user).values("pk")
        return Q(site__in=administered_sites(request)) | Q(delegator__in=people)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        obj.pk = services.delegation_create(actor=request.user, **data).pk

    @admin.action(description="Revoke the selected delegations now")
    def revoke_now(self, request, queryset) -> None:
        revoked = 0
        for delegation in queryset.filter(revoked_at__isnull=True, ends_at__gt=timezone.now()):
            try:
                services.delegation_revoke(actor=request.user, delegation_id=delegation.pk)
            except PermissionDenied as error:
                self.message_user(request, f"{delegation}: {error}", messages.ERROR)
            else:
                revoked += 1
        self.message_user(request, f"Revoked {count(revoked, 'delegation')}.")


@admin.register(CurrencyRate)
class CurrencyRateAdmin(SuperuserOnlyAdmin):
    list_display = ["currency", "units_per_base", "valid_from"]
    list_filter = ["currency"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        obj.pk = services.currency_rate_add(actor=request.user, **data).pk
