"""bench-import: import a 400,000-device Get-MobileDeviceStatistics export into PostgreSQL and
compare with a bare COPY of the same file; also check that peak memory stays flat.

Steps: generate servers / mailboxes (200,000) / devices (400,000) exports as Export-Csv writes
them; import servers and mailboxes; import a 100,000-device file (peak RSS); empty the device
tables; import the 400,000-device file (timed, peak RSS); COPY the same file into a bare table.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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
        cur.execute("TRUNCATE devices_partnership, devices_mobiledevice")
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
    result_line(
        "import",
        devices=DEVICES,
        mailboxes=MAILBOXES,
        import_s=f"{import_s:.1f}",
        copy_s=f"{copy_s:.1f}",
        ratio=f"{import_s / copy_s:.1f}",
        floor_s=f"{floor_s:.1f}",
        floor_ratio=f"{floor_s / copy_s:.1f}",
        peak_rss_mb=f"{rss_full:.0f}",
        peak_rss_mb_100k=f"{rss_small:.0f}",
        mailbox_import_s=f"{mailbox_s:.1f}",
    )


if __name__ == "__main__":
    main()
