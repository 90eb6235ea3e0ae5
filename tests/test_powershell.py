"""exchange/powershell.py: hostile Identity values stay inside one single-quoted literal, and
the cmdlet follows the mailbox's server generation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.powershell import (
    NO_CMDLET_2003,
    NO_GENERATION,
    NO_IDENTITY,
    UNSAFE_IDENTITY,
    quote_literal,
    removal_line,
)

# What PowerShell's tokenizer takes for a single quote (' ‘ ’ ‚ ‛).
QUOTES = "'\u2018\u2019\u201a\u201b"


def read_literal(text: str) -> tuple[str, str]:
    """Read one PowerShell single-quoted literal at the start of `text`: inside it, two quote
    characters in a row are one literal quote (the second), a single one ends the string.
    Returns (value, what follows the closing quote); raises ValueError if unterminated."""
    if not text or text[0] not in QUOTES:
        raise ValueError("not a single-quoted literal")
    value = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch in QUOTES:
            if i + 1 < len(text) and text[i + 1] in QUOTES:
                value.append(text[i + 1])
                i += 2
                continue
            return "".join(value), text[i + 1 :]
        value.append(ch)
        i += 1
    raise ValueError("unterminated literal")


def parse_line(line: str) -> tuple[str, str]:
    """(cmdlet, Identity value) of `<cmdlet> -Identity '<literal>' -Confirm:$true`, checking
    that nothing but the literal sits between the parameter and -Confirm."""
    cmdlet, rest = line.split(" -Identity ", 1)
    value, after = read_literal(rest)
    assert after == " -Confirm:$true", f"text outside the literal: {after!r}"
    return cmdlet, value


HOSTILE = [
    "Kim's iPhone",
    "x'; Remove-Mailbox -Identity * -Confirm:$false; '",
    "$(Stop-Computer)",
    "`whoami`",
    "a\u2019b",
    "a\u2018b",
    "a\u201ab",
    "a\u201bb",
    "''''",
    "\u2019; Stop-Computer; \u2018",
    "a # comment | Out-Null & calc",
    "contoso.local/Users/Kim/ExchangeActiveSyncDevices/iPhone§ApplF17XXXX",
    "ёё'; Stop-Computer; '",
    "x\u2019\u2019; Stop-Computer",
]


@pytest.mark.parametrize("identity", HOSTILE)
def test_a_hostile_identity_is_one_single_quoted_string_with_its_own_value(identity):
    line = removal_line(identity=identity, generation="2016").line
    assert line is not None
    cmdlet, value = parse_line(line)
    assert cmdlet == "Remove-MobileDevice"
    assert value == identity


@pytest.mark.parametrize("identity", HOSTILE)
def test_every_quote_character_is_doubled_and_nothing_else_changes(identity):
    literal = quote_literal(identity)
    assert literal is not None
    inner = literal[1:-1]
    assert inner == "".join(c * 2 if c in QUOTES else c for c in identity)
    assert read_literal(literal) == (identity, "")


@pytest.mark.parametrize(
    "identity",
    ["a\nb", "a\rb", "a\r\nRemove-Mailbox *", "a\x00b", "\x1b[2J", "a\x85b", "a\x9bb", "a\x7fb"],
)
def test_an_identity_with_a_control_character_is_refused(identity):
    assert quote_literal(identity) is None
    removal = removal_line(identity=identity, generation="2013")
    assert removal.line is None and removal.problem == UNSAFE_IDENTITY
    assert "cannot be written safely" in removal.problem


@pytest.mark.parametrize("identity", ["a\u2028b", "a\u2029b", "a\u202eb", "a\u2066b", "\ud800"])
def test_line_separators_bidi_overrides_and_lone_surrogates_are_refused(identity):
    assert quote_literal(identity) is None


def test_an_empty_identity_is_refused():
    assert quote_literal("") is None
    assert removal_line(identity="", generation="2016").problem == NO_IDENTITY


@pytest.mark.parametrize(
    ("generation", "cmdlet"),
    [
        ("2007", "Remove-ActiveSyncDevice"),
        ("2010", "Remove-ActiveSyncDevice"),
        ("2013", "Remove-MobileDevice"),
        ("2016", "Remove-MobileDevice"),
        ("2019", "Remove-MobileDevice"),
        ("SE", "Remove-MobileDevice"),
        ("EXO", "Remove-MobileDevice"),
    ],
)
def test_the_cmdlet_follows_the_server_generation(generation, cmdlet):
    line = removal_line(identity="contoso.local/Users/Kim/x", generation=generation).line
    assert line == f"{cmdlet} -Identity 'contoso.local/Users/Kim/x' -Confirm:$true"


def test_exchange_2003_has_no_cmdlet_and_says_to_remove_on_the_phone():
    removal = removal_line(identity="x", generation="2003")
    assert removal.line is None and removal.problem == NO_CMDLET_2003
    assert "remove the account on the phone" in removal.problem


@pytest.mark.parametrize("generation", ["", None, "2000"])
def test_an_unknown_generation_gives_no_line(generation):
    assert removal_line(identity="x", generation=generation).problem == NO_GENERATION


SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
        blacklist_characters="\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
    | st.sampled_from([*QUOTES, "$", "`", ";", "#", "|", "(", ")", "&", "@", '"']),
    min_size=1,
)


@given(SAFE_TEXT)
def test_any_text_without_control_characters_round_trips_through_the_literal(text):
    literal = quote_literal(text)
    assert literal is not None
    assert read_literal(literal) == (text, "")
    assert parse_line(removal_line(identity=text, generation="EXO").line) == (
        "Remove-MobileDevice",
        text,
    )


@given(st.text(min_size=1))
def test_any_text_is_either_refused_or_round_trips(text):
    literal = quote_literal(text)
    if literal is not None:
        assert read_literal(literal) == (text, "")
        assert not any(c in literal for c in "\r\n\x00")
