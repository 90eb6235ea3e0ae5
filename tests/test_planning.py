"""Batches are planned from the inventory: stored predictions, bounded queries, clear errors."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from migrations_plan.models import BatchMailbox, Prediction
from migrations_plan.selectors import batch_plan_document
from migrations_plan.services import (
    BatchError,
    MailboxAlreadyBatched,
    batch_create,
    batch_mark_moves,
    batch_plan,
    batch_transition,
)
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
SOON = timezone.now() + timedelta(days=7)


def org():
    """An Exchange 2010 -> 2016 migration in one site, with a Munich site on another certificate.

    Phones are configured with mail.contoso.com, which EX2016A answers (recorded on
    Organisation -> Namespaces)."""
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    munich = ExchangeServerFactory(
        name="EX2016-MUC",
        site="contoso.local/Configuration/Sites/Munich",
        eas_external_url="https://mail-eu.contoso.com/Microsoft-Server-ActiveSync",
        cert_thumbprint="51A7C0E2D9B84F6A3C2E1D0F9B8A7C6D5E4F3A2B",
        cert_issuer="CN=R11, O=Let's Encrypt",
    )
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016], devices_use=True)
    NamespaceFactory(host="mail-eu.contoso.com", servers=[munich], devices_use=False)
    return ex2010, ex2016, munich


def test_a_new_batch_stores_one_prediction_per_partnership_with_its_reasons():
    ex2010, ex2016, _ = org()
    mailbox = MailboxFactory(server=ex2010)
    PartnershipFactory.create_batch(2, mailbox=mailbox, eas_version="16.1")

    batch = batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
    )

    predictions = Prediction.objects.filter(member__batch=batch).select_related("explanation")
    assert predictions.count() == 2
    assert {p.outcome for p in predictions} == {"continues"}
    assert "M-2010-2013P" in [r["rule"] for r in predictions[0].explanation.reasons]
    assert batch.audit.get().action == "created"


def test_a_target_servers_own_certificate_does_not_matter_when_phones_keep_their_host_name():
    # 2016 proxies EAS for the moved mailbox: phones keep talking to mail.contoso.com.
    ex2010, _, munich = org()
    mailbox = MailboxFactory(server=ex2010)
    PartnershipFactory(mailbox=mailbox)

    batch = batch_create(
        name="To Munich", target_server=munich, start_at=SOON, mailboxes=[mailbox], actor=None
    )

    prediction = Prediction.objects.select_related("explanation").get(member__batch=batch)
    assert prediction.outcome == "continues"


def test_a_certificate_expiring_before_the_move_on_the_host_phones_use_blocks():
    ex2010, ex2016, _ = org()
    ex2016.cert_not_after = SOON - timedelta(days=1)
    ex2016.save()
    mailbox = MailboxFactory(server=ex2010)
    PartnershipFactory(mailbox=mailbox)

    batch = batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
    )

    prediction = Prediction.objects.select_related("explanation").get(member__batch=batch)
    assert prediction.outcome == "blocked"
    blocked = [r for r in prediction.explanation.reasons if r["outcome"] == "blocked"]
    assert [r["rule"] for r in blocked] == ["X-CERT"]
    assert "mail.contoso.com" in blocked[0]["text"]
    assert blocked[0]["admin_action"]


def test_a_mailbox_in_an_active_batch_cannot_join_another_and_the_error_names_the_batch():
    ex2010, ex2016, _ = org()
    mailbox = MailboxFactory(server=ex2010, primary_smtp_address="kim@contoso.com")
    batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
    )

    with pytest.raises(MailboxAlreadyBatched, match=r"kim@contoso\.com is in batch 'Wave 1'"):
        batch_create(
            name="Wave 2", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
        )
    assert BatchMailbox.objects.count() == 1


def test_a_batch_name_is_taken_once_ignoring_case():
    _, ex2016, _ = org()
    batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[MailboxFactory()], actor=None
    )
    with pytest.raises(BatchError, match="already a batch named"):
        batch_create(
            name="wave 1",
            target_server=ex2016,
            start_at=SOON,
            mailboxes=[MailboxFactory()],
            actor=None,
        )


def test_planning_runs_a_fixed_number_of_queries_whatever_the_batch_size():
    ex2010, ex2016, _ = org()
    small = [MailboxFactory(server=ex2010) for _ in range(2)]
    large = [MailboxFactory(server=ex2010) for _ in range(25)]
    for mailbox in small + large:
        PartnershipFactory.create_batch(2, mailbox=mailbox)
    one = batch_create(
        name="Small", target_server=ex2016, start_at=SOON, mailboxes=small, actor=None
    )
    two = batch_create(
        name="Large", target_server=ex2016, start_at=SOON, mailboxes=large, actor=None
    )

    with CaptureQueriesContext(connection) as few:
        batch_plan(batch=one)
    with CaptureQueriesContext(connection) as many:
        result = batch_plan(batch=two)

    assert result.partnerships == 50
    assert len(many) == len(few)


def test_replanning_replaces_predictions_when_the_inventory_changed():
    ex2010, ex2016, _ = org()
    mailbox = MailboxFactory(server=ex2010)
    partnership = PartnershipFactory(mailbox=mailbox)
    batch = batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
    )
    assert Prediction.objects.get().outcome == "continues"

    partnership.access_state = "Quarantined"
    partnership.save()
    batch_plan(batch=batch)

    assert Prediction.objects.get().outcome == "blocked"


def test_a_replan_counts_moved_members_with_the_prediction_they_were_moved_with():
    ex2010, ex2016, _ = org()
    moved, pending = MailboxFactory(server=ex2010), MailboxFactory(server=ex2010)
    PartnershipFactory(mailbox=moved)
    later = PartnershipFactory(mailbox=pending)
    batch = batch_create(
        name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[moved, pending], actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=None)
    batch_transition(batch=batch, action="start", actor=None)
    batch_mark_moves(batch=batch, outcomes={moved.pk: "moved"}, actor=None)

    later.access_state = "Quarantined"
    later.save()
    result = batch_plan(batch=batch)

    assert result.summary == {"continues": 1, "blocked": 1}
    assert result.partnerships == 2
    assert Prediction.objects.get(member__mailbox=moved).outcome == "continues"


def test_a_first_plan_and_a_replan_store_the_same_rows():
    ex2010, ex2016, munich = org()
    mailboxes = [MailboxFactory(server=server) for server in (ex2010, ex2016, ex2010)]
    for mailbox in mailboxes:
        PartnershipFactory.create_batch(2, mailbox=mailbox)
    batch = batch_create(
        name="Wave 1", target_server=munich, start_at=SOON, mailboxes=mailboxes, actor=None
    )
    first = set(Prediction.objects.values_list("member_id", "partnership_id", "explanation_id"))

    again = batch_plan(batch=batch)

    assert (
        set(Prediction.objects.values_list("member_id", "partnership_id", "explanation_id"))
        == first
    )
    assert len(first) == again.partnerships == 6


@pytest.mark.postgres
def test_planning_leaves_the_callers_database_settings_as_they_were():
    ex2010, ex2016, _ = org()
    mailbox = MailboxFactory(server=ex2010)
    PartnershipFactory(mailbox=mailbox)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        batch_create(
            name="Wave 1", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
        )
        cursor.execute("SELECT current_setting('work_mem'), current_setting('enable_nestloop')")
        assert cursor.fetchone() == ("256MB", "on")


def run(command: str, *args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return 1, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_create_batch_and_plan_batch_from_the_command_line(tmp_path):
    ex2010, _, _ = org()
    kim = MailboxFactory(server=ex2010, primary_smtp_address="kim@contoso.com")
    PartnershipFactory(mailbox=kim, device__device_id="ApplF17LTTCGFFG8")
    MailboxFactory(server=ex2010, primary_smtp_address="tony@contoso.com")
    csv_file = tmp_path / "batch.csv"
    csv_file.write_text(
        "EmailAddress\r\nKim@Contoso.com\r\ntony@contoso.com\r\n", encoding="utf-8-sig"
    )

    code, out, err = run(
        "create_batch",
        "Wave 1",
        "--target-server",
        "ex2016a",
        "--start",
        "2026-12-05T22:00",
        "--mailboxes-csv",
        str(csv_file),
    )
    assert code == 0, err
    code, out, _ = run("plan_batch", "Wave 1", "--json")

    document = json.loads(out)
    assert document["batch"] == "Wave 1"
    assert document["summary"]["continues"] == 1
    kim_item = next(i for i in document["items"] if i["mailbox"] == "kim@contoso.com")
    device = kim_item["devices"][0]
    assert device["device_id"] == "ApplF17LTTCGFFG8" and device["outcome"] == "continues"
    assert set(device["reasons"][0]) >= {"rule", "text", "user_action", "admin_action", "source"}
    assert {"mailbox": "tony@contoso.com", "devices": []} in document["items"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--target-server", "EX-NOPE", "--start", "2026-12-05T22:00"],
            "--target-server 'EX-NOPE' is not in the inventory",
        ),
        (["--target-server", "EX2016A", "--start", "05.12.2026 22:00"], "is not an ISO 8601 date"),
    ],
)
def test_create_batch_refuses_bad_arguments_with_a_clear_error(tmp_path, args, message):
    org()
    csv_file = tmp_path / "batch.csv"
    csv_file.write_text("EmailAddress\nkim@contoso.com\n")
    code, _, err = run("create_batch", "Wave 1", *args, "--mailboxes-csv", str(csv_file))
    assert code == 1 and message in err


def test_create_batch_lists_every_unknown_address_with_its_line(tmp_path):
    org()
    MailboxFactory(primary_smtp_address="kim@contoso.com")
    csv_file = tmp_path / "batch.csv"
    csv_file.write_text("EmailAddress\nkim@contoso.com\nghost@contoso.com\nnobody@contoso.com\n")

    code, _, err = run(
        "create_batch",
        "Wave 1",
        "--target-server",
        "EX2016A",
        "--start",
        "2026-12-05T22:00",
        "--mailboxes-csv",
        str(csv_file),
    )

    assert code == 1
    assert (
        "batch.csv:3: column EmailAddress: no mailbox with primary address ghost@contoso.com" in err
    )
    assert (
        "batch.csv:4: column EmailAddress: no mailbox with primary address nobody@contoso.com"
        in err
    )


def test_plan_batch_of_an_unknown_batch_fails_with_the_known_names():
    code, _, err = run("plan_batch", "Nope")
    assert code == 1 and "no batch named 'Nope'" in err


def test_plan_document_reads_in_three_queries(django_assert_num_queries):
    ex2010, ex2016, _ = org()
    mailboxes = [MailboxFactory(server=ex2010) for _ in range(5)]
    for m in mailboxes:
        PartnershipFactory(mailbox=m)
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=SOON, mailboxes=mailboxes, actor=None
    )
    batch = type(batch).objects.select_related("target_server").get(pk=batch.pk)
    with django_assert_num_queries(3):
        document = batch_plan_document(batch=batch)
    assert len(document["items"]) == 5


def test_a_reimport_of_the_inventory_replans_active_batches(
    tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    from migrations_plan.tasks import batch_plan_task

    sent = []  # plan tasks the import queues, kept here instead of going to a broker
    monkeypatch.setattr(batch_plan_task, "delay", sent.append)
    from tests import exports

    call_command(
        "import_inventory",
        *map(str, exports.inventory(tmp_path)),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    from devices.models import ExchangeServer, Mailbox

    tony = Mailbox.objects.get(alias="tsmith")
    batch = batch_create(
        name="Wave",
        target_server=ExchangeServer.objects.get(name="EX2016A"),
        start_at=SOON,
        mailboxes=[tony],
        actor=None,
    )
    assert Prediction.objects.get(member__batch=batch).outcome != "blocked"

    quarantined = exports.DEVICES.replace(
        '"Allowed","Global","Default","DeviceOK"\r\n"contoso.local/Europe/Munich',
        '"Quarantined","Global","Default","DeviceOK"\r\n"contoso.local/Europe/Munich',
        1,
    )
    assert quarantined != exports.DEVICES
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "import_inventory",
            str(exports.write(tmp_path, "devices.csv", quarantined)),
            stdout=StringIO(),
            stderr=StringIO(),
        )

    assert sent == [batch.pk], "the import queued the batch's plan instead of planning it"
    assert Prediction.objects.get(member__batch=batch).outcome != "blocked"
    batch_plan_task(batch.pk)
    assert Prediction.objects.get(member__batch=batch).outcome == "blocked"


def test_predictions_go_with_their_partnership_and_member():
    ex2010, ex2016, _ = org()
    mailbox = MailboxFactory(server=ex2010)
    gone, kept = PartnershipFactory.create_batch(2, mailbox=mailbox)
    batch = batch_create(
        name="Wave", target_server=ex2016, start_at=SOON, mailboxes=[mailbox], actor=None
    )
    assert Prediction.objects.count() == 2

    gone.device.delete()
    assert list(Prediction.objects.values_list("partnership_id", flat=True)) == [kept.pk]
    batch.delete()
    assert not Prediction.objects.exists()
