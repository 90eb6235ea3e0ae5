"""Predict without storing: which mailboxes' phones would end up how, for choosing a batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox, Partnership

from .facts_from_inventory import Inventory
from .planner.outcomes import Outcome, severity


def worst_outcomes(
    *, mailboxes: QuerySet[Mailbox], target: ExchangeServer, start_at: datetime
) -> dict[int, str]:
    """{mailbox id: the worst outcome among its phones} if these mailboxes moved to `target`.

    Mailboxes without a phone are absent. Two queries plus one predict() per distinct set of
    facts, whatever the number of mailboxes.
    """
    inventory = Inventory(ExchangeServer.objects.all())
    move_date = timezone.localdate(start_at)
    rows = (
        Partnership.objects.filter(is_stale=False, mailbox__in=mailboxes)
        .order_by()
        .values_list(
            "mailbox_id", "mailbox__server_id", "eas_version", "client_type", "access_state"
        )
    )
    answers: dict[tuple, Outcome] = {}
    worst: dict[int, Outcome] = {}
    for mailbox_id, source_id, eas, client, access in rows.iterator(chunk_size=20_000):
        key = (source_id, eas, client, access)
        outcome = answers.get(key)
        if outcome is None:
            outcome = answers[key] = inventory.predict(
                source_id=source_id,
                target_id=target.pk,
                move_date=move_date,
                eas_version=eas,
                client_type=client,
                access_state=access,
            ).outcome
        current = worst.get(mailbox_id)
        if current is None or severity(outcome) > severity(current):
            worst[mailbox_id] = outcome
    return {pk: str(o) for pk, o in worst.items()}


def filter_by_outcome(
    mailboxes: QuerySet[Mailbox],
    *,
    outcomes: Iterable[str],
    target: ExchangeServer,
    start_at: datetime,
) -> list[Mailbox]:
    """The mailboxes whose worst phone outcome is one of `outcomes`; a mailbox without a phone
    counts as `continues` (nothing of it can break)."""
    wanted = set(outcomes)
    worst = worst_outcomes(mailboxes=mailboxes, target=target, start_at=start_at)
    return [m for m in mailboxes if worst.get(m.pk, Outcome.CONTINUES.value) in wanted]
