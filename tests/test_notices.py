"""Notices: which ones a batch owes, what each says, and how one is sent exactly once.

Driven one step at a time in this process (the dispatch, then each send), against the
database outbox (pytest-django swaps in the locmem backend: django.core.mail.outbox).
tests/test_notice_delivery_real.py does the same through Redis, a worker and an SMTP server.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from email import message_from_string

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from devices.models import Generation
from migrations_plan import services
from migrations_plan.models import (
    AuditEntry,
    MemberState,
    Notice,
    NoticeKind,
    NoticeState,
    NoticeTemplate,
    Prediction,
)
from migrations_plan.notices import delivery
from migrations_plan.notices.corrections import corrections_queue
from migrations_plan.notices.wording import one_line
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    NamespaceFactory,
    OrganisationFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def lab():
    """Three people moving from Exchange 2003 to a 2007 RTM server (re-partner), one moving
    from 2010 to 2016 behind the same namespace (continues), one from a server of unknown
    version (unknown)."""
    ex2003 = ExchangeServerFactory(
        name="EX2003",
        generation=Generation.EX2003,
        build="6.5.7638.1",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
        eas_external_url="",
    )
    ex2007 = ExchangeServerFactory(
        name="EX2007RTM",
        generation=Generation.EX2007,
        build="8.0.685.25",
        admin_display_version="Version 8.0 (Build 685.25)",
    )
    return {"source": ex2003, "target": ex2007}


def person(server, name: str, *, phones: int = 1, friendly: str = "Kim's iPhone"):
    mailbox = MailboxFactory(
        server=server,
        display_name=name,
        primary_smtp_address=f"{name.split()[0].lower()}@contoso.com",
    )
    for _ in range(phones):
        PartnershipFactory(mailbox=mailbox, device=MobileDeviceFactory(friendly_name=friendly))
    return mailbox


def scheduled(target, mailboxes, *, start=None, leads=(72 * 60, 2 * 60), **extra):
    batch = services.batch_create(
        name=extra.pop("name", "Wave 1"),
        target_server=target,
        start_at=start or timezone.now() + 10 * DAY,
        mailboxes=mailboxes,
        actor=None,
        notice_leads_minutes=list(leads),
        notification_emails=extra.pop("notification_emails", ""),
        **extra,
    )
    return services.batch_transition(batch=batch, action="schedule", actor=None)


def send_due(now=None) -> list[str]:
    """What beat and the worker do: dispatch, then send each id handed out."""
    handed: list[int] = []
    with time_machine.travel(now or timezone.now(), tick=False):
        result = delivery.notices_dispatch(enqueue=handed.extend)
    # on_commit runs at once outside a transaction (the test's atomic block is not one here)
    states = []
    with time_machine.travel(now or timezone.now(), tick=False):
        for notice_id in result.enqueued:
            states.append(delivery.notice_deliver(notice_id=notice_id).state)
    return states


def test_scheduling_queues_one_notice_per_person_and_lead_and_says_how_many(lab):
    people = [person(lab["source"], f"P{n} Person") for n in range(3)]

    batch = scheduled(
        lab["target"], people, leads=(4320, 1440, 120), notification_emails="ops@contoso.com"
    )

    rows = Notice.objects.filter(batch=batch, kind=NoticeKind.BEFORE_MOVE)
    assert rows.count() == 9
    assert sorted({n.lead_minutes for n in rows}) == [120, 1440, 4320]
    assert all(n.due_at == batch.start_at - timedelta(minutes=n.lead_minutes) for n in rows)
    assert batch.notice_counts == {"notices_queued": 9, "reports_queued": 1}
    entry = AuditEntry.objects.get(batch=batch, action="schedule")
    assert entry.detail["notices_queued"] == 9


def test_a_due_notice_names_each_phone_what_happens_and_the_platform_steps(lab):
    kim = person(lab["source"], "Kim Akers", friendly="Kim's <b>iPhone</b>")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start)

    states = send_due(start - timedelta(hours=71))

    assert states == [NoticeState.SENT]
    (email,) = mail.outbox
    assert email.to == ["Kim Akers <kim@contoso.com>"]
    assert email.subject.startswith("Action needed: your mailbox moves on")
    assert "Kim's <b>iPhone</b>" in email.body  # plain text: shown as written
    assert "needs its mail account set up again" in email.body
    assert "After the move: Delete the Exchange account on the iPhone" in email.body
    html = email.alternatives[0][0]
    assert "Kim&#x27;s &lt;b&gt;iPhone&lt;/b&gt;" in html and "<b>iPhone" not in html
    notice = Notice.objects.get(state=NoticeState.SENT)
    assert notice.body_text == email.body and notice.subject == email.subject
    assert email.extra_headers["Message-ID"] == notice.message_id
    assert notice.sent_at is not None and notice.attempts == 1


def test_the_move_time_is_given_in_the_persons_time_zone_else_the_organisations(lab):
    OrganisationFactory(forest="contoso.local", time_zone="Asia/Tokyo")
    lab["source"].forest = "contoso.local"
    lab["source"].save()
    kim = person(lab["source"], "Kim Akers")
    lee = person(lab["source"], "Lee Park")
    lee.time_zone = "America/New_York"
    lee.save()
    start = timezone.now().replace(microsecond=0) + 10 * DAY
    scheduled(lab["target"], [kim, lee], start=start, leads=(60,))

    send_due(start - timedelta(minutes=30))

    by_person = {m.to[0]: m.body for m in mail.outbox}
    tokyo = timezone.localtime(start, timezone=__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    new_york = timezone.localtime(
        start, timezone=__import__("zoneinfo").ZoneInfo("America/New_York")
    )
    assert f"at {tokyo:%H:%M} (Asia/Tokyo)" in by_person["Kim Akers <kim@contoso.com>"]
    assert f"at {new_york:%H:%M} (America/New_York)" in by_person["Lee Park <lee@contoso.com>"]


def test_an_undecided_phone_gets_no_instruction_only_that_it_is_being_checked(lab):
    unknown = ExchangeServerFactory(name="UNK", generation="", build="", admin_display_version="")
    sam = person(unknown, "Sam Lee")
    NamespaceFactory(host="mail.contoso.com", servers=[lab["target"]])
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [sam], start=start, leads=(60,))
    assert Prediction.objects.get().outcome == "unknown"

    send_due(start - timedelta(minutes=30))

    (email,) = mail.outbox
    assert "IT is still checking" in email.body
    assert "After the move:" not in email.body and "Re-create" not in email.body
    assert "Action needed" not in email.subject
    assert Notice.objects.get(state=NoticeState.SENT).undecided == 1


def test_people_whose_phones_all_continue_get_one_short_notice_or_none(lab):
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016])
    ann = person(ex2010, "Ann Beck")
    bob = person(ex2010, "Bob Dell")
    start = timezone.now() + 10 * DAY
    scheduled(ex2016, [ann], start=start, name="Short")
    scheduled(ex2016, [bob], start=start, name="Quiet", notify_unaffected=False)

    first = send_due(start - timedelta(hours=71))
    second = send_due(start - timedelta(hours=1))

    assert sorted(first) == [NoticeState.SENT, NoticeState.SKIPPED]
    assert second == [NoticeState.SKIPPED, NoticeState.SKIPPED]
    (email,) = mail.outbox
    assert email.to == ["Ann Beck <ann@contoso.com>"]
    assert "keep syncing" in email.subject and "nothing for you to do" in email.body
    reasons = set(Notice.objects.filter(state=NoticeState.SKIPPED).values_list("reason", flat=True))
    assert "all phones keep syncing; the short notice went already" in reasons
    assert "all phones keep syncing; this batch sends no notice then" in reasons


def test_when_several_leads_are_due_at_once_only_the_latest_goes(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start)

    states = send_due(start - timedelta(minutes=30))  # both 72 h and 2 h are due

    assert sorted(states) == [NoticeState.SENT, NoticeState.SKIPPED]
    sent = Notice.objects.get(state=NoticeState.SENT)
    assert sent.lead_minutes == 120 and len(mail.outbox) == 1


def test_a_notice_is_claimed_by_one_sender_only(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))
    notice = Notice.objects.get()
    later = start - timedelta(minutes=30)

    with time_machine.travel(later, tick=False):
        assert delivery.notice_claim(notice_id=notice.pk) is not None
        assert delivery.notice_claim(notice_id=notice.pk) is None
        assert delivery.notice_deliver(notice_id=notice.pk).state == "not claimed"
    assert mail.outbox == []


def test_a_notice_not_yet_due_is_not_sent_even_if_its_id_arrives(lab):
    kim = person(lab["source"], "Kim Akers")
    scheduled(lab["target"], [kim], leads=(60,))
    notice = Notice.objects.get()

    assert delivery.notice_deliver(notice_id=notice.pk).state == "not claimed"
    assert Notice.objects.get().state == NoticeState.PENDING


def test_a_claim_nobody_confirmed_is_released_and_sent_once(lab, settings):
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 600
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))
    notice = Notice.objects.get()
    with time_machine.travel(start - timedelta(minutes=50), tick=False):
        delivery.notice_claim(notice_id=notice.pk)  # a worker that died right after

    assert send_due(start - timedelta(minutes=45)) == []  # claim still fresh: left alone
    assert send_due(start - timedelta(minutes=35)) == [NoticeState.SENT]

    notice.refresh_from_db()
    assert notice.attempts == 2 and len(mail.outbox) == 1
    assert send_due(start - timedelta(minutes=20)) == []


def test_two_dispatches_hand_out_each_due_id_once(
    lab, settings, django_capture_on_commit_callbacks
):
    settings.NOTICE_REQUEUE_SECONDS = 300
    people = [person(lab["source"], f"P{n} Person") for n in range(5)]
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], people, start=start, leads=(60,))
    first, second = [], []

    with (
        time_machine.travel(start - timedelta(minutes=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        delivery.notices_dispatch(enqueue=first.extend)
        delivery.notices_dispatch(enqueue=second.extend)
    with time_machine.travel(start - timedelta(minutes=28), tick=False):
        soon_after = delivery.notices_dispatch(enqueue=lambda ids: None).enqueued
    with time_machine.travel(start - timedelta(minutes=24), tick=False):
        lost = delivery.notices_dispatch(enqueue=lambda ids: None).enqueued

    assert len(first) == 5 and second == [] and soon_after == []
    assert sorted(lost) == sorted(first), "ids nobody claimed within 5 minutes were lost"


class RefusingBackend:
    """An SMTP server that answers each send with the next of `answers` (None = accept)."""

    answers: list[Exception | None] = []

    def __init__(self, **kwargs):
        pass

    def open(self):
        return True

    def close(self):
        pass

    def send_messages(self, messages):
        answer = RefusingBackend.answers.pop(0) if RefusingBackend.answers else None
        if answer is not None:
            raise answer
        mail.outbox.extend(messages)
        return len(messages)


@pytest.fixture
def refusing(settings):
    settings.EMAIL_BACKEND = "tests.test_notices.RefusingBackend"
    settings.NOTICE_RETRY_SECONDS = 60
    delivery.connection_reset()
    yield RefusingBackend
    RefusingBackend.answers = []
    delivery.connection_reset()


def test_a_temporary_smtp_failure_is_retried_with_backoff_until_it_goes(lab, refusing):
    refusing.answers = [
        smtplib.SMTPDataError(451, b"4.3.0 try again later"),
        ConnectionRefusedError(111, "Connection refused"),
    ]
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(600,))
    t0 = start - timedelta(minutes=590)

    assert send_due(t0) == [NoticeState.PENDING]
    notice = Notice.objects.get()
    assert "451 4.3.0 try again later" in notice.last_error
    first_wait = (notice.next_try_at - t0).total_seconds()
    assert 50 <= first_wait <= 70
    assert send_due(t0 + timedelta(seconds=30)) == [], "not before its backoff"
    assert send_due(t0 + timedelta(seconds=400)) == [NoticeState.PENDING]
    notice.refresh_from_db()
    assert 100 <= (notice.next_try_at - (t0 + timedelta(seconds=400))).total_seconds() <= 140
    assert send_due(t0 + timedelta(seconds=800)) == [NoticeState.SENT]
    notice.refresh_from_db()
    assert notice.attempts == 3 and notice.last_error == "" and len(mail.outbox) == 1


def test_a_refused_recipient_fails_at_once_and_the_error_is_kept(lab, refusing):
    refusing.answers = [
        smtplib.SMTPRecipientsRefused({"kim@contoso.com": (550, b"5.1.1 user unknown")})
    ]
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))

    assert send_due(start - timedelta(minutes=30)) == [NoticeState.FAILED]
    notice = Notice.objects.get()
    assert "550 5.1.1 user unknown" in notice.last_error and "refused for good" in notice.last_error
    assert notice.body_text, "what it would have said is logged too"


def test_after_the_last_attempt_a_notice_ends_failed(lab, refusing, settings):
    settings.NOTICE_MAX_ATTEMPTS = 2
    refusing.answers = [TimeoutError("timed out"), TimeoutError("timed out")]
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(600,))
    t0 = start - timedelta(minutes=590)

    send_due(t0)
    assert send_due(t0 + timedelta(minutes=10)) == [NoticeState.FAILED]
    assert "gave up after 2 attempts" in Notice.objects.get().last_error


def test_a_hostile_name_cannot_add_a_header_or_break_the_subject(lab):
    kim = person(lab["source"], "Kim\r\nBcc: victim@example.com\u202e")
    kim.display_name = "Kim\r\nBcc: victim@example.com\u202e"
    kim.save()
    NoticeTemplate.objects.create(
        name="before",
        subject="Hello {{ person.name }}",
        body_text="{{ person.name }}",
        body_html="<p>{{ person.name }}</p>",
    )
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))

    send_due(start - timedelta(minutes=30))

    (email,) = mail.outbox
    raw = email.message().as_string()
    parsed = message_from_string(raw)
    assert parsed["Bcc"] is None and "\n" not in email.subject and "\u202e" not in email.subject
    assert email.subject == "Hello Kim Bcc: victim@example.com"
    assert one_line("a\u2028b\x85c\td", 100) == "a b c d"


def test_an_unusable_address_fails_for_good_without_trying(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))
    Notice.objects.update(recipient="kim@contoso.com>, eve@example.com")

    assert send_due(start - timedelta(minutes=30)) == [NoticeState.FAILED]
    assert "not a plain e-mail address" in Notice.objects.get().last_error and not mail.outbox


def test_rescheduling_moves_pending_notices_and_corrects_people_already_told(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    send_due(start - timedelta(hours=71))  # the 72 h notice went, with the old time

    new_start = start + 2 * DAY
    with time_machine.travel(start - timedelta(hours=70), tick=False):
        batch = services.batch_reschedule(
            batch=batch, start_at=new_start, complete_by=None, actor=None
        )
        again = services.batch_reschedule(
            batch=batch, start_at=new_start, complete_by=None, actor=None
        )

    pending = Notice.objects.filter(kind=NoticeKind.BEFORE_MOVE, state=NoticeState.PENDING)
    assert sorted((n.lead_minutes, n.revision, n.due_at) for n in pending) == [
        (120, 0, new_start - timedelta(hours=2)),
        # the 72 h notice went for the old start; the new start gets its own 72 h notice
        (4320, 1, new_start - timedelta(hours=72)),
    ]
    assert batch.notice_counts["corrections_queued"] == 1 and again.notice_counts == {}
    assert send_due(start - timedelta(hours=69)) == [NoticeState.SENT]
    correction = mail.outbox[-1]
    assert correction.subject.startswith("Update: your mailbox move")
    assert "This replaces it" in correction.body
    assert AuditEntry.objects.filter(batch=batch, action="rescheduled").count() == 1


def test_a_changed_plan_after_a_notice_gives_one_correction_and_a_change_back_none(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    send_due(start - timedelta(hours=71))
    # An admin finds the target is on SP1 after all: the plan now says the phone continues.
    target = lab["target"]
    target.build, target.admin_display_version = "8.1.240.6", "Version 8.1 (Build 240.6)"
    target.save()

    with time_machine.travel(start - timedelta(hours=70), tick=False):
        services.batch_plan(batch=batch)
        assert corrections_queue(batch=batch) == 1
        assert corrections_queue(batch=batch) == 0, "one waiting correction is enough"
    assert send_due(start - timedelta(hours=69)) == [NoticeState.SENT]
    assert "This replaces it" in mail.outbox[-1].body
    with time_machine.travel(start - timedelta(hours=68), tick=False):
        assert corrections_queue(batch=batch) == 0, "the person was told what the plan says"

    # The plan changes, and changes back before the correction goes: nothing is sent.
    target.build, target.admin_display_version = "8.0.685.25", "Version 8.0 (Build 685.25)"
    target.save()
    with time_machine.travel(start - timedelta(hours=67), tick=False):
        services.batch_plan(batch=batch)
        corrections_queue(batch=batch)
    target.build, target.admin_display_version = "8.1.240.6", "Version 8.1 (Build 240.6)"
    target.save()
    with time_machine.travel(start - timedelta(hours=66), tick=False):
        services.batch_plan(batch=batch)
    assert send_due(start - timedelta(hours=65)) == [NoticeState.SKIPPED]
    assert len(mail.outbox) == 2


def test_removing_a_person_withdraws_theirs_and_tells_them_if_they_were_told(lab):
    kim = person(lab["source"], "Kim Akers")
    lee = person(lab["source"], "Lee Park")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim, lee], start=start)
    send_due(start - timedelta(hours=71))

    with time_machine.travel(start - timedelta(hours=70), tick=False):
        services.batch_remove_mailboxes(batch=batch, mailbox_ids=[kim.pk], actor=None)

    kims = Notice.objects.filter(mailbox=kim)
    assert kims.get(kind=NoticeKind.BEFORE_MOVE, lead_minutes=120).state == NoticeState.CANCELLED
    assert send_due(start - timedelta(hours=69)) == [NoticeState.SENT]
    assert mail.outbox[-1].to == ["Kim Akers <kim@contoso.com>"]
    assert mail.outbox[-1].subject.startswith("Cancelled:")
    assert Notice.objects.filter(mailbox=lee, state=NoticeState.PENDING).count() == 1


def test_cancelling_a_batch_withdraws_pending_notices(lab):
    kim = person(lab["source"], "Kim Akers")
    batch = scheduled(lab["target"], [kim])

    batch = services.batch_transition(batch=batch, action="cancel", actor=None)

    assert not Notice.objects.filter(state=NoticeState.PENDING).exists()
    assert batch.notice_counts["notices_withdrawn"] == 2
    assert set(Notice.objects.values_list("reason", flat=True)) == {"the batch was cancelled"}


def test_after_the_move_each_person_is_told_what_to_do_now(lab):
    kim = person(lab["source"], "Kim Akers")
    batch = scheduled(lab["target"], [kim], notification_emails="ops@contoso.com, lead@contoso.com")

    counts = services.batch_mark_moves(
        batch=batch, outcomes={kim.pk: MemberState.MOVED}, actor=None
    )
    send_due()

    assert counts["after_notices"] == 1
    sent = set(Notice.objects.filter(state=NoticeState.SENT).values_list("recipient", "kind"))
    assert sent == {
        ("kim@contoso.com", NoticeKind.AFTER_MOVE),
        ("ops@contoso.com", NoticeKind.REPORT_SCHEDULED),
        ("ops@contoso.com", NoticeKind.REPORT_STARTED),
        ("lead@contoso.com", NoticeKind.REPORT_SCHEDULED),
        ("lead@contoso.com", NoticeKind.REPORT_STARTED),
    }
    after = next(m for m in mail.outbox if m.to == ["Kim Akers <kim@contoso.com>"])
    assert "has moved" in after.body and "Now:" in after.body
    assert Notice.objects.get(kind=NoticeKind.BEFORE_MOVE, lead_minutes=120).state == (
        NoticeState.CANCELLED
    ), "a notice before the move is not sent once it started"


def test_reports_count_outcomes_list_blocked_phones_and_attach_the_people_to_act(lab):
    people = [person(lab["source"], f"P{n} Person", friendly="=HYPERLINK(1)") for n in range(3)]
    batch = scheduled(lab["target"], people, notification_emails="ops@contoso.com; ops@contoso.com")

    send_due(timezone.now())

    (report,) = [m for m in mail.outbox if m.to == ["ops@contoso.com"]]
    assert report.subject == "exsync: batch Wave 1 was scheduled: 3 of 3 people need action"
    assert "Re-partner: 3 phones of 3 people" in report.body
    (name, content, mimetype) = report.attachments[0]
    assert name == "exsync-Wave-1-people-to-act.csv" and mimetype == "text/csv"
    lines = content.lstrip("\ufeff").splitlines()
    assert len(lines) == 4 and "'=HYPERLINK(1)" in lines[1]
    assert Notice.objects.filter(batch=batch, kind=NoticeKind.REPORT_SCHEDULED).count() == 1


def test_resending_makes_one_new_message_even_on_a_double_click(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))
    send_due(start - timedelta(minutes=30))
    sent = Notice.objects.get(state=NoticeState.SENT)

    with time_machine.travel(start - timedelta(minutes=20), tick=False):
        first = services.notice_resend(notice=sent, expected_revision=0, actor=None)
        second = services.notice_resend(notice=sent, expected_revision=0, actor=None)
    assert first.pk == second.pk and first.revision == 1
    assert send_due(start - timedelta(minutes=19)) == [NoticeState.SENT]
    assert (
        len(mail.outbox) == 2
        and mail.outbox[0].extra_headers["Message-ID"]
        != (mail.outbox[1].extra_headers["Message-ID"])
    )


def test_a_notice_waits_while_its_batch_is_being_planned(lab):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start, leads=(60,))
    type(batch).objects.filter(pk=batch.pk).update(plan_state="running")

    assert send_due(start - timedelta(minutes=30)) == [NoticeState.PENDING]
    notice = Notice.objects.get()
    assert notice.attempts == 0 and notice.reason == "waiting for the batch's plan to finish"
    assert mail.outbox == []


def test_create_batch_takes_any_lead_times_and_the_short_notice_switch(lab, tmp_path):
    from django.core.management import CommandError, call_command

    from migrations_plan.models import MoveBatch

    kim = person(lab["source"], "Kim Akers")
    csv = tmp_path / "batch.csv"
    csv.write_text(f"EmailAddress\n{kim.primary_smtp_address}\n")
    start = (timezone.now() + 10 * DAY).isoformat()
    common = ["--target-server", "EX2007RTM", "--start", start, "--mailboxes-csv", str(csv)]

    with pytest.raises(CommandError, match="--notice-hours: 'soon' is not a number of hours"):
        call_command("create_batch", "Bad", *common, "--notice-hours", "72,soon")
    call_command(
        "create_batch", "Wave 9", *common, "--notice-hours", "48, 1.5, 48", "--no-short-notice"
    )

    batch = MoveBatch.objects.get(name="Wave 9")
    assert batch.notice_leads_minutes == [2880, 90] and batch.notify_unaffected is False
    assert not MoveBatch.objects.filter(name="Bad").exists()


def test_sending_a_notice_costs_six_queries_or_fewer_however_many_phones(lab):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    one = person(lab["source"], "Ann Beck", phones=1)
    four = person(lab["source"], "Bob Dell", phones=4)
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [one, four], start=start, leads=(60,))

    counts = []
    with time_machine.travel(start - timedelta(minutes=30), tick=False):
        ids = delivery.notices_dispatch(enqueue=lambda ids: None).enqueued
        for notice_id in ids:
            with CaptureQueriesContext(connection) as queries:
                delivery.notice_deliver(notice_id=notice_id)
            # a PREPARE runs once per connection (exsync.setsql.planned)
            counts.append(sum(not q["sql"].startswith("PREPARE ") for q in queries))
    # claim, the notice with batch/person/server (one statement on PostgreSQL:
    # notices/claiming.py), phones, predictions, the ending, and whether the batch changed
    # meanwhile (one round trip with the ending on PostgreSQL); the first also reads the
    # wordings and the steps, which stay a few seconds per process (exsync/process_cache.py)
    fewer = 2 if connection.vendor == "postgresql" else 0
    assert counts == [8 - fewer, 6 - fewer]
    assert [len(m.body.split("* ")) - 1 for m in mail.outbox] in ([1, 4], [4, 1])


def test_an_edited_wording_cannot_reach_files_or_the_context_and_fails_for_good(lab):
    from migrations_plan.notices.wording import check_source

    assert check_source("body_text", "{% include 'base.html' %}") == (
        "line 1: {% include %} is not allowed in a notice's wording"
    )
    assert "not allowed" in check_source("body_html", "Hi\n{% debug %}")
    assert "Invalid block tag" in check_source("subject", "{% frobnicate %}")
    assert "|safe is not allowed" in check_source("body_html", "<p>{{ person.name|safe }}</p>")
    assert "autoescape %} is not allowed" in check_source(
        "body_html", "{% autoescape off %}{{ x }}{% endautoescape %}"
    )
    assert check_source("body_text", "{% for p in phones %}{{ p.name }}{% endfor %}") is None
    NoticeTemplate.objects.create(
        name="before", subject="Hi", body_text="{% load static %}", body_html="<p>Hi</p>"
    )
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))

    assert send_due(start - timedelta(minutes=30)) == [NoticeState.FAILED]
    assert "{% load %} is not allowed" in Notice.objects.get().last_error and not mail.outbox


def test_a_phone_name_with_line_breaks_stays_one_line_in_the_plain_text(lab):
    kim = person(lab["source"], "Kim Akers", friendly="Kim\r\n\r\nIT: reply with your password")
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], [kim], start=start, leads=(60,))

    send_due(start - timedelta(minutes=30))

    (email,) = mail.outbox
    assert "* Kim IT: reply with your password (iPhone15C2): needs" in email.body
    assert "\nIT: reply" not in email.body


def test_cancelling_after_some_moved_tells_only_those_still_waiting(lab):
    kim = person(lab["source"], "Kim Akers")
    lee = person(lab["source"], "Lee Park")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim, lee], start=start)
    send_due(start - timedelta(hours=71))
    with time_machine.travel(start - timedelta(hours=70), tick=False):
        services.batch_mark_moves(batch=batch, outcomes={kim.pk: MemberState.MOVED}, actor=None)
        services.batch_transition(batch=batch, action="cancel", actor=None)

    send_due(start - timedelta(hours=69))

    cancelled = [m.to for m in mail.outbox if m.subject.startswith("Cancelled:")]
    assert cancelled == [["Lee Park <lee@contoso.com>"]]
    assert Notice.objects.get(mailbox=kim, kind=NoticeKind.AFTER_MOVE).state == NoticeState.SENT


def test_completing_a_batch_keeps_after_move_notices_and_reports_that_have_not_gone_yet(lab):
    kim = person(lab["source"], "Kim Akers")
    batch = scheduled(lab["target"], [kim], notification_emails="ops@contoso.com")
    services.batch_mark_moves(batch=batch, outcomes={kim.pk: MemberState.MOVED}, actor=None)

    batch = services.batch_transition(batch=batch, action="complete", actor=None)
    send_due()

    sent = set(Notice.objects.filter(state=NoticeState.SENT).values_list("kind", flat=True))
    assert {"after", "report_scheduled", "report_started", "report_completed"} <= sent
    assert not Notice.objects.filter(kind=NoticeKind.BEFORE_MOVE, state=NoticeState.PENDING)


def test_the_same_start_typed_in_another_time_zone_is_no_reschedule(lab):
    from zoneinfo import ZoneInfo

    kim = person(lab["source"], "Kim Akers")
    start = timezone.now().replace(microsecond=0) + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    send_due(start - timedelta(hours=71))

    same = services.batch_reschedule(
        batch=batch,
        start_at=start.astimezone(ZoneInfo("Europe/Berlin")),
        complete_by=None,
        actor=None,
    )

    assert same.notice_counts == {}
    assert not AuditEntry.objects.filter(batch=batch, action="rescheduled").exists()
    assert not Notice.objects.filter(kind=NoticeKind.CORRECTION).exists()


class ReschedulingBackend(RefusingBackend):
    """An SMTP server slow enough that the admin moves the batch while a notice is sent."""

    batch_id: int = 0
    new_start = None

    def send_messages(self, messages):
        from migrations_plan.models import MoveBatch

        batch = MoveBatch.objects.get(pk=ReschedulingBackend.batch_id)
        if batch.start_at != ReschedulingBackend.new_start:
            services.batch_reschedule(
                batch=batch, start_at=ReschedulingBackend.new_start, complete_by=None, actor=None
            )
        return super().send_messages(messages)


def test_a_reschedule_while_a_notice_is_on_its_way_still_gets_its_correction(lab, settings):
    settings.EMAIL_BACKEND = "tests.test_notices.ReschedulingBackend"
    delivery.connection_reset()
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start, leads=(4320,))
    ReschedulingBackend.batch_id, ReschedulingBackend.new_start = batch.pk, start + 7 * DAY

    send_due(start - timedelta(hours=71))  # sends the old time; the reschedule lands meanwhile
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    delivery.connection_reset()
    send_due(start - timedelta(hours=70))

    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 2 and subjects[1].startswith("Update: your mailbox move")


def test_the_send_rate_is_kept_by_handing_out_no_more_than_it_allows(lab, settings):
    settings.NOTICE_RATE_PER_MINUTE = 3
    people = [person(lab["source"], f"P{n} Person") for n in range(5)]
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], people, start=start, leads=(60,))
    t0 = start - timedelta(minutes=30)

    assert len(send_due(t0)) == 3
    assert send_due(t0 + timedelta(seconds=30)) == [], "three went in the last minute"
    assert len(send_due(t0 + timedelta(seconds=61))) == 2


def test_ids_are_not_handed_out_again_while_workers_are_still_claiming(lab, settings):
    people = [person(lab["source"], f"P{n} Person") for n in range(3)]
    start = timezone.now() + 10 * DAY
    scheduled(lab["target"], people, start=start, leads=(60,))
    t0 = start - timedelta(minutes=50)
    with time_machine.travel(t0, tick=False):
        first = delivery.notices_dispatch(enqueue=lambda ids: None).enqueued
    with time_machine.travel(t0 + timedelta(minutes=6), tick=False):
        delivery.notice_deliver(notice_id=first[0])  # a worker busy with a backlog
    with time_machine.travel(t0 + timedelta(minutes=7), tick=False):
        assert delivery.notices_dispatch(enqueue=lambda ids: None).enqueued == []
    with time_machine.travel(t0 + timedelta(minutes=12), tick=False):
        assert sorted(delivery.notices_dispatch(enqueue=lambda ids: None).enqueued) == sorted(
            first[1:]
        ), "no claim for five minutes: the rest was lost"
