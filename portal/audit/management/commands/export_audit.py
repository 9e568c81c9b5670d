"""`manage.py export_audit`: write the audit events a named person may audit, with a manifest."""

from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.audit.export import WRITERS, audit_export, default_workers
from portal.audit.selectors import ExportFilters


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: write it as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "Export the audit events in a person's audit scope as CSV or JSON Lines, with a "
        "manifest signed by the installation's key at OUTPUT.manifest.json; check both with "
        "portal/audit/verify_export.py OUTPUT OUTPUT.manifest.json --public-key KEY."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as", dest="username", help="the auditor accountable for the export (required)"
        )
        parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (UTC), included")
        parser.add_argument(
            "--site", dest="sites", action="append", default=[], help="site code; repeatable"
        )
        parser.add_argument("--region", default="", help="region code")
        parser.add_argument(
            "--kind", default="", help="an action (request.approved) or its family (request.)"
        )
        parser.add_argument("--actor", default="", help="username of whoever acted")
        parser.add_argument("--format", dest="fmt", choices=sorted(WRITERS), required=True)
        parser.add_argument("--output", required=True, help="data file to write")
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="processes formatting a large export on PostgreSQL (default: one per CPU, "
            "at most 4; 1 reads in this process only)",
        )

    def handle(self, *args, **options):
        actor = self._actor(options["username"])
        filters = self._filters(options)
        output = Path(options["output"])
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        manifest_path = output.with_name(output.name + ".manifest.json")
        if not output.parent.is_dir():
            raise CommandError(f"No directory {output.parent} to write the export into.")
        # Written under temporary names and renamed at the end, so that a refused or failed
        # export leaves no file behind and never clobbers an earlier one.
        partial = output.with_name(output.name + ".partial")
        partial_manifest = manifest_path.with_name(manifest_path.name + ".partial")
        try:
            with partial.open("wb") as out, partial_manifest.open("wb") as manifest_out:
                manifest = audit_export(
                    actor=actor,
                    filters=filters,
                    fmt=options["fmt"],
                    out=out,
                    manifest_out=manifest_out,
                    data_name=output.name,
                    workers=options["workers"],
                )
        except BaseException as error:
            partial.unlink(missing_ok=True)
            partial_manifest.unlink(missing_ok=True)
            if isinstance(error, PermissionDenied | ValidationError):
                raise CommandError(f"Export refused: {_message(error)}") from None
            if isinstance(error, ImproperlyConfigured):
                raise CommandError(f"Export not possible: {error}") from None
            raise
        partial.replace(output)
        partial_manifest.replace(manifest_path)
        self.stdout.write(
            f"Exported {manifest['row_count']} events to {output} "
            f"(manifest {manifest_path}, signed with key {manifest['signature']['key_id']}); "
            f"recorded as event #{manifest['recorded_as_sequence']}."
        )

    def _actor(self, username):
        if not username:
            raise CommandError("Name the accountable auditor with --as USERNAME.")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        return user

    def _filters(self, options) -> ExportFilters:
        date_from = _day(options["date_from"]) if options["date_from"] else None
        date_to = _day(options["date_to"]) if options["date_to"] else None
        if date_from and date_to and date_to < date_from:
            raise CommandError("--to must not come before --from.")
        return ExportFilters(
            date_from=date_from,
            date_to=date_to,
            sites=tuple(sorted({code.strip().upper() for code in options["sites"]})),
            region=options["region"].strip().upper(),
            kind=options["kind"].strip(),
            actor=options["actor"].strip(),
        )


def _message(error) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)
