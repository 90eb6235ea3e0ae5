"""Which notices a batch owes, as rows: queued, moved and withdrawn with the batch.

Called inside the batch services' transactions (services.py); every insert relies on the
unique key (batch, recipient, kind, lead time, revision), so queueing twice queues once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..models import (
    PERSON_KINDS,
    BatchMailbox,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
)

OPEN = (NoticeState.PENDING, NoticeState.SENDING)


def leads_of(batch: MoveBatch) -> list[int]:
    """The batch's lead times in minutes, largest first, without duplicates."""
    return sorted({int(m) for m in batch.notice_leads_minutes or [] if int(m) > 0}, reverse=True)


def _members(batch: MoveBatch, mailbox_ids: Sequence[int] | None) -> list[tuple[int, int, str]]:
    members = batch.members.filter(is_active=True)
    if mailbox_ids is not None:
        members = members.filter(mailbox_id__in=list(mailbox_ids))
    return list(members.values_list("pk", "mailbox_id", "mailbox__primary_smtp_address"))


def before_notices_queue(*, batch: MoveBatch, mailbox_ids: Sequence[int] | None = None) -> int:
    """One pending notice per active member and lead time; returns how many are pending now.

    Whether a person's notice is a full one, a short one or none is decided when it is sent,
    from the plan as it is then (delivery.py); so is which of several due leads goes.
    """
    if batch.start_at <= timezone.now():
        return 0  # a move recorded after the fact: nothing to tell before it
    members = _members(batch, mailbox_ids)
    leads = leads_of(batch)
    rows = [
        Notice(
            batch=batch,
            member_id=member_id,
            mailbox_id=mailbox_id,
            kind=NoticeKind.BEFORE_MOVE,
            lead_minutes=lead,
            due_at=batch.start_at - timedelta(minutes=lead),
            recipient=address.lower(),
        )
        for member_id, mailbox_id, address in members
        for lead in leads
    ]
    Notice.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    # A person removed and added back: their withdrawn notices are due again.
    ids = [m for m, _, _ in members]
    for start in range(0, len(ids), 2000):
        Notice.objects.filter(
            batch=batch,
            member_id__in=ids[start : start + 2000],
            kind=NoticeKind.BEFORE_MOVE,
            lead_minutes__in=leads,  # a lead time since removed from the batch stays withdrawn
            state=NoticeState.CANCELLED,
            revision=0,
        ).update(state=NoticeState.PENDING, reason="", enqueued_at=None)
    return len(rows)


def before_notices_move(*, batch: MoveBatch, now: datetime) -> int:
    """The batch starts at another time: its pending notices follow (each lead before the new
    start), and a lead whose notice went already (or was not needed) under the old time is
    queued again when its new time is still ahead, so people hear of the move 72 h (or any
    lead) before the start that holds. People told the old time get a correction
    (corrections.py) as well. Returns how many notices are pending at the new times."""
    moved = 0
    for lead in leads_of(batch):
        due_at = batch.start_at - timedelta(minutes=lead)
        moved += Notice.objects.filter(
            batch=batch, kind=NoticeKind.BEFORE_MOVE, lead_minutes=lead, state=NoticeState.PENDING
        ).update(due_at=due_at, enqueued_at=None)
        if due_at <= now:
            continue
        waiting = batch.members.filter(is_active=True, state=MemberState.PENDING)
        done = (
            Notice.objects.filter(
                batch=batch,
                kind=NoticeKind.BEFORE_MOVE,
                lead_minutes=lead,
                member__in=waiting,
            )
            .values("member_id", "mailbox_id", "recipient")
            .annotate(newest=Max("revision"))
        )
        open_members = set(
            Notice.objects.filter(
                batch=batch, kind=NoticeKind.BEFORE_MOVE, lead_minutes=lead, state__in=OPEN
            ).values_list("member_id", flat=True)
        )
        copies = [
            Notice(
                batch=batch,
                member_id=row["member_id"],
                mailbox_id=row["mailbox_id"],
                kind=NoticeKind.BEFORE_MOVE,
                lead_minutes=lead,
                revision=row["newest"] + 1,
                due_at=due_at,
                recipient=row["recipient"],
                reason="queued again for the new start",
            )
            for row in done
            if row["member_id"] not in open_members
        ]
        Notice.objects.bulk_create(copies, batch_size=2000, ignore_conflicts=True)
        moved += len(copies)
    return moved


