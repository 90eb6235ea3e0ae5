"""The dashboard: the search box, the batches coming up with the people who must act, the last
imports, and whether the background worker runs (seen at start, then every minute)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from celery.signals import worker_ready
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import ImportState, InventoryImport
from exsync.models import Heartbeat
from exsync.tasks import heartbeat, heartbeat_on_worker_ready
from migrations_plan.models import MoveBatch
from migrations_plan.services import batch_create, batch_transition
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
NOT_SEEN = "Background worker: not seen yet"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # batch counts are cached per plan; start each test without them
    yield
    cache.clear()


@pytest.fixture
def org():
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016])  # phones keep syncing
    return ex2010, ex2016


def people(ex2010, *, blocked: int = 0, fine: int = 0, without_phone: int = 0) -> list:
    """Mailboxes whose worst phone is blocked (a quarantined phone next to one that
    continues), whose phones all continue, or that have no phone."""
    made = []
    for _ in range(blocked):
        mailbox = MailboxFactory(server=ex2010)
        PartnershipFactory(mailbox=mailbox, access_state="Quarantined")
        PartnershipFactory(mailbox=mailbox)
        made.append(mailbox)
    for _ in range(fine):
        mailbox = MailboxFactory(server=ex2010)
        PartnershipFactory(mailbox=mailbox)
        made.append(mailbox)
    made += [MailboxFactory(server=ex2010) for _ in range(without_phone)]
    return made


def wave(ex2016, name: str, mailboxes: list, *, days: int, state: str = "draft") -> MoveBatch:
    batch = batch_create(
        name=name,
        target_server=ex2016,
        start_at=timezone.now() + timedelta(days=days),
        complete_by=timezone.now() + timedelta(days=days, hours=6),
        mailboxes=mailboxes,
        actor=None,
    )
    for action in {
        "draft": [],
        "scheduled": ["schedule"],
        "in_progress": ["schedule", "start"],
        "completed": ["schedule", "start", "complete"],
        "cancelled": ["cancel"],
    }[state]:
        batch = batch_transition(batch=batch, action=action, actor=None)
    return batch


def imported(n: int, *, by=None, state: str = ImportState.SUCCEEDED) -> InventoryImport:
    return InventoryImport.objects.create(
        group=uuid.uuid4(),
        filename=f"export-{n}.csv",
        sha256="0" * 64,
        kind="mobile_devices",
        state=state,
        created_by=by,
        source="web" if by else "cli",
        created_at=timezone.now() - timedelta(hours=10 - n),
    )


def test_the_dashboard_lists_coming_and_running_batches_with_their_dates_first_to_start_first(
    client, helpdesk_user, org
):
    ex2010, ex2016 = org
    later = wave(ex2016, "Wave later", people(ex2010, fine=1), days=9)
    soon = wave(ex2016, "Wave soon", people(ex2010, fine=1), days=2, state="scheduled")
    running = wave(ex2016, "Wave running", people(ex2010, fine=1), days=1, state="in_progress")
    wave(ex2016, "Wave done", people(ex2010, fine=1), days=3, state="completed")
    wave(ex2016, "Wave dropped", people(ex2010, fine=1), days=4, state="cancelled")
    client.force_login(helpdesk_user)

    response = client.get(reverse("dashboard"))

    assert [b.name for b in response.context["batches"]] == [
        "Wave running",
        "Wave soon",
        "Wave later",
    ]
    body = response.content.decode()
    assert "Wave done" not in body and "Wave dropped" not in body
    for batch, label in ((running, "In progress"), (soon, "Scheduled"), (later, "Draft")):
        row = _row(body, batch.name)
        assert reverse("migrations_plan:batch_detail", args=[batch.pk]) in row
        assert label in row
        assert timezone.localtime(batch.start_at).strftime("%Y-%m-%d %H:%M") in row
        assert timezone.localtime(batch.complete_by).strftime("%Y-%m-%d %H:%M") in row


def test_the_dashboard_counts_people_not_devices_who_must_act_by_their_worst_phone(
    client, admin_user, org
):
    ex2010, ex2016 = org
    # 2 people with a blocked phone (and one that continues), 3 whose phones continue, 1 without.
    batch = wave(
        ex2016,
        "Wave",
        people(ex2010, blocked=2, fine=3, without_phone=1),
        days=5,
        state="scheduled",
    )
    client.force_login(admin_user)

    response = client.get(reverse("dashboard"))

    (shown,) = response.context["batches"]
    assert shown.people == 6
    assert shown.needing_action == {"blocked": 2}, "a person counts once, under the worst phone"
    row = _row(response.content.decode(), "Wave")
    link = reverse("migrations_plan:batch_detail", args=[batch.pk]) + "?outcome=blocked#people"
    assert re.search(rf'href="{re.escape(link)}">.*?Blocked</span>\s*2</a>', row, re.S), row
    assert ">6</td>" in row  # people in the batch
    assert "Continues" not in row, "people whose phones continue need not act"


def test_a_batch_where_every_phone_continues_says_nobody_must_act(client, helpdesk_user, org):
    ex2010, ex2016 = org
    wave(ex2016, "Calm wave", people(ex2010, fine=2), days=3)
    client.force_login(helpdesk_user)

    row = _row(client.get(reverse("dashboard")).content.decode(), "Calm wave")

    assert "Nobody: every phone continues." in row


def test_the_dashboard_shows_the_last_five_imports_with_file_kind_state_time_and_who(
    client, helpdesk_user
):
    kim = UserFactory(username="kim.admin")
    for n in range(6):
        imported(n, by=kim)
    imported(6, state=ImportState.REJECTED)  # the newest, from the command line
    client.force_login(helpdesk_user)

    response = client.get(reverse("dashboard"))

    section = _section(response.content.decode(), "imports-title")
    shown = re.findall(r"export-(\d)\.csv", section)
    assert shown == ["6", "5", "4", "3", "2"], "the five newest, newest first"
    assert "Rejected" in section and "Imported" in section
    assert "kim.admin" in section and ">cli</td>" in section
    assert "mobile_devices" in section
    newest = InventoryImport.objects.get(filename="export-6.csv")
    assert timezone.localtime(newest.created_at).strftime("%Y-%m-%d %H:%M") in section
    assert reverse("devices:import_group", args=[newest.group]) in section


@pytest.mark.parametrize("role", ["admin", "helpdesk"])
def test_both_roles_find_people_from_the_dashboard_search_box(client, role):
    client.force_login(UserFactory(role=role))

    body = client.get(reverse("dashboard")).content.decode()

    main = body.split('<main id="main">', 1)[1]  # not the top bar's box
    form = re.search(r'<form class="dashboard-search"[^>]*>', main).group(0)
    assert 'role="search"' in form and 'action="/people/"' in form and 'method="get"' in form
    assert re.search(r'<input id="dashboard-q" type="search" name="q"', main)
    assert '<label id="dashboard-q-label" for="dashboard-q">Find a person</label>' in main


def test_before_any_worker_ran_the_dashboard_says_not_seen_yet_and_how_to_start_one(
    client, helpdesk_user
):
    client.force_login(helpdesk_user)

    body = client.get(reverse("dashboard")).content.decode()

    assert NOT_SEEN in body
    assert "celery -A exsync worker" in body and "celery -A exsync beat" in body


def test_a_worker_is_seen_as_soon_as_it_starts_not_a_minute_later(client, helpdesk_user):
    # What celery does when a worker is ready to take tasks: the handler is connected to it.
    worker_ready.send(sender=None)
    client.force_login(helpdesk_user)

    body = client.get(reverse("dashboard")).content.decode()

    assert NOT_SEEN not in body
    assert "Background worker: last seen now" in body
    assert "is the worker running?" not in body
    assert Heartbeat.objects.get(name="worker").hostname


def test_beats_heartbeat_task_keeps_the_worker_seen(client, helpdesk_user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        heartbeat_on_worker_ready()
    client.force_login(helpdesk_user)
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        result = heartbeat()  # what beat has the worker run every minute
        body = client.get(reverse("dashboard")).content.decode()

    assert result["name"] == "worker"
    assert Heartbeat.objects.get(name="worker").seen_at == start + timedelta(minutes=10)
    assert "Background worker: last seen now" in body and "is the worker running?" not in body


def test_a_heartbeat_older_than_three_minutes_asks_whether_the_worker_runs(client, helpdesk_user):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        heartbeat()
    client.force_login(helpdesk_user)

    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        fresh = client.get(reverse("dashboard")).content.decode()
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        stale = client.get(reverse("dashboard")).content.decode()

    assert "is the worker running?" not in fresh and NOT_SEEN not in fresh
    assert "Background worker: last seen 4\xa0minutes ago: is the worker running?" in stale
    assert NOT_SEEN not in stale
    assert "celery -A exsync worker" in stale


def test_the_dashboard_runs_the_same_queries_for_more_batches_people_and_imports(
    client, helpdesk_user, org, django_assert_max_num_queries
):
    ex2010, ex2016 = org
    wave(ex2016, "Small", people(ex2010, fine=1), days=2)
    client.force_login(helpdesk_user)
    client.get(reverse("dashboard"))  # the session and permission caches
    cache.clear()
    with CaptureQueriesContext(connection) as cold:
        client.get(reverse("dashboard"))
    with CaptureQueriesContext(connection) as warm:
        client.get(reverse("dashboard"))

    for n in range(4):
        wave(ex2016, f"Wave {n}", people(ex2010, blocked=3, fine=4, without_phone=1), days=3 + n)
    for n in range(7):
        imported(n, by=helpdesk_user)
    heartbeat()
    ExchangeServerFactory.create_batch(3)

    cache.clear()
    with django_assert_max_num_queries(len(cold)):
        response = client.get(reverse("dashboard"))
    assert len(response.context["batches"]) == 5
    with django_assert_max_num_queries(len(warm)):
        client.get(reverse("dashboard"))
    assert len(warm) < len(cold), "the batches' counts come from the cache once computed"


def _row(body: str, name: str) -> str:
    """The table row of the batch called `name`."""
    match = re.search(rf"<tr>\s*<td><a [^>]*>{re.escape(name)}</a>.*?</tr>", body, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def _section(body: str, heading_id: str) -> str:
    start = body.index(f'id="{heading_id}"')
    return body[start : body.index("</section>", start)]


def test_admins_are_told_of_failed_and_overdue_notices_helpdesk_is_not(
    client, admin_user, helpdesk_user
):
    from datetime import timedelta

    from django.utils import timezone

    from migrations_plan.models import Notice
    from tests.factories import MoveBatchFactory

    batch = MoveBatchFactory()
    now = timezone.now()
    Notice.objects.create(
        batch=batch, kind="before", recipient="a@contoso.com", due_at=now, state="failed"
    )
    Notice.objects.create(
        batch=batch,
        kind="before",
        lead_minutes=1,
        recipient="a@contoso.com",
        due_at=now - timedelta(hours=1),
    )
    Notice.objects.create(  # due, but only just: beat has not had its turn yet
        batch=batch, kind="before", lead_minutes=2, recipient="a@contoso.com", due_at=now
    )

    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert "1 e-mail failed for good." in page
    assert "1 notice due more than 10 minutes ago was not sent." in page
    client.force_login(helpdesk_user)
    assert "failed for good" not in client.get("/").content.decode()
