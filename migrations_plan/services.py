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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from devices.models import (
    ExchangeServer,
    Generation,
    Mailbox,
    MobileDevicePolicy,
    MoveRequest,
    Partnership,
)
from exchange.versions import Generation as ExchangeGeneration
from exsync.setsql import Stage, advisory_xact_lock, local_settings

from . import continuity
from . import readiness_inventory as readiness
from .fact_key import KEY, fact_sets, join_on, source
from .facts_from_inventory import BatchContext, Inventory
from .models import (
    ACTIVE_BATCH_STATES,
    AuditEntry,
    BatchMailbox,
    BatchState,
    Explanation,
    FindingAcknowledgement,
    MemberState,
    MoveBatch,
    Notice,
    NoticeKind,
    PlanState,
    Prediction,
)
from .notices import corrections as notice_corrections
from .notices import queue as notice_queue
from .planner.rules import unsupported_path


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
    plan: Literal["now", "queue"] = "now",
    move_kind: str = "",
    target_policy: MobileDevicePolicy | None = None,
    allow_unsupported: bool = False,
    notify_unaffected: bool = True,
) -> MoveBatch:
    """Create a draft batch with its mailboxes and plan it: at once (plan="now", the command
    line) or in the worker after commit (plan="queue", the web page; see batch_plan_request).

    Raises BatchError for a taken name or a move kind that does not fit the target,
    MailboxAlreadyBatched naming the batch that holds a mailbox, and UnsupportedPath for
    mailboxes on servers that cannot coexist with the target (eas-moves.md
    M-UNSUPPORTED-PATH) unless `allow_unsupported` (then audited, and flagged on the batch).
    The same request_token twice (a double-submitted form) returns the first batch.
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
    _check_move_kind(move_kind, target_server)
    unsupported = unsupported_paths(
        source_ids=[m.server_id for m in mailboxes], target=target_server
    )
    if unsupported and not allow_unsupported:
        raise UnsupportedPath(unsupported)
    batch = MoveBatch(
        name=name,
        target_server=target_server,
        target_database=target_database.strip(),
        start_at=start_at,
        complete_by=complete_by,
        notification_emails=notification_emails,
        created_by=actor,
        request_token=request_token,
        move_kind=move_kind,
        target_policy=target_policy,
    )
    if notice_leads_minutes is not None:
        batch.notice_leads_minutes = clean_notice_leads(notice_leads_minutes)
    batch.notify_unaffected = notify_unaffected
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
        move_kind=move_kind or "derived from the servers",
        **({"unsupported_paths": [p.text for p in unsupported]} if unsupported else {}),
    )
    _plan(batch, plan, reason="created")
    return batch


MOVE_KINDS_TO_EXO = ("hybrid_onboard", "staged_or_cutover_or_imap")


def _check_move_kind(move_kind: str, target: ExchangeServer) -> None:
    to_cloud = target.generation == Generation.EXO
    if move_kind in MOVE_KINDS_TO_EXO and not to_cloud:
        raise BatchError(
            f"A {move_kind.replace('_', ' ')} move goes to Exchange Online; pick it as the target."
        )
    if move_kind in ("hybrid_offboard", "cross_forest") and to_cloud:
        raise BatchError(
            f"A {move_kind.replace('_', ' ')} move goes to an on-premises server, not Exchange Online."
        )


@dataclass(frozen=True)
class PathProblem:
    """Mailboxes on one source server whose move to the target is not a supported path."""

    server: str
    source: str
    target: str
    mailboxes: int

    @property
    def text(self) -> str:
        return (
            f"{self.mailboxes} mailbox(es) on {self.server}: Exchange {self.source} → Exchange "
            f"{self.target} is not a supported coexistence path"
        )


class UnsupportedPath(BatchError):
    def __init__(self, problems: Sequence[PathProblem]) -> None:
        self.problems = list(problems)
        listed = "; ".join(p.text for p in self.problems)
        super().__init__(
            f"{listed} (eas-moves.md M-UNSUPPORTED-PATH: 2013 cannot coexist with 2003, 2016 with "
            "2007, 2019 and SE with 2010, SE with 2013). Check the servers' versions and move "
            "through a supported intermediate version, or create the batch anyway to see it "
            "planned as unknown."
        )


def unsupported_paths(
    *,
    source_ids: Iterable[int | None] = (),
    target: ExchangeServer,
    servers: Mapping[int, ExchangeServer] | None = None,
    per_server: Mapping[int | None, int] | None = None,
) -> list[PathProblem]:
    """The source servers (with their mailbox counts) whose move to `target` is unsupported,
    judged on the servers' own generations; one query, none when `servers` (every server by
    id, as an Inventory holds them) is given. The mailboxes are counted from `source_ids`
    (one server id per mailbox) or given as `per_server` ({server id: mailboxes})."""
    counts = Counter(pk for pk in source_ids if pk)
    if per_server is not None:
        counts.update({pk: n for pk, n in per_server.items() if pk})
    if not counts or target.generation in ("", Generation.EXO):
        return []
    problems = []
    if servers is not None:
        sources = sorted((servers[pk] for pk in counts if pk in servers), key=lambda s: s.name)
    else:
        sources = list(ExchangeServer.objects.filter(pk__in=list(counts)).order_by("name"))
    for server in sources:
        if server.generation in ("", Generation.EXO):
            continue
        if (
            server.effective_forest
            and target.effective_forest
            and (server.effective_forest != target.effective_forest)
        ):
            continue  # another forest: no coexistence, a cross-forest move
        if unsupported_path(
            ExchangeGeneration(server.generation), ExchangeGeneration(target.generation)
        ):
            problems.append(
                PathProblem(server.name, server.generation, target.generation, counts[server.pk])
            )
    return problems


@dataclass
class PlanResult:
    partnerships: int = 0
    members: int = 0
    explanations: int = 0
    summary: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def _digest(prediction_dict: dict) -> str:
    return hashlib.sha256(json.dumps(prediction_dict, sort_keys=True).encode()).hexdigest()


PLAN_LOCK = 0x45585359  # "EXSY": the advisory-lock class of batch plans


@transaction.atomic
def batch_plan(
    *, batch: MoveBatch, progress: Callable[[int, int], None] | None = None
) -> PlanResult:
    """(Re)compute and store the prediction of every partnership of every active member.

    Set-based: a prediction depends only on the columns of fact_key.KEY (and on the batch), so
    the planner runs once per distinct key found in the batch, and one
    INSERT ... SELECT writes every partnership's row from that small table (a re-plan adds
    ON CONFLICT ... DO UPDATE and touches only rows whose answer changed). The query count
    does not grow with the batch.
    """
    started = time.perf_counter()
    # One plan of a batch at a time: the first plan's plain INSERT relies on it. On PostgreSQL
    # a transaction-level advisory lock, not the batch row's lock, so that recording a fact or
    # asking for another plan (an UPDATE of the row) never waits for a plan to finish.
    # (SQLite has one writer at a time anyway.)
    advisory_xact_lock(PLAN_LOCK, batch.pk)
    batch.state = MoveBatch.objects.values_list("state", flat=True).get(pk=batch.pk)
    if batch.state not in ACTIVE_BATCH_STATES:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: its plan is kept as it was."
        )
    result = PlanResult()
    inventory = Inventory.load()
    context = batch_context(batch)
    # No pending member has a row yet (a batch's first plan): a plain INSERT, a third cheaper
    # than ON CONFLICT's checks, cannot collide while this plan holds the batch's lock.
    planned_before = Prediction.objects.filter(
        member__batch=batch, member__is_active=True, member__state=MemberState.PENDING
    ).exists()
    with _bulk_plan_settings():
        keys = fact_sets(_PENDING_MAILBOXES, [batch.pk])
        total = sum(count for _, count in keys)
        answers: list[tuple] = []
        explanations: dict[str, tuple[str, dict]] = {}
        pending: Counter[str] = Counter()
        predicted = 0
        for done, (key, count) in enumerate(keys, start=1):
            prediction = inventory.predict(key, context)
            as_dict = prediction.as_dict()
            digest = _digest(as_dict)
            explanations[digest] = (str(prediction.outcome), as_dict)
            answers.append((*astuple(key), str(prediction.outcome), digest))
            pending[str(prediction.outcome)] += count
            predicted += count
            if progress is not None and (done % 100 == 0 or done == len(keys)):
                progress(predicted, total)  # devices predicted so far, of all the batch's
        ids = _explanation_ids(explanations)
        now = timezone.now()
        _write_predictions(
            batch, [(*a[:-1], ids[a[-1]]) for a in answers], now, upsert=planned_before
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


def _bulk_plan_settings() -> AbstractContextManager[None]:
    """PostgreSQL settings for the two statements that read the whole batch.

    Row estimates for a freshly filled batch make PostgreSQL choose nested loops over 100,000
    rows and a sort that spills to disk; hash joins and an in-memory aggregate are several
    times faster there (but not for the small lookups around them, so the settings end with
    the block).
    """
    return local_settings({"enable_nestloop": "off", "work_mem": "64MB"})


# The mailboxes a plan predicts for: pending members of the batch (moves already done or
# failed keep the prediction made before them: re-planning a moved mailbox would predict a
# move from the target to itself).
_PENDING_MAILBOXES = (
    f"SELECT mailbox_id FROM {BatchMailbox._meta.db_table} "
    "WHERE batch_id = %s AND is_active AND state = 'pending'"
)


def batch_context(batch: MoveBatch) -> BatchContext:
    """What the planner needs of a batch besides each partnership's key."""
    return BatchContext(
        target_id=batch.target_server_id,
        move_date=timezone.localdate(batch.start_at),
        move_kind=batch.move_kind,
        target_policy_id=batch.target_policy_id,
    )


