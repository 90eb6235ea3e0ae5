"""Project-wide Celery tasks: the heartbeat that tells the dashboard a worker is running."""

from __future__ import annotations

import socket
from datetime import datetime

from celery import shared_task
from celery.signals import worker_ready
from django.utils import timezone

from .models import Heartbeat


def heartbeat_record(*, name: str = "worker") -> datetime:
    """Record that `name` is alive now, on this host."""
    now = timezone.now()
    Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": now, "hostname": socket.gethostname()}
    )
    return now


@shared_task(name="exsync.tasks.heartbeat", ignore_result=False)
def heartbeat(name: str = "worker") -> dict[str, object]:
    """Record that a worker ran a task: beat sends it every minute, the dashboard shows it."""
    now = heartbeat_record(name=name)
    from devices.models import ExchangeServer

    return {"name": name, "seen_at": now.isoformat(), "servers": ExchangeServer.objects.count()}


@worker_ready.connect(dispatch_uid="exsync.heartbeat_on_worker_ready")
def heartbeat_on_worker_ready(sender: object = None, **kwargs: object) -> None:
    """A worker that has just started is alive: say so at once, not at beat's next minute
    (until then the dashboard said "not seen yet" about a running worker)."""
    # In the worker's main process; Celery's Django fixup closes the connection this opens in
    # the pool processes it forks.
    heartbeat_record(name="worker")
