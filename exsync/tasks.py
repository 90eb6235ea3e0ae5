"""Project-wide Celery tasks."""

from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from .models import Heartbeat


@shared_task(name="exsync.tasks.heartbeat", ignore_result=False)
def heartbeat(name: str = "worker") -> dict[str, object]:
    """Record that a worker ran a task: beat sends it every minute, the dashboard shows it."""
    now = timezone.now()
    Heartbeat.objects.update_or_create(
        name=name, defaults={"seen_at": now, "hostname": socket.gethostname()}
    )
    from devices.models import ExchangeServer

    return {"name": name, "seen_at": now.isoformat(), "servers": ExchangeServer.objects.count()}
