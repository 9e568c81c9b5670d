"""What the exceptions API reads and writes: cases, their queues, and the steps of working them.

Money is a decimal string next to its currency; times are ISO 8601 in UTC. Whether a person
may work a case is answered by exceptions.policies and the services, never here: the detail's
`available_actions` is exceptions.policies.available_actions, as the case page shows it.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exceptions import policies
from exceptions.models import CaseKind, CaseState, Queue, Severity
from exceptions.rules import resolution_codes
from portal.core.serializers import ID, MONEY, ActionSerializer, QuerySerializer
from portal.core.textlimits import COMMENT_MAX


class LinkedRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    state = serializers.CharField()


class ExceptionCaseSerializer(serializers.Serializer):
    """One case as lists show it."""

    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="Human reference, e.g. EX-000042.")
    kind = serializers.ChoiceField(choices=CaseKind.choices)
    state = serializers.ChoiceField(choices=CaseState.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    queue = serializers.ChoiceField(choices=Queue.choices)
    site = serializers.CharField(source="site.code", help_text="Site code, e.g. AMS.")
    site_id = serializers.IntegerField()
    owner = serializers.CharField(
        source="owner.username", allow_null=True, help_text="Username; null while unassigned."
    )
    owner_id = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    source = serializers.CharField(help_text="odoo, webhook or manual.")
    amount_at_stake = serializers.DecimalField(**MONEY, allow_null=True)
    currency = serializers.CharField(help_text="ISO 4217 code of `amount_at_stake`; may be empty.")
    occurrences = serializers.IntegerField(help_text="How often the event has been seen.")
    detected_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.SerializerMethodField()
    closed_at = serializers.DateTimeField(allow_null=True)
    resolution_code = serializers.CharField(help_text="Set once resolved.")

    def get_overdue(self, case) -> bool:
        open_case = case.state in ("new", "assigned", "in_progress")
        return bool(open_case and case.due_at and case.due_at < timezone.now())


class ExceptionCaseDetailSerializer(ExceptionCaseSerializer):
    """One case with its evidence, the Odoo record, the approval it may wait for, and what the
    caller may do with it."""

    evidence = serializers.DictField(help_text="What raised the case, as detected.")
    payload = serializers.DictField(help_text="The event as first received, verbatim.")
    odoo_model = serializers.CharField()
    odoo_id = serializers.IntegerField(allow_null=True)
    linked_request = LinkedRequestSerializer(
        allow_null=True, help_text="The approval a resolution waits for, if any."
    )
    pending_resolution = serializers.CharField(help_text="The code waiting for that approval.")
    resolution_note = serializers.CharField()
    resolution_codes = serializers.SerializerMethodField(
        help_text="The codes this kind of case may be resolved with, and what each means."
    )

    available_actions = serializers.SerializerMethodField(
        help_text="assign, start, resolve, dismiss and reopen: allowed, or why not."
    )

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_resolution_codes(self, case):
        return resolution_codes(case.kind)

    @extend_schema_field(serializers.DictField(child=ActionSerializer()))
    def get_available_actions(self, case):
        actions = policies.available_actions(self.context["request"].user, case)
        return {
            name: {"allowed": reason is None, "reason": reason} for name, reason in actions.items()
        }


class AssignSerializer(serializers.Serializer):
    owner_id = serializers.IntegerField(
        **ID,
        required=False,
        allow_null=True,
        help_text="Who works the case; they must work its queue at its site. Omit to take "
        "the case yourself.",
    )


class ResolveSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A resolution code of the case's kind.")
    note = serializers.CharField(max_length=COMMENT_MAX, help_text="What was done.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=COMMENT_MAX, help_text="Why (required).")


class QueueItemSerializer(serializers.Serializer):
    case = ExceptionCaseSerializer()
    score = serializers.FloatField(
        help_text="Priority points: severity, then lateness, then money at stake."
    )
    reason = serializers.CharField(help_text="Why the case ranks where it does, in words.")


class QueueQuerySerializer(QuerySerializer):
    # An empty value means "any", as for every filter.
    queue = serializers.ChoiceField(
        choices=Queue.choices, required=False, allow_blank=True, default=""
    )
    site = serializers.IntegerField(**ID, required=False, allow_null=True, help_text="Site id.")
    kind = serializers.ChoiceField(
        choices=CaseKind.choices, required=False, allow_blank=True, default=""
    )
    severity = serializers.ChoiceField(
        choices=Severity.choices, required=False, allow_blank=True, default=""
    )
    owner = serializers.IntegerField(**ID, required=False, allow_null=True, help_text="Owner's id.")
    overdue = serializers.BooleanField(required=False, default=False)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


class QueueSummarySerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=Queue.choices)
    open = serializers.IntegerField(help_text="Open cases in your scope.")
    overdue = serializers.IntegerField(help_text="Open cases past their deadline.")
    aging = serializers.DictField(
        child=serializers.IntegerField(), help_text="Open cases by time since detection."
    )
