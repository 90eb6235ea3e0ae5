"""Every set-based SQL helper and every PostgreSQL/SQLite difference, in one place.

Imports (devices/writers.py) and the planner's writes (migrations_plan/services.py) stage
rows in a temporary table, filled by COPY (PostgreSQL) or batched inserts (SQLite), then join,
check and upsert them in a few SQL statements: a Python loop of ORM saves over 400,000 devices
takes many minutes, COPY plus INSERT ... ON CONFLICT takes seconds (`make bench-import`).
The rest of the code asks this module for what differs between the two databases (boolean
literals, "the last row of each key", locks, session settings, time arithmetic) instead of
testing the vendor itself; statements that exist only on one database say so where they
are used (continuity.py, notices/claiming.py: PostgreSQL's one-statement paths).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper

COPY_READ_SIZE = 1 << 16  # characters handed to COPY per read: PostgreSQL parses meanwhile

WALLCLOCK = "wallclock"
"""A staging column type: an export's time of day without a zone, read in the stage's zone.

Its values are naive datetimes or wall-clock text whose day/month order the file decides at
the end of its one pass (devices/importers/dates.py: "~yyyy-AA-BB HH:MM:SS"). They are staged
as text; :meth:`Stage.dated` reads them as timestamps in the order decided."""


def is_postgresql(connection: BaseDatabaseWrapper | None = None) -> bool:
    """For the few features written once per database (a one-statement PostgreSQL path next
    to a portable one): continuity.continuity_refresh, notices/claiming.py."""
    return (connection or default_connection).vendor == "postgresql"


# -- what differs between the two databases ----------------------------------------------------


def sql_bool(value: bool, connection: BaseDatabaseWrapper | None = None) -> str:
    """A boolean literal: true/false on PostgreSQL, 1/0 on SQLite."""
    if is_postgresql(connection):
        return "true" if value else "false"
    return "1" if value else "0"


def last_row_per(
    source: str,
    key: str,
    columns: Sequence[str],
    *,
    newest: Sequence[str],
    connection: BaseDatabaseWrapper | None = None,
) -> str:
    """SQL: one row per `key` of `source` (a table), the first by `newest` (column names,
    descending; the last one must be unique per row, such as a line number)."""
    wanted = ", ".join([key, *columns])
    descending = ", ".join(f"{c} DESC" for c in newest)
    if is_postgresql(connection):
        return f"SELECT DISTINCT ON ({key}) {wanted} FROM {source} ORDER BY {key}, {descending}"
    inner = ", ".join(f"i.{c} DESC" for c in newest)
    last = newest[-1]
    return (
        f"SELECT {wanted} FROM {source} o WHERE {last} = (SELECT i.{last} FROM {source} i "
        f"WHERE i.{key} = o.{key} ORDER BY {inner} LIMIT 1)"
    )


def advisory_xact_lock(*keys: int) -> None:
    """Serialise a transaction's critical section across processes: a PostgreSQL advisory
    lock held until the transaction ends; on SQLite the write lock of an IMMEDIATE
    transaction (settings) already lets one writer in at a time."""
    if is_postgresql():
        with default_connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_xact_lock({', '.join(['%s'] * len(keys))})", keys)


@contextmanager
def local_settings(values: Mapping[str, str]) -> Iterator[None]:
    """PostgreSQL planner settings for the statements inside the block, within the current
    transaction (SET LOCAL); the values in force before are put back after it, not the server
    defaults. Nothing on SQLite."""
    if not is_postgresql():
        yield
        return
    names = list(values)
    with default_connection.cursor() as cursor:
        current = ", ".join(f"current_setting('{name}')" for name in names)
        cursor.execute(f"SELECT {current}")
        before = cursor.fetchone()
        cursor.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
            [v for name in names for v in (name, values[name])],
        )
    yield
    # Not in a `finally`: after a failed statement the transaction only accepts its rollback,
    # which undoes SET LOCAL anyway, and the caller must see the real error.
    with default_connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
            [v for name, old in zip(names, before, strict=True) for v in (name, old)],
        )


@contextmanager
def session_setting(name: str, value: str) -> Iterator[None]:
    """A PostgreSQL session setting for the block (outside a transaction too), RESET after
    it to the session's own value. Nothing on SQLite."""
    if not is_postgresql():
        yield
        return
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
    yield
    # Not in a `finally`: in a failed transaction RESET would fail too and hide the error.
    with default_connection.cursor() as cursor:
        cursor.execute(f"RESET {name}")


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_PLANNED = "_exsync_planned"


