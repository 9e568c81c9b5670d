"""The inbox filter's select boxes, written out in Python, read exactly as Django's own."""

from types import SimpleNamespace

import pytest
from django import forms

from portal.inbox.forms import InboxFilterForm, QuickSelect

SITES = [
    SimpleNamespace(pk=1, code="A1", name='Gothenburg <north> & "harbour"'),
    SimpleNamespace(pk=2, code="B'2", name="Düsseldorf"),
]


def _with_djangos_select(query: dict) -> InboxFilterForm:
    form = InboxFilterForm(query, sites=SITES)
    for field in form.fields.values():
        if isinstance(field.widget, QuickSelect):
            field.widget = forms.Select(attrs=field.widget.attrs, choices=field.widget.choices)
    form.is_valid()
    return form


@pytest.mark.parametrize(
    "query",
    [{}, {"site": "2", "kind": "purchase", "queue": "finance"}, {"site": "99", "kind": "x"}],
)
def test_the_filter_select_boxes_render_as_djangos_select(query):
    form = InboxFilterForm(query, sites=SITES)
    form.is_valid()
    reference = _with_djangos_select(query)

    for name in ("site", "kind", "queue"):
        assert isinstance(form.fields[name].widget, QuickSelect)
        assert str(form[name]) == str(reference[name])
    assert "Gothenburg &lt;north&gt; &amp; &quot;harbour&quot;" in str(form["site"])
    assert '<optgroup label="Approval requests">' in str(form["kind"])
