"""Notices through the real parts: PostgreSQL, Redis, prefork worker processes and an SMTP server
in a process of its own (tests/smtp_sink.py), as issue 13 point 6 asks.

tests/test_notices.py drives the same code one step at a time in this process; here the steps
run where they run in production, and what arrives at the SMTP server is counted: every due
notice once, after a SIGKILL of the worker mid-send, after refusals, and after two beats at once.

Each test has a broker queue of its own and its workers' default queue is that queue too, so a
notice's retry (sent by the worker without a queue) never reaches another test's worker.
"""

from __future__ import annotations

import email
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial

import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Generation, Mailbox
from migrations_plan import services
from migrations_plan.models import MoveBatch, Notice, NoticeState
from migrations_plan.notices import delivery
from migrations_plan.notices.prepared import notices_prepare
from migrations_plan.tasks import notice_send_many, notices_prepare_task
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    PartnershipFactory,
)
from tests.smtp_sink import SmtpSink

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

DUE_LEAD = 72 * 60  # the batch starts in 2 hours: its 3-day notice is due now ...
LATER_LEAD = 60  # ... and its 1-hour notice is not yet
WAIT = 45  # seconds: the most any test waits for the worker


class Broker:
    """The test's queue on a Redis that other runs may share: is anything of ours still
    waiting or unacknowledged, and forget all of it at the end."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])

    def unacked(self) -> set[bytes]:
        # kombu keeps a delivered, not yet acknowledged message as [message, exchange, routing key]
        return {
            tag for tag, raw in self.redis.hscan_iter("unacked") if json.loads(raw)[2] == self.queue
        }

    def idle(self, ignore: set[bytes] = frozenset()) -> bool:
        """Nothing waiting and nothing running (acks_late: a message is acknowledged after its
        task ran; a retry waiting for its countdown is unacknowledged too)."""
        return self.redis.llen(self.queue) == 0 and not (self.unacked() - ignore)

    def forget(self) -> None:
        tags = self.unacked()
        if tags:
            self.redis.hdel("unacked", *tags)
            self.redis.zrem("unacked_index", *tags)
        self.redis.delete(
            self.queue,
            *(f"{self.queue}\x06\x16{p}" for p in range(1, 10)),  # kombu's priority lists
            # The queue is its own exchange (apply_async(queue=...) and the default queue).
            f"_kombu.binding.{self.queue}",
            f"_kombu.binding_permanent.{self.queue}",
        )
        for key in self.redis.scan_iter("_kombu.binding.*"):
            for member in self.redis.smembers(key):
                if member.endswith(f"\x06\x16{self.queue}".encode()):
                    self.redis.srem(key, member)


@pytest.fixture
def broker():
    broker = Broker(f"test-notices-{uuid.uuid4().hex[:8]}")
    yield broker
    broker.forget()


@pytest.fixture
def sinks(tmp_path):
    """Start SMTP sinks (`sinks(tempfail=..., reject=..., hold_at=...)`); stopped at the end."""
    started: list[SmtpSink] = []

    def start(**behaviour: object) -> SmtpSink:
        sink = SmtpSink(tmp_path / f"sink-{len(started)}", **behaviour).start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


@pytest.fixture
def notice_worker(worker_start, broker):
    """Start a worker that sends notices to `sink`, retrying after 1 s, 2 s ...: by default
    the notices worker of docker-compose.yml (a thread pool), else `pool="prefork"`."""

    def start(sink: SmtpSink, *, concurrency: int = 4, pool: str = "threads"):
        env = {"EMAIL_URL": sink.url, "NOTICE_RETRY_SECONDS": "1", "EMAIL_TIMEOUT": "20"}
        return worker_start(queue=broker.queue, env=env, concurrency=concurrency, pool=pool)

    return start


@pytest.fixture
def to_worker(broker) -> Callable[[Sequence[int]], None]:
    """What beat's dispatch hands the ids to (tasks.notice_send_many), onto the test's queue."""
    return partial(notice_send_many, queue=broker.queue)


@pytest.fixture(autouse=True)
def no_dispatch_task(monkeypatch):
    # Scheduling asks beat's task for a dispatch after commit; here the test dispatches itself.
    monkeypatch.setattr(services, "notices_dispatch_soon", lambda: None)


def people(count: int, source, *, prefix: str = "user") -> list[Mailbox]:
    mailboxes = []
    for n in range(count):
        mailbox = MailboxFactory(
            server=source,
            display_name=f"{prefix.title()} {n}",
            primary_smtp_address=f"{prefix}{n}@contoso.com",
        )
        PartnershipFactory(mailbox=mailbox, device=MobileDeviceFactory(friendly_name=f"Phone {n}"))
        mailboxes.append(mailbox)
    return mailboxes


def scheduled_batch(count: int = 0, *, extra: Sequence[str] = ()) -> MoveBatch:
    """People moving from Exchange 2003 to 2007 RTM (their phones need re-partnering), in a
    batch that starts in two hours: one notice each is due now."""
    source = ExchangeServerFactory(
        name="EX2003",
        generation=Generation.EX2003,
        build="6.5.7638.1",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
        eas_external_url="",
    )
    target = ExchangeServerFactory(
        name="EX2007RTM",
        generation=Generation.EX2007,
        build="8.0.685.25",
        admin_display_version="Version 8.0 (Build 685.25)",
    )
    mailboxes = people(count, source)
    for name in extra:
        mailboxes += people(1, source, prefix=name)
    batch = services.batch_create(
        name=f"Real {uuid.uuid4().hex[:6]}",
        target_server=target,
        start_at=timezone.now() + timedelta(hours=2),
        mailboxes=mailboxes,
        actor=None,
        notice_leads_minutes=[DUE_LEAD, LATER_LEAD],
    )
    return services.batch_transition(batch=batch, action="schedule", actor=None)


def due(batch: MoveBatch):
    return Notice.objects.filter(batch=batch, lead_minutes=DUE_LEAD)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def wait_until_ended(batch: MoveBatch, broker: Broker, ignore: set[bytes] = frozenset()) -> None:
    """Every due notice sent or failed, and every message of ours handled (duplicates too)."""
    wait_for(
        lambda: not due(batch).exclude(state__in=[NoticeState.SENT, NoticeState.FAILED]).exists(),
        "every due notice sent or failed",
    )
    wait_for(lambda: broker.idle(ignore), "the worker handled every message on the queue")


@pytest.mark.parametrize(
    ("pool", "concurrency"),
    # The notices worker of docker-compose.yml (threads, each with its own SMTP connection),
    # and the default worker's prefork pool, which sends them when NOTICE_QUEUE is not set.
    [("threads", 8), ("prefork", 2)],
)
def test_due_notices_reach_the_smtp_server_exactly_once(
    sinks, notice_worker, to_worker, broker, pool, concurrency
):
    batch = scheduled_batch(30)
    notices_prepare(batch_id=batch.pk)  # what notices_prepare_task does after scheduling
    made_ahead = {
        str(n.pk): email.message_from_bytes(bytes(n.prepared_mime)).get_boundary()
        for n in due(batch)
    }
    sink = sinks()
    notice_worker(sink, concurrency=concurrency, pool=pool)

    handed = delivery.notices_dispatch(enqueue=to_worker).enqueued
    to_worker(handed)  # the broker delivering every id twice changes nothing

    assert sorted(handed) == sorted(due(batch).values_list("pk", flat=True)) and len(handed) == 30
    wait_until_ended(batch, broker)
    received = sink.messages()
    rows = list(due(batch))
    assert {n.state for n in rows} == {NoticeState.SENT}
    assert {n.attempts for n in rows} == {1}
    ids = Counter(m["message_id"] for m in received)
    assert ids == Counter(n.message_id for n in rows), "each notice once, nothing else"
    assert Counter(tuple(m["rcpt"]) for m in received) == Counter((n.recipient,) for n in rows)
    by_id = {m["message_id"]: m for m in received}
    for notice in rows:
        message = by_id[notice.message_id]
        assert message["notice"] == str(notice.pk)
        assert message["subject"] == notice.subject
        assert message["subject"].startswith("Action needed: your mailbox moves on")
        assert message["body"].strip() == notice.body_text.strip()
        assert message["to"].endswith(f"<{notice.recipient}>")
    # Each one the e-mail made ahead for it, not a build at send time (a boundary of its own).
    assert {m["notice"]: m["boundary"] for m in received} == made_ahead
    later = Notice.objects.filter(batch=batch, lead_minutes=LATER_LEAD)
    assert set(later.values_list("state", flat=True)) == {NoticeState.PENDING}, "not due yet"


def test_a_worker_killed_mid_send_loses_no_notice_and_duplicates_none(
    sinks, notice_worker, to_worker, broker, settings
):
    batch = scheduled_batch(60)
    sink = sinks(hold_at=20)
    first = notice_worker(sink, concurrency=1)
    delivery.notices_dispatch(enqueue=to_worker)

    # The 20th send is between RCPT and DATA, its row claimed: kill the worker there.
    held = sink.wait_held(timeout=WAIT)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    sink.release()
    in_flight = due(batch).get(recipient=held)
    assert in_flight.state == NoticeState.SENDING and in_flight.attempts == 1
    assert len(sink.messages()) == 19
    lost_with_the_worker = broker.unacked()  # prefetched by the dead worker, never acknowledged

    # Beat, once the claim is stale and the ids' hand-out counts as lost: all unsent go again.
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 0
    settings.NOTICE_REQUEUE_SECONDS = 0
    again = delivery.notices_dispatch(enqueue=to_worker)
    unsent = due(batch).exclude(state=NoticeState.SENT)
    assert again.released == 1
    assert sorted(again.enqueued) == sorted(unsent.values_list("pk", flat=True))
    assert len(again.enqueued) == 41
    notice_worker(sink, concurrency=1)

    wait_until_ended(batch, broker, ignore=lost_with_the_worker)
    rows = list(due(batch))
    assert {n.state for n in rows} == {NoticeState.SENT}
    received = Counter(m["message_id"] for m in sink.messages())
    expected = Counter(n.message_id for n in rows)
    assert received - expected == Counter(), "duplicates"
    assert expected - received == Counter(), "lost"
    in_flight.refresh_from_db()
    assert in_flight.attempts == 2 and in_flight.last_error == ""
    assert {n.attempts for n in rows if n.pk != in_flight.pk} == {1}


def test_a_deferring_server_gets_the_message_after_retries_and_a_refusal_fails_at_once(
    sinks, notice_worker, to_worker, broker
):
    batch = scheduled_batch(3, extra=["kim", "nobody"])
    sink = sinks(tempfail={"kim0@contoso.com": 2}, reject=["nobody0@contoso.com"])
    notice_worker(sink, concurrency=2)

    delivery.notices_dispatch(enqueue=to_worker)

    wait_until_ended(batch, broker)
    kim = due(batch).get(recipient="kim0@contoso.com")
    assert kim.state == NoticeState.SENT and kim.attempts == 3 and kim.last_error == ""
    nobody = due(batch).get(recipient="nobody0@contoso.com")
    assert nobody.state == NoticeState.FAILED and nobody.attempts == 1
    assert "550 5.1.1 <nobody0@contoso.com>: no such user here" in nobody.last_error
    assert "refused for good" in nobody.last_error
    others = due(batch).exclude(pk__in=[kim.pk, nobody.pk])
    assert {(n.state, n.attempts) for n in others} == {(NoticeState.SENT, 1)}
    received = Counter(r for m in sink.messages() for r in m["rcpt"])
    assert received == Counter(
        ["kim0@contoso.com", "user0@contoso.com", "user1@contoso.com", "user2@contoso.com"]
    ), "kim's once, after two refusals; nobody's never"


def test_two_beats_at_once_hand_out_each_notice_once_and_it_is_sent_once(
    sinks, notice_worker, to_worker, broker
):
    batch = scheduled_batch(30)
    handed: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    first_holds_its_rows = threading.Event()
    second_done = threading.Event()

    def first_beat() -> None:
        # Holds the row locks of its hand-out until the second beat has run through.
        try:
            with transaction.atomic():
                delivery.notices_dispatch(enqueue=handed[0].extend, limit=15)
                first_holds_its_rows.set()
                assert second_done.wait(WAIT)
        except BaseException as error:
            errors.append(error)
        finally:
            first_holds_its_rows.set()
            connection.close()

    def second_beat() -> None:
        try:
            assert first_holds_its_rows.wait(WAIT)
            delivery.notices_dispatch(enqueue=handed[1].extend)
        except BaseException as error:
            errors.append(error)
        finally:
            second_done.set()
            connection.close()

    beats = [threading.Thread(target=first_beat), threading.Thread(target=second_beat)]
    for beat in beats:
        beat.start()
    for beat in beats:
        beat.join(WAIT)
    assert not errors

    all_due = set(due(batch).values_list("pk", flat=True))
    assert len(handed[0]) == 15 and len(handed[1]) == 15
    assert set(handed[0]) & set(handed[1]) == set()
    assert set(handed[0]) | set(handed[1]) == all_due
    sink = sinks()
    notice_worker(sink, concurrency=2)
    to_worker(handed[0])
    to_worker(handed[1])
    wait_until_ended(batch, broker)
    received = Counter(m["message_id"] for m in sink.messages())
    assert received == Counter(due(batch).values_list("message_id", flat=True))
    assert set(received.values()) == {1}


def test_scheduled_notices_are_rendered_ahead_by_the_worker_and_sent_as_rendered(
    sinks, notice_worker, to_worker, broker, monkeypatch
):
    # Scheduling's on_commit sends the task as it would; to this test's own queue.
    monkeypatch.setattr(
        notices_prepare_task,
        "delay",
        lambda batch_id: notices_prepare_task.apply_async(args=[batch_id], queue=broker.queue),
    )
    sink = sinks()
    notice_worker(sink, concurrency=2)

    batch = scheduled_batch(10)

    wait_for(
        lambda: not Notice.objects.filter(batch=batch, prepared_key="").exists(),
        "the worker rendered every notice of the batch ahead",
    )
    ahead = {n.pk: n.prepared["rendered"]["full"] for n in due(batch)}
    to_worker(delivery.notices_dispatch(enqueue=lambda ids: None).enqueued)
    wait_until_ended(batch, broker)
    for notice in due(batch):
        assert notice.state == NoticeState.SENT
        assert (notice.subject, notice.body_text, notice.body_html) == (
            ahead[notice.pk]["subject"],
            ahead[notice.pk]["body_text"],
            ahead[notice.pk]["body_html"],
        )
    assert len(sink.messages()) == 10
