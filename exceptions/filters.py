"""Query-string filters on the exception cases list; they only narrow what the caller sees."""

import django_filters
from django.utils import timezone

from exceptions.models import OPEN_CASE_STATES, CaseKind, CaseState, ExceptionCase, Queue, Severity
from portal.api.filters import BooleanFilter, IdFilter, StrictFilterSet


class ExceptionCaseFilter(StrictFilterSet):
    queue = django_filters.MultipleChoiceFilter(choices=Queue.choices, help_text="Repeatable.")
    site = IdFilter(field_name="site", help_text="Site id.")
    site_code = django_filters.CharFilter(field_name="site__code", help_text="Site code.")
    kind = django_filters.MultipleChoiceFilter(choices=CaseKind.choices, help_text="Repeatable.")
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices, help_text="Repeatable."
    )
    state = django_filters.MultipleChoiceFilter(choices=CaseState.choices, help_text="Repeatable.")
    owner = IdFilter(field_name="owner", help_text="Owner's user id.")
    mine = BooleanFilter(method="filter_mine", help_text="true: cases you own.")
    overdue = BooleanFilter(
        method="filter_overdue", help_text="true: open and past their deadline; false: not."
    )

    class Meta:
        model = ExceptionCase
        fields = []

    def filter_mine(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(owner=user.pk) if value else queryset.exclude(owner=user.pk)

    def filter_overdue(self, queryset, name, value):
        overdue = {"state__in": OPEN_CASE_STATES, "due_at__lt": timezone.now()}
        return queryset.filter(**overdue) if value else queryset.exclude(**overdue)
