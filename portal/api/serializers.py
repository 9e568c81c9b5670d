"""What the token endpoints read and write. A secret appears once, in the creation response."""

from rest_framework import serializers

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


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(
        required=False,
        help_text="When the token stops working; by default 90 days from now (configurable).",
    )
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
