"""bench-notify: 10,000 due notices through Redis and one prefork worker into a local SMTP server
(tests/smtp_sink.py, a process of its own), against a plain smtplib loop sending the same
messages to the same server, in the same run (issue 13, point 7: at least 0.5x the loop).

The pipeline is what production does: after scheduling, notices_prepare_task renders the
batch's notices ahead (notices/prepared.py; timed apart as `prepare_s`, before the clock);
beat's dispatch hands the ids to the broker, the worker claims each row and reads it with
its batch and person (one statement: notices/claiming.py), checks the rendering is still
what the plan says, sends it over its process's SMTP connection and records it sent.
The clock runs from the dispatch until every row is `sent`.
The loop sends the stored messages (the rows' subject, text, HTML, recipient and Message-ID,
built with message.build() before the clock starts) over one smtplib connection.

Then 200 of the notices are sent again in this process, to count queries per notice
(BENCH_PROFILE=1 adds a cProfile of them).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import ROOT, django_ready, result_line, say

MESSAGES = int(os.environ.get("BENCH_NOTICES", "10000"))
BATCH_NAME = "bench-notify"
DUE_LEAD, LATER_LEAD = 72 * 60, 60  # the batch starts in 2 h: the 3-day notice is due now
SAMPLE = 200
# The worker's default queue is a queue of its own, like the tests' (tests/conftest.py).
WORKER_MAIN = (
    "import sys\n"
    "from exsync.celery import app\n"
    "app.conf.task_default_queue = sys.argv[1]\n"
    "app.conf.worker_enable_remote_control = False\n"
    "app.worker_main(['worker', '-Q', sys.argv[1], *sys.argv[2:]])\n"
)


def seed() -> None:
    """MESSAGES people on an Exchange 2003 server moving to 2007 RTM (their phones need
    setting up again: full notices with steps), one phone each; kept between runs."""
    from django.db import connection

    from devices.models import ExchangeServer, Generation, Mailbox, MobileDevice, Partnership
    from migrations_plan.models import MoveBatch

    source = ExchangeServer.objects.filter(name="NOTIFY-EX2003").first()
    if source and Mailbox.objects.filter(server=source).count() == MESSAGES:
        return
    say(f"seeding {MESSAGES} mailboxes with one phone each")
    MoveBatch.objects.all().delete()
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE devices_partnership, devices_mobiledevice, devices_mailbox, "
            "devices_exchangeserver RESTART IDENTITY CASCADE"
        )
    source = ExchangeServer.objects.create(
        name="NOTIFY-EX2003",
        fqdn="notify-ex2003.contoso.local",
        generation=Generation.EX2003,
        build="6.5.7638.1",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
        roles="Mailbox",
    )
    ExchangeServer.objects.create(
        name="NOTIFY-EX2007",
        fqdn="notify-ex2007.contoso.local",
        generation=Generation.EX2007,
        build="8.0.685.25",
        admin_display_version="Version 8.0 (Build 685.25)",
        roles="Mailbox",
        eas_external_url="https://mail.contoso.com/Microsoft-Server-ActiveSync",
    )
    mailboxes = Mailbox.objects.bulk_create(
        [
            Mailbox(
                display_name=f"Person {n:05d}",
                name=f"Person {n:05d}",
                alias=f"person{n:05d}",
                primary_smtp_address=f"person{n:05d}@contoso.com",
                identity=f"contoso.local/Users/Person {n:05d}",
                exchange_guid=uuid.uuid4(),
                server=source,
                database="DB01",
            )
            for n in range(MESSAGES)
        ],
        batch_size=2000,
    )
    iphone = {"device_type": "iPhone", "model": "iPhone15C2", "os": "iOS 17.5.1 21F90"}
    android = {"device_type": "SAMSUNGSMS918B", "model": "SM-S918B", "os": "Android 14"}
    devices = MobileDevice.objects.bulk_create(
        [
            MobileDevice(device_id=f"NOTIFY{n:010d}", friendly_name=f"Phone {n}", **fields)
            for n in range(MESSAGES)
            for fields in [iphone if n % 2 else android]
        ],
        batch_size=2000,
    )
    Partnership.objects.bulk_create(
        [
            Partnership(device=d, mailbox=m, eas_version="14.1", access_state="Allowed")
            for d, m in zip(devices, mailboxes, strict=True)
        ],
        batch_size=2000,
    )


def scheduled_batch():
    from django.utils import timezone

    from devices.models import ExchangeServer, Mailbox
    from migrations_plan import services
    from migrations_plan.models import MoveBatch

    MoveBatch.objects.filter(name=BATCH_NAME).delete()
    source = ExchangeServer.objects.get(name="NOTIFY-EX2003")
    started = time.perf_counter()
    batch = services.batch_create(
        name=BATCH_NAME,
        target_server=ExchangeServer.objects.get(name="NOTIFY-EX2007"),
        start_at=timezone.now() + timedelta(hours=2),
        mailboxes=list(Mailbox.objects.filter(server=source)),
        actor=None,
        via="bench",
        notice_leads_minutes=[DUE_LEAD, LATER_LEAD],
    )
    # Scheduling asks beat's task for a dispatch after commit; the benchmark dispatches itself.
    services.notices_dispatch_soon = lambda: None
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)
    say(f"  batch planned and scheduled in {time.perf_counter() - started:.1f}s")
    return batch


def start_worker(queue: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 0)) or os.cpu_count() or 1
    say(f"starting one worker: prefork, concurrency {concurrency}")
    with log.open("w") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-c", WORKER_MAIN, queue, "--pool=prefork"),
                *(f"--concurrency={concurrency}", "--without-mingle", "--without-gossip"),
                *("--without-heartbeat", "--loglevel=WARNING"),
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def forget_queue(queue: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


def wait_until(condition, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(log.read_text()[-4000:])
            sys.exit(f"bench-notify: gave up waiting for {what}")
        time.sleep(0.1)


def main() -> None:
    from tests.smtp_sink import SmtpSink

    url = os.environ["DATABASE_URL"].rstrip("/")
    os.environ["DATABASE_URL"] = f"{url}_notify"  # a database of its own, like bench-search
    folder = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    sink = SmtpSink(folder / "sink").start()
    os.environ["EMAIL_URL"] = sink.url  # this process's own sends (the sample) go there too
    say(f"SMTP sink at {sink.url} (its own process), recording to {folder / 'sink'}")
    django_ready()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from exsync.models import Heartbeat
    from migrations_plan.models import Notice, NoticeState
    from migrations_plan.notices import delivery, message, prepared
    from migrations_plan.notices.wording import Rendered
    from migrations_plan.tasks import notice_send

    seed()
    batch = scheduled_batch()
    due = Notice.objects.filter(batch=batch, lead_minutes=DUE_LEAD)
    assert due.count() == MESSAGES
    # What notices_prepare_task does in the background after scheduling (and after each plan).
    started = time.perf_counter()
    rendered = prepared.notices_prepare(batch_id=batch.pk)
    prepare_s = time.perf_counter() - started
    say(f"  {rendered} notices rendered ahead in {prepare_s:.1f}s (before the clock)")

    queue = f"bench-notify-{uuid.uuid4().hex[:8]}"
    log = folder / "worker.log"
    env = {"EMAIL_URL": sink.url}
    worker_started = timezone.now()
    worker = start_worker(queue, env, log)
    try:
        wait_until(
            lambda: Heartbeat.objects.filter(name="worker", seen_at__gte=worker_started).exists(),
            "the worker to start",
            60,
            worker,
            log,
        )

        def enqueue(ids) -> None:  # tasks.notice_send_many, onto the benchmark's queue
            with notice_send.app.producer_or_acquire() as producer:
                for notice_id in ids:
                    notice_send.apply_async((notice_id,), producer=producer, queue=queue)

        say(f"pipeline: dispatch {MESSAGES} due notices, wait until every row is sent")
        started = time.perf_counter()
        handed = delivery.notices_dispatch(enqueue=enqueue).enqueued
        say(f"  {len(handed)} ids handed to Redis in {time.perf_counter() - started:.1f}s")
        sent = due.filter(state=NoticeState.SENT)
        last_report = started

        def all_sent() -> bool:
            nonlocal last_report
            count = sent.count()
            if time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                say(f"  {count} sent after {last_report - started:.0f}s")
            return count == MESSAGES or due.filter(state=NoticeState.FAILED).exists()

        wait_until(all_sent, "every notice to be sent", 900, worker, log)
        pipeline_s = time.perf_counter() - started
        failed = due.exclude(state=NoticeState.SENT).count()
    finally:
        stop_worker(worker)
        forget_queue(queue)
    received = sink.messages()
    rows = list(due.select_related("member__mailbox"))
    expected = {n.message_id for n in rows}
    counts = Counter(m["message_id"] for m in received)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    lost = len(expected - set(counts))
    pipeline_per_s = MESSAGES / pipeline_s
    say(
        f"  {pipeline_s:.1f}s, {pipeline_per_s:.1f}/s; received {len(received)}, "
        f"duplicates {duplicates}, lost {lost}, not sent {failed}"
    )

    say("smtplib loop: the same messages over one connection to the same sink")
    started = time.perf_counter()
    prepared = []
    for notice in rows:
        email = message.build(
            notice,
            Rendered(notice.subject, notice.body_text, notice.body_html),
            display_name=notice.member.mailbox.display_name,
        )
        prepared.append(
            (email.from_email, email.recipients(), email.message().as_bytes(linesep="\r\n"))
        )
    say(f"  {len(prepared)} messages built in {time.perf_counter() - started:.1f}s (not timed)")
    before = len(received)
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    started = time.perf_counter()
    for sender, recipients, data in prepared:
        smtp.sendmail(sender, recipients, data)
    smtplib_s = time.perf_counter() - started
    smtp.quit()
    smtplib_per_s = MESSAGES / smtplib_s
    looped = len(sink.messages()) - before
    say(f"  {smtplib_s:.1f}s, {smtplib_per_s:.1f}/s; received {looped}")

    sample = [n.pk for n in rows[:SAMPLE]]
    say(f"in this process: {len(sample)} of them sent again, one notice_deliver() each")
    Notice.objects.filter(pk__in=sample).update(
        state=NoticeState.PENDING, claimed_at=None, enqueued_at=None, attempts=0, sent_at=None
    )
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        if profile:
            profile.enable()
        states = Counter(delivery.notice_deliver(notice_id=pk).state for pk in sample)
        if profile:
            profile.disable()
    sample_s = time.perf_counter() - started
    per_notice = len(queries) / len(sample)
    say(
        f"  {dict(states)}: {per_notice:.1f} queries and {1000 * sample_s / len(sample):.1f} ms "
        "per notice"
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    delivery.connection_reset()
    sink.stop()
    result_line(
        "notify",
        messages=MESSAGES,
        pipeline_per_s=f"{pipeline_per_s:.1f}",
        smtplib_per_s=f"{smtplib_per_s:.1f}",
        ratio=f"{pipeline_per_s / smtplib_per_s:.2f}",
        duplicates=duplicates,
        lost=lost,
        prepare_s=f"{prepare_s:.1f}",
    )


if __name__ == "__main__":
    main()
