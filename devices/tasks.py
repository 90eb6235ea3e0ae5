"""Celery tasks of the inventory: the web upload's import and the endpoint probes run here,
not in the request."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .models import ImportState, InventoryImport
from .probe_services import endpoints_probe, probe_run_claim
from .services import inventory_import_run


@shared_task(name="devices.tasks.inventory_import_group", acks_late=True)
def inventory_import_group(group: str) -> list[str]:
    """Import the queued files of one upload. Safe to run twice: finished files are skipped,
    and a file is claimed with a conditional UPDATE before it is read."""
    records = list(
        InventoryImport.objects.filter(group=group, state=ImportState.QUEUED).order_by("id")
    )
    inventory_import_run(records=records)
    return [f"{r.filename}: {r.state}" for r in records]


@shared_task(name="devices.tasks.sweep_queued_imports")
def sweep_queued_imports(older_than_minutes: int = 10, running_limit_minutes: int = 120) -> int:
    """Re-send uploads whose message was lost (still queued long after upload), and mark
    imports whose worker died (running far longer than any import takes) as failed."""
    InventoryImport.objects.filter(
        state=ImportState.RUNNING,
        started_at__lt=timezone.now() - timedelta(minutes=running_limit_minutes),
    ).update(
        state=ImportState.FAILED,
        finished_at=timezone.now(),
        problems=[
            f"the import did not finish within {running_limit_minutes} minutes (worker stopped?); upload again"
        ],
    )
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    groups = set(
        InventoryImport.objects.filter(
            state=ImportState.QUEUED, created_at__lt=cutoff, source="web"
        ).values_list("group", flat=True)
    )
    for group in groups:
        inventory_import_group.delay(str(group))
    return len(groups)


@shared_task(name="devices.tasks.endpoints_probe_task", acks_late=True)
def endpoints_probe_task(run_id: int) -> str:
    """Probe every published EAS endpoint for a queued run (the Endpoints page's button).
    Safe to run twice: the run is claimed with a conditional UPDATE, and a run that is not
    queued any more is left alone."""
    run = probe_run_claim(run_id=run_id)
    if run is None:
        return f"probe run {run_id}: not queued, left alone"
    run = endpoints_probe(run=run, actor=run.requested_by, via=run.via)
    return f"probe run {run_id}: {run.urls_done} of {run.urls_total} URLs probed"
