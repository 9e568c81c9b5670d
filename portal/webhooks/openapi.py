"""The outbound events as OpenAPI webhooks: one per event type, with its body and an example.

These serializers only describe what `portal.webhooks.events` (and the exception services) put
in an event; nothing validates with them. Read by drf-spectacular when it builds the schema.
"""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    OpenApiWebhook,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers

from portal.webhooks.models import EventType

SIGNING = """
Signed per Standard Webhooks (https://www.standardwebhooks.com):

- `webhook-id`: the event's id (`msg_…`), the same on every attempt; deduplicate on it.
- `webhook-timestamp`: Unix seconds of this attempt; reject it when more than 5 minutes away.
- `webhook-signature`: `v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}`,
  keyed with the base64-decoded part of the subscription's secret after `whsec_`. During a
  rotation the newest secret signs.

Answer 2xx within 10 seconds to acknowledge. Any other answer, or none, is retried with
exponential backoff and jitter for about a day; 410 Gone disables the subscription at once, and
15 consecutive failures disable it too (both configurable by the operator).
"""


class Odoo(serializers.Serializer):
    model = serializers.CharField(allow_null=True, help_text="e.g. purchase.order")
    id = serializers.IntegerField(allow_null=True)


class ApprovalData(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="e.g. AR-000042")
    kind = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    site = serializers.CharField(help_text="Site code")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    currency = serializers.CharField(help_text="ISO 4217")
    policy_version = serializers.CharField(allow_null=True)
    odoo = Odoo()
    requester = serializers.CharField(help_text="Username")
    round = serializers.IntegerField(help_text="Routing round; a return to review starts the next")


class ApprovalRequestedData(ApprovalData):
    due_at = serializers.DateTimeField(allow_null=True, help_text="When the first tier is due")


class Decider(serializers.Serializer):
    username = serializers.CharField(allow_null=True, help_text="null for the fast path")
    on_behalf_of = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(choices=["approve", "reject", "auto_approve"])
    tier = serializers.IntegerField(allow_null=True)
    at = serializers.DateTimeField()


class ApprovalDecidedData(ApprovalData):
    outcome = serializers.ChoiceField(choices=["approved", "rejected", "expired"])
    fast_path = serializers.BooleanField()
    decided_at = serializers.DateTimeField()
    deciders = Decider(many=True)


class ApprovalAppliedData(ApprovalData):
    applied_at = serializers.DateTimeField()


class ApprovalApplyFailedData(ApprovalData):
    error = serializers.CharField(help_text="Odoo's message, at most 500 characters")


class ApprovalSlaBreachData(ApprovalData):
    tier = serializers.IntegerField()
    role = serializers.CharField()
    sla_hours = serializers.DecimalField(max_digits=8, decimal_places=2)
    due_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=["escalate", "expire", "reject"])


class CaseData(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    kind = serializers.CharField()
    site = serializers.CharField(help_text="Site code")
    severity = serializers.CharField()
    queue = serializers.CharField()
    state = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    currency = serializers.CharField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)


class CaseResolvedData(CaseData):
    outcome = serializers.CharField(help_text="resolved or dismissed")
    resolution_code = serializers.CharField(allow_null=True)


def _body(name: str, data) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "type": serializers.CharField(),
            "timestamp": serializers.DateTimeField(help_text="When the event happened (UTC)"),
            "data": data,
            "__module__": __name__,
        },
    )


_ROUTED = {
    "id": 42,
    "reference": "AR-000042",
    "kind": "purchase",
    "title": "Spring stock of sparkling water",
    "site": "AMS",
    "amount": "6400.00",
    "currency": "EUR",
    "policy_version": "Enterprise framework v3",
    "odoo": {"model": "purchase.order", "id": 1187},
    "requester": "requester",
    "round": 1,
}
_CASE = {
    "id": 7,
    "reference": "EX-000007",
    "kind": "shipment_delay",
    "site": "AMS",
    "severity": "medium",
    "queue": "warehouse",
    "state": "new",
    "amount": None,
    "currency": None,
    "due_at": "2026-05-05T09:30:00+00:00",
}
_AT = "2026-05-04T09:30:00+00:00"

