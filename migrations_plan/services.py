"""Writes of move planning: batches and their mailboxes, predictions, the audit trail.

Every function here owns its transaction and its audit entry; views, commands and tasks call
these and nothing else changes a batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox, Partnership
from devices.staging import Stage

from .facts_from_inventory import Inventory
from .models import (
    ACTIVE_BATCH_STATES,
    AuditEntry,
    BatchMailbox,
    BatchState,
    Explanation,
    MemberState,
    MoveBatch,
    Prediction,
)
from .planner.predict import predict


class BatchError(ValueError):
    """A batch change that cannot be made; the message says why, in the admin's words."""


class MailboxAlreadyBatched(BatchError):
    def __init__(self, clashes: Sequence[tuple[str, str]]) -> None:
        self.clashes = list(clashes)
        listed = "; ".join(
            f"{address} is in batch '{batch}'" for address, batch in self.clashes[:20]
        )
        more = f" and {len(self.clashes) - 20} more" if len(self.clashes) > 20 else ""
        super().__init__(f"A mailbox can be in one active batch only: {listed}{more}.")


def audit(
    *, batch: MoveBatch, actor: AbstractBaseUser | None, action: str, **detail: object
) -> None:
    AuditEntry.objects.create(batch=batch, actor=actor, action=action, detail=detail)


def _clashes(
    mailbox_ids: Iterable[int], *, exclude_batch: MoveBatch | None = None
) -> list[tuple[str, str]]:
    held = BatchMailbox.objects.filter(mailbox_id__in=list(mailbox_ids), is_active=True)
    if exclude_batch is not None:
        held = held.exclude(batch=exclude_batch)
    return list(
        held.values_list("mailbox__primary_smtp_address", "batch__name").order_by(
            "mailbox__primary_smtp_address"
        )
    )


def _add_members(batch: MoveBatch, mailboxes: Sequence[Mailbox]) -> int:
    clashes = _clashes((m.pk for m in mailboxes), exclude_batch=batch)
    if clashes:
        raise MailboxAlreadyBatched(clashes)
    existing = set(batch.members.filter(is_active=True).values_list("mailbox_id", flat=True))
    # A mailbox removed earlier comes back by reactivating its row (one row per batch and mailbox).
    revived = BatchMailbox.objects.filter(
        batch=batch, is_active=False, mailbox__in=mailboxes
    ).exclude(mailbox_id__in=existing)
    revived_ids = set(revived.values_list("mailbox_id", flat=True))
    revived.update(is_active=True, state=MemberState.PENDING)
    rows = [
        BatchMailbox(
            batch=batch,
            mailbox=m,
            source_server_id=m.server_id,
            source_database=m.database,
        )
        for m in mailboxes
        if m.pk not in existing and m.pk not in revived_ids
    ]
    try:
        with transaction.atomic():
            BatchMailbox.objects.bulk_create(rows, batch_size=2000)
    except IntegrityError as exc:
        # Another request took one of these mailboxes between the check and the insert.
        raise MailboxAlreadyBatched(
            _clashes((m.pk for m in mailboxes), exclude_batch=batch)
        ) from exc
    return len(rows) + len(revived_ids)


@transaction.atomic
def batch_create(
    *,
    name: str,
    target_server: ExchangeServer,
    target_database: str = "",
    start_at: datetime,
    complete_by: datetime | None = None,
    notification_emails: str = "",
    notice_leads_minutes: list[int] | None = None,
    mailboxes: Sequence[Mailbox],
    actor: AbstractBaseUser | None,
    via: str = "web",
) -> MoveBatch:
    """Create a draft batch with its mailboxes and plan it.

    Raises BatchError for a taken name and MailboxAlreadyBatched naming the batch that holds
    a mailbox.
    """
    name = name.strip()
    if not name:
        raise BatchError("A batch needs a name.")
    if MoveBatch.objects.filter(name__iexact=name).exists():
        raise BatchError(f"There is already a batch named '{name}'.")
    if complete_by is not None and complete_by < start_at:
        raise BatchError("The completion time must be after the start.")
    batch = MoveBatch(
        name=name,
        target_server=target_server,
        target_database=target_database.strip(),
        start_at=start_at,
        complete_by=complete_by,
        notification_emails=notification_emails,
        created_by=actor,
    )
    if notice_leads_minutes is not None:
        batch.notice_leads_minutes = notice_leads_minutes
    try:
        with transaction.atomic():
            batch.save()
    except IntegrityError as exc:  # the same name submitted twice at once
        raise BatchError(f"There is already a batch named '{name}'.") from exc
    added = _add_members(batch, mailboxes)
    audit(
        batch=batch,
        actor=actor,
        action="created",
        mailboxes=added,
        target=target_server.name,
        via=via,
    )
    batch_plan(batch=batch)
    return batch


