"""Exchange Management Shell lines for an admin to review and run: quoting and cmdlet choice.

exsync never runs anything against Exchange. These lines are offered as text; whoever runs
them reads them first. An Identity comes from an export (and so, in part, from whatever a
phone or a directory admin typed), so it is written as a PowerShell single-quoted literal, the
one string form in which nothing is expanded: no `$()`, no `$variable`, no backtick escapes.

PowerShell ends such a literal at any of five single-quote characters, not only the ASCII
one: ' U+0027, ‘ U+2018, ’ U+2019, ‚ U+201A and ‛ U+201B. Two of them in a row stand for the
second one. Every one of them in the value is therefore doubled; anything else stays as it is.

A value with a control character (C0 or C1, including CR, LF and NUL), a line or paragraph
separator, a lone surrogate, or a bidirectional formatting character is refused: a line break
would end the command early, and a bidi override would make the line read differently on the
screen of the admin reviewing it from what PowerShell runs. An empty value is refused too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .versions import Generation

__all__ = [
    "SINGLE_QUOTES",
    "RemovalLine",
    "is_writable",
    "quote_literal",
    "removal_cmdlet",
    "removal_line",
]

# The characters PowerShell's tokenizer treats as a single quote (CharExtensions.IsSingleQuote).
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")

# Unicode categories refused: controls (C0, DEL, C1), line and paragraph separators, and lone
# surrogates (which no encoding of the .ps1 could carry).
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
# Bidirectional embeddings, overrides, isolates and marks: they reorder what the screen shows.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def is_writable(text: str) -> bool:
    """Whether `text` can be written as a literal on one reviewable line."""
    return bool(text) and not any(
        unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in _BIDI_CONTROLS for ch in text
    )


def quote_literal(text: str) -> str | None:
    """`text` as a PowerShell single-quoted string literal, or None when it cannot be written
    safely (empty, or holding a character is_writable() refuses)."""
    if not isinstance(text, str) or not is_writable(text):
        return None
    return "'" + "".join(ch + ch if ch in SINGLE_QUOTES else ch for ch in text) + "'"


# Exchange 2013 and later (and Exchange Online) have Remove-MobileDevice; 2007 and 2010 have
# Remove-ActiveSyncDevice; Exchange 2003 has no cmdlet for a device partnership at all.
_CMDLETS: dict[Generation, str] = {
    Generation.EX2007: "Remove-ActiveSyncDevice",
    Generation.EX2010: "Remove-ActiveSyncDevice",
    Generation.EX2013: "Remove-MobileDevice",
    Generation.EX2016: "Remove-MobileDevice",
    Generation.EX2019: "Remove-MobileDevice",
    Generation.SE: "Remove-MobileDevice",
    Generation.EXO: "Remove-MobileDevice",
}


def removal_cmdlet(generation: str | None) -> str | None:
    """The cmdlet that removes a partnership of a mailbox on a server of this generation."""
    try:
        return _CMDLETS.get(Generation(generation or ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class RemovalLine:
    """A line to run, or (line None) why there is none, said in words an admin can act on."""

    line: str | None
    problem: str = ""


NO_CMDLET_2003 = (
    "Exchange 2003 has no cmdlet to remove a partnership: remove the account on the phone"
)
NO_GENERATION = "the mailbox's server generation is not known, so the cmdlet cannot be chosen"
NO_IDENTITY = "the partnership's Identity was not exported"
UNSAFE_IDENTITY = "the Identity cannot be written safely (an empty value or a control character)"


def removal_line(*, identity: str, generation: str | None) -> RemovalLine:
    """`Remove-MobileDevice -Identity '…' -Confirm:$true` (or Remove-ActiveSyncDevice on 2007
    and 2010) for one partnership, chosen by the generation of its mailbox's server."""
    if generation == Generation.EX2003:
        return RemovalLine(None, NO_CMDLET_2003)
    cmdlet = removal_cmdlet(generation)
    if cmdlet is None:
        return RemovalLine(None, NO_GENERATION)
    if not identity:
        return RemovalLine(None, NO_IDENTITY)
    literal = quote_literal(identity)
    if literal is None:
        return RemovalLine(None, UNSAFE_IDENTITY)
    return RemovalLine(f"{cmdlet} -Identity {literal} -Confirm:$true")


SCRIPT_HEADER = (
    "# Exchange Management Shell lines prepared by exsync for review.",
    "# exsync never runs anything against Exchange: it only wrote this file.",
    "# Review every line before running it; each one asks for confirmation (-Confirm:$true).",
    "# Remove-MobileDevice: Exchange 2013 and later, Exchange Online.",
    "# Remove-ActiveSyncDevice: Exchange 2007 and 2010. Exchange 2003: remove on the phone.",
)
