"""The API's JSON in and out by orjson (config/parsers.py, config/renderers.py): the same
bytes and the same data as DRF's own renderer and parser, and the same refusals."""

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.functional import lazy
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError

from config.parsers import JSONParser
from config.renderers import JSONRenderer
from messaging.models import Message

CASES = [
    {"id": 1, "body": "Hello ☃ — “quoted”", "attachments": [], "error": None},
    {"at": datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=UTC)},
    {"at": datetime(2026, 12, 7, 11, 0, tzinfo=timezone(timedelta(hours=-5)))},
    {"price": Decimal("0.0075"), "count": 2**40, "ratio": 0.5, "ok": True},
    {"status": Message.Status.QUEUED, "type": Message.Type.SMS},
    {"lazy": lazy(lambda: "translated later", str)()},
    {"separators": "line\u2028paragraph\u2029end"},
    {"nested": [[{"a": [1, {"b": None}]}]], "empty": {}},
    {"huge": 2**70},
    [1, "two", None],
]


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_the_renderer_writes_what_drfs_writes(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_an_indent_asked_for_is_honoured_as_drf_does():
    data = {"a": [1, 2]}
    media = "application/json; indent=2"

    assert (
        JSONRenderer().render(data, media)
        == renderers.JSONRenderer().render(data, media)
        == b'{\n  "a": [\n    1,\n    2\n  ]\n}'
    )


# Text the API stores: no NUL, no lone surrogate (the parser refuses both, by design).
text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=10,
)


@given(json_values)
def test_any_json_renders_as_drf_renders_it(data):
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


@given(st.dictionaries(text, json_values, max_size=4))
def test_any_valid_body_parses_as_drf_parses_it(data):
    body = renderers.JSONRenderer().render(data)

    assert JSONParser().parse(io.BytesIO(body)) == parsers.JSONParser().parse(io.BytesIO(body))


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": NaN}', b"", b'{"a": 1} x', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_refused(raw):
    with pytest.raises(ParseError):
        JSONParser().parse(io.BytesIO(raw))
