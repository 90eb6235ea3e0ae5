"""One task goes through a real Redis broker to a real worker process and back."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from exsync.models import Heartbeat
from exsync.tasks import heartbeat
from tests.factories import ExchangeServerFactory

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue():
    """A worker process on a queue of its own, pointed at the test database."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "worker-under-test",
        "DJANGO_SETTINGS_MODULE": "exsync.settings",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "exsync",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(output)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_redis_and_a_worker_process(worker_queue):
    ExchangeServerFactory.create_batch(3)

    result = heartbeat.apply_async(args=["roundtrip"], queue=worker_queue)
    answer = result.get(timeout=60)

    assert answer["name"] == "roundtrip"
    assert answer["servers"] == 3, "the worker read the same database as the test"
    assert Heartbeat.objects.filter(name="roundtrip").exists()
