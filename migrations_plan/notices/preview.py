"""What one notice would say if it went out at its due time, from the plan as it is now.

The batch page previews every kind before anything is queued: an unsaved Notice goes through
the same decision and rendering as a real send (delivery.notice_preview), nothing is stored or
sent. A draft is previewed as if it were scheduled, an after-move notice as if the mailbox had
moved; only in-memory copies change, and the preview says what it assumed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from ..models import (
    REPORT_KINDS,
    BatchMailbox,
    BatchState,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
)
from . import delivery
from .queue import leads_of, report_recipients


class NoSuchNotice(LookupError):
    """The batch sends no notice of that kind, lead time or person."""


@dataclass
class Preview:
    notice: Notice
    decision: delivery.Skip | delivery.Wait | delivery.Send
    at: datetime
    assumed: list[str] = field(default_factory=list)
    report_recipients: list[str] = field(default_factory=list)


def _as_when_sent(batch: MoveBatch, member: BatchMailbox | None, kind: str) -> list[str]:
    assumed = []
    if batch.state == BatchState.DRAFT and kind not in REPORT_KINDS:
        batch.state = BatchState.SCHEDULED
        assumed.append("the batch is scheduled as it is now")
    if (
        member is not None
        and kind in (NoticeKind.AFTER_MOVE, NoticeKind.CHASE)
        and member.state == MemberState.PENDING
    ):
        member.state = MemberState.MOVED
        assumed.append("the mailbox has been moved")
    return assumed


def notice_preview_for(
    *, batch: MoveBatch, member: BatchMailbox | None, kind: str, lead: int | None = None
) -> Preview:
    """The preview of one person's notice (member) or of a report (member None)."""
    if kind not in NoticeKind.values:
        raise NoSuchNotice(f"no kind of notice '{kind}'")
    now = timezone.now()
    leads = leads_of(batch)
    recipients: list[str] = []
    due_at, lead_minutes = now, 0
    if kind in REPORT_KINDS:
        recipients = report_recipients(batch)
        recipient = recipients[0] if recipients else ""
    else:
        if member is None:
            raise NoSuchNotice("a person's notice needs a person of the batch")
        recipient = member.mailbox.primary_smtp_address.lower()
        if kind == NoticeKind.BEFORE_MOVE:
            lead_minutes = lead or (leads[0] if leads else 0)
            if lead_minutes not in leads:
                raise NoSuchNotice("this batch sends no notice at that lead time")
            due_at = batch.start_at - timedelta(minutes=lead_minutes)
    shown = copy.copy(batch)
    if member is not None:
        member = copy.copy(member)
        member.batch = shown
    assumed = _as_when_sent(shown, member, kind)
    notice = Notice(
        batch=shown,
        member=member,
        mailbox=member.mailbox if member is not None else None,
        kind=kind,
        lead_minutes=lead_minutes,
        due_at=due_at,
        recipient=recipient,
    )
    at = max(now, due_at)
    return Preview(
        notice=notice,
        decision=delivery.notice_preview(notice, now=at),
        at=at,
        assumed=assumed,
        report_recipients=recipients,
    )
