"""`manage.py create_api_token <username>`: make an API token and print it, once."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.api import services


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print it. It is not stored and cannot be shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="Created on the command line")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until it expires (default 90)."
        )
        parser.add_argument("--read-only", action="store_true", help="GET requests only.")
        parser.add_argument(
            "--action",
            action="append",
            default=[],
            dest="actions",
            help="Allow only this action, e.g. approvals.approve; repeat for more.",
        )

    def handle(self, *args, username, name, expires_days, read_only, actions, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        expires_at = None
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError("--expires-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=expires_days)
        try:
            token, secret = services.token_create(
                actor=None,
                user=user,
                name=name,
                expires_at=expires_at,
                read_only=read_only,
                actions=actions,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stderr.write(
            f"Token {token.prefix}… for {username}, expires {token.expires_at:%Y-%m-%d %H:%M} UTC."
            " Store it now: it cannot be shown again."
        )
        self.stdout.write(secret)
