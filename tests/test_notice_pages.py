"""The notice pages: lead times on the create form, the forecast before scheduling, previews,
the notice log and one notice with its resend button, and the template editor."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from migrations_plan.models import (
    AuditEntry,
    BatchState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
    NoticeTemplate,
)
from migrations_plan.notices.wording import default_source
from migrations_plan.services import batch_create, batch_transition
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
START = (timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
XSS_NAME = "<script>alert(1)</script>\r\nBcc: evil@example.test"


@pytest.fixture
def people():
    """Three people moving to EX2016A: Rita's phone must be set up again (her mailbox is in
    another forest), Carl's keeps syncing, and nobody knows what Uma's server is (unknown)."""
    ex2016 = ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True, forest="contoso.local")
    fabrikam = ExchangeServerFactory(name="EXFAB", forest="fabrikam.local")
    unknown = ExchangeServerFactory(name="EXOLD", generation="", build="", admin_display_version="")
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016])
    rita = MailboxFactory(
        server=fabrikam, display_name="Rita Repartner", primary_smtp_address="rita@contoso.com"
    )
    carl = MailboxFactory(
        server=ex2010, display_name="Carl Continues", primary_smtp_address="carl@contoso.com"
    )
    uma = MailboxFactory(
        server=unknown, display_name="Uma Undecided", primary_smtp_address="uma@contoso.com"
    )
    PartnershipFactory(mailbox=rita, device__friendly_name="Rita's iPhone")
    PartnershipFactory(mailbox=carl, device__friendly_name="Carl's Pixel")
    PartnershipFactory(mailbox=uma, device__friendly_name="Uma's tablet")
    return ex2016, {"rita": rita, "carl": carl, "uma": uma}


def wave(people, **extra) -> MoveBatch:
    target, mailboxes = people
    return batch_create(
        name=extra.pop("name", "Wave"),
        target_server=target,
        start_at=START,
        mailboxes=list(mailboxes.values()),
        notification_emails="ops@contoso.com",
        actor=None,
        **extra,
    )


def preview(client, batch, mailbox=None, **query):
    params = {"kind": "before", **query}
    if mailbox is not None:
        params["mailbox"] = mailbox.pk
        params.setdefault("lead", 72 * 60)
    return client.get(reverse("migrations_plan:notice_preview", args=[batch.pk]), params)


def srcdoc(page: str) -> str:
    """The notice's HTML as the sandboxed frame gets it (the attribute value, unescaped once)."""
    match = re.search(r'<iframe class="mail-html" sandbox srcdoc="([^"]*)"', page)
    assert match, "the HTML part is in a sandboxed frame"
    return html.unescape(match.group(1))


# --- the create form ---------------------------------------------------------------------


def create_form(target, source, **extra):
    return {
        "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
        "name": "Wave 1",
        "target_server": target.pk,
        "start_at": START.strftime("%Y-%m-%dT%H:%M"),
        "notice_leads": "72, 2",
        "notify_unaffected": "on",
        "source_server": source.pk,
        **extra,
    }


def test_the_create_form_takes_any_number_of_lead_times_and_the_short_notice_switch(
    client, admin_user
):
    target = ExchangeServerFactory(name="EX2016A")
    source = ExchangeServerFactory(name="EX2010A", ex2010=True)
    MailboxFactory(server=source)
    client.force_login(admin_user)

    form = client.get(reverse("migrations_plan:batch_create")).content.decode()
    assert "Notify people (hours before the start)" in form and 'value="72, 2"' in form
    assert "People whose phones all keep syncing get one short notice" in form

    response = client.post(
        reverse("migrations_plan:batch_create"),
        {
            **create_form(target, source, notice_leads="24; 72, 2 1.5"),
            "notify_unaffected": "",
        },
    )

    assert response.status_code == 302
    batch = MoveBatch.objects.get()
    assert batch.notice_leads_minutes == [72 * 60, 24 * 60, 2 * 60, 90]
    assert batch.notify_unaffected is False


@pytest.mark.parametrize(
    ("leads", "error"),
    [
        ("72, soon", "“soon” is not a number of hours."),
        ("72, 0", "“0” cannot be a lead time"),
        ("2000", "“2000” cannot be a lead time: give hours above 0 and at most 1440"),
        ("", "Give at least one lead time"),
    ],
)
def test_a_bad_lead_time_is_named_and_no_batch_is_created(client, admin_user, leads, error):
    target = ExchangeServerFactory(name="EX2016A")
    source = ExchangeServerFactory(name="EX2010A", ex2010=True)
    MailboxFactory(server=source)
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_create"), create_form(target, source, notice_leads=leads)
    )

    assert response.status_code == 200
    assert html.escape(error, quote=False) in response.content.decode().replace("&#x27;", "'")
    assert not MoveBatch.objects.exists()


