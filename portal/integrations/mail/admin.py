"""Administrators register mailboxes and sender templates; stored mail and triage are read here.

Mailboxes, templates and stored messages are the whole company's: superusers only. A mail in
triage that Tollgate could not place at a site is placed here, after which the people who work
its queues at that site see it. Every change goes through the mail services, and so the ledger.
"""

from django.contrib import admin

from portal.integrations.mail import services
from portal.integrations.mail.models import (
    LabelledExample,
    Mailbox,
    MailMessage,
    SenderTemplate,
    TriageItem,
)
from sites.admin_scope import SuperuserOnlyAdmin


class ReadOnly:
    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Mailbox)
class MailboxAdmin(SuperuserOnlyAdmin):
    list_display = ["name", "purpose", "site", "host", "folder", "active", "last_polled_at"]
    list_filter = ["purpose", "active"]
    readonly_fields = ["uid_validity", "last_uid", "last_polled_at", "last_error"]
    fieldsets = [
        (None, {"fields": ["name", "purpose", "site", "confidence_threshold", "active"]}),
        (
            "Server (leave the host empty for a mailbox fed by hand)",
            {"fields": ["host", "port", "security", "folder", "processed_folder"]},
        ),
        (
            "Credentials, by environment variable name",
            {"fields": ["username_variable", "password_variable"]},
        ),
        ("Last poll", {"fields": ["last_polled_at", "last_error", "uid_validity", "last_uid"]}),
    ]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        services.mailbox_save(actor=request.user, mailbox=obj)


@admin.register(SenderTemplate)
class SenderTemplateAdmin(SuperuserOnlyAdmin):
    list_display = ["name", "purpose", "event_kind", "sender_pattern", "confidence", "active"]
    list_filter = ["purpose", "event_kind", "active"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        services.sender_template_save(actor=request.user, template=obj)


@admin.register(MailMessage)
class MailMessageAdmin(ReadOnly, SuperuserOnlyAdmin):
    list_display = ["reference", "subject", "sender", "mailbox", "status", "received_at", "site"]
    list_filter = ["mailbox", "status"]
    search_fields = ["subject", "sender", "message_id"]
    exclude = ["raw"]


@admin.register(TriageItem)
class TriageItemAdmin(SuperuserOnlyAdmin):
    list_display = ["message", "purpose", "site", "state", "created_at"]
    list_filter = ["state", "purpose"]
    fields = ["message", "purpose", "site", "reason", "state", "decided_by", "decided_at"]

    def get_readonly_fields(self, request, obj=None):
        # Only the site of a mail Tollgate could not place may be given, once.
        placed = obj is not None and obj.site_id is not None
        return [f for f in self.fields if f != "site" or placed]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if obj.site_id is not None:
            services.triage_place(actor=request.user, item_id=obj.pk, site=obj.site)


@admin.register(LabelledExample)
class LabelledExampleAdmin(ReadOnly, SuperuserOnlyAdmin):
    list_display = ["message", "label", "extracted_kind", "kind", "labelled_by", "labelled_at"]
    list_filter = ["label", "kind"]
