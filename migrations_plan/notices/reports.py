"""The batch reports (at scheduling, at start, at completion): counts, blocked phones with what
IT must do, and the people who need to act as a CSV attachment."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

# The affected-people download's writer: every cell neutralised, a BOM for Excel.
from helpdesk.csv_export import csv_lines
from helpdesk.platforms import LABELS, detect_platform

from ..models import MoveBatch, NoticeKind, Outcome, Prediction
from ..selectors import OUTCOME_ORDER, SHOWN_STATES
from .content import OUTCOME_FOR_USER
from .wording import one_line

STAGES = {
    NoticeKind.REPORT_SCHEDULED: "was scheduled",
    NoticeKind.REPORT_STARTED: "has started",
    NoticeKind.REPORT_COMPLETED: "is complete",
}
BLOCKED_LISTED = 100  # in the body; every one is in the CSV
CSV_HEADER = [
    "Name",
    "E-mail",
    "Phone",
    "Model",
    "Platform",
    "Outcome",
    "What happens",
    "What IT must do",
    "Move state",
]


@dataclass(frozen=True)
class Report:
    context: dict[str, Any]
    csv_name: str
    csv_text: str


def _phones_needing_action(batch: MoveBatch):
    return (
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .exclude(outcome=Outcome.CONTINUES)
        .select_related("member__mailbox", "partnership__device", "explanation")
        .order_by("member__mailbox__display_name", "member__mailbox_id", "partnership_id")
    )


def batch_report(*, batch: MoveBatch, kind: str) -> Report:
    """Everything a report says about the batch, from its stored plan."""
    people = batch.members.filter(state__in=SHOWN_STATES)
    per_outcome = Counter(
        dict(
            Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
            .values_list("outcome")
            .annotate(n=Count("pk"))
            .values_list("outcome", "n")
        )
    )
    people_per_outcome = dict(
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .values_list("outcome")
        .annotate(n=Count("member", distinct=True))
        .values_list("outcome", "n")
    )
    rows: list[list[object]] = []
    blocked: list[dict[str, str]] = []
    people_needing_action: set[int] = set()
    for prediction in _phones_needing_action(batch).iterator(chunk_size=2000):
        mailbox = prediction.member.mailbox
        device = prediction.partnership.device
        people_needing_action.add(prediction.member_id)
        explanation = prediction.explanation
        platform = detect_platform(
            device_type=device.device_type,
            model=device.model,
            os=device.os,
            user_agent=device.user_agent,
            client_type=prediction.partnership.client_type,
        )
        name = device.friendly_name or device.model or device.device_id
        rows.append(
            [
                mailbox.display_name,
                mailbox.primary_smtp_address,
                name,
                device.model,
                LABELS[platform],
                prediction.get_outcome_display(),
                OUTCOME_FOR_USER.get(prediction.outcome, ""),
                explanation.admin_text,
                prediction.member.get_state_display(),
            ]
        )
        if prediction.outcome == Outcome.BLOCKED and len(blocked) < BLOCKED_LISTED:
            blocked.append(
                {  # plain-text lines: device and directory text kept to one line
                    "person": one_line(mailbox.display_name, 100),
                    "address": mailbox.primary_smtp_address,
                    "device": one_line(name, 100),
                    "model": one_line(device.model, 100),
                    "admin_action": explanation.admin_text or "see the batch page",
                }
            )
    labels = dict(Outcome.choices)
    start = timezone.localtime(batch.start_at)
    link = ""
    if settings.SITE_URL:
        link = settings.SITE_URL.rstrip("/") + reverse(
            "migrations_plan:batch_detail", args=[batch.pk]
        )
    context = {
        "batch": {
            "name": batch.name,
            "target": batch.target_server.name,
            "start": f"{start:%A} {start.day} {start:%B %Y} at {start:%H:%M}",
            "time_zone": timezone.get_current_timezone_name(),
            "state": batch.get_state_display(),
        },
        "stage": STAGES.get(kind, ""),
        "totals": {
            "people": people.count(),
            "people_needing_action": len(people_needing_action),
        },
        "outcomes": [
            {
                "label": labels[outcome],
                "devices": per_outcome.get(outcome, 0),
                "people": people_per_outcome.get(outcome, 0),
            }
            for outcome in OUTCOME_ORDER
        ],
        "blocked": blocked,
        "blocked_total": per_outcome.get(Outcome.BLOCKED, 0),
        "blocked_more": max(0, per_outcome.get(Outcome.BLOCKED, 0) - len(blocked)),
        "csv_name": f"exsync-{_slug(batch.name)}-people-to-act.csv",
        "link": link,
    }
    return Report(
        context=context, csv_name=context["csv_name"], csv_text="".join(csv_lines(CSV_HEADER, rows))
    )


def _slug(name: str) -> str:
    """A file-name-safe form of the batch name (it is admin-typed text)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip())
    return "-".join(part for part in cleaned.split("-") if part)[:60] or "batch"
