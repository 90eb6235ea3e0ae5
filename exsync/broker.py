"""kombu's Redis transport, with one client per channel for its own bookkeeping.

With late acknowledgement (every notice is acknowledged after it was sent), kombu records
each message it hands out and deletes that record on the ack: two Redis pipelines per task,
run by the worker's consumer thread, the one thread every task passes through. kombu 5.7
builds a new redis-py client for each of them (`Channel.conn_or_acquire`), and a redis-py
client builds its table of some 250 response callbacks when it is made: measured here at
0.14 ms, twice per message, in the thread that bench-notify showed to be the limit of a
thread-pool worker. Commands still take their connection from the channel's pool, as before;
only the client object is kept, and made again when the pool is (after a fork or a
reconnection).

Used for a plain redis:// broker only (config.celery_config); TLS, Sentinel, socket and
failover URLs, and separate read/write brokers, keep kombu's own transport.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _kept_client: tuple[Any, Any] | None = None  # (pool, client made on it)

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's BRPOP client: made once per channel by kombu anyway
            return super()._create_client(asynchronous=True)
        pool = self.pool
        kept = self._kept_client
        if kept is None or kept[0] is not pool:
            # redis-py clients are thread-safe over their pool; a pool replaced after a fork
            # or a lost connection gets a client of its own.
            kept = self._kept_client = (pool, super()._create_client())
        return kept[1]


class Transport(redis.Transport):
    Channel = Channel
