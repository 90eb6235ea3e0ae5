"""A person's page: what to tell a caller about each phone, with their platform's steps."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from helpdesk import platforms as P
from helpdesk.models import Instruction, needed_actions
from helpdesk.selectors import INSTRUCTIONS
from migrations_plan.models import (
    BatchState,
    Explanation,
    MemberState,
    Notice,
    NoticeKind,
    NoticeState,
    Prediction,
)
from tests.factories import (
    BatchMailboxFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    PartnershipFactory,
)

SEED_MIGRATION = importlib.import_module("helpdesk.migrations.0001_initial")
SEED = SEED_MIGRATION.SEED

# --------------------------------------------------------------------------------------------
# Platform detection: pure, one row per kind of phone an export shows.
# --------------------------------------------------------------------------------------------

# (device_type, model, os, user_agent, client_type) -> platform
PLATFORM_CASES = [
    (("iPhone", "iPhone15C2", "iOS 17.5.1 21F90", "Apple-iPhone15C2/2106.90", "EAS"), P.IOS_MAIL),
    (("iPad", "iPad13C1", "iOS 16.7.2 20H115", "Apple-iPad13C1/2008.115", ""), P.IOS_MAIL),
    (("iPod", "", "", "", ""), P.IOS_MAIL),
    (("", "", "", "Apple-iPhone9C1/1602.92", ""), P.IOS_MAIL),
    (
        ("SAMSUNGSMG991B", "SM-G991B", "Android 13.0.0", "Android-SAMSUNG-SM-G991B/101.10.1", ""),
        P.ANDROID_SAMSUNG,
    ),
    (("Android", "SM-S911B", "Android 14.0.0", "", "EAS"), P.ANDROID_SAMSUNG),
    (("Android", "Pixel 7", "Android 14", "Android-Mail/2023.10.01", "EAS"), P.ANDROID_GOOGLE),
    (("Android", "Nokia G21", "Android 13", "Android/13-EAS-2.0", ""), P.ANDROID_OTHER),
    (("Android", "", "", "", ""), P.ANDROID_OTHER),
    (
        ("Outlook", "Outlook for iOS and Android", "iOS 17.4", "Outlook-iOS-Android/1.0", ""),
        P.OUTLOOK_MOBILE,
    ),
    (("iPhone", "iPhone15C2", "iOS 17.4", "", "REST"), P.OUTLOOK_MOBILE),
    (("Android", "SM-G991B", "Android 13", "", "Outlook"), P.OUTLOOK_MOBILE),
    (
        ("PocketPC", "HTC Touch Pro2", "Windows CE 5.2.21869", "MSFT-PPC/5.2.5082", ""),
        P.WINDOWS_MOBILE,
    ),
    (("SmartPhone", "", "", "MSFT-SPhone/5.2.1500", ""), P.WINDOWS_MOBILE),
    (("", "", "Windows Mobile 6.5", "", ""), P.WINDOWS_MOBILE),
    (("WP8", "Lumia 950", "Windows Phone 10.0.14393", "MSFT-WP/10.0.14393", ""), P.WINDOWS_PHONE),
    (("WP", "Lumia 800", "", "", ""), P.WINDOWS_PHONE),
    (("NokiaE72", "E72-1", "S60 3.2", "NokiaE72-1/3.00(0)", ""), P.OTHER),
    (("", "", "", "", ""), P.OTHER),
    (("<script>", "'\"", "", "", ""), P.OTHER),
]


@pytest.mark.parametrize(("facts", "platform"), PLATFORM_CASES)
def test_the_platform_is_told_from_what_the_phone_reports(facts, platform):
    device_type, model, os, user_agent, client_type = facts
    assert (
        P.detect_platform(
            device_type=device_type,
            model=model,
            os=os,
            user_agent=user_agent,
            client_type=client_type,
        )
        == platform
    )


def test_every_platform_has_a_label_and_seeded_steps_for_recreating_and_certificates():
    assert {p for p, _ in P.PLATFORMS} == set(P.LABELS)
    for platform in P.LABELS:
        for action in ("recreate_account", "accept_certificate", "update_app"):
            title, body = SEED[(platform, action)]
            assert title and ("\n" in body or action == "update_app"), (platform, action)
    assert ("other", "wait_for_approval") in SEED and ("other", "nothing") in SEED


# --------------------------------------------------------------------------------------------
# Which action a prediction asks of the user: pure.
# --------------------------------------------------------------------------------------------


def reason(rule, outcome, *, text="", user_action="None.", admin_action="None.", warning=False):
    return {
        "rule": rule,
        "outcome": outcome,
        "text": text or f"{rule} applies.",
        "user_action": user_action,
        "admin_action": admin_action,
        "source": "eas-moves.md",
        "confidence": "S",
        "is_warning": warning,
    }


REPARTNER = reason(
    "M-2003-2007RTM",
    "repartner",
    user_action="Delete the Exchange account on the phone and add it again.",
    admin_action="Prefer installing 2007 SP1 or later on the target before moving.",
)
CERT = reason(
    "X-CERT",
    "blocked",
    text="On mail.contoso.com: the issuer changes.",
    user_action="You may have to accept or install the new certificate (older phones).",
    admin_action="Keep the same certificate.",
)
CERT_SERVER_SIDE = reason(
    "X-CERT",
    "blocked",
    text="On mail.contoso.com: it expires on 2026-01-01, before the move.",
    user_action="Nothing to do on the phone: IT must fix the certificate on the server first.",
    admin_action="Renew the certificate.",
)
CERT_WARNING = reason("X-CERT", "continues", text="Not checked.", warning=True)
SIGN_IN_AGAIN = reason(
    "M-HYB-ON-451",
    "redirect",
    user_action="Sign in again with modern authentication when prompted.",
)
NOTHING = reason("M-2013P-2013P", "continues")
QUARANTINE = reason(
    "X-ABQ",
    "blocked",
    text="The device is quarantined now: it syncs once an administrator approves it.",
    user_action="Wait for approval; you received a quarantine notice by e-mail.",
    admin_action="Approve the device before the move.",
)
BLOCK = reason(
    "X-ABQ",
    "blocked",
    text="The device is blocked now (a personal block, a device access rule or the "
    "organisation's default); it will not sync after the move either.",
    user_action="Contact IT: this phone is blocked from company mail; waiting will not help.",
)
EASVER = reason(
    "X-EASVER-EXO",
    "blocked",
    user_action="Update the phone's OS or mail app to one speaking EAS 16.1.",
)
UNDECIDED = reason("M-2010-2016", "unknown", text="Cannot decide: the namespace is missing.")


@pytest.mark.parametrize(
    ("outcome", "reasons", "actions"),
    [
        ("repartner", [REPARTNER], ["recreate_account"]),
        ("blocked", [CERT], ["accept_certificate"]),
        ("blocked", [CERT, REPARTNER], ["recreate_account", "accept_certificate"]),
        ("blocked", [CERT_SERVER_SIDE], []),
        ("blocked", [CERT_SERVER_SIDE, REPARTNER], ["recreate_account"]),
        ("continues", [CERT_WARNING], ["nothing"]),
        ("blocked", [QUARANTINE], ["wait_for_approval"]),
        ("blocked", [BLOCK], []),
        ("blocked", [EASVER, REPARTNER], ["update_app", "recreate_account"]),
        ("unknown", [UNDECIDED, CERT_WARNING], []),
        ("full_resync", [], ["nothing"]),
        ("redirect", [], ["nothing"]),
        # The sentence asks the user to sign in again: no "nothing to do" step beside it.
        ("redirect", [SIGN_IN_AGAIN], []),
        ("continues", [NOTHING], ["nothing"]),
    ],
)
def test_the_action_a_user_needs_comes_from_the_prediction(outcome, reasons, actions):
    assert needed_actions(outcome, reasons) == actions


# --------------------------------------------------------------------------------------------
# The page.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def instructions(db):
    """The seeded texts (a transactional test's flush elsewhere in the suite removes them)."""
    SEED_MIGRATION.seed(django_apps)


def explain(outcome, reasons=(), *, user_text="", admin_text="", possible=None, depends_on=()):
    return Explanation.objects.create(
        digest=uuid.uuid4().hex,
        outcome=outcome,
        reasons=list(reasons),
        possible=possible or [outcome],
        depends_on=list(depends_on),
        branches=[],
        user_text=user_text or f"User sentence for {outcome}.",
        admin_text=admin_text or f"Admin sentence for {outcome}.",
    )


def predict(member, partnership, explanation):
    return Prediction.objects.create(
        member=member,
        partnership=partnership,
        outcome=explanation.outcome,
        explanation=explanation,
    )


def person_url(mailbox):
    return reverse("helpdesk:person", args=[mailbox.pk])


def in_batch(mailbox, **batch):
    return BatchMailboxFactory(
        mailbox=mailbox,
        batch=MoveBatchFactory(state=BatchState.SCHEDULED, **batch),
        source_server=mailbox.server,
    )


PLATFORM_DEVICES = {
    P.IOS_MAIL: dict(device_type="iPhone", model="iPhone15C2", os="iOS 17.5.1 21F90"),
    P.ANDROID_SAMSUNG: dict(
        device_type="SAMSUNGSMG991B",
        model="SM-G991B",
        os="Android 13.0.0",
        user_agent="Android-SAMSUNG-SM-G991B/101.10.1",
    ),
    P.ANDROID_GOOGLE: dict(
        device_type="Android", model="Pixel 7", os="Android 14", user_agent="Android-Mail/1"
    ),
    P.ANDROID_OTHER: dict(device_type="Android", model="Moto G", os="Android 13", user_agent=""),
    P.OUTLOOK_MOBILE: dict(
        device_type="Outlook",
        model="Outlook for iOS and Android",
        os="iOS 17.4",
        user_agent="Outlook-iOS-Android/1.0",
    ),
    P.WINDOWS_MOBILE: dict(
        device_type="PocketPC",
        model="HTC Touch Pro2",
        os="Windows CE 5.2.21869",
        user_agent="MSFT-PPC/5.2.5082",
    ),
    P.WINDOWS_PHONE: dict(
        device_type="WP8",
        model="Lumia 950",
        os="Windows Phone 10.0.14393",
        user_agent="MSFT-WP/10.0.14393",
    ),
    P.OTHER: dict(device_type="NokiaE72", model="E72-1", os="S60 3.2", user_agent="NokiaE72-1"),
}


def a_phone(mailbox, member, explanation, **device):
    partnership = PartnershipFactory(mailbox=mailbox, device=MobileDeviceFactory(**device))
    if member is not None:
        predict(member, partnership, explanation)
    return partnership


def first_line(platform, action):
    return SEED[(platform, action)][1].splitlines()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("platform", list(PLATFORM_DEVICES))
def test_each_platform_gets_its_own_steps_for_recreating_the_account(
    client, helpdesk_user, instructions, platform
):
    mailbox = MailboxFactory(primary_smtp_address="kim.jensen@contoso.com")
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("repartner", [REPARTNER]), **PLATFORM_DEVICES[platform])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    title = SEED[(platform, "recreate_account")][0]
    assert escape(title) in page
    assert escape(first_line(platform, "recreate_account").replace("{address}", "x")) in page
    for other in PLATFORM_DEVICES:
        if other != platform:
            assert escape(SEED[(other, "recreate_account")][0]) not in page
    if "{address}" in SEED[(platform, "recreate_account")][1]:
        assert "kim.jensen@contoso.com" in page.split(escape(title), 1)[1]
    assert "User sentence for repartner." in page
    assert "Admin sentence for repartner." in page
    assert "M-2003-2007RTM" in page  # the rule ids, in a <details>


