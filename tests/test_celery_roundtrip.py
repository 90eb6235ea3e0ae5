"""One task goes through a real Redis broker to a real worker process and back."""

from __future__ import annotations

import pytest

from exsync.models import Heartbeat
from exsync.tasks import heartbeat
from tests.factories import ExchangeServerFactory


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
