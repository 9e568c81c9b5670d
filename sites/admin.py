"""Administration of regions, sites and memberships, writing through sites.services.

Memberships are never deleted, only ended, so that who held which role when stays answerable.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from sites import services
from sites.models import Membership, MembershipChange, Region, Site


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "region", "time_zone", "currency", "active"]
    list_filter = ["region", "active"]
    search_fields = ["code", "name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        values = {field: form.cleaned_data[field] for field in services.SITE_FIELDS}
        if change:
            services.site_update(site=obj, **values)
        else:
            obj.pk = services.site_create(**values).pk


class MembershipChangeInline(admin.TabularInline):
    model = MembershipChange
    fields = ["at", "action", "actor", "before", "after"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "scope_label", "valid_from", "valid_to", "granted_by"]
    list_filter = ["role", "region", "site"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "site", "region", "granted_by"]
    autocomplete_fields = ["user"]
    inlines = [MembershipChangeInline]
    actions = ["end_now"]

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
            services.membership_set_period(
                actor=request.user,
                membership=obj,
                valid_from=data["valid_from"],
                valid_to=data["valid_to"],
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
        ended = 0
        for membership in queryset:
            try:
                services.membership_end(actor=request.user, membership=membership, at=now)
            except ValidationError as error:
                self.message_user(request, f"{membership}: {error.messages[0]}", messages.ERROR)
            else:
                ended += 1
        self.message_user(request, f"Ended {ended} membership(s).", messages.SUCCESS)