@pytest.mark.django_db
def test_an_unknown_prediction_gives_no_steps_and_says_it_is_being_checked(
    client, helpdesk_user, instructions
):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    unknown = explain(
        "unknown",
        [UNDECIDED],
        possible=["continues", "repartner"],
        depends_on=["namespace"],
        user_text="Nothing to do yet: IT is still checking what the move does to this phone.",
    )
    a_phone(mailbox, member, unknown, **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    assert "IT is still checking what the move does to this phone" in page
    assert 'class="steps"' not in page
    for title, _ in SEED.values():
        assert title not in page
    assert "Could be" in page  # the range, as on the batch page


@pytest.mark.django_db
def test_a_new_certificate_gives_the_platform_s_certificate_steps(
    client, helpdesk_user, instructions
):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("blocked", [CERT]), **PLATFORM_DEVICES[P.WINDOWS_MOBILE])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    assert SEED[(P.WINDOWS_MOBILE, "accept_certificate")][0] in page
    assert SEED[(P.WINDOWS_MOBILE, "recreate_account")][0] not in page


@pytest.mark.django_db
def test_a_certificate_only_it_can_fix_gives_the_user_no_steps(client, helpdesk_user, instructions):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("blocked", [CERT_SERVER_SIDE]), **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    assert SEED[(P.IOS_MAIL, "accept_certificate")][0] not in page
    assert "No steps for the user: IT must fix something on the server side first." in page


