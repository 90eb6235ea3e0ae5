"""Outcome and confidence vocabularies of eas-moves.md, with the worst-wins severity order."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["SEVERITY", "Confidence", "Outcome", "severity", "worst"]


class Outcome(StrEnum):
    """What a move does to one partnership (closed set, eas-moves.md "Outcome vocabulary")."""

    BLOCKED = "blocked"
    REPARTNER = "repartner"
    UNKNOWN = "unknown"
    REDIRECT = "redirect"
    FULL_RESYNC = "full_resync"
    CONTINUES = "continues"


# Worst first. The order itself is a design choice of eas-moves.md ([I]), not a source fact:
# `unknown` ranks above `redirect` so a missing fact is never hidden behind a milder outcome.
SEVERITY: tuple[Outcome, ...] = (
    Outcome.BLOCKED,
    Outcome.REPARTNER,
    Outcome.UNKNOWN,
    Outcome.REDIRECT,
    Outcome.FULL_RESYNC,
    Outcome.CONTINUES,
)
_RANK = {outcome: len(SEVERITY) - index for index, outcome in enumerate(SEVERITY)}


def severity(outcome: Outcome) -> int:
    """Higher is worse: continues=1 ... blocked=6."""
    return _RANK[Outcome(outcome)]


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The worst outcome of several; `continues` when given none (nothing applies)."""
    return max(outcomes, key=severity, default=Outcome.CONTINUES)


class Confidence(StrEnum):
    """Confidence tags of eas-moves.md, strongest first."""

    VERIFIED = "V"  # a Microsoft document
    VERIFIED_3P = "V-3p"  # a reputable third party
    SOURCED = "S"  # the 2009 team seed
    INFERRED = "I"  # our own inference: encode with low confidence

    @property
    def is_low(self) -> bool:
        return self is Confidence.INFERRED
