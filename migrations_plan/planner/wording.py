"""One sentence for the user and one for the admin, composed from a prediction's reasons.

The rule ids and sources stay on the reasons; these sentences are what a helpdesk agent reads
out and what a notice will say. They never contradict each other: a "nothing to do" is never
placed beside an action, and an `unknown` outcome never carries an instruction that could be
wrong (the user is told IT is checking).
"""

from __future__ import annotations

from collections.abc import Iterable

from .outcomes import Outcome, severity
from .questions import QUESTIONS
from .rules import NO_ACTION, WAIT_FOR_IT

__all__ = ["admin_sentence", "user_sentence"]

_NOTHING = {NO_ACTION, WAIT_FOR_IT, "", "None", "—"}

_USER_DEFAULT = {
    Outcome.CONTINUES: "Nothing to do: this phone keeps syncing after the move.",
    Outcome.FULL_RESYNC: "Nothing to do, but after the move this phone downloads all its mail "
    "again; keep it charged and on Wi-Fi.",
    Outcome.REDIRECT: "Nothing to do if the phone follows the server's redirect after the "
    "move; if mail stops arriving, call the helpdesk.",
    Outcome.REPARTNER: "After the move, delete the Exchange account on this phone and add it "
    "again.",
    Outcome.BLOCKED: "This phone will stop syncing at the move until IT fixes something on the "
    "server side; IT will tell you when it works again.",
    Outcome.UNKNOWN: "Nothing to do yet: IT is still checking what the move does to this phone, "
    "and will tell you before the move.",
}


def _unique(texts: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        text = (text or "").strip()
        if text and text not in _NOTHING:
            seen.setdefault(text if text.endswith(".") else f"{text}.", None)
    return list(seen)


def user_sentence(outcome: Outcome, reasons: Iterable) -> str:
    """What to tell the user: the actions of the reasons that decide the outcome."""
    outcome = Outcome(outcome)
    if outcome is Outcome.UNKNOWN:
        return _USER_DEFAULT[outcome]
    reasons = [r for r in reasons if not r.is_warning]
    deciding = [r for r in reasons if r.outcome is outcome]
    # Milder reasons may still ask something of the user (accept a new policy).
    milder = [
        r for r in reasons if severity(r.outcome) < severity(outcome) and r.rule == "X-POLICY"
    ]
    actions = _unique(r.user_action for r in (*deciding, *milder))
    if not actions:
        actions = [_USER_DEFAULT[outcome]]
    if outcome is Outcome.BLOCKED:
        # Blocked until IT fixes something, and then the account still has to be re-created:
        # the user needs both steps, not only the first.
        then = _unique(r.user_action for r in reasons if r.outcome is Outcome.REPARTNER)
        if then:
            actions.append("Once that is fixed: " + " ".join(then))
    if outcome is Outcome.FULL_RESYNC:
        actions.insert(0, "After the move this phone downloads all its mail again.")
    return " ".join(actions)


def admin_sentence(
    outcome: Outcome, reasons: Iterable, questions: Iterable[tuple[str, str]] = ()
) -> str:
    """What the admin must do: the deciding reasons' actions, then the facts still missing."""
    outcome = Outcome(outcome)
    reasons = list(reasons)
    deciding = [r for r in reasons if not r.is_warning and r.outcome is outcome]
    parts = _unique(r.admin_action for r in deciding if not r.question)
    missing = []
    for question_id, subject in dict.fromkeys(questions):
        question = QUESTIONS.get(question_id)
        if question is not None:
            about = f" ({subject})" if subject else ""
            missing.append(f"{question.fact}{about}")
    if missing:
        verb = "Answer to decide" if outcome is Outcome.UNKNOWN else "Still unchecked"
        parts.append(f"{verb}: {'; '.join(dict.fromkeys(missing))}.")
    if not parts:
        return "Nothing to do for this phone."
    return " ".join(parts)
