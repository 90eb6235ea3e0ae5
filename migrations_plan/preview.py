"""Predict without storing: which mailboxes' phones would end up how, for choosing a batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox

from .fact_key import KEY, FactKey, columns, fact_sets, source
from .facts_from_inventory import BatchContext, Inventory
from .planner.outcomes import Outcome, severity


def worst_outcomes(
    *,
    mailboxes: QuerySet[Mailbox],
    target: ExchangeServer,
    start_at: datetime,
    move_kind: str = "",
    target_policy_id: int | None = None,
) -> dict[int, str]:
    """{mailbox id: the worst outcome among its phones} if these mailboxes moved to `target`.

    Mailboxes without a phone are absent. A fixed number of queries plus one planner call per
    distinct fact key (fact_key.KEY), whatever the number of mailboxes.
    """
    inventory = Inventory.load()
    context = BatchContext(
        target_id=target.pk,
        move_date=timezone.localdate(start_at),
        move_kind=move_kind,
        target_policy_id=target_policy_id,
    )
    ids_sql, params = mailboxes.order_by().values("pk").query.sql_with_params()
    answers = {
        key: inventory.predict(key, context).outcome for key, _ in fact_sets(ids_sql, params)
    }
    sql = f"SELECT f.mailbox_id, {columns()} FROM {source(ids_sql)}"
    worst: dict[int, Outcome] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        for mailbox_id, *key in cursor.fetchall():
            # A partnership imported between the two reads has no answer yet: not a guess.
            outcome = answers.get(_key(key), Outcome.UNKNOWN)
            current = worst.get(mailbox_id)
            if current is None or severity(outcome) > severity(current):
                worst[mailbox_id] = outcome
    return {pk: str(o) for pk, o in worst.items()}


def _key(values: list) -> FactKey:
    return FactKey(*values[: len(KEY)])


def filter_by_outcome(
    mailboxes: QuerySet[Mailbox],
    *,
    outcomes: Iterable[str],
    target: ExchangeServer,
    start_at: datetime,
    move_kind: str = "",
    target_policy_id: int | None = None,
) -> list[Mailbox]:
    """The mailboxes whose worst phone outcome is one of `outcomes`; a mailbox without a phone
    counts as `continues` (nothing of it can break)."""
    wanted = set(outcomes)
    worst = worst_outcomes(
        mailboxes=mailboxes,
        target=target,
        start_at=start_at,
        move_kind=move_kind,
        target_policy_id=target_policy_id,
    )
    return [m for m in mailboxes if worst.get(m.pk, Outcome.CONTINUES.value) in wanted]
