"""bench-notify: 10,000 due notices through Redis and one worker into a local SMTP server
(tests/smtp_sink.py, a process of its own), against a plain smtplib loop sending the same
messages to the same server, in the same run (issue 13, point 7: at least 0.5x the loop).

The pipeline is what production does: after scheduling, notices_prepare_task renders the
batch's notices and makes their e-mails ahead (notices/prepared.py; timed apart as
`prepare_s`, before the clock); beat's dispatch hands the ids to the broker
(tasks.notice_send_many), and the notices worker of docker-compose.yml (a thread pool of 16:
BENCH_POOL, BENCH_CONCURRENCY) claims each row and reads it with its batch and person (one
statement: notices/claiming.py), checks the e-mail made ahead is still what the plan says,
sends it over its thread's SMTP connection and records it sent. The clock runs from the
dispatch until every row is `sent`.

The loop sends the same e-mails (the ones made ahead, dated) over one smtplib connection:
half of them just before the pipeline and half just after, so that a machine whose speed
drifts during the run (a shared VM) weighs on both sides alike.

Then 200 of the notices are sent again in this process, to count queries per notice
(BENCH_PROFILE=1 adds a cProfile of them). CPU time per message of each process (sink,
worker, PostgreSQL, Redis, this one) is printed for both sides, from /proc.
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
from email.utils import formatdate
from functools import partial
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
    pool = os.environ.get("BENCH_POOL", "threads")
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 16))
    say(f"starting one worker: {pool} pool, concurrency {concurrency}")
    with log.open("w") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-c", WORKER_MAIN, queue, f"--pool={pool}"),
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


ROLES = {
    "sink": "tests.smtp_sink",
    "worker": "app.worker_main",
    "postgres": "postgres:",
    "redis": "redis-server",
    "bench": "benchmarks/notify.py",
}


def cpu_by_role() -> dict[str, float]:
    """CPU seconds used so far by each role's processes (matched on their command line)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(ROLES, 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, UnicodeDecodeError):
            continue  # ended meanwhile
        role = next((r for r, needle in ROLES.items() if needle in command), None)
        if role:
            used[role] += (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_per_message(before: dict[str, float], count: int) -> str:
    after = cpu_by_role()
    return " ".join(f"{r}={1000 * (after[r] - before[r]) / count:.2f}" for r in ROLES)


def loop_send(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    """Send with one smtplib connection, as a plain script would; the seconds it took."""
    smtp = smtplib.SMTP("127.0.0.1", port)
    before = cpu_by_role()
    started = time.perf_counter()
    for sender, recipients, mime in messages:
        smtp.sendmail(sender, recipients, f"Date: {formatdate()}\r\n".encode() + mime)
    took = time.perf_counter() - started
    say(
        f"  {len(messages)} sent in {took:.1f}s; CPU ms per message: "
        + cpu_per_message(before, len(messages))
    )
    smtp.quit()
    return took


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
    from migrations_plan.tasks import notice_send_many

    seed()
    batch = scheduled_batch()
    due = Notice.objects.filter(batch=batch, lead_minutes=DUE_LEAD)
    assert due.count() == MESSAGES
    # What notices_prepare_task does in the background after scheduling (and after each plan).
    started = time.perf_counter()
    rendered = prepared.notices_prepare(batch_id=batch.pk)
    prepare_s = time.perf_counter() - started
    say(f"  {rendered} notices rendered ahead in {prepare_s:.1f}s (before the clock)")
    # Rendering ahead rewrote every notice: autovacuum would clean up after it during the
    # measurement. In production it runs hours or days before the sends; here it is done now.
    # Its writes are flushed now too, rather than by a checkpoint during the measurement.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Notice._meta.db_table}")
        cursor.execute("CHECKPOINT")  # the benchmark's database user is a superuser

    # The loop's messages: the e-mails made ahead, exactly what the worker sends (not timed).
    made = [message.stored_ahead(n) for n in due.order_by("pk")]
    assert all(made), "every due notice has its e-mail made ahead"
    loop_messages = [(a.sender, a.recipients, a.mime) for a in made]
    half = len(loop_messages) // 2
    say(f"smtplib loop, first half: {half} of the same e-mails over one connection")
    smtplib_s = loop_send(sink.port, loop_messages[:half])
    before_pipeline = len(sink.messages())

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
        say(f"pipeline: dispatch {MESSAGES} due notices, wait until every row is sent")
        cpu_before = cpu_by_role()
        started = time.perf_counter()
        enqueue = partial(notice_send_many, queue=queue)  # beat's, onto the benchmark's queue
        handed = delivery.notices_dispatch(enqueue=enqueue).enqueued
        say(f"  {len(handed)} ids handed to Redis in {time.perf_counter() - started:.1f}s")
        sent = due.filter(state=NoticeState.SENT)
        last_report, last_count = started, 0

        def all_sent() -> bool:
            nonlocal last_report, last_count
            if last_count < MESSAGES * 0.98:
                time.sleep(0.4)  # counting 10,000 rows ten times a second loads the database
            count = last_count = sent.count()
            if time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                say(f"  {count} sent after {last_report - started:.0f}s")
            return count == MESSAGES or due.filter(state=NoticeState.FAILED).exists()

        wait_until(all_sent, "every notice to be sent", 900, worker, log)
        pipeline_s = time.perf_counter() - started
        say("  CPU ms per message: " + cpu_per_message(cpu_before, MESSAGES))
        failed = due.exclude(state=NoticeState.SENT).count()
    finally:
        stop_worker(worker)
        forget_queue(queue)
    received = sink.messages()[before_pipeline:]
    rows = list(due)
    expected = {n.message_id for n in rows}
    counts = Counter(m["message_id"] for m in received)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    lost = len(expected - set(counts))
    pipeline_per_s = MESSAGES / pipeline_s
    say(
        f"  {pipeline_s:.1f}s, {pipeline_per_s:.1f}/s; received {len(received)}, "
        f"duplicates {duplicates}, lost {lost}, not sent {failed}"
    )

    say(f"smtplib loop, second half: {len(loop_messages) - half}")
    smtplib_s += loop_send(sink.port, loop_messages[half:])
    smtplib_per_s = MESSAGES / smtplib_s
    looped = len(sink.messages()) - before_pipeline - len(received) + half
    say(f"  loop: {smtplib_s:.1f}s, {smtplib_per_s:.1f}/s; received {looped}")

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
