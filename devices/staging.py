"""Set-based writes for imports: a temporary staging table, filled by COPY (PostgreSQL) or
batched inserts (SQLite), then joined, checked and upserted in a few SQL statements.

A Python loop of ORM saves over 400,000 devices takes many minutes; COPY plus
INSERT ... ON CONFLICT takes seconds (see `make bench-import`).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo

from django.db.backends.base.base import BaseDatabaseWrapper

COPY_CHUNK_ROWS = 20_000


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
        # Only these columns need a Python conversion before COPY; the rest go as they are.
        self.converted = [i for i, (_, t) in enumerate(columns) if t in ("timestamptz", "uuid")]
        ddl = ", ".join(f"{c} {self._type(t)}" for c, t in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            on_commit = " ON COMMIT DROP" if self.vendor == "postgresql" else ""
            cursor.execute(f"CREATE TEMPORARY TABLE {name} ({ddl}){on_commit}")

    def _type(self, sql_type: str) -> str:
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

    def load(self, rows: Iterable[Sequence[object]]) -> int:
        """Append rows (tuples in column order); returns how many."""
        if self.vendor == "postgresql":
            return self._copy(rows)
        return self._insert(rows)

    def _copy(self, rows: Iterable[Sequence[object]]) -> int:
        count = 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = ", ".join(self.columns)
        force = f", FORCE_NOT_NULL ({', '.join(self.not_null_text)})" if self.not_null_text else ""
        sql = f"COPY {self.name} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N'{force})"
        value = self.value
        converted = self.converted
        with self.connection.cursor() as cursor:
            # Naive export times are converted by PostgreSQL, not one by one in Python.
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [str(self.tz)])
            for row in rows:
                out = ["\\N" if v is None else v for v in row]
                for i in converted:
                    if row[i] is not None:
                        out[i] = value(row[i])
                writer.writerow(out)
                count += 1
                if count % COPY_CHUNK_ROWS == 0:
                    buffer.seek(0)
                    cursor.copy_expert(sql, buffer)
                    buffer.seek(0)
                    buffer.truncate()
            if buffer.tell():
                buffer.seek(0)
                cursor.copy_expert(sql, buffer)
            # Back to the zone Django expects for the rest of the transaction.
            cursor.execute("SELECT set_config('TimeZone', 'UTC', true)")
        return count

    def _insert(self, rows: Iterable[Sequence[object]]) -> int:
        count = 0
        marks = ", ".join("%s" for _ in self.columns)
        sql = f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks})"
        batch: list[list[object]] = []
        value = self.value
        with self.connection.cursor() as cursor:
            for row in rows:
                batch.append([value(v) for v in row])
                if len(batch) >= 5000:
                    cursor.executemany(sql, batch)
                    count += len(batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
                count += len(batch)
        return count

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
) -> dict[str, int]:
    """INSERT the rows `select` yields into `table`, updating rows whose values changed.

    `select` must yield the conflict columns followed by `columns`, one row per key.
    Returns created / updated / unchanged counts. A dry run executes the same statement and
    rolls it back, so it reports the same figures.
    """
    total = stage.scalar(f"SELECT COUNT(*) FROM ({select}) s")
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
