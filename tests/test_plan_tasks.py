"""Batches are planned by a Celery task, not in the web request: queued, coalesced, claimed
once, shown on the page while under way, and swept up when a message or a worker is lost."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from migrations_plan import services
from migrations_plan.models import AuditEntry, MoveBatch, PlanState, Prediction
from migrations_plan.services import (
    batch_create,
    batch_plan_request,
    batch_plans_sweep,
    batch_transition,
)
from migrations_plan.tasks import batch_plan_task, sweep_batch_plans
from tests.factories import ExchangeServerFactory, MailboxFactory, PartnershipFactory

START = (timezone.now() + timedelta(days=10)).replace(microsecond=0)


@pytest.fixture
def org(db):
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    mailboxes = [
        MailboxFactory(server=ex2010, primary_smtp_address=f"user{n}@contoso.com") for n in range(4)
    ]
    partnerships = [PartnershipFactory(mailbox=mailbox) for mailbox in mailboxes]
    return ex2016, mailboxes, partnerships


class Sent(list):
    """Ids of the plan tasks sent to the broker, kept here instead: the test plays the worker."""

    def __init__(self, capture) -> None:
        super().__init__()
        self._capture = capture

    def committed(self):
        """A block whose transaction.on_commit callbacks run when it ends, as they would when
        a request's transaction commits."""
        return self._capture(execute=True)


@pytest.fixture
def sent(monkeypatch, django_capture_on_commit_callbacks):
    messages = Sent(django_capture_on_commit_callbacks)
    monkeypatch.setattr(batch_plan_task, "delay", messages.append)
    return messages


def queued_batch(ex2016, mailboxes, sent, name="Wave 1"):
    with sent.committed():
        batch = batch_create(
            name=name,
            target_server=ex2016,
            start_at=START,
            mailboxes=mailboxes,
            actor=None,
            plan="queue",
        )
    batch.refresh_from_db()
    return batch


def create_form(ex2016, csv: bytes) -> dict:
    return {
        "request_token": "0b9a2f4e-6c1d-4e8f-9a7b-3c2d1e0f9a8b",
        "name": "Wave 1",
        "target_server": ex2016.pk,
        "start_at": START.strftime("%Y-%m-%dT%H:%M"),
        "notice_leads": "72, 2",
        "notify_unaffected": "on",
        "mailboxes_csv": SimpleUploadedFile("batch.csv", csv),
    }


def test_creating_a_batch_on_the_page_queues_its_plan_and_the_worker_stores_it(
    client, admin_user, org, sent, monkeypatch
):
    ex2016, _, partnerships = org
    device_id = partnerships[0].device.device_id
    real_plan = services.batch_plan

    def not_in_the_request(**kwargs):
        raise AssertionError("planned inside the web request")

    monkeypatch.setattr(services, "batch_plan", not_in_the_request)
    client.force_login(admin_user)
    with sent.committed():
        response = client.post(
            reverse("migrations_plan:batch_create"),
            create_form(ex2016, b"EmailAddress\r\nuser0@contoso.com\r\nuser1@contoso.com\r\n"),
        )

    batch = MoveBatch.objects.get()
    assert response.status_code == 302
    assert sent == [batch.pk]
    assert batch.plan_state == PlanState.QUEUED and batch.plan_requested_at is not None
    assert batch.planned_at is None and not Prediction.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Planning…</span> queued at" in page and 'http-equiv="refresh"' in page
    assert device_id not in page
    listing = client.get(reverse("migrations_plan:batch_list")).content.decode()
    assert "Planning…" in listing and 'http-equiv="refresh"' in listing

    monkeypatch.setattr(services, "batch_plan", real_plan)
    assert batch_plan_task(batch.pk).startswith("planned 2 devices")

    batch.refresh_from_db()
    assert batch.plan_state == PlanState.IDLE and batch.planned_at is not None
    assert Prediction.objects.filter(member__batch=batch).count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "Planned at" in page and 'http-equiv="refresh"' not in page
    assert device_id in page, "the device table shows the plan"


def test_two_requests_for_a_queued_batch_send_one_task(org, sent):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)

    with sent.committed():
        assert batch_plan_request(batch=batch, reason="a second import") is False
        assert batch_plan_request(batch=batch, reason="a third import") is False

    assert sent == [batch.pk]
    batch.refresh_from_db()
    assert batch.plan_state == PlanState.QUEUED


