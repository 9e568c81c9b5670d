"""The approvals resources of the REST API: requests, their decisions, delegation, policies.

Views are thin: they read through approvals.selectors (so a request out of the caller's scope
answers 404 exactly like one that does not exist), write through one approvals.services call,
and leave "may this person do it?" to approvals.policies and the services. Errors the services
raise (Conflict, PermissionDenied, ValidationError) become problem responses in the API's one
exception handler.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response

from approvals import selectors, services
from approvals.authority import authority_for
from approvals.filters import ApprovalRequestFilter
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.serializers import (
    CREATE_SERIALIZERS,
    ApprovalRequestDetailSerializer,
    ApprovalRequestSerializer,
    ApproveSerializer,
    DelegateSerializer,
    DelegationSerializer,
    InboxPageSerializer,
    InboxQuerySerializer,
    InboxRequestSerializer,
    PolicySerializer,
    PreviewQuerySerializer,
    RejectSerializer,
    RoutePreviewSerializer,
    WithdrawSerializer,
    create_serializer_for,
)
from portal.core.cursors import keyset_decode, keyset_encode
from portal.core.ids import ID_PATTERN
from sites.selectors import site_list_for_user

REQUEST_EXAMPLE = {
    "id": 42,
    "reference": "AR-000042",
    "kind": "purchase",
    "state": "in_review",
    "site": "AMS",
    "site_id": 1,
    "requester": "requester",
    "title": "Pallets of sparkling water",
    "amount": "7200.00",
    "currency": "EUR",
    "amount_base": "7200.00",
    "base_currency": "EUR",
    "risk_flags": [],
    "revision": 1,
    "created_at": "2026-03-10T09:00:00Z",
    "submitted_at": "2026-03-10T09:00:05Z",
    "due_at": "2026-03-11T09:00:05Z",
    "overdue": False,
    "decided_at": None,
}

DETAIL_EXAMPLE = REQUEST_EXAMPLE | {
    "reason": "Spring season stock",
    "category": "Beverages",
    "customer_class": "",
    "counterparty": "Acme Supplies",
    "counterparty_ref": "res.partner,7",
    "details": {},
    "odoo_model": "purchase.order",
    "odoo_id": 4711,
    "revision_of": None,
    "policy_version": "Enterprise framework v3",
    "rule": "Material purchases",
    "fast_path": False,
    "risk_flag_details": [
        {
            "code": "new_counterparty",
            "explanation": "Acme Supplies was first seen 12 days ago.",
            "numbers": {"first_seen": "2026-02-26"},
        }
    ],
    "steps": [
        {
            "id": 101,
            "round": 1,
            "position": 1,
            "stage": 1,
            "state": "active",
            "role": "site_manager",
            "escalated_role": "",
            "held_at": "site",
            "quorum": 1,
            "comment_required": False,
            "sla_hours": "24.00",
            "business_hours": False,
            "activated_at": "2026-03-10T09:00:05Z",
            "due_at": "2026-03-11T09:00:05Z",
            "completed_at": None,
        }
    ],
    "decisions": [],
    "available_actions": {
        "approve": {"allowed": True, "reason": None},
        "reject": {"allowed": True, "reason": None},
        "withdraw": {
            "allowed": False,
            "reason": "Only the requester may withdraw, and only while nothing is final.",
        },
        "resubmit": {
            "allowed": False,
            "reason": "Only a rejected request can be raised again, by its requester, once.",
        },
        "delegate": {"allowed": True, "reason": None},
    },
    "decidable_step_ids": [101],
    "apply_error": "",
    "applied_at": None,
}


def _final_example(state: str, *, step_state: str, outcome: str | None, comment: str) -> dict:
    """DETAIL_EXAMPLE once decided (or withdrawn): the tier closed, nothing left to do."""
    at = "2026-03-10T11:00:00Z"
    step = DETAIL_EXAMPLE["steps"][0] | {"state": step_state, "completed_at": at}
    decisions = []
    if outcome:
        decisions = [
            {
                "id": 9,
                "step_id": step["id"],
                "outcome": outcome,
                "actor": "site.manager",
                "on_behalf_of": None,
                "round": 1,
                "policy_version": DETAIL_EXAMPLE["policy_version"],
                "comment": comment,
                "at": at,
            }
        ]
    final = {"allowed": False, "reason": "The request is final."}
    return DETAIL_EXAMPLE | {
        "state": state,
        "decided_at": at,
        "due_at": None,
        "steps": [step],
        "decisions": decisions,
        "available_actions": {name: final for name in DETAIL_EXAMPLE["available_actions"]},
        "decidable_step_ids": [],
    }


class NotRoutable(APIException):
    """The request is well-formed, but the policy in force cannot route it: whether it can
    depends on administered data (as the preview says), so it is the policy as it stands that
    refuses it, and the same request succeeds once an administrator extends the policy."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "not_routable"


