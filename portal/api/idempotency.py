"""`Idempotency-Key` for every API mutation, after the IETF httpapi idempotency-key draft.

A client sends a unique key with a POST, PUT, PATCH or DELETE under /api/v1/. The first request
with a key claims it (a unique row, committed before the view runs) and its response is kept.
Later requests by the same caller with the same key:

- same method, path and body: the kept response, with `Idempotent-Replayed: true`;
- anything else: 409 `idempotency_key_reused` (the key is already bound to another request:
  its state, not the request, is what conflicts);
- while the first is still running: 409 `idempotency_key_in_progress`.

Responses that say the request did not run as such (401, 403, 429, 5xx) are not kept: the
claim is released, so a retry after fixing the cause runs; a 5xx also rolls back whatever the
view wrote (it runs in one transaction with the keeping of its response). A response that shows
something once (a new token's secret) names, in its `idempotent_replay_content` attribute, the
body a replay gives instead, so the secret is never stored. Keys are kept at least 24 hours
(IDEMPOTENCY_KEY_HOURS), then purged by a beat task. The inbound webhooks are not covered:
they deduplicate on their own `webhook-id`.

This is a middleware rather than part of each view so that no mutation can forget it; it
needs the caller, so it runs after authentication (the session's, or a token it looks up).
"""

import hashlib
import re

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from portal.api import services
from portal.api.authentication import principal
from portal.api.problems import problem_response, unrouted

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
API_PREFIX = "/api/v1/"
EXCLUDED_PREFIXES = ("/api/v1/webhooks/",)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_KEY_LENGTH = 255
# A structured-field string (RFC 8941: "..." of printable ASCII and spaces, here without the
# quote and the backslash) or, leniently, visible characters bare: 1 to 255 of them either
# way. A UUID is the usual choice.
KEY_CHARACTERS = rf"[!#-\[\]-~]{{1,{MAX_KEY_LENGTH}}}"
QUOTED_KEY_CHARACTERS = rf"[ !#-\[\]-~]{{1,{MAX_KEY_LENGTH}}}"
KEY_PATTERN = re.compile(rf'"({QUOTED_KEY_CHARACTERS})"|({KEY_CHARACTERS})')
# Headers of a kept response that a replay repeats.
KEPT_HEADERS = ("Location", "Content-Location", "Cache-Control")
# Set on a response to the body to keep for replays in place of the one sent (see above).
REPLAY_CONTENT = "idempotent_replay_content"


def applies_to(path: str) -> bool:
    """Whether mutations at `path` take an Idempotency-Key."""
    return path.startswith(API_PREFIX) and not path.startswith(EXCLUDED_PREFIXES)


def parse_key(raw: str) -> str | None:
    """The key from the header, or None if malformed (see KEY_PATTERN)."""
    match = KEY_PATTERN.fullmatch(raw.strip())
    return match.group(1) or match.group(2) if match else None


def fingerprint(request) -> str:
    """What makes two requests "the same": method, path with query, and the body's digest."""
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode())
        digest.update(b"\n")
    digest.update(hashlib.sha256(request.body).digest())
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.headers.get(HEADER)
        if raw is None or request.method not in UNSAFE_METHODS or not applies_to(request.path):
            return self.get_response(request)
        if not _served(request):
            # No route serves this method here: the answer is a 404 or 405, with no key to keep.
            return self.get_response(request)
        key = parse_key(raw)
        if key is None:
            return problem_response(
                "idempotency_key_invalid",
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters other than "
                "the quote and the backslash (spaces too between quotes), e.g. "
                '"8e03978e-40d5-43e8-bc93-6894a57f9324".',
            )
        who = principal(request)
        if who is None:
            # Not authenticated: the view answers 401 and there is nothing to keep.
            return self.get_response(request)
        try:
            claimed_as = fingerprint(request)
        except RequestDataTooBig:
            return problem_response("payload_too_large")
        claim = services.idempotency_claim(principal=who, key=key, fingerprint=claimed_as)
        if not claim.fresh:
            return _answer_from(claim.row, claimed_as)
        return self._run(request, claim.row)

    def _run(self, request, claim):
        """Run the view and keep its response in one transaction: the change and the record
        that it was made commit together. A view that fails (5xx) changes nothing, so a retry
        with the key runs afresh; a process that dies mid-way leaves a claim without a change,
        which a retry takes over safely."""
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if _kept(response):
                    services.idempotency_complete(
                        claim=claim,
                        status_code=response.status_code,
                        content_type=response.get("Content-Type", ""),
                        body=getattr(response, REPLAY_CONTENT, None) or response.content,
                        headers={name: response[name] for name in KEPT_HEADERS if name in response},
                    )
                elif response.status_code >= 500:
                    transaction.set_rollback(True)
        except BaseException:
            services.idempotency_release(claim=claim)
            raise
        if not _kept(response):
            services.idempotency_release(claim=claim)
        return response


def _served(request) -> bool:
    """Whether a route serves the request's method at its path."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    if match.func is unrouted:
        return False
    actions = getattr(match.func, "actions", None)  # a viewset's method -> action map
    if actions is not None:
        return request.method.lower() in actions
    view_class = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
    return view_class is None or hasattr(view_class, request.method.lower())


def _kept(response) -> bool:
    if getattr(response, "streaming", False):
        return False
    return response.status_code not in (401, 403, 429) and response.status_code < 500


def _answer_from(row, claimed_as: str):
    if row.fingerprint != claimed_as:
        return problem_response(
            "idempotency_key_reused",
            f"This {HEADER} is already bound to a request with another method, path or body; "
            "use a new key for a new request.",
        )
    if row.completed_at is None:
        return problem_response(
            "idempotency_key_in_progress",
            f"The first request with this {HEADER} is still running; retry shortly.",
            headers={"Retry-After": "1"},
        )
    response = HttpResponse(bytes(row.body or b""), status=row.status_code)
    response["Content-Type"] = row.content_type or "application/json"
    for name, value in (row.headers or {}).items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response