def _write_predictions(
    batch: MoveBatch, answers: list[tuple], now: datetime, *, upsert: bool
) -> None:
    prediction = Prediction._meta.db_table
    member = BatchMailbox._meta.db_table
    stage = Stage(
        connection,
        "stage_plan_answers",
        [
            *((part.name, part.type) for part in KEY),
            ("outcome", "text"),
            ("explanation_id", "bigint"),
        ],
    )
    stage.load(answers)
    insert = (
        f"INSERT INTO {prediction} (member_id, partnership_id, outcome, explanation_id, computed_at) "
        f"SELECT bm.id, f.id, k.outcome, k.explanation_id, %s "
        f"FROM {source(_PENDING_MAILBOXES)} "
        f"JOIN {member} bm ON bm.mailbox_id = f.mailbox_id "
        f"JOIN {stage.name} k ON {join_on('k')} "
        f"WHERE bm.batch_id = %s AND bm.is_active AND bm.state = 'pending'"
    )
    if upsert:
        # Only rows whose answer changed are rewritten.
        differs = stage.differs(prediction, "excluded", ["outcome", "explanation_id"])
        insert += (
            " ON CONFLICT (member_id, partnership_id) DO UPDATE SET outcome = excluded.outcome, "
            "explanation_id = excluded.explanation_id, computed_at = excluded.computed_at "
            f"WHERE {differs}"
        )
    stage.execute(insert, [stage.value(now), batch.pk, batch.pk])


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
            # Moved and failed members keep what they were moved with (their phones' verification
            # reads it), even when a later full export no longer lists a phone.
            f"WHERE bm.batch_id = %s AND bm.state = %s AND p.is_stale)",
            [batch.pk, MemberState.PENDING],
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
                possible=as_dict["possible"],
                depends_on=as_dict["depends_on"],
                branches=as_dict["branches"],
                user_text=as_dict["user_text"],
                admin_text=as_dict["admin_text"],
            )
            for digest, (outcome, as_dict) in explanations.items()
        ],
        ignore_conflicts=True,
    )
    return dict(
        Explanation.objects.filter(digest__in=list(explanations)).values_list("digest", "id")
    )


