"""Encoding and segments of an SMS, held to the examples carriers publish, the boundaries,
and an independent GSM 03.38 codec (gsm0338) with Python's own UTF-16 codec."""

import timeit

import gsm0338
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from messaging.segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, SMART_ENCODING, UCS2, smart_encode, sms_segments

_CODEC = gsm0338.Codec()


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("Hello! This is a test SMS message.", GSM7, 1),
        ("a" * 160, GSM7, 1),
        ("a" * 161, GSM7, 2),
        ("a" * 306, GSM7, 2),  # 153 * 2
        ("a" * 307, GSM7, 3),
        ("a" * 1530, GSM7, 10),
        ("a" * 1531, GSM7, 11),
        ("é" * 70, GSM7, 1),  # é, è, ñ, ü... are in the default alphabet
        ("ç" * 70, UCS2, 1),  # ...ç is not (only Ç is)
        ("ç" * 71, UCS2, 2),
        ("ç" * 134, UCS2, 2),  # 67 * 2
        ("ç" * 135, UCS2, 3),
        ("€" * 80, GSM7, 1),  # 160 septets
        ("€" * 81, GSM7, 2),
        ("[]{}~^|\\\f€", GSM7, 1),
        ("Price: 5€", GSM7, 1),
        ("😀", UCS2, 1),
        ("😀" * 35, UCS2, 1),  # 70 code units
        ("😀" * 36, UCS2, 2),
        ("a" * 69 + "😀", UCS2, 2),  # 71 code units
        ("", GSM7, 0),
    ],
)
def test_encoding_and_segments_of_known_texts(text, encoding, segments):
    counted = sms_segments(text)

    assert (counted.encoding, counted.segments) == (encoding, segments)


def test_a_single_emoji_turns_a_one_segment_text_into_three():
    text = ("Your order has shipped and will arrive on Tuesday between 9am and 5pm. " * 3)[:150]

    with_emoji = sms_segments(text + "🙂")

    assert (sms_segments(text).encoding, sms_segments(text).segments) == (GSM7, 1)
    assert (with_emoji.encoding, with_emoji.units, with_emoji.segments) == (UCS2, 152, 3)  # 67 + 67 + 18


def test_an_extension_character_on_a_part_boundary_starts_the_next_part():
    # 306 septets fill two parts of 153 exactly, unless the pair straddles the boundary.
    straddling = "a" * 152 + "€" + "a" * 152  # € on septets 153-154: it moves to part two
    fitting = "a" * 151 + "€" + "a" * 153  # € on septets 152-153: it ends part one

    assert sms_segments(straddling).units == 306
    assert sms_segments(straddling).segments == 3
    assert sms_segments(fitting).units == 306
    assert sms_segments(fitting).segments == 2


def test_a_surrogate_pair_on_a_part_boundary_starts_the_next_part():
    straddling = "ж" * 66 + "😀" + "ж" * 66  # 134 code units, but the pair may not split at 67
    fitting = "ж" * 65 + "😀" + "ж" * 67

    assert sms_segments(straddling).units == sms_segments(fitting).units == 134
    assert sms_segments(straddling).segments == 3
    assert sms_segments(fitting).segments == 2


def test_an_extension_character_counts_two_within_one_segment():
    assert sms_segments("a" * 158 + "€").segments == 1  # 160 septets
    assert sms_segments("a" * 159 + "€").segments == 2  # 161


def test_a_lone_escape_is_not_text_and_makes_the_message_ucs2():
    # 0x1B only introduces an extension character in GSM-7; sent alone it would eat the
    # next character, so a body carrying it must go as UCS-2.
    assert sms_segments("a\x1bb").encoding == UCS2


# --- Held to an independent implementation -------------------------------------------

_GSM_TEXT = [c for c in GSM7_BASIC] + [c for c in GSM7_EXTENSION]
_OTHER = ["ç", "ж", "“", "—", "…", "\t", "中", "😀", "🏽", "𝄞", "\u00a0"]
_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(_GSM_TEXT),
        st.sampled_from(_OTHER),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1b"),
    ),
    max_size=700,
)
# Mostly-GSM texts of boundary lengths, with wide characters scattered in.
_long_gsm = st.builds(
    lambda n, ext, at: ("a" * n)[:at] + ext + ("a" * n)[at:],
    st.integers(150, 1600),
    st.sampled_from(["", "€", "{}", "€€€", "😀", "^😀"]),
    st.integers(0, 1600),
)


