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
    sql: str  # over p (partnership), m (its mailbox), d (its device)
    type: str  # the column type in a staging table


KEY: tuple[KeyPart, ...] = (
    KeyPart("server_id", "COALESCE(m.server_id, 0)", "bigint"),
    KeyPart("eas_version", "p.eas_version", "text"),
    KeyPart("client_type", "p.client_type", "text"),
    KeyPart("access_state", "p.access_state", "text"),
    # The mailbox's personal Allow/Block lists (Get-CASMailbox): "allowed", "blocked" or "".
    KeyPart("personal_access", "p.personal_access", "text"),
    KeyPart("policy_applied", "p.policy_applied", "text"),
    KeyPart("device_type", "d.device_type", "text"),
    KeyPart("model", "d.model", "text"),
    KeyPart("os", "d.os", "text"),
    # Live partnerships the user holds now (they move with the mailbox): X-DEVLIMIT's count.
    # The window runs over exactly the rows the source selects: every live partnership of
    # each selected mailbox.
    KeyPart("partnerships", "COUNT(*) OVER (PARTITION BY p.mailbox_id)", "integer"),
)


@dataclass(frozen=True)
class FactKey:
    """One distinct combination of the KEY columns (field order = KEY order)."""

    server_id: int
    eas_version: str
    client_type: str
    access_state: str
    personal_access: str
    policy_applied: str
    device_type: str
    model: str
    os: str
    partnerships: int


assert tuple(f.name for f in fields(FactKey)) == tuple(p.name for p in KEY)


def source(mailboxes_sql: str) -> str:
    """A derived table `f`: each live partnership (id, mailbox_id) of the mailboxes that
    `mailboxes_sql` selects, with its KEY columns by name."""
    named = ", ".join(f"{part.sql} AS {part.name}" for part in KEY)
    return (
        f"(SELECT p.id, p.mailbox_id, {named} FROM {Partnership._meta.db_table} p "
        f"JOIN {Mailbox._meta.db_table} m ON m.id = p.mailbox_id "
        f"JOIN {MobileDevice._meta.db_table} d ON d.id = p.device_id "
        f"WHERE NOT p.is_stale AND p.mailbox_id IN ({mailboxes_sql})) f"
    )


def columns(alias: str = "f") -> str:
    return ", ".join(f"{alias}.{part.name}" for part in KEY)


def join_on(stage_alias: str, source_alias: str = "f") -> str:
    """The condition joining a table of answers (one row per FactKey) back to the source."""
    return " AND ".join(f"{stage_alias}.{p.name} = {source_alias}.{p.name}" for p in KEY)


def fact_sets(mailboxes_sql: str, params: Sequence[object]) -> list[tuple[FactKey, int]]:
    """Each distinct key among the live partnerships of the selected mailboxes, with how many
    partnerships share it."""
    sql = f"SELECT {columns()}, COUNT(*) FROM {source(mailboxes_sql)} GROUP BY {columns()}"
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return [(FactKey(*row[:-1]), row[-1]) for row in cursor.fetchall()]