@pytest.mark.django_db
def test_a_quarantined_phone_is_told_to_wait_for_approval(client, helpdesk_user, instructions):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("blocked", [QUARANTINE]), **PLATFORM_DEVICES[P.IOS_MAIL])
    blocked = a_phone(
        mailbox, member, explain("blocked", [BLOCK]), **PLATFORM_DEVICES[P.ANDROID_SAMSUNG]
    )
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    wait_title = SEED[("other", "wait_for_approval")][0]
    assert page.count(wait_title) == 1  # the quarantined iPhone only; a block is not a queue
    card = page.split(f'id="device-{blocked.pk}"', 1)[1].split("</article>", 1)[0]
    assert wait_title not in card
    assert "No steps for the user" in card


@pytest.mark.django_db
def test_a_person_in_no_batch_has_their_phones_listed_as_in_no_batch(
    client, helpdesk_user, instructions
):
    mailbox = MailboxFactory(display_name="Kim Jensen")
    a_phone(mailbox, None, None, friendly_name="Kim's iPhone")
    client.force_login(helpdesk_user)

    response = client.get(person_url(mailbox))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Kim Jensen" in page and "Kim&#x27;s iPhone" in page
    assert page.count("Not in any batch.") == 2  # the batches panel and the phone
    assert "No notices yet." in page


