"""What scheduling a batch would send, from its current plan: shown before the admin commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from ..models import MoveBatch, Outcome, Prediction
from ..selectors import open_questions
from .queue import leads_of, report_recipients


@dataclass(frozen=True)
class Forecast:
    leads_minutes: list[int]
    people: int  # active members with at least one phone in the plan
    full: int  # people with a phone that does not simply continue: a notice at each lead
    short: int  # people whose phones all continue: one short notice, or none
    undecided_people: int  # people with a phone whose outcome is unknown
    undecided_phones: int
    notices: int  # person notices before the move, if the plan stays as it is
    reports: int  # report recipients (a report at scheduling, at start, at completion)
    questions: list[dict[str, Any]] = field(default_factory=list)


def notice_forecast(*, batch: MoveBatch) -> Forecast:
    """Three queries: phones per person and outcome, the open questions (two)."""
    rows = (
        Prediction.objects.filter(member__batch=batch, member__is_active=True)
        .values("member_id")
        .annotate(
            acting=Count("pk", filter=~Q(outcome=Outcome.CONTINUES)),
            unknown=Count("pk", filter=Q(outcome=Outcome.UNKNOWN)),
        )
        .values_list("acting", "unknown")
    )
    people = full = short = undecided_people = undecided_phones = 0
    for acting, unknown in rows:
        people += 1
        if acting:
            full += 1
        else:
            short += 1
        if unknown:
            undecided_people += 1
            undecided_phones += unknown
    leads = leads_of(batch)
    notices = full * len(leads) + (short if batch.notify_unaffected and leads else 0)
    return Forecast(
        leads_minutes=leads,
        people=people,
        full=full,
        short=short,
        undecided_people=undecided_people,
        undecided_phones=undecided_phones,
        notices=notices,
        reports=len(report_recipients(batch)),
        questions=open_questions(batch=batch)[:8] if undecided_people else [],
    )
