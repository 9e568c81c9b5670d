"""Token management under /api/v1/tokens/: a person lists, creates and revokes their own."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from portal.api import idempotency, selectors, services
from portal.api.models import ApiToken
from portal.api.serializers import (
    CreatedTokenSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)

TOKEN_EXAMPLE = {
    "id": 7,
    "name": "n8n approvals",
    "prefix": "tg_Q2xu8aR",
    "created_at": "2026-03-10T09:00:00Z",
    "expires_at": "2026-06-08T09:00:00Z",
    "last_used_at": None,
    "revoked_at": None,
    "read_only": False,
    "actions": ["approvals.approve"],
    "active": True,
}


@extend_schema_view(
    list=extend_schema(summary="List your API tokens (never their secrets)"),
    retrieve=extend_schema(
        summary="One of your API tokens",
        examples=[OpenApiExample("A narrowed token", response_only=True, value=TOKEN_EXAMPLE)],
    ),
)
class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TokenSerializer
    cursor_ordering = ("-created_at", "-id")
    # An id is at most 18 digits (a 64-bit integer); any other path segment is no token (404).
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return selectors.tokens_for(self.request.user)

    @extend_schema(
        summary="Create an API token; the response shows it once",
        request=TokenCreateSerializer,
        responses={201: CreatedTokenSerializer},
        examples=[
            OpenApiExample(
                "An n8n integration that only decides approvals",
                value={"name": "n8n approvals", "actions": ["approvals.approve"]},
                request_only=True,
            ),
            OpenApiExample(
                "Created: copy the token now",
                response_only=True,
                status_codes=["201"],
                value=TOKEN_EXAMPLE | {"token": "tg_Q2xu8aR…(43 characters in all)"},
            ),
        ],
    )
    def create(self, request):
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.token_create(
            actor=request.user,
            user=request.user,
            within=request.auth if isinstance(request.auth, ApiToken) else None,
            **data.validated_data,
        )
        token.token = secret
        response = Response(CreatedTokenSerializer(token).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        # A replay of this call by its Idempotency-Key says what was created, never the secret:
        # that is shown once and stored nowhere.
        token.token = None
        replay = JSONRenderer().render(CreatedTokenSerializer(token).data)
        setattr(response, idempotency.REPLAY_CONTENT, replay)
        return response

    @extend_schema(summary="Revoke one of your API tokens", request=None, responses=TokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        self.get_object()  # someone else's token answers 404
        token = services.token_revoke(actor=request.user, token_id=int(pk))
        return Response(TokenSerializer(token).data)

    @extend_schema(summary="Revoke one of your API tokens", responses={204: None})
    def destroy(self, request, pk=None):
        self.get_object()
        services.token_revoke(actor=request.user, token_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