@pytest.mark.django_db
def test_mailbox_facts_batches_and_notices_are_shown(client, helpdesk_user, instructions):
    mailbox = MailboxFactory(
        display_name="Kim Jensen",
        alias="kjensen",
        primary_smtp_address="kim.jensen@contoso.com",
        database="DB2010-07",
    )
    old = in_batch(mailbox, name="Wave 0", start_at=timezone.now() - timedelta(days=30))
    old.batch.state = BatchState.COMPLETED
    old.batch.save()
    old.state, old.is_active, old.moved_at = MemberState.MOVED, False, old.batch.start_at
    old.save()
    current = in_batch(mailbox, name="Wave 3")
    Notice.objects.create(
        batch=current.batch,
        mailbox=mailbox,
        kind=NoticeKind.BEFORE_MOVE,
        due_at=current.batch.start_at - timedelta(days=3),
        recipient=mailbox.primary_smtp_address,
        subject="Your mailbox moves on Monday",
        state=NoticeState.SENT,
        sent_at=timezone.now(),
    )
    a_phone(mailbox, current, explain("continues"), **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    for text in ("kim.jensen@contoso.com", "kjensen", "DB2010-07", mailbox.server.name):
        assert text in page
    assert "Exchange 2016" in page and "Version 15.1 (Build 2507.6)" in page
    for batch in (old.batch, current.batch):
        assert reverse("migrations_plan:batch_detail", args=[batch.pk]) in page
    assert "Wave 0" in page and "Moved" in page and "Completed" in page
    assert "Your mailbox moves on Monday" in page and "No notices yet." not in page
    assert "What happens is said for batch" in page
    assert page.index("What happens is said for batch") < page.index("Wave 3</a> (scheduled)")
    assert SEED[("other", "nothing")][0] in page  # the active batch decides, not Wave 0


@pytest.mark.django_db
def test_batch_times_are_shown_in_the_organisation_s_time_zone(
    client, helpdesk_user, instructions, settings
):
    settings.TIME_ZONE = "Europe/Berlin"
    mailbox = MailboxFactory()
    member = in_batch(mailbox, start_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    member.moved_at = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    member.save()
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    assert "2026-01-15 11:00 CET" in page  # 10:00 UTC is 11:00 in Berlin in winter
    assert "2026-01-15 13:30 CET" in page
    assert "Europe/Berlin" in page
    assert "10:00" not in page


@pytest.mark.django_db
def test_both_roles_read_the_page(client, helpdesk_user, admin_user):
    mailbox = MailboxFactory()
    for user in (helpdesk_user, admin_user):
        client.force_login(user)
        assert client.get(person_url(mailbox)).status_code == 200


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_page(client):
    url = person_url(MailboxFactory())
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
def test_the_page_answers_post_with_405(client, helpdesk_user, admin_user):
    mailbox = MailboxFactory()
    for user in (helpdesk_user, admin_user):
        client.force_login(user)
        assert client.post(person_url(mailbox)).status_code == 405


@pytest.mark.django_db
def test_an_unknown_person_is_404(client, helpdesk_user):
    client.force_login(helpdesk_user)
    assert client.get(reverse("helpdesk:person", args=[987654])).status_code == 404


@pytest.mark.django_db
def test_device_values_are_escaped(client, helpdesk_user, instructions):
    mailbox = MailboxFactory(display_name='Kim "<b>" Jensen')
    member = in_batch(mailbox)
    evil = explain(
        "repartner",
        [reason("M-X", "repartner", text="<img src=x onerror=alert(1)>")],
        user_text="<script>alert('user')</script>",
    )
    a_phone(
        mailbox,
        member,
        evil,
        friendly_name='<script>alert("x")</script>',
        model="Pixel \"7\" <i>'Pro'</i>",
        os="<svg onload=alert(2)>",
        device_type="Android",
        user_agent="Android-Mail/1",
    )
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    for raw in ("<script>", "<i>", "<svg", "<img", "<b>"):
        assert raw not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Pixel &quot;7&quot; &lt;i&gt;&#x27;Pro&#x27;&lt;/i&gt;" in page
    assert "&lt;svg onload=alert(2)&gt;" in page


@pytest.mark.django_db
def test_instruction_text_is_shown_as_plain_text_with_line_breaks(
    client, helpdesk_user, instructions
):
    Instruction.objects.filter(platform=P.IOS_MAIL, action="recreate_account").update(
        title="Re-add <em>it</em>", body="Step <b>one</b>\nStep two for {address}"
    )
    mailbox = MailboxFactory(primary_smtp_address="kim@contoso.com")
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("repartner", [REPARTNER]), **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)

    page = client.get(person_url(mailbox)).content.decode()

    assert "Re-add &lt;em&gt;it&lt;/em&gt;" in page
    assert "Step &lt;b&gt;one&lt;/b&gt;<br>Step two for kim@contoso.com" in page


@pytest.mark.django_db
def test_editing_an_instruction_changes_what_the_page_shows(client, helpdesk_user, instructions):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("repartner", [REPARTNER]), **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)
    before = client.get(person_url(mailbox)).content.decode()
    assert SEED[(P.IOS_MAIL, "recreate_account")][0] in before

    text = Instruction.objects.get(platform=P.IOS_MAIL, action="recreate_account")
    text.title = "Call the Contoso service desk on 4711"
    text.body = "They re-create the account for you."
    text.save()

    after = client.get(person_url(mailbox)).content.decode()
    assert "Call the Contoso service desk on 4711" in after
    assert "They re-create the account for you." in after
    assert SEED[(P.IOS_MAIL, "recreate_account")][0] not in after


