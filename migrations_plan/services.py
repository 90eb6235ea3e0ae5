"""Writes of move planning: batches and their mailboxes, predictions, the audit trail.

Every function here owns its transaction and its audit entry; views, commands and tasks call
these and nothing else changes a batch.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox, MoveRequest, Partnership
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
    Notice,
    NoticeKind,
    NoticeState,
    Prediction,
)


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
    request_token: uuid.UUID | None = None,
) -> MoveBatch:
    """Create a draft batch with its mailboxes and plan it.

    Raises BatchError for a taken name and MailboxAlreadyBatched naming the batch that holds
    a mailbox. The same request_token twice (a double-submitted form) returns the first batch.
    """
    if request_token is not None:
        existing = MoveBatch.objects.filter(request_token=request_token).first()
        if existing is not None:
            return existing
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
        request_token=request_token,
    )
    if notice_leads_minutes is not None:
        batch.notice_leads_minutes = notice_leads_minutes
    try:
        with transaction.atomic():
            batch.save()
    except IntegrityError as exc:  # the same form submitted twice at once
        if (
            request_token is not None
            and MoveBatch.objects.filter(request_token=request_token).exists()
        ):
            return MoveBatch.objects.get(request_token=request_token)
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

    Set-based: a prediction depends only on (source server, EAS version, client type, access
    state), so predict() runs once per distinct combination found in the batch, and one
    INSERT ... SELECT writes every partnership's row from that small table (a re-plan adds
    ON CONFLICT ... DO UPDATE and touches only rows whose answer changed). The query count
    does not grow with the batch.
    """
    started = time.perf_counter()
    # One plan of a batch at a time: the first plan's plain INSERT relies on it.
    batch.state = (
        MoveBatch.objects.select_for_update().values_list("state", flat=True).get(pk=batch.pk)
    )
    if batch.state not in ACTIVE_BATCH_STATES:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: its plan is kept as it was."
        )
    result = PlanResult()
    inventory = Inventory(ExchangeServer.objects.all())
    move_date = timezone.localdate(batch.start_at)
    # No pending member has a row yet (a batch's first plan): a plain INSERT, a third cheaper
    # than ON CONFLICT's checks, cannot collide while this plan holds the batch's lock.
    planned_before = Prediction.objects.filter(
        member__batch=batch, member__is_active=True, member__state=MemberState.PENDING
    ).exists()
    with _bulk_plan_settings():
        keys = _pending_fact_sets(batch)
        answers: list[tuple] = []
        explanations: dict[str, tuple[str, dict]] = {}
        pending: Counter[str] = Counter()
        for source_id, eas, client, access, count in keys:
            prediction = inventory.predict(
                source_id=source_id,
                target_id=batch.target_server_id,
                move_date=move_date,
                eas_version=eas,
                client_type=client,
                access_state=access,
            )
            as_dict = prediction.as_dict()
            digest = _digest(as_dict)
            explanations[digest] = (str(prediction.outcome), as_dict)
            answers.append((source_id or 0, eas, client, access, str(prediction.outcome), digest))
            pending[str(prediction.outcome)] += count
        ids = _explanation_ids(explanations)
        now = timezone.now()
        _write_predictions(
            batch, [(*a[:5], ids[a[5]]) for a in answers], now, upsert=planned_before
        )
    _delete_gone_predictions(batch)
    MoveBatch.objects.filter(pk=batch.pk).update(planned_at=now)
    batch.planned_at = now
    # Pending members' rows are exactly the ones just written (counted with their keys);
    # moved and failed members keep the rows they were moved with.
    result.summary = pending + Counter(
        dict(
            Prediction.objects.filter(
                member__batch=batch,
                member__is_active=True,
                member__state__in=(MemberState.MOVED, MemberState.FAILED),
            )
            .values_list("outcome")
            .annotate(n=Count("outcome"))
            .values_list("outcome", "n")
        )
    )
    result.partnerships = sum(result.summary.values())
    result.explanations = len(explanations)
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _bulk_plan_settings() -> Iterator[None]:
    """PostgreSQL settings for the two statements that read the whole batch.

    Row estimates for a freshly filled batch make PostgreSQL choose nested loops over 100,000
    rows and a sort that spills to disk; hash joins and an in-memory aggregate are several
    times faster there (but not for the small lookups around them, so the settings end with
    the block). LOCAL, and the values in force before are restored, not the server defaults.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH before AS MATERIALIZED (SELECT current_setting('enable_nestloop') AS nestloop, "
            "current_setting('work_mem') AS work_mem) "
            "SELECT nestloop, work_mem, set_config('enable_nestloop', 'off', true), "
            "set_config('work_mem', '64MB', true) FROM before"
        )
        nestloop, work_mem = cursor.fetchone()[:2]
    yield
    # Not in a `finally`: after a failed statement the transaction only accepts its rollback,
    # which undoes SET LOCAL anyway, and the caller must see the real error.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('enable_nestloop', %s, true), set_config('work_mem', %s, true)",
            [nestloop, work_mem],
        )


def _pending_fact_sets(batch: MoveBatch) -> list[tuple]:
    """(source server, EAS version, client type, access state, partnerships) of the batch's
    pending members: predict() answers once per row of this."""
    in_batch = Partnership.objects.filter(
        is_stale=False,
        mailbox__batch_memberships__batch=batch,
        mailbox__batch_memberships__is_active=True,
        # Moves already done or failed keep the prediction made before them: re-planning a
        # moved mailbox would predict a move from the target to itself.
        mailbox__batch_memberships__state=MemberState.PENDING,
    )
    # order_by() clears the model's ordering, which GROUP BY would otherwise include.
    return list(
        in_batch.order_by()
        .values_list("mailbox__server_id", "eas_version", "client_type", "access_state")
        .annotate(n=Count("id"))
    )


def _write_predictions(
    batch: MoveBatch, answers: list[tuple], now: datetime, *, upsert: bool
) -> None:
    prediction = Prediction._meta.db_table
    member = BatchMailbox._meta.db_table
    partnership = Partnership._meta.db_table
    mailbox = Mailbox._meta.db_table
    stage = Stage(
        connection,
        "stage_plan_answers",
        [
            ("server_id", "bigint"),
            ("eas_version", "text"),
            ("client_type", "text"),
            ("access_state", "text"),
            ("outcome", "text"),
            ("explanation_id", "bigint"),
        ],
    )
    stage.load(answers)
    insert = (
        f"INSERT INTO {prediction} (member_id, partnership_id, outcome, explanation_id, computed_at) "
        f"SELECT bm.id, p.id, k.outcome, k.explanation_id, %s "
        f"FROM {partnership} p JOIN {member} bm ON bm.mailbox_id = p.mailbox_id "
        f"JOIN {mailbox} m ON m.id = p.mailbox_id "
        f"JOIN {stage.name} k ON k.server_id = COALESCE(m.server_id, 0) AND k.eas_version = p.eas_version "
        f"AND k.client_type = p.client_type AND k.access_state = p.access_state "
        f"WHERE bm.batch_id = %s AND bm.is_active AND bm.state = 'pending' AND NOT p.is_stale"
    )
    if upsert:
        # Only rows whose answer changed are rewritten.
        differs = stage.differs(prediction, "excluded", ["outcome", "explanation_id"])
        insert += (
            " ON CONFLICT (member_id, partnership_id) DO UPDATE SET outcome = excluded.outcome, "
            "explanation_id = excluded.explanation_id, computed_at = excluded.computed_at "
            f"WHERE {differs}"
        )
    stage.execute(insert, [stage.value(now), batch.pk])


def _delete_gone_predictions(batch: MoveBatch) -> None:
    """Rows of members no longer in the batch, and of partnerships gone stale since the last
    plan (found from the partnership side: there is no index on prediction.partnership_id)."""
    prediction = Prediction._meta.db_table
    member = BatchMailbox._meta.db_table
    partnership = Partnership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {prediction} WHERE member_id IN "
            f"(SELECT id FROM {member} WHERE batch_id = %s AND NOT is_active)",
            [batch.pk],
        )
        cursor.execute(
            f"DELETE FROM {prediction} WHERE (member_id, partnership_id) IN "
            f"(SELECT bm.id, p.id FROM {partnership} p "
            f"JOIN {member} bm ON bm.mailbox_id = p.mailbox_id "
            f"WHERE bm.batch_id = %s AND p.is_stale)",
            [batch.pk],
        )


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


def batches_replan_active() -> int:
    """Re-plan every batch not yet finished: the inventory it depends on changed."""
    batches = list(MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES))
    planned = 0
    for batch in batches:
        try:
            batch_plan(batch=batch)
        except BatchError:
            continue  # completed or cancelled since the list was read: its plan stays
        planned += 1
    return planned


EDITABLE_STATES = (BatchState.DRAFT, BatchState.SCHEDULED)
TRANSITIONS = {
    "schedule": ((BatchState.DRAFT,), BatchState.SCHEDULED),
    "start": ((BatchState.SCHEDULED,), BatchState.IN_PROGRESS),
    "complete": ((BatchState.IN_PROGRESS,), BatchState.COMPLETED),
    "cancel": (
        (BatchState.DRAFT, BatchState.SCHEDULED, BatchState.IN_PROGRESS),
        BatchState.CANCELLED,
    ),
}
NOTICE_KINDS = (NoticeKind.BEFORE_MOVE, NoticeKind.REMINDER)


def _locked(batch: MoveBatch) -> MoveBatch:
    """Re-read the batch under a row lock so two admins' clicks are applied one after the other."""
    return MoveBatch.objects.select_for_update().get(pk=batch.pk)


