"""Project-wide rows: the heartbeat that shows the Celery worker and beat are alive."""

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    """Last time a named process (the beat-driven worker) proved it was alive."""

    name = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
