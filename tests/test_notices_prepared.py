"""Before-move notices rendered ahead (migrations_plan/notices/prepared.py): sent word for word
as if rendered at send time, cheaper to send, and never once anything they were made from
changed."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parseaddr

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from helpdesk.models import Action, Instruction
from helpdesk.platforms import IOS_MAIL
from helpdesk.selectors import INSTRUCTIONS
from migrations_plan import services
from migrations_plan.models import Notice, NoticeKind, NoticeState, NoticeTemplate, PlanState
from migrations_plan.notices import claiming, delivery
from migrations_plan.notices import message as messages
from migrations_plan.notices.content import ORGANISATION_ZONES
from migrations_plan.notices.prepared import notices_prepare
from migrations_plan.notices.wording import OVERRIDES, default_source
from tests import test_notices
from tests.smtp_sink import SmtpSink
from tests.test_notices import person, scheduled, send_due

pytestmark = pytest.mark.django_db
lab = test_notices.lab  # the same people and servers
DAY = timedelta(days=1)


def due_notice(batch) -> Notice:
    return Notice.objects.filter(batch=batch, kind=NoticeKind.BEFORE_MOVE).order_by(
        "-lead_minutes"
    )[0]


def rendered_now(notice: Notice) -> delivery.Send:
    """What the sender renders itself, with the rendering made ahead out of the way."""
    Notice.objects.filter(pk=notice.pk).update(prepared=None, prepared_key="")
    decision = delivery.notice_preview(delivery.notice_load(notice.pk))
    assert isinstance(decision, delivery.Send)
    return decision


def test_a_notice_rendered_ahead_is_sent_word_for_word_in_four_queries_or_fewer(lab):
    kim = person(lab["source"], "Kim Akers", friendly="Kim's <b>iPhone</b>", phones=2)
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)

    assert notices_prepare(batch_id=batch.pk) == 2  # both lead times
    notice = due_notice(batch)
    assert notice.prepared_key and notice.prepared["rendered"]["full"]["body_text"]
    with time_machine.travel(start - timedelta(hours=71), tick=False):
        delivery.notices_dispatch(enqueue=lambda ids: None)
        # warm the per-process caches of wordings and instructions, as a running worker has
        delivery.notice_preview(delivery.notice_load(notice.pk))
        with CaptureQueriesContext(connection) as queries:
            assert delivery.notice_deliver(notice_id=notice.pk).state == NoticeState.SENT

    # claim, the notice with its batch and person (one statement on PostgreSQL), the ending,
    # whether the batch changed meanwhile (one round trip with the ending on PostgreSQL):
    # nothing about phones, plans or wordings. On PostgreSQL each is a statement prepared
    # once per connection (setsql.planned).
    expected = 2 if connection.vendor == "postgresql" else 4
    run = [q["sql"] for q in queries if not q["sql"].startswith("PREPARE ")]
    assert len(run) == expected, run
    (email,) = mail.outbox
    sent = Notice.objects.get(pk=notice.pk)
    assert sent.body_text == email.body
    assert (
        "Kim's <b>iPhone</b>" in email.body and "needs its mail account set up again" in email.body
    )
    with time_machine.travel(start - timedelta(hours=71), tick=False):
        Notice.objects.filter(pk=notice.pk).update(state=NoticeState.PENDING)
        fresh = rendered_now(notice)
    assert (fresh.rendered.subject, fresh.rendered.body_text, fresh.rendered.body_html) == (
        sent.subject,
        sent.body_text,
        sent.body_html,
    )
    assert fresh.digest == sent.said_digest


def test_preparing_again_writes_nothing_and_a_batch_being_planned_is_left_for_later(lab):
    people = [person(lab["source"], f"P{n} Person") for n in range(3)]
    batch = scheduled(lab["target"], people, leads=(60,))

    assert notices_prepare(batch_id=batch.pk) == 3
    assert notices_prepare(batch_id=batch.pk) == 0

    batch.plan_state = PlanState.QUEUED
    batch.save(update_fields=["plan_state"])
    Notice.objects.update(prepared_key="")
    assert notices_prepare(batch_id=batch.pk) == 0


def test_preparing_costs_the_same_queries_for_3_or_30_people(lab):
    def queries_for(count: int, name: str) -> int:
        people = [person(lab["source"], f"{name}{n} Person") for n in range(count)]
        batch = scheduled(lab["target"], people, leads=(60,), name=name)
        for cache in (OVERRIDES, INSTRUCTIONS, ORGANISATION_ZONES):
            cache.clear()  # each count includes reading them once
        with CaptureQueriesContext(connection) as queries:
            assert notices_prepare(batch_id=batch.pk) == count
        return len(queries)

    assert queries_for(3, "Small") == queries_for(30, "Large")


@pytest.mark.parametrize(
    "change",
    [
        "re-planned with the target on SP1",
        "rescheduled",
        "the person's name",
        "the person's time zone",
        "the admins' wording",
        "the helpdesk's steps",
    ],
)
def test_a_rendering_made_before_a_change_is_not_sent(lab, change):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now().replace(microsecond=0) + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notices_prepare(batch_id=batch.pk)
    said_ahead = due_notice(batch).prepared["rendered"]["full"]["body_text"]

    if change == "re-planned with the target on SP1":
        target = lab["target"]
        target.build, target.admin_display_version = "8.1.240.6", "Version 8.1 (Build 240.6)"
        target.save()
        services.batch_plan(batch=batch)
        expected = "Your phones keep syncing mail through the move"
    elif change == "rescheduled":
        start = start + DAY
        services.batch_reschedule(batch=batch, start_at=start, complete_by=None, actor=None)
        expected = f"{start.astimezone(timezone.get_current_timezone()).day} "
    elif change == "the person's name":
        kim.display_name = "Kim Akers-Lind"
        kim.save()
        expected = "Kim Akers-Lind"
    elif change == "the person's time zone":
        kim.time_zone = "Pacific/Auckland"
        kim.save()
        expected = "(Pacific/Auckland)"
    elif change == "the admins' wording":
        source = default_source("before")
        NoticeTemplate.objects.create(
            name="before", **{**source, "body_text": "Edited wording.\n" + source["body_text"]}
        )
        expected = "Edited wording."
    else:
        for action in Action:  # the shipped texts may have been flushed by an earlier test
            Instruction.objects.update_or_create(
                platform=IOS_MAIL,
                action=action,
                defaults={"title": "Remove the old account first", "body": "Settings > Mail"},
            )
        INSTRUCTIONS.clear()  # what the 5 s of the cache do in a worker
        expected = "Remove the old account first"

    send_due(start - timedelta(hours=71))

    body = mail.outbox[-1].body
    assert expected in body and body != said_ahead


def test_claiming_reads_the_same_rows_select_related_would_and_only_once(lab):
    lab["source"].forest = "contoso.local"
    lab["source"].save()
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notices_prepare(batch_id=batch.pk)
    notice = due_notice(batch)
    now = start - timedelta(hours=71)

    claimed = claiming.notice_claim_load(notice_id=notice.pk, now=now)

    assert claiming.notice_claim_load(notice_id=notice.pk, now=now) is None, "claimed once"
    loaded = claiming.notice_load(notice.pk)
    pairs = [
        (claimed, loaded),
        (claimed.batch, loaded.batch),
        (claimed.member, loaded.member),
        (claimed.member.mailbox, loaded.member.mailbox),
        (claimed.member.mailbox.server, loaded.member.mailbox.server),
    ]
    for mine, theirs in pairs:
        fields = [f.attname for f in type(theirs)._meta.concrete_fields]
        assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert claimed.state == NoticeState.SENDING and claimed.claimed_at == now
    assert claimed.attempts == 1 and isinstance(claimed.prepared, dict)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_that_waited_for_a_reschedule_reads_the_new_start(lab):
    import threading

    kim = person(lab["source"], "Kim Akers")
    start = timezone.now().replace(microsecond=0) + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notice = due_notice(batch)  # the 72 h one
    earlier = start - timedelta(hours=1)
    # Due under both starts: the claim passes on the old row, waits for the reschedule's lock,
    # and goes on with the row the reschedule committed.
    claim_at = start - timedelta(hours=71)
    updated, claiming_started = threading.Event(), threading.Event()
    claimed: list = []

    def reschedule() -> None:
        try:
            with transaction.atomic():
                services.batch_reschedule(
                    batch=batch, start_at=earlier, complete_by=None, actor=None
                )
                updated.set()
                claiming_started.wait(10)
                time.sleep(0.5)  # the claim is waiting on the notice's row lock by now
        finally:
            connection.close()

    def claim() -> None:
        try:
            updated.wait(10)
            claiming_started.set()
            claimed.append(claiming.notice_claim_load(notice_id=notice.pk, now=claim_at))
        finally:
            connection.close()

    threads = [threading.Thread(target=reschedule), threading.Thread(target=claim)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    (got,) = claimed
    row = Notice.objects.get(pk=notice.pk)
    assert got is not None, (row.state, row.due_at, claim_at, row.lead_minutes)
    assert got.state == NoticeState.SENDING
    assert got.batch.start_at == earlier, "the start the reschedule committed, not the old one"


# --- the e-mail made ahead (notices/message.py) ------------------------------------------


def mime_as_read(data: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """An e-mail's headers (but Date and the multipart boundary) and its parts, as a receiving
    system reads them: two builds of one e-mail differ only in their boundaries and dates."""
    import email
    from email import policy

    parsed = email.message_from_bytes(data, policy=policy.default)
    headers = [(k, str(v)) for k, v in parsed.items() if k not in ("Date", "Content-Type")]
    parts = [
        (part.get_content_type(), part.get_content())
        for part in parsed.walk()
        if not part.is_multipart()
    ]
    return headers, parts


def test_the_email_made_ahead_is_the_one_the_sender_would_build(lab, settings):
    settings.NOTICE_REPLY_TO = ["helpdesk@contoso.com"]
    kim = person(lab["source"], 'Kim Åkers, "IT"', friendly="Kim's <b>iPhone</b>")
    batch = scheduled(lab["target"], [kim], start=timezone.now() + 10 * DAY)
    notices_prepare(batch_id=batch.pk)
    notice = delivery.notice_load(due_notice(batch).pk)
    decision = delivery.notice_preview(notice)
    ahead = messages.stored_ahead(notice)
    # As Django's SMTP backend hands them to smtplib, which sends only the address part.
    assert ahead is not None and [parseaddr(a)[1] for a in ahead.recipients] == [notice.recipient]
    assert parseaddr(ahead.sender)[1] == parseaddr(settings.NOTICE_FROM_EMAIL)[1]

    built = messages.build(notice, decision.rendered, display_name=decision.display_name)
    fresh = built.message()
    assert isinstance(built, EmailMultiAlternatives) and "Date" in fresh
    del fresh["Date"]
    assert mime_as_read(ahead.mime) == mime_as_read(fresh.as_bytes(linesep="\r\n"))

    sent = messages.build(
        notice, decision.rendered, display_name=decision.display_name, ahead=ahead
    )
    assert isinstance(sent, messages.PreparedEmail)
    dated = sent.dated()
    assert dated.startswith(b"Date: ") and dated.endswith(ahead.mime)
    assert (sent.subject, sent.body, sent.to) == (built.subject, built.body, built.to)


@pytest.mark.parametrize(
    "change",
    [
        {"NOTICE_FROM_EMAIL": "moves@fabrikam.com"},
        {"NOTICE_REPLY_TO": ["desk@contoso.com"]},
        {"NOTICE_MESSAGE_ID_DOMAIN": "mail.contoso.com"},
    ],
)
def test_an_email_made_ahead_is_not_sent_once_what_it_was_made_from_changed(lab, change):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notices_prepare(batch_id=batch.pk)
    notice = delivery.notice_load(due_notice(batch).pk)
    decision = delivery.notice_preview(notice)
    with override_settings(**change):
        rebuilt = messages.build(
            notice,
            decision.rendered,
            display_name=decision.display_name,
            ahead=messages.stored_ahead(notice),
        )
        assert not isinstance(rebuilt, messages.PreparedEmail)
        with time_machine.travel(start - timedelta(hours=71), tick=False):
            delivery.notices_dispatch(enqueue=lambda ids: None)
            assert delivery.notice_deliver(notice_id=notice.pk).state == NoticeState.SENT
        (email,) = mail.outbox
        headers = email.message()
        for setting, value in change.items():
            said = {
                "NOTICE_FROM_EMAIL": email.from_email,
                "NOTICE_REPLY_TO": email.reply_to,
                "NOTICE_MESSAGE_ID_DOMAIN": headers["Message-ID"].split("@")[1].rstrip(">"),
            }[setting]
            assert said == value


def test_an_email_made_ahead_reaches_an_smtp_server_whole_and_dated(lab, settings, tmp_path):
    kim = person(lab["source"], "Kim Akers", friendly="Kim's <b>iPhone</b>")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notices_prepare(batch_id=batch.pk)
    notice = due_notice(batch)
    with SmtpSink(tmp_path / "sink") as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        delivery.connection_reset()  # this thread's connection so far went to the test outbox
        try:
            with time_machine.travel(start - timedelta(hours=71), tick=False):
                delivery.notices_dispatch(enqueue=lambda ids: None)
                assert delivery.notice_deliver(notice_id=notice.pk).state == NoticeState.SENT
        finally:
            delivery.connection_reset()
        (received,) = sink.messages()
    sent = Notice.objects.get(pk=notice.pk)
    assert received["message_id"] == sent.message_id == messages.message_id(sent)
    assert received["rcpt"] == [sent.recipient] and received["to"].endswith(f"<{sent.recipient}>")
    assert received["subject"] == sent.subject
    assert received["body"].strip() == sent.body_text.strip()
    assert "Kim's <b>iPhone</b>" in received["body"]
    assert received["date"], "dated when it was sent"
    # The very e-mail made ahead (a build at send time draws a boundary of its own).
    assert received["boundary"] == boundary(messages.stored_ahead(notice).mime)


def boundary(mime: bytes) -> str:
    import email

    return email.message_from_bytes(mime).get_boundary()


def test_an_email_made_ahead_goes_through_any_backend_as_a_fresh_build(lab, settings, capsys):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notices_prepare(batch_id=batch.pk)
    notice = due_notice(batch)
    delivery.connection_reset()
    try:
        with time_machine.travel(start - timedelta(hours=71), tick=False):
            delivery.notices_dispatch(enqueue=lambda ids: None)
            assert delivery.notice_deliver(notice_id=notice.pk).state == NoticeState.SENT
    finally:
        delivery.connection_reset()
    written = capsys.readouterr().out
    sent = Notice.objects.get(pk=notice.pk)
    assert f"Message-ID: {sent.message_id}" in written and "Date: " in written


def test_a_send_whose_claim_is_too_old_gives_the_notice_back_unsent(lab, settings):
    kim = person(lab["source"], "Kim Akers")
    start = timezone.now() + 10 * DAY
    batch = scheduled(lab["target"], [kim], start=start)
    notice = due_notice(batch)
    # Any time spent deciding is then past half the claim's timeout.
    settings.NOTICE_CLAIM_TIMEOUT_SECONDS = 0
    with time_machine.travel(start - timedelta(hours=71), tick=True):
        delivery.notices_dispatch(enqueue=lambda ids: None)
        result = delivery.notice_deliver(notice_id=notice.pk)
    assert result.state == NoticeState.PENDING and result.retry_in == 1
    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == (NoticeState.PENDING, 0)
    assert notice.reason == "it took too long to prepare"
    assert mail.outbox == []