def _require_editable(batch: MoveBatch) -> None:
    if batch.state not in EDITABLE_STATES:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: mailboxes can be added or "
            "removed only before it starts."
        )


def _notices_for(batch: MoveBatch, mailbox_ids: Sequence[int] | None = None) -> int:
    """Pending notices (before the move, reminder) for the active members of a scheduled batch."""
    members = batch.members.filter(is_active=True)
    if mailbox_ids is not None:
        members = members.filter(mailbox_id__in=mailbox_ids)
    leads = sorted(batch.notice_leads_minutes, reverse=True)[: len(NOTICE_KINDS)]
    rows = [
        Notice(
            batch=batch,
            mailbox_id=mailbox_id,
            kind=kind,
            due_at=batch.start_at - timedelta(minutes=lead),
            recipient=address,
        )
        for mailbox_id, address in members.values_list(
            "mailbox_id", "mailbox__primary_smtp_address"
        )
        for kind, lead in zip(NOTICE_KINDS, leads, strict=False)
    ]
    # Rows that exist already (a mailbox removed and added back) are refreshed below.
    Notice.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    Notice.objects.filter(
        batch=batch, state__in=[NoticeState.PENDING, NoticeState.CANCELLED], kind__in=NOTICE_KINDS
    ).filter(mailbox_id__in=[r.mailbox_id for r in rows]).update(state=NoticeState.PENDING)
    return len(rows)