# --- the forecast and scheduling -----------------------------------------------------------


def test_a_draft_shows_what_scheduling_would_send_and_what_would_decide_the_undecided(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()

    # Rita and Uma get one at each of the two lead times, Carl one short notice.
    assert (
        "Scheduling queues <strong>5</strong> notices to <strong>3</strong> people at 72 h and "
        "2 h before the start; <strong>1</strong> person has <strong>1</strong> phone that is "
        "undecided: they are told IT is checking"
    ) in page
    assert "1 person whose phones all keep syncing: one short notice (72 h before)" in page
    assert "1 recipient (ops@contoso.com) gets one at scheduling" in page
    panel = page.split('id="notices-title"')[1].split("</section>")[0]
    assert "A server&#x27;s Exchange version</strong>" in panel and "— EXOLD" in panel
    assert "(decides 1 device)" in panel


def test_without_the_short_notice_people_whose_phones_keep_syncing_are_not_counted(
    client, admin_user, people
):
    batch = wave(people, notify_unaffected=False)
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()

    assert "Scheduling queues <strong>4</strong> notices to <strong>2</strong> people" in page
    assert "no notice (switched off for this batch)" in page


def test_scheduling_says_how_many_notices_and_reports_it_queued(client, admin_user, people):
    batch = wave(people)
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_action", args=[batch.pk, "schedule"]), follow=True
    )

    page = response.content.decode()
    assert "Batch &#x27;Wave&#x27; is now scheduled. 6 notices queued, 1 report queued." in page
    assert Notice.objects.filter(batch=batch, kind=NoticeKind.BEFORE_MOVE).count() == 6
    panel = page.split('id="notices-title"')[1].split("</section>")[0]
    assert "Before the move" in panel and "Scheduling queues" not in panel


def reschedule(client, batch, start, leads):
    return client.post(
        reverse("migrations_plan:batch_reschedule", args=[batch.pk]),
        {
            "start_at": timezone.localtime(start).strftime("%Y-%m-%dT%H:%M"),
            "notice_leads": leads,
            "notify_unaffected": "on",
        },
        follow=True,
    )


def test_rescheduling_moves_pending_notices_and_says_what_it_did(client, admin_user, people):
    batch = wave(people)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    client.force_login(admin_user)
    later = START + timedelta(days=1)

    page = reschedule(client, batch, later, "48, 2").content.decode()

    assert "starts" in page and "notices 48 h, 2 h before" in page
    assert "3 pending notices withdrawn, 6 pending notices moved to the new time" in page
    kept = Notice.objects.filter(
        batch=batch, kind="before", state=NoticeState.PENDING, lead_minutes__in=[120, 2880]
    )
    assert kept.count() == 6
    assert all(n.due_at == later - timedelta(minutes=n.lead_minutes) for n in kept)
    reschedule(client, batch, later, "48, 2")  # the same again: nothing to record
    assert AuditEntry.objects.filter(batch=batch, action="rescheduled").count() == 1


def test_rescheduling_withdraws_the_notices_of_a_removed_lead_time(client, admin_user, people):
    batch = wave(people)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    client.force_login(admin_user)

    reschedule(client, batch, START + timedelta(days=1), "48, 2")

    removed = Notice.objects.filter(batch=batch, lead_minutes=72 * 60)
    assert set(removed.values_list("state", flat=True)) == {NoticeState.CANCELLED}


def test_a_reschedule_with_the_completion_before_the_start_changes_nothing(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:batch_reschedule", args=[batch.pk]),
        {
            "start_at": timezone.localtime(START).strftime("%Y-%m-%dT%H:%M"),
            "complete_by": timezone.localtime(START - timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M"
            ),
            "notice_leads": "72, 2",
        },
    )

    assert response.status_code == 200
    assert "The completion time must be after the start." in response.content.decode()
    batch.refresh_from_db()
    assert batch.complete_by is None


# --- previews ----------------------------------------------------------------------------


def test_the_preview_of_a_phone_to_set_up_again_names_it_and_gives_the_steps(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)

    response = preview(client, batch, people[1]["rita"])

    page = response.content.decode()
    assert response.status_code == 200
    assert "assuming the batch is scheduled as it is now" in page
    assert "Action needed: your mailbox moves on" in page
    text = page.split('<pre class="mail"')[1].split("</pre>")[0]
    assert "Rita&#x27;s iPhone" in text and "After the move:" in text
    assert "Rita&#x27;s iPhone" in srcdoc(page)


