"""The ledger in the admin: readable, never writable (the database refuses changes anyway)."""

from django.contrib import admin

from portal.audit.models import AuditCheckpoint, AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["sequence", "at", "action", "actor_label", "object_reference", "site"]
    list_filter = ["action", "site"]
    search_fields = ["object_reference", "actor_label", "comment"]
    list_select_related = ["site"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(AuditEventAdmin):
    list_display = ["sequence", "hash", "at", "sink", "delivered"]
    list_filter = ["delivered"]
    search_fields = ["hash"]
    list_select_related = []

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditCheckpoint._meta.fields]