@transaction.atomic
def batch_transition(*, batch: MoveBatch, action: str, actor: AbstractBaseUser | None) -> MoveBatch:
    """Move a batch along draft -> scheduled -> in progress -> completed, or cancel it.

    A repeated click (the batch is already where the action leads) changes nothing.
    """
    if action not in TRANSITIONS:
        raise BatchError(f"Unknown action '{action}'.")
    allowed_from, to = TRANSITIONS[action]
    batch = _locked(batch)
    if batch.state == to:
        return batch
    if batch.state not in allowed_from:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}; it cannot be {to.label.lower()} now."
        )
    if action == "schedule" and not batch.members.filter(is_active=True).exists():
        raise BatchError("A batch needs at least one mailbox before it can be scheduled.")
    before = batch.state
    batch.state = to
    batch.save(update_fields=["state", "updated_at"])
    if action == "schedule":
        _notices_for(batch)
    if to in (BatchState.COMPLETED, BatchState.CANCELLED):
        # The mailboxes are free for another batch; notices not yet sent are dropped.
        batch.members.filter(is_active=True).update(is_active=False)
        batch.notices.filter(state=NoticeState.PENDING).update(state=NoticeState.CANCELLED)
    audit(batch=batch, actor=actor, action=action, before=before, after=to)
    return batch


