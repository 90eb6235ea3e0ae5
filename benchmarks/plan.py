"""bench-plan: plan a 50,000-mailbox batch (about 100,000 partnerships from seed_demo) on
PostgreSQL, time a plain read of the same rows in the same run, and compare every target of
the organisation for the same mailboxes (issue 17: no prediction written, within ratio 3 of
the plain read and no slower than the plan)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from _setup import django_ready, result_line, say

MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "50000"))


def main() -> None:
    django_ready()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from devices.demo import seed_demo
    from devices.models import ExchangeServer, Mailbox, Partnership
    from migrations_plan.models import MoveBatch, Prediction
    from migrations_plan.services import batch_create, batch_plan

    demo = ExchangeServer.objects.filter(name="EX2003-01").exists()
    if not demo or Mailbox.objects.count() < MAILBOXES:
        # Another benchmark may have left its own inventory here: start from seed_demo's org.
        say(f"emptying the benchmark database, then seed_demo --mailboxes {MAILBOXES}")
        MoveBatch.objects.all().delete()
        with connection.cursor() as cur:
            cur.execute(
                "TRUNCATE devices_partnership, devices_mobiledevice, devices_moverequest, devices_mailbox, "
                "devices_certificate, devices_namespace, devices_clientprofile, devices_exchangeserver, "
                "migrations_plan_batchmailbox RESTART IDENTITY CASCADE"
            )
        seed_demo(mailboxes=MAILBOXES)
    MoveBatch.objects.filter(name="bench-plan").delete()
    mailboxes = list(Mailbox.objects.order_by("pk")[:MAILBOXES])
    target = ExchangeServer.objects.get(name="EX2016-01")
    say(f"creating batch of {len(mailboxes)} mailboxes (planned once on creation)")
    started = time.perf_counter()
    batch = batch_create(
        name="bench-plan",
        target_server=target,
        start_at=timezone.now() + timedelta(days=7),
        mailboxes=mailboxes,
        actor=None,
        via="bench",
        # seed_demo's organisation spans 2003 to 2019: some of its paths are unsupported.
        allow_unsupported=True,
    )
    say(f"  {time.perf_counter() - started:.1f}s")

    rows = Partnership.objects.filter(
        mailbox__batch_memberships__batch=batch, mailbox__batch_memberships__is_active=True
    ).values_list(
        # The same columns the plan's fact key reads (migrations_plan/fact_key.py).
        "pk",
        "mailbox__batch_memberships__pk",
        "mailbox__server_id",
        "eas_version",
        "client_type",
        "access_state",
        "personal_access",
        "policy_applied",
        "device__device_type",
        "device__model",
        "device__os",
    )
    say("plain read of the same rows")
    reads = []
    for _ in range(3):
        started = time.perf_counter()
        count = sum(1 for _ in rows.iterator(chunk_size=20_000))
        reads.append(time.perf_counter() - started)
    read_s = min(reads)
    say(f"  {count} rows in {read_s:.2f}s (best of 3)")

    say("planning from scratch (every prediction written)")
    plans = []
    for _ in range(3):
        Prediction.objects.filter(member__batch=batch).delete()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = batch_plan(batch=batch)
            plans.append(time.perf_counter() - started)
    plan_s = min(plans)
    say(
        f"  {result.partnerships} predictions, {result.explanations} distinct explanations, "
        f"{plan_s:.2f}s (best of 3), {len(queries)} queries; {dict(result.summary)}"
    )
    say("comparing every target for the same mailboxes (nothing written)")
    from migrations_plan.compare import batch_mailboxes, selection_read, targets_compare

    predictions = Prediction.objects.filter(member__batch=batch).count()
    compares = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as compare_queries:
            started = time.perf_counter()
            comparison = targets_compare(
                selection=selection_read(mailboxes=batch_mailboxes(batch)),
                move_date=timezone.localdate(batch.start_at),
                current_target_id=batch.target_server_id,
            )
            compares.append(time.perf_counter() - started)
    compare_s = min(compares)
    assert Prediction.objects.filter(member__batch=batch).count() == predictions
    say(
        f"  {len(comparison.targets)} targets, {compare_s:.2f}s (best of 3), "
        f"{len(compare_queries)} queries; "
        + ", ".join(f"{t.name} {t.needing_action}" for t in comparison.targets)
    )
    say("re-planning with nothing changed")
    started = time.perf_counter()
    batch_plan(batch=batch)
    replan_s = time.perf_counter() - started
    say(f"  {replan_s:.2f}s")
    result_line(
        "plan",
        mailboxes=len(mailboxes),
        partnerships=result.partnerships,
        plan_s=f"{plan_s:.2f}",
        read_s=f"{read_s:.2f}",
        ratio=f"{plan_s / read_s:.1f}",
        replan_s=f"{replan_s:.2f}",
        queries=len(queries),
        explanations=result.explanations,
        targets=len(comparison.targets),
        compare_s=f"{compare_s:.2f}",
        compare_ratio=f"{compare_s / read_s:.1f}",
        compare_queries=len(compare_queries),
    )


if __name__ == "__main__":
    main()
