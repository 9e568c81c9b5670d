"""Administration of regions, sites and memberships, writing through sites.services.

Memberships are never deleted, only ended, so that who held which role when stays answerable.
Staff who are not superusers see only the sites they administer, and the regions and people of
those (sites.admin_scope); a site's Odoo company and warehouse, and adding a site, are for
superusers.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

import sites.admin_accounts  # noqa: F401 - people and groups, administered beside their roles
from portal.core.formatting import count, working_hours
from sites import services
from sites.admin_scope import ScopedAdmin, administered_regions, administered_sites, is_superuser
from sites.models import Membership, MembershipChange, Region, Site
from sites.policies import may_administer_region
from sites.selectors import memberships_administered_by

SITE_EDITABLE = [
    "name",
    "region",
    "time_zone",
    "currency",
    "odoo_company_id",
    "odoo_warehouse_id",
    "active",
    "opens_at",
    "closes_at",
    "business_days",
]


# A site's place in Odoo: the company's, so a superuser's to set (sites.services refuses it too).
ODOO_FIELDS = ["odoo_company_id", "odoo_warehouse_id"]


@admin.register(Region)
class RegionAdmin(ScopedAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]

    def scope(self, request):
        return Q(pk__in=administered_regions(request).values("pk"))

    def has_add_permission(self, request) -> bool:
        return is_superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_administer_region(request.user, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            services.region_rename(actor=request.user, region=obj, name=obj.name)
        else:
            obj.pk = services.region_create(actor=request.user, code=obj.code, name=obj.name).pk

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj else []


WEEKDAYS = [
    ("1", "Monday"),
    ("2", "Tuesday"),
    ("3", "Wednesday"),
    ("4", "Thursday"),
    ("5", "Friday"),
    ("6", "Saturday"),
    ("7", "Sunday"),
]


class SiteForm(forms.ModelForm):
    """The site's working days as ticked weekdays; the model keeps them as ISO digits."""

    business_days = forms.MultipleChoiceField(
        choices=WEEKDAYS,
        widget=forms.CheckboxSelectMultiple,
        label="Working days",
        help_text="SLAs in business hours count only these days, between the opening times.",
    )

    class Meta:
        model = Site
        fields = ["code", *SITE_EDITABLE]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.initial.get("business_days")
        if isinstance(current, str):
            self.initial["business_days"] = list(current)

    def clean_business_days(self) -> str:
        return "".join(sorted(self.cleaned_data["business_days"]))


@admin.register(Site)
class SiteAdmin(ScopedAdmin):
    form = SiteForm
    list_display = ["code", "name", "region", "time_zone", "business_hours", "currency", "active"]
    list_filter = ["region", "active"]
    search_fields = ["code", "name"]

    def scope(self, request):
        return Q(pk__in=administered_sites(request).values("pk"))

    def has_add_permission(self, request) -> bool:
        # A new site names its Odoo company: the company's structure, like a region.
        return is_superuser(request) and super().has_add_permission(request)

    @admin.display(description="Business hours")
    def business_hours(self, site: Site) -> str:
        return working_hours(site.business_days, site.opens_at, site.closes_at)

    def get_readonly_fields(self, request, obj=None):
        # The code is the Odoo warehouse code; a different code is a different site.
        fixed = ["code"] if obj else []
        return fixed if is_superuser(request) else [*fixed, *ODOO_FIELDS]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        values = {
            field: form.cleaned_data[field] for field in SITE_EDITABLE if field in form.cleaned_data
        }
        if change:
            services.site_update(actor=request.user, site=obj, **values)
        else:
            obj.pk = services.site_create(
                actor=request.user, code=form.cleaned_data["code"], **values
            ).pk


class MembershipChangeInline(admin.TabularInline):
    model = MembershipChange
    fields = ["at", "action", "actor", "before", "after"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class MembershipForm(forms.ModelForm):
    """Says on the form what membership_grant would refuse: a deciding role granted to oneself."""

    # The person filling the form in; MembershipAdmin.get_form sets it on the form's class.
    actor = None

    def clean(self):
        data = super().clean()
        if self.instance.pk is None and data.get("user") and data.get("role"):
            candidate = Membership(user=data["user"], role=data["role"])
            refusal = services.why_not_self_granted(self.actor, candidate)
            if refusal:
                raise ValidationError({"user": refusal})
        return data


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    form = MembershipForm

    list_display = ["user", "role", "scope_label", "valid_from", "valid_to", "granted_by"]
    list_filter = ["role", "region", "site"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "site", "region", "granted_by"]
    autocomplete_fields = ["user"]
    inlines = [MembershipChangeInline]
    actions = ["end_now"]

    def scope(self, request):
        return Q(pk__in=memberships_administered_by(request.user).values("pk"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user
        return form

    def get_readonly_fields(self, request, obj=None):
        # Who holds what where is fixed once granted; a different grant is a new membership.
        if obj is None:
            return ["granted_by"]
        return ["user", "role", "site", "region", "granted_by", "granted_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if change:
            services.membership_update(
                actor=request.user,
                membership=obj,
                valid_from=data["valid_from"],
                valid_to=data["valid_to"],
                note=data["note"],
            )
        else:
            obj.pk = services.membership_grant(
                actor=request.user,
                user=data["user"],
                role=data["role"],
                site=data["site"],
                region=data["region"],
                valid_from=data["valid_from"],
                valid_to=data["valid_to"],
                note=data["note"],
            ).pk

    @admin.action(description="End the selected memberships now")
    def end_now(self, request, queryset) -> None:
        now = timezone.now()
        ended = already = 0
        for membership in queryset:
            try:
                if services.membership_end(actor=request.user, membership=membership, at=now):
                    ended += 1
                else:
                    already += 1
            except (PermissionDenied, ValidationError) as error:
                self.message_user(request, f"{membership}: {error}", messages.ERROR)
        self.message_user(
            request,
            f"Ended {count(ended, 'membership')}; {already} had already ended.",
            messages.SUCCESS,
        )
