"""Claiming a due notice and reading it with its batch and person, in one statement.

A worker sends hundreds of notices a second, and each used to cost two round trips and the
compilation of a four-table select_related before anything was decided. On PostgreSQL the
claim's conditional UPDATE returns the row to a SELECT joining what the decision needs
(`WITH claimed AS (UPDATE ... RETURNING *) SELECT ...`), built once per process from the
models' own columns; the rows become model instances exactly as select_related would make them.
SQLite cannot put an UPDATE in a WITH: there it is the same UPDATE, then the same SELECT.

One statement reads its joins from the snapshot it started with, while the UPDATE re-reads a
row it had to wait for: a claim that waited for a reschedule would pair the new notice with
the old batch. That shows as a due time that does not match the start; it is read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import F, Field, Model, Q
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox
from exsync.setsql import aware, is_postgresql, planned, planned_together, prepare

from ..models import BatchMailbox, MoveBatch, Notice, NoticeKind, NoticeState


def due(now: datetime) -> Q:
    return Q(state=NoticeState.PENDING, due_at__lte=now) & (
        Q(next_try_at__isnull=True) | Q(next_try_at__lte=now)
    )


def notice_claim(*, notice_id: int, now: datetime) -> bool:
    """Take a due pending notice for this process (pending -> sending, `claimed_at`); False if
    another process has it, it is not due, or it is no longer pending."""
    return (
        Notice.objects.filter(due(now), pk=notice_id).update(
            state=NoticeState.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        == 1
    )


def notice_load(notice_id: int) -> Notice:
    return Notice.objects.select_related(
        "batch", "member", "member__mailbox", "member__mailbox__server"
    ).get(pk=notice_id)


@dataclass(frozen=True)
class _Part:
    """One model of the joined row: its alias and where it hangs (parent alias, FK field)."""

    model: type[Model]
    alias: str
    parent: str | None = None
    field: str = ""

    def fields(self) -> list[Field]:
        return list(self.model._meta.concrete_fields)


_PARTS = (
    _Part(Notice, "n"),
    _Part(MoveBatch, "b", "n", "batch"),
    _Part(BatchMailbox, "m", "n", "member"),
    _Part(Mailbox, "mb", "m", "mailbox"),
    _Part(ExchangeServer, "s", "mb", "server"),
)


@cache
def _claim_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(f"{part.alias}.{quote(f.column)}" for part in _PARTS for f in part.fields())
    joins = " ".join(
        f"{'JOIN' if part.field == 'batch' else 'LEFT JOIN'} {quote(part.model._meta.db_table)} "
        f"{part.alias} ON {part.alias}.id = {part.parent}."
        f"{quote(_field(part).column)}"
        for part in _PARTS[1:]
    )
    return (
        f"WITH claimed AS (UPDATE {quote(Notice._meta.db_table)} SET state = %(sending)s, "
        "claimed_at = %(now)s, attempts = attempts + 1 "
        "WHERE id = %(id)s AND state = %(pending)s AND due_at <= %(now)s "
        "AND (next_try_at IS NULL OR next_try_at <= %(now)s) RETURNING *) "
        f"SELECT {columns} FROM claimed n {joins}"
    )


def _field(part: _Part):
    parent = next(p for p in _PARTS if p.alias == part.parent)
    return parent.model._meta.get_field(part.field)


@cache
def _reading(part: _Part) -> tuple[list[str], int, list[tuple[int, Field]]]:
    """How a part's columns become an instance: attnames, the primary key's position, and
    the fields whose values need converting (from_db_value), worked out once per process."""
    fields = part.fields()
    pk = [f.primary_key for f in fields].index(True)
    converted = [(i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    return [f.attname for f in fields], pk, converted


def _instance(part: _Part, values: list[object]) -> Model | None:
    attnames, pk, converted = _reading(part)
    if values[pk] is None:
        return None  # a LEFT JOIN that found nothing
    for i, field in converted:
        if values[i] is not None:
            values[i] = field.from_db_value(values[i], None, connection)
    return part.model.from_db(connection.alias, attnames, values)


def notice_claim_load(*, notice_id: int, now: datetime) -> Notice | None:
    """Claim the notice and read it with batch, member, mailbox and server; None if not won."""
    if not is_postgresql():  # the portable path: claim, then read
        return notice_load(notice_id) if notice_claim(notice_id=notice_id, now=now) else None
    with connection.cursor() as cursor:
        planned(
            cursor,
            "exsync_notice_claim",
            _claim_sql(),
            {
                "id": notice_id,
                "now": now,
                "sending": NoticeState.SENDING,
                "pending": NoticeState.PENDING,
            },
        )
        row = cursor.fetchone()
        if row is not None:
            _prepare_ending(cursor)
    if row is None:
        return None
    instances: dict[str, Model | None] = {}
    start = 0
    for part in _PARTS:
        width = len(_reading(part)[0])
        instances[part.alias] = _instance(part, list(row[start : start + width]))
        start += width
        if part.parent is not None and instances[part.parent] is not None:
            _field(part).set_cached_value(instances[part.parent], instances[part.alias])
    notice = instances["n"]
    if notice.kind == NoticeKind.BEFORE_MOVE and notice.due_at != notice.batch.start_at - timedelta(
        minutes=notice.lead_minutes
    ):
        # The claim waited for a reschedule's lock on the notice: the UPDATE re-read the row
        # as the reschedule left it, but the joined batch is the statement's older snapshot.
        # Read both again now that the reschedule committed (a resend's own due time lands
        # here too: one query more, for a rare notice).
        return notice_load(notice_id)
    return notice


# --- the ending and the look back of a sent notice -----------------------------------------


@cache
def _sent_sql() -> str:
    """The `sent` ending as one planned statement (setsql.planned): it runs once per notice,
    and the ORM's UPDATE of eleven columns cost more to compile than to run."""
    column = {f.name: f.column for f in Notice._meta.concrete_fields}
    written = ("subject", "body_text", "body_html", "message_id", "said_digest", "undecided")
    sets = ", ".join(f"{column[name]} = %({name})s" for name in written)
    return (
        f"UPDATE {Notice._meta.db_table} SET {column['state']} = %(sent)s, "
        f"{column['sent_at']} = %(sent_at)s, {column['last_error']} = '', "
        f"{column['next_try_at']} = NULL, {column['reason']} = '', {sets} "
        f"WHERE {column['id']} = %(id)s AND {column['state']} = %(sending)s "
        f"AND {column['claimed_at']} = %(claimed_at)s"
    )


