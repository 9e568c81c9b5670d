"""Query-string filters on the approval requests list; they only narrow what the caller sees."""

import django_filters
from django.db.models import Exists, OuterRef
from django.utils import timezone

from approvals.authority import authority_for
from approvals.models import ApprovalRequest, ApprovalStep, RequestKind, RequestState
from portal.api.filters import BooleanFilter, IdFilter, InstantFilter, StrictFilterSet


class ApprovalRequestFilter(StrictFilterSet):
    state = django_filters.MultipleChoiceFilter(
        choices=RequestState.choices, help_text="One or more states (repeat the parameter)."
    )
    kind = django_filters.MultipleChoiceFilter(
        choices=RequestKind.choices, help_text="One or more kinds (repeat the parameter)."
    )
    site = IdFilter(field_name="site", help_text="Site id.")
    site_code = django_filters.CharFilter(field_name="site__code", help_text="Site code.")
    region = django_filters.CharFilter(field_name="site__region__code", help_text="Region code.")
    amount_min = django_filters.NumberFilter(
        field_name="amount_base", lookup_expr="gte", help_text="At least, in the base currency."
    )
    amount_max = django_filters.NumberFilter(
        field_name="amount_base", lookup_expr="lte", help_text="At most, in the base currency."
    )
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601, inclusive."
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601, exclusive."
    )
    due_after = InstantFilter(
        field_name="due_at", lookup_expr="gte", help_text="ISO 8601, inclusive."
    )
    due_before = InstantFilter(
        field_name="due_at", lookup_expr="lt", help_text="ISO 8601, exclusive."
    )
    overdue = BooleanFilter(
        method="filter_overdue", help_text="true: past due and still in review; false: not."
    )
    mine = BooleanFilter(
        method="filter_mine", help_text="true: requests you raised; false: others'."
    )
    inbox = BooleanFilter(
        method="filter_inbox", help_text="true: requests with a tier you may decide now."
    )

    class Meta:
        model = ApprovalRequest
        fields = []

    def filter_overdue(self, queryset, name, value):
        overdue = {"state": RequestState.IN_REVIEW, "due_at__lt": timezone.now()}
        return queryset.filter(**overdue) if value else queryset.exclude(**overdue)

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(requester=user.pk) if value else queryset.exclude(requester=user.pk)

    def filter_inbox(self, queryset, name, value):
        steps = ApprovalStep.objects.filter(
            authority_for(self.request).steps(), request=OuterRef("pk")
        )
        return queryset.filter(Exists(steps)) if value else queryset.exclude(Exists(steps))
