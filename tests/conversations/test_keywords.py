import pytest

from conversations.keywords import Keyword, keyword_of


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", (Keyword.OPT_OUT, "STOP")),
        ("  stop \n", (Keyword.OPT_OUT, "STOP")),
        ("Unsubscribe", (Keyword.OPT_OUT, "UNSUBSCRIBE")),
        ("stopall", (Keyword.OPT_OUT, "STOPALL")),
        ("cancel", (Keyword.OPT_OUT, "CANCEL")),
        ("End", (Keyword.OPT_OUT, "END")),
        ("QUIT", (Keyword.OPT_OUT, "QUIT")),
        ("revoke", (Keyword.OPT_OUT, "REVOKE")),
        ("OptOut", (Keyword.OPT_OUT, "OPTOUT")),
        ("start", (Keyword.OPT_IN, "START")),
        ("Yes", (Keyword.OPT_IN, "YES")),
        ("UNSTOP", (Keyword.OPT_IN, "UNSTOP")),
        ("help", (Keyword.HELP, "HELP")),
        ("info", (Keyword.HELP, "INFO")),
    ],
)
def test_keywords_are_whole_bodies_in_any_case_and_spacing(body, expected):
    assert keyword_of(body) == expected


@pytest.mark.parametrize(
    "body", ["stop please", "STOP!", "please STOP", "s t o p", "", "stopp", "yes please", "helpme"]
)
def test_anything_else_is_a_message_not_a_keyword(body):
    assert keyword_of(body) is None
