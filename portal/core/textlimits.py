"""How much free text one field may hold, wherever it comes from (forms, API, e-mail links).

The forms cap their fields at these lengths; the API's serializers state the same caps (so the
schema shows them), and the services check them again, so that no entry point stores more.
"""

from django.core.exceptions import ValidationError

# A comment or reason given with a decision, or a note on a case.
COMMENT_MAX = 4000
# The justification of a request.
JUSTIFICATION_MAX = 8000


def refuse_overlong(limit: int, **texts: str | None) -> None:
    """A ValidationError naming each of `texts` longer than `limit` characters."""
    errors = {
        field: f"At most {limit} characters, please (this has {len(text)})."
        for field, text in texts.items()
        if text is not None and len(text) > limit
    }
    if errors:
        raise ValidationError(errors)
