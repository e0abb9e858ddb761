"""What an SMS costs: its encoding and how many segments carriers split it into.

A single SMS carries 140 octets: 160 GSM-7 septets or 70 UCS-2 code units. A longer text
is sent as a concatenated message whose parts each give up 6 octets to the header that
reassembles them, leaving 153 septets or 67 code units per part. GSM-7 (3GPP TS 23.038,
the "GSM 03.38" default alphabet) is used when every character is in the default table or
its extension table; one character outside them makes the whole message UCS-2.

- An extension character (€ [ ] { } ~ ^ | \\ and the form feed) is an escape septet
  followed by its own, so it counts two, and carriers never split the pair across parts:
  a pair that would straddle a boundary starts the next part.
- UCS-2 is UTF-16 here, as carriers and handsets treat it: a character outside the Basic
  Multilingual Plane (most emoji) is a surrogate pair of two code units, never split.

Pure functions, on every send and every inbound message: the common case (a text in the
default table) is one regular-expression scan in C.
"""

import re
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# The default alphabet, in table order (0x1B, the escape, is not a character of its own).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"

_NOT_BASIC = re.compile(f"[^{re.escape(GSM7_BASIC)}]")
_NOT_GSM7 = re.compile(f"[^{re.escape(GSM7_BASIC + GSM7_EXTENSION)}]")
_EXTENSION = re.compile(f"[{re.escape(GSM7_EXTENSION)}]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text travels as SMS."""

    encoding: str  #: GSM7 or UCS2
    segments: int  #: parts carriers bill; 0 for an empty text
    units: int  #: septets (GSM-7) or UTF-16 code units (UCS-2)


def sms_segments(text: str) -> Segmentation:
    """The encoding and segment count of `text` sent as SMS, as carriers count them."""
    if _NOT_BASIC.search(text) is None:
        n = len(text)
        return Segmentation(GSM7, _parts_even(n, GSM7_SINGLE, GSM7_PART), n)
    if _NOT_GSM7.search(text) is None:
        return _wide_aware(GSM7, text, _EXTENSION, GSM7_SINGLE, GSM7_PART)
    return _wide_aware(UCS2, text, _ASTRAL, UCS2_SINGLE, UCS2_PART)


def _parts_even(units: int, single: int, part: int) -> int:
    if units <= single:
        return 1 if units else 0
    return -(-units // part)


def _wide_aware(encoding: str, text: str, wide: re.Pattern, single: int, part: int) -> Segmentation:
    """Characters matched by `wide` take two units and may not straddle two parts."""
    # Unit offset of each wide character: its index plus the wide characters before it.
    starts = {m.start() + i for i, m in enumerate(wide.finditer(text))}
    units = len(text) + len(starts)
    if units <= single or not starts:
        return Segmentation(encoding, _parts_even(units, single, part), units)
    parts, start = 0, 0
    while start < units:
        end = start + part
        # A wide character beginning on the part's last unit would spill into the next
        # part: the part ends one unit early and the character starts the next.
        if end < units and end - 1 in starts:
            end -= 1
        parts += 1
        start = end
    return Segmentation(encoding, parts, units)


# Twilio's Smart Encoding table (docs: "List of characters replaced by Smart Encoding"):
# look-alikes from word processors and phone keyboards, each replaced by the GSM-7
# character(s) it resembles. Control characters and tabs are not in it: a body keeps
# them, and they make it UCS-2.
_SMART_GROUPS = {
    '"': "\u00ab\u00bb\u201c\u201d\u201e\u201f\u02ba\u02ee\u275d\u275e\u301d\u301e\uff02",
    "'": (
        "\u2018\u2019\u201b\u02b9\u02bb\u02bc\u02bd\u02c8\u02ca\u02cb\u00b4\u0060"
        "\u275b\u275c\u0313\u0314\ufe10\ufe11\uff07"
    ),
    ",": "\u201a\u0326\ufe50\ufe51\uff0c\uff64\u3001",
    "-": "\u2010\u2013\u2014\u2015\u2043\u2022\u23bc\u23bd\ufe63\uff0d",
    " ": "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\u2028\u2029",
    "": "\u200b\u2060\ufeff",
    "/": "\u00f7\u29f8\u0337\u0338\u2044\u2215\uff0f",
    "\\": "\u29f9\u29f5\u20e5\ufe68\uff3c",
    "_": "\u0332\uff3f",
    "|": "\u20d2\u20d3\u2223\uff5c\u23b8\u23b9\u23d0\u239c\u239f",
    "@": "\ufe6b\uff20",
    "$": "\ufe69\uff04",
    "!": "\u01c3\ufe15\ufe57\uff01",
    "#": "\ufe5f\uff03",
    "%": "\ufe6a\uff05",
    "&": "\ufe60\uff06",
    "(": "\u2768\u276a\ufe59\uff08\u27ee\u2985",
    ")": "\u2769\u276b\ufe5a\uff09\u27ef\u2986",
    "*": (
        "\u204e\u2217\u229b\u2722\u2723\u2724\u2725\u2731\u2732\u2733\u273a\u273b"
        "\u273c\u273d\u2743\u2749\u274a\u274b\u29c6\ufe61\uff0a"
    ),
    "+": "\u02d6\ufe62\uff0b",
    ".": "\u3002\ufe52\uff0e\uff61",
    ":": "\u02d0\u02f8\u2982\ua789\ufe13\uff1a",
    ";": "\u204f\ufe14\ufe54\uff1b",
    "<": "\ufe64\uff1c\u2039",
    "=": "\u0347\ua78a\ufe66\uff1d",
    ">": "\ufe65\uff1e\u203a",
    "?": "\ufe16\ufe56\uff1f",
    "^": "\u02c6\u0302\uff3e\u1dcd",
    "{": "\u2774\ufe5b\uff5b",
    "}": "\u2775\ufe5c\uff5d",
    "[": "\uff3b",
    "]": "\uff3d",
    "~": "\u02dc\u02f7\u0303\u0330\u0334\u223c\uff5e",
    "...": "\u2026",
    "!!": "\u203c",
    "1/4": "\u00bc",
    "1/2": "\u00bd",
    "3/4": "\u00be",
}
# Fullwidth digits and capitals, and the small capitals (U+1D00 and kin), as their letters.
_SMART_LETTERS = {chr(0xFF10 + i): str(i) for i in range(10)} | {chr(0xFF21 + i): chr(65 + i) for i in range(26)}
_SMALL_CAPITALS = (  # A to Z; the table has no small capital Q or X
    "\u1d00\u0299\u1d04\u1d05\u1d07\ua730\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d"
    "\u0274\u1d0f\u1d18\0\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\0\u028f\u1d22"
)
_SMART_LETTERS |= {c: chr(65 + i) for i, c in enumerate(_SMALL_CAPITALS) if c != "\0"}

SMART_ENCODING = {ord(c): gsm for gsm, chars in _SMART_GROUPS.items() for c in chars} | {
    ord(c): gsm for c, gsm in _SMART_LETTERS.items()
}
_SMART_TABLE = str.maketrans(SMART_ENCODING)


def smart_encode(text: str) -> str:
    """`text` with each look-alike of Twilio's Smart Encoding table replaced by its GSM-7
    equivalent; characters with no equivalent (emoji, other scripts) are kept."""
    if _NOT_GSM7.search(text) is None:
        return text
    return text.translate(_SMART_TABLE)


def message_segmentation(message_type: str, body: str) -> tuple[str, int | None]:
    """(encoding, segments) as stored on a message: an SMS or an MMS counts its text (an
    MMS is billed as one message; its text counts as it would travel as SMS), other
    channels have neither."""
    if message_type not in ("sms", "mms"):
        return "", None
    counted = sms_segments(body)
    return counted.encoding, counted.segments
