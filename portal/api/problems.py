"""Every API error as an RFC 9457 problem: `application/problem+json` with a stable `code`.

    {"type": "urn:tollgate:problem:validation_failed", "title": "The input is not valid.",
     "status": 422, "detail": "...", "code": "validation_failed",
     "errors": {"amount": ["A positive amount is required."]}}

`code` is what a client branches on; `title` belongs to the code, `detail` to the occurrence.
`exception_handler` answers for DRF views; `handler404`/`handler500` and `problem_response`
answer for anything else under /api/. A 500 never carries internals: the error is logged.
"""

import logging

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

from portal.core.errors import Conflict

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:tollgate:problem:"

# code -> (status, title). The codes are part of the API: add to them, never rename one.
CATALOGUE: dict[str, tuple[int, str]] = {
    "malformed_request": (400, "The request body could not be parsed."),
    "idempotency_key_invalid": (400, "The Idempotency-Key header is not valid."),
    "not_authenticated": (401, "Authentication is required."),
    "authentication_failed": (401, "The credentials were not accepted."),
    "token_invalid": (401, "The API token is unknown, expired or revoked."),
    "token_malformed": (401, "The Authorization header is malformed."),
    "permission_denied": (403, "You may not do this."),
    "token_read_only": (403, "This API token is read-only."),
    "token_action_not_allowed": (403, "This API token does not allow this action."),
    "not_found": (404, "Not found."),
    "method_not_allowed": (405, "Method not allowed."),
    "not_acceptable": (406, "No acceptable representation."),
    "conflict": (409, "The object changed since you looked at it."),
    "transition_not_allowed": (409, "This action is not possible in the object's current state."),
    "concurrent_transition": (409, "Someone else changed the object at the same time."),
    "idempotency_key_in_progress": (409, "A request with this Idempotency-Key is in progress."),
    "idempotency_key_reused": (409, "This Idempotency-Key is bound to a different request."),
    "kind_mismatch": (409, "The object is not of the kind the request names."),
    "not_routable": (409, "The policy in force cannot route this request."),
    "payload_too_large": (413, "The request body is too large."),
    "unsupported_media_type": (415, "Unsupported media type."),
    "validation_failed": (422, "The input is not valid."),
    "rate_limited": (429, "Too many requests."),
    "internal_error": (500, "Something went wrong on our side."),
    "signing_unavailable": (503, "No audit signing key is configured."),
}

# DRF's own codes for its exceptions, mapped to ours.
_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ValidationError: "validation_failed",
    exceptions.Throttled: "rate_limited",
}


class ProblemJSONRenderer(JSONRenderer):
    """JSON, labelled as a problem document."""

    media_type = MEDIA_TYPE
    format = "problem+json"


def problem(code: str, detail: str | None = None, **extra) -> dict:
    """The body of a problem with `code`; `extra` adds members such as `errors`."""
    status_code, title = CATALOGUE[code]
    body = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status_code,
        "detail": str(detail) if detail else title,
        "code": code,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def problem_response(code: str, detail: str | None = None, *, headers=None, **extra):
    """A plain Django response carrying a problem, for code outside DRF views."""
    body = problem(code, detail, **extra)
    response = HttpResponse(
        ProblemJSONRenderer().render(body), status=body["status"], content_type=MEDIA_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: any exception raised in an API view becomes a problem."""
    body, headers = _problem_for(exc)
    set_rollback()
    return Response(body, status=body["status"], headers=headers, content_type=MEDIA_TYPE)


def _problem_for(exc) -> tuple[dict, dict]:
    if isinstance(exc, exceptions.APIException):
        return _from_api_exception(exc)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return problem("not_found", "No such object, or it is not yours to see."), {}
    if isinstance(exc, DjangoPermissionDenied):
        return problem("permission_denied", _message(exc)), {}
    if isinstance(exc, DjangoValidationError):
        return _validation(exc), {}
    if isinstance(exc, TransitionNotAllowed):
        obj = getattr(exc, "object", None)
        return problem("transition_not_allowed", _message(exc), **_state(obj)), {}
    if isinstance(exc, ConcurrentTransition):
        return problem("concurrent_transition", _message(exc)), {}
    if isinstance(exc, Conflict):
        return problem("conflict", _message(exc), **_state(exc)), {}
    if isinstance(exc, RequestDataTooBig):
        return problem("payload_too_large"), {}
    logger.exception("Unexpected error in an API view", exc_info=exc)
    return problem("internal_error"), {}


def _from_api_exception(exc: exceptions.APIException) -> tuple[dict, dict]:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, exceptions.ValidationError):
        return _validation_body(exc.detail), headers
    code = _code_of(exc)
    return problem(code, exc.detail if code != "internal_error" else None), headers


def _code_of(exc: exceptions.APIException) -> str:
    given = exc.get_codes()
    if isinstance(given, str) and given in CATALOGUE and CATALOGUE[given][0] == exc.status_code:
        return given
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    if exc.status_code == status.HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        return "payload_too_large"
    for code, (status_code, _title) in CATALOGUE.items():
        if status_code == exc.status_code:
            return code
    return "internal_error"


def _validation_body(detail) -> dict:
    if isinstance(detail, dict):
        errors = {key: _texts(value) for key, value in detail.items()}
    else:
        errors = {"non_field_errors": _texts(detail)}
    return problem("validation_failed", _summary(errors), errors=errors)


def _validation(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        errors = {
            ("non_field_errors" if key == "__all__" else key): list(messages)
            for key, messages in exc.message_dict.items()
        }
    else:
        errors = {"non_field_errors": list(exc.messages)}
    return problem("validation_failed", _summary(errors), errors=errors)


def _texts(value) -> list:
    if isinstance(value, list):
        return [_texts(item) if isinstance(item, dict | list) else str(item) for item in value]
    if isinstance(value, dict):
        return {key: _texts(item) for key, item in value.items()}
    return [str(value)]


def _summary(errors: dict) -> str:
    """One line naming the first problem, for people who read `detail` only."""
    for field, messages in errors.items():
        first = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(first, str):
            return first if field == "non_field_errors" else f"{field}: {first}"
    return CATALOGUE["validation_failed"][1]


def _message(exc) -> str | None:
    return " ".join(str(arg) for arg in exc.args if arg) or None


def _state(holder) -> dict:
    state = getattr(holder, "state", None) if holder is not None else None
    return {"current_state": str(state)} if isinstance(state, str) and state else {}


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


@csrf_exempt
def unrouted(request, *args, **kwargs):
    """Any address under /api/ that no route serves: a problem document whatever DEBUG says
    (Django's own 404 page, or its debug page, is HTML). A method a route does not serve is
    answered 405 by the route itself."""
    detail = "There is nothing at this address."
    if not request.path.endswith("/"):
        try:
            resolved = resolve(request.path + "/")
        except Resolver404:
            resolved = None
        if resolved is not None and resolved.func is not unrouted:
            detail = f"There is nothing at this address; addresses end in a slash: {request.path}/"
    return problem_response("not_found", detail)


UNROUTED = "unrouted"


def handler404(request, exception=None):
    """Django's 404 for pages; a problem under /api/."""
    if is_api_path(request.path):
        return problem_response("not_found", "There is nothing at this address.")
    return defaults.page_not_found(request, exception)


def handler500(request):
    """Django's 500 for pages; a problem under /api/ (the error itself is logged by Django)."""
    if is_api_path(request.path):
        return problem_response("internal_error")
    return defaults.server_error(request)