def batches_replan_active(*, reason: str = "inventory changed") -> int:
    """Queue a re-plan of every batch not yet finished: the inventory it depends on changed.

    Returns how many plans were queued; a batch already queued is not queued twice, and one
    whose plan is running is planned once more after it (batch_plan_request).
    """
    batches = list(MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES).only("pk"))
    return sum(batch_plan_request(batch=batch, reason=reason) for batch in batches)


def _plan(batch: MoveBatch, plan: Literal["now", "queue"], *, reason: str) -> None:
    if plan == "now":
        batch_plan(batch=batch)
        _corrections_after_plan(batch)
        notices_prepare_soon(batch)
    else:
        # The caller's own audit entry ("created", "mailboxes_added") names the admin.
        batch_plan_request(batch=batch, reason=reason)


def _plan_task_enqueue(batch_id: int) -> None:
    """Send the plan task once the current transaction commits (at once outside one), so the
    worker never looks for a batch that was rolled back. A broker that does not answer is
    logged, not raised: the batch stays queued and batch_plans_sweep sends it again."""
    from .tasks import batch_plan_task  # the tasks module imports this one

    transaction.on_commit(lambda: batch_plan_task.delay(batch_id), robust=True)


@transaction.atomic
def batch_plan_request(
    *, batch: MoveBatch, reason: str, actor: AbstractBaseUser | None = None
) -> bool:
    """Ask the worker to (re)plan a batch; True if this call queued a plan task.

    Requests coalesce, each decided by one conditional UPDATE of the batch row:
    - idle or failed: the batch becomes queued and one task is sent after commit;
    - queued: nothing is sent; the task has not started and will read this change (the row is
      rewritten so that its claim waits for this transaction to commit);
    - running: the plan under way may have read the data before this change, so it is
      flagged to run once more when it ends; nothing is sent now.
    A completed or cancelled batch keeps the plan it was moved with: False.
    Audited when an admin asks (the Re-plan button); batch_create and batch_add_mailboxes
    audit the change that needs the plan themselves.
    """
    rows = MoveBatch.objects.filter(pk=batch.pk, state__in=ACTIVE_BATCH_STATES)
    now = timezone.now()
    outcome = "not planned: the batch is finished"
    for _ in range(3):  # the plan's state may change between two statements: look again
        if rows.filter(plan_state__in=(PlanState.IDLE, PlanState.FAILED)).update(
            plan_state=PlanState.QUEUED,
            plan_requested_at=now,
            plan_error="",
            plan_done=0,
            plan_total=0,
        ):
            _plan_task_enqueue(batch.pk)
            outcome = "queued"
            break
        if rows.filter(plan_state=PlanState.RUNNING).update(plan_rerun=True):
            outcome = "queued after the running plan"
            break
        if rows.filter(plan_state=PlanState.QUEUED).update(plan_state=PlanState.QUEUED):
            outcome = "already queued"
            break
        if not rows.exists():
            break
    if actor is not None:
        audit(batch=batch, actor=actor, action="plan_requested", reason=reason, plan=outcome)
    return outcome == "queued"


