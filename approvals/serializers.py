"""What the approvals API reads and writes: requests, their tiers and decisions, delegations and
the policy matrix.

Output serializers only read; input serializers only check shape and types. Whether a person
may do something is answered by approvals.policies and the services, never here. Money is a
decimal string next to its currency; times are ISO 8601 in UTC.
"""

import math
import re
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals import policies, routing
from approvals.authority import authority_for, votes_of
from approvals.kinds import KINDS, KindSpec
from approvals.models import ApprovalPolicy, RequestKind
from portal.api.inputs import BodySerializer, holds_nul, serializer_by_kind
from portal.api.schema import JSON_VALUE_REF, NO_NUL, read_while_describing
from portal.core.serializers import ID, MONEY, ActionSerializer, QuerySerializer
from portal.core.textlimits import COMMENT_MAX, JUSTIFICATION_MAX


class RiskFlagSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The signal, e.g. `amount_outlier`.")
    explanation = serializers.CharField(help_text="Why the request was flagged, in words.")
    numbers = serializers.DictField(
        help_text="The figures behind the flag (amounts as decimal strings), to check by hand."
    )


class StepSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Pass as `step_id` to decide this tier.")
    round = serializers.IntegerField(help_text="Routing round; a return to review starts one.")
    position = serializers.IntegerField(help_text="Order of the tier in the chain, from 1.")
    stage = serializers.IntegerField(help_text="Tiers of one stage run in parallel.")
    state = serializers.CharField(
        help_text="waiting, active, approved, rejected, expired or closed."
    )
    role = serializers.CharField(help_text="The role that decides this tier.")
    escalated_role = serializers.CharField(help_text="The role added when the SLA escalated.")
    held_at = serializers.CharField(help_text="`site` or `region`: where the role must be held.")
    quorum = serializers.IntegerField(help_text="How many approvals the tier needs.")
    comment_required = serializers.BooleanField(help_text="Approving needs a comment.")
    sla_hours = serializers.DecimalField(max_digits=6, decimal_places=2, coerce_to_string=True)
    business_hours = serializers.BooleanField(help_text="The SLA counts business hours only.")
    activated_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    step_id = serializers.IntegerField(allow_null=True, help_text="Null for a fast-path approval.")
    outcome = serializers.CharField(help_text="approve, reject or auto_approve.")
    actor = serializers.CharField(
        source="actor.username", allow_null=True, help_text="Null when Tollgate decided."
    )
    on_behalf_of = serializers.CharField(
        source="on_behalf_of.username",
        allow_null=True,
        help_text="Whom the actor stood in for, through a delegation.",
    )
    round = serializers.IntegerField()
    policy_version = serializers.CharField(help_text="The policy version the decision was under.")
    comment = serializers.CharField(help_text="The approver's comment or the rejection reason.")
    at = serializers.DateTimeField()


class ApprovalRequestSerializer(serializers.Serializer):
    """One request as lists show it."""

    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="Human reference, e.g. AR-000042 or AR-000042-r2.")
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    state = serializers.CharField(
        help_text="draft, submitted, in_review, approved, rejected, withdrawn, expired, applied "
        "or apply_failed."
    )
    site = serializers.CharField(source="site.code", help_text="Site code, e.g. AMS.")
    site_id = serializers.IntegerField()
    requester = serializers.CharField(source="requester.username")
    title = serializers.CharField()
    amount = serializers.DecimalField(**MONEY, help_text="In `currency`.")
    currency = serializers.CharField(help_text="ISO 4217 code of `amount`.")
    amount_base = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="In `base_currency`, set on submission."
    )
    base_currency = serializers.SerializerMethodField(help_text="Tollgate's base currency.")
    risk_flags = serializers.SerializerMethodField(help_text="Codes of the risk flags raised.")
    revision = serializers.IntegerField(help_text="1 for a first request; more when resubmitted.")
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(
        allow_null=True, help_text="When the earliest open tier is due."
    )
    overdue = serializers.SerializerMethodField()
    decided_at = serializers.DateTimeField(allow_null=True)

    def get_base_currency(self, request) -> str:
        return settings.TOLLGATE_BASE_CURRENCY

    def get_risk_flags(self, request) -> list[str]:
        return [flag["code"] for flag in request.risk_flags]

    def get_overdue(self, request) -> bool:
        return bool(request.due_at and request.due_at < timezone.now())


