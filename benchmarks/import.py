"""bench-import: import a 400,000-device Get-MobileDeviceStatistics export into PostgreSQL and
compare with a bare COPY of the same file; also check that peak memory stays flat.

Steps: generate servers / mailboxes (200,000) / devices (400,000) exports as Export-Csv writes
them; import servers and mailboxes; import a 100,000-device file (peak RSS); empty the device
tables; import the 400,000-device file (timed, peak RSS) and the same file again, unchanged
(reimport_s); COPY the same file into a bare table; the floor (COPY plus the two INSERTs any
import must run); floor_ratio and reimport_floor_ratio are each import against that floor.

Then verification after the move (issue 14): every mailbox into one of four batches, recorded
as moved (bulk SQL: batches, members, predictions), Continuity rows from continuity_start, and
the target's later export (the same phones, some synced since, some gone, re-created or
re-partnered) imported through import_inventory. verify_s is what the import adds for it: the
observation INSERT (observe_s, timed inside the import) plus continuity_refresh() as the
import's commit runs it (refresh_s, verify_queries). Also: continuity_refresh again with nothing
new (refresh_again_s: beat runs it every 15 minutes) and the follow-ups queued (chases_s).
BENCH_EXPLAIN=1 prints EXPLAIN ANALYZE of continuity_refresh's statements (rolled back).
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _setup import ROOT, django_ready, result_line, say

if TYPE_CHECKING:  # Django is set up inside main(), not at import time
    from django.db.backends.base.base import BaseDatabaseWrapper

MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "200000"))
DEVICES = int(os.environ.get("BENCH_DEVICES", "400000"))
FOLDER = ROOT / "var" / "bench"
HEADER = [
    "Identity",
    "DeviceID",
    "DeviceType",
    "DeviceModel",
    "DeviceOS",
    "DeviceUserAgent",
    "DeviceFriendlyName",
    "DeviceImei",
    "ClientVersion",
    "ClientType",
    "FirstSyncTime",
    "LastSuccessSync",
    "LastSyncAttemptTime",
    "LastPolicyUpdateTime",
    "DeviceAccessState",
    "DeviceAccessStateReason",
    "DevicePolicyApplied",
    "Status",
    "Guid",
]
PHONES = [
    ("iPhone", "iPhone15C2", "iOS 17.5.1 21F90", "Apple-iPhone15C2/2106.90", "16.1", "EAS"),
    (
        "SAMSUNGSMS911B",
        "SM-S911B",
        "Android 14.0.0",
        "Android-SAMSUNG-SM-S911B/101.10.1",
        "16.1",
        "EAS",
    ),
    (
        "Outlook",
        "Outlook for iOS and Android",
        "iOS 17.4",
        "Outlook-iOS-Android/1.0",
        "16.1",
        "Outlook",
    ),
    ("iPad", "iPad13C1", "iOS 16.7.2 20H115", "Apple-iPad13C1/2008.115", "16.1", "EAS"),
    ("Android", "Pixel 7", "Android 14", "Android-Mail/2023.10.01", "14.1", "EAS"),
]


def us_date(value: datetime) -> str:
    hour = value.hour % 12 or 12
    return f"{value.month}/{value.day}/{value.year} {hour}:{value:%M:%S} {'PM' if value.hour >= 12 else 'AM'}"


def mailbox_identity(i: int) -> str:
    return f"northwind.local/Users/Dept{i % 8}/User {i:06d}"


def write_exports() -> tuple[Path, Path, Path, Path]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    servers = FOLDER / "servers.csv"
    with servers.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(["Name", "Fqdn", "ServerRole", "Site", "AdminDisplayVersion"])
        w.writerow(
            [
                "EX2016-01",
                "ex2016-01.northwind.local",
                "Mailbox",
                "northwind.local/Configuration/Sites/HQ",
                "Version 15.1 (Build 2507.6)",
            ]
        )
        w.writerow(
            [
                "EX2019-01",
                "ex2019-01.northwind.local",
                "Mailbox",
                "northwind.local/Configuration/Sites/HQ",
                "Version 15.2 (Build 1748.10)",
            ]
        )
    mailboxes = FOLDER / "mailboxes.csv"
    with mailboxes.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(
            [
                "Identity",
                "Name",
                "DisplayName",
                "Alias",
                "PrimarySmtpAddress",
                "ExchangeGuid",
                "Database",
                "ServerName",
            ]
        )
        rng = random.Random(1)
        for i in range(MAILBOXES):
            server = "ex2016-01" if i % 3 else "ex2019-01"
            w.writerow(
                [
                    mailbox_identity(i),
                    f"User {i:06d}",
                    f"User, Number {i}",
                    f"user{i}",
                    f"user{i}@northwind.example",
                    f"{rng.getrandbits(128):032x}",
                    f"DB{i % 4}",
                    server,
                ]
            )
    devices = FOLDER / "devices.csv"
    small = FOLDER / "devices-100k.csv"
    rng = random.Random(2)
    base = datetime(2026, 11, 24, 8, 0, 0)
    with (
        devices.open("w", encoding="utf-8-sig", newline="") as f,
        small.open("w", encoding="utf-8-sig", newline="") as g,
    ):
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        v = csv.writer(g, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(HEADER)
        v.writerow(HEADER)
        for n in range(DEVICES):
            mailbox = n * MAILBOXES // DEVICES
            kind, model, os_, agent, eas, client = PHONES[n % len(PHONES)]
            device_id = f"Appl{n:012X}" if client == "EAS" else f"{rng.getrandbits(128):032x}"
            leaf = f"REST§Outlook§{device_id}" if client == "Outlook" else f"{kind}§{device_id}"
            last = base - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
            row = [
                f"{mailbox_identity(mailbox)}/ExchangeActiveSyncDevices/{leaf}",
                device_id,
                kind,
                model,
                os_,
                agent,
                f"User {mailbox}'s {model}",
                "",
                eas,
                client,
                us_date(last - timedelta(days=400)),
                us_date(last),
                us_date(last),
                us_date(last - timedelta(days=3)),
                "Allowed",
                "Global",
                "Default",
                "DeviceOK",
                f"{rng.getrandbits(128):032x}",
            ]
            w.writerow(row)
            if n < DEVICES // 4:
                v.writerow(row)
    return servers, mailboxes, devices, small


def import_files(*files: Path, extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """Run import_inventory in a child process; (seconds, that child's own peak RSS in MB)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "import_inventory", *map(str, files), *extra],
        cwd=ROOT,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode:
        sys.exit(f"import_inventory failed with exit code {child.returncode}")
    return seconds, usage.ru_maxrss / 1024


FLOOR_SQL = [
    # Every device once (its last row), then every partnership, linked as the import links them;
    # plain INSERTs (the tables were just emptied), the cheapest statement PostgreSQL has.
    "INSERT INTO devices_mobiledevice (device_id, device_type, model, os, user_agent, "
    "friendly_name, imei, created_at, updated_at) "
    "SELECT DISTINCT ON (c1) c1, c2, c3, c4, c5, c6, c7, now(), now() FROM floor_raw "
    "ORDER BY c1, ord DESC",
    "INSERT INTO devices_partnership (device_id, mailbox_id, identity, client_type, eas_version, "
    "first_sync_at, last_success_sync_at, last_sync_attempt_at, access_state, "
    "access_state_reason, policy_applied, policy_status, is_stale, created_at, updated_at) "
    "SELECT d.id, m.id, c0, c9, c8, to_timestamp(c10, 'FMMM/FMDD/YYYY FMHH12:MI:SS AM'), "
    "to_timestamp(c11, 'FMMM/FMDD/YYYY FMHH12:MI:SS AM'), "
    "to_timestamp(c12, 'FMMM/FMDD/YYYY FMHH12:MI:SS AM'), c14, c15, c16, c17, false, now(), now() "
    "FROM floor_raw JOIN devices_mobiledevice d ON d.device_id = floor_raw.c1 "
    "JOIN devices_mailbox m ON m.identity_key = "
    "lower(left(c0, position('/ExchangeActiveSyncDevices/' in c0) - 1))",
    # Django's foreign keys are checked at commit; check them now so that they are timed.
    "SET CONSTRAINTS ALL IMMEDIATE",
]


def write_floor(connection: BaseDatabaseWrapper, devices: Path) -> float:
    """Seconds for the least any import of this file into exsync's schema must do: COPY it into
    a temporary table, then one INSERT ... SELECT per table, with no validation, no dry-run
    counts and no stale marking; inside a transaction that is rolled back."""
    columns = ", ".join(f"c{i}" for i in range(len(HEADER)))
    with connection.cursor() as cur:
        cur.execute("BEGIN")
        # CASCADE: what refers to partnerships (observations, continuity) goes too, rolled back.
        cur.execute("TRUNCATE devices_partnership, devices_mobiledevice CASCADE")
        started = time.perf_counter()
        cur.execute(
            "CREATE TEMPORARY TABLE floor_raw (ord bigint GENERATED ALWAYS AS IDENTITY, "
            + ", ".join(f"c{i} text" for i in range(len(HEADER)))
            + ")"
        )
        with devices.open("rb") as handle:
            handle.read(3)  # the UTF-8 BOM
            cur.copy_expert(
                f"COPY floor_raw ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true, "
                f"FORCE_NOT_NULL ({columns}))",
                handle,
            )
        for statement in FLOOR_SQL:
            cur.execute(statement)
        seconds = time.perf_counter() - started
        cur.execute("ROLLBACK")
    return seconds


# -- verification after the move -----------------------------------------------------------------

BATCHES = 4
EXPORT_AT = datetime(2026, 11, 24, 8, 0, 0)  # write_exports' newest sync (naive: TIME_ZONE)


def move_time(k: int) -> datetime:
    """Batch k moved 5, 10, 15, 20 days before the export's newest sync: of its phones (last
    syncs spread over 30 days) about 17 %, 33 %, 50 %, 67 % synced after their move."""
    return EXPORT_AT.replace(tzinfo=UTC) - timedelta(days=5 * (k + 1))


def write_after_export(devices: Path) -> tuple[Path, dict[str, int]]:
    """The target's export after the moves: devices.csv with, per 200 rows, one partnership
    gone (not listed), one re-created (FirstSyncTime after every move) and one new DeviceId
    for the same person (re-partnered)."""
    after = FOLDER / "devices-after.csv"
    counts = {"gone": 0, "recreated": 0, "new": 0}
    first, last = HEADER.index("FirstSyncTime"), HEADER.index("LastSuccessSync")
    attempt, device_id = HEADER.index("LastSyncAttemptTime"), HEADER.index("DeviceID")
    newest = us_date(EXPORT_AT)
    with (
        devices.open(encoding="utf-8-sig", newline="") as f,
        after.open("w", encoding="utf-8-sig", newline="") as g,
    ):
        r = csv.reader(f)
        w = csv.writer(g, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        w.writerow(next(r))
        for n, row in enumerate(r):
            if n % 200 == 0:
                counts["gone"] += 1
                continue
            if n % 200 == 1:
                row[first] = row[last] = row[attempt] = newest
                counts["recreated"] += 1
            w.writerow(row)
            if n % 200 == 2:
                new = list(row)
                new[device_id] = f"Appn{n:012X}"
                new[0] = row[0].replace(row[device_id], new[device_id])
                new[first] = new[last] = new[attempt] = newest
                w.writerow(new)
                counts["new"] += 1
    return after, counts


def batches_moved() -> tuple[list, float]:
    """Every mailbox in one of BATCHES in-progress batches, recorded as moved at move_time(k),
    each partnership predicted to continue: bulk SQL, as a plan and mark_moved would leave them.
    Then continuity_start per batch, as batch_mark_moves calls it (timed)."""
    from django.db import connection
    from django.utils import timezone

    from devices.models import ExchangeServer
    from migrations_plan.continuity import continuity_start
    from migrations_plan.models import BatchMailbox, BatchState, Explanation, MoveBatch

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE migrations_plan_movebatch, migrations_plan_batchmailbox, "
            "migrations_plan_prediction, migrations_plan_continuity, "
            "devices_partnershipobservation RESTART IDENTITY CASCADE"
        )
        cur.execute("UPDATE devices_mailbox SET watch_until = NULL WHERE watch_until IS NOT NULL")
    target = ExchangeServer.objects.get(name__iexact="EX2019-01")
    explanation, _ = Explanation.objects.get_or_create(
        digest="bench-import", defaults={"outcome": "continues"}
    )
    batches = [
        MoveBatch.objects.create(
            name=f"bench-import-{k + 1}",
            target_server=target,
            start_at=move_time(k) - timedelta(hours=1),
            state=BatchState.IN_PROGRESS,
        )
        for k in range(BATCHES)
    ]
    now = timezone.now()
    with connection.cursor() as cur:
        for k, batch in enumerate(batches):
            cur.execute(
                "INSERT INTO migrations_plan_batchmailbox (batch_id, mailbox_id, state, "
                "is_active, source_server_id, source_database, moved_at, added_at) "
                "SELECT %s, m.id, 'moved', true, m.server_id, m.database, %s, %s "
                "FROM devices_mailbox m WHERE m.id %% %s = %s",
                [batch.pk, move_time(k), now, BATCHES, k],
            )
        cur.execute(
            "INSERT INTO migrations_plan_prediction (member_id, partnership_id, outcome, "
            "explanation_id, computed_at) SELECT bm.id, p.id, 'continues', %s, %s "
            "FROM devices_partnership p JOIN migrations_plan_batchmailbox bm "
            "ON bm.mailbox_id = p.mailbox_id WHERE NOT p.is_stale",
            [explanation.pk, now],
        )
        cur.execute("ANALYZE migrations_plan_batchmailbox")
        cur.execute("ANALYZE migrations_plan_prediction")
    members = {
        batch.pk: list(
            BatchMailbox.objects.filter(batch=batch).values_list("mailbox_id", flat=True)
        )
        for batch in batches
    }
    started = time.perf_counter()
    rows = sum(continuity_start(batch=b, mailbox_ids=members[b.pk]) for b in batches)
    start_s = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("ANALYZE migrations_plan_continuity")
        cur.execute("ANALYZE devices_mailbox")
    say(f"  {rows} phones watched (continuity_start x{BATCHES}: {start_s:.1f}s)")
    return batches, start_s


def _control(sql: str) -> bool:
    return sql.split(None, 1)[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def verification_timed() -> Iterator[dict[str, Any]]:
    """Time, inside the import and what its commit runs, the observation INSERT and
    continuity_refresh / chases_queue (with their query counts). What the commit would send to
    a worker (re-plans, dispatch) is dropped: no worker is part of this benchmark."""
    from unittest import mock

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from migrations_plan import continuity, tasks

    figures: dict[str, Any] = {"observe_s": 0.0}

    def observe(execute, sql, params, many, context):
        if not sql.lstrip().startswith("INSERT INTO devices_partnershipobservation"):
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            figures["observe_s"] += time.perf_counter() - started

    def timed(name: str, function):
        def wrapper(*args, **kwargs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                result = function(*args, **kwargs)
                figures[f"{name}_s"] = time.perf_counter() - started
            # Django logs BEGIN / COMMIT too: only the statements count.
            statements = [q["sql"] for q in queries.captured_queries if not _control(q["sql"])]
            figures[f"{name}_queries"] = len(statements)
            figures[f"{name}_sql"] = statements
            return result

        return wrapper

    with (
        connection.execute_wrapper(observe),
        mock.patch.object(
            continuity, "continuity_refresh", timed("refresh", continuity.continuity_refresh)
        ),
        mock.patch.object(continuity, "chases_queue", timed("chases", continuity.chases_queue)),
        mock.patch.object(tasks.batch_plan_task, "delay", lambda *a, **k: None),
        mock.patch.object(tasks.notices_dispatch, "delay", lambda *a, **k: None),
    ):
        yield figures


def explain(statements: list[str]) -> None:
    """EXPLAIN ANALYZE of each statement, in a transaction rolled back."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        for sql in statements:
            cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            say("EXPLAIN ANALYZE " + sql)
            for (line,) in cur.fetchall():
                print("    " + line, flush=True)
        transaction.set_rollback(True)


def verify(devices: Path) -> dict[str, object]:
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from migrations_plan.continuity import continuity_refresh
    from migrations_plan.models import Continuity, Notice

    say(f"verification: {MAILBOXES} mailboxes moved in {BATCHES} batches (bulk SQL)")
    _, start_s = batches_moved()
    after, changes = write_after_export(devices)
    say(f"  the target's export: {changes}")
    say("importing it (import_inventory, in this process, timed inside)")
    with verification_timed() as figures:
        started = time.perf_counter()
        # The target's export lists every phone it holds: a full export (what it no longer
        # lists is gone), confirmed (the bench's share of gone phones is its own choice).
        call_command(
            "import_inventory", str(after), "--culture", "en-US", "--full", "--confirm-stale"
        )
        after_s = time.perf_counter() - started
    if "refresh_s" not in figures:
        sys.exit("the import did not run continuity_refresh (devices_observed receiver)")
    observe_s, refresh_s = figures["observe_s"], figures["refresh_s"]
    states = dict(Continuity.objects.order_by().values_list("state").annotate(n=Count("pk")))
    say(
        f"  import {after_s:.1f}s; observations INSERT {observe_s:.2f}s; continuity_refresh "
        f"{refresh_s:.2f}s ({figures['refresh_queries']:.0f} queries); chases_queue "
        f"{figures['chases_s']:.2f}s ({figures['chases_queries']:.0f} queries, "
        f"{Notice.objects.filter(kind='chase').count()} follow-ups)"
    )
    say(f"  continuity: {states}")
    say("continuity_refresh again (beat's 15-minute run, nothing new)")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        continuity_refresh()
        again_s = time.perf_counter() - started
    again_queries = sum(1 for q in queries.captured_queries if not _control(q["sql"]))
    say(f"  {again_s:.2f}s ({again_queries} queries)")
    if os.environ.get("BENCH_EXPLAIN"):
        explain(figures["refresh_sql"])
    return {
        "verify_s": f"{observe_s + refresh_s:.1f}",
        "observe_s": f"{observe_s:.1f}",
        "refresh_s": f"{refresh_s:.1f}",
        "verify_queries": f"{figures['refresh_queries']:.0f}",
        "refresh_again_s": f"{again_s:.1f}",
        "chases_s": f"{figures['chases_s']:.1f}",
        "continuity_start_s": f"{start_s:.1f}",
        "after_move_import_s": f"{after_s:.1f}",
    }


def main() -> None:
    django_ready()
    from django.db import connection

    say(f"writing exports: {MAILBOXES} mailboxes, {DEVICES} devices")
    servers, mailboxes, devices, small = write_exports()
    say(f"devices.csv is {devices.stat().st_size / 1e6:.0f} MB")
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE devices_partnership, devices_mobiledevice, devices_moverequest, devices_mailbox, "
            "devices_exchangeserver, devices_inventoryimport RESTART IDENTITY CASCADE"
        )
    say("importing servers and mailboxes")
    mailbox_s, _ = import_files(servers, mailboxes)
    say(f"  {mailbox_s:.1f}s")
    say(f"importing {DEVICES // 4} devices (memory check)")
    small_s, rss_small = import_files(small)
    say(f"  {small_s:.1f}s, peak RSS {rss_small:.0f} MB")
    with connection.cursor() as cur:
        cur.execute("TRUNCATE devices_partnership, devices_mobiledevice RESTART IDENTITY CASCADE")
    say(f"importing {DEVICES} devices")
    import_s, rss_full = import_files(devices)
    say(f"  {import_s:.1f}s, peak RSS {rss_full:.0f} MB")
    say(f"importing the same {DEVICES} devices again (nothing changed)")
    reimport_s, rss_again = import_files(devices)
    say(f"  {reimport_s:.1f}s, peak RSS {rss_again:.0f} MB")

    say("COPY of the same file into a bare table")
    columns = ", ".join(f'"{name}" text' for name in HEADER)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_bare_devices")
        cur.execute(f"CREATE TABLE bench_bare_devices ({columns})")
        connection.commit() if not connection.get_autocommit() else None
        started = time.perf_counter()
        with devices.open("rb") as handle:
            handle.read(3)  # the UTF-8 BOM
            cur.copy_expert(
                "COPY bench_bare_devices FROM STDIN WITH (FORMAT csv, HEADER true)", handle
            )
        copy_s = time.perf_counter() - started
        cur.execute("SELECT COUNT(*) FROM bench_bare_devices")
        copied = cur.fetchone()[0]
        cur.execute("DROP TABLE bench_bare_devices")
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM devices_partnership")
        partnerships = cur.fetchone()[0]
    assert copied == DEVICES == partnerships, (copied, partnerships)
    say(f"  {copy_s:.1f}s")
    say("floor: COPY plus the two INSERTs any import must run, no check at all (rolled back)")
    floor_s = write_floor(connection, devices)
    say(f"  {floor_s:.1f}s")
    verified = verify(devices)
    result_line(
        "import",
        devices=DEVICES,
        mailboxes=MAILBOXES,
        import_s=f"{import_s:.1f}",
        copy_s=f"{copy_s:.1f}",
        ratio=f"{import_s / copy_s:.1f}",
        floor_s=f"{floor_s:.1f}",
        floor_ratio=f"{import_s / floor_s:.2f}",
        reimport_s=f"{reimport_s:.1f}",
        reimport_floor_ratio=f"{reimport_s / floor_s:.2f}",
        peak_rss_mb=f"{rss_full:.0f}",
        peak_rss_mb_100k=f"{rss_small:.0f}",
        mailbox_import_s=f"{mailbox_s:.1f}",
        **verified,
    )


if __name__ == "__main__":
    main()