def batch_plan_run(*, batch_id: int) -> str:
    """The plan task's body: plan a queued batch once, then leave it idle (or failed).

    Idempotent: only the worker whose conditional UPDATE queued -> running changes the row
    plans. Another message for the same request, or one for a batch planned since, finds it
    idle and does nothing. A batch completed or cancelled while queued ends idle, unplanned.
    Returns what happened, for the worker's log; a failure is stored, then raised.
    """
    started = timezone.now()
    claimed = MoveBatch.objects.filter(pk=batch_id, plan_state=PlanState.QUEUED).update(
        plan_state=PlanState.RUNNING,
        plan_started_at=started,
        plan_rerun=False,
        plan_done=0,
        plan_total=0,
        plan_error="",
    )
    batch = MoveBatch.objects.filter(pk=batch_id).first() if claimed else None
    if batch is None:
        return "not queued: nothing to do"
    cache.delete(_progress_key(batch_id))
    if not batch.is_active:
        _plan_end(batch_id, started, PlanState.IDLE)
        return f"{batch.state}: not planned"
    this_plan = MoveBatch.objects.filter(pk=batch_id, plan_started_at=started)
    this_plan.update(
        plan_total=batch.members.filter(is_active=True, state=MemberState.PENDING).count()
    )

    def progress(done: int, total: int) -> None:
        # The plan is one transaction holding the batch row: the page reads this from the
        # cache, which another process sees at once.
        cache.set(_progress_key(batch_id), {"done": done, "total": total}, PROGRESS_SECONDS)

    try:
        result = batch_plan(batch=batch, progress=progress)
    except BatchError as error:
        if not MoveBatch.objects.filter(pk=batch_id, state__in=ACTIVE_BATCH_STATES).exists():
            _plan_end(batch_id, started, PlanState.IDLE)  # completed or cancelled meanwhile
            return "finished meanwhile: not planned"
        _plan_end(batch_id, started, PlanState.FAILED, error=str(error))
        raise
    except Exception as error:
        _plan_end(batch_id, started, PlanState.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    _plan_end(batch_id, started, PlanState.IDLE)
    corrections = _corrections_after_plan(batch)
    notices_prepare_soon(batch)
    _moves_after_plan(batch)
    return f"planned {result.partnerships} devices in {result.seconds:.1f} s" + (
        f"; {corrections} corrections queued" if corrections else ""
    )


def _corrections_after_plan(batch: MoveBatch) -> int:
    """People told something before this plan that it no longer says get a correction."""
    batch.refresh_from_db(fields=["state", "start_at"])
    if batch.state != BatchState.SCHEDULED:
        return 0
    queued = notice_corrections.corrections_queue(batch=batch)
    if queued:
        notices_dispatch_soon()
    return queued


def _moves_after_plan(batch: MoveBatch) -> None:
    """Move requests imported while the batch was being planned are applied now."""
    batch.refresh_from_db(fields=["state", "plan_state"])
    if batch.state in (BatchState.SCHEDULED, BatchState.IN_PROGRESS) and (
        batch.plan_state == PlanState.IDLE
        and MoveRequest.objects.filter(
            mailbox__batch_memberships__batch=batch,
            mailbox__batch_memberships__state=MemberState.PENDING,
        ).exists()
    ):
        batch_apply_move_requests(batch=batch, actor=None)


def notices_dispatch_soon() -> None:
    """Notices due now (reports, after-move notices, corrections, resends) go at once rather
    than at beat's next run: ask for a dispatch when the transaction commits."""
    from .tasks import notices_dispatch  # the tasks module imports this one

    transaction.on_commit(lambda: notices_dispatch.delay(), robust=True)


@transaction.atomic
def findings_acknowledge(
    *, batch: MoveBatch, digests: Sequence[str], note: str, actor: AbstractBaseUser | None
) -> int:
    """An admin read these blocking findings of the batch and schedules it anyway: one
    acknowledgement each (a repeated click adds none), audited with what each finding said.
    Only findings that are blocking for this batch now can be acknowledged."""
    note = note.strip()
    if not note:
        raise BatchError("Say why the batch may go ahead despite these findings.")
    batch = _locked(batch)
    current = {f.digest: f for f in readiness.batch_findings(batch) if f.is_blocking}
    unknown = [d for d in digests if d not in current]
    if unknown or not digests:
        raise BatchError(
            "These findings changed since the page was shown (or none was chosen): read them again."
        )
    made = 0
    for digest in dict.fromkeys(digests):
        finding = current[digest]
        _, created = FindingAcknowledgement.objects.get_or_create(
            batch=batch,
            digest=digest,
            defaults={
                "check_id": finding.check,
                "subject": finding.subject[:512],
                "note": note[:500],
                "acknowledged_by": actor,
            },
        )
        if created:
            made += 1
            audit(
                batch=batch,
                actor=actor,
                action="finding_acknowledged",
                check=finding.check,
                subject=finding.subject,
                message=finding.message,
                note=note,
            )
    return made


def notices_prepare_soon(batch: MoveBatch) -> None:
    """Render the batch's before-move notices ahead (notices/prepared.py) once this commits:
    in a worker, never in the request; a batch not scheduled or being planned is left alone."""
    from .tasks import notices_prepare_task  # the tasks module imports this one

    if batch.state != BatchState.SCHEDULED:
        return
    batch_id = batch.pk
    transaction.on_commit(lambda: notices_prepare_task.delay(batch_id), robust=True)


PROGRESS_SECONDS = 3600


def _progress_key(batch_id: int) -> str:
    return f"exsync:plan-progress:{batch_id}"


def batch_plan_progress(*, batch_id: int) -> dict[str, int] | None:
    """{"done": devices predicted, "total": devices} of the plan running now, if reported."""
    return cache.get(_progress_key(batch_id))


def _plan_end(batch_id: int, started: datetime, state: PlanState, *, error: str = "") -> None:
    """End the plan that started at `started`: idle or failed, or queued once more if a
    request came in while it ran. A plan the sweeper has handed to another worker ends
    nothing."""
    this_plan = MoveBatch.objects.filter(
        pk=batch_id, plan_state=PlanState.RUNNING, plan_started_at=started
    )
    if this_plan.filter(plan_rerun=False).update(plan_state=state, plan_error=error[:2000]):
        return
    if this_plan.filter(plan_rerun=True).update(
        plan_state=PlanState.QUEUED, plan_rerun=False, plan_requested_at=timezone.now()
    ):
        _plan_task_enqueue(batch_id)


def batch_plans_sweep(*, queued_minutes: int = 10, running_minutes: int = 30) -> int:
    """Beat's safety net for plans: send again those whose message was lost (queued for
    long) and re-queue those whose worker died (running longer than any plan takes).

    Sending twice is harmless: only one message claims a plan, and a plan re-queued while an
    old one still runs waits for its advisory lock (PostgreSQL) or the database's write lock
    (SQLite), then re-plans what the first wrote. Returns how many plan tasks were sent.
    """
    now = timezone.now()
    stuck = MoveBatch.objects.filter(
        plan_state=PlanState.RUNNING,
        plan_started_at__lt=now - timedelta(minutes=running_minutes),
    )
    ids = {
        pk
        for pk in list(stuck.values_list("pk", flat=True))
        if stuck.filter(pk=pk).update(
            plan_state=PlanState.QUEUED, plan_rerun=False, plan_requested_at=now
        )
    }
    ids.update(
        MoveBatch.objects.filter(plan_state=PlanState.QUEUED)
        .filter(
            Q(plan_requested_at__lt=now - timedelta(minutes=queued_minutes))
            | Q(plan_requested_at__isnull=True)
        )
        .values_list("pk", flat=True)
    )
    for pk in sorted(ids):
        _plan_task_enqueue(pk)
    return len(ids)


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


def _locked(batch: MoveBatch) -> MoveBatch:
    """Re-read the batch under a row lock so two admins' clicks are applied one after the other."""
    return MoveBatch.objects.select_for_update().get(pk=batch.pk)


def _require_editable(batch: MoveBatch) -> None:
    if batch.state not in EDITABLE_STATES:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: mailboxes can be added or "
            "removed only before it starts."
        )