class ApprovalRequestDetailSerializer(ApprovalRequestSerializer):
    """One request with everything its page shows, and what the caller may do with it."""

    reason = serializers.CharField()
    category = serializers.CharField()
    customer_class = serializers.CharField()
    counterparty = serializers.CharField()
    counterparty_ref = serializers.CharField()
    details = serializers.DictField(help_text="Kind-specific fields, e.g. `destination_site`.")
    odoo_model = serializers.CharField(help_text="The Odoo model it came from, if any.")
    odoo_id = serializers.IntegerField(allow_null=True)
    revision_of = serializers.IntegerField(source="revision_of_id", allow_null=True)
    policy_version = serializers.CharField(
        allow_null=True, help_text="The policy version it was routed with."
    )
    rule = serializers.CharField(source="rule.name", allow_null=True)
    fast_path = serializers.BooleanField(help_text="Approved by policy without a person.")
    risk_flag_details = RiskFlagSerializer(
        source="risk_flags", many=True, help_text="Each risk flag with its explanation."
    )
    steps = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    available_actions = serializers.SerializerMethodField(
        help_text="approve, reject, withdraw, resubmit and delegate: allowed, or why not."
    )
    decidable_step_ids = serializers.SerializerMethodField(
        help_text="The tiers you may decide now (pass one as `step_id`)."
    )
    apply_error = serializers.CharField(help_text="Why the Odoo update failed, if it did.")
    applied_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, request):
        return StepSerializer(self._read(request)[0], many=True).data

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, request):
        return DecisionSerializer(self._read(request)[1], many=True).data

    @extend_schema_field(serializers.DictField(child=ActionSerializer()))
    def get_available_actions(self, request):
        user = self.context["request"].user
        actions = policies.available_actions(user, request, options=self._options(request))
        return {
            name: {"allowed": reason is None, "reason": reason} for name, reason in actions.items()
        }

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_decidable_step_ids(self, request):
        return [option.step.pk for option in self._options(request)]

    def _read(self, request):
        """The request's tiers and decisions, read once: they serve the steps, the decisions
        and the caller's options (two queries)."""
        cache = self.context.setdefault("_read", {})
        if request.pk not in cache:
            steps = list(request.steps.order_by("round", "position"))
            decisions = list(
                request.decisions.select_related("actor", "on_behalf_of", "policy_version__policy")
            )
            cache[request.pk] = (steps, decisions)
        return cache[request.pk]

    def _options(self, request):
        cache = self.context.setdefault("_options", {})
        if request.pk not in cache:
            steps, decisions = self._read(request)
            cache[request.pk] = authority_for(self.context["request"]).options_among(
                request, steps, votes_of(decisions)
            )
        return cache[request.pk]


class CurrencyField(serializers.CharField):
    """A currency Tollgate converts into its base currency now (routing.to_base): a request in
    another could not be routed. The schema's list is read each time the schema is served."""

    def __init__(self, **kwargs):
        super().__init__(max_length=3, **kwargs)

    def to_internal_value(self, data):
        code = super().to_internal_value(data)
        known = routing.convertible_currencies()
        if code not in known:
            raise serializers.ValidationError(
                f"Tollgate has no exchange rate for {code}; use one of {', '.join(sorted(known))}."
            )
        return code

    def openapi_schema(self) -> dict:
        schema = {
            "type": "string",
            "description": "ISO 4217 code of a currency Tollgate has an exchange rate for; "
            "defaults to the site's currency.",
        }
        known = read_while_describing(routing.convertible_currencies)
        return schema | (
            {"enum": sorted(known)} if known is not None else {"pattern": "^[A-Z]{3}$"}
        )


# A decimal given as text in `details`: what Decimal reads, without exponent or spaces.
DECIMAL_TEXT = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"


