"""Celery tasks of move planning: plans, comparisons of targets, and the notices (one task
sends one message)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import shared_task
from django.conf import settings

from . import comparisons, services
from .notices import delivery, prepared


@shared_task(name="migrations_plan.tasks.batch_plan_task", acks_late=True)
def batch_plan_task(batch_id: int) -> str:
    """Plan one queued batch. Safe to deliver twice (acks_late): the plan is claimed with a
    conditional UPDATE, and a batch that is not queued any more is left alone."""
    return services.batch_plan_run(batch_id=batch_id)


@shared_task(name="migrations_plan.tasks.sweep_batch_plans")
def sweep_batch_plans(queued_minutes: int = 10, running_minutes: int = 30) -> int:
    """Send again plans whose message was lost and re-queue plans whose worker died."""
    return services.batch_plans_sweep(
        queued_minutes=queued_minutes, running_minutes=running_minutes
    )


@shared_task(
    name="migrations_plan.tasks.notice_send",
    # Acknowledged after it ran, and given back if the worker process dies: the row's claim
    # makes a second delivery of the same id harmless (delivery.notice_deliver).
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # A send still running when its claim expires would be sent again by another worker: a
    # prefork pool process is stopped first; in a thread pool, which keeps no time limit, the
    # send does not start on a claim past half its timeout (delivery.notice_deliver). (The
    # per-minute rate is kept by the dispatch, which hands out no more ids than
    # NOTICE_RATE_PER_MINUTE allows.)
    time_limit=max(60, settings.NOTICE_CLAIM_TIMEOUT_SECONDS // 2),
)
def notice_send(notice_id: int) -> str:
    """Send one notice. A temporary failure comes back after its backoff, never later than
    NOTICE_COUNTDOWN_MAX_SECONDS (Redis re-delivers a message held unacknowledged longer than
    its visibility timeout); beat's dispatch finds anything later by its `next_try_at`."""
    result = delivery.notice_deliver(notice_id=notice_id)
    if result.retry_in is not None and result.retry_in <= settings.NOTICE_COUNTDOWN_MAX_SECONDS:
        notice_send.apply_async((notice_id,), countdown=result.retry_in)
    return result.state


def notice_send_many(ids: Sequence[int], *, queue: str | None = None) -> None:
    """Hand ids to the broker over one producer connection, in kombu's publish batches (on
    Redis, one pipelined round trip per 500 tasks instead of one per task: half the CPU of
    10,000 separate publishes). A failure discards what was not flushed yet; those ids go
    again after NOTICE_REQUEUE_SECONDS, like any id the broker lost."""
    options = {"queue": queue} if queue else {}  # else NOTICE_QUEUE's route, or the default
    with notice_send.app.producer_or_acquire() as producer, producer.batch(max_size=500):
        for notice_id in ids:
            notice_send.apply_async((notice_id,), producer=producer, **options)


@shared_task(name="migrations_plan.tasks.notices_dispatch", ignore_result=True)
def notices_dispatch() -> int:
    """Beat, every NOTICE_DISPATCH_SECONDS: release stale claims, send what is due."""
    return len(delivery.notices_dispatch(enqueue=notice_send_many).enqueued)


@shared_task(name="migrations_plan.tasks.continuity_check", ignore_result=True)
def continuity_check() -> int:
    """Beat, every 15 minutes: phones whose grace period ran out become silent (no import
    needed for that), and their people get their follow-up."""
    return services.continuity_check()


@shared_task(name="migrations_plan.tasks.notices_prepare_task", acks_late=True, ignore_result=True)
def notices_prepare_task(batch_id: int) -> int:
    """Render a scheduled batch's before-move notices ahead of their time (notices/prepared.py).
    Safe to run any number of times: only renderings out of date are written."""
    return prepared.notices_prepare(batch_id=batch_id)


@shared_task(
    name="migrations_plan.tasks.comparison_task",
    # Given back if the worker dies: running it again only computes the same document again.
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def comparison_task(key: str, spec: dict) -> str:
    """Compare the targets (or suggest the waves) a page asked for and keep the answer in the
    cache under `key`, where the page reads it (comparisons.py)."""
    return comparisons.comparison_run(key=key, spec=spec)
