"""`manage.py odoo_sandbox`: serve the Odoo sandbox in the foreground until interrupted.

The sandbox keeps its data in its own SQLite file (default `var/odoo-sandbox.sqlite3` under
TOLLGATE_VAR_DIR), apart from Tollgate's database, so the demo and the tests talk to
something that behaves like a separate Odoo server. Fault flags set the starting faults;
`POST /sandbox/faults` changes them while it runs.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.integrations.odoo.sandbox.faults import Faults
from portal.integrations.odoo.sandbox.seed import DEMO_DB, seed_demo
from portal.integrations.odoo.sandbox.server import SandboxServer


class Command(BaseCommand):
    help = "Run the Odoo JSON-RPC sandbox (with the demo company when --seed demo)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version` names the Odoo version to imitate, in place of Django's own flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8069, help="0 picks a free port")
        parser.add_argument("--seed", choices=["demo"], help="build the demo company if absent")
        parser.add_argument("--data", type=Path, help="the sandbox's SQLite file")
        parser.add_argument("--reset", action="store_true", help="delete the data file first")
        parser.add_argument(
            "--version",
            "--odoo-version",
            dest="odoo_version",
            default="17.0",
            help="server_version to report, e.g. 19.0 (enables JSON-2)",
        )
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--error-rate", type=float, default=0.0)
        parser.add_argument("--error-status", type=int)
        parser.add_argument("--timeout-rate", type=float, default=0.0)
        parser.add_argument("--hang-seconds", type=float, default=5.0)
        parser.add_argument("--timeout-mode", choices=["answer", "drop"], default="answer")
        parser.add_argument(
            "--access-error-models",
            default="",
            help="comma-separated model names that answer AccessError",
        )
        parser.add_argument("--restart-seconds", type=float, default=2.0)
        parser.add_argument("--fault-seed", type=int)

    def handle(self, *args, **options):
        path = options["data"] or Path(settings.VAR_DIR) / "odoo-sandbox.sqlite3"
        if options["reset"] and path.exists():
            path.unlink()
        if options["seed"] == "demo":
            built = seed_demo(path)
            self.stdout.write("Seeded the demo company." if built else "Demo data kept.")
        elif not path.exists():
            raise CommandError(f"{path.name} does not exist yet: run with --seed demo")
        server = SandboxServer(
            path,
            host=options["host"],
            port=options["port"],
            version=options["odoo_version"],
            faults=self._faults(options),
            verbose=options["verbosity"] > 1,
        ).start()
        self.stdout.write(
            f"Odoo sandbox {server.version} listening on {server.url} "
            f"(database {DEMO_DB}, login admin, API key admin)",
        )
        self.stdout.flush()
        try:
            server.wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping the Odoo sandbox.")

    def _faults(self, options) -> Faults:
        models = [m.strip() for m in options["access_error_models"].split(",") if m.strip()]
        try:
            return Faults(
                latency_ms=options["latency_ms"],
                error_rate=options["error_rate"],
                error_status=options["error_status"],
                timeout_rate=options["timeout_rate"],
                hang_seconds=options["hang_seconds"],
                timeout_mode=options["timeout_mode"],
                access_error_models=models,
                restart_seconds=options["restart_seconds"],
                seed=options["fault_seed"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
