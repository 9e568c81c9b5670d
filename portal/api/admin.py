"""Administrators see API tokens (never a secret, which is not stored) and can revoke them.

A token acts with its owner's whole reach and only its owner or a superuser may revoke it
(portal.api.policies.can_revoke_token): staff who are not superusers see their own tokens alone.
"""

from django.contrib import admin, messages

from portal.api import policies, services
from portal.api.models import ApiToken
from portal.core.admin_mixins import AbsentIsNotFound
from portal.core.formatting import count


@admin.register(ApiToken)
class ApiTokenAdmin(AbsentIsNotFound, admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "created_at", "expires_at", "last_used_at"]
    list_filter = ["read_only", "revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "read_only",
        "actions",
        "created_with",
    ]
    exclude = ["digest"]
    actions = ["revoke"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if policies.sees_every_token(request.user):
            return rows
        return rows.filter(user=request.user.pk)

    def has_add_permission(self, request) -> bool:
        # A token is created by its owner (API or create_api_token), who sees its secret once.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.token_revoke(actor=request.user, token_id=token.pk)
        messages.success(request, f"{count(queryset.count(), 'token')} revoked.")
