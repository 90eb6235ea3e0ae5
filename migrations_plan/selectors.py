"""Reads of move planning for pages, commands and services; no writes here."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, Q, QuerySet

from .models import BatchMailbox, Explanation, MoveBatch, Outcome, Prediction

OUTCOME_ORDER = [o.value for o in Outcome]  # worst first


def outcome_summary(*, batch: MoveBatch) -> dict[str, int]:
    """Devices per outcome, every outcome present (zero when none), worst first."""
    counts = Counter(
        dict(
            Prediction.objects.filter(member__batch=batch, member__is_active=True)
            .values_list("outcome")
            .annotate(n=Count("pk"))
            .values_list("outcome", "n")
        )
    )
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOME_ORDER}


def batch_plan_document(*, batch: MoveBatch) -> dict[str, Any]:
    """The plan as `plan_batch --json` prints it; three queries whatever the batch size."""
    members = list(
        BatchMailbox.objects.filter(batch=batch, is_active=True)
        .order_by("mailbox__primary_smtp_address")
        .values_list("pk", "mailbox__primary_smtp_address")
    )
    predictions = (
        Prediction.objects.filter(member__batch=batch, member__is_active=True)
        .order_by("member_id", "partnership__device__device_id")
        .values_list("member_id", "partnership__device__device_id", "outcome", "explanation_id")
    )
    by_member: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    explanation_ids = set()
    for member_id, device_id, outcome, explanation_id in predictions.iterator(chunk_size=20_000):
        by_member[member_id].append((device_id, outcome, explanation_id))
        explanation_ids.add(explanation_id)
    reasons = dict(Explanation.objects.filter(pk__in=explanation_ids).values_list("pk", "reasons"))
    summary: Counter[str] = Counter()
    items = []
    for member_id, address in members:
        devices = []
        for device_id, outcome, explanation_id in by_member.get(member_id, []):
            summary[outcome] += 1
            devices.append(
                {"device_id": device_id, "outcome": outcome, "reasons": reasons[explanation_id]}
            )
        items.append({"mailbox": address, "devices": devices})
    return {
        "batch": batch.name,
        "target_server": batch.target_server.name,
        "target_database": batch.target_database,
        "start": batch.start_at.isoformat(),
        "state": batch.state,
        "items": items,
        "summary": {o: summary.get(o, 0) for o in OUTCOME_ORDER},
    }


def batch_list() -> QuerySet[MoveBatch]:
    """Batches with their mailbox and per-outcome device counts, in one query."""
    active = Q(members__is_active=True)
    counts = {
        f"n_{o}": Count("members__predictions", filter=active & Q(members__predictions__outcome=o))
        for o in OUTCOME_ORDER
    }
    return (
        MoveBatch.objects.select_related("target_server", "created_by")
        .annotate(n_mailboxes=Count("members", filter=active, distinct=True), **counts)
        .order_by("-start_at", "name")
    )
