"""The REST framework's and the schema generator's settings, which portal.settings takes as they
are: nothing here is read from the environment."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.TokenAuthentication",
        # The browser's session; DRF enforces CSRF on its unsafe requests.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.api.permissions.TokenScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.problems.exception_handler",
    "PAGE_SIZE": 50,
    # ISO 8601 in UTC with a trailing Z; money as decimal strings.
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": (
        "Approvals, exception cases and the audit ledger of Tollgate. Authenticate with a "
        "personal API token (`Authorization: Bearer <token>`) or the browser session. Errors are "
        "RFC 9457 problem documents with a stable `code`; mutations accept `Idempotency-Key`."
    ),
    "VERSION": "1",
    # 3.1: the first version that can describe outbound webhooks.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.add_problem_component",
    ],
    # The outbound decision events, documented as OpenAPI webhooks.
    "WEBHOOKS": "portal.webhooks.openapi.OUTBOUND_WEBHOOKS",
    # Requests and exception cases both have a `kind`; each keeps its own enum name.
    "ENUM_NAME_OVERRIDES": {
        "RequestKindEnum": "approvals.models.RequestKind",
        "CaseKindEnum": "exceptions.models.CaseKind",
    },
}
