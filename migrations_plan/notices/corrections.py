"""One correction, once: a person told something the plan no longer says hears about it.

Run after each plan of a batch (tasks: batch_plan_task), after a reschedule and after a cancel.
It compares, per person, the digest of the newest notice they got before the move with the
digest of what the plan says now (content.digest_of, computed here set-based, a few queries
per 2,000 people) and queues a correction where they differ and none is waiting already.
Whether the correction still applies is checked again when it is sent (delivery.py): a plan
that changed back in between sends nothing.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from devices.models import Partnership
from helpdesk.models import needed_actions

from ..models import (
    BatchMailbox,
    BatchState,
    Explanation,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
    Prediction,
)
from .content import digest_of
from .queue import correction_queue

CHUNK = 2000


def current_digests(*, batch: MoveBatch, member_ids: list[int]) -> dict[int, str]:
    """{member id: digest of what a notice sent now would say}, as content.person_content
    computes it for one person: the current phones, each with its outcome and steps."""
    digests: dict[int, str] = {}
    for start in range(0, len(member_ids), CHUNK):
        chunk = member_ids[start : start + CHUNK]
        mailbox_of = dict(BatchMailbox.objects.filter(pk__in=chunk).values_list("pk", "mailbox_id"))
        phones: dict[int, list[int]] = defaultdict(list)
        for pk, mailbox_id in Partnership.objects.filter(
            mailbox_id__in=set(mailbox_of.values()), is_stale=False
        ).values_list("pk", "mailbox_id"):
            phones[mailbox_id].append(pk)
        predicted: dict[tuple[int, int], tuple[str, int]] = {
            (member_id, partnership_id): (outcome, explanation_id)
            for member_id, partnership_id, outcome, explanation_id in Prediction.objects.filter(
                member_id__in=chunk
            ).values_list("member_id", "partnership_id", "outcome", "explanation_id")
        }
        reasons = dict(
            Explanation.objects.filter(pk__in={e for _, e in predicted.values()}).values_list(
                "pk", "reasons"
            )
        )
        actions_of: dict[tuple[str, int], tuple[str, ...]] = {}
        for member_id, mailbox_id in mailbox_of.items():
            said = []
            for partnership_id in phones.get(mailbox_id, []):
                outcome, explanation_id = predicted.get((member_id, partnership_id), ("unknown", 0))
                key = (outcome, explanation_id)
                if key not in actions_of:
                    actions_of[key] = tuple(
                        needed_actions(outcome, reasons.get(explanation_id) or [])
                    )
                said.append((partnership_id, outcome, actions_of[key]))
            digests[member_id] = digest_of(move_at=batch.start_at, phones=said)
    return digests


def _last_said(batch: MoveBatch) -> dict[int, tuple[str, str]]:
    """{member id: (recipient, digest of the newest notice sent before the move)}."""
    newest: dict[int, tuple[str, str]] = {}
    for member_id, recipient, digest in (
        Notice.objects.filter(
            batch=batch,
            kind__in=(NoticeKind.BEFORE_MOVE, NoticeKind.CORRECTION),
            state=NoticeState.SENT,
            member__isnull=False,
        )
        .order_by("sent_at", "pk")
        .values_list("member_id", "recipient", "said_digest")
    ):
        newest[member_id] = (recipient, digest)
    return newest


@transaction.atomic
def corrections_queue(*, batch: MoveBatch, member_ids: list[int] | None = None) -> int:
    """Queue a correction for each person (of `member_ids`, default all) whose last notice no
    longer holds; how many."""
    told = _last_said(batch)
    if member_ids is not None:
        told = {pk: said for pk, said in told.items() if pk in set(member_ids)}
    if not told:
        return 0
    now = timezone.now()
    members = {
        m.pk: m
        for m in BatchMailbox.objects.filter(pk__in=list(told)).only(
            "pk", "batch_id", "mailbox_id", "state", "is_active"
        )
    }
    if batch.state == BatchState.CANCELLED:
        # Not those whose mailbox moved (or failed to) before the cancel: it is not off for them.
        wanted = {
            pk: "cancelled"
            for pk, m in members.items()
            if m.state in (MemberState.PENDING, MemberState.REMOVED)
        }
    else:
        waiting = [
            pk for pk, m in members.items() if m.is_active and m.state == MemberState.PENDING
        ]
        if batch.state != BatchState.SCHEDULED:
            waiting = []
        wanted = current_digests(batch=batch, member_ids=waiting)
        # Removed from the batch after being told: the move is off for them.
        wanted.update(
            {pk: "cancelled" for pk, m in members.items() if m.state == MemberState.REMOVED}
        )
    queued = 0
    for member_id, digest in wanted.items():
        recipient, said = told[member_id]
        if digest != said and correction_queue(
            member=members[member_id], recipient=recipient, now=now
        ):
            queued += 1
    return queued
