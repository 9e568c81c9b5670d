"""`manage.py ingest_mail FILE.eml --mailbox NAME`: the polled path, fed by hand."""

import pytest
from django.core.management import CommandError, call_command

from portal.integrations.mail.models import MailMessage
from tests.integrations.mail.conftest import SAMPLES


def _ingest(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("ingest_mail", *args, stdout=out)
    return out.getvalue()


def test_a_file_becomes_its_event(mailboxes):
    said = _ingest(str(SAMPLES / "01_carrier_delay_template.eml"), "--mailbox", "carrier")

    assert said.startswith("Stored as MAIL-")
    assert "Shipment AMS/OUT/00042 delayed by the carrier: held at depot" in said


def test_the_same_file_again_is_not_stored_twice(mailboxes):
    path = str(SAMPLES / "11_newsletter.eml")
    _ingest(path)

    said = _ingest(path)

    assert said.startswith("Already stored as MAIL-")
    assert "waiting in triage" in said
    assert MailMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nowhere.eml"], "There is no file nowhere.eml."),
        (
            [str(SAMPLES / "11_newsletter.eml"), "--mailbox", "sales"],
            "There is no mailbox called 'sales'; the mailboxes are: ap, carrier, supplier.",
        ),
        ([__file__], "neither a From nor a Message-ID"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(mailboxes, args, error):
    with pytest.raises(CommandError, match=error.replace(".", r"\.").replace("(", r"\(")):
        _ingest(*args)
    assert not MailMessage.objects.exists()
