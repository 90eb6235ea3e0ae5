"""Comparisons of targets, their prerequisites and the waves of a migration (issue 17), made by
the worker and kept in the cache for the pages that show them.

Comparing every target for 50,000 mailboxes takes a second or two (compare.py), too long for a
web request. A page names what its comparison depends on; the hash of that is the cache key:
- the question: the batch (with its pending members, date, move kind, policy, target and
  planned_at), or the form's mailboxes and choices, or the waves' target and date;
- the inventory: the newest successful import, recorded fact (FactChange) and certificate
  probe, and the servers' rows, i.e. what sends devices.signals.inventory_changed, which the
  batches' plans follow too; and today's date (a partnership turns stale with time);
- FORMAT, raised when the document below changes shape.
A new import or recorded fact gives a new key, so a shown result is never older than the
inventory it was asked about. The first request for a key claims it with cache.add (a double
click sends one task) and sends tasks.comparison_task once the request's transaction commits.

Each key holds {"state": "queued" | "running" | "done" | "failed", "spec": ..., "document":
..., "error": ...}; `spec` is the question asked, so a page that comes back with a key (the
new-batch form's ?compare=) is checked against the inventory of now: when the key built from
the spec again differs, that newer comparison is the one shown (or asked for).

A claim whose task was lost (broker down, worker killed twice) expires after PENDING_SECONDS,
and the next view of the page asks again; a failure is shown for FAILED_SECONDS, then asked
again the same way. The document is plain JSON: the names the
templates read (compare.TargetPlan, waves.WavePlan), with their computed properties filled in.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from devices.models import (
    EndpointProbe,
    ExchangeServer,
    FactChange,
    Generation,
    ImportState,
    InventoryImport,
    Mailbox,
)

from . import compare
from .models import BatchMailbox, MemberState, MoveBatch
from .waves import Wave, WavePlan, waves_suggest

__all__ = [
    "Comparing",
    "batch_comparison",
    "comparison_by_key",
    "comparison_mailboxes",
    "comparison_run",
    "inventory_version",
    "selection_comparison",
    "waves_comparison",
]

logger = logging.getLogger(__name__)

FORMAT = 2  # 2: records carry their spec
PREFIX = "migrations_plan:compare:"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
RESULT_SECONDS = 6 * 3600
PENDING_SECONDS = 10 * 60  # far above a comparison's run time (about 2 s at 50,000 mailboxes)
FAILED_SECONDS = 60


@dataclass(frozen=True)
class Comparing:
    """Where a page's comparison is: its key, its state, and the document once done.

    targets: how many targets are being compared, for the page to say so while it waits.
    """

    key: str
    state: str
    document: dict[str, Any] | None = None
    error: str = ""
    targets: int = 0

    @property
    def done(self) -> bool:
        return self.state == DONE and self.document is not None


# --- what a comparison depends on -----------------------------------------------------------------


def inventory_version() -> list[Any]:
    """What changes whenever the inventory a comparison reads does: four small aggregates."""
    imports = InventoryImport.objects.filter(state=ImportState.SUCCEEDED, dry_run=False).aggregate(
        n=Count("pk"), at=Max("finished_at")
    )
    servers = ExchangeServer.objects.aggregate(n=Count("pk"), at=Max("updated_at"))
    return [
        imports["n"],
        imports["at"],
        servers["n"],
        servers["at"],
        FactChange.objects.aggregate(last=Max("pk"))["last"],
        EndpointProbe.objects.aggregate(last=Max("pk"))["last"],
        timezone.localdate(),
    ]


def _members(**filters: Any) -> list[Any]:
    """A fingerprint of a set of memberships: any mailbox joining, leaving or moving on
    changes its count, its newest row or the sum of its mailbox ids."""
    found = BatchMailbox.objects.filter(**filters).aggregate(
        n=Count("pk"), last=Max("pk"), ids=Sum("mailbox_id")
    )
    return [found["n"], found["last"], found["ids"]]


def _key(parts: list[Any]) -> str:
    said = json.dumps([FORMAT, parts, inventory_version()], default=str)
    return PREFIX + hashlib.sha256(said.encode()).hexdigest()


def _candidate_targets() -> int:
    """How many targets a comparison lists: every server that can hold mailboxes, and
    Exchange Online (offered even before it has a row)."""
    servers = list(ExchangeServer.objects.only("generation", "roles"))
    cloud = any(s.generation == Generation.EXO for s in servers)
    return sum(compare.hosts_mailboxes(s) for s in servers) + (0 if cloud else 1)


# --- asking for one -------------------------------------------------------------------------------


def _found(key: str, record: dict[str, Any]) -> Comparing:
    comparing = Comparing(
        key=key,
        state=record.get("state", QUEUED),
        document=record.get("document"),
        error=record.get("error", ""),
    )
    if comparing.done or comparing.state == FAILED:
        return comparing
    return Comparing(key=key, state=comparing.state, targets=_candidate_targets())


def _send(key: str, spec: dict[str, Any]) -> None:
    from .tasks import comparison_task  # the tasks module imports this one

    try:
        comparison_task.delay(key, spec)
    except Exception:
        # The broker did not take it: give the claim up, so the page's next refresh asks again.
        logger.exception("comparison %s could not be queued", key)
        cache.delete(key)


def _get_or_request(*, parts: list[Any], spec: dict[str, Any]) -> Comparing:
    """The comparison for `parts`, from the cache; on a miss, claim the key and queue the task
    after commit (one task however many requests miss at once)."""
    key = _key(parts)
    record = cache.get(key)
    if record is None:
        if cache.add(key, {"state": QUEUED, "spec": spec}, PENDING_SECONDS):
            transaction.on_commit(lambda: _send(key, spec))
        # An eager task (tests, a worker-less demo) has already answered by now.
        record = cache.get(key) or {"state": QUEUED}
    return _found(key, record)


def comparison_by_key(key: str) -> Comparing | None:
    """A comparison asked for earlier (the new-batch form's refresh), or None once expired.

    The key was made with the inventory of then: the same question is asked again of the
    inventory of now, so a fact recorded since gives the newer comparison (queued if need be,
    under its own key), never the kept one."""
    record = cache.get(key) if key.startswith(PREFIX) else None
    spec = record.get("spec") if record is not None else None
    if spec is None or spec.get("kind") != "selection":
        return None  # expired, or nothing to check it against
    return selection_comparison_of(spec)


def comparison_mailboxes(key: str) -> list[int] | None:
    """The mailbox ids a kept selection comparison was asked for (a CSV's), or None: expired,
    or chosen by the form's filters."""
    record = cache.get(key) if key.startswith(PREFIX) else None
    spec = (record or {}).get("spec") or {}
    return spec.get("mailboxes") if spec.get("kind") == "selection" else None


def batch_comparison(*, batch: MoveBatch, chosen: str | None = None) -> Comparing:
    """Every target for a batch's pending mailboxes, and the prerequisites of `chosen` (a
    target choice) or of the batch's own target."""
    parts = [
        "batch",
        batch.pk,
        batch.planned_at,
        batch.start_at,
        batch.move_kind,
        batch.target_policy_id,
        batch.target_server_id,
        chosen or "",
        _members(batch=batch, is_active=True, state=MemberState.PENDING),
    ]
    return _get_or_request(
        parts=parts, spec={"kind": "batch", "batch": batch.pk, "chosen": chosen or ""}
    )


def selection_comparison(
    *,
    mailbox_ids: list[int] | None = None,
    filters: dict[str, Any] | None = None,
    move_date: date,
    move_kind: str = "",
    target_policy_id: int | None = None,
    chosen: str | None = None,
) -> Comparing:
    """The new-batch form's comparison: for these mailboxes (a CSV's) or those the form's
    server / database / OU filters choose (read again by the worker: the inventory version
    in the key covers a change of them)."""
    return selection_comparison_of(
        {
            "kind": "selection",
            "mailboxes": sorted(mailbox_ids) if mailbox_ids is not None else None,
            "filters": filters or {},
            "move_date": move_date.isoformat(),
            "move_kind": move_kind,
            "target_policy": target_policy_id,
            "chosen": chosen or "",
        }
    )


def selection_comparison_of(spec: dict[str, Any]) -> Comparing:
    """selection_comparison() of a spec it made (kept in the cache record)."""
    return _get_or_request(parts=["selection", spec], spec=spec)


def waves_comparison(*, target: str, move_date: date) -> Comparing:
    """The waves page's suggestion: it leaves out every mailbox in an active batch."""
    spec = {"kind": "waves", "target": target, "move_date": move_date.isoformat()}
    return _get_or_request(parts=["waves", spec, _members(is_active=True)], spec=spec)


# --- answering, in the worker ---------------------------------------------------------------------


def comparison_run(*, key: str, spec: dict[str, Any]) -> str:
    """Compute a comparison and keep it under `key`; a key already done is left alone, so a
    message delivered twice costs nothing. Returns the state it leaves."""
    record = cache.get(key)
    if record is not None and record.get("state") == DONE:
        return DONE
    cache.set(key, {"state": RUNNING, "spec": spec}, PENDING_SECONDS)
    try:
        document = _compute(spec)
    except Exception as error:
        logger.exception("comparison %s failed", key)
        cache.set(key, {"state": FAILED, "spec": spec, "error": _reason(error)}, FAILED_SECONDS)
        return FAILED
    # Through JSON and back: the page reads exactly what any cache backend would hold.
    document = json.loads(json.dumps(document))
    cache.set(key, {"state": DONE, "spec": spec, "document": document}, RESULT_SECONDS)
    return DONE


def _reason(error: Exception) -> str:
    if isinstance(error, MoveBatch.DoesNotExist):
        return "the batch no longer exists"
    if isinstance(error, KeyError):
        return f"unknown target {error.args[0]!s}"
    return f"{type(error).__name__}: {error}"[:300]


def _compute(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["kind"]
    if kind == "batch":
        batch = MoveBatch.objects.get(pk=spec["batch"])
        return plan_document(compare.batch_target_plan(batch=batch, chosen=spec["chosen"] or None))
    if kind == "selection":
        from .forms import mailboxes_filtered  # the form's own meaning of its filters

        if spec["mailboxes"] is not None:
            mailboxes = Mailbox.objects.filter(pk__in=spec["mailboxes"])
        else:
            mailboxes = mailboxes_filtered(spec["filters"])
        return plan_document(
            compare.target_plan(
                mailboxes=mailboxes,
                move_date=date.fromisoformat(spec["move_date"]),
                move_kind=spec["move_kind"],
                target_policy_id=spec["target_policy"],
                chosen=spec["chosen"] or None,
            )
        )
    if kind == "waves":
        return waves_document(
            waves_suggest(target=spec["target"], move_date=date.fromisoformat(spec["move_date"]))
        )
    raise ValueError(f"no comparison of kind {kind!r}")


# --- the documents the pages read -----------------------------------------------------------------


def _target(t: compare.TargetResult) -> dict[str, Any]:
    return {
        "server_id": t.server_id,
        "choice": t.choice,
        "name": t.name,
        "generation": t.generation,
        "is_exchange_online": t.is_exchange_online,
        "current": t.current,
        "already_there": t.already_there,
        "unsupported": [{"text": p.text} for p in t.unsupported],
        "needing_action": t.needing_action,
        "needing_action_min": t.needing_action_min,
        "needing_action_max": t.needing_action_max,
        "is_range": t.is_range,
        "low_confidence_devices": t.low_confidence_devices,
        "rows": t.rows,
    }


def _prerequisite(p: compare.PrerequisiteRow) -> dict[str, Any]:
    return {
        "change": p.change,
        "subject": p.subject,
        "title": p.title,
        "detail": p.detail,
        "rules": list(p.rules),
        "admin_action": p.admin_action,
        "where": p.where,
        "where_label": p.where_label,
        "devices": p.devices,
        "from_to": p.from_to,
        "low_confidence": p.low_confidence,
        "uncredited": p.uncredited,
        "missing_facts": p.missing_facts,
        "missing_text": sorted(p.missing_text),
    }


def plan_document(plan: compare.TargetPlan) -> dict[str, Any]:
    """A TargetPlan as the comparison pages read it (_target_comparison, _prerequisites)."""
    c = plan.comparison
    return {
        "comparison": {
            "mailboxes": c.mailboxes,
            "people_with_phones": c.people_with_phones,
            "devices": c.devices,
            "seconds": round(c.seconds, 3),
            "targets": [_target(t) for t in c.targets],
        },
        "chosen": {"name": plan.chosen.name, "choice": plan.chosen.choice} if plan.chosen else None,
        "prerequisites": [_prerequisite(p) for p in plan.prerequisites],
    }


def _wave(w: Wave) -> dict[str, Any]:
    return {
        "number": w.number,
        "server_id": w.server_id,
        "server": w.server,
        "generation": w.generation,
        "mailboxes": w.mailboxes,
        "unsupported": w.unsupported,
        "breaks": w.breaks,
        "may_break": w.may_break,
        "result": _target(w.result),
        "first_needed": [_prerequisite(p) for p in w.first_needed],
        "also_needs": [[{"title": p.title, "subject": p.subject}, n] for p, n in w.also_needs],
    }


def waves_document(plan: WavePlan) -> dict[str, Any]:
    """A WavePlan as the waves page reads it; `creatable`: the waves' servers in their order."""
    return {
        "target": {"name": plan.target.name} if plan.target else None,
        "waves": [_wave(w) for w in plan.waves],
        "creatable": [w.server_id for w in plan.creatable],
    }
