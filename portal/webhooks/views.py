"""The inbound endpoint: `/api/v1/webhooks/<source>/`, signed per Standard Webhooks."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from portal.webhooks import schemas, services, sources

DEFAULT_MAX_BYTES = 256 * 1024
# How often a delivery is checked again when its source changes under it; more is a bug.
STALE_RETRIES = 3


@csrf_exempt
@require_POST
def receive(request, source: str) -> JsonResponse:
    """Verify, store once and enqueue; answers before the event is processed."""
    sender = sources.sender(source)
    if sender is None:
        return _not_found(source)
    limit = getattr(settings, "WEBHOOK_MAX_BYTES", DEFAULT_MAX_BYTES)
    too_big = _error(413, f"The body is larger than {limit} bytes.")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "The Content-Length header is not a number.")
    if declared > limit:
        return too_big
    body = _read(request, limit + 1)
    if body is None:
        return _error(411, "Send a Content-Length header, or a chunked body this server ends.")
    if len(body) > limit:
        return too_big
    try:
        body.decode()
    except UnicodeDecodeError:
        return _error(400, "The body must be UTF-8 encoded JSON.")
    for _ in range(STALE_RETRIES):
        try:
            webhook_id = services.webhook_verify(sender=sender, body=body, headers=request.headers)
            received = services.webhook_receive(
                source=sender.source, webhook_id=webhook_id, body=body, stamp=sender.stamp
            )
        except services.SignatureError as error:
            # Kept secrets may predate one the sender now signs with: ask the database.
            fresh = sources.sender(source, fresh=True)
            if fresh is None:
                return _not_found(source)
            if fresh.stamp == sender.stamp:
                return _error(401, str(error))
            sender = fresh
        except sources.Stale:
            sender = sources.sender(source, fresh=True)
            if sender is None:
                return _not_found(source)
        else:
            return JsonResponse(received.body, status=received.status)
    raise RuntimeError(f"Webhook source {source!r} kept changing while a delivery was checked")


def _read(request, size: int) -> bytes | None:
    """At most `size` bytes of the body; None for a chunked body that cannot be read safely.

    Without a Content-Length Django reads a WSGI body as empty, so a chunked body is read from
    the server's de-chunked input, still never more than `size` bytes, when the server promises
    that input ends (`wsgi.input_terminated`, as gunicorn does); otherwise reading could block.
    ASGI servers hand Django the whole body, which `request.read` already bounds.
    """
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if "wsgi.input" not in request.META or request.META.get("CONTENT_LENGTH") or not chunked:
        return request.read(size)
    if not request.META.get("wsgi.input_terminated"):
        return None
    return request.META["wsgi.input"].read(size)


def _not_found(source: str) -> JsonResponse:
    return _error(404, f"No webhook source named {source!r}.")


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


# --- OpenAPI description -------------------------------------------------------------------
# The endpoint stays a plain Django view: it must read the raw body before anything parses it,
# and it answers in its own format. The class below only describes it to the schema generator,
# which documents DRF views; it is never instantiated to answer a request.

_TEXT = {"type": "string", "minLength": 1, "maxLength": 100}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with a time zone."}
CARRIER_PAYLOAD = {
    "title": "Carrier event",
    "type": "object",
    "required": ["type", "tracking_number", "picking_ref", "site", "status", "event_time"],
    "properties": {
        "type": {"type": "string", "enum": list(schemas.CARRIER_TYPES)},
        "tracking_number": _TEXT,
        "picking_ref": {**_TEXT, "description": "The Odoo transfer's reference."},
        "site": {**_TEXT, "description": "A Tollgate site code."},
        "status": _TEXT,
        "event_time": _TIME,
        "new_eta": {**_TIME, "description": "The new expected arrival, when delayed."},
    },
    "additionalProperties": True,
}
SUPPLIER_PAYLOAD = {
    "title": "Supplier event",
    "type": "object",
    "required": ["type", "order_ref", "site", "lines"],
    "properties": {
        "type": {"type": "string", "enum": list(schemas.SUPPLIER_TYPES)},
        "order_ref": {**_TEXT, "description": "The Odoo purchase order's reference."},
        "site": {**_TEXT, "description": "A Tollgate site code."},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["product", "quantity", "ordered_quantity"],
                "properties": {
                    "product": _TEXT,
                    "quantity": {"type": "number", "minimum": 0},
                    "ordered_quantity": {"type": "number", "minimum": 0},
                },
            },
        },
    },
    "additionalProperties": True,
}
GENERIC_PAYLOAD = {
    "title": "Any other source's event (e.g. n8n)",
    "type": "object",
    "required": ["type"],
    "properties": {"type": _TEXT},
    "additionalProperties": True,
}
_EXAMPLES = [
    OpenApiExample(
        "carrier: a delayed shipment",
        request_only=True,
        value={
            "type": "shipment.delayed",
            "tracking_number": "1Z999AA10123456784",
            "picking_ref": "AMS/OUT/00042",
            "site": "AMS",
            "status": "held_at_depot",
            "event_time": "2026-05-04T09:30:00Z",
            "new_eta": "2026-05-07T00:00:00Z",
        },
    ),
    OpenApiExample(
        "supplier: an advance shipping notice",
        request_only=True,
        value={
            "type": "asn",
            "order_ref": "P00017",
            "site": "AMS",
            "lines": [{"product": "SKU-1", "quantity": 40, "ordered_quantity": 48}],
        },
    ),
    OpenApiExample(
        "n8n: any event with a type",
        request_only=True,
        value={"type": "workflow.finished", "workflow": "Nightly reconciliation"},
    ),
]


def _answer(description: str, example: dict, *, status_only: bool = False) -> OpenApiResponse:
    properties = {"status": {"type": "string"}, "id": {"type": "integer"}}
    if not status_only:
        properties = {
            "error": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "string"}},
            "id": {"type": "integer"},
        }
    return OpenApiResponse(
        response={"type": "object", "properties": properties},
        description=description,
        examples=[OpenApiExample(description, value=example, response_only=True)],
    )


class ReceiveDescription(APIView):
    """Describes `receive` to the schema generator; see the comment above."""

    authentication_classes = []
    permission_classes = [AllowAny]
    problem_responses = False

    @extend_schema(
        operation_id="webhooks_receive",
        tags=["webhooks"],
        summary="Receive a signed event from a registered source",
        description=(
            "Signed per Standard Webhooks: `webhook-signature` is `v1,` followed by the base64 "
            "HMAC-SHA256, under one of the source's secrets, of `<webhook-id>.<webhook-timestamp>."
            "<body>`. The timestamp may be at most 5 minutes off. A `webhook-id` already received "
            "is answered 200 and nothing else happens, so senders may retry freely. Payloads per "
            "source: `carrier` and `supplier` as below; any other source (e.g. `n8n`) needs only "
            "a `type`. Unknown extra fields are accepted."
        ),
        parameters=[
            OpenApiParameter(
                "source",
                str,
                OpenApiParameter.PATH,
                pattern=r"^[-a-zA-Z0-9_]+$",
                description="The registered source, e.g. carrier, supplier or n8n.",
            ),
            OpenApiParameter(
                "webhook-id",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Unique per event.",
            ),
            OpenApiParameter(
                "webhook-timestamp",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Unix time in seconds when the event was signed.",
            ),
            OpenApiParameter(
                "webhook-signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="One or more space-separated `v1,<base64>` signatures.",
            ),
        ],
        request={
            "application/json": {"anyOf": [CARRIER_PAYLOAD, SUPPLIER_PAYLOAD, GENERIC_PAYLOAD]}
        },
        examples=_EXAMPLES,
        responses={
            202: _answer(
                "Accepted: stored, processed shortly.",
                {"status": "accepted", "id": 81},
                status_only=True,
            ),
            200: _answer(
                "A webhook-id received before: ignored.", {"status": "duplicate"}, status_only=True
            ),
            400: _answer(
                "Not JSON, not UTF-8, or a malformed header.",
                {"error": "The body must be UTF-8 encoded JSON."},
            ),
            401: _answer(
                "Unsigned, wrongly signed or stale.",
                {"error": "The webhook-timestamp is more than 5 minutes old."},
            ),
            (404, "application/json"): _answer(
                "No active source by this name.", {"error": "No webhook source named 'fax'."}
            ),
            # A source that is not a slug matches no address: the API's problem document.
            (404, "application/problem+json"): OpenApiResponse(
                response={"$ref": "#/components/schemas/Problem"},
                description="No active source by this name.",
            ),
            413: _answer(
                "The body is larger than WEBHOOK_MAX_BYTES.",
                {"error": "The body is larger than 262144 bytes."},
            ),
            422: _answer(
                "Signed, but the payload fails the source's schema; kept as a rejected delivery.",
                {
                    "error": "tracking_number: a non-empty string is required.",
                    "errors": ["tracking_number: a non-empty string is required."],
                    "id": 82,
                },
            ),
        },
    )
    def post(self, request, source: str):
        raise NotImplementedError("receive() answers; this class only describes it")


receive.cls = ReceiveDescription
receive.initkwargs = {}
