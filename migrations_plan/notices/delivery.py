"""Sending notices exactly once: claim the row, check it still applies, send, confirm.

The database, not the broker, makes a notice go once (anchors: healthchecks' sendalerts,
zulip's queue workers):
- beat runs notices_dispatch(): it releases claims nobody confirmed (a worker killed while it
  held them) and hands the ids of due pending rows to the broker, each row stamped
  `enqueued_at` under FOR UPDATE SKIP LOCKED, so two beats at once hand out each id once;
- the task claims its row with a conditional UPDATE (pending -> sending, `claimed_at`); only
  the process whose UPDATE changed the row sends, so an id delivered twice sends once;
- every ending (sent, failed, retry, not needed) is a conditional UPDATE on the claim it
  holds: a worker whose claim was released and taken over cannot overwrite the new owner.

What is left: a worker killed after the SMTP server accepted a message and before its `sent`
commit sends that message again when the claim is released. The window is one UPDATE long,
and the repeat carries the same Message-ID (message.py), which receiving systems use to drop
duplicates. No protocol closes it: SMTP has no way to ask "did you get this one?".
"""

from __future__ import annotations

import contextlib
import logging
import random
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import BadHeaderError, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from ..models import (
    REPORT_KINDS,
    BatchState,
    Continuity,
    ContinuityState,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
    PlanState,
)
from . import claiming, reports
from . import message as messages
from .content import PersonContent, person_content, person_context, variant_of
from .prepared import prepared_content
from .queue import leads_of
from .wording import TEMPLATE_OF, Rendered, UnusableTemplate, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skip:
    state: str  # skipped (not needed) or cancelled (withdrawn)
    reason: str


@dataclass(frozen=True)
class Wait:
    seconds: int
    reason: str


@dataclass
class Send:
    rendered: Rendered
    display_name: str = ""
    digest: str = ""
    undecided: int = 0
    attachments: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """What one call of notice_deliver() did; `retry_in` asks the task to come back."""

    notice_id: int
    state: str
    retry_in: float | None = None


# --- claiming ------------------------------------------------------------------------------


def notice_claim(*, notice_id: int, now: datetime | None = None) -> datetime | None:
    """Take a due pending notice for this process; its claim time, or None if another process
    has it, it is not due, or it is no longer pending."""
    now = now or timezone.now()
    return now if claiming.notice_claim(notice_id=notice_id, now=now) else None


def _end(notice: Notice, claimed_at: datetime, **fields: object) -> bool:
    """Write an ending of the claim this process holds; False if it lost the claim."""
    return (
        Notice.objects.filter(
            pk=notice.pk, state=NoticeState.SENDING, claimed_at=claimed_at
        ).update(**fields)
        == 1
    )


# --- deciding what a due notice is ----------------------------------------------------------


def _send_person(notice: Notice, content: PersonContent, **extra: object) -> Send:
    rendered = None
    if notice.kind == NoticeKind.BEFORE_MOVE:
        rendered = content.rendered.get(variant_of(extra))
    if rendered is None:
        context = person_context(notice.batch.name, content, **extra)
        rendered = render(TEMPLATE_OF[notice.kind], context)
    return Send(
        rendered=rendered,
        display_name=content.name,
        digest="cancelled" if extra.get("cancelled") else content.digest,
        undecided=content.undecided,
    )


def _last_said(notice: Notice) -> str | None:
    """The digest of the newest notice this person got about the move before it happened."""
    return (
        Notice.objects.filter(
            batch_id=notice.batch_id,
            recipient=notice.recipient,
            kind__in=(NoticeKind.BEFORE_MOVE, NoticeKind.CORRECTION),
            state=NoticeState.SENT,
        )
        .exclude(pk=notice.pk)
        .order_by("-sent_at", "-pk")
        .values_list("said_digest", flat=True)
        .first()
    )


def lead_text(minutes: int) -> str:
    """72 h, 90 min, 1.5 h: a lead time as people read it."""
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes / 60:g} h"


def _planning(notice: Notice) -> bool:
    return notice.batch.plan_state in (PlanState.QUEUED, PlanState.RUNNING)


WAIT_FOR_PLAN = Wait(60, "waiting for the batch's plan to finish")