@pytest.mark.django_db
def test_a_platform_without_its_own_text_gets_the_generic_one_and_none_says_so(
    client, helpdesk_user, instructions
):
    mailbox = MailboxFactory()
    member = in_batch(mailbox)
    a_phone(mailbox, member, explain("repartner", [REPARTNER]), **PLATFORM_DEVICES[P.IOS_MAIL])
    client.force_login(helpdesk_user)
    Instruction.objects.filter(platform=P.IOS_MAIL, action="recreate_account").delete()
    page = client.get(person_url(mailbox)).content.decode()
    assert SEED[(P.OTHER, "recreate_account")][0] in page

    Instruction.objects.filter(action="recreate_account").delete()
    page = client.get(person_url(mailbox)).content.decode()
    assert "No steps are recorded for this yet" in page


@pytest.mark.django_db
def test_seeding_again_keeps_a_deployment_s_edited_text(instructions):
    Instruction.objects.filter(platform=P.OTHER, action="nothing").update(title="Ours")
    SEED_MIGRATION.seed(django_apps)
    assert Instruction.objects.get(platform=P.OTHER, action="nothing").title == "Ours"
    assert Instruction.objects.count() == len(SEED)


@pytest.mark.django_db
def test_a_phone_added_after_the_plan_says_it_is_not_planned_yet(client, helpdesk_user):
    mailbox = MailboxFactory()
    member = in_batch(mailbox, name="Wave 9")
    a_phone(mailbox, None, None, friendly_name="New phone")
    client.force_login(helpdesk_user)
    page = client.get(person_url(mailbox)).content.decode()
    assert "Not planned yet in Wave 9" in page
    assert member.batch.name in page


