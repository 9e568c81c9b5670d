"""What the token endpoints read and write. A secret appears once, in the creation response."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from portal.api.inputs import BodySerializer
from portal.api.models import ApiToken
from portal.api.services import ACTION_NAME


class TokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it later: never its secret."""

    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "read_only",
            "actions",
            "active",
        ]
        read_only_fields = fields

    def get_active(self, token: ApiToken) -> bool:
        return token.is_active()


class RetiredField(serializers.Field):
    """An input the API no longer takes: refused with a pointer to what replaced it, rather
    than ignored (a client sending it would otherwise get something it did not ask for). The
    schema states that it must be left out."""

    def __init__(self, *, instead: str, **kwargs):
        self.instead = instead
        super().__init__(required=False, write_only=True, **kwargs)

    def openapi_schema(self) -> dict:
        return {"not": {}, "deprecated": True, "description": f"Retired: use `{self.instead}`."}

    def to_internal_value(self, data):
        raise serializers.ValidationError(f"No longer taken; give `{self.instead}` instead.")


class ExpiryField(serializers.IntegerField):
    """Days from now until the token stops working, within API_TOKEN_MAX_DAYS (read when the
    schema is, so the schema states the installation's own limit)."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, **kwargs)

    def to_internal_value(self, data):
        days = super().to_internal_value(data)
        if days > settings.API_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(
                f"A token lives at most {settings.API_TOKEN_MAX_DAYS} days."
            )
        return days

    def openapi_schema(self) -> dict:
        return {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.API_TOKEN_MAX_DAYS,
            "description": "Days until the token stops working; by default "
            f"{settings.API_TOKEN_DEFAULT_DAYS} (at most {settings.API_TOKEN_MAX_DAYS}). A token "
            "created through another token may not outlive it (403).",
        }


class TokenCreateSerializer(BodySerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = ExpiryField(required=False)
    expires_at = RetiredField(instead="expires_in_days")
    read_only = serializers.BooleanField(default=False)
    actions = serializers.ListField(
        # The schema states the service's own rule for an action name.
        child=serializers.RegexField(
            ACTION_NAME,
            max_length=100,
            error_messages={
                "invalid": "Not an action name; actions look like 'approvals.approve'."
            },
        ),
        required=False,
        default=list,
        help_text='If given, the only actions allowed, e.g. ["approvals.approve"].',
    )

    def validate(self, attrs):
        """The service's arguments: the expiry as a moment (None: the default)."""
        days = attrs.pop("expires_in_days", None)
        attrs["expires_at"] = None if days is None else timezone.now() + timedelta(days=days)
        return attrs


class CreatedTokenSerializer(TokenSerializer):
    """The creation response: the only time the token itself is shown."""

    token = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Shown once; store it now. Null in a replay of the call by its "
        "Idempotency-Key: the secret is not kept (revoke the token and create another).",
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
