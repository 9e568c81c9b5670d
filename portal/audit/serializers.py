"""How the audit ledger reads over the API: each event with every field its hash covers.

`hash` and `prev_hash` are given so that an auditor can check the chain from what the API
returns; portal/audit/chain.py documents the canonical form they are computed over.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.audit.export import WRITERS
from portal.core.serializers import QuerySerializer


@extend_schema_field({"type": "object", "additionalProperties": {}, "nullable": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object as recorded, or null."""


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sequence = serializers.IntegerField(help_text="Position in the ledger, from 1, no gaps.")
    at = serializers.DateTimeField()
    action = serializers.CharField(help_text="What happened, e.g. `decision.approve`.")
    actor = serializers.CharField(
        source="actor_label", help_text="Who acted, as named then; `system` for Tollgate."
    )
    actor_id = serializers.IntegerField(allow_null=True)
    on_behalf_of = serializers.CharField(
        source="on_behalf_of.username", allow_null=True, help_text="Whom the actor stood in for."
    )
    object_type = serializers.CharField(help_text="app_label.model, e.g. approvals.approvalrequest")
    object_id = serializers.CharField()
    object_reference = serializers.CharField(help_text="Human reference, e.g. AR-000042.")
    site = serializers.CharField(source="site.code", allow_null=True)
    policy_version = serializers.CharField(source="policy_version_label")
    before = JSONObjectField(help_text="State before the change; null when created.")
    after = JSONObjectField(help_text="State after the change; null when removed.")
    comment = serializers.CharField()
    context = JSONObjectField(
        help_text="Where it came from: client address, user agent, correlation id or task."
    )
    prev_hash = serializers.CharField(help_text="The previous event's hash; empty for the first.")
    hash = serializers.CharField(help_text="SHA-256 over this event's canonical form.")


class ExportQuerySerializer(QuerySerializer):
    format = serializers.ChoiceField(
        choices=sorted(WRITERS), help_text="`csv` or `jsonl` (JSON Lines)."
    )
    # Filters, like the events list's `at_after` and `at_before`: a range that ends before it
    # starts matches no event, so its export is empty (and its manifest says so).
    date_from = serializers.DateField(required=False, help_text="First day (UTC), YYYY-MM-DD.")
    date_to = serializers.DateField(
        required=False,
        help_text="Last day (UTC), included. A range that ends before it starts matches no "
        "event: the export is then empty.",
    )
    site = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9-]{1,5}$"),
        required=False,
        default=list,
        help_text="Site codes; repeat the parameter for several.",
    )
    region = serializers.RegexField(r"^[A-Za-z0-9-]{1,8}$", required=False, default="")
    kind = serializers.CharField(
        required=False, default="", help_text="An action (`request.approved`) or a family."
    )
    actor = serializers.CharField(required=False, default="", help_text="Who acted (username).")