class KindDetailsField(serializers.DictField):
    """The kind-specific fields of a request (approvals.kinds): each one the kind needs, of its
    type. Other keys are kept as given; no text anywhere in it may hold the NUL character,
    which PostgreSQL cannot store in JSON (it was a 500)."""

    def __init__(self, spec: KindSpec, **kwargs):
        self.spec = spec
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        details = super().to_internal_value(data)
        if holds_nul(details):
            raise serializers.ValidationError("Text in details may not contain the NUL character.")
        return details

    def errors_in(self, details: dict) -> dict[str, list[str]]:
        """Messages per `details.<name>` for what the kind needs and did not get as it should."""
        errors = {}
        for name, expected in self.spec.details.items():
            value, label = details.get(name), name.replace("_", " ").capitalize()
            if value in (None, ""):
                errors[f"details.{name}"] = [f"{label} is required."]
            elif expected is Decimal and not _is_decimal(value):
                errors[f"details.{name}"] = [f"{label} is a number, or a decimal as text."]
            elif expected is str and not isinstance(value, str):
                errors[f"details.{name}"] = [f"{label} is text."]
        since = details.get("counterparty_since")
        if since not in (None, "") and not (
            isinstance(since, str) and re.fullmatch(ISO_DAY, since) and _is_day(since)
        ):
            errors["details.counterparty_since"] = ["Give the date as YYYY-MM-DD."]
        return errors

    def openapi_schema(self) -> dict:
        properties = {}
        for name, expected in self.spec.details.items():
            if expected is Decimal:
                properties[name] = {"type": ["number", "string"], "pattern": DECIMAL_TEXT}
            else:
                properties[name] = {"type": "string", "minLength": 1, "pattern": NO_NUL}
        properties["counterparty_since"] = {
            "type": ["string", "null"],
            "description": "Since when Tollgate's company deals with the counterparty.",
            "anyOf": [{"format": "date"}, {"maxLength": 0}, {"type": "null"}],
        }
        return {
            "type": "object",
            "description": "Kind-specific fields"
            + (
                f": {', '.join(f'`{name}`' for name in self.spec.details)}"
                if self.spec.details
                else ""
            )
            + ". Other keys are kept as given (no text may hold the NUL character).",
            "properties": properties,
            "required": list(self.spec.details),
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": JSON_VALUE_REF},
        }


ISO_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


def _is_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_decimal(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and re.fullmatch(DECIMAL_TEXT, value) is not None


class RequestCreateSerializer(BodySerializer):
    """A new request of one kind: raised by the caller at one of their sites and, by default,
    submitted. `for_kind` makes the serializer of each kind, with what that kind needs."""

    spec: KindSpec = KindSpec()

    site_id = serializers.IntegerField(**ID, help_text="A site where you may raise requests.")
    title = serializers.CharField(max_length=200)
    reason = serializers.CharField(max_length=JUSTIFICATION_MAX, help_text="Why this is needed.")
    amount = serializers.DecimalField(max_digits=16, decimal_places=2, min_value=0)
    currency = CurrencyField(required=False)
    counterparty_ref = serializers.CharField(max_length=64, required=False, default="")
    submit = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Submit for routing at once (default) or keep a draft.",
    )

    def to_internal_value(self, data):
        """The fields' errors and those of the details together, so that one answer names
        everything the kind needs and did not get."""
        try:
            attrs, errors = super().to_internal_value(data), {}
        except serializers.ValidationError as error:
            attrs, errors = None, dict(error.detail)
        details = data.get("details", {}) if isinstance(data, dict) else None
        if isinstance(details, dict) and "details" not in errors:
            errors.update(self.fields["details"].errors_in(details))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @classmethod
    def for_kind(cls, kind: str) -> type["RequestCreateSerializer"]:
        spec = KINDS[kind]
        label = RequestKind(kind).label
        fields = {
            "kind": serializers.ChoiceField(choices=[(kind, label)]),
            "category": serializers.CharField(
                max_length=100,
                **({} if spec.needs_category else {"required": False, "default": ""}),
                help_text="The product category (required for this kind).",
            ),
            "customer_class": serializers.CharField(
                max_length=32,
                **({} if spec.needs_customer_class else {"required": False, "default": ""}),
            ),
            "counterparty": serializers.CharField(
                max_length=200,
                **({} if spec.counterparty else {"required": False, "default": ""}),
                help_text=f"The {spec.counterparty or 'vendor, customer or carrier'}.",
            ),
            "details": KindDetailsField(
                spec, **({} if spec.details else {"required": False, "default": dict})
            ),
        }
        name = "".join(part.capitalize() for part in kind.split("_")) + "RequestCreate"
        return type(name, (cls,), {"spec": spec, "__doc__": f"A new {label.lower()}.", **fields})


