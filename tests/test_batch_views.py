"""Batch pages with the Django test client: permissions, the flow, messages, query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import MoveRequest
from migrations_plan.models import (
    AuditEntry,
    BatchMailbox,
    BatchState,
    MoveBatch,
    Notice,
    NoticeState,
    PlanState,
    Prediction,
)
from migrations_plan.services import batch_create, batch_transition
from migrations_plan.tasks import batch_plan_task
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
START = (timezone.now() + timedelta(days=10)).replace(microsecond=0)


@pytest.fixture
def org():
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016])  # phones use it
    mailboxes = [
        MailboxFactory(server=ex2010, primary_smtp_address=f"user{n}@contoso.com") for n in range(4)
    ]
    for mailbox in mailboxes:
        PartnershipFactory(mailbox=mailbox)
    return ex2010, ex2016, mailboxes


def create_form(ex2016, **extra):
    data = {
        "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
        "name": "Wave 1",
        "target_server": ex2016.pk,
        "target_database": "DB2016-01",
        "start_at": START.strftime("%Y-%m-%dT%H:%M"),
        "notice_leads": "72, 2",
        "notify_unaffected": "on",
        "notification_emails": "ops@contoso.com",
    }
    data.update(extra)
    return data


def test_helpdesk_reads_batches_but_cannot_change_them(client, helpdesk_user, org):
    ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave 1", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)

    assert client.get(reverse("migrations_plan:batch_list")).status_code == 200
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]))
    assert page.status_code == 200 and b"Schedule" not in page.content
    assert client.get(reverse("migrations_plan:batch_create")).status_code == 403
    assert (
        client.post(
            reverse("migrations_plan:batch_action", args=[batch.pk, "schedule"])
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("migrations_plan:batch_create"), create_form(ex2016, source_server=ex2010.pk)
        ).status_code
        == 403
    )
    batch.refresh_from_db()
    assert batch.state == BatchState.DRAFT and MoveBatch.objects.count() == 1


def test_admin_creates_a_batch_from_a_migration_batch_csv_and_sees_the_preview(
    client, admin_user, org, django_capture_on_commit_callbacks
):
    _, ex2016, _ = org
    client.force_login(admin_user)
    csv_file = SimpleUploadedFile(
        "batch.csv", b"EmailAddress\r\nuser0@contoso.com\r\nUSER1@contoso.com\r\n"
    )

    with django_capture_on_commit_callbacks() as sent:
        response = client.post(
            reverse("migrations_plan:batch_create"),
            create_form(ex2016, mailboxes_csv=csv_file),
            follow=True,
        )

    batch = MoveBatch.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "migrations_plan:batch_detail", args=[batch.pk]
    )
    assert batch.members.count() == 2 and batch.created_by == admin_user
    assert len(sent) == 1, "the plan task is sent once the batch is committed"
    body = response.content.decode()
    assert "created as a draft" in body
    assert "Planning…</span> queued at" in body and 'http-equiv="refresh"' in body
    assert "M-2010-2013P" not in body

    batch_plan_task(batch.pk)  # what the worker does with the message

    body = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    assert "Planned at" in body and 'http-equiv="refresh"' not in body
    assert "People and devices per outcome" in body and "M-2010-2013P" in body


def test_unknown_addresses_are_listed_and_no_batch_is_created(client, admin_user, org):
    _, ex2016, _ = org
    client.force_login(admin_user)
    csv_file = SimpleUploadedFile(
        "batch.csv", b"EmailAddress\nuser0@contoso.com\nghost@contoso.com\n"
    )

    response = client.post(
        reverse("migrations_plan:batch_create"), create_form(ex2016, mailboxes_csv=csv_file)
    )

    assert response.status_code == 200
    assert (
        "batch.csv:3: column EmailAddress: no mailbox with primary address ghost@contoso.com"
        in response.content.decode()
    )
    assert not MoveBatch.objects.exists()


def test_a_double_submitted_form_creates_one_batch(client, admin_user, org):
    ex2010, ex2016, _ = org
    client.force_login(admin_user)
    form = create_form(ex2016, source_server=ex2010.pk)

    first = client.post(reverse("migrations_plan:batch_create"), form)
    second = client.post(reverse("migrations_plan:batch_create"), form)

    assert MoveBatch.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_a_mailbox_held_by_another_batch_is_refused_naming_that_batch(client, admin_user, org):
    ex2010, ex2016, mailboxes = org
    batch_create(
        name="Earlier", target_server=ex2016, start_at=START, mailboxes=mailboxes[:1], actor=None
    )
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_create"), create_form(ex2016, source_server=ex2010.pk)
    )

    assert "user0@contoso.com is in batch &#x27;Earlier&#x27;" in response.content.decode()
    assert MoveBatch.objects.count() == 1


def test_the_lifecycle_schedules_notices_removes_a_mailbox_and_completes(client, admin_user, org):
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=admin_user
    )
    client.force_login(admin_user)

    def action(name):
        return client.post(
            reverse("migrations_plan:batch_action", args=[batch.pk, name]), follow=True
        )

    assert "now scheduled" in action("schedule").content.decode()
    assert Notice.objects.filter(batch=batch, state=NoticeState.PENDING).count() == 8
    first = Notice.objects.filter(batch=batch, kind="before").first()
    assert first.due_at == START - timedelta(hours=72)

    client.post(reverse("migrations_plan:batch_member", args=[batch.pk, mailboxes[0].pk, "remove"]))
    assert not BatchMailbox.objects.get(batch=batch, mailbox=mailboxes[0]).is_active
    assert not Prediction.objects.filter(member__mailbox=mailboxes[0]).exists()
    assert Notice.objects.filter(mailbox=mailboxes[0], state=NoticeState.CANCELLED).count() == 2

    client.post(reverse("migrations_plan:batch_member", args=[batch.pk, mailboxes[1].pk, "moved"]))
    batch.refresh_from_db()
    assert batch.state == BatchState.IN_PROGRESS, "recording a move starts the batch"
    action("complete")
    batch.refresh_from_db()
    assert batch.state == BatchState.COMPLETED
    assert not batch.members.filter(is_active=True).exists(), "mailboxes are free for another batch"
    actions = list(
        AuditEntry.objects.filter(batch=batch).order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "created",
        "schedule",
        "mailboxes_removed",
        "start",
        "moves_recorded",
        "complete",
    ]
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    assert "mailboxes_removed" in page and admin_user.username in page


def test_a_second_click_on_schedule_changes_nothing(admin_user, org):
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    assert AuditEntry.objects.filter(batch=batch, action="schedule").count() == 1
    assert Notice.objects.filter(batch=batch).count() == 8


def test_cancelling_a_batch_frees_its_mailboxes_and_drops_pending_notices(client, admin_user, org):
    _ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    client.force_login(admin_user)

    client.post(reverse("migrations_plan:batch_action", args=[batch.pk, "cancel"]))

    assert not Notice.objects.filter(batch=batch, state=NoticeState.PENDING).exists()
    again = batch_create(
        name="Retry", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    assert again.members.count() == 4


def test_moves_are_marked_from_imported_move_requests(client, admin_user, org):
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    MoveRequest.objects.create(mailbox=mailboxes[0], status="Completed")
    MoveRequest.objects.create(mailbox=mailboxes[1], status="Failed")
    MoveRequest.objects.create(mailbox=mailboxes[2], status="InProgress")
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_action", args=[batch.pk, "apply_move_requests"]), follow=True
    )

    assert "1 moved, 1 failed" in response.content.decode()
    states = dict(batch.members.values_list("mailbox_id", "state"))
    assert states[mailboxes[0].pk] == "moved" and states[mailboxes[1].pk] == "failed"
    assert states[mailboxes[2].pk] == "pending"


def test_adding_mailboxes_after_scheduling_plans_them_and_queues_their_notices(
    client, admin_user, org
):
    _ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes[:2], actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    client.force_login(admin_user)

    client.post(
        reverse("migrations_plan:batch_mailboxes_add", args=[batch.pk]),
        {"addresses": "user2@contoso.com\nuser3@contoso.com"},
    )

    assert Notice.objects.filter(batch=batch, state=NoticeState.PENDING).count() == 8
    assert Prediction.objects.filter(member__batch=batch).count() == 2, "planned in the worker"
    batch.refresh_from_db()
    assert batch.plan_state == PlanState.QUEUED
    batch_plan_task(batch.pk)
    assert Prediction.objects.filter(member__batch=batch).count() == 4


def test_device_values_are_escaped_on_the_batch_page(client, helpdesk_user, org):
    _, ex2016, mailboxes = org
    PartnershipFactory(mailbox=mailboxes[0], device__friendly_name="<img src=x onerror=alert(1)>")
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)
    body = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content
    assert b"<img src=x" not in body and b"&lt;img src=x" in body


def test_filters_narrow_the_device_table(client, helpdesk_user, org):
    _, ex2016, mailboxes = org
    quarantined = PartnershipFactory(mailbox=mailboxes[0], access_state="Quarantined")
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)
    body = client.get(
        reverse("migrations_plan:batch_detail", args=[batch.pk]), {"outcome": "blocked"}
    ).content.decode()
    assert quarantined.device.device_id in body
    assert body.count("Remove mailbox") == 0
    assert (
        sum(1 for m in mailboxes[1:] if m.primary_smtp_address in body.split('id="audit-title"')[0])
        == 0
    )


def test_batch_pages_run_a_fixed_number_of_queries(client, admin_user, org):
    ex2010, ex2016, mailboxes = org
    small = batch_create(
        name="Small", target_server=ex2016, start_at=START, mailboxes=mailboxes[:1], actor=None
    )
    more = [MailboxFactory(server=ex2010) for _ in range(30)]
    for mailbox in more:
        PartnershipFactory.create_batch(2, mailbox=mailbox)
    large = batch_create(
        name="Large", target_server=ex2016, start_at=START, mailboxes=more, actor=None
    )
    client.force_login(admin_user)

    def queries(url):
        client.get(url)  # warm the session and permission caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries(reverse("migrations_plan:batch_detail", args=[small.pk])) == queries(
        reverse("migrations_plan:batch_detail", args=[large.pk])
    )
    before = queries(reverse("migrations_plan:batch_list"))
    for n in range(5):
        batch_create(
            name=f"Extra {n}",
            target_server=ex2016,
            start_at=START,
            mailboxes=[MailboxFactory(server=ex2010)],
            actor=None,
        )
    assert queries(reverse("migrations_plan:batch_list")) == before


def test_a_completed_batch_still_shows_its_plan_and_is_not_replanned(
    client, helpdesk_user, admin_user, org
):
    from migrations_plan.selectors import outcome_summary
    from migrations_plan.services import BatchError, batch_mark_moves, batch_plan

    _, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    batch_mark_moves(batch=batch, outcomes={m.pk: "moved" for m in mailboxes}, actor=admin_user)
    batch = batch_transition(batch=batch, action="complete", actor=admin_user)

    assert sum(outcome_summary(batch=batch).values()) == 4
    with pytest.raises(BatchError, match="completed"):
        batch_plan(batch=batch)
    client.force_login(helpdesk_user)
    assert (
        "Continues"
        in client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    )


def test_a_moved_mailbox_keeps_the_prediction_it_was_moved_with(admin_user, org):
    from migrations_plan.services import batch_mark_moves, batch_plan

    _, ex2016, mailboxes = org
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes[:1], actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    batch_mark_moves(batch=batch, outcomes={mailboxes[0].pk: "moved"}, actor=admin_user)
    before = Prediction.objects.get(member__batch=batch).explanation_id
    mailboxes[0].server = ex2016  # a re-import now shows the mailbox on its target
    mailboxes[0].save()

    batch_plan(batch=batch)

    assert Prediction.objects.get(member__batch=batch).explanation_id == before


def test_mailboxes_can_be_chosen_by_the_outcome_their_phones_would_get(client, admin_user, org):
    ex2010, ex2016, mailboxes = org
    PartnershipFactory(mailbox=mailboxes[0], access_state="Quarantined")
    client.force_login(admin_user)

    client.post(
        reverse("migrations_plan:batch_create"),
        create_form(ex2016, source_server=ex2010.pk, device_outcomes=["continues", "full_resync"]),
    )

    batch = MoveBatch.objects.get()
    chosen = set(batch.members.values_list("mailbox__primary_smtp_address", flat=True))
    assert chosen == {"user1@contoso.com", "user2@contoso.com", "user3@contoso.com"}, (
        "user0 has a blocked phone"
    )
