"""After the move: which phones came back, which went silent, which were re-created or gone.

When a mailbox is recorded as moved, each of its predicted partnerships gets a Continuity row
holding what was known at the move (the prediction, the partnership's syncs) and the mailbox
is watched: every later device import keeps what it saw of its partnerships
(devices.PartnershipObservation). continuity_refresh() then decides every open row in a fixed
number of statements, whatever the number of mailboxes:

- confirmed: a successful sync after the move time;
- replaced: the same DeviceId re-created (its first sync is after the move), or the person has
  a partnership with a new DeviceId first synced after the move while this one has not synced;
- gone: a full export after the move no longer lists it (the import marked it stale);
- pending: no export has listed it since the move, or the grace period has not passed;
- silent: listed by an export since the move, no sync, and the grace period is over.

Rows stay open (re-decided after each import) while their mailbox is watched
(CONTINUITY_WATCH_DAYS after the move); a phone confirmed early can still turn out re-created.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.models import Mailbox
from exsync.setsql import is_postgresql, plus_hours

from .models import (
    Continuity,
    ContinuityState,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
)


def continuity_start(
    *, batch: MoveBatch, mailbox_ids: list[int], now: datetime | None = None
) -> int:
    """Continuity rows for the batch's moved members that have none yet, from their predictions
    and their partnerships as they are now (what is known at the move), and watch the mailboxes
    just recorded as moved (`mailbox_ids`; others keep their own watch). One INSERT ... SELECT
    and one UPDATE; returns the rows created."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO migrations_plan_continuity (member_id, partnership_id, moved_at, "
            "silent_after, predicted, explanation_id, last_sync_at_move, first_sync_at_move, "
            "state) "
            f"SELECT pr.member_id, pr.partnership_id, bm.moved_at, {plus_hours('bm.moved_at')}, "
            "pr.outcome, pr.explanation_id, "
            "p.last_success_sync_at, p.first_sync_at, %s "
            "FROM migrations_plan_prediction pr "
            "JOIN migrations_plan_batchmailbox bm ON bm.id = pr.member_id "
            "JOIN devices_partnership p ON p.id = pr.partnership_id "
            "WHERE bm.batch_id = %s AND bm.state = %s AND bm.moved_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM migrations_plan_continuity c "
            "WHERE c.member_id = pr.member_id AND c.partnership_id = pr.partnership_id)",
            [batch.grace_hours, ContinuityState.PENDING, batch.pk, MemberState.MOVED],
        )
        created = cursor.rowcount
    watch = now + timedelta(days=settings.CONTINUITY_WATCH_DAYS)
    Mailbox.objects.filter(
        pk__in=mailbox_ids,
        batch_memberships__batch=batch,
        batch_memberships__state=MemberState.MOVED,
    ).filter(Q(watch_until__isnull=True) | Q(watch_until__lt=watch)).update(watch_until=watch)
    return created


def continuity_grace(*, batch: MoveBatch) -> int:
    """The batch's grace period changed: its rows' silent_after follows."""
    return Continuity.objects.filter(member__batch=batch).update(
        silent_after=F("moved_at") + timedelta(hours=batch.grace_hours)
    )


def _open_rows_sql(now_param: str = "%(now)s") -> str:
    """The rows still decided: their mailbox is still watched, or the phone is silent (one that
    syncs weeks later leaves the helpdesk's queue; the partnership's own sync says so)."""
    return (
        "(state = %(silent)s OR member_id IN (SELECT bm.id FROM migrations_plan_batchmailbox bm "
        "JOIN devices_mailbox m ON m.id = bm.mailbox_id "
        f"WHERE m.watch_until >= {now_param}))"
    )


STATES = {
    "replaced": ContinuityState.REPLACED,
    "confirmed": ContinuityState.CONFIRMED,
    "gone": ContinuityState.GONE,
    "pending": ContinuityState.PENDING,
    "silent": ContinuityState.SILENT,
}