def notices_withdraw(
    *,
    batch: MoveBatch,
    reason: str,
    mailbox_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
) -> int:
    """Pending notices of the batch (or of some of its people) will not be sent."""
    notices = batch.notices.filter(state=NoticeState.PENDING)
    if mailbox_ids is not None:
        notices = notices.filter(mailbox_id__in=list(mailbox_ids))
    if kinds is not None:
        notices = notices.filter(kind__in=list(kinds))
    return notices.update(state=NoticeState.CANCELLED, reason=reason[:255])


def after_notices_queue(*, batch: MoveBatch, mailbox_ids: Sequence[int], now: datetime) -> int:
    """What to do now, for people whose mailbox was just recorded as moved (due at once)."""
    members = batch.members.filter(mailbox_id__in=list(mailbox_ids), state=MemberState.MOVED)
    rows = [
        Notice(
            batch=batch,
            member_id=member_id,
            mailbox_id=mailbox_id,
            kind=NoticeKind.AFTER_MOVE,
            due_at=now,
            recipient=address.lower(),
        )
        for member_id, mailbox_id, address in members.values_list(
            "pk", "mailbox_id", "mailbox__primary_smtp_address"
        )
    ]
    Notice.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def report_recipients(batch: MoveBatch) -> list[str]:
    """The batch's report addresses, lower-case, each once (comma, semicolon or space apart)."""
    seen: list[str] = []
    for part in re.split(r"[,;\s]+", batch.notification_emails or ""):
        address = part.strip().lower()
        if address and address not in seen:
            seen.append(address)
    return seen


def report_queue(*, batch: MoveBatch, kind: str, now: datetime) -> int:
    """A report to each of the batch's recipients, due at once (counted and listed when sent)."""
    rows = [
        Notice(batch=batch, kind=kind, due_at=now, recipient=address)
        for address in report_recipients(batch)
    ]
    Notice.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def correction_queue(*, member: BatchMailbox, recipient: str, now: datetime) -> bool:
    """One more correction for a person, unless one is still waiting to go out."""
    key = Q(batch_id=member.batch_id, recipient=recipient, kind=NoticeKind.CORRECTION)
    if Notice.objects.filter(key, state__in=OPEN).exists():
        return False
    last = Notice.objects.filter(key).aggregate(n=Max("revision"))["n"] or 0
    try:
        with transaction.atomic():
            Notice.objects.create(
                batch_id=member.batch_id,
                member=member,
                mailbox_id=member.mailbox_id,
                kind=NoticeKind.CORRECTION,
                revision=last + 1,
                due_at=now,
                recipient=recipient,
            )
    except IntegrityError:  # queued at the same moment by another run: one is enough
        return False
    return True


class ResendRefused(ValueError):
    """The notice cannot be sent again; the message says why."""


def notice_resend(
    *, notice: Notice, expected_revision: int, actor: AbstractBaseUser | None
) -> Notice:
    """A new copy of a sent or failed notice, due now, with the content of the plan as it is.

    `expected_revision` is the newest revision the admin saw: a second click of the same button
    (or two admins at once) makes one copy, not two.
    """
    if notice.state in OPEN:
        raise ResendRefused("This notice has not been sent yet; it goes out when it is due.")
    if notice.kind in PERSON_KINDS and notice.member_id is None:
        raise ResendRefused("This notice has no person any more.")
    key = Q(
        batch_id=notice.batch_id,
        recipient=notice.recipient,
        kind=notice.kind,
        lead_minutes=notice.lead_minutes,
    )
    newest = Notice.objects.filter(key).aggregate(n=Max("revision"))["n"] or 0
    if newest != expected_revision:
        copy = Notice.objects.filter(key, revision=newest).first()
        if copy is not None and copy.pk != notice.pk:
            return copy  # the same click again: the copy it made
    try:
        with transaction.atomic():
            return Notice.objects.create(
                batch_id=notice.batch_id,
                member_id=notice.member_id,
                mailbox_id=notice.mailbox_id,
                kind=notice.kind,
                lead_minutes=notice.lead_minutes,
                revision=newest + 1,
                is_resend=True,
                due_at=timezone.now(),
                recipient=notice.recipient,
                reason=f"resent by {actor}" if actor else "resent",
            )
    except IntegrityError:
        return Notice.objects.get(key, revision=newest + 1)
