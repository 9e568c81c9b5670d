"""No request page and no exception case page of the fresh demo shows Python data or ISO times.

One seed of the full demo (ninety days of history) serves every page: for each kind of request
and of case in it, one of each state, read by someone who may see it (the auditor over Benelux,
the regional manager elsewhere).
"""

import html
import re
from html.parser import HTMLParser

from django.contrib.auth import get_user_model
from django.urls import reverse

from approvals.models import ApprovalRequest
from exceptions.models import ExceptionCase
from tests.seeded_demo import seed_demo

# The Python repr of a dict or a list of strings: {'a': ..., ['a', ...
PYTHON_DATA = re.compile(r"\{'|\['|': '")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")
# Who reads a region's pages: the auditor audits Benelux (sites.demo); elsewhere its manager.
READER = {"BNL": "auditor", "NOR": "rm.nordics", "UKI": "rm.uki"}


class _VisibleText(HTMLParser):
    """The text a person reads: no tags, no attributes, nothing of <script> or <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def _visible_text(page: str) -> str:
    parser = _VisibleText()
    parser.feed(page)
    return " ".join(parser.parts)


def _one_of_each(model) -> list:
    """One record for every kind and state present, the latest of each."""
    chosen = {}
    for record in model.objects.select_related("site__region").order_by("-pk"):
        chosen.setdefault((record.kind, record.state), record)
    return sorted(chosen.values(), key=lambda record: (record.kind, record.state))


def _offences(page: str) -> list[str]:
    """What a person would see that is Python data or an ISO time: the first of each, in its
    surroundings, and how often it occurs."""
    # Escaped or not, a repr is a repr: read the page with its character references resolved.
    source, text = html.unescape(page), _visible_text(page)
    found = []
    for what, pattern, where in (
        ("Python data", PYTHON_DATA, source),
        ("ISO time", ISO_TIME, text),
    ):
        matches = list(pattern.finditer(where))
        if matches:
            first = matches[0]
            shown = " ".join(where[max(0, first.start() - 40) : first.end() + 80].split())
            found.append(f"{what} ({len(matches)} times), first: …{shown}…")
    return found


def test_no_request_or_case_page_of_the_demo_shows_python_data_or_iso_times(db, client):
    seed_demo()
    people = {user.username: user for user in get_user_model().objects.all()}
    pages = [
        (f"request {r.reference} ({r.kind}, {r.state})", r.site, "approvals:detail", r.pk)
        for r in _one_of_each(ApprovalRequest)
    ] + [
        (f"case {c.pk} ({c.kind}, {c.state})", c.site, "exceptions:detail", c.pk)
        for c in _one_of_each(ExceptionCase)
    ]
    kinds_read = set()
    problems = {}
    for label, site, view, pk in pages:
        client.force_login(people[READER[site.region.code]])
        url = reverse(view, args=[pk])
        response = client.get(url)
        assert response.status_code == 200, (label, url, response.status_code)
        kinds_read.add(label.split(" (")[1].split(",")[0])
        offences = _offences(response.content.decode())
        if offences:
            problems[f"{label} {url}"] = offences

    request_kinds = set(ApprovalRequest.objects.values_list("kind", flat=True))
    case_kinds = set(ExceptionCase.objects.values_list("kind", flat=True))
    assert request_kinds and case_kinds
    assert kinds_read == request_kinds | case_kinds
    assert not problems, "\n".join(
        f"{page}:\n  " + "\n  ".join(offences) for page, offences in problems.items()
    )
