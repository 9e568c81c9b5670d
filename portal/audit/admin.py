"""The ledger in the admin: readable, never writable (the database refuses changes anyway).

Staff who are not superusers read the events they may audit anywhere in Tollgate
(portal.audit.selectors.events_visible_to: the sites where they administer or audit, and the
events without a site only when they audit every site, or the whole region the event names). The
checkpoints are the whole chain's: superusers only.
"""

from django.contrib import admin

from portal.audit.models import AuditCheckpoint, AuditEvent
from portal.audit.selectors import events_visible_to
from sites.admin_scope import ScopedAdmin, SuperuserOnlyAdmin, is_superuser


@admin.register(AuditEvent)
class AuditEventAdmin(ScopedAdmin):
    list_display = ["sequence", "at", "action", "actor_label", "object_reference", "site"]
    list_filter = ["action", "site"]
    search_fields = ["object_reference", "actor_label", "comment"]
    list_select_related = ["site"]
    show_full_result_count = False

    def get_queryset(self, request):
        if is_superuser(request):
            return super().get_queryset(request)
        # The ledger's own scoping, as the audit pages and the API apply it.
        return events_visible_to(request.user).order_by(*AuditEvent._meta.ordering)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(SuperuserOnlyAdmin):
    list_display = ["sequence", "hash", "at", "sink", "delivered"]
    list_filter = ["delivered"]
    search_fields = ["hash"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditCheckpoint._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