@transaction.atomic
def batch_transition(
    *,
    batch: MoveBatch,
    action: str,
    actor: AbstractBaseUser | None,
    check_readiness: bool = True,
) -> MoveBatch:
    """Move a batch along draft -> scheduled -> in progress -> completed, or cancel it.

    A repeated click (the batch is already where the action leads) changes nothing. A batch
    with blocking readiness findings is scheduled only once an admin acknowledged each of them
    (findings_acknowledge); `check_readiness=False` is for a move recorded after the fact.
    """
    if action not in TRANSITIONS:
        raise BatchError(f"Unknown action '{action}'.")
    allowed_from, to = TRANSITIONS[action]
    batch = _locked(batch)
    batch.notice_counts = {}
    if batch.state == to:
        return batch
    if batch.state not in allowed_from:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}; it cannot be {to.label.lower()} now."
        )
    if action == "schedule" and not batch.members.filter(is_active=True).exists():
        raise BatchError("A batch needs at least one mailbox before it can be scheduled.")
    if action == "schedule" and check_readiness:
        blocking = readiness.unacknowledged_blocking(batch, readiness.batch_findings(batch))
        if blocking:
            raise BatchError(
                f"{len(blocking)} blocking readiness finding(s) concern this batch "
                f"({', '.join(sorted({f.check for f in blocking}))}): fix them, or acknowledge "
                "each one on the batch page, before scheduling."
            )
    before = batch.state
    batch.state = to
    batch.save(update_fields=["state", "updated_at"])
    counts = _notices_on_transition(batch, to)
    if to in (BatchState.COMPLETED, BatchState.CANCELLED):
        # The mailboxes are free for another batch.
        batch.members.filter(is_active=True).update(is_active=False)
    audit(batch=batch, actor=actor, action=action, before=before, after=to, **counts)
    batch.notice_counts = counts
    return batch


REPORT_ON = {
    BatchState.SCHEDULED: NoticeKind.REPORT_SCHEDULED,
    BatchState.IN_PROGRESS: NoticeKind.REPORT_STARTED,
    BatchState.COMPLETED: NoticeKind.REPORT_COMPLETED,
}


def _notices_on_transition(batch: MoveBatch, to: str) -> dict[str, int]:
    """The notices a change of state queues or withdraws, counted for the audit and the page."""
    now = timezone.now()
    counts: dict[str, int] = {}
    if to == BatchState.SCHEDULED:
        counts["notices_queued"] = notice_queue.before_notices_queue(batch=batch)
        notices_prepare_soon(batch)
    if to == BatchState.IN_PROGRESS:
        # Before-the-move notices not yet sent would speak of a move under way.
        counts["notices_withdrawn"] = notice_queue.notices_withdraw(
            batch=batch, reason="the move started", kinds=[NoticeKind.BEFORE_MOVE]
        )
    if to in (BatchState.COMPLETED, BatchState.CANCELLED):
        # Only what speaks of a move still to come: what to do after a move that happened,
        # and the reports, still go.
        counts["notices_withdrawn"] = notice_queue.notices_withdraw(
            batch=batch,
            reason=f"the batch was {to.label.lower()}",
            kinds=[NoticeKind.BEFORE_MOVE]
            + ([NoticeKind.CORRECTION] if to == BatchState.COMPLETED else []),
        )
    if to == BatchState.CANCELLED:
        counts["corrections_queued"] = notice_corrections.corrections_queue(batch=batch)
    if to in REPORT_ON:
        counts["reports_queued"] = notice_queue.report_queue(
            batch=batch, kind=REPORT_ON[to], now=now
        )
    notices_dispatch_soon()
    return counts