# PostgreSQL: one statement, set-based (each subquery runs once, not once per row), and only
# rows whose outcome changed are written: the 15-minute run over 400,000 phones that changed
# nothing writes nothing (bench-import: refresh_again_s).
_REFRESH_PG = """
WITH open AS MATERIALIZED (
  SELECT c.id, c.member_id, c.partnership_id, c.moved_at, c.silent_after, c.first_sync_at_move
  FROM migrations_plan_continuity c
  JOIN migrations_plan_batchmailbox bm ON bm.id = c.member_id
  JOIN devices_mailbox m ON m.id = bm.mailbox_id
  WHERE m.watch_until >= %(now)s OR c.state = %(silent)s),
seen AS (
  SELECT o.id, MAX(ob.observed_at) AS observed_at FROM open o
  JOIN devices_partnershipobservation ob
    ON ob.partnership_id = o.partnership_id AND ob.observed_at > o.moved_at
  GROUP BY o.id),
successor AS (
  SELECT o.id, MIN(p2.id) AS replaced_by_id FROM open o
  JOIN migrations_plan_batchmailbox bm ON bm.id = o.member_id
  JOIN devices_partnership p2 ON p2.mailbox_id = bm.mailbox_id AND p2.id <> o.partnership_id
  WHERE (p2.first_sync_at > o.moved_at OR (p2.first_sync_at IS NULL AND p2.created_at > o.moved_at))
    AND NOT EXISTS (SELECT 1 FROM migrations_plan_continuity c2
                    WHERE c2.member_id = o.member_id AND c2.partnership_id = p2.id)
  GROUP BY o.id),
decided AS (
  SELECT o.id, s.observed_at, p.last_success_sync_at, r.replaced_by_id, CASE
    WHEN p.first_sync_at > o.moved_at
         AND (o.first_sync_at_move IS NULL OR p.first_sync_at > o.first_sync_at_move)
      THEN %(replaced)s
    WHEN p.last_success_sync_at > o.moved_at THEN %(confirmed)s
    WHEN r.replaced_by_id IS NOT NULL THEN %(replaced)s
    WHEN p.is_stale AND p.updated_at > o.moved_at THEN %(gone)s
    WHEN s.observed_at IS NULL THEN %(pending)s
    WHEN o.silent_after <= %(now)s THEN %(silent)s
    ELSE %(pending)s END AS state
  FROM open o
  JOIN devices_partnership p ON p.id = o.partnership_id
  LEFT JOIN seen s ON s.id = o.id
  LEFT JOIN successor r ON r.id = o.id)
UPDATE migrations_plan_continuity c
SET observed_at = d.observed_at, last_success_sync_at = d.last_success_sync_at,
    replaced_by_id = d.replaced_by_id, state = d.state, checked_at = %(now)s
FROM decided d
WHERE c.id = d.id
  AND (c.observed_at, c.last_success_sync_at, c.replaced_by_id, c.state)
      IS DISTINCT FROM (d.observed_at, d.last_success_sync_at, d.replaced_by_id, d.state)
"""


