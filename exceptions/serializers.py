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
from portal.api.inputs import BodySerializer, serializer_by_kind
from portal.api.schema import read_while_describing
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


class AssignSerializer(BodySerializer):
    owner_id = serializers.IntegerField(
        **ID,
        required=False,
        allow_null=True,
        help_text="Who works the case; they must work its queue at its site. Omit to take "
        "the case yourself.",
    )


class ResolutionCodeField(serializers.CharField):
    """A resolution code of one kind of case, as administered now (exceptions.rules): the
    schema lists each with what it means, read each time the schema is served."""

    def __init__(self, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        code = super().to_internal_value(data)
        codes = resolution_codes(self.kind)
        if code not in codes:
            label = CaseKind(self.kind).label
            raise serializers.ValidationError(f"Use one of {', '.join(codes)} for a {label}.")
        return code

    def openapi_schema(self) -> dict:
        codes = read_while_describing(lambda: resolution_codes(self.kind))
        if codes is None:
            return {"type": "string", "description": "A resolution code of this kind of case."}
        if not codes:  # every code of the kind withdrawn: nothing closes such a case now
            return {"not": {}, "description": "No code closes this kind of case now."}
        return {
            "type": "string",
            "description": "A resolution code of this kind of case.",
            "oneOf": [{"const": code, "description": label} for code, label in codes.items()],
        }


class ResolveSerializer(BodySerializer):
    """How a case of one kind is closed. `kind` names the case's kind, which sets the codes
    it may be closed with; a case of another kind answers 409. `for_kind` makes one per kind."""

    note = serializers.CharField(max_length=COMMENT_MAX, help_text="What was done.")

    @classmethod
    def for_kind(cls, kind: str) -> type["ResolveSerializer"]:
        label = CaseKind(kind).label
        fields = {
            "kind": serializers.ChoiceField(
                choices=[(kind, label)], help_text="The case's kind (its `kind`)."
            ),
            "code": ResolutionCodeField(kind),
        }
        name = "".join(part.capitalize() for part in kind.split("_")) + "Resolve"
        return type(name, (cls,), {"__doc__": f"How a {label.lower()} case is closed.", **fields})


RESOLVE_SERIALIZERS = {kind: ResolveSerializer.for_kind(kind) for kind in CaseKind.values}


class UnknownCaseKindSerializer(BodySerializer):
    """What answers a resolution whose `kind` names no kind of case."""

    kind = serializers.ChoiceField(choices=CaseKind.choices)


def resolve_serializer_for(data) -> type[serializers.Serializer]:
    """The serializer of the kind of case a resolution's body names."""
    return serializer_by_kind(data, RESOLVE_SERIALIZERS, UnknownCaseKindSerializer)


class ReasonSerializer(BodySerializer):
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
