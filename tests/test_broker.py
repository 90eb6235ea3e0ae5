"""The Redis transport keeping one client for its acks (exsync/broker.py), on a real Redis."""

from __future__ import annotations

import os
import uuid

import pytest
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


@pytest.mark.redis
def test_the_celery_app_uses_it_when_redis_is_the_broker():
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "exsync.broker"


@pytest.mark.redis
def test_late_acks_are_recorded_and_cleared_with_one_client(queue):
    channel = queue.channel
    client = channel._create_client()

    queue.put({"notice": 1})
    message = queue.get(timeout=5)
    assert client.hexists(channel.unacked_key, message.delivery_tag), "held until acknowledged"
    message.ack()

    assert not client.hexists(channel.unacked_key, message.delivery_tag)
    assert channel._create_client() is client, "the same client for every ack"


@pytest.mark.redis
def test_a_new_pool_gets_a_new_client(queue):
    channel = queue.channel
    before = channel._create_client()

    channel._disconnect_pools()  # what kombu does after a fork

    after = channel._create_client()
    assert after is not before
    assert after.connection_pool is channel.pool
    queue.put({"notice": 2})
    message = queue.get(timeout=5)
    message.ack()
    assert not after.hexists(channel.unacked_key, message.delivery_tag)