def _decide_before(notice: Notice, now: datetime) -> Skip | Wait | Send:
    batch, member = notice.batch, notice.member
    if batch.state != BatchState.SCHEDULED:
        return Skip(NoticeState.CANCELLED, f"the batch is {batch.get_state_display().lower()}")
    if member is None or not member.is_active or member.state != MemberState.PENDING:
        return Skip(NoticeState.CANCELLED, "the person is no longer waiting in this batch")
    if now >= batch.start_at:
        return Skip(NoticeState.SKIPPED, "the move had started before it could be sent")
    if not notice.is_resend:
        later = [
            lead
            for lead in leads_of(batch)
            if lead < notice.lead_minutes and batch.start_at - timedelta(minutes=lead) <= now
        ]
        if later:
            return Skip(
                NoticeState.SKIPPED,
                f"the notice {lead_text(min(later))} before the start is due as well; it goes "
                "instead",
            )
    if _planning(notice):
        return WAIT_FOR_PLAN
    # Rendered ahead and still what the plan says (prepared.py), else read and rendered now.
    content = prepared_content(notice) or person_content(batch=batch, member=member)
    if not content.phones:
        return Skip(NoticeState.SKIPPED, "no phone syncs with this mailbox")
    if not content.needs_action:
        if not batch.notify_unaffected:
            return Skip(
                NoticeState.SKIPPED, "all phones keep syncing; this batch sends no notice then"
            )
        if not notice.is_resend and _last_said(notice) is not None:
            return Skip(
                NoticeState.SKIPPED, "all phones keep syncing; the short notice went already"
            )
        return _send_person(notice, content, short=True)
    return _send_person(notice, content)


def _decide_after(notice: Notice, now: datetime) -> Skip | Wait | Send:
    member = notice.member
    if member is None or member.state != MemberState.MOVED:
        return Skip(NoticeState.CANCELLED, "the mailbox is not recorded as moved")
    content = person_content(batch=notice.batch, member=member)
    if not content.phones:
        return Skip(NoticeState.SKIPPED, "no phone syncs with this mailbox")
    if not content.needs_action and not notice.batch.notify_unaffected:
        return Skip(NoticeState.SKIPPED, "all phones keep syncing; this batch sends no notice then")
    return _send_person(notice, content)


def _decide_correction(notice: Notice, now: datetime) -> Skip | Wait | Send:
    batch, member = notice.batch, notice.member
    if member is None:
        return Skip(NoticeState.CANCELLED, "the person is no longer in the batch")
    if member.state in (MemberState.MOVED, MemberState.FAILED):
        return Skip(
            NoticeState.SKIPPED,
            "the mailbox's move happened; the after-move notice says what applies",
        )
    said = _last_said(notice)
    if said is None:
        return Skip(NoticeState.SKIPPED, "nothing was sent to correct")
    if batch.state == BatchState.CANCELLED or member.state == MemberState.REMOVED:
        if said == "cancelled":
            return Skip(NoticeState.SKIPPED, "the person was told already that the move is off")
        content = person_content(batch=batch, member=member)
        return _send_person(notice, content, cancelled=True)
    if member.state != MemberState.PENDING or batch.state != BatchState.SCHEDULED:
        return Skip(
            NoticeState.SKIPPED, "the move has started; the after-move notice says what applies"
        )
    if _planning(notice):
        return WAIT_FOR_PLAN
    content = person_content(batch=batch, member=member)
    if content.digest == said:
        return Skip(NoticeState.SKIPPED, "the plan is back to what the person was told")
    return _send_person(notice, content)


def _decide_chase(notice: Notice, now: datetime) -> Skip | Wait | Send:
    """The follow-up of phones silent since the move: only those, each with its steps."""
    member = notice.member
    if member is None or member.state != MemberState.MOVED:
        return Skip(NoticeState.CANCELLED, "the mailbox is not recorded as moved")
    silent = set(
        Continuity.objects.filter(member=member, state=ContinuityState.SILENT).values_list(
            "partnership_id", flat=True
        )
    )
    if not silent:
        return Skip(NoticeState.SKIPPED, "its phones synced again before the follow-up went")
    content = person_content(batch=notice.batch, member=member)
    content.phones = [p for p in content.phones if p.partnership_id in silent]
    if member.moved_at is not None:  # when this mailbox moved, not when the batch started
        content.move_at = timezone.localtime(member.moved_at, ZoneInfo(content.time_zone))
    return _send_person(notice, content)