@transaction.atomic
def batch_add_mailboxes(
    *, batch: MoveBatch, mailboxes: Sequence[Mailbox], actor: AbstractBaseUser | None
) -> int:
    """Add mailboxes to a draft or scheduled batch, re-plan it, and queue their notices."""
    batch = _locked(batch)
    _require_editable(batch)
    added = _add_members(batch, mailboxes)
    if batch.state == BatchState.SCHEDULED:
        _notices_for(batch, [m.pk for m in mailboxes])
    audit(
        batch=batch,
        actor=actor,
        action="mailboxes_added",
        count=added,
        mailboxes=[m.primary_smtp_address for m in mailboxes][:50],
    )
    batch_plan(batch=batch)
    return added


@transaction.atomic
def batch_remove_mailboxes(
    *, batch: MoveBatch, mailbox_ids: Sequence[int], actor: AbstractBaseUser | None
) -> int:
    """Take mailboxes out of a batch that has not started; their predictions and notices go."""
    batch = _locked(batch)
    _require_editable(batch)
    members = batch.members.filter(is_active=True, mailbox_id__in=list(mailbox_ids))
    addresses = list(members.values_list("mailbox__primary_smtp_address", flat=True))
    Prediction.objects.filter(member__in=members).delete()
    removed = members.update(is_active=False, state=MemberState.REMOVED)
    batch.notices.filter(mailbox_id__in=list(mailbox_ids), state=NoticeState.PENDING).update(
        state=NoticeState.CANCELLED
    )
    if removed:
        audit(
            batch=batch,
            actor=actor,
            action="mailboxes_removed",
            count=removed,
            mailboxes=addresses[:50],
        )
    return removed


@transaction.atomic
def batch_mark_moves(
    *,
    batch: MoveBatch,
    outcomes: dict[int, str],
    actor: AbstractBaseUser | None,
    via: str = "by hand",
) -> dict[str, int]:
    """Record moves as done or failed ({mailbox id: "moved" | "failed"}).

    Only members of a scheduled or running batch; marking a mailbox twice changes nothing.
    """
    batch = _locked(batch)
    if batch.state not in (BatchState.SCHEDULED, BatchState.IN_PROGRESS):
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}; moves are recorded "
            "once it is scheduled or in progress."
        )
    counts = {"moved": 0, "failed": 0, "unchanged": 0}
    now = timezone.now()
    for state in (MemberState.MOVED, MemberState.FAILED):
        ids = [m for m, s in outcomes.items() if s == state]
        changed = (
            batch.members.filter(is_active=True, mailbox_id__in=ids)
            .exclude(state=state)
            .update(state=state, moved_at=now if state == MemberState.MOVED else None)
        )
        counts[str(state)] = changed
    counts["unchanged"] = len(outcomes) - counts["moved"] - counts["failed"]
    if batch.state == BatchState.SCHEDULED and counts["moved"] + counts["failed"]:
        batch.state = BatchState.IN_PROGRESS
        batch.save(update_fields=["state", "updated_at"])
        audit(
            batch=batch,
            actor=actor,
            action="start",
            before="scheduled",
            after="in_progress",
            via=via,
        )
    if counts["moved"] or counts["failed"]:
        audit(batch=batch, actor=actor, action="moves_recorded", via=via, **counts)
    return counts


def batch_apply_move_requests(
    *, batch: MoveBatch, actor: AbstractBaseUser | None
) -> dict[str, int]:
    """Mark members from the imported Get-MoveRequest(Statistics) status: Completed -> moved,
    Failed -> failed; other states (Queued, InProgress, ...) leave the member pending."""
    statuses = dict(
        MoveRequest.objects.filter(
            mailbox__batch_memberships__batch=batch, mailbox__batch_memberships__is_active=True
        ).values_list("mailbox_id", "status")
    )
    outcomes = {}
    for mailbox_id, status in statuses.items():
        if status.lower().startswith("completed"):
            outcomes[mailbox_id] = MemberState.MOVED
        elif status.lower() == "failed":
            outcomes[mailbox_id] = MemberState.FAILED
    return batch_mark_moves(batch=batch, outcomes=outcomes, actor=actor, via="move requests")


def replan_after_import(sender: object, *, kinds: set[str], **kwargs: object) -> int:
    """Receiver of devices.signals.inventory_changed: predictions follow the inventory."""
    return batches_replan_active()