@transaction.atomic
def continuity_refresh(*, now: datetime | None = None) -> int:
    """Decide every open Continuity row from the observations and partnerships, whatever the
    number of phones: one statement on PostgreSQL (rows whose outcome changed are written),
    two UPDATEs with correlated subqueries on SQLite (the embedded default, small
    organisations). Returns the rows written."""
    # As the ORM writes it (SQLite keeps datetimes as text in one format).
    now = connection.ops.adapt_datetimefield_value(now or timezone.now())
    if is_postgresql():  # one statement there; two portable UPDATEs elsewhere
        with connection.cursor() as cursor:
            cursor.execute(_REFRESH_PG, {"now": now, **STATES})
            return cursor.rowcount
    c = "migrations_plan_continuity"
    params = {"now": now, "silent": ContinuityState.SILENT}
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {c} SET "
            "observed_at = (SELECT MAX(o.observed_at) FROM devices_partnershipobservation o "
            f"WHERE o.partnership_id = {c}.partnership_id AND o.observed_at > {c}.moved_at), "
            "last_success_sync_at = (SELECT p.last_success_sync_at FROM devices_partnership p "
            f"WHERE p.id = {c}.partnership_id), "
            # A partnership of the same person, with a DeviceId the plan did not know, first
            # synced after the move.
            "replaced_by_id = (SELECT MIN(p2.id) FROM devices_partnership p2 "
            "JOIN migrations_plan_batchmailbox bm ON bm.mailbox_id = p2.mailbox_id "
            f"WHERE bm.id = {c}.member_id AND p2.id <> {c}.partnership_id "
            f"AND (p2.first_sync_at > {c}.moved_at "
            f"OR (p2.first_sync_at IS NULL AND p2.created_at > {c}.moved_at)) "
            f"AND NOT EXISTS (SELECT 1 FROM {c} c2 WHERE c2.member_id = {c}.member_id "
            "AND c2.partnership_id = p2.id)), "
            "checked_at = %(now)s "
            f"WHERE {_open_rows_sql()}",
            params,
        )
        cursor.execute(
            f"UPDATE {c} SET state = CASE "
            # The same DeviceId re-created: its first sync moved past the move.
            f"WHEN (SELECT p.first_sync_at FROM devices_partnership p WHERE p.id = {c}.partnership_id) "
            f"> {c}.moved_at AND ({c}.first_sync_at_move IS NULL OR "
            f"(SELECT p.first_sync_at FROM devices_partnership p WHERE p.id = {c}.partnership_id) "
            f"> {c}.first_sync_at_move) THEN %(replaced)s "
            f"WHEN {c}.last_success_sync_at > {c}.moved_at THEN %(confirmed)s "
            f"WHEN {c}.replaced_by_id IS NOT NULL THEN %(replaced)s "
            f"WHEN EXISTS (SELECT 1 FROM devices_partnership p WHERE p.id = {c}.partnership_id "
            f"AND p.is_stale AND p.updated_at > {c}.moved_at) THEN %(gone)s "
            f"WHEN {c}.observed_at IS NULL THEN %(pending)s "
            f"WHEN {c}.silent_after <= %(now)s THEN %(silent)s "
            "ELSE %(pending)s END "
            f"WHERE {_open_rows_sql()}",
            {**params, **STATES},
        )
        decided = cursor.rowcount
    return decided


CHASE_ONCE_DAYS = 30


def chases_queue(*, now: datetime | None = None) -> int:
    """One follow-up e-mail per person with a silent phone (the notice's key makes it one),
    due at once; what it says is decided when it is sent (delivery._decide_chase). One
    INSERT ... SELECT however many people. A mailbox moved twice (two batches) within
    CHASE_ONCE_DAYS gets one follow-up, not one per batch."""
    now = now or timezone.now()
    since = connection.ops.adapt_datetimefield_value(now - timedelta(days=CHASE_ONCE_DAYS))
    now = connection.ops.adapt_datetimefield_value(now)
    notice = Notice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {notice} (batch_id, member_id, mailbox_id, kind, lead_minutes, "
            "revision, is_resend, due_at, state, recipient, attempts, last_error, reason, "
            "subject, body_text, body_html, message_id, said_digest, undecided, created_at, "
            "prepared_key, prepared_mime) "
            "SELECT bm.batch_id, bm.id, bm.mailbox_id, %(chase)s, 0, 0, %(false)s, %(now)s, "
            "%(pending)s, LOWER(m.primary_smtp_address), 0, '', '', '', '', '', '', '', 0, "
            f"%(now)s, '', %(nothing)s FROM migrations_plan_batchmailbox bm "
            "JOIN devices_mailbox m ON m.id = bm.mailbox_id "
            "WHERE bm.state = %(moved)s "
            # A mailbox moved in two batches: the follow-up is about its latest move.
            "AND bm.id = (SELECT MAX(b2.id) FROM migrations_plan_batchmailbox b2 "
            "WHERE b2.mailbox_id = bm.mailbox_id AND b2.state = %(moved)s) "
            "AND EXISTS (SELECT 1 FROM migrations_plan_continuity c "
            "WHERE c.member_id = bm.id AND c.state = %(silent)s) "
            f"AND NOT EXISTS (SELECT 1 FROM {notice} n WHERE n.kind = %(chase)s "
            "AND (n.member_id = bm.id OR (n.mailbox_id = bm.mailbox_id AND n.created_at >= %(since)s))) "
            "ON CONFLICT DO NOTHING",
            {
                "chase": NoticeKind.CHASE,
                "false": False,
                "now": now,
                "since": since,
                "pending": NoticeState.PENDING,
                "moved": MemberState.MOVED,
                "silent": ContinuityState.SILENT,
                "nothing": b"",
            },
        )
        return cursor.rowcount