def _site_in_scope(user, site_id: int, refusal: type[APIException]):
    """The caller's site with this id; else `refusal`, the same whether it exists or not."""
    site = site_list_for_user(user).filter(pk=site_id).first()
    if site is None:
        raise refusal("No site with this id among your sites.")
    return site


class ApprovalRequestViewSet(viewsets.GenericViewSet):
    """Approval requests in the caller's scope; token actions are `approvals.<action>`."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = ApprovalRequestFilter
    queryset = ApprovalRequest.objects.none()  # the model, for the schema; rows: get_queryset
    serializer_class = ApprovalRequestSerializer
    lookup_value_regex = ID_PATTERN
    cursor_ordering = ("-id",)

    def get_queryset(self):
        return (
            selectors.requests_visible_to(authority_for(self.request))
            .select_related("site", "requester")
            .order_by("-id")
        )

    def _request(self, pk):
        try:
            return selectors.request_for(authority_for(self.request), int(pk))
        except ApprovalRequest.DoesNotExist:
            raise Http404("No such approval request.") from None

    def _detail(self, pk, *, status_code=status.HTTP_200_OK) -> Response:
        # What the detail names beside the request (its policy and rule) comes in the same query.
        visible = selectors.requests_visible_to(authority_for(self.request))
        related = visible.select_related("site", "requester", "policy_version__policy", "rule")
        request = related.filter(pk=int(pk)).first()
        if request is None:
            raise Http404("No such approval request.")
        data = ApprovalRequestDetailSerializer(request, context=self.get_serializer_context()).data
        return Response(data, status=status_code)

    @extend_schema(
        summary="List approval requests",
        description="Every request you may see (your sites, your own requests, and those you "
        "may decide through a delegation), newest first, narrowed by the filters.",
        responses={200: ApprovalRequestSerializer(many=True)},
        examples=[OpenApiExample("In review", response_only=True, value=REQUEST_EXAMPLE)],
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApprovalRequestSerializer(page, many=True).data)

    @extend_schema(
        summary="One approval request",
        description="With its tiers, decisions, explained risk flags, and for each action "
        "whether you may take it now or why not.",
        responses={200: ApprovalRequestDetailSerializer},
        examples=[
            OpenApiExample("In review", response_only=True, value=DETAIL_EXAMPLE),
        ],
    )
    def retrieve(self, request, pk=None):
        return self._detail(pk)

    @extend_schema(
        summary="Raise a request",
        description="Raise a request at one of your sites as yourself and, unless `submit` is "
        "false, submit it for routing in the same transaction: a small routine request may be "
        "approved by policy at once. Either both happen or neither. What the body needs "
        "depends on its `kind` (one schema per kind): a category, a customer class, the "
        "counterparty, and the kind's own `details`. A request the policy in force at the site "
        "cannot route (no policy, no rule for it, a rule that names nobody) is not bad input "
        "but a conflict with the policy as it stands: 409 `not_routable`, with the reason "
        "(the preview answers the same question beforehand); nothing is kept.",
        request=PolymorphicProxySerializer(
            component_name="ApprovalRequestCreate",
            serializers=CREATE_SERIALIZERS,
            resource_type_field_name="kind",
        ),
        responses={201: ApprovalRequestDetailSerializer},
        examples=[
            OpenApiExample(
                "A purchase",
                request_only=True,
                value={
                    "kind": "purchase",
                    "site_id": 1,
                    "title": "Pallets of sparkling water",
                    "reason": "Spring season stock",
                    "amount": "7200.00",
                    "currency": "EUR",
                    "counterparty": "Acme Supplies",
                },
            ),
            OpenApiExample(
                "Created", response_only=True, status_codes=["201"], value=DETAIL_EXAMPLE
            ),
        ],
    )
    def create(self, request):
        data = _valid(create_serializer_for(request.data), request.data)
        # A site one cannot see answers as one that does not exist: 404, like any object
        # outside one's scope (a site one sees but may not raise at is the services' 403).
        site = _site_in_scope(request.user, data.pop("site_id"), NotFound)
        submit = data.pop("submit")
        data.setdefault("currency", site.currency)
        try:
            created = services.request_raise(
                requester=request.user, submit=submit, site=site, **data
            )
        except DjangoValidationError as refused:
            # Field errors name their field; what names none is routing's refusal: no policy
            # in force at the site, no rule that routes the request, a rule naming nobody.
            if hasattr(refused, "error_dict"):
                raise
            raise NotRoutable(" ".join(refused.messages)) from None
        return self._detail(created.pk, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve a tier",
        description="Approve one tier you may decide now, for yourself or for whom you stand "
        "in through a delegation. Without `step_id`, your first decidable tier. Some tiers "
        "need a comment. A request already decided by someone else answers 409.",
        request=ApproveSerializer,
        responses={200: ApprovalRequestDetailSerializer},
        examples=[
            OpenApiExample("Approve", request_only=True, value={"comment": "Within budget."}),
            OpenApiExample(
                "Approved",
                response_only=True,
                value=_final_example(
                    "approved", step_state="approved", outcome="approve", comment="Within budget."
                ),
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        request_id = self._request(pk).pk
        data = _valid(ApproveSerializer, request.data)
        services.request_approve(
            actor=request.user, request_id=request_id, authority=authority_for(request), **data
        )
        return self._detail(request_id)

    @extend_schema(
        summary="Reject at a tier",
        description="Reject the request at a tier you may decide now; the reason is required "
        "and recorded. The request is final; its requester may raise it again as a revision.",
        request=RejectSerializer,
        responses={200: ApprovalRequestDetailSerializer},
        examples=[
            OpenApiExample("Reject", request_only=True, value={"reason": "Over budget."}),
            OpenApiExample(
                "Rejected",
                response_only=True,
                value=_final_example(
                    "rejected", step_state="rejected", outcome="reject", comment="Over budget."
                ),
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        request_id = self._request(pk).pk
        data = _valid(RejectSerializer, request.data)
        services.request_reject(
            actor=request.user, request_id=request_id, authority=authority_for(request), **data
        )
        return self._detail(request_id)

    @extend_schema(
        summary="Withdraw your request",
        description="The requester takes the request back while nothing is final.",
        request=WithdrawSerializer,
        responses={200: ApprovalRequestDetailSerializer},
        examples=[
            OpenApiExample("Withdraw", request_only=True, value={"reason": "Ordered elsewhere."}),
            OpenApiExample(
                "Withdrawn",
                response_only=True,
                value=_final_example("withdrawn", step_state="closed", outcome=None, comment=""),
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        request_id = self._request(pk).pk
        data = _valid(WithdrawSerializer, request.data)
        services.request_withdraw(actor=request.user, request_id=request_id, **data)
        return self._detail(request_id)

    @extend_schema(
        summary="Delegate your tier to a colleague",
        description=(
            "Tollgate delegates people, not single requests: this hands **your own** approvals "
            "to a colleague who holds a role at the request's site, from now until `ends_at`, "
            "narrowed to the request's site and kind and to amounts up to this request's "
            "amount (in the base currency). The colleague may then decide this tier on your "
            "behalf, and any other such tier of yours during the period; decisions they take "
            "name you as the person they stood in for. You must be able to decide a tier of "
            "the request yourself now (a delegation never passes on one you hold from someone "
            "else). Revoke it in the portal."
        ),
        request=DelegateSerializer,
        responses={
            201: DelegationSerializer,
            404: OpenApiResponse(
                description="No such request, or it is outside your scope; or `delegate` names "
                "no colleague who holds a role at the request's site (nothing is delegated)."
            ),
        },
        examples=[
            OpenApiExample(
                "Delegate",
                request_only=True,
                value={"delegate": "sm.rotterdam", "ends_at": "2026-03-20T17:00:00Z"},
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def delegate(self, request, pk=None):
        request_id = self._request(pk).pk
        data = _valid(DelegateSerializer, request.data)
        try:
            delegation = services.request_delegate(
                actor=request.user, request_id=request_id, authority=authority_for(request), **data
            )
        except services.NotAColleague as error:
            # A name that finds no one the caller may delegate to is not found, as a site
            # outside one's sites is: the body is valid, what it names is not there.
            raise NotFound(f"delegate: {error.message_dict['delegate'][0]}") from None
        return Response(DelegationSerializer(delegation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Your inbox",
        description="The requests with a tier you (or someone you stand in for) may decide now, "
        "soonest due first. Follow `next` for the following page.",
        parameters=[InboxQuerySerializer],
        responses={200: InboxPageSerializer},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def inbox(self, request):
        query = _valid(InboxQuerySerializer, request.query_params)
        filters = selectors.InboxFilters(
            site_id=query.get("site"),
            kind=query.get("kind", ""),
            min_amount=query.get("amount_min"),
            max_amount=query.get("amount_max"),
            overdue=query["overdue"],
            text=query["q"].strip(),
        )
        page = selectors.inbox_for(
            authority_for(request),
            filters=filters,
            after=_decode_cursor(query.get("cursor")),
            limit=query["page_size"],
        )
        next_url = None
        if page.next_cursor is not None:
            params = request.query_params.copy()
            params["cursor"] = keyset_encode(page.next_cursor)
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        results = InboxRequestSerializer(page.requests, many=True).data
        return Response({"next": next_url, "results": results})


def _decode_cursor(value: str | None):
    if not value:
        return None
    try:
        return keyset_decode(value)
    except ValueError:
        # Opaque, so only the list knows its cursors: one it did not give out names no page.
        raise NotFound("The cursor is not one this list gave out.") from None


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PolicyViewSet(viewsets.GenericViewSet):
    """The policy matrix that governs the caller's sites, read-only; `policies.<action>`."""

    queryset = ApprovalPolicy.objects.none()  # the model, for the schema; rows: get_queryset
    serializer_class = PolicySerializer
    lookup_value_regex = ID_PATTERN
    filter_backends = []
    cursor_ordering = ("id",)

    def get_queryset(self):
        return selectors.policies_visible_to(self.request.user)

    @extend_schema(
        summary="List policies",
        description="The global policy and the regional and site policies that govern your "
        "sites, each with its published versions, rules and tiers.",
        responses={200: PolicySerializer(many=True)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PolicySerializer(page, many=True).data)

    @extend_schema(
        summary="One policy",
        responses={200: PolicySerializer},
    )
    def retrieve(self, request, pk=None):
        try:
            policy = self.get_queryset().get(pk=int(pk))
        except ApprovalPolicy.DoesNotExist:
            raise Http404("No such policy.") from None
        return Response(PolicySerializer(policy).data)

    @extend_schema(
        summary="Who would approve",
        description="For a request not yet raised: the policy version in force at the site, "
        "the rule that would route it and the people eligible at each tier. Writes nothing; "
        "risk flags are not computed, so this is the route of an unflagged request. A request "
        "that could not be raised (no policy in force at the site, no exchange rate for the "
        "currency, no rule of the policy that routes it) is answered too: `routable` is false "
        "and `reason` says why.",
        parameters=[PreviewQuerySerializer],
        responses={200: RoutePreviewSerializer},
    )
    @action(detail=False, methods=["get"], url_path="preview", pagination_class=None)
    def preview(self, request):
        query = _valid(PreviewQuerySerializer, request.query_params)
        site = _site_in_scope(request.user, query.pop("site"), NotFound)
        query.setdefault("currency", site.currency)
        try:
            preview = selectors.who_would_approve(site=site, requester=request.user, **query)
        except DjangoValidationError as refused:
            # A question answered, not bad input: such a request would be refused, and why.
            unroutable = {"routable": False, "reason": " ".join(refused.messages)}
            unroutable.update(version=None, rule=None, fast_path=False, tiers=[])
            return Response(RoutePreviewSerializer(unroutable).data)
        routable = {"routable": True, "reason": None, **vars(preview)}
        return Response(RoutePreviewSerializer(routable).data)
