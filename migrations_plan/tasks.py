"""Celery tasks of move planning: a batch's plan runs in the worker, not in the web request."""

from __future__ import annotations

from celery import shared_task

from . import services


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