@transaction.atomic
def batch_add_mailboxes(
    *,
    batch: MoveBatch,
    mailboxes: Sequence[Mailbox],
    actor: AbstractBaseUser | None,
    plan: Literal["now", "queue"] = "now",
) -> int:
    """Add mailboxes to a draft or scheduled batch, re-plan it (at once or queued, as in
    batch_create), and queue their notices."""
    batch = _locked(batch)
    _require_editable(batch)
    added = _add_members(batch, mailboxes)
    if batch.state == BatchState.SCHEDULED:
        notice_queue.before_notices_queue(batch=batch, mailbox_ids=[m.pk for m in mailboxes])
        notices_prepare_soon(batch)
    audit(
        batch=batch,
        actor=actor,
        action="mailboxes_added",
        count=added,
        mailboxes=[m.primary_smtp_address for m in mailboxes][:50],
    )
    _plan(batch, plan, reason="mailboxes added")
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
    notice_queue.notices_withdraw(
        batch=batch, mailbox_ids=mailbox_ids, reason="the person was taken out of the batch"
    )
    if removed and notice_corrections.corrections_queue(batch=batch):
        notices_dispatch_soon()  # people already told get "your move is off"
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
def batch_reschedule(
    *,
    batch: MoveBatch,
    start_at: datetime,
    complete_by: datetime | None,
    notice_leads_minutes: list[int] | None = None,
    notify_unaffected: bool | None = None,
    actor: AbstractBaseUser | None,
) -> MoveBatch:
    """Move a draft or scheduled batch to another time (and change when people hear of it).

    Pending notices follow the new start; people already told the old time get a correction.
    Saving the same values again changes nothing and records nothing.
    """
    batch = _locked(batch)
    batch.notice_counts = {}
    if batch.state not in EDITABLE_STATES:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: its time can be "
            "changed only before it starts."
        )
    if complete_by is not None and complete_by < start_at:
        raise BatchError("The completion time must be after the start.")
    leads = (
        clean_notice_leads(notice_leads_minutes)
        if notice_leads_minutes is not None
        else batch.notice_leads_minutes
    )
    notify = batch.notify_unaffected if notify_unaffected is None else notify_unaffected
    # Compared and recorded in UTC: the same moment typed in another zone is no change.
    start_at = start_at.astimezone(UTC)
    complete_by = complete_by.astimezone(UTC) if complete_by else None
    before = {
        "start_at": batch.start_at.astimezone(UTC).isoformat(),
        "complete_by": batch.complete_by.astimezone(UTC).isoformat() if batch.complete_by else None,
        "notice_leads_minutes": batch.notice_leads_minutes,
        "notify_unaffected": batch.notify_unaffected,
    }
    batch.start_at, batch.complete_by = start_at, complete_by
    batch.notice_leads_minutes, batch.notify_unaffected = leads, notify
    after = {
        "start_at": start_at.isoformat(),
        "complete_by": complete_by.isoformat() if complete_by else None,
        "notice_leads_minutes": leads,
        "notify_unaffected": notify,
    }
    if before == after:
        return batch
    batch.save(
        update_fields=[
            "start_at",
            "complete_by",
            "notice_leads_minutes",
            "notify_unaffected",
            "updated_at",
        ]
    )
    counts: dict[str, int] = {}
    if batch.state == BatchState.SCHEDULED:
        if before["notice_leads_minutes"] != leads:
            # Lead times that are gone are withdrawn; new ones are queued.
            counts["notices_withdrawn"] = (
                batch.notices.filter(kind=NoticeKind.BEFORE_MOVE, state="pending")
                .exclude(lead_minutes__in=notice_queue.leads_of(batch))
                .update(state="cancelled", reason="its lead time was removed from the batch")
            )
            notice_queue.before_notices_queue(batch=batch)
        counts["notices_moved"] = notice_queue.before_notices_move(batch=batch, now=timezone.now())
        counts["corrections_queued"] = notice_corrections.corrections_queue(batch=batch)
        notices_dispatch_soon()
        notices_prepare_soon(batch)
    audit(batch=batch, actor=actor, action="rescheduled", before=before, after=after, **counts)
    batch.notice_counts = counts
    return batch


def clean_notice_leads(leads: Iterable[int]) -> list[int]:
    """Lead times in minutes, largest first; BatchError for a value that is not one."""
    cleaned = set()
    for lead in leads:
        try:
            value = int(lead)
        except (TypeError, ValueError):
            raise BatchError(f"'{lead}' is not a number of minutes before the start.") from None
        if value <= 0 or value > 60 * 24 * 60:
            raise BatchError(
                f"A notice lead time must be between 1 minute and 60 days before the start, not {value} minutes."
            )
        cleaned.add(value)
    return sorted(cleaned, reverse=True)