def _decide_report(notice: Notice, now: datetime) -> Skip | Wait | Send:
    if _planning(notice) and notice.kind == NoticeKind.REPORT_SCHEDULED:
        return WAIT_FOR_PLAN
    report = reports.batch_report(batch=notice.batch, kind=notice.kind)
    return Send(
        rendered=render("report", report.context),
        attachments=[(report.csv_name, report.csv_text, "text/csv")],
    )


DECIDE: dict[str, Callable[[Notice, datetime], Skip | Wait | Send]] = {
    NoticeKind.BEFORE_MOVE: _decide_before,
    NoticeKind.AFTER_MOVE: _decide_after,
    NoticeKind.CORRECTION: _decide_correction,
    NoticeKind.CHASE: _decide_chase,
    **dict.fromkeys(REPORT_KINDS, _decide_report),
}


notice_load = claiming.notice_load


def notice_preview(notice: Notice, *, now: datetime | None = None) -> Skip | Wait | Send:
    """What the notice would be if it were sent now (the batch page's preview); sends nothing."""
    return DECIDE[notice.kind](notice, now or timezone.now())


# --- sending ---------------------------------------------------------------------------------


class _Smtp(threading.local):
    """This thread's SMTP connection: a worker sending from a thread pool (the notices
    worker: `celery worker -Q notices --pool=threads`) must not interleave two messages on
    one connection."""

    backend = None
    last_used = 0.0


_smtp = _Smtp()
IDLE_CHECK_SECONDS = 5.0


def _smtp_send(message) -> None:
    """Send over this thread's connection, opened once and reused (a connection per message
    would cost an SMTP handshake each). A connection idle for a while is checked with NOOP
    before use and re-opened if the server closed it; a send that fails is never repeated
    here (the server may have taken it): the notice's retry decides."""
    if _smtp.backend is not None and time.monotonic() - _smtp.last_used > IDLE_CHECK_SECONDS:
        smtp = getattr(_smtp.backend, "connection", None)  # the SMTP backend's smtplib.SMTP
        try:
            if smtp is not None:
                smtp.noop()
        except (smtplib.SMTPException, OSError):
            connection_reset()
    if _smtp.backend is None:
        _smtp.backend = get_connection(fail_silently=False)
        _smtp.backend.open()
    message.connection = _smtp.backend
    try:
        smtp = getattr(_smtp.backend, "connection", None)
        if isinstance(message, messages.PreparedEmail) and isinstance(smtp, smtplib.SMTP):
            # Made ahead, envelope included: what Django's SMTP backend would do with it,
            # without building or checking the addresses again.
            smtp.sendmail(message.ahead.sender, message.ahead.recipients, message.dated())
        else:
            message.send()
    except Exception:
        connection_reset()
        raise
    _smtp.last_used = time.monotonic()


def connection_reset() -> None:
    """Forget this thread's SMTP connection (after an error, or in a forked child)."""
    if _smtp.backend is not None:
        # Closing a broken connection may fail; it is dropped either way.
        with contextlib.suppress(Exception):
            _smtp.backend.close()
    _smtp.backend = None


# Codes that mean "fix the configuration", not "this message can never go": kept retrying.
_AUTH_CODES = (530, 534, 535, 538)


def is_permanent(error: BaseException) -> bool:
    """5xx answers are permanent (RFC 5321 §4.2.1), except authentication problems; an
    unusable address or header is too. Everything else (4xx, timeouts, refused connections)
    is worth another try."""
    if isinstance(error, messages.UnusableAddress | BadHeaderError | UnusableTemplate):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500 and error.smtp_code not in _AUTH_CODES
    return False


def describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address}: {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for address, (code, reply) in error.recipients.items()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        reply = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{error.smtp_code} {reply}"
    return f"{type(error).__name__}: {error}"


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2 x base, 4 x base ... capped."""
    delay = settings.NOTICE_RETRY_SECONDS * 2 ** max(0, attempts - 1)
    delay = min(delay, settings.NOTICE_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.9, 1.1)


def notice_deliver(*, notice_id: int) -> Delivery:
    """Claim one notice, decide what it is now, send it, and record the end. Safe to call any
    number of times for one id: only a call that wins the claim does anything."""
    claimed_at = timezone.now()
    notice = claiming.notice_claim_load(notice_id=notice_id, now=claimed_at)
    if notice is None:
        return Delivery(notice_id, "not claimed")
    try:
        decision = DECIDE[notice.kind](notice, claimed_at)
    except Exception as error:  # a bug or a database error: the row must not stay claimed
        log.exception("notice %s: could not be prepared", notice_id)
        return _failed_attempt(notice, claimed_at, error)
    if isinstance(decision, Skip):
        _end(notice, claimed_at, state=decision.state, reason=decision.reason[:255])
        return Delivery(notice_id, decision.state)
    if isinstance(decision, Wait):
        return _give_back(notice, claimed_at, decision)
    if timezone.now() - claimed_at > timedelta(seconds=settings.NOTICE_CLAIM_TIMEOUT_SECONDS / 2):
        # Deciding took so long (a lock, a stalled database) that the sweeper may release
        # this claim soon: sending now could race the worker that takes it over. Nothing
        # stops a send once started (a thread pool keeps no Celery time limit), so the
        # claim's age is checked before it starts; the send itself is bounded by
        # EMAIL_TIMEOUT per SMTP command.
        return _give_back(notice, claimed_at, Wait(1, "it took too long to prepare"))
    written = {
        "subject": decision.rendered.subject,
        "body_text": decision.rendered.body_text,
        "body_html": decision.rendered.body_html,
        "message_id": messages.message_id(notice),
        "said_digest": decision.digest,
        "undecided": decision.undecided,
        "reason": "",
    }
    try:
        email = messages.build(
            notice,
            decision.rendered,
            display_name=decision.display_name,
            attachments=decision.attachments,
            ahead=messages.stored_ahead(notice),
        )
        if settings.EMAIL_BACKEND == DATABASE_BACKEND:
            # The outbox row and `sent` commit together: no window for a second copy at all.
            with transaction.atomic():
                _smtp_send(email)
                ended = claiming.notice_end_sent(notice, claimed_at, written)
                if not ended.sent:
                    raise ClaimLost(notice_id)
        else:
            _smtp_send(email)
            ended = _end_sent_after_send(notice, claimed_at, written)
    except ClaimLost:
        return Delivery(notice_id, "claim lost")
    except Exception as error:
        return _failed_attempt(notice, claimed_at, error, **written)
    _correct_if_changed_meanwhile(notice, ended.member_now)
    return Delivery(notice_id, NoticeState.SENT)


def _end_sent_after_send(
    notice: Notice, claimed_at: datetime, written: dict[str, object]
) -> claiming.Ended:
    """The SMTP server has the message: a database error now is answered by writing the
    ending again on a fresh connection, not by sending again (a second error gives up, and
    the claim's release sends it again, with the same Message-ID)."""
    try:
        return claiming.notice_end_sent(notice, claimed_at, written)
    except DatabaseError:
        log.warning("notice %s: sent, but recording it failed; recording again", notice.pk)
        connection.close()
        return claiming.notice_end_sent(notice, claimed_at, written)


def _give_back(notice: Notice, claimed_at: datetime, wait: Wait) -> Delivery:
    """Not an attempt: the notice goes back as it was, to be tried again a little later."""
    _end(
        notice,
        claimed_at,
        state=NoticeState.PENDING,
        attempts=F("attempts") - 1,
        next_try_at=claimed_at + timedelta(seconds=wait.seconds),
        enqueued_at=claimed_at,
        reason=wait.reason[:255],
    )
    return Delivery(notice.pk, NoticeState.PENDING, retry_in=wait.seconds)


DATABASE_BACKEND = "migrations_plan.outbox.DatabaseEmailBackend"


class ClaimLost(RuntimeError):
    """The sweeper released this process's claim: another sender owns the notice now."""


def _correct_if_changed_meanwhile(notice: Notice, now: tuple[object, ...] | None) -> None:
    """A reschedule, a plan or a removal that committed while this notice was on its way did
    not see it as sent, so it queued no correction for it: `now` is the person's batch as the
    `sent` ending read it, one statement after writing it (claiming.notice_end_sent)."""
    if notice.kind not in (NoticeKind.BEFORE_MOVE, NoticeKind.CORRECTION) or notice.member is None:
        return
    if now is None or now == (
        notice.member.state,
        notice.batch.start_at,
        notice.batch.planned_at,
        notice.batch.state,
    ):
        return
    from .corrections import corrections_queue  # corrections imports this module's siblings

    batch = MoveBatch.objects.get(pk=notice.batch_id)
    corrections_queue(batch=batch, member_ids=[notice.member_id])


def _failed_attempt(
    notice: Notice, claimed_at: datetime, error: BaseException, **written: object
) -> Delivery:
    text = describe(error)[:2000]
    attempts = notice.attempts  # loaded after the claim: this attempt included
    if is_permanent(error) or attempts >= settings.NOTICE_MAX_ATTEMPTS:
        why = "refused for good" if is_permanent(error) else f"gave up after {attempts} attempts"
        _end(notice, claimed_at, state=NoticeState.FAILED, last_error=f"{text} ({why})", **written)
        log.warning("notice %s failed: %s", notice.pk, text)
        return Delivery(notice.pk, NoticeState.FAILED)
    delay = retry_delay(attempts)
    _end(
        notice,
        claimed_at,
        state=NoticeState.PENDING,
        last_error=text,
        next_try_at=claimed_at + timedelta(seconds=delay),
        enqueued_at=claimed_at,
        **written,
    )
    return Delivery(notice.pk, NoticeState.PENDING, retry_in=delay)


# --- what beat runs ------------------------------------------------------------------------


def _rate_budget(now: datetime) -> int:
    """How many ids this dispatch may hand out: NOTICE_RATE_PER_MINUTE (0: no limit) minus
    what was claimed in the last minute and what is handed out and not claimed yet. The
    database holds the backlog, the broker only what may go before beat's next run."""
    rate = settings.NOTICE_RATE_PER_MINUTE
    if not rate:
        return 1_000_000_000
    counts = Notice.objects.aggregate(
        claimed=Count("pk", filter=Q(claimed_at__gte=now - timedelta(minutes=1))),
        waiting=Count(
            "pk",
            filter=Q(state=NoticeState.PENDING, enqueued_at__gte=now - timedelta(minutes=1)),
        ),
    )
    return rate - counts["claimed"] - counts["waiting"]


@dataclass(frozen=True)
class Dispatch:
    released: int
    failed: int
    enqueued: list[int]


def notices_dispatch(
    *,
    enqueue: Callable[[Sequence[int]], None],
    now: datetime | None = None,
    limit: int = 20_000,
) -> Dispatch:
    """Release claims nobody confirmed, then hand the ids of due notices to `enqueue` once
    this transaction commits. Two runs at once hand out each id once (SKIP LOCKED, and the
    `enqueued_at` stamp); an id handed out but lost by the broker is handed out again after
    NOTICE_REQUEUE_SECONDS."""
    now = now or timezone.now()
    stale = Q(
        state=NoticeState.SENDING,
        claimed_at__lt=now - timedelta(seconds=settings.NOTICE_CLAIM_TIMEOUT_SECONDS),
    )
    failed = Notice.objects.filter(stale, attempts__gte=settings.NOTICE_MAX_ATTEMPTS).update(
        state=NoticeState.FAILED,
        last_error="the worker sending it stopped, and it had no attempts left",
    )
    released = Notice.objects.filter(stale).update(
        state=NoticeState.PENDING,
        claimed_at=None,
        enqueued_at=None,
        last_error="claimed by a worker that stopped before confirming it; sent again",
    )
    requeue_before = now - timedelta(seconds=settings.NOTICE_REQUEUE_SECONDS)
    handed = Q(enqueued_at__isnull=True)
    # Ids handed out and not claimed are lost only if nothing is being claimed at all: while
    # workers work through a backlog, handing the same ids out again would only grow the queue.
    if not Notice.objects.filter(claimed_at__gte=requeue_before).exists():
        handed |= Q(enqueued_at__lt=requeue_before)
    limit = min(limit, _rate_budget(now))
    if limit <= 0:
        return Dispatch(released=released, failed=failed, enqueued=[])
    with transaction.atomic():
        ids = list(
            Notice.objects.select_for_update(skip_locked=True)
            .filter(claiming.due(now))
            .filter(handed)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        for start in range(0, len(ids), 1000):
            Notice.objects.filter(pk__in=ids[start : start + 1000]).update(enqueued_at=now)
        if ids:
            transaction.on_commit(lambda: enqueue(ids))
    if released or failed:
        log.warning("notices: %s claims released, %s failed for good", released, failed)
    return Dispatch(released=released, failed=failed, enqueued=ids)
