"""Administration of exception cases: queue rules, deadlines and resolution codes are edited
here, cases only read.

Rules, deadlines and codes are saved and deleted through exceptions.services, so every change is
checked and audited like any other; cases move only through the services' transitions.
"""

from django.contrib import admin
from django.db.models import Q

from exceptions import policies, services
from exceptions.models import CaseDeadline, ExceptionCase, QueueRule, ResolutionCode
from sites.admin_scope import ScopedAdmin, administered_sites


class ConfigurationAdmin(admin.ModelAdmin):
    """Add, change and delete through the services, which check and audit the change."""

    def has_module_permission(self, request) -> bool:
        return policies.may_configure(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return policies.may_configure(request.user)

    def has_add_permission(self, request) -> bool:
        return policies.may_configure(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return policies.may_configure(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return policies.may_configure(request.user)


@admin.register(QueueRule)
class QueueRuleAdmin(ConfigurationAdmin):
    list_display = ["__str__", "kind", "min_severity", "site", "region", "queue", "note"]
    list_filter = ["queue", "kind"]
    list_select_related = ["site", "region"]
    fields = ["kind", "min_severity", "site", "region", "queue", "note"]

    def save_model(self, request, obj, form, change) -> None:
        services.queue_rule_save(actor=request.user, rule=obj)

    def delete_model(self, request, obj) -> None:
        services.queue_rule_delete(actor=request.user, rule_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for rule_id in queryset.values_list("pk", flat=True):
            services.queue_rule_delete(actor=request.user, rule_id=rule_id)


@admin.register(CaseDeadline)
class CaseDeadlineAdmin(ConfigurationAdmin):
    list_display = [
        "__str__",
        "severity",
        "queue",
        "hours",
        "business_hours",
        "remind_at_percent",
        "escalation_role",
    ]
    fields = [
        "severity",
        "queue",
        "hours",
        "business_hours",
        "remind_at_percent",
        "escalation_role",
    ]

    def save_model(self, request, obj, form, change) -> None:
        services.case_deadline_save(actor=request.user, deadline=obj)

    def delete_model(self, request, obj) -> None:
        services.case_deadline_delete(actor=request.user, deadline_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for deadline_id in queryset.values_list("pk", flat=True):
            services.case_deadline_delete(actor=request.user, deadline_id=deadline_id)


@admin.register(ResolutionCode)
class ResolutionCodeAdmin(ConfigurationAdmin):
    list_display = ["__str__", "kind", "code", "label", "active"]
    list_filter = ["kind", "active"]
    fields = ["kind", "code", "label", "active"]

    def save_model(self, request, obj, form, change) -> None:
        services.resolution_code_save(actor=request.user, code=obj)

    def delete_model(self, request, obj) -> None:
        services.resolution_code_delete(actor=request.user, code_id=obj.pk)

    def delete_queryset(self, request, queryset) -> None:
        for code_id in queryset.values_list("pk", flat=True):
            services.resolution_code_delete(actor=request.user, code_id=code_id)


@admin.register(ExceptionCase)
class ExceptionCaseAdmin(ScopedAdmin):
    list_display = [
        "reference",
        "title",
        "kind",
        "site",
        "queue",
        "severity",
        "state",
        "owner",
        "occurrences",
        "due_at",
        "escalated_at",
    ]
    list_filter = ["state", "queue", "kind", "severity", "site"]
    search_fields = ["title", "dedupe_key"]
    list_select_related = ["site", "owner"]

    def scope(self, request) -> Q:
        # Administrators see the cases of the sites they administer, and anyone what they may see.
        return Q(site__in=administered_sites(request)) | policies.visible_cases(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
