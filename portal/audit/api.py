"""The audit ledger over the API: events in the caller's audit scope, and exports.

Reads go through portal.audit.selectors, so an event the caller may not audit answers 404;
exports go through portal.audit.export.audit_export, exactly as `manage.py export_audit` does,
so the file, its manifest and the ledger's record of the export are the same whichever way it
was asked for. Token actions are `audit-events.<action>` and `audit-export.list`.
"""

import base64
import json
import tempfile

import django_filters
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import FileResponse, Http404
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from portal.api.authentication import TokenAuthentication
from portal.api.filters import InstantFilter, StrictFilterSet
from portal.audit import selectors
from portal.audit.export import audit_export
from portal.audit.models import AuditEvent
from portal.audit.selectors import ExportFilters
from portal.audit.serializers import AuditEventSerializer, ExportQuerySerializer
from portal.core.ids import ID_PATTERN

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
DOWNLOAD = (
    "The export file, as `format` asks (an attachment). Headers: `Tollgate-Export-Manifest` "
    "(the manifest, base64 JSON) and `Repr-Digest` (the file's SHA-256)."
)
# Kept in memory up to this size, then in a temporary file: an export of any size fits.
SPOOL_BYTES = 4 * 1024 * 1024


class SigningUnavailable(APIException):
    """No key to sign the manifest with: the installation must be configured first."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "signing_unavailable"


class AuditEventFilter(StrictFilterSet):
    object_type = django_filters.CharFilter(help_text="e.g. approvals.approvalrequest")
    object_id = django_filters.CharFilter()
    actor = django_filters.CharFilter(method="filter_actor", help_text="Username of who acted.")
    action = django_filters.CharFilter(
        method="filter_action", help_text="An action (`request.approved`) or family (`request`)."
    )
    site = django_filters.CharFilter(field_name="site__code", help_text="Site code.")
    region = django_filters.CharFilter(method="filter_region", help_text="Region code.")
    at_after = InstantFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive.")
    at_before = InstantFilter(field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive.")

    class Meta:
        model = AuditEvent
        fields = []

    def filter_actor(self, queryset, name, value):
        return queryset.filter(Q(actor_label=value) | Q(actor__username=value))

    def filter_action(self, queryset, name, value):
        family = value.rstrip(".")
        return queryset.filter(Q(action=value) | Q(action__startswith=f"{family}."))

    def filter_region(self, queryset, name, value):
        return queryset.filter(
            Q(site__region__code=value) | Q(site__isnull=True, context__region=value)
        )


class AuditEventViewSet(viewsets.GenericViewSet):
    """The events the caller may audit, in ledger order."""

    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter
    queryset = AuditEvent.objects.none()  # the model, for the schema; rows: get_queryset
    serializer_class = AuditEventSerializer
    lookup_value_regex = ID_PATTERN
    cursor_ordering = ("sequence",)

    def get_queryset(self):
        # Sealed events only: the numbered chain pages by sequence, and an event pending its
        # seal gets its number within AUDIT_MAX_SEAL_SECONDS.
        return (
            selectors.events_visible_to(self.request.user)
            .filter(sequence__isnull=False)
            .order_by("sequence")
            .select_related("site", "on_behalf_of")
        )

    @extend_schema(
        summary="List audit events",
        description="The events at the sites you may audit (and those about your regions, or "
        "about the whole company if you audit every site), oldest first. Only sealed events "
        "are listed: one recorded moments ago appears once the sequencer has numbered it "
        "(within AUDIT_MAX_SEAL_SECONDS).",
        responses={200: AuditEventSerializer(many=True)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)

    @extend_schema(
        summary="One audit event",
        responses={200: AuditEventSerializer},
    )
    def retrieve(self, request, pk=None):
        event = self.get_queryset().filter(pk=int(pk)).first()
        if event is None:
            raise Http404("No such audit event.")
        return Response(AuditEventSerializer(event).data)


class AuditExportViewSet(viewsets.ViewSet):
    """A download of the events the caller may audit, with its manifest in the headers.

    An export is recorded in the ledger, so this GET changes something: it answers API tokens
    only, never the browser's session, which a link on another site could ride (a GET carries
    no CSRF token). People export from the audit page, whose form posts with one.
    """

    authentication_classes = [TokenAuthentication]
    # Documented besides the usual problems: no signing key configured yet.
    problem_statuses = (503,)

    # The file is the response whatever the client says it accepts; errors are problems.
    def perform_content_negotiation(self, request, force=False):
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    @extend_schema(
        summary="Export audit events",
        description=(
            "Downloads the events you may audit that match the filters, as CSV or JSON Lines "
            "(the encodings are documented in portal/audit/export.py), exactly as "
            "`manage.py export_audit` writes them, and records the export in the ledger. The "
            "manifest (filters, row count, first and last sequence and hash, the file's "
            "SHA-256) comes base64-encoded JSON in the `Tollgate-Export-Manifest` header and "
            "the file's digest in `Repr-Digest`; check the pair with "
            "portal/audit/verify_export.py. Naming a site or region you may not audit is "
            "refused (403) and the refusal is recorded. Because it records itself, this call "
            "takes an API token only: the browser's session is not accepted (401)."
        ),
        parameters=[ExportQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description=DOWNLOAD),
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.BINARY, description=DOWNLOAD),
        },
    )
    def list(self, request):
        query = ExportQuerySerializer(data=_query_dict(request.query_params))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = ExportFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            sites=tuple(sorted({code.upper() for code in data["site"]})),
            region=data["region"].upper(),
            kind=data["kind"].strip(),
            actor=data["actor"].strip(),
        )
        fmt = data["format"]
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (response closes it)
        manifest_out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        filename = f"audit-{timezone.now():%Y%m%dT%H%M%SZ}.{fmt}"
        try:
            manifest = audit_export(
                actor=request.user,
                filters=filters,
                fmt=fmt,
                out=out,
                manifest_out=manifest_out,
                data_name=filename,
            )
        except ImproperlyConfigured as error:
            out.close()
            raise SigningUnavailable(str(error)) from None
        except BaseException:
            out.close()
            raise
        finally:
            manifest_out.close()
        out.seek(0)
        # The ledger event recording the export makes the name unique, even within a second.
        number = manifest["recorded_as_sequence"] or "-pending"
        unique = filename.replace(f".{fmt}", f"-export{number}.{fmt}")
        response = FileResponse(
            out, as_attachment=True, filename=unique, content_type=CONTENT_TYPES[fmt]
        )
        digest = base64.b64encode(bytes.fromhex(manifest["data_sha256"])).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
        encoded = json.dumps(manifest, ensure_ascii=True, separators=(",", ":")).encode()
        response["Tollgate-Export-Manifest"] = base64.b64encode(encoded).decode()
        return response


def _query_dict(params) -> dict:
    """The query string with `site` kept as the list of its repetitions."""
    data = {key: params.get(key) for key in params}
    data["site"] = params.getlist("site")
    return data
