"""The fast serialisation the verifier uses gives exactly the canonical bytes of the chain."""

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.audit import chain

text = st.text(max_size=40)  # any code point, quotes, backslashes, controls, emoji
ids = st.none() | st.integers(min_value=1, max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
objects = st.none() | st.dictionaries(text, json_values, max_size=5)


@settings(max_examples=400)
@given(
    sequence=st.integers(min_value=1, max_value=2**62),
    at=st.datetimes(),
    action=text,
    actor_id=ids,
    actor=text,
    on_behalf_of_id=ids,
    object_type=text,
    object_id=text,
    object_reference=text,
    site_id=ids,
    policy_version=text,
    before=objects,
    after=objects,
    comment=text,
    context=st.dictionaries(text, json_values, max_size=5),
    prev_hash=text,
)
def test_canonical_row_is_byte_for_byte_the_canonical_form(**fields):
    from datetime import UTC

    fields["at"] = chain.timestamp(fields["at"].replace(tzinfo=UTC))
    values = tuple(fields[name] for name in chain.FIELDS)

    assert chain.canonical_row(values) == chain.canonical(fields)