CREATE_SERIALIZERS = {str(kind): RequestCreateSerializer.for_kind(str(kind)) for kind in KINDS}


class UnknownKindSerializer(BodySerializer):
    """What answers a body whose `kind` names no kind: the refusal says which kinds there are."""

    kind = serializers.ChoiceField(choices=RequestKind.choices)


def create_serializer_for(data) -> type[serializers.Serializer]:
    """The serializer of the kind a new request's body names."""
    return serializer_by_kind(data, CREATE_SERIALIZERS, UnknownKindSerializer)


class ApproveSerializer(BodySerializer):
    step_id = serializers.IntegerField(
        **ID, required=False, allow_null=True, help_text="The tier to approve; default: your first."
    )
    comment = serializers.CharField(
        max_length=COMMENT_MAX,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required by some tiers.",
    )


class RejectSerializer(BodySerializer):
    step_id = serializers.IntegerField(
        **ID,
        required=False,
        allow_null=True,
        help_text="The tier to reject at; default: your first.",
    )
    reason = serializers.CharField(
        max_length=COMMENT_MAX, help_text="Why the request is rejected (required)."
    )


class WithdrawSerializer(BodySerializer):
    reason = serializers.CharField(
        max_length=COMMENT_MAX, required=False, allow_blank=True, default=""
    )


class DelegateSerializer(BodySerializer):
    delegate = serializers.CharField(
        help_text="Username of a colleague who holds a role at the request's site."
    )
    ends_at = serializers.DateTimeField(help_text="When the delegation ends (in the future).")
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class DelegationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delegator = serializers.CharField(source="delegator.username")
    delegate = serializers.CharField(source="delegate.username")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    site = serializers.CharField(source="site.code", allow_null=True)
    kind = serializers.CharField(help_text="Empty: every kind.")
    max_amount = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="In the base currency; null: any amount."
    )
    base_currency = serializers.SerializerMethodField()
    note = serializers.CharField()

    def get_base_currency(self, delegation) -> str:
        return settings.TOLLGATE_BASE_CURRENCY


class InboxRequestSerializer(ApprovalRequestSerializer):
    """One request as the inbox lists it: ApprovalRequestSerializer's fields and values, read
    straight off the request. DRF's general path (a lookup and a call per field and row) cost
    about half as much again as the inbox's own queries on a page of fifty."""

    def to_representation(self, request):
        fields = self.fields
        money = fields["amount"].to_representation
        moment = fields["created_at"].to_representation
        return {
            "id": request.pk,
            "reference": request.reference,
            "kind": fields["kind"].to_representation(request.kind),
            "state": str(request.state),
            "site": request.site.code,
            "site_id": request.site_id,
            "requester": request.requester.username,
            "title": request.title,
            "amount": money(request.amount),
            "currency": request.currency,
            "amount_base": None if request.amount_base is None else money(request.amount_base),
            "base_currency": self.get_base_currency(request),
            "risk_flags": self.get_risk_flags(request),
            "revision": request.revision,
            "created_at": moment(request.created_at),
            "submitted_at": _or_none(moment, request.submitted_at),
            "due_at": _or_none(moment, request.due_at),
            "overdue": self.get_overdue(request),
            "decided_at": _or_none(moment, request.decided_at),
        }


def _or_none(represent, value):
    return None if value is None else represent(value)


class InboxPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    # Documented as the request list's rows, which InboxRequestSerializer's are.
    results = ApprovalRequestSerializer(many=True)


class InboxQuerySerializer(QuerySerializer):
    site = serializers.IntegerField(**ID, required=False, help_text="Site id.")
    kind = serializers.ChoiceField(
        choices=RequestKind.choices, required=False, allow_blank=True, help_text="Empty: any."
    )
    amount_min = serializers.DecimalField(max_digits=16, decimal_places=2, required=False)
    amount_max = serializers.DecimalField(max_digits=16, decimal_places=2, required=False)
    overdue = serializers.BooleanField(required=False, default=False)
    q = serializers.CharField(required=False, default="", help_text="Text in title or reason.")
    cursor = serializers.CharField(required=False, help_text="From the previous page's `next`.")
    page_size = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


