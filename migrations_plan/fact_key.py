"""The facts a stored prediction depends on (its key), defined once.

A prediction depends on the partnership only through these columns (plus the batch's target,
move kind, date and policy, which are the same for a whole batch). batch_plan groups a batch's
partnerships by them, asks the planner once per distinct row, and writes every partnership's
prediction by joining back on the same columns; the create form's preview groups the same way.
A new per-partnership fact is one more KeyPart here, nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from django.db import connection

from devices.models import Mailbox, MobileDevice, Partnership


@dataclass(frozen=True)
class KeyPart:
    name: str
    sql: str  # over p (partnership), m (its mailbox), d (its device), pc (mailbox counts)
    type: str  # the column type in a staging table


KEY: tuple[KeyPart, ...] = (
    KeyPart("server_id", "COALESCE(m.server_id, 0)", "bigint"),
    KeyPart("eas_version", "p.eas_version", "text"),
    KeyPart("client_type", "p.client_type", "text"),
    KeyPart("access_state", "p.access_state", "text"),
    KeyPart("policy_applied", "p.policy_applied", "text"),
    KeyPart("device_type", "d.device_type", "text"),
    KeyPart("model", "d.model", "text"),
    KeyPart("os", "d.os", "text"),
    # Partnerships the user holds now: they move with the mailbox (X-DEVLIMIT's count).
    KeyPart("partnerships", "pc.n", "integer"),
)


@dataclass(frozen=True)
class FactKey:
    """One distinct combination of the KEY columns (field order = KEY order)."""

    server_id: int
    eas_version: str
    client_type: str
    access_state: str
    policy_applied: str
    device_type: str
    model: str
    os: str
    partnerships: int


assert tuple(f.name for f in fields(FactKey)) == tuple(p.name for p in KEY)


def from_clause(mailboxes_sql: str) -> str:
    """Partnerships (p) of the mailboxes `mailboxes_sql` selects, with what the key reads."""
    partnership = Partnership._meta.db_table
    return (
        f"{partnership} p JOIN {Mailbox._meta.db_table} m ON m.id = p.mailbox_id "
        f"JOIN {MobileDevice._meta.db_table} d ON d.id = p.device_id "
        f"JOIN (SELECT mailbox_id, COUNT(*) AS n FROM {partnership} "
        f"WHERE NOT is_stale AND mailbox_id IN ({mailboxes_sql}) GROUP BY mailbox_id) pc "
        "ON pc.mailbox_id = p.mailbox_id"
    )


def columns(alias: str | None = None) -> str:
    return ", ".join(f"{alias}.{p.name}" if alias else p.sql for p in KEY)


def join_on(stage_alias: str) -> str:
    """The condition joining a table of answers (one row per FactKey) back to partnerships."""
    return " AND ".join(f"{stage_alias}.{p.name} = {p.sql}" for p in KEY)


def fact_sets(mailboxes_sql: str, params: Sequence[object]) -> list[tuple[FactKey, int]]:
    """Each distinct key among the live partnerships of the selected mailboxes, with how many
    partnerships share it. `mailboxes_sql` selects mailbox ids; it appears twice."""
    sql = (
        f"SELECT {columns()}, COUNT(*) FROM {from_clause(mailboxes_sql)} "
        f"WHERE NOT p.is_stale AND p.mailbox_id IN ({mailboxes_sql}) GROUP BY {columns()}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params])
        return [(FactKey(*row[:-1]), row[-1]) for row in cursor.fetchall()]
