"""Errors the mail services raise besides Django's own."""


class MailRefused(ValueError):
    """The message cannot be taken (too big, not a mail, no such mailbox); the text says why."""
