"""The notification outbox for superusers: what is waiting, what failed and why, and a way to
send failed notifications again. Company-wide, so nobody else sees it."""

from django.contrib import admin, messages
from django.utils.translation import ngettext

from approvals.models import ApprovalRequest, ApprovalStep
from exceptions.models import ExceptionCase
from portal.notify import services
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
        # The tiers a page of notifications is about, read in one query rather than one a row.
        changelist = super().get_changelist_instance(request)
        rows = changelist.result_list
        step_ids = [item.object_id for item in rows if item.topic == Topic.STEP]
        steps = ApprovalStep.objects.filter(pk__in=step_ids).select_related("request")
        tiers = {step.pk: _tier(step) for step in steps}
        for item in rows:
            item.tier_label = tiers.get(item.object_id, "(gone)")
        return changelist

    @admin.display(description="About")
    def about(self, item: OutboxMail) -> str:
        if item.topic == Topic.STEP:
            if not hasattr(item, "tier_label"):  # a row shown outside the list
                found = ApprovalStep.objects.select_related("request").filter(pk=item.object_id)
                item.tier_label = _tier(found.first())
            return item.tier_label
        if item.topic == Topic.REQUEST:
            return ApprovalRequest(pk=item.object_id).reference
        return ExceptionCase(pk=item.object_id).reference

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


def _tier(step: ApprovalStep | None) -> str:
    return f"Tier {step.position} of {step.request.reference}" if step else "(gone)"
