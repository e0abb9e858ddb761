"""The SMS keywords carriers require a sender to honour, as Twilio honours them.

A message whose whole body, trimmed and in any case, is one of these words changes the
writer's consent to hear from the number it wrote to: STOP and its synonyms opt out,
START and its synonyms opt back in, HELP and INFO ask who is writing. "Stop please" or
"STOP!" is a message, not a keyword (carriers and Twilio match the bare word).
"""

from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's defaults for long codes (its REVOKE and OPTOUT came with the FCC's 2025 rule).
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_KEYWORDS = (
    {word: Keyword.OPT_OUT for word in OPT_OUT_WORDS}
    | {word: Keyword.OPT_IN for word in OPT_IN_WORDS}
    | {word: Keyword.HELP for word in HELP_WORDS}
)


def keyword_of(body: str) -> tuple[Keyword, str] | None:
    """The keyword `body` is (and the word as written upper-cased), or None."""
    word = body.strip().upper()
    kind = _KEYWORDS.get(word)
    return (kind, word) if kind is not None else None
