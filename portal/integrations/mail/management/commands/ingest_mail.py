"""Feed one .eml file through the path polled mail takes: stored once, then read into an event."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.integrations.mail import selectors, services
from portal.integrations.mail.errors import MailRefused
from portal.integrations.mail.models import MailMessage


class Command(BaseCommand):
    help = "Store an .eml file as if a mailbox had received it, and read it into an event."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The message, as an .eml file.")
        parser.add_argument(
            "--mailbox", default="carrier", help="The mailbox it arrived in (default: carrier)."
        )

    def handle(self, *args, file: str, mailbox: str, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"There is no file {file}.")
        try:
            box = selectors.mailbox_named(mailbox)
            stored = services.message_receive(mailbox=box, raw=path.read_bytes())
        except MailRefused as refusal:
            raise CommandError(str(refusal)) from None
        if not stored.created:
            message = MailMessage.objects.select_related("case").get(pk=stored.message.pk)
            self.stdout.write(f"Already stored as {message.reference}: {_outcome(message)}")
            return
        # Read at once, so the outcome can be told; the task enqueued as well then finds it read.
        message = services.message_process(message_id=stored.message.pk)
        message = MailMessage.objects.select_related("case").get(pk=message.pk)
        self.stdout.write(f"Stored as {message.reference}: {_outcome(message)}")


def _outcome(message: MailMessage) -> str:
    if message.case is not None:
        return f"{message.get_status_display()} ({message.case.reference} {message.case.title})."
    if message.status == "triage":
        return f"waiting in triage. {message.triage.reason}"
    return f"{message.get_status_display()}."
