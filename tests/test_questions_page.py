"""A missing fact is a question with a place to answer it: ranges on the batch page, open
questions ranked by the devices they decide, unsupported paths refused at creation, Exchange
Online as a target with its move kind."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Generation, Namespace
from devices.services import namespace_save
from migrations_plan.models import MoveBatch, Prediction
from migrations_plan.selectors import open_questions
from migrations_plan.services import UnsupportedPath, batch_create, batch_plan
from tests.factories import ExchangeServerFactory, MailboxFactory, PartnershipFactory
from tests.test_planning import run

pytestmark = pytest.mark.django_db
START = timezone.now() + timedelta(days=10)


def coexistence():
    """2010 mailboxes, phones on either of two host names nobody recorded as the one used."""
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True, forest="contoso.local")
    ex2016 = ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    legacy = Namespace.objects.create(host="legacy.contoso.com", imported=True)
    legacy.servers.set([ex2010])
    mail = Namespace.objects.create(host="mail.contoso.com", imported=True)
    mail.servers.set([ex2016])
    mailboxes = [MailboxFactory(server=ex2010) for _ in range(3)]
    for mailbox in mailboxes:
        PartnershipFactory(mailbox=mailbox)
    return ex2010, ex2016, mailboxes


def test_an_undecided_device_shows_its_range_and_the_fact_that_decides_it(client, admin_user):
    _, ex2016, mailboxes = coexistence()
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()

    assert "Could be" in page and "which EAS host name the phones use" in page
    assert "Continues if the phones use mail.contoso.com" in page
    assert "IT is still checking" in page  # the user is never given a guess


def test_open_questions_are_ranked_by_the_devices_they_decide_and_link_to_the_answer(
    client, admin_user
):
    _, ex2016, mailboxes = coexistence()
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )

    questions = open_questions(batch=batch)

    assert questions[0]["id"] == "namespace"
    assert questions[0]["decides"] == 3
    assert questions[0]["url"] == reverse("devices:organisation") + "#namespaces"
    assert questions[0]["outcomes"] == ["unknown", "continues"]
    client.force_login(admin_user)
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    assert 'href="/inventory/organisation/#namespaces"' in page


def test_answering_the_question_decides_the_batch(admin_user):
    _, ex2016, mailboxes = coexistence()
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    assert set(Prediction.objects.values_list("outcome", flat=True)) == {"unknown"}

    mail = Namespace.objects.get(host="mail.contoso.com")
    namespace_save(
        namespace=mail,
        actor=admin_user,
        host=mail.host,
        servers=[ex2016],
        is_legacy=False,
        devices_use=True,
        sites="",
        retired=False,
    )
    batch_plan(batch=batch)

    assert set(Prediction.objects.values_list("outcome", flat=True)) == {"continues"}
    assert [q["id"] for q in open_questions(batch=batch) if q["decides"]] == []


def test_the_batch_page_runs_the_same_queries_with_more_questions(
    client, admin_user, django_assert_max_num_queries
):
    _, ex2016, mailboxes = coexistence()
    small = batch_create(
        name="Small", target_server=ex2016, start_at=START, mailboxes=mailboxes[:1], actor=None
    )
    large = batch_create(
        name="Large", target_server=ex2016, start_at=START, mailboxes=mailboxes[1:], actor=None
    )
    client.force_login(admin_user)
    url = reverse("migrations_plan:batch_detail", args=[small.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("migrations_plan:batch_detail", args=[large.pk]))


def test_plan_batch_json_gives_the_range_and_what_it_depends_on(tmp_path):
    _, ex2016, mailboxes = coexistence()
    batch_create(name="Wave", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None)

    code, out, _ = run("plan_batch", "Wave", "--json")

    device = json.loads(out)["items"][0]["devices"][0]
    assert code == 0
    assert device["outcome"] == "unknown"
    assert device["possible"] == ["unknown", "continues"]
    assert device["depends_on"] == ["namespace"]
    assert device["user_text"] and device["admin_text"]


# -- unsupported paths: refused or loudly flagged where the batch is created ---------------------


def unsupported_org():
    ex2003 = ExchangeServerFactory(
        name="EX2003",
        generation=Generation.EX2003,
        build="6.5.7638.2",
        site="",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
    )
    ex2016 = ExchangeServerFactory(name="EX2016A")
    mailbox = MailboxFactory(server=ex2003, primary_smtp_address="kim@contoso.com")
    PartnershipFactory(mailbox=mailbox)
    return ex2003, ex2016, mailbox


def test_an_unsupported_path_is_refused_when_the_batch_is_created():
    _, ex2016, mailbox = unsupported_org()
    with pytest.raises(UnsupportedPath, match="Exchange 2003 → Exchange 2016"):
        batch_create(
            name="Wave", target_server=ex2016, start_at=START, mailboxes=[mailbox], actor=None
        )
    assert not MoveBatch.objects.exists()


def test_an_unsupported_path_created_anyway_is_flagged_on_the_batch_page(client, admin_user):
    _, ex2016, mailbox = unsupported_org()
    batch = batch_create(
        name="Wave",
        target_server=ex2016,
        start_at=START,
        mailboxes=[mailbox],
        actor=None,
        allow_unsupported=True,
    )
    client.force_login(admin_user)
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk])).content.decode()
    assert "Unsupported path" in page and "1 mailbox(es) on EX2003" in page
    assert Prediction.objects.get().outcome == "unknown"
    assert batch.audit.get().detail["unsupported_paths"]


def test_the_create_form_refuses_an_unsupported_path_unless_ticked(client, admin_user, tmp_path):
    ex2003, ex2016, _ = unsupported_org()
    client.force_login(admin_user)
    form = {
        "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
        "name": "Wave",
        "target_server": str(ex2016.pk),
        "start_at": START.strftime("%Y-%m-%dT%H:%M"),
        "notice_leads": "72, 2",
        "notify_unaffected": "on",
        "source_server": ex2003.pk,
    }
    response = client.post(reverse("migrations_plan:batch_create"), form)
    assert response.status_code == 200
    assert "not a supported coexistence path" in response.content.decode()
    assert not MoveBatch.objects.exists()

    client.post(reverse("migrations_plan:batch_create"), {**form, "allow_unsupported": "on"})
    assert MoveBatch.objects.get().name == "Wave"


def test_create_batch_refuses_an_unsupported_path_and_names_the_option(tmp_path):
    unsupported_org()
    csv = tmp_path / "wave.csv"
    csv.write_text("EmailAddress\r\nkim@contoso.com\r\n")
    args = ["Wave", "--target-server", "EX2016A", "--start", START.isoformat()]

    code, _, err = run("create_batch", *args, "--mailboxes-csv", str(csv))
    assert code == 1 and "--allow-unsupported" in err

    code, _, err = run("create_batch", *args, "--mailboxes-csv", str(csv), "--allow-unsupported")
    assert code == 0 and "not a supported coexistence path" in err


# -- Exchange Online as a target ------------------------------------------------------------------


def test_exchange_online_is_a_target_an_admin_can_pick_with_its_move_kind(client, admin_user):
    ex2016 = ExchangeServerFactory(name="EX2016A")
    mailbox = MailboxFactory(server=ex2016)
    PartnershipFactory(mailbox=mailbox)
    client.force_login(admin_user)
    page = client.get(reverse("migrations_plan:batch_create")).content.decode()
    assert "Exchange Online (Microsoft 365)" in page

    client.post(
        reverse("migrations_plan:batch_create"),
        {
            "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
            "name": "To the cloud",
            "target_server": "exo",
            "move_kind": "staged_or_cutover_or_imap",
            "start_at": START.strftime("%Y-%m-%dT%H:%M"),
            "notice_leads": "72, 2",
            "notify_unaffected": "on",
            "source_server": ex2016.pk,
        },
    )

    batch = MoveBatch.objects.get()
    assert batch.target_server.generation == Generation.EXO
    assert batch.move_kind == "staged_or_cutover_or_imap"
    batch_plan(batch=batch)
    prediction = Prediction.objects.select_related("explanation").get()
    assert prediction.outcome == "repartner"
    assert "M-STAGED-EXO" in [r["rule"] for r in prediction.explanation.reasons]


def test_a_move_kind_that_does_not_fit_the_target_is_refused(client, admin_user):
    ex2016 = ExchangeServerFactory(name="EX2016A")
    MailboxFactory(server=ex2016)
    client.force_login(admin_user)
    response = client.post(
        reverse("migrations_plan:batch_create"),
        {
            "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
            "name": "Wrong",
            "target_server": str(ex2016.pk),
            "move_kind": "staged_or_cutover_or_imap",
            "start_at": START.strftime("%Y-%m-%dT%H:%M"),
            "notice_leads": "72, 2",
            "notify_unaffected": "on",
            "source_server": ex2016.pk,
        },
    )
    assert "goes to Exchange Online" in response.content.decode()
    assert not MoveBatch.objects.exists()