@dataclass
class PlanResult:
    partnerships: int = 0
    members: int = 0
    explanations: int = 0
    summary: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def _digest(prediction_dict: dict) -> str:
    return hashlib.sha256(json.dumps(prediction_dict, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def batch_plan(*, batch: MoveBatch) -> PlanResult:
    """(Re)compute and store the prediction of every partnership of every active member.

    A fixed number of queries whatever the batch size: one read of the partnerships, one of
    the servers, one per distinct explanation set, one delete, and the bulk write (COPY on
    PostgreSQL). predict() runs once per distinct set of facts, not once per phone.
    """
    started = time.perf_counter()
    result = PlanResult()
    inventory = Inventory(ExchangeServer.objects.all())
    move_date = timezone.localdate(batch.start_at)
    rows = (
        Partnership.objects.filter(
            mailbox__batch_memberships__batch=batch, mailbox__batch_memberships__is_active=True
        )
        .values_list(
            "pk",
            "mailbox__batch_memberships__pk",
            "mailbox__server_id",
            "eas_version",
            "client_type",
            "access_state",
        )
        .iterator(chunk_size=20_000)
    )
    memo: dict[tuple, tuple[str, str]] = {}
    planned: list[tuple[int, int, str, str]] = []
    explanations: dict[str, tuple[str, dict]] = {}
    target_id = batch.target_server_id
    for pk, member_id, source_id, eas, client, access in rows:
        key = (source_id, eas, client, access)
        answer = memo.get(key)
        if answer is None:
            prediction = predict(
                inventory.move(source_id=source_id, target_id=target_id, move_date=move_date),
                inventory.device(
                    source_id=source_id, eas_version=eas, client_type=client, access_state=access
                ),
                inventory.org,
            )
            as_dict = prediction.as_dict()
            digest = _digest(as_dict)
            explanations[digest] = (str(prediction.outcome), as_dict)
            answer = memo[key] = (str(prediction.outcome), digest)
        planned.append((member_id, pk, answer[0], answer[1]))
        result.summary[answer[0]] += 1

    ids = _explanation_ids(explanations)
    Prediction.objects.filter(member__batch=batch).delete()
    now = timezone.now()
    stage_rows = (
        (member, pk, outcome, ids[digest], now) for member, pk, outcome, digest in planned
    )
    if connection.vendor == "postgresql":
        _copy_predictions(stage_rows)
    else:
        Prediction.objects.bulk_create(
            (
                Prediction(
                    member_id=m, partnership_id=p, outcome=o, explanation_id=e, computed_at=t
                )
                for m, p, o, e, t in stage_rows
            ),
            batch_size=5000,
        )
    MoveBatch.objects.filter(pk=batch.pk).update(planned_at=now)
    batch.planned_at = now
    result.partnerships = len(planned)
    result.explanations = len(explanations)
    result.members = batch.members.filter(is_active=True).count()
    result.seconds = time.perf_counter() - started
    return result


def _explanation_ids(explanations: dict[str, tuple[str, dict]]) -> dict[str, int]:
    """Store each distinct explanation once (shared across batches); return digest -> id."""
    Explanation.objects.bulk_create(
        [
            Explanation(
                digest=digest,
                outcome=outcome,
                low_confidence=bool(as_dict["low_confidence"]),
                reasons=as_dict["reasons"],
            )
            for digest, (outcome, as_dict) in explanations.items()
        ],
        ignore_conflicts=True,
    )
    return dict(
        Explanation.objects.filter(digest__in=list(explanations)).values_list("digest", "id")
    )


def _copy_predictions(rows: Iterable[tuple]) -> None:
    table = Prediction._meta.db_table
    stage = Stage(
        connection,
        "stage_predictions",
        [
            ("member_id", "bigint"),
            ("partnership_id", "bigint"),
            ("outcome", "text"),
            ("explanation_id", "bigint"),
            ("computed_at", "timestamptz"),
        ],
    )
    stage.load(rows)
    stage.execute(
        f"INSERT INTO {table} (member_id, partnership_id, outcome, explanation_id, computed_at) "
        f"SELECT member_id, partnership_id, outcome, explanation_id, computed_at FROM {stage.name}"
    )


def batches_replan_active() -> int:
    """Re-plan every batch not yet finished: the inventory it depends on changed."""
    batches = list(MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES))
    for batch in batches:
        batch_plan(batch=batch)
    return len(batches)


def replan_after_import(sender: object, *, kinds: set[str], **kwargs: object) -> int:
    """Receiver of devices.signals.inventory_changed: predictions follow the inventory."""
    return batches_replan_active()


__all__ = [
    "BatchError",
    "BatchState",
    "MailboxAlreadyBatched",
    "PlanResult",
    "audit",
    "batch_create",
    "batch_plan",
    "batches_replan_active",
]
