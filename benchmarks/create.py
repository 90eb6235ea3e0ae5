"""bench-create: the batch-create web request for about 18,000 mailboxes, on the embedded
default (SQLite, where the issue measured 9 s with planning inside the request), then the plan
the worker runs for it.

The request only records the batch and its members and queues the plan; the plan itself runs
in the worker (timed here by calling the same service the task calls).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import ROOT, result_line, say

MAILBOXES = int(os.environ.get("BENCH_CREATE_MAILBOXES", "60000"))  # ~18,000 on EX2010-01
DATABASE = ROOT / "var" / "bench-create.sqlite3"


def main() -> None:
    # The embedded default on purpose, whatever the Makefile says for PostgreSQL benchmarks.
    os.environ["DATABASE_URL"] = f"sqlite:///{DATABASE}"
    os.environ["CELERY_BROKER_FOLDER"] = str(ROOT / "var" / "bench-create-broker")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exsync.settings")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["DEBUG"] = "true"  # as `make run` does: static files without collectstatic
    DATABASE.parent.mkdir(exist_ok=True)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from devices.demo import seed_demo
    from devices.models import ExchangeServer, Mailbox
    from exsync.roles import ADMINS, ensure_roles
    from migrations_plan.models import MoveBatch
    from migrations_plan.services import batch_plan

    call_command("migrate", verbosity=0, interactive=False)
    if Mailbox.objects.count() < MAILBOXES:
        say(f"seed_demo --mailboxes {MAILBOXES} (SQLite)")
        seed_demo(mailboxes=MAILBOXES)
    ensure_roles()
    admin, _ = User.objects.get_or_create(username="bench-admin")
    admin.groups.add(Group.objects.get(name=ADMINS))
    MoveBatch.objects.all().delete()  # the benchmark's own database
    source = ExchangeServer.objects.get(name="EX2010-01")
    target = ExchangeServer.objects.get(name="EX2016-01")
    mailboxes = Mailbox.objects.filter(server=source).count()
    client = Client()
    client.force_login(admin)
    form = {
        "request_token": str(uuid.uuid4()),
        "name": "bench-create",
        "target_server": str(target.pk),
        "start_at": (timezone.now() + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M"),
        "first_notice_hours": 72,
        "reminder_hours": 2,
        "source_server": source.pk,
    }
    say(f"POST /batches/new/ with the {mailboxes} mailboxes of {source.name}")
    started = time.perf_counter()
    response = client.post("/batches/new/", form)
    request_s = time.perf_counter() - started
    if response.status_code != 302:
        import re

        errors = re.findall(r"<code>(.*?)</code>", response.content.decode(), re.S)
        sys.exit(f"the form was refused ({response.status_code}): {errors}")
    batch = MoveBatch.objects.get(name="bench-create")
    say(f"  {response.status_code} in {request_s:.2f}s; plan {batch.plan_state}")
    started = time.perf_counter()
    result = batch_plan(batch=batch)
    plan_s = time.perf_counter() - started
    say(f"  the worker's plan: {result.partnerships} partnerships in {plan_s:.2f}s")
    result_line(
        "create",
        database="sqlite",
        mailboxes=mailboxes,
        partnerships=result.partnerships,
        request_s=f"{request_s:.2f}",
        status=response.status_code,
        plan_state_after_request=batch.plan_state,
        worker_plan_s=f"{plan_s:.2f}",
    )


if __name__ == "__main__":
    main()