def test_the_preview_for_a_person_whose_phones_all_keep_syncing_is_the_short_notice(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)

    page = preview(client, batch, people[1]["carl"]).content.decode()
    assert "your phones keep syncing" in page
    assert "There is nothing for you to do." in page

    second = preview(client, batch, people[1]["carl"], lead=120)
    assert second.status_code == 200


def test_without_the_short_notice_the_preview_says_the_person_gets_none(client, admin_user, people):
    batch = wave(people, notify_unaffected=False)
    client.force_login(admin_user)

    page = preview(client, batch, people[1]["carl"]).content.decode()

    assert "This person would get no notice:</strong> all phones keep syncing" in page
    assert "<iframe" not in page


def test_the_preview_for_an_undecided_phone_says_it_checks_and_gives_no_steps(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)

    page = preview(client, batch, people[1]["uma"]).content.decode()

    text = page.split('<pre class="mail"')[1].split("</pre>")[0]
    assert "IT is still checking what the move does to this phone" in text
    assert "After the move:" not in text
    assert "IT is checking your phones" in page  # the subject


def test_a_friendly_name_with_markup_and_line_breaks_stays_text_in_the_preview(
    client, admin_user, people
):
    _, mailboxes = people
    PartnershipFactory(mailbox=mailboxes["rita"], device__friendly_name=XSS_NAME)
    mailboxes["rita"].display_name = "Rita\r\nBcc: evil@example.test"
    mailboxes["rita"].save()
    batch = wave(people)
    client.force_login(admin_user)

    response = preview(client, batch, mailboxes["rita"])

    page = response.content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.split('<pre class="mail"')[1]
    frame = srcdoc(page)
    assert "<script>" not in frame and "&lt;script&gt;alert(1)&lt;/script&gt;" in frame
    assert response["Content-Security-Policy"].startswith("default-src 'self'; script-src 'none'")
    to_line = page.split("<dt>To</dt><dd>")[1].split("</dd>")[0]
    assert to_line == "Rita Bcc: evil@example.test &lt;rita@contoso.com&gt;"


def test_the_report_preview_lists_the_csv_it_attaches(client, admin_user, people):
    batch = wave(people)
    client.force_login(admin_user)

    page = preview(client, batch, kind="report_scheduled").content.decode()

    assert "exsync: batch Wave was scheduled" in page
    assert "exsync-Wave-people-to-act.csv" in page and "text/csv" in page


def test_a_preview_of_someone_outside_the_batch_or_an_unknown_lead_is_not_found(
    client, admin_user, people
):
    batch = wave(people)
    client.force_login(admin_user)
    stranger = MailboxFactory()

    assert preview(client, batch, stranger).status_code == 404
    assert preview(client, batch, people[1]["rita"], lead=5).status_code == 404
    assert preview(client, batch, kind="nonsense").status_code == 404


# --- who may see what --------------------------------------------------------------------


def sent_notice(batch, mailbox, **fields) -> Notice:
    values = {
        "batch": batch,
        "member": batch.members.get(mailbox=mailbox),
        "mailbox": mailbox,
        "kind": NoticeKind.BEFORE_MOVE,
        "lead_minutes": 72 * 60,
        "due_at": batch.start_at - timedelta(hours=72),
        "recipient": mailbox.primary_smtp_address,
        "state": NoticeState.SENT,
        "sent_at": timezone.now(),
        "attempts": 1,
        "subject": "Action needed: your mailbox moves on Saturday",
        "body_text": f"Hello,\n{XSS_NAME}\n",
        "body_html": f"<p>Hello {html.escape(XSS_NAME)}</p>",
        "message_id": "<notice-1.before.0@contoso.com>",
        **fields,
    }
    return Notice.objects.create(**values)


