"""bench-seed: time seed_demo building a 200,000-mailbox organisation on PostgreSQL."""

from __future__ import annotations

import os
import time

from _setup import django_ready, result_line, say

MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "200000"))


def main() -> None:
    django_ready()
    from django.db import connection

    from devices.demo import seed_demo
    from devices.models import ExchangeServer, Mailbox, MobileDevice, Partnership

    say("emptying the benchmark inventory")
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE devices_partnership, devices_mobiledevice, devices_mailbox, "
            "devices_exchangeserver RESTART IDENTITY CASCADE"
        )
    say(f"seed_demo --mailboxes {MAILBOXES}")
    started = time.perf_counter()

    def progress(result, total):
        if result.mailboxes % 25000 == 0 or result.mailboxes == total:
            say(
                f"  {result.mailboxes}/{total} mailboxes, {result.devices} devices, "
                f"{time.perf_counter() - started:.1f}s"
            )

    result = seed_demo(mailboxes=MAILBOXES, progress=progress)
    seconds = time.perf_counter() - started
    say("second run (must change nothing in counts)")
    again_started = time.perf_counter()
    seed_demo(mailboxes=MAILBOXES)
    rerun = time.perf_counter() - again_started
    counts = (Mailbox.objects.count(), MobileDevice.objects.count(), Partnership.objects.count())
    assert counts == (result.mailboxes, result.devices, result.partnerships), counts
    result_line(
        "seed",
        mailboxes=counts[0],
        devices=counts[1],
        partnerships=counts[2],
        servers=ExchangeServer.objects.count(),
        seconds=f"{seconds:.1f}",
        rerun_seconds=f"{rerun:.1f}",
    )


if __name__ == "__main__":
    main()