def planned(cursor: CursorWrapper, name: str, sql: str, params: Mapping[str, object]) -> None:
    """Execute `sql` (with %(name)s placeholders) on `cursor`; on PostgreSQL as a statement
    prepared once per connection (PREPARE, then EXECUTE), so that a statement run for every
    notice sent is not planned again each time: planning the claim's five-table join cost
    more than running it. Aware datetimes are handed over as the ORM would hand them (naive
    UTC text on SQLite). Not for a connection pooler in transaction mode (PgBouncer), where
    the next transaction may land on a session that never saw the PREPARE."""
    planned_together(cursor, [(name, sql, params)])


def planned_together(
    cursor: CursorWrapper, statements: Sequence[tuple[str, str, Mapping[str, object]]]
) -> None:
    """Execute several planned statements (see planned) in one round trip on PostgreSQL: one
    query string, so one implicit transaction when none is open, each statement with a
    snapshot of its own. The cursor holds the last one's result. One after the other on
    SQLite."""
    db = cursor.db
    if db.vendor != "postgresql":
        for _, sql, params in statements:
            cursor.execute(sql, _adapted(db, params))
        return
    calls, values = [], []
    for name, sql, params in statements:
        prepared, names = prepare(cursor, name, sql)
        arguments = f"({', '.join(['%s'] * len(names))})" if names else ""
        calls.append(f"EXECUTE {prepared}{arguments}")
        adapted = _adapted(db, params)
        values += [adapted[n] for n in names]
    cursor.execute("; ".join(calls), values)


def prepare(cursor: CursorWrapper, name: str, sql: str) -> tuple[str, tuple[str, ...]]:
    """PREPARE `sql` on this PostgreSQL connection unless it was: its prepared name (`name`
    and a hash of the SQL, so that a changed statement is never run under an old name) and
    its parameter names in order. Done before a send for what runs after it, so that nothing
    new can fail once the SMTP server has the message."""
    prepared, names, numbered = _statement(name, sql)
    done = cursor.db.__dict__.setdefault(_PLANNED, set())
    if prepared not in done:
        cursor.execute(f"PREPARE {prepared} AS {numbered}")
        done.add(prepared)
    return prepared, names


@lru_cache(maxsize=64)
def _statement(name: str, sql: str) -> tuple[str, tuple[str, ...], str]:
    """A statement's prepared name, parameter names and numbered SQL, worked out once per
    process: hashing and rewriting the SQL for each of five statements per notice sent cost
    more than the rest of setsql together."""
    prepared = f"{name}_{hashlib.sha256(sql.encode()).hexdigest()[:10]}"
    names = tuple(dict.fromkeys(_PLACEHOLDER.findall(sql)))
    numbered = _PLACEHOLDER.sub(lambda m: f"${names.index(m[1]) + 1}", sql)
    # No parameters are handed over with PREPARE, so psycopg2 leaves `%` alone: undo the doubling.
    return prepared, names, numbered.replace("%%", "%")


def _adapted(db: BaseDatabaseWrapper, params: Mapping[str, object]) -> dict[str, object]:
    return {
        key: db.ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
        for key, value in params.items()
    }