def test_helpdesk_reads_a_persons_notice_but_nothing_else_of_the_notices(
    client, helpdesk_user, people
):
    batch = wave(people)
    person = sent_notice(batch, people[1]["rita"])
    report = Notice.objects.create(
        batch=batch,
        kind=NoticeKind.REPORT_SCHEDULED,
        due_at=timezone.now(),
        recipient="ops@contoso.com",
        state=NoticeState.SENT,
    )
    client.force_login(helpdesk_user)

    detail = client.get(reverse("migrations_plan:notice_detail", args=[person.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200
    assert "&lt;notice-1.before.0@contoso.com&gt;" in page and "Resend" not in page
    assert "<script>alert" not in page and "&lt;script&gt;" in srcdoc(page)

    forbidden = [
        client.get(reverse("migrations_plan:notice_detail", args=[report.pk])),
        preview(client, batch, people[1]["rita"]),
        preview(client, batch, kind="report_scheduled"),
        client.post(
            reverse("migrations_plan:notice_resend", args=[person.pk]), {"expected_revision": 0}
        ),
        client.get(reverse("migrations_plan:batch_notices", args=[batch.pk])),
        client.get(reverse("migrations_plan:notice_templates")),
        client.get(reverse("migrations_plan:notice_template_edit", args=["before"])),
        client.post(reverse("migrations_plan:notice_template_reset", args=["before"])),
        client.post(reverse("migrations_plan:batch_reschedule", args=[batch.pk])),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert Notice.objects.count() == 2
    batch_page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]))
    assert "Preview e-mail" not in batch_page.content.decode()
    assert "E-mail templates" not in batch_page.content.decode()


def test_the_persons_page_lists_each_notice_with_its_log_and_a_link_to_it(
    client, helpdesk_user, people
):
    batch = wave(people)
    rita = people[1]["rita"]
    sent = sent_notice(batch, rita)
    failed = sent_notice(
        batch,
        rita,
        lead_minutes=120,
        state=NoticeState.FAILED,
        sent_at=None,
        attempts=8,
        last_error="550 5.1.1 mailbox unavailable (refused for good)",
    )
    client.force_login(helpdesk_user)

    page = client.get(reverse("helpdesk:person", args=[rita.pk])).content.decode()

    for notice in (sent, failed):
        assert reverse("migrations_plan:notice_detail", args=[notice.pk]) in page
    assert "(72 h before)" in page and "(2 h before)" in page
    assert "550 5.1.1 mailbox unavailable" in page and "rita@contoso.com" in page


# --- resending ---------------------------------------------------------------------------


def test_a_double_clicked_resend_makes_one_copy(client, admin_user, people):
    batch = wave(people)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    original = Notice.objects.get(
        batch=batch, mailbox=people[1]["rita"], lead_minutes=72 * 60, revision=0
    )
    Notice.objects.filter(pk=original.pk).update(
        state=NoticeState.SENT, sent_at=timezone.now(), subject="Sent before"
    )
    client.force_login(admin_user)
    page = client.get(reverse("migrations_plan:notice_detail", args=[original.pk]))
    assert 'name="expected_revision" value="0"' in page.content.decode()

    url = reverse("migrations_plan:notice_resend", args=[original.pk])
    first = client.post(url, {"expected_revision": 0})
    second = client.post(url, {"expected_revision": 0}, follow=True)

    copies = Notice.objects.filter(batch=batch, recipient="rita@contoso.com", lead_minutes=4320)
    assert copies.count() == 2
    copy = copies.get(revision=1)
    assert copy.state == NoticeState.PENDING
    assert first["Location"] == reverse("migrations_plan:notice_detail", args=[copy.pk])
    assert "is queued (copy 1)" in second.content.decode()


def test_a_pending_notice_is_not_resent(client, admin_user, people):
    batch = wave(people)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    pending = Notice.objects.filter(batch=batch, kind="before").first()
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:notice_detail", args=[pending.pk])).content
    assert b"Resend" not in page and b"Preview it now" in page
    response = client.post(
        reverse("migrations_plan:notice_resend", args=[pending.pk]),
        {"expected_revision": 0},
        follow=True,
    )

    assert "has not been sent yet" in response.content.decode()
    assert Notice.objects.filter(batch=batch).count() == 7  # 6 notices and the report


# --- the notice log ----------------------------------------------------------------------


def test_the_notice_log_filters_pages_and_runs_a_fixed_number_of_queries(
    client, admin_user, people, django_assert_max_num_queries
):
    batch = wave(people)
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    url = reverse("migrations_plan:batch_notices", args=[batch.pk])
    client.force_login(admin_user)
    client.get(url)  # warm the session and permission caches

    with django_assert_max_num_queries(8):
        small = client.get(url)
    assert small.content.decode().count("Details</a>") == 7

    more = [MailboxFactory() for _ in range(60)]
    Notice.objects.bulk_create(
        Notice(
            batch=batch,
            mailbox=m,
            kind=NoticeKind.BEFORE_MOVE,
            lead_minutes=120,
            due_at=START,
            recipient=m.primary_smtp_address,
            state=NoticeState.FAILED,
            last_error="421 try later",
        )
        for m in more
    )
    with django_assert_max_num_queries(8):
        large = client.get(url)
    page = large.content.decode()
    assert page.count("Details</a>") == 50 and "Page 1 of 2" in page

    failed = client.get(url, {"state": "failed", "kind": "before"}).content.decode()
    assert failed.count("Details</a>") == 50 and "60 notices match" in failed
    reports = client.get(url, {"kind": "report_scheduled"}).content.decode()
    assert reports.count("Details</a>") == 1 and "ops@contoso.com" in reports


def test_the_persons_page_runs_a_fixed_number_of_queries_with_many_notices(
    client, helpdesk_user, people, django_assert_max_num_queries
):
    batch = wave(people)
    rita = people[1]["rita"]
    url = reverse("helpdesk:person", args=[rita.pk])
    client.force_login(helpdesk_user)
    client.get(url)
    sent_notice(batch, rita)
    with django_assert_max_num_queries(12):
        client.get(url)
    for lead in range(1, 20):
        sent_notice(batch, rita, lead_minutes=lead * 60)
    with django_assert_max_num_queries(12):
        page = client.get(url).content.decode()
    assert page.count("What was sent:") == 20


# --- the template editor -----------------------------------------------------------------


def test_templates_are_listed_with_whether_they_are_edited(client, admin_user):
    NoticeTemplate.objects.create(
        name="after", subject="s", body_text="t", body_html="h", updated_by=admin_user
    )
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:notice_templates")).content.decode()

    assert page.count("Default") == 4 and f"Edited by {admin_user.username}" in page
    assert ">E-mail templates</a>" in page  # the nav link


def test_the_editor_shows_the_default_wording_and_previews_it_with_sample_values(
    client, admin_user
):
    client.force_login(admin_user)
    url = reverse("migrations_plan:notice_template_edit", args=["before"])

    page = client.get(url).content.decode()

    assert html.escape(default_source("before")["body_text"].strip()[:40]) in page
    assert "Alex&#x27;s iPhone" in page and "Alex Morgan" in srcdoc(page)
    short = client.get(url, {"sample": "short"}).content.decode()
    assert "There is nothing for you to do." in short


def test_a_template_with_a_syntax_error_is_refused_on_its_field_and_not_stored(client, admin_user):
    client.force_login(admin_user)
    source = default_source("before")

    response = client.post(
        reverse("migrations_plan:notice_template_edit", args=["before"]),
        {**source, "body_html": "<p>{% if person.name %}Hello</p>", "save": "1"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "This template does not compile:" in page and "endif" in page
    assert not NoticeTemplate.objects.exists()


def test_preview_shows_the_edited_wording_without_storing_it_and_save_stores_it(client, admin_user):
    client.force_login(admin_user)
    url = reverse("migrations_plan:notice_template_edit", args=["chase"])
    source = {**default_source("chase"), "subject": "Still not syncing, {{ person.name }}?"}

    shown = client.post(url, {**source, "preview": "1"}).content.decode()
    assert "Still not syncing, Alex Morgan?" in shown
    assert not NoticeTemplate.objects.exists()

    saved = client.post(url, {**source, "save": "1"}, follow=True).content.decode()
    row = NoticeTemplate.objects.get(name="chase")
    assert row.subject == "Still not syncing, {{ person.name }}?" and row.updated_by == admin_user
    assert "Saved." in saved and "Reset to default" in saved


def test_reset_deletes_the_edited_wording(client, admin_user):
    NoticeTemplate.objects.create(
        name="report", subject="Mine", body_text="t", body_html="h", updated_by=admin_user
    )
    client.force_login(admin_user)

    response = client.post(
        reverse("migrations_plan:notice_template_reset", args=["report"]), follow=True
    )

    assert not NoticeTemplate.objects.exists()
    page = response.content.decode()
    assert "back to the default wording" in page
    assert html.escape(default_source("report")["subject"].strip()) in page


def test_an_unknown_template_name_is_not_found(client, admin_user):
    client.force_login(admin_user)
    assert (
        client.get(reverse("migrations_plan:notice_template_edit", args=["nope"])).status_code
        == 404
    )


def test_a_batch_in_draft_state_is_still_a_draft_after_previews(client, admin_user, people):
    batch = wave(people)
    client.force_login(admin_user)
    preview(client, batch, people[1]["rita"])
    preview(client, batch, people[1]["rita"], kind="after")
    batch.refresh_from_db()
    assert batch.state == BatchState.DRAFT and not Notice.objects.exists()
    assert batch.members.filter(state="pending").count() == 3