@dataclass(frozen=True)
class Ended:
    """What the `sent` ending found: whether this process's claim held, and the member's
    state and its batch's start, plan time and state right after it (None without one)."""

    sent: bool
    member_now: tuple[object, ...] | None


def notice_end_sent(notice: Notice, claimed_at: datetime, written: dict[str, object]) -> Ended:
    """Record the notice sent, with what it said, on the claim this process holds, and read
    its person's batch as it is now, in one round trip (delivery._correct_if_changed_meanwhile).

    The read is a statement of its own, and it takes a key-share lock on the batch row: a
    reschedule, a cancellation or a removal holds that row FOR UPDATE (services._locked)
    while it decides whom to correct. Either it committed first and the read waits for it
    and sees what it changed, or this ending commits first and it sees the notice sent.
    """
    params = {
        **{key: value for key, value in written.items() if key != "reason"},
        "sent": NoticeState.SENT,
        "sent_at": timezone.now(),
        "id": notice.pk,
        "sending": NoticeState.SENDING,
        "claimed_at": claimed_at,
    }
    looked = {"id": notice.pk, "sent": NoticeState.SENT, "claimed_at": claimed_at}
    with connection.cursor() as cursor:
        planned_together(
            cursor,
            [
                ("exsync_notice_sent", _sent_sql(), params),
                ("exsync_notice_sent_now", _sent_now_sql(), looked),
            ],
        )
        row = cursor.fetchone()
    if row is None:  # the notice is gone (its batch was deleted meanwhile)
        return Ended(sent=False, member_now=None)
    now = tuple(aware(value) for value in row[1:]) if row[1] is not None else None
    return Ended(sent=bool(row[0]), member_now=now)


def _prepare_ending(cursor: CursorWrapper) -> None:
    """The ending's statements are prepared with the claim, before anything is sent: once the
    SMTP server has the message, nothing new should be able to fail (setsql.prepare)."""
    prepare(cursor, "exsync_notice_sent", _sent_sql())
    prepare(cursor, "exsync_notice_sent_now", _sent_now_sql())


@cache
def _sent_now_sql() -> str:
    notice, member, batch = Notice._meta, BatchMailbox._meta, MoveBatch._meta
    return (
        f"SELECT n.{notice.get_field('state').column} = %(sent)s "
        f"AND n.{notice.get_field('claimed_at').column} = %(claimed_at)s, "
        f"m.{member.get_field('state').column}, b.{batch.get_field('start_at').column}, "
        f"b.{batch.get_field('planned_at').column}, b.{batch.get_field('state').column} "
        f"FROM {notice.db_table} n "
        f"JOIN {batch.db_table} b ON b.{batch.pk.column} = n.{notice.get_field('batch').column} "
        f"LEFT JOIN {member.db_table} m ON m.{member.pk.column} = n.{notice.get_field('member').column} "
        f"WHERE n.{notice.pk.column} = %(id)s" + (" FOR KEY SHARE OF b" if is_postgresql() else "")
    )
