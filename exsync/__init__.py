"""exsync: predicts what Exchange mailbox moves do to ActiveSync phones."""

from .celery import app as celery_app

__all__ = ("celery_app",)
