"""The Celery app: configured from Django settings (CELERY_*), tasks found in every app."""

import os
import threading
import time

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exsync.settings")

app = Celery("exsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs: object) -> None:
    # The filesystem transport fails on a missing folder; create it so the first run just works.
    from django.conf import settings

    folder = getattr(settings, "CELERY_BROKER_FOLDER", None)
    if folder:
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)


# A connection used this recently is alive: checked again after this long, or after an error.
CHECK_AFTER_SECONDS = 1.0
_checked = threading.local()


@task_postrun.connect(dispatch_uid="exsync.close_old_connections")
def _close_old_connections(task: object = None, **kwargs: object) -> None:
    # With connections reused across tasks (CELERY_DB_REUSE_MAX), this keeps Django's request
    # rules for them in the worker: closed past CONN_MAX_AGE, or when broken. A task run
    # eagerly, in the caller's process (and maybe inside its transaction), leaves the caller's
    # connection alone.
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections, connections

    # Django's rules would also check every connection (CONN_HEALTH_CHECKS: a round trip) at
    # the start of every task: for a worker sending hundreds of notices a second that is one
    # query in four. Once a second per thread, or after an error, keeps what the check is for.
    now = time.monotonic()
    if now - getattr(_checked, "at", -CHECK_AFTER_SECONDS) < CHECK_AFTER_SECONDS and not any(
        c.errors_occurred for c in connections.all(initialized_only=True)
    ):
        return
    _checked.at = now
    close_old_connections()