def _person_with(devices: int, batches: int):
    mailbox = MailboxFactory()
    members = []
    for n in range(batches):
        member = in_batch(mailbox, start_at=timezone.now() + timedelta(days=n * 30 - 30))
        if n < batches - 1:
            member.is_active, member.state = False, MemberState.MOVED
            member.save()
        members.append(member)
        Notice.objects.create(
            batch=member.batch,
            mailbox=mailbox,
            kind=NoticeKind.BEFORE_MOVE,
            due_at=member.batch.start_at,
            recipient=mailbox.primary_smtp_address,
        )
    kinds = [
        explain("repartner", [REPARTNER]),
        explain("blocked", [CERT, REPARTNER]),
        explain("unknown", [UNDECIDED]),
        explain("blocked", [QUARANTINE]),
    ]
    profiles = list(PLATFORM_DEVICES.values())
    for n in range(devices):
        partnership = PartnershipFactory(
            mailbox=mailbox, device=MobileDeviceFactory(**profiles[n % len(profiles)])
        )
        for member in members:
            predict(member, partnership, kinds[n % len(kinds)])
    return mailbox


MAX_QUERIES = 10  # 4 for the session, user and roles + 6 for the page


@pytest.mark.django_db
def test_the_page_runs_a_fixed_number_of_queries(
    client, helpdesk_user, instructions, django_assert_max_num_queries
):
    small, large = _person_with(devices=1, batches=1), _person_with(devices=10, batches=2)
    client.force_login(helpdesk_user)
    counts = []
    for mailbox in (small, large):
        INSTRUCTIONS.clear()  # each page pays for reading the steps (cached a few seconds)
        with django_assert_max_num_queries(MAX_QUERIES), CaptureQueriesContext(connection) as ctx:
            response = client.get(person_url(mailbox))
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert response.content.decode().count('class="steps"') >= 10


@pytest.mark.django_db
def test_exchange_admins_edit_instructions_in_the_admin_and_helpdesk_only_reads_them(
    client, admin_user, helpdesk_user, instructions
):
    assert admin_user.has_perm("helpdesk.change_instruction")
    assert helpdesk_user.has_perm("helpdesk.view_instruction")
    assert not helpdesk_user.has_perm("helpdesk.change_instruction")
    admin_user.is_staff = True
    admin_user.save()
    text = Instruction.objects.get(platform=P.WINDOWS_PHONE, action="accept_certificate")
    client.force_login(admin_user)
    url = reverse("admin:helpdesk_instruction_change", args=[text.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "platform": text.platform,
            "action": text.action,
            "title": "Ask IT for the certificate file",
            "body": "IT e-mails it to you.",
        },
    )
    assert response.status_code == 302
    text.refresh_from_db()
    assert text.title == "Ask IT for the certificate file"


def test_a_cancelled_batch_is_not_the_one_the_caller_is_told_about(client, helpdesk_user):
    from devices.models import Mailbox
    from helpdesk.search import people
    from migrations_plan.services import batch_create, batch_transition
    from tests.factories import ExchangeServerFactory, MailboxFactory, PartnershipFactory

    source, target = ExchangeServerFactory(name="EX2016A"), ExchangeServerFactory(name="EX2019A")
    kim = MailboxFactory(server=source, display_name="Kim Jensen")
    PartnershipFactory(mailbox=kim)
    done = batch_create(
        name="Done",
        target_server=target,
        start_at=timezone.now() - timedelta(days=30),
        mailboxes=[kim],
        actor=None,
    )
    for action in ("schedule", "start", "complete"):
        batch_transition(batch=done, action=action, actor=None)
    dropped = batch_create(
        name="Dropped",
        target_server=source,
        start_at=timezone.now() - timedelta(days=5),
        mailboxes=[Mailbox.objects.get(pk=kim.pk)],
        actor=None,
    )
    batch_transition(batch=dropped, action="cancel", actor=None)

    client.force_login(helpdesk_user)
    page = client.get(reverse("helpdesk:person", args=[kim.pk])).content.decode()

    assert [row.batch_name for row in people("Kim Jensen")] == ["Done"]
    assert "What happens is said for batch" in page
    assert ">Done</a> (completed)" in page and "Dropped" in page  # both listed, Done described