def test_a_fact_recorded_while_the_plan_runs_is_planned_once_more_after_it(org, sent, monkeypatch):
    ex2016, mailboxes, partnerships = org
    batch = queued_batch(ex2016, mailboxes[:1], sent)
    real_plan = services.batch_plan
    plans = []

    def plan_while_a_fact_arrives(**kwargs):
        result = real_plan(**kwargs)
        plans.append(kwargs["batch"].pk)
        if len(plans) == 1:  # the fact commits after this plan read the inventory
            partnerships[0].access_state = "Quarantined"
            partnerships[0].save()
            assert batch_plan_request(batch=batch, reason="fact") is False
        return result

    monkeypatch.setattr(services, "batch_plan", plan_while_a_fact_arrives)
    with sent.committed():
        batch_plan_task(batch.pk)

    batch.refresh_from_db()
    assert batch.plan_state == PlanState.QUEUED and not batch.plan_rerun
    assert sent == [batch.pk, batch.pk], "one more task, sent when the running plan ended"
    assert Prediction.objects.get(member__batch=batch).outcome != "blocked", "planned before"

    batch_plan_task(batch.pk)

    batch.refresh_from_db()
    assert plans == [batch.pk, batch.pk] and batch.plan_state == PlanState.IDLE
    assert Prediction.objects.get(member__batch=batch).outcome == "blocked"


def test_the_plan_task_is_idempotent(org, sent, monkeypatch):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)
    real_plan = services.batch_plan
    plans = []
    monkeypatch.setattr(
        services, "batch_plan", lambda **kwargs: plans.append(1) or real_plan(**kwargs)
    )

    first = batch_plan_task(batch.pk)
    planned_at = MoveBatch.objects.get(pk=batch.pk).planned_at
    second = batch_plan_task(batch.pk)  # the same message delivered again (acks_late)

    assert first.startswith("planned") and second == "not queued: nothing to do"
    assert plans == [1]
    batch.refresh_from_db()
    assert batch.plan_state == PlanState.IDLE and batch.planned_at == planned_at
    assert batch_plan_task(123456) == "not queued: nothing to do", "a deleted batch"


def test_a_failed_plan_is_shown_with_its_error_and_can_be_asked_again(
    client, admin_user, org, sent, monkeypatch
):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)

    def broken(**kwargs):
        raise RuntimeError("disk <full>")

    monkeypatch.setattr(services, "batch_plan", broken)
    with pytest.raises(RuntimeError):
        batch_plan_task(batch.pk)

    batch.refresh_from_db()
    assert batch.plan_state == PlanState.FAILED
    assert batch.plan_error == "RuntimeError: disk <full>"
    client.force_login(admin_user)
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    assert "Planning failed" in page and "RuntimeError: disk &lt;full&gt;" in page
    assert 'http-equiv="refresh"' not in page

    with sent.committed():
        response = client.post(
            reverse("migrations_plan:batch_action", args=[batch.pk, "replan"]), follow=True
        )

    assert "Re-plan queued" in response.content.decode()
    batch.refresh_from_db()
    assert batch.plan_state == PlanState.QUEUED and batch.plan_error == ""
    assert sent == [batch.pk, batch.pk]
    entry = AuditEntry.objects.get(batch=batch, action="plan_requested")
    assert entry.actor == admin_user and entry.detail == {"reason": "re-plan", "plan": "queued"}


def test_a_batch_cancelled_while_queued_ends_idle_without_planning(
    admin_user, org, sent, monkeypatch
):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)
    batch_transition(batch=batch, action="cancel", actor=admin_user)
    monkeypatch.setattr(services, "batch_plan", lambda **kwargs: pytest.fail("planned"))

    assert batch_plan_task(batch.pk) == "cancelled: not planned"

    batch.refresh_from_db()
    assert batch.plan_state == PlanState.IDLE and batch.planned_at is None
    with sent.committed():
        assert batch_plan_request(batch=batch, reason="import") is False
    assert sent == [batch.pk], "a finished batch is not queued again"


