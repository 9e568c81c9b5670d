"""The notification outbox for superusers: what is waiting, what failed and why, and a way to
send failed notifications again. Company-wide, so nobody else sees it."""

from collections import defaultdict

from django.contrib import admin, messages
from django.utils.translation import ngettext

from portal.notify import services
from portal.notify.labels import GONE, labels
from portal.notify.models import MailState, OutboxMail, Topic
from sites.admin_scope import SuperuserOnlyAdmin, is_superuser

# What each notification told its readers, as its e-mail's subject says it.
REASONS = {
    (Topic.STEP, "activated"): "Decision needed",
    (Topic.STEP, "reminder"): "Reminder",
    (Topic.STEP, "escalated"): "Escalated",
    (Topic.CASE, "reminder"): "Case due soon",
    (Topic.CASE, "escalated"): "Case overdue",
}


@admin.register(OutboxMail)
class OutboxMailAdmin(SuperuserOnlyAdmin):
    list_display = (
        "id",
        "about",
        "why",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "sent_at",
        "mails_sent",
    )
    list_filter = ("state", "topic")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in OutboxMail._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changelist_instance(self, request):
        # What a page of notifications is about, read in one query a topic rather than one a row.
        changelist = super().get_changelist_instance(request)
        by_topic = defaultdict(list)
        for item in changelist.result_list:
            by_topic[item.topic].append(item)
        for topic, items in by_topic.items():
            named = labels(topic, [item.object_id for item in items])
            for item in items:
                item.about_label = named.get(item.object_id, GONE)
        return changelist

    @admin.display(description="About")
    def about(self, item: OutboxMail) -> str:
        if not hasattr(item, "about_label"):  # a row shown outside the list
            item.about_label = labels(item.topic, [item.object_id]).get(item.object_id, GONE)
        return item.about_label

    @admin.display(description="Why")
    def why(self, item: OutboxMail) -> str:
        if item.topic == Topic.REQUEST:
            return "Decided"
        return REASONS.get((item.topic, item.reason), item.reason or "—")

    @admin.action(description="Send the selected failed notifications again")
    def send_again(self, request, queryset):
        # Actions are offered to those who may change; this one only to superusers, checked here.
        if not is_superuser(request):
            return
        count = services.outbox_retry(
            item_ids=queryset.filter(state=MailState.FAILED).values_list("pk", flat=True)
        )
        what = ngettext("notification", "notifications", count)
        self.message_user(request, f"{count} {what} will be sent again.", messages.INFO)
