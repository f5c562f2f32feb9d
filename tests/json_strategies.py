"""Hypothesis strategies for JSON documents, shared by the tests of every strict JSON reader."""

from __future__ import annotations

from hypothesis import strategies as st

# Any JSON value: integers past 64 bits and floats of every size (where parsers disagree),
# short text, nested lists and objects; small enough that hundreds of examples run in seconds.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=15,
)