def aware(value: object) -> object:
    """A datetime read by a raw cursor as the ORM would give it: SQLite hands back naive UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _forget_planned(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """A new session has no prepared statements (a reconnect after CONN_MAX_AGE, a fork)."""
    connection.__dict__.pop(_PLANNED, None)


connection_created.connect(_forget_planned)


def plus_hours(column: str) -> str:
    """SQL: `column` plus %s hours (a parameter), on either database."""
    if is_postgresql():
        return f"{column} + %s * INTERVAL '1 hour'"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {column}, '+' || %s || ' hours')"


class Stage:
    """A temporary table of (name, SQL type) columns living until the transaction ends."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        name: str,
        columns: Sequence[tuple[str, str]],
        *,
        tz: tzinfo = UTC,
    ) -> None:
        self.connection = connection
        self.name = name
        # Naive datetimes (exports carry none) are wall-clock times in this zone.
        self.tz = tz
        self.columns = [c for c, _ in columns]
        self.vendor = connection.vendor
        # "text" columns are never NULL in a stage ("text null" ones may be): COPY must not read
        # a device name that happens to be \N as NULL.
        self.not_null_text = [c for c, t in columns if t == "text"]
        columns = [(c, t.removesuffix(" null")) for c, t in columns]
        self.wallclock = [c for c, t in columns if t == WALLCLOCK]
        # Only these columns need a Python conversion before COPY; the rest go as they are.
        self.converted = [
            (i, self._wallclock_text if t == WALLCLOCK else self.value)
            for i, (_, t) in enumerate(columns)
            if t in ("timestamptz", "uuid", WALLCLOCK)
        ]
        ddl = ", ".join(f"{c} {self._type(t)}" for c, t in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            on_commit = " ON COMMIT DROP" if self.vendor == "postgresql" else ""
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({ddl}){on_commit}")
        if self.wallclock and self.vendor == "sqlite":
            _register_sqlite_wallclock(connection)

    def _type(self, sql_type: str) -> str:
        if sql_type == WALLCLOCK:
            return "text"
        if self.vendor == "postgresql":
            return sql_type
        return {
            "timestamptz": "datetime",
            "bigint": "integer",
            "boolean": "bool",
            "uuid": "char(32)",
        }.get(sql_type, sql_type)

    def value(self, value: object) -> object:
        """A Python value as the staging column wants it (datetimes in UTC)."""
        if isinstance(value, uuid.UUID):
            # Django keeps UUIDs as 32 hex characters on SQLite, as uuid on PostgreSQL.
            return str(value) if self.vendor == "postgresql" else value.hex
        if isinstance(value, datetime):
            if self.vendor == "postgresql" and value.tzinfo is None:
                # COPY reads it in the session time zone, set to self.tz around the COPY.
                return value.isoformat(" ")
            if value.tzinfo is None:
                value = value.replace(tzinfo=self.tz)
            value = value.astimezone(UTC)
            if self.vendor == "postgresql":
                return value.isoformat()
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value

    @staticmethod
    def _wallclock_text(value: object) -> object:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                raise ValueError(f"a wall-clock column takes naive datetimes, not {value!r}")
            return value.isoformat(" ")
        return value  # already wall-clock text

    def load(self, rows: Iterable[Sequence[object]]) -> int:
        """Append rows (tuples in column order); returns how many. An exception raised by
        `rows` (a file found wrong at its end) ends the load and goes to the caller."""
        if self.vendor == "postgresql":
            return self._copy(rows)
        return self._insert(rows)

    def _copy(self, rows: Iterable[Sequence[object]]) -> int:
        columns = ", ".join(self.columns)
        force = f", FORCE_NOT_NULL ({', '.join(self.not_null_text)})" if self.not_null_text else ""
        sql = f"COPY {self.name} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N'{force})"
        source = _CsvSource(rows, self.converted)
        with self.connection.cursor() as cursor:
            # Naive export times are converted by PostgreSQL, not one by one in Python.
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [str(self.tz)])
            # One COPY for the whole file: PostgreSQL parses what it got while Python makes
            # the next rows (the two run on two cores).
            try:
                cursor.copy_expert(
                    sql, source, COPY_READ_SIZE
                )  # size: positional in Django's debug wrapper
            except Exception:
                # psycopg2 turns an error of the rows (a file found wrong at its end) into
                # "COPY from stdin failed": the caller gets the rows' own error instead.
                if source.error is not None:
                    raise source.error from None
                raise
            # Back to the zone Django expects for the rest of the transaction.
            cursor.execute("SELECT set_config('TimeZone', 'UTC', true)")
        return source.count

    def _insert(self, rows: Iterable[Sequence[object]]) -> int:
        count = 0
        marks = ", ".join("%s" for _ in self.columns)
        sql = f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks})"
        batch: list[list[object]] = []
        converted = self.converted
        with self.connection.cursor() as cursor:
            for row in rows:
                out = list(row)
                for i, convert in converted:
                    if out[i] is not None:
                        out[i] = convert(out[i])
                batch.append(out)
                if len(batch) >= 5000:
                    cursor.executemany(sql, batch)
                    count += len(batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
                count += len(batch)
        return count

    def dated(self, orders: Mapping[str, object]) -> str:
        """The stage as a subquery whose wall-clock columns are timestamps, each read in its
        day/month order (`orders`: column -> dates.DateOrder or None) in the stage's zone."""
        columns = [
            f"{wallclock_sql(c, orders.get(c), self.tz, self.vendor)} AS {c}"
            if c in self.wallclock
            else c
            for c in self.columns
        ]
        return f"(SELECT {', '.join(columns)} FROM {self.name})"

    def index(self, *columns: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX {self.name}_{'_'.join(columns)} ON {self.name} ({', '.join(columns)})"
            )
        self.analyze()

    def analyze(self) -> None:
        """Give the planner row counts: temporary tables are never auto-analyzed."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {self.name}")

    def scalar(self, sql: str, params: Sequence[object] = ()) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return int(row[0] or 0) if row else 0

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def differs(self, left: str, right: str, columns: Sequence[str]) -> str:
        """SQL that is true when any column differs, NULL-safe, on both databases."""
        op = "IS DISTINCT FROM" if self.vendor == "postgresql" else "IS NOT"
        return "(" + " OR ".join(f"{left}.{c} {op} {right}.{c}" for c in columns) + ")"


def upsert(
    stage: Stage,
    *,
    table: str,
    conflict: Sequence[str],
    columns: Sequence[str],
    select: str,
    now: str,
    created_at: bool = True,
    total: int | None = None,
    serialised: bool = False,
) -> dict[str, int]:
    """INSERT the rows `select` yields into `table`, updating rows whose values changed.

    `select` must yield the conflict columns followed by `columns`, one row per key.
    Returns created / updated / unchanged counts. A dry run executes the same statements and
    rolls them back, so it reports the same figures.

    `serialised`: the caller holds a lock under which no other transaction writes these keys
    (advisory_xact_lock). On PostgreSQL the changed rows are then updated by one UPDATE and
    the new ones added by a plain INSERT, without INSERT ... ON CONFLICT's speculative
    insertion of every row (400,000 new devices: 8.9 s instead of 12.7 s, their partnerships
    3.0 s instead of 4.7 s).
    """
    if total is None:  # the caller may know how many rows `select` yields
        total = stage.scalar(f"SELECT COUNT(*) FROM ({select}) s")
    if serialised and stage.vendor == "postgresql":
        return _update_then_insert(
            stage, table, conflict, columns, select, now, created_at=created_at, total=total
        )
    all_columns = [*conflict, *columns]
    assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
    differs = stage.differs(table, "excluded", columns)
    stamps = ["created_at", "updated_at"] if created_at else ["updated_at"]
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    insert = (
        f"INSERT INTO {table} ({', '.join(all_columns + stamps)}) "
        f"SELECT {', '.join(['s.' + c for c in all_columns] + [now] * len(stamps))} "
        f"FROM ({select}) s WHERE true "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments}, "
        f"updated_at = excluded.updated_at WHERE {differs}"
    )
    if stage.vendor == "postgresql":
        # xmax is 0 for a freshly inserted row version and set for an updated one; rows left
        # alone by the WHERE clause are not returned at all.
        new, changed = stage.rows(
            f"WITH written AS ({insert} RETURNING (xmax = 0) AS inserted) "
            "SELECT COUNT(*) FILTER (WHERE inserted), COUNT(*) FILTER (WHERE NOT inserted) FROM written"
        )[0]
    else:
        key_match = " AND ".join(f"t.{c} = s.{c}" for c in conflict)
        new = stage.scalar(
            f"SELECT COUNT(*) FROM ({select}) s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {key_match})"
        )
        changed = stage.scalar(
            f"SELECT COUNT(*) FROM ({select}) s JOIN {table} t ON {key_match} "
            f"WHERE {stage.differs('t', 's', columns)}"
        )
        stage.execute(insert)
    return {
        "created": int(new),
        "updated": int(changed),
        "unchanged": total - int(new) - int(changed),
    }


def _update_then_insert(
    stage: Stage,
    table: str,
    conflict: Sequence[str],
    columns: Sequence[str],
    select: str,
    now: str,
    *,
    created_at: bool,
    total: int,
) -> dict[str, int]:
    key_match = " AND ".join(f"t.{c} = s.{c}" for c in conflict)
    assignments = ", ".join(f"{c} = s.{c}" for c in columns)
    changed = stage.execute(
        f"UPDATE {table} t SET {assignments}, updated_at = {now} FROM ({select}) s "
        f"WHERE {key_match} AND {stage.differs('t', 's', columns)}"
    )
    all_columns = [*conflict, *columns]
    stamps = ["created_at", "updated_at"] if created_at else ["updated_at"]
    new = stage.execute(
        f"INSERT INTO {table} ({', '.join(all_columns + stamps)}) "
        f"SELECT {', '.join(['s.' + c for c in all_columns] + [now] * len(stamps))} "
        f"FROM ({select}) s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {key_match})"
    )
    return {"created": new, "updated": changed, "unchanged": total - new - changed}


class _CsvSource:
    """The rows as CSV text for COPY, made as COPY reads it (memory stays flat)."""

    def __init__(self, rows: Iterable[Sequence[object]], converted: Sequence[tuple[int, Callable]]):
        self._rows: Iterator[Sequence[object]] = iter(rows)
        self._converted = converted
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self._pending = ""
        self.count = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        try:
            return self._read(size)
        except BaseException as error:
            self.error = error
            raise

    def _read(self, size: int) -> str:
        buffer, writer, converted = self._buffer, self._writer, self._converted
        buffer.seek(0)
        buffer.truncate()
        buffer.write(self._pending)
        for row in self._rows:
            out = ["\\N" if v is None else v for v in row]
            for i, convert in converted:
                if row[i] is not None:
                    out[i] = convert(row[i])
            writer.writerow(out)
            self.count += 1
            if buffer.tell() >= size > 0:
                break
        text = buffer.getvalue()
        if size > 0:
            text, self._pending = text[:size], text[size:]
        else:
            self._pending = ""
        return text

    def readline(self, size: int = -1) -> str:  # psycopg2 asks for read() only; for completeness
        return self.read(size)


def _order_name(order: object) -> str:
    # dates.DateOrder values are "M/d/yyyy", "d/M/yyyy" (this module imports no importer).
    return "DMY" if str(order) in ("d/M/yyyy", "DMY") else "MDY"


def wallclock_sql(column: str, order: object, tz: tzinfo, vendor: str) -> str:
    """SQL reading a wall-clock column as a timestamp in `tz`: undecided text ("~yyyy-AA-BB
    ...") in `order`, other text as ISO."""
    zone = str(tz).replace("'", "''")
    if vendor != "postgresql":
        return f"exsync_wallclock({column}, '{_order_name(order)}', '{zone}')"
    if _order_name(order) == "DMY":
        undecided = (
            f"substr({column}, 2, 5) || substr({column}, 10, 2) || '-' || "
            f"substr({column}, 7, 2) || substr({column}, 12)"
        )
    else:
        undecided = f"substr({column}, 2)"
    return (
        f"((CASE WHEN left({column}, 1) = '~' THEN {undecided} ELSE {column} END)::timestamp "
        f"AT TIME ZONE '{zone}')"
    )


def _sqlite_wallclock(text: str | None, order: str, zone: str) -> str | None:
    if text is None:
        return None
    from devices.importers.dates import wallclock  # the one Python reading of the text

    value = wallclock(text, order).replace(tzinfo=_zone(zone)).astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else ZoneInfo(name)


def _register_sqlite_wallclock(connection: BaseDatabaseWrapper) -> None:
    connection.ensure_connection()
    connection.connection.create_function(
        "exsync_wallclock", 3, _sqlite_wallclock, deterministic=True
    )