# --- the policy matrix --------------------------------------------------------------------


class TierSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    stage = serializers.IntegerField(help_text="Tiers of one stage run in parallel.")
    role = serializers.CharField()
    held_at = serializers.CharField(help_text="`site` or `region`.")
    quorum = serializers.IntegerField()
    sla_hours = serializers.DecimalField(max_digits=6, decimal_places=2, coerce_to_string=True)
    business_hours = serializers.BooleanField()
    escalation_role = serializers.CharField()
    on_breach = serializers.CharField(help_text="escalate, expire or reject.")
    comment_required = serializers.BooleanField()


class RuleSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    effect = serializers.CharField(help_text="`route` gives the chain; `add` appends tiers.")
    kinds = serializers.ListField(child=serializers.CharField(), help_text="Empty: every kind.")
    min_amount = serializers.DecimalField(**MONEY, allow_null=True, help_text="Base currency.")
    max_amount = serializers.DecimalField(**MONEY, allow_null=True, help_text="Exclusive.")
    categories = serializers.ListField(child=serializers.CharField())
    customer_classes = serializers.ListField(child=serializers.CharField())
    risk_flags = serializers.ListField(child=serializers.CharField())
    auto_approve_below = serializers.DecimalField(**MONEY, allow_null=True)
    tiers = TierSerializer(many=True)


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    effective_from = serializers.DateTimeField()
    published_at = serializers.DateTimeField()
    published_by = serializers.CharField(source="published_by.username", allow_null=True)
    note = serializers.CharField()
    fast_path_sample_rate = serializers.DecimalField(
        max_digits=5, decimal_places=4, coerce_to_string=True
    )
    drift_tolerance_pct = serializers.DecimalField(
        max_digits=6, decimal_places=2, coerce_to_string=True
    )
    rules = RuleSerializer(many=True)


class PolicySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    scope = serializers.CharField(source="scope_label", help_text="global, region X or site X.")
    region = serializers.CharField(source="region.code", allow_null=True)
    site = serializers.CharField(source="site.code", allow_null=True)
    created_at = serializers.DateTimeField()
    retired_at = serializers.DateTimeField(allow_null=True)
    base_currency = serializers.SerializerMethodField()
    versions = VersionSerializer(
        many=True, help_text="Newest first; published versions never change."
    )

    def get_base_currency(self, policy: ApprovalPolicy) -> str:
        return settings.TOLLGATE_BASE_CURRENCY


class PreviewQuerySerializer(QuerySerializer):
    site = serializers.IntegerField(**ID, help_text="Id of a site you can see.")
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    amount = serializers.DecimalField(max_digits=16, decimal_places=2, min_value=0)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, help_text="Default: site's.")
    category = serializers.CharField(required=False, default="")
    customer_class = serializers.CharField(required=False, default="")


class TierPreviewSerializer(serializers.Serializer):
    stage = serializers.IntegerField()
    role = serializers.CharField()
    held_at = serializers.CharField()
    quorum = serializers.IntegerField()
    sla_hours = serializers.DecimalField(max_digits=6, decimal_places=2, coerce_to_string=True)
    people = serializers.SerializerMethodField(help_text="Usernames eligible to decide the tier.")

    def get_people(self, tier) -> list[str]:
        return [person.username for person in tier.people]


class RoutePreviewSerializer(serializers.Serializer):
    """The answer to "who would approve this?": a route, or why the request would be refused.

    Whether a request can be routed depends on data (the policy in force, exchange rates), so a
    request that could not be raised is not bad input to the preview: the answer says so."""

    routable = serializers.BooleanField(
        help_text="Whether such a request could be raised; if not, `reason` says why."
    )
    reason = serializers.CharField(
        allow_null=True,
        help_text="Why such a request would be refused (no policy in force, no exchange rate "
        "for the currency, no rule that routes it); null when it is routable.",
    )
    version = serializers.CharField(
        allow_null=True, help_text="The policy version in force at the site; null if not routable."
    )
    rule = serializers.CharField(
        allow_null=True, help_text="The rule that would route the request; null if not routable."
    )
    fast_path = serializers.BooleanField(help_text="Approved by policy without a person.")
    tiers = TierPreviewSerializer(many=True, help_text="Empty if not routable.")