def test_the_sweeper_sends_again_lost_messages_and_plans_whose_worker_died(org, sent):
    ex2016, mailboxes, _ = org
    now = timezone.now()
    lost = queued_batch(ex2016, mailboxes[:1], sent, name="Lost message")
    dead = queued_batch(ex2016, mailboxes[1:2], sent, name="Dead worker")
    queued_batch(ex2016, mailboxes[2:3], sent, name="Just queued")
    running = queued_batch(ex2016, mailboxes[3:], sent, name="Running")
    sent.clear()
    MoveBatch.objects.filter(pk=lost.pk).update(plan_requested_at=now - timedelta(minutes=20))
    MoveBatch.objects.filter(pk=dead.pk).update(
        plan_state=PlanState.RUNNING, plan_started_at=now - timedelta(hours=2)
    )
    MoveBatch.objects.filter(pk=running.pk).update(
        plan_state=PlanState.RUNNING, plan_started_at=now - timedelta(minutes=2)
    )

    with sent.committed():
        assert sweep_batch_plans() == 2

    assert sorted(sent) == sorted([lost.pk, dead.pk])
    states = dict(MoveBatch.objects.values_list("name", "plan_state"))
    assert states == {
        "Lost message": "queued",
        "Dead worker": "queued",
        "Just queued": "queued",
        "Running": "running",
    }
    assert batch_plan_task(dead.pk).startswith("planned")
    assert Prediction.objects.filter(member__batch=dead).count() == 1
    with sent.committed():
        assert batch_plans_sweep() == 1, "the lost message only, until it is planned"


def test_helpdesk_cannot_ask_for_a_replan(client, helpdesk_user, org, sent):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)
    batch_plan_task(batch.pk)
    client.force_login(helpdesk_user)

    with sent.committed():
        response = client.post(reverse("migrations_plan:batch_action", args=[batch.pk, "replan"]))

    assert response.status_code == 403
    batch.refresh_from_db()
    assert batch.plan_state == PlanState.IDLE and sent == [batch.pk]
    assert not AuditEntry.objects.filter(action="plan_requested").exists()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_created_on_the_page_is_planned_by_a_real_worker_through_redis(
    client, admin_user, worker_queue, monkeypatch
):
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    for n in range(3):
        PartnershipFactory(
            mailbox=MailboxFactory(server=ex2010, primary_smtp_address=f"user{n}@contoso.com")
        )
    # The page's on_commit sends the task as it would; to this test's own queue, so a worker
    # of another test run on the same Redis cannot take it.
    monkeypatch.setattr(
        batch_plan_task,
        "delay",
        lambda batch_id: batch_plan_task.apply_async(args=[batch_id], queue=worker_queue),
    )
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_create"),
        create_form(
            ex2016,
            b"EmailAddress\r\nuser0@contoso.com\r\nuser1@contoso.com\r\nuser2@contoso.com\r\n",
        ),
    )
    assert response.status_code == 302

    batch = MoveBatch.objects.get()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.plan_state not in (PlanState.QUEUED, PlanState.RUNNING):
            break
        time.sleep(0.3)
    assert batch.plan_state == PlanState.IDLE, batch.plan_error
    assert batch.planned_at is not None
    assert Prediction.objects.filter(member__batch=batch).count() == 3


def test_a_running_plan_shows_how_many_devices_it_has_predicted(
    org, sent, client, helpdesk_user, monkeypatch
):
    ex2016, mailboxes, _ = org
    batch = queued_batch(ex2016, mailboxes, sent)
    client.force_login(helpdesk_user)
    seen = {}
    real_plan = services.batch_plan

    def plan_and_look(*, batch, progress):
        # The real plan runs; each progress report is also read back the way the page (another
        # process, outside the plan's transaction) reads it.
        def report(done, total):
            progress(done, total)
            seen["claimed"] = MoveBatch.objects.values_list("plan_state", "plan_total").get()
            seen["progress"] = services.batch_plan_progress(batch_id=batch.pk)
            seen["page"] = client.get(
                reverse("migrations_plan:batch_detail", args=[batch.pk])
            ).content.decode()

        return real_plan(batch=batch, progress=report)

    monkeypatch.setattr(services, "batch_plan", plan_and_look)
    batch_plan_task(batch.pk)

    assert seen["claimed"] == (PlanState.RUNNING, 4), "4 pending mailboxes to plan"
    assert seen["progress"] == {"done": 4, "total": 4}
    assert "running since" in seen["page"] and "4 of 4 devices predicted" in seen["page"]
    assert 'http-equiv="refresh"' in seen["page"]
    assert Prediction.objects.count() == 4
