"""Whether a prediction came true: a phone's predicted outcome against what the exports showed.

Pure Python (no Django), used by the batch page's "After the move" panel and the
prediction-accuracy page. The definition:

Each predicted outcome expects one observation (continuity.py decides the observations):

    continues, redirect, full_resync -> confirmed   (the phone keeps syncing)
    repartner                        -> replaced    (the user set the account up again)
    blocked                          -> silent      (the phone cannot sync)
    unknown                          -> nothing     (no prediction to check)

A phone still `pending` (no export since the move, or the grace period not over) has no
verdict yet. Otherwise:

- as predicted: observed == expected;
- wrong: predicted continues / redirect / full_resync but observed silent or replaced;
  predicted repartner but observed confirmed (it kept syncing without re-partnering);
  predicted blocked but observed confirmed or replaced;
- not re-partnered yet: predicted repartner and observed silent: the user has not acted,
  which does not make the prediction wrong;
- no longer listed: observed gone (a full export dropped it): no verdict;
- no prediction to check: predicted unknown, whatever was observed.

"Checked" phones are those as predicted or wrong; a rule's wrong share is wrong / checked.
"""

from __future__ import annotations

from enum import StrEnum

CONFIRMED, REPLACED, SILENT, GONE, PENDING = "confirmed", "replaced", "silent", "gone", "pending"
STATES = (CONFIRMED, REPLACED, SILENT, GONE, PENDING)
OUTCOMES = ("blocked", "repartner", "unknown", "redirect", "full_resync", "continues")

EXPECTED: dict[str, str] = {
    "continues": CONFIRMED,
    "redirect": CONFIRMED,
    "full_resync": CONFIRMED,
    "repartner": REPLACED,
    "blocked": SILENT,
}


class Verdict(StrEnum):
    """Listed in the order pages show them: wrong predictions first."""

    WRONG = "wrong"
    NOT_YET = "not_yet"
    AS_PREDICTED = "as_predicted"
    PENDING = "pending"
    GONE = "gone"
    NO_PREDICTION = "no_prediction"

    @property
    def label(self) -> str:
        return VERDICT_LABELS[self]

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)


VERDICT_LABELS = {
    Verdict.WRONG: "Wrong prediction",
    Verdict.NOT_YET: "Not re-partnered yet",
    Verdict.AS_PREDICTED: "As predicted",
    Verdict.PENDING: "Not known yet",
    Verdict.GONE: "No longer listed",
    Verdict.NO_PREDICTION: "No prediction to check",
}

PREDICTED_TEXT = {
    "continues": "Predicted to keep syncing",
    "redirect": "Predicted to keep syncing after a redirect",
    "full_resync": "Predicted to keep syncing after a full resync",
    "repartner": "Predicted to need re-partnering",
    "blocked": "Predicted to be blocked",
    "unknown": "No prediction (unknown)",
}
OBSERVED_TEXT = {
    CONFIRMED: "synced after the move (confirmed)",
    REPLACED: "re-partnered (replaced)",
    SILENT: "still silent",
    GONE: "no longer listed in a full export (gone)",
    PENDING: "pending: no export since the move yet",
}


def verdict(predicted: str, observed: str) -> Verdict:
    """The verdict on one phone predicted `predicted` (an Outcome value) and observed
    `observed` (a ContinuityState value)."""
    if observed == PENDING:
        return Verdict.PENDING
    expected = EXPECTED.get(predicted)
    if expected is None:
        return Verdict.NO_PREDICTION
    if observed == GONE:
        return Verdict.GONE
    if observed == expected:
        return Verdict.AS_PREDICTED
    if predicted == "repartner" and observed == SILENT:
        return Verdict.NOT_YET
    return Verdict.WRONG


def describe(predicted: str, observed: str) -> str:
    """One line for a (predicted, observed) pair: "Predicted to keep syncing: still silent"."""
    return f"{PREDICTED_TEXT.get(predicted, predicted)}: {OBSERVED_TEXT.get(observed, observed)}"


def pairs_with(*verdicts: Verdict) -> list[tuple[str, str]]:
    """Every (predicted, observed) pair whose verdict is one of `verdicts` (for a filter)."""
    wanted = set(verdicts)
    return [(o, s) for o in OUTCOMES for s in STATES if verdict(o, s) in wanted]


def verdict_rank_table() -> list[tuple[str, str, int]]:
    """(predicted, observed, rank of the verdict) for every pair: the order a list sorts by."""
    return [(o, s, verdict(o, s).rank) for o in OUTCOMES for s in STATES]


def deciding_rules(reasons: list[dict], predicted: str) -> list[str]:
    """The rules that decided a prediction: its reasons whose outcome is the predicted one
    (warnings left out: a rule "not checked" decided nothing), each rule once, in order."""
    rules: list[str] = []
    for reason in reasons or []:
        if reason.get("outcome") != predicted or reason.get("is_warning"):
            continue
        rule = reason.get("rule") or ""
        if rule and rule not in rules:
            rules.append(rule)
    return rules
