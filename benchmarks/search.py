"""bench-search: 200 typical helpdesk requests on PostgreSQL with seed_demo's 200,000 mailboxes
(~400,000 partnerships), through Django's test client as a signed-in helpdesk user.

The mix: people searches (names given name first and family name first, partial addresses,
DeviceIds whole and in part), person pages, filtered affected-people lists and the page of a
20,000-mailbox batch. A kind of page that answers 404 (not built yet) is left out and said so;
its share goes to searches. Each request is timed on its own, with its query count.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_ready, result_line, say

MAILBOXES = int(os.environ.get("BENCH_MAILBOXES", "200000"))
BATCH_MAILBOXES = int(os.environ.get("BENCH_BATCH_MAILBOXES", "20000"))
REQUESTS = 200
BATCH_NAME = "bench-search"
# Shares of the 200 requests; searches take over the share of a page kind that is missing.
MIX = {"search": 100, "person": 40, "affected": 40, "batch": 20}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _vacuum(connection) -> None:
    """What autovacuum does soon after a bulk load, before anyone searches: statistics, and the
    trigram GIN indexes' pending lists merged (scanned linearly until then: 3-14 ms each per
    query right after seeding, measured)."""
    say("VACUUM ANALYZE, as autovacuum would after a bulk load")
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def main() -> None:
    # A database of its own: 200,000 mailboxes here, 50,000 for bench-plan; sharing one made
    # each benchmark re-seed (or measure on) the other's data.
    url = os.environ["DATABASE_URL"].rstrip("/")
    os.environ["DATABASE_URL"] = f"{url}_search"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["DEBUG"] = "true"  # static files without collectstatic, as bench-create does
    django_ready()
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from devices.demo import seed_demo
    from devices.models import ExchangeServer, Mailbox, MobileDevice
    from exsync.roles import HELPDESK, ensure_roles
    from migrations_plan.models import BatchMailbox, MoveBatch
    from migrations_plan.services import batch_create

    demo = ExchangeServer.objects.filter(name="EX2003-01").exists()
    if not demo or Mailbox.objects.count() < MAILBOXES:
        say(f"emptying the benchmark database, then seed_demo --mailboxes {MAILBOXES}")
        MoveBatch.objects.all().delete()
        with connection.cursor() as cur:
            cur.execute(
                "TRUNCATE devices_partnership, devices_mobiledevice, devices_moverequest, devices_mailbox, "
                "devices_certificate, devices_namespace, devices_clientprofile, devices_exchangeserver, "
                "migrations_plan_batchmailbox RESTART IDENTITY CASCADE"
            )
        seed_demo(mailboxes=MAILBOXES)
        _vacuum(connection)

    batch = MoveBatch.objects.filter(name=BATCH_NAME).first()
    if batch is None or batch.members.filter(is_active=True).count() != BATCH_MAILBOXES:
        if batch is not None:
            batch.delete()
        target = ExchangeServer.objects.get(name="EX2016-01")
        held = BatchMailbox.objects.filter(is_active=True).values("mailbox_id")
        mailboxes = list(
            Mailbox.objects.exclude(server=target)
            .exclude(pk__in=held)
            .order_by("-pk")[:BATCH_MAILBOXES]
        )
        say(f"creating and planning batch {BATCH_NAME} of {len(mailboxes)} mailboxes")
        started = time.perf_counter()
        batch = batch_create(
            name=BATCH_NAME,
            target_server=target,
            start_at=timezone.now() + timedelta(days=7),
            mailboxes=mailboxes,
            actor=None,
            via="bench",
            allow_unsupported=True,  # seed_demo's organisation spans 2003 to 2019
        )
        say(f"  {time.perf_counter() - started:.1f}s")
        _vacuum(connection)

    ensure_roles()
    user, _ = User.objects.get_or_create(username="bench-helpdesk")
    user.groups.add(Group.objects.get(name=HELPDESK))
    client = Client()
    client.force_login(user)

    rng = random.Random(12)
    total = Mailbox.objects.count()
    sample = list(
        Mailbox.objects.filter(pk__in=[rng.randint(1, total) for _ in range(400)]).values_list(
            "pk", "display_name", "alias"
        )
    )
    members = list(
        batch.members.order_by("?").values_list("mailbox_id", flat=True)[:100]
    )  # person pages: half in the big batch, half anywhere
    device_ids = list(
        MobileDevice.objects.filter(pk__in=[rng.randint(1, 2 * total) for _ in range(200)])
        .exclude(device_type="Outlook")  # Outlook's ids are 32 hex digits; phones' 16 letters
        .values_list("device_id", flat=True)
    )

    def name_given_first() -> str:
        _, name, _ = rng.choice(sample)
        family, _, given = name.partition(", ")
        return f"{given} {family}"

    def search_urls() -> list[str]:
        makers = [
            lambda: name_given_first(),  # "Ahmed Jensen"
            lambda: rng.choice(sample)[1],  # "Jensen, Ahmed", as Exchange shows it
            lambda: rng.choice(sample)[2][:-1],  # part of an address: "ajensen100"
            lambda: rng.choice(device_ids),  # a whole DeviceId, read off the phone
            lambda: rng.choice(device_ids)[:10],  # its first characters
        ]
        return [f"/people/?{urlencode({'q': makers[i % len(makers)]()})}" for i in range(200)]

    outcomes = ["blocked", "repartner", "unknown", "full_resync"]
    kinds = {
        "search": search_urls(),
        "person": [f"/people/{pk}/" for pk in members[:50] + [pk for pk, _, _ in sample[:50]]],
        "affected": [f"/people/affected/?batch={batch.pk}&outcome={o}" for o in outcomes]
        + [
            f"/people/affected/?batch={batch.pk}&needs_action=yes",
            f"/people/affected/?outcome={outcomes[0]}",
            "/people/affected/?needs_action=yes",
            f"/people/affected/?batch={batch.pk}",
        ],
        "batch": [f"/batches/{batch.pk}/"],
    }

    counts = dict(MIX)
    for kind in list(kinds):
        response = client.get(kinds[kind][0])  # also warms templates and caches
        if response.status_code == 404:
            say(f"skipping {kind} pages: {kinds[kind][0]} answers 404 (not built yet)")
            counts["search"] += counts.pop(kind)
            del kinds[kind]
        elif response.status_code != 200:
            sys.exit(f"{kinds[kind][0]} answered {response.status_code}")

    plan = [
        (kind, kinds[kind][i % len(kinds[kind])]) for kind, n in counts.items() for i in range(n)
    ]
    rng.shuffle(plan)
    assert len(plan) == REQUESTS
    timings: dict[str, list[float]] = defaultdict(list)
    queries: dict[str, list[int]] = defaultdict(list)
    slowest: dict[str, tuple[float, str]] = {}
    say(f"{REQUESTS} requests: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    for kind, url in plan:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}")
        timings[kind].append(elapsed)
        queries[kind].append(len(captured))
        slowest[kind] = max(slowest.get(kind, (0.0, "")), (elapsed, url))

    every = [t for ts in timings.values() for t in ts]
    for kind, ts in timings.items():
        say(
            f"  {kind:9} n={len(ts):3} p50={statistics.median(ts):7.1f} ms "
            f"p95={percentile(ts, 95):7.1f} ms max={max(ts):7.1f} ms "
            f"queries={min(queries[kind])}-{max(queries[kind])}; slowest {slowest[kind][1]}"
        )
    say(
        f"  all       n={len(every):3} p50={statistics.median(every):7.1f} ms "
        f"p95={percentile(every, 95):7.1f} ms max={max(every):7.1f} ms"
    )
    result_line(
        "search",
        requests=len(every),
        p50_ms=f"{statistics.median(every):.1f}",
        p95_ms=f"{percentile(every, 95):.1f}",
        max_queries=max(q for qs in queries.values() for q in qs),
    )


if __name__ == "__main__":
    main()
