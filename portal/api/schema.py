"""How the OpenAPI schema describes what every endpoint shares: problems, Idempotency-Key.

Every operation documents the problem responses it can give (one reusable `Problem` schema,
served as application/problem+json), and every mutation its optional Idempotency-Key header,
so that no resource view has to repeat them. An operation that gives a status a meaning of its
own says so with `OpenApiResponse(description=...)` and no body: the problem body is added. A
view opts out with `problem_responses = False` (the inbound webhooks, which answer in their own
format).
"""

from django.core.validators import RegexValidator
from django.db import DatabaseError, transaction
from django_filters import NumberFilter
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer
from rest_framework.serializers import CharField, DecimalField

from portal.api import problems
from portal.api.filters import IdFilter, StrictFilterSet
from portal.api.idempotency import HEADER, KEY_PATTERN, applies_to

# The largest value django-filter's NumberFilter takes (its MaxValueValidator).
NUMBER_FILTER_MAX = 1e50
# Text without the NUL character, which Django's and DRF's text fields refuse (PostgreSQL
# cannot store it).
NO_NUL = "^[^\\x00]*$"
# What `str.strip` removes (every character `str.isspace` calls space), spelled out: `\s`
# means other characters to JSON Schema (ECMA-262) than to Python.
SPACES = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029"
    "\\u202f\\u205f\\u3000"
)
# Text that is not spaces only, without NUL: DRF trims text before it checks that it is not
# blank, so "  " is as empty as "".
NOT_BLANK = f"^[^\\x00]*[^\\x00{SPACES}][^\\x00]*$"

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Any JSON value without the NUL character in its text or keys, however deep: what a free-form
# part of the input (a request's details) may hold.
JSON_VALUE_REF = "#/components/schemas/JsonValue"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# 404 everywhere: an id, a cursor or a site that names nothing the caller may see, or an
# address no route serves (every address under /api/ answers a problem document).
_ALWAYS = (401, 403, 404, 406, 422, 429, 500)
_WITH_BODY = (400, 409, 413, 415)

_DESCRIPTIONS = {
    400: "The body is not valid JSON, or the Idempotency-Key header is malformed.",
    401: "No credentials, or a token that is unknown, expired or revoked.",
    403: "The user may not do this, or the token's narrowing does not allow it.",
    404: "No such object, or it is outside the caller's scope; a cursor this list did not give "
    "out; or nothing at this address.",
    406: "The Accept header asks for something other than JSON.",
    409: "The object changed state meanwhile, or is not of the kind the body names; the policy "
    "in force cannot route the request; or this Idempotency-Key is bound to a different "
    "request, or a request with it is still running.",
    413: "The body is too large.",
    415: "The body is not application/json.",
    422: "The input (body or query) is not valid.",
    429: "The token's rate limit is used up; retry after Retry-After seconds.",
    500: "An unexpected error; it has been logged.",
    503: "The installation is not configured for this yet (e.g. no audit signing key).",
}


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not getattr(self.view, "problem_responses", True):
            return responses
        for code in self._problem_codes():
            given = responses.get(str(code))
            response = _problem_response(code)
            if given is not None and "content" not in given:
                # The operation says what this status means for it (OpenApiResponse with a
                # description only); the body is the problem document all the same.
                response["description"] = given["description"]
            elif given is not None:
                continue
            responses[str(code)] = response
        return responses

    def _problem_codes(self) -> list[int]:
        codes = list(_ALWAYS)
        if self.method in UNSAFE:
            codes += _WITH_BODY
        codes += getattr(self.view, "problem_statuses", ())
        return sorted(codes)

    def _get_request_for_media_type(self, serializer, direction="request"):
        """A body of one schema per kind is required: every one of them requires its `kind`
        (drf-spectacular reads `required` off a plain serializer only)."""
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if isinstance(serializer, PolymorphicProxySerializer):
            required = True
        return schema, required

    def _get_filter_parameters(self):
        """The filters' parameters with every constraint the filter enforces: a strict filter
        set refuses an empty value, an id filter a number outside its range."""
        parameters = super()._get_filter_parameters()
        filterset_class = getattr(self.view, "filterset_class", None)
        if filterset_class is None:
            return parameters
        strict = issubclass(filterset_class, StrictFilterSet)
        for parameter in parameters:
            found = filterset_class.base_filters.get(parameter["name"])
            schema = parameter.get("schema", {})
            if isinstance(found, IdFilter):
                schema.update(
                    type="integer",
                    format="int64",
                    minimum=found.extra["min_value"],
                    maximum=found.extra["max_value"],
                )
            elif isinstance(found, NumberFilter):
                # django-filter's own bound on every number filter.
                schema.setdefault("maximum", NUMBER_FILTER_MAX)
            elif strict and schema.get("type") == "string":
                schema.setdefault("minLength", 1)
                if "format" not in schema:
                    schema.setdefault("pattern", NO_NUL)
        return parameters

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """Text input without NUL (DRF refuses it), and not of spaces only where it may not be
        blank; a decimal string's pattern as DRF reads it: at least one digit, no sign where the
        field takes no negative number (drf-spectacular's allows "" and "-"). A field whose
        constraints depend on the data (the currencies Tollgate converts, the resolution codes
        of a kind) states them itself, as `openapi_schema()`, read each time the schema is."""
        own = getattr(field, "openapi_schema", None)
        if own is not None:
            return own()
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        constrained = {"pattern", "format", "enum"} & set(schema) or any(
            isinstance(validator, RegexValidator) for validator in field.validators
        )
        if direction == "request" and isinstance(field, CharField) and not constrained:
            must_say_something = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NOT_BLANK if must_say_something else NO_NUL
        if isinstance(field, DecimalField) and "pattern" in schema and field.max_whole_digits:
            whole, places = field.max_whole_digits, field.decimal_places
            sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
            schema["pattern"] = (
                rf"^{sign}(?:\d{{1,{whole}}}(?:\.\d{{0,{places}}})?|\.\d{{1,{places}}})$"
            )
        return schema

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in UNSAFE and applies_to(self.path):
            parameters.append(
                OpenApiParameter(
                    HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    required=False,
                    pattern=f"^(?:{KEY_PATTERN.pattern})$",
                    description=(
                        "A unique key (e.g. a UUID, optionally in double quotes) per intended "
                        "change. Retrying with the same key and body replays the first response "
                        "(marked Idempotent-Replayed: true); the same key with another body "
                        "answers 409 (the key is bound to that first request); while the first "
                        "is still running, 409 too. Keys are kept for at least 24 hours."
                    ),
                )
            )
        return parameters


