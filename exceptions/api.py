"""The exception cases of the REST API: list, read and work them, and the queues' state.

Thin views: reads through exceptions.selectors (a case out of the caller's scope answers 404
exactly like one that does not exist), each change through one exceptions.services call, which
checks who may work the case. Token actions are `exceptions.<action>`.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
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

from exceptions import selectors, services
from exceptions.filters import ExceptionCaseFilter
from exceptions.models import CaseKind, ExceptionCase
from exceptions.serializers import (
    RESOLVE_SERIALIZERS,
    AssignSerializer,
    ExceptionCaseDetailSerializer,
    ExceptionCaseSerializer,
    QueueItemSerializer,
    QueueQuerySerializer,
    QueueSummarySerializer,
    ReasonSerializer,
    resolve_serializer_for,
)
from portal.core.ids import ID_PATTERN

NOT_A_WORKER = "No one with this id works this case's queue at its site."
CASE_EXAMPLE = {
    "id": 42,
    "reference": "EX-000042",
    "kind": "invoice_mismatch",
    "state": "assigned",
    "severity": "high",
    "queue": "finance",
    "site": "AMS",
    "site_id": 1,
    "owner": "finance",
    "owner_id": 5,
    "title": "Bill BILL/2026/0042 differs from PO00042",
    "source": "odoo",
    "amount_at_stake": "120.00",
    "currency": "EUR",
    "occurrences": 2,
    "detected_at": "2026-03-10T09:00:00Z",
    "last_seen_at": "2026-03-10T15:00:00Z",
    "due_at": "2026-03-11T09:00:00Z",
    "overdue": False,
    "closed_at": None,
    "resolution_code": "",
    "evidence": {"difference": "120.00", "tolerance_pct": "2"},
    "payload": {"id": 42},
    "odoo_model": "account.move",
    "odoo_id": 42,
    "linked_request": None,
    "pending_resolution": "",
    "resolution_note": "",
    "resolution_codes": {
        "credit_note_requested": "Credit note requested from the supplier",
        "bill_corrected": "Vendor bill corrected before payment",
    },
    "available_actions": {
        "assign": {"allowed": True, "reason": None},
        "start": {"allowed": True, "reason": None},
        "resolve": {"allowed": True, "reason": None},
        "dismiss": {"allowed": True, "reason": None},
        "reopen": {
            "allowed": False,
            "reason": "Only a closed case can be reopened, by the people who work its queue, "
            "within 14 days.",
        },
    },
}


class KindMismatch(APIException):
    """The body names another kind of case than the one at this address: the client's idea of
    the case is wrong, so the codes it chose are not the case's."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "kind_mismatch"


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ExceptionCaseViewSet(viewsets.GenericViewSet):
    """Exception cases at the caller's sites."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = ExceptionCaseFilter
    queryset = ExceptionCase.objects.none()  # the model, for the schema; rows: get_queryset
    serializer_class = ExceptionCaseSerializer
    lookup_value_regex = ID_PATTERN
    cursor_ordering = ("-id",)

    def get_queryset(self):
        return selectors.cases_visible_to(self.request.user)

    def _case(self, pk) -> ExceptionCase:
        try:
            return selectors.case_for(self.request.user, int(pk))
        except ExceptionCase.DoesNotExist:
            raise Http404("No such exception case.") from None

    def _detail(self, pk) -> Response:
        case = self.get_queryset().get(pk=self._case(pk).pk)
        context = self.get_serializer_context()
        return Response(ExceptionCaseDetailSerializer(case, context=context).data)

    @extend_schema(
        summary="List exception cases",
        description="Every case at your sites, open or closed, newest first; see `queue/` for "
        "the open ones in priority order.",
        responses={200: ExceptionCaseSerializer(many=True)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ExceptionCaseSerializer(page, many=True).data)

    @extend_schema(
        summary="One exception case",
        description="With its evidence, how often it was seen, its Odoo record, the approval "
        "its resolution may wait for, the resolution codes its kind allows, and for each action "
        "whether you may take it now or why not.",
        responses={200: ExceptionCaseDetailSerializer},
        examples=[OpenApiExample("Assigned", response_only=True, value=CASE_EXAMPLE)],
    )
    def retrieve(self, request, pk=None):
        return self._detail(pk)

    @extend_schema(
        summary="Assign a case",
        description="Give the case to someone who works its queue at its site; without "
        "`owner_id`, to yourself. Only workers of the queue may assign.",
        request=AssignSerializer,
        responses={
            200: ExceptionCaseDetailSerializer,
            404: OpenApiResponse(
                description="No such case, or it is outside your scope; or `owner_id` is no one "
                "who works the case's queue at its site (the case is left as it was)."
            ),
        },
        examples=[
            OpenApiExample("Assign to me", request_only=True, value={}),
            OpenApiExample("Assign to a colleague", request_only=True, value={"owner_id": 7}),
        ],
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        case = self._case(pk)
        data = _valid(AssignSerializer, request.data)
        owner = request.user
        if data.get("owner_id") is not None:
            # An id that is nobody's goes through the same checks as one that is, as no one
            # (who works no queue), so both answer alike: the refusal tells no ids apart.
            found = get_user_model().objects.filter(pk=data["owner_id"], is_active=True).first()
            owner = found or AnonymousUser()
        try:
            services.case_assign(actor=request.user, case_id=case.pk, owner=owner)
        except DjangoValidationError as error:
            if "owner" in getattr(error, "error_dict", {}):
                # The id finds no one the case may be given to: not found, as a site outside
                # one's sites is; the case is left as it was.
                raise NotFound(f"owner_id: {NOT_A_WORKER}") from None
            raise
        return self._detail(case.pk)

    @extend_schema(
        summary="Start work on a case",
        description="The case's owner starts work on an assigned case.",
        request=None,
        responses={200: ExceptionCaseDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        case = self._case(pk)
        services.case_start(actor=request.user, case_id=case.pk)
        return self._detail(case.pk)

    @extend_schema(
        summary="Resolve a case",
        description="Close the case with a resolution code of its kind and a note. The body "
        "names the case's `kind`, which sets the codes it may be closed with (one schema per "
        "kind; the case's `resolution_codes` lists them too); a case of another kind answers "
        "409 `kind_mismatch`. A resolution that moves enough money (e.g. writing off an "
        "invoice difference) raises an approval request instead, and the case follows its "
        "outcome (`pending_resolution` and `linked_request` show it).",
        request=PolymorphicProxySerializer(
            component_name="Resolve",
            serializers=RESOLVE_SERIALIZERS,
            resource_type_field_name="kind",
        ),
        responses={200: ExceptionCaseDetailSerializer},
        examples=[
            OpenApiExample(
                "Resolve",
                request_only=True,
                value={
                    "kind": "invoice_mismatch",
                    "code": "credit_note_requested",
                    "note": "Supplier credits 120.00",
                },
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        case = self._case(pk)
        data = _valid(resolve_serializer_for(request.data), request.data)
        if data.pop("kind") != case.kind:
            raise KindMismatch(
                f"{case.reference} is a {case.get_kind_display().lower()} case, not a "
                f"{CaseKind(request.data['kind']).label.lower()} one; resolve it as "
                f"`{case.kind}`, with one of its codes."
            )
        services.case_resolve(actor=request.user, case_id=case.pk, **data)
        return self._detail(case.pk)

    @extend_schema(
        summary="Dismiss a case",
        description="Close the case as needing no action; the reason is recorded.",
        request=ReasonSerializer,
        responses={200: ExceptionCaseDetailSerializer},
        examples=[OpenApiExample("Dismiss", request_only=True, value={"reason": "Duplicate."})],
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        case = self._case(pk)
        data = _valid(ReasonSerializer, request.data)
        services.case_dismiss(actor=request.user, case_id=case.pk, **data)
        return self._detail(case.pk)

    @extend_schema(
        summary="Reopen a case",
        description="Open a resolved or dismissed case again, within the reopening window.",
        request=ReasonSerializer,
        responses={200: ExceptionCaseDetailSerializer},
        examples=[
            OpenApiExample("Reopen", request_only=True, value={"reason": "Credit never came."})
        ],
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        case = self._case(pk)
        data = _valid(ReasonSerializer, request.data)
        services.case_reopen(actor=request.user, case_id=case.pk, **data)
        return self._detail(case.pk)

    @extend_schema(
        summary="Open cases in priority order",
        description="The open cases at your sites, highest priority first (severity, then "
        "how late, then money at stake: exceptions/priority.py), each with the reason it ranks "
        "there; at most `limit`.",
        parameters=[QueueQuerySerializer],
        responses={200: QueueItemSerializer(many=True)},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def queue(self, request):
        query = _valid(QueueQuerySerializer, request.query_params)
        limit = query.pop("limit")
        filters = selectors.QueueFilters(
            queue=query["queue"],
            site_id=query.get("site"),
            kind=query["kind"],
            severity=query["severity"],
            owner_id=query.get("owner"),
            overdue=query["overdue"],
        )
        items = selectors.prioritised(request.user, filters, limit=limit)
        return Response(QueueItemSerializer(items, many=True).data)

    @extend_schema(
        summary="Queue summary",
        description="Per queue: open cases at your sites, how many are overdue, and how long "
        "they have waited.",
        responses={200: QueueSummarySerializer(many=True)},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def summary(self, request):
        summary = selectors.queue_summary(request.user)
        rows = [
            {"queue": queue, "open": e["open"], "overdue": e["overdue"], "aging": dict(e["aging"])}
            for queue, e in sorted(summary.items())
        ]
        return Response(QueueSummarySerializer(rows, many=True).data)
