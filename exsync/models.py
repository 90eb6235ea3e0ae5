"""Project-wide rows: the heartbeat that shows the Celery worker and beat are alive."""

from datetime import timedelta

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """Last time a named process proved it was alive: the worker when it starts, then every
    minute when beat's heartbeat task runs (exsync/tasks.py)."""

    # Beat sends the heartbeat every minute: three missed in a row means something stopped.
    STALE_AFTER = timedelta(minutes=3)

    name = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_stale(self) -> bool:
        return timezone.now() - self.seen_at > self.STALE_AFTER
