"""Imports killed with SIGKILL (issue 16 point 7): the worker's pool process, the whole worker,
and `manage.py import_inventory`, on PostgreSQL, Redis and real prefork workers.

Nothing of a killed file is stored (it is written in one transaction), its record does not stay
"running" (the sweeper sends an upload again, or fails a command's file, once its heartbeat is
older than IMPORT_STALE_SECONDS; a message redelivered to a worker takes a dead import over),
and the file is imported when it comes back. The device file is a few thousand rows, big
enough that the import takes about a second: no test hook in the product stops it midway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from celery.result import AsyncResult
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from devices.models import ImportState, InventoryImport, Partnership
from devices.services import import_record_create, inventory_import_run, inventory_imports_sweep
from devices.tasks import inventory_import_group
from tests import exports
from tests.conftest import ROOT, _database_url
from tests.test_notice_delivery_real import Broker, wait_for

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PEOPLE = 4000
STALE = 2  # seconds: IMPORT_STALE_SECONDS of the sweeper in this process
WAIT = 45  # seconds: the most any step waits

MAILBOX_HEADER = (
    '"Identity","Name","DisplayName","Alias","PrimarySmtpAddress","UserPrincipalName",'
    '"SamAccountName","ExchangeGuid","Database","ServerName","OrganizationalUnit",'
    '"RecipientTypeDetails"\r\n'
)
DEVICE_HEADER = exports.DEVICES.splitlines(keepends=True)[1]


def mailboxes_csv(count: int) -> str:
    rows = (
        f'"contoso.local/Users/User {n}","User {n}","User {n}","user{n}","user{n}@contoso.com",'
        f'"user{n}@contoso.local","user{n}","{uuid.UUID(int=n + 1)}","MDB01","ex2010a",'
        f'"contoso.local/Users","UserMailbox"\r\n'
        for n in range(count)
    )
    return MAILBOX_HEADER + "".join(rows)


def devices_csv(count: int) -> str:
    """Get-MobileDeviceStatistics of one phone per mailbox."""
    rows = (
        f'"contoso.local/Users/User {n}/ExchangeActiveSyncDevices/iPhone§Appl{n:08d}",'
        f'"Appl{n:08d}","iPhone","iPhone15C2","iOS 17.5.1 21F90","Apple-iPhone15C2/2106.90",'
        f'"Phone {n}","35693803{n:07d}","16.1","EAS","3/14/2019 9:12:44 AM",'
        f'"11/24/2026 4:05:07 PM","11/24/2026 4:05:07 PM","Allowed","Global","Default",'
        f'"DeviceOK"\r\n'
        for n in range(count)
    )
    return DEVICE_HEADER + "".join(rows)


@pytest.fixture
def people(tmp_path) -> Path:
    """Servers and PEOPLE mailboxes imported; the path of their phones' export (not yet)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    group = uuid.uuid4()
    records = [
        import_record_create(path=path, filename=path.name, group=group, actor=None, source="cli")
        for path in (
            exports.write(folder, "servers.csv", exports.SERVERS, encoding="utf-16"),
            exports.write(folder, "mailboxes.csv", mailboxes_csv(PEOPLE)),
        )
    ]
    inventory_import_run(records=records)
    assert {r.state for r in records} == {ImportState.SUCCEEDED}, [r.problems for r in records]
    return exports.write(folder, "devices.csv", devices_csv(PEOPLE))


@pytest.fixture
def broker():
    broker = Broker(f"test-imports-{uuid.uuid4().hex[:8]}")
    yield broker
    broker.forget()


def upload(path: Path) -> InventoryImport:
    """What the Imports page records for an uploaded file (its task is sent by `send`)."""
    with path.open("rb") as handle:
        return import_record_create(
            upload=File(handle, name=path.name),
            filename=path.name,
            group=uuid.uuid4(),
            actor=None,
            source="web",
            full_export=False,
        )


def send(broker: Broker, group: object) -> AsyncResult:
    return inventory_import_group.apply_async((str(group),), queue=broker.queue)


def state(record: InventoryImport) -> str:
    return InventoryImport.objects.values_list("state", flat=True).get(pk=record.pk)


def being_written(record: InventoryImport) -> bool:
    """Whether the import is in its write: its head checked (its kind recorded), and its row
    held by a transaction."""
    if not InventoryImport.objects.filter(pk=record.pk).exclude(kind="").exists():
        return False
    try:
        with transaction.atomic():
            InventoryImport.objects.select_for_update(nowait=True).filter(pk=record.pk).first()
    except DatabaseError:
        return True
    return False


