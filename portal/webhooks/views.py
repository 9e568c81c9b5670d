"""The inbound endpoint: `/api/v1/webhooks/<source>/`, signed per Standard Webhooks."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.webhooks import services
from portal.webhooks.models import WebhookSource

DEFAULT_MAX_BYTES = 256 * 1024


@csrf_exempt
@require_POST
def receive(request, source: str) -> JsonResponse:
    """Verify, store once and enqueue; answers before the event is processed."""
    row = WebhookSource.objects.filter(name=source, active=True).first()
    if row is None:
        return _error(404, f"No webhook source named {source!r}.")
    limit = getattr(settings, "WEBHOOK_MAX_BYTES", DEFAULT_MAX_BYTES)
    too_big = _error(413, f"The body is larger than {limit} bytes.")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "The Content-Length header is not a number.")
    if declared > limit:
        return too_big
    body = request.read(limit + 1)
    if len(body) > limit:
        return too_big
    try:
        body.decode()
    except UnicodeDecodeError:
        return _error(400, "The body must be UTF-8 encoded JSON.")
    try:
        webhook_id = services.webhook_verify(source=row, body=body, headers=request.headers)
    except services.SignatureError as error:
        return _error(401, str(error))
    received = services.webhook_receive(source=row, webhook_id=webhook_id, body=body)
    return JsonResponse(received.body, status=received.status)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