@transaction.atomic
def batch_mark_moves(
    *,
    batch: MoveBatch,
    outcomes: dict[int, str],
    actor: AbstractBaseUser | None,
    via: str = "by hand",
    at: datetime | dict[int, datetime] | None = None,
) -> dict[str, int]:
    """Record moves as done or failed ({mailbox id: "moved" | "failed"}), done `at` a time (one
    for all, or per mailbox id; default now; a move recorded after the fact keeps its time).

    Only members of a scheduled or running batch; marking a mailbox twice changes nothing.
    Moved mailboxes are then verified (continuity.py): their phones' syncs after the move time.
    People get "what to do now" for a move of the last AFTER_NOTICE_HOURS only: a move long
    past is history, not news.
    """
    now = timezone.now()
    times = at if isinstance(at, dict) else {}
    default_at = at if isinstance(at, datetime) else now
    future = [t for t in [default_at, *times.values()] if t > now + timedelta(minutes=5)]
    if future:
        raise BatchError(
            f"A move cannot be recorded as done in the future ({future[0]:%Y-%m-%d %H:%M})."
        )
    batch = _locked(batch)
    if batch.state not in (BatchState.SCHEDULED, BatchState.IN_PROGRESS):
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}; moves are recorded "
            "once it is scheduled or in progress."
        )
    moving = [m for m, s in outcomes.items() if s == MemberState.MOVED]
    if (
        moving
        and batch.plan_state in (PlanState.QUEUED, PlanState.RUNNING)
        and batch.members.filter(
            is_active=True, mailbox_id__in=moving, mailbox__partnerships__is_stale=False
        )
        .exclude(predictions__isnull=False)
        .exists()
    ):
        # A moved mailbox is verified against its prediction, which the pending plan has not
        # written yet for some; imported move requests are applied again when it ends.
        raise BatchError(
            f"Batch '{batch.name}' is being planned; record its moves once the plan is done "
            "(the batch page shows its progress)."
        )
    counts = {"moved": 0, "failed": 0, "unchanged": 0}
    failed_ids = [m for m, s in outcomes.items() if s == MemberState.FAILED]
    counts["failed"] = (
        batch.members.filter(is_active=True, mailbox_id__in=failed_ids)
        .exclude(state=MemberState.FAILED)
        .update(state=MemberState.FAILED, moved_at=None)
    )
    by_time: dict[datetime, list[int]] = {}
    for mailbox_id, state in outcomes.items():
        if state == MemberState.MOVED:
            by_time.setdefault(times.get(mailbox_id, default_at), []).append(mailbox_id)
    for moved_at, ids in by_time.items():
        counts["moved"] += (
            batch.members.filter(is_active=True, mailbox_id__in=ids)
            .exclude(state=MemberState.MOVED)
            .update(state=MemberState.MOVED, moved_at=moved_at)
        )
    counts["unchanged"] = len(outcomes) - counts["moved"] - counts["failed"]
    counts["after_notices"] = 0
    if batch.state == BatchState.SCHEDULED and counts["moved"] + counts["failed"]:
        batch.state = BatchState.IN_PROGRESS
        batch.save(update_fields=["state", "updated_at"])
        started = _notices_on_transition(batch, BatchState.IN_PROGRESS)
        audit(
            batch=batch,
            actor=actor,
            action="start",
            before="scheduled",
            after="in_progress",
            via=via,
            **started,
        )
    recent = [
        m
        for t, ids in by_time.items()
        if t >= now - timedelta(hours=AFTER_NOTICE_HOURS)
        for m in ids
    ]
    if counts["moved"]:
        counts["after_notices"] = notice_queue.after_notices_queue(
            batch=batch, mailbox_ids=recent, now=now
        )
        counts["phones_watched"] = continuity.continuity_start(
            batch=batch, mailbox_ids=[m for ids in by_time.values() for m in ids], now=now
        )
        continuity.continuity_refresh(now=now)
        continuity.chases_queue(now=now)
        notices_dispatch_soon()
    if counts["moved"] or counts["failed"]:
        audit(batch=batch, actor=actor, action="moves_recorded", via=via, **counts)
    return counts


AFTER_NOTICE_HOURS = 24


def batch_apply_move_requests(
    *, batch: MoveBatch, actor: AbstractBaseUser | None
) -> dict[str, int]:
    """Mark members from the imported Get-MoveRequest(Statistics) status: Completed -> moved
    (at its CompletionTimestamp, else now), Failed -> failed; other states (Queued,
    InProgress, ...) leave the member pending."""
    requests = list(
        MoveRequest.objects.filter(
            mailbox__batch_memberships__batch=batch, mailbox__batch_memberships__is_active=True
        ).values_list(
            "mailbox_id",
            "status",
            "completed_at",
            "failed_at",
            "mailbox__batch_memberships__added_at",
        )
    )
    outcomes, times = {}, {}
    now = timezone.now()
    # Exchange keeps one request per mailbox: after a mailbox moved in an earlier batch, its
    # Completed request is that move's, not this batch's.
    earlier = dict(
        BatchMailbox.objects.filter(
            mailbox_id__in=[r[0] for r in requests], state=MemberState.MOVED
        )
        .exclude(batch=batch)
        .values_list("mailbox_id")
        .annotate(last=Max("moved_at"))
        .values_list("mailbox_id", "last")
    )
    for mailbox_id, status, completed_at, failed_at, joined in requests:
        previous = earlier.get(mailbox_id)
        if completed_at and previous and completed_at <= previous + timedelta(minutes=1):
            continue
        if failed_at and failed_at < joined:
            continue  # a failed attempt from before the mailbox joined this batch
        if status.lower().startswith("completed"):
            outcomes[mailbox_id] = MemberState.MOVED
            times[mailbox_id] = min(completed_at, now) if completed_at else now
        elif status.lower() == "failed":
            outcomes[mailbox_id] = MemberState.FAILED
    return batch_mark_moves(
        batch=batch, outcomes=outcomes, actor=actor, via="move requests", at=times
    )


def moves_after_import(sender: object, *, kinds: set[str], **kwargs: object) -> int:
    """Receiver of inventory_changed: an imported Get-MoveRequestStatistics marks the moves it
    reports in every scheduled or running batch, as the batch page's button does."""
    if "move_requests" not in kinds:
        return 0
    marked = 0
    for batch in MoveBatch.objects.filter(state__in=(BatchState.SCHEDULED, BatchState.IN_PROGRESS)):
        try:
            marked += batch_apply_move_requests(batch=batch, actor=None)["moved"]
        except BatchError:
            continue  # mailboxes not planned yet: applied when the batch's plan ends
    return marked


def continuity_check() -> int:
    """Decide every moved phone again (after an import, and as grace periods run out), queue
    the follow-ups of silent ones and send them."""
    decided = continuity.continuity_refresh()
    if continuity.chases_queue():
        notices_dispatch_soon()
    return decided