EXAMPLES = {
    EventType.APPROVAL_REQUESTED: _ROUTED | {"state": "in_review", "due_at": _AT},
    EventType.APPROVAL_DECIDED: _ROUTED
    | {
        "state": "approved",
        "outcome": "approved",
        "fast_path": False,
        "decided_at": _AT,
        "deciders": [
            {
                "username": "site.manager",
                "on_behalf_of": None,
                "outcome": "approve",
                "tier": 1,
                "at": "2026-05-04T08:10:00+00:00",
            },
            {
                "username": "regional.manager",
                "on_behalf_of": None,
                "outcome": "approve",
                "tier": 2,
                "at": _AT,
            },
        ],
    },
    EventType.APPROVAL_APPLIED: _ROUTED | {"state": "applied", "applied_at": _AT},
    EventType.APPROVAL_APPLY_FAILED: _ROUTED
    | {"state": "apply_failed", "error": "The purchase order is locked."},
    EventType.EXCEPTION_OPENED: _CASE,
    EventType.EXCEPTION_RESOLVED: _CASE
    | {"state": "resolved", "outcome": "resolved", "resolution_code": "carrier_rebooked"},
    EventType.SLA_BREACHED: _ROUTED
    | {
        "state": "in_review",
        "tier": 1,
        "role": "site_manager",
        "sla_hours": "24.00",
        "due_at": _AT,
        "action": "escalate",
    },
}

_SLA_DATA = PolymorphicProxySerializer(
    component_name="SlaBreachData",
    serializers=[ApprovalSlaBreachData, CaseData],
    resource_type_field_name=None,
)

DATA = {
    EventType.APPROVAL_REQUESTED: ApprovalRequestedData(),
    EventType.APPROVAL_DECIDED: ApprovalDecidedData(),
    EventType.APPROVAL_APPLIED: ApprovalAppliedData(),
    EventType.APPROVAL_APPLY_FAILED: ApprovalApplyFailedData(),
    EventType.EXCEPTION_OPENED: CaseData(),
    EventType.EXCEPTION_RESOLVED: CaseResolvedData(),
    EventType.SLA_BREACHED: _SLA_DATA,
}

WHEN = {
    EventType.APPROVAL_REQUESTED: "A request's tiers open for decision: on submission, or when "
    "a change in Odoo sends it back to review. Not sent for fast-path approvals, which are "
    "decided at once (approval.decided with fast_path true).",
    EventType.APPROVAL_DECIDED: "A request is finally approved, rejected or expired, with "
    "everyone who decided in the deciding round.",
    EventType.APPROVAL_APPLIED: "Odoo now reflects an approval.",
    EventType.APPROVAL_APPLY_FAILED: "Odoo refused an approval for good; an administrator can "
    "retry it.",
    EventType.EXCEPTION_OPENED: "An exception case is raised.",
    EventType.EXCEPTION_RESOLVED: "An exception case is resolved or dismissed.",
    EventType.SLA_BREACHED: "An approval tier or an exception case passed its deadline; "
    "`data` describes the request (with the tier) or the case.",
}


def _webhook(event_type: EventType) -> OpenApiWebhook:
    return OpenApiWebhook(name=event_type.value, decorator=_receiver_view(event_type))


def _receiver_view(event_type: EventType):
    """Describe the receiver's end; its answers are the receiver's, not Tollgate's problems."""
    describe = _describe(event_type)

    def decorate(view):
        view.problem_responses = False
        return describe(view)

    return decorate


def _describe(event_type: EventType):
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_"))
    return extend_schema(
        summary=event_type.label,
        description=WHEN[event_type] + "\n" + SIGNING,
        request=_body(f"{name}Event", DATA[event_type]),
        responses={
            "2XX": OpenApiResponse(description="Received; not sent again."),
            410: OpenApiResponse(description="Gone: the subscription is disabled at once."),
        },
        examples=[
            OpenApiExample(
                event_type.label,
                value={
                    "type": event_type.value,
                    "timestamp": _AT,
                    "data": EXAMPLES[event_type],
                },
            )
        ],
    )


OUTBOUND_WEBHOOKS = [_webhook(event_type) for event_type in EventType]
