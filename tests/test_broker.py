"""The Redis transport keeping one client for its acks (exsync/broker.py), on a real Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from kombu import Connection

from exsync.celery import app


@pytest.fixture
def queue():
    url = os.environ["REDIS_URL"]
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    with Connection(url, transport="exsync.broker:Transport") as connection:
        simple = connection.SimpleQueue(name)
        yield simple
        simple.clear()
        simple.close()
    client = redis.Redis.from_url(url)
    client.delete(*client.keys(f"*{name}*") or [name])


def clients_made(channel) -> list[object]:
    """Every redis-py client the channel makes from now on (kombu's own Client class, counted)."""
    made: list[object] = []

    class Counted(channel.Client):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    channel.Client = Counted
    return made


@pytest.mark.redis
def test_the_celery_app_uses_it_when_redis_is_the_broker():
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "exsync.broker"


@pytest.mark.redis
def test_late_acks_are_recorded_and_cleared_on_one_client(queue):
    channel = queue.channel
    made = clients_made(channel)

    for n in range(20):
        queue.put({"notice": n})
        message = queue.get(timeout=5)
        kept = channel._create_client()
        assert kept.hexists(channel.unacked_key, message.delivery_tag), "held until acked"
        message.ack()
        assert not kept.hexists(channel.unacked_key, message.delivery_tag)

    # kombu alone makes one for each record and each ack: 40 here.
    assert len(made) <= 1, f"{len(made)} clients made for 20 records and 20 acks"


@pytest.mark.redis
def test_a_new_pool_gets_a_new_client(queue):
    channel = queue.channel
    queue.put({"notice": 1})
    queue.get(timeout=5).ack()
    before = channel._create_client()

    channel._disconnect_pools()  # what kombu does after a fork

    after = channel._create_client()
    assert after is not before
    assert after.connection_pool is channel.pool is not before.connection_pool
    queue.put({"notice": 2})
    message = queue.get(timeout=5)
    message.ack()
    assert not after.hexists(channel.unacked_key, message.delivery_tag)
    assert channel._create_client() is after