def _parts_of(atoms: list[int], single: int, part: int) -> int:
    """Pack atoms (1 or 2 units each, never split) into parts, as a carrier does."""
    total = sum(atoms)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, room = 1, part
    for size in atoms:
        if size > room:
            parts, room = parts + 1, part
        room -= size
    return parts


def _reference(text: str) -> tuple[str, int, int]:
    """(encoding, segments, units) from gsm0338's encoder and Python's UTF-16 codec."""
    try:
        octets, _ = _CODEC.encode(text)
    except UnicodeEncodeError:
        pass
    else:
        atoms, i = [], 0
        while i < len(octets):
            size = 2 if octets[i] == 0x1B else 1  # an escape and the character it shifts
            atoms.append(size)
            i += size
        return GSM7, _parts_of(atoms, 160, 153), len(octets)
    utf16 = text.encode("utf-16-be")
    atoms, i = [], 0
    while i < len(utf16):
        size = 2 if 0xD8 <= utf16[i] <= 0xDB else 1  # a high surrogate leads a pair
        atoms.append(size)
        i += 2 * size
    return UCS2, _parts_of(atoms, 70, 67), len(utf16) // 2


@settings(max_examples=400, deadline=None)
@given(st.one_of(_text, _long_gsm))
@example("a" * 152 + "€" + "a" * 152)
@example("ж" * 66 + "😀" + "ж" * 66)
def test_segments_agree_with_an_independent_gsm_codec(text):
    counted = sms_segments(text)

    assert (counted.encoding, counted.segments, counted.units) == _reference(text)


@settings(max_examples=200, deadline=None)
@given(_text)
def test_smart_encoding_leaves_no_look_alike_and_costs_no_more_unless_it_lengthens(text):
    replaced = smart_encode(text)

    assert smart_encode(replaced) == replaced
    assert not set(map(ord, replaced)) & SMART_ENCODING.keys()
    if len(replaced) <= len(text):  # "…" becomes "...": three septets for one code unit
        assert sms_segments(replaced).segments <= sms_segments(text).segments


# --- Smart encoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("\u201cHello\u201d", '"Hello"'),
        ("it\u2019s \u2018fine\u2019", "it's 'fine'"),
        ("wait\u2026", "wait..."),
        ("9\u201317 \u2014 today", "9-17 - today"),
        ("a\u00a0b\u2009c\u3000d", "a b c d"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("\uff21\uff22\uff23 \uff11\uff12\uff13", "ABC 123"),
        ("\u2022 item", "- item"),
        ("\u00bd price", "1/2 price"),
        ("emoji stays 😀", "emoji stays 😀"),
        ("plain text", "plain text"),
    ],
)
def test_smart_encoding_replaces_look_alikes(text, sent):
    assert smart_encode(text) == sent


def test_smart_encoding_brings_curly_quotes_back_to_gsm7():
    text = "\u201cYour table\u2019s ready\u201d \u2014 see you soon\u2026 " * 3

    assert sms_segments(text).encoding == UCS2
    assert sms_segments(smart_encode(text)).encoding == GSM7
    assert sms_segments(smart_encode(text)).segments < sms_segments(text).segments


def test_counting_a_text_takes_microseconds_and_grows_linearly():
    texts = ["Your code is 123456", "a" * 160, "Price: 5€ [promo] " * 8, "Hi 😀 " * 30, "ж" * 300, "{a} " * 400]

    def seconds(text: str) -> float:
        return min(timeit.repeat(lambda: sms_segments(text), number=200, repeat=5)) / 200

    for text in texts:
        # 1-45 µs on an idle 2-core box, up to ~0.8 ms seen when it was heavily loaded:
        # the bound catches a change of order (a codec call per message), not noise.
        assert seconds(text) < 2e-3, text[:20]
    # Ten times the text, about ten times the time: no part of it is quadratic.
    for unit in ("Price: 5€ [promo] ", "{a} ", "Hi 😀 "):
        short, long = seconds(unit * 8), seconds(unit * 80)
        assert long < 40 * short, (unit, short, long)  # quadratic would be about 100 times
