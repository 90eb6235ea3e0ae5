"""Celery tasks of the inventory: the web upload's import and the endpoint probes run here,
not in the request."""

from __future__ import annotations

from celery import shared_task

from .models import ImportState, InventoryImport
from .probe_services import endpoints_probe, probe_run_claim
from .services import inventory_import_run, inventory_imports_sweep


@shared_task(
    name="devices.tasks.inventory_import_group",
    # Acknowledged after it ran, and given back if the worker process dies (SIGKILL, out of
    # memory): a second delivery is harmless, see inventory_import_run.
    acks_late=True,
    reject_on_worker_lost=True,
)
def inventory_import_group(group: str) -> list[str]:
    """Import the queued files of one upload. Safe to run twice: finished files are skipped,
    and a file is claimed with a conditional UPDATE before it is read; one running elsewhere
    is left alone unless its process died (no heartbeat), then it is taken over."""
    records = list(
        InventoryImport.objects.filter(
            group=group, state__in=[ImportState.QUEUED, ImportState.RUNNING]
        ).order_by("id")
    )
    inventory_import_run(records=records)
    return [f"{r.filename}: {r.state}" for r in records]


@shared_task(name="devices.tasks.sweep_queued_imports")
def sweep_queued_imports(older_than_minutes: int = 10) -> int:
    """Beat: send again uploads whose message was lost or whose worker died, and fail the
    files of an import_inventory that was killed (services.inventory_imports_sweep)."""
    return inventory_imports_sweep(
        enqueue=inventory_import_group.delay, queued_minutes=older_than_minutes
    )


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