def continuity_after_import(sender: object, *, import_ids: list[int], **kwargs: object) -> int:
    """Receiver of devices_observed: a device export after a move is what verifies it."""
    return continuity_check()


def replan_after_import(sender: object, *, kinds: set[str], **kwargs: object) -> int:
    """Receiver of devices.signals.inventory_changed: predictions follow the inventory.

    Sent after an import (in the worker) or a server fact recorded on a web page commits;
    the plans are queued, so neither waits for them.
    """
    return batches_replan_active(reason=f"inventory changed: {', '.join(sorted(kinds))}")


@transaction.atomic
def notice_resend(
    *, notice: Notice, expected_revision: int, actor: AbstractBaseUser | None
) -> Notice:
    """Send a sent or failed notice again, as a new message built from the plan as it is now.

    Raises notice_queue.ResendRefused (a BatchError would be wrong: the batch is unchanged)
    for a notice still waiting to go out. A double click makes one copy.
    """
    copy = notice_queue.notice_resend(
        notice=notice, expected_revision=expected_revision, actor=actor
    )
    audit(
        batch=notice.batch,
        actor=actor,
        action="notice_resent",
        notice=notice.pk,
        copy=copy.pk,
        kind=notice.kind,
        recipient=notice.recipient,
    )
    notices_dispatch_soon()
    return copy


@transaction.atomic
def batch_grace_set(
    *, batch: MoveBatch, grace_hours: int, actor: AbstractBaseUser | None
) -> MoveBatch:
    """Change how long after its move a phone may go without a sync before it is silent.

    The batch's phones follow at once (their silent_after, then every open phone decided
    again: a longer grace turns silent phones back to pending, a shorter one may silence
    some and queue their follow-ups). The same value again changes nothing.
    """
    if grace_hours < 1:
        raise BatchError("The grace period is at least one hour.")
    batch = _locked(batch)
    before = batch.grace_hours
    if before == grace_hours:
        return batch
    batch.grace_hours = grace_hours
    batch.save(update_fields=["grace_hours", "updated_at"])
    phones = continuity.continuity_grace(batch=batch)
    if phones:
        continuity_check()
    audit(batch=batch, actor=actor, action="grace_changed", before=before, after=grace_hours)
    return batch


@transaction.atomic
def batch_retarget(
    *,
    batch: MoveBatch,
    target_server: ExchangeServer,
    actor: AbstractBaseUser | None,
    allow_unsupported: bool = False,
    plan: Literal["now", "queue"] = "queue",
) -> MoveBatch:
    """Point a draft batch at another target (the comparison's "Use this target") and re-plan.

    Only a draft: once scheduled, people may have been told what happens on the old target.
    The target database belonged to the old target and is cleared. Raises BatchError for a
    move kind that does not fit the new target and UnsupportedPath, as batch_create does,
    unless `allow_unsupported`. The same target again changes nothing and records nothing.
    """
    batch = _locked(batch)
    if batch.state != BatchState.DRAFT:
        raise BatchError(
            f"Batch '{batch.name}' is {batch.get_state_display().lower()}: only a draft can get "
            "another target."
        )
    if batch.target_server_id == target_server.pk:
        return batch
    _check_move_kind(batch.move_kind, target_server)
    per_server = dict(
        batch.members.filter(is_active=True)
        .order_by()
        .values_list("source_server_id")
        .annotate(n=Count("pk"))
        .values_list("source_server_id", "n")
    )
    unsupported = unsupported_paths(target=target_server, per_server=per_server)
    if unsupported and not allow_unsupported:
        raise UnsupportedPath(unsupported)
    before = MoveBatch.objects.select_related("target_server").get(pk=batch.pk).target_server
    batch.target_server = target_server
    batch.target_database = ""
    if batch.target_policy_id and (
        batch.target_policy.organisation is None
        or batch.target_policy.organisation.forest != target_server.effective_forest
    ):
        batch.target_policy = None  # another organisation's policy does not apply there
    batch.save(update_fields=["target_server", "target_database", "target_policy", "updated_at"])
    audit(
        batch=batch,
        actor=actor,
        action="retargeted",
        before=before.name,
        after=target_server.name,
        **({"unsupported_paths": [p.text for p in unsupported]} if unsupported else {}),
    )
    _plan(batch, plan, reason="target changed")
    return batch


@transaction.atomic
def batches_create_waves(
    *,
    target_server: ExchangeServer,
    waves: Sequence[tuple[str, Sequence[Mailbox]]],
    start_at: datetime,
    days_between: int,
    name_prefix: str,
    actor: AbstractBaseUser | None,
) -> list[MoveBatch]:
    """Turn a suggested order of waves (waves.waves_suggest) into draft batches, one per wave:
    "<prefix> 1: EX2010A", starting `days_between` days apart. All or none: a taken name, a
    mailbox already batched or an unsupported path (batch_create's checks) creates nothing."""
    if days_between < 0:
        raise BatchError("Waves cannot start before the one they follow.")
    created = []
    for number, (server, mailboxes) in enumerate(waves, start=1):
        if not mailboxes:
            continue
        created.append(
            batch_create(
                name=f"{name_prefix.strip() or 'Wave'} {number}: {server}",
                target_server=target_server,
                start_at=start_at + timedelta(days=days_between * (number - 1)),
                mailboxes=mailboxes,
                actor=actor,
                plan="queue",
            )
        )
    return created