def stale(record: InventoryImport) -> bool:
    started_at = InventoryImport.objects.values_list("started_at", flat=True).get(pk=record.pk)
    return timezone.now() - started_at > timedelta(seconds=STALE)


def pool_processes(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            children.append(int(stat.parent.name))
    return children


def give_back(broker: Broker, tags: set[bytes]) -> None:
    """What Redis does with a message left unacknowledged past its visibility timeout (an
    hour): put it back on its queue."""
    for tag in tags:
        message, _exchange, _routing_key = json.loads(broker.redis.hget("unacked", tag))
        broker.redis.lpush(broker.queue, json.dumps(message))
        broker.redis.hdel("unacked", tag)
        broker.redis.zrem("unacked_index", tag)


def catch(condition: Callable[[], bool], what: str) -> None:
    """Wait for a moment that lasts a fraction of a second (to kill a process in it)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        time.sleep(0.002)


def page(client, record: InventoryImport) -> str:
    return client.get(reverse("devices:import_group", args=[record.group])).content.decode()


def test_a_pool_process_killed_while_writing_stores_nothing_and_the_sweeper_sends_it_again(
    people, worker_start, broker, settings, client, admin_user
):
    settings.IMPORT_STALE_SECONDS = STALE
    client.force_login(admin_user)
    # The worker's own stale time is long: the message given back when its pool process dies
    # finds the import fresh, so it leaves it alone; the sweeper brings the import back.
    worker = worker_start(queue=broker.queue, env={"IMPORT_STALE_SECONDS": "600"}, concurrency=1)
    record = upload(people)
    result = send(broker, record.group)
    catch(lambda: being_written(record), "the worker writing the file")
    [pool_process] = pool_processes(worker.pid)
    os.kill(pool_process, signal.SIGKILL)

    assert result.get(timeout=WAIT) == ["devices.csv: running"], "redelivered, left alone"
    assert state(record) == ImportState.RUNNING
    assert not Partnership.objects.exists(), "nothing of the killed file"
    assert 'http-equiv="refresh"' in page(client, record)

    sent: list[str] = []
    wait_for(lambda: inventory_imports_sweep(enqueue=sent.append) == 1, "the sweeper's requeue")
    assert sent == [str(record.group)]
    record.refresh_from_db()
    assert record.state == ImportState.QUEUED and record.options["workers_lost"] == 1
    shown = page(client, record)
    at = timezone.localtime(record.started_at).strftime("%H:%M")
    assert f"Stopped: the worker importing it was lost; it was sent again at {at}." in shown

    send(broker, sent[0])
    wait_for(lambda: state(record) != ImportState.QUEUED, "the file claimed again")
    wait_for(lambda: state(record) != ImportState.RUNNING, "the file imported again")
    record.refresh_from_db()
    assert record.state == ImportState.SUCCEEDED, record.problems
    assert Partnership.objects.count() == PEOPLE
    assert "Stopped" not in page(client, record) and "refresh" not in page(client, record)

    # The broker delivering the message once more (Redis may) changes nothing.
    assert send(broker, record.group).get(timeout=WAIT) == []
    again = InventoryImport.objects.get(pk=record.pk)
    assert (again.state, again.finished_at, again.counts) == (
        record.state,
        record.finished_at,
        record.counts,
    )
    wait_for(broker.idle, "every message handled")


def test_a_worker_killed_whole_stores_nothing_and_its_message_given_back_takes_the_import_over(
    people, worker_start, broker, settings
):
    settings.IMPORT_STALE_SECONDS = STALE
    env = {"IMPORT_STALE_SECONDS": str(STALE)}
    first = worker_start(queue=broker.queue, env=env, concurrency=1)
    record = upload(people)
    send(broker, record.group)
    catch(lambda: state(record) == ImportState.RUNNING, "the worker checking the file")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    assert state(record) == ImportState.RUNNING
    assert not Partnership.objects.exists(), "nothing of the killed file"
    lost = broker.unacked()
    assert len(lost) == 1, "the message went down with the worker, unacknowledged"

    wait_for(lambda: stale(record), "the import's heartbeat older than IMPORT_STALE_SECONDS")
    give_back(broker, lost)
    worker_start(queue=broker.queue, env=env, concurrency=1)
    wait_for(lambda: state(record) not in ("queued", "running"), "the import taken over")
    record.refresh_from_db()
    assert record.state == ImportState.SUCCEEDED, record.problems
    assert record.options["workers_lost"] == 1
    assert Partnership.objects.count() == PEOPLE
    assert inventory_imports_sweep(enqueue=pytest.fail) == 0, "nothing left for the sweeper"
    wait_for(broker.idle, "every message handled")


def test_a_killed_import_inventory_stores_nothing_its_record_fails_and_a_rerun_succeeds(
    people, settings, client, admin_user
):
    settings.IMPORT_STALE_SECONDS = STALE
    client.force_login(admin_user)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "cli-under-test",
        "EXSYNC_TESTING": "1",
        "DJANGO_SETTINGS_MODULE": "exsync.settings",
    }
    command = [sys.executable, "manage.py", "import_inventory", str(people)]
    cli = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    mine = InventoryImport.objects.filter(filename="devices.csv")
    catch(
        lambda: any(being_written(r) for r in mine.all()) or cli.poll() is not None,
        "the command writing the file",
    )
    cli.kill()
    assert cli.wait(timeout=10) == -signal.SIGKILL, "killed while it was writing"

    [record] = mine.all()
    assert record.state == ImportState.RUNNING and record.source == "cli"
    assert not Partnership.objects.exists(), "nothing of the killed file"
    assert 'http-equiv="refresh"' in page(client, record)

    wait_for(
        lambda: inventory_imports_sweep(enqueue=pytest.fail) == 0 and state(record) == "failed",
        "the sweeper failing the record",
    )
    record.refresh_from_db()
    assert record.problems == [
        "the process importing it (cli) stopped before it finished (killed?); nothing from it "
        "was written. Run the import again."
    ]
    shown = page(client, record)
    assert "refresh" not in shown and "running" not in shown
    assert "Failed: nothing from this file was written." in shown

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT)
    assert rerun.returncode == 0, rerun.stderr
    assert Partnership.objects.count() == PEOPLE
    assert state(mine.exclude(pk=record.pk).get()) == ImportState.SUCCEEDED


def _running(source: str, *, lost: int = 0) -> InventoryImport:
    return InventoryImport.objects.create(
        group=uuid.uuid4(),
        filename=f"{source}.csv",
        sha256="0" * 64,
        source=source,
        state=ImportState.RUNNING,
        started_at=timezone.now() - timedelta(seconds=STALE + 1),
        options={"workers_lost": lost} if lost else {},
    )


def test_the_sweeper_leaves_an_import_being_written_alone_and_fails_a_file_lost_three_times(
    settings,
):
    settings.IMPORT_STALE_SECONDS = STALE
    written = _running("web")  # its heartbeat is old, but a live transaction holds its row
    often_lost = _running("web", lost=2)
    holds, done = threading.Event(), threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                InventoryImport.objects.select_for_update().filter(pk=written.pk).first()
                holds.set()
                done.wait(WAIT)
        finally:
            holds.set()
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert holds.wait(WAIT)
        sent: list[str] = []
        assert inventory_imports_sweep(enqueue=sent.append) == 0
    finally:
        done.set()
        writer.join(WAIT)
    assert state(written) == ImportState.RUNNING and sent == []
    often_lost.refresh_from_db()
    assert often_lost.state == ImportState.FAILED
    assert often_lost.problems[0].startswith("the worker importing it was lost 3 times")


def test_the_sweeper_sends_an_upload_whose_message_was_lost_and_fails_a_command_never_begun():
    long_ago = timezone.now() - timedelta(minutes=11)
    uploaded, typed = (
        InventoryImport.objects.create(
            group=uuid.uuid4(), filename=f"{source}.csv", sha256="0" * 64, source=source
        )
        for source in ("web", "cli")
    )
    InventoryImport.objects.filter(pk__in=[uploaded.pk, typed.pk]).update(created_at=long_ago)
    just_uploaded = InventoryImport.objects.create(
        group=uuid.uuid4(), filename="new.csv", sha256="0" * 64, source="web"
    )

    sent: list[str] = []
    assert inventory_imports_sweep(enqueue=sent.append) == 1
    assert sent == [str(uploaded.group)]
    assert state(uploaded) == ImportState.QUEUED and state(just_uploaded) == ImportState.QUEUED
    typed.refresh_from_db()
    assert typed.state == ImportState.FAILED
    assert typed.problems == [
        "the process importing it stopped before it began; run the import again"
    ]