def read_while_describing(read):
    """What `read()` finds in the database for the schema, or None when the database cannot be
    reached: `manage.py check --deploy` builds the schema before any database exists, and a
    schema served then says less (no list of values) rather than failing. The read runs in a
    savepoint, so that a failure inside a caller's transaction leaves that transaction usable."""
    try:
        with transaction.atomic():
            return read()
    except DatabaseError:
        return None


def _problem_response(code: int) -> dict:
    response = {
        "description": _DESCRIPTIONS[code],
        "content": {
            problems.MEDIA_TYPE: {"schema": PROBLEM_REF, "examples": _problem_examples(code)}
        },
    }
    if code == 429:
        response["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds until the rate limit allows another request.",
            }
        }
    return response


def _problem_examples(status_code: int) -> dict:
    """One example per problem code this status carries, so a client sees every `code`."""
    return {
        code: {
            "summary": title,
            "value": problems.problem(
                code, _EXAMPLE_DETAILS.get(code), **_EXAMPLE_EXTRAS.get(code, {})
            ),
        }
        for code, (status, title) in problems.CATALOGUE.items()
        if status == status_code
    }


_EXAMPLE_DETAILS = {
    "validation_failed": "amount: A positive amount is required.",
    "conflict": "AR-000042 was decided by someone else meanwhile.",
    "transition_not_allowed": "AR-000042 is approved: it cannot be withdrawn.",
    "permission_denied": "None of the open tiers of this request is yours to decide.",
    "token_read_only": "This token is read-only: it cannot change anything.",
    "rate_limited": "Request was throttled. Expected available in 12 seconds.",
    "not_routable": "No rule of Enterprise framework v3 routes a price_override of 0.01 EUR; "
    "ask an administrator to extend the policy.",
    "kind_mismatch": "EX-000042 is a shipment delay case, not an invoice mismatch one; resolve "
    "it as `shipment_delay`, with one of its codes.",
}

_EXAMPLE_EXTRAS = {
    "validation_failed": {"errors": {"amount": ["A positive amount is required."]}},
    "transition_not_allowed": {"current_state": "approved"},
}


def add_problem_component(result, generator, request, public):
    """Postprocessing hook: the `Problem` schema every problem response refers to, and the
    `JsonValue` free-form input refers to."""
    codes = sorted(problems.CATALOGUE)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["JsonValue"] = {
        "description": "Any JSON value; no text in it, key or value, holds the NUL character.",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
            {
                "type": "object",
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": {"$ref": JSON_VALUE_REF},
            },
        ],
    }
    schemas["Problem"] = {
        "type": "object",
        "description": "An RFC 9457 problem document; `code` is stable, branch on it.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "example": problems.TYPE_PREFIX + "validation_failed"},
            "title": {"type": "string", "example": "The input is not valid."},
            "status": {"type": "integer", "example": 422},
            "detail": {"type": "string", "example": "amount: A positive amount is required."},
            "code": {"type": "string", "enum": codes, "example": "validation_failed"},
            "errors": {
                "type": "object",
                "description": "Messages per field (422 only); `non_field_errors` for the rest.",
                "additionalProperties": {},
                "example": {"amount": ["A positive amount is required."]},
            },
            "current_state": {
                "type": "string",
                "description": "The object's state now (409 only, when known).",
                "example": "approved",
            },
        },
    }
    return result
