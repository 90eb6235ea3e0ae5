"""Stale marking (issue 16 point 3): partial by default; a full device export marks stale only
what it covers (the servers of its mailboxes), and asks first when that is too many."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.forms import ImportUploadForm
from devices.models import (
    ExchangeServer,
    Generation,
    ImportState,
    InventoryImport,
    Mailbox,
    MobileDevice,
    Partnership,
)
from tests import exports
from tests.commands import import_inventory as run
from tests.factories import ExchangeServerFactory

pytestmark = pytest.mark.django_db

ON_EX2016A = 120  # partnerships of mailboxes on the server the 3-row file covers
ON_EX2010A = 60  # and on a server it does not name


def _phones(server, count: int, prefix: str) -> list[tuple[str, str]]:
    """`count` mailboxes on `server`, one partnership each: (Identity, DeviceId) pairs."""
    mailboxes = Mailbox.objects.bulk_create(
        Mailbox(
            identity=f"contoso.local/Users/{prefix} {n}",
            identity_key=f"contoso.local/users/{prefix} {n}".lower(),
            name=f"{prefix} {n}",
            display_name=f"{prefix} {n}",
            alias=f"{prefix}{n}",
            primary_smtp_address=f"{prefix}{n}@contoso.com".lower(),
            server=server,
            database=f"DB-{server.name}",
        )
        for n in range(count)
    )
    devices = MobileDevice.objects.bulk_create(
        MobileDevice(device_id=f"{prefix}DEV{n:05d}", device_type="iPhone") for n in range(count)
    )
    Partnership.objects.bulk_create(
        Partnership(device=d, mailbox=m) for d, m in zip(devices, mailboxes, strict=True)
    )
    return [(m.identity, d.device_id) for d, m in zip(devices, mailboxes, strict=True)]


@pytest.fixture
def org():
    """The sample organisation: many partnerships on two servers."""
    ex2016a = ExchangeServerFactory(name="EX2016A")
    ex2010a = ExchangeServerFactory(name="EX2010A", ex2010=True)
    assert ex2010a.generation == Generation.EX2010
    return {
        "EX2016A": _phones(ex2016a, ON_EX2016A, "Munich"),
        "EX2010A": _phones(ex2010a, ON_EX2010A, "London"),
    }


def three_rows(tmp_path: Path, org: dict) -> Path:
    return exports.write(tmp_path, "devices.csv", exports.device_export(org["EX2016A"][:3]))


def stale() -> int:
    return Partnership.objects.filter(is_stale=True).count()


# --- the command line -------------------------------------------------------------------------


def test_a_three_row_device_file_marks_nothing_stale_by_default(tmp_path, org):
    code, out, err = run(three_rows(tmp_path, org))

    assert code == 0, err
    assert stale() == 0
    assert InventoryImport.objects.get().full_export is False
    assert "stale 0" in out


def test_partial_is_still_accepted_and_is_the_default(tmp_path, org):
    code, _, err = run(three_rows(tmp_path, org), partial=True)
    assert code == 0, err
    assert stale() == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_full_three_row_file_asks_for_confirmation_with_the_numbers(tmp_path, org, dry_run):
    before = list(Partnership.objects.order_by("pk").values_list("pk", "updated_at", "is_stale"))

    code, out, err = run(three_rows(tmp_path, org), full=True, dry_run=dry_run)

    assert code == 1
    # Only EX2016A's partnerships are candidates: the file's mailboxes are all there.
    assert (
        f"would mark {ON_EX2016A - 3} of {ON_EX2016A} covered partnerships stale (97.5%): "
        "confirm" in err
    )
    assert "mailboxes on EX2016A" in err and "EX2010A" not in err
    assert "re-run with --confirm-stale" in out.lower()
    assert list(Partnership.objects.order_by("pk").values_list("pk", "updated_at", "is_stale")) == (
        before
    ), "nothing written before confirmation"
    record = InventoryImport.objects.get()
    assert record.state == ImportState.REJECTED
    assert record.counts["stale_confirm"]["would_mark_stale"] == ON_EX2016A - 3
    assert record.counts["stale_confirm"]["covered"] == ON_EX2016A
    assert record.counts["stale_confirm"]["servers"] == ["EX2016A"]


def test_confirm_stale_marks_only_the_covered_servers_partnerships(tmp_path, org):
    code, _, err = run(three_rows(tmp_path, org), full=True, confirm_stale=True)

    assert code == 0, err
    assert stale() == ON_EX2016A - 3
    assert not Partnership.objects.filter(is_stale=True, mailbox__server__name="EX2010A").exists()
    record = InventoryImport.objects.get()
    assert record.counts["stale"] == ON_EX2016A - 3
    assert record.counts["covered"] == {"servers": 1, "partnerships": ON_EX2016A}
    assert any("full export covering EX2016A" in w for w in record.warnings)


def test_a_confirmed_dry_run_reports_the_number_and_writes_nothing(tmp_path, org):
    code, _, err = run(three_rows(tmp_path, org), full=True, confirm_stale=True, dry_run=True)

    assert code == 0, err
    assert stale() == 0
    assert InventoryImport.objects.get().counts["stale"] == ON_EX2016A - 3


def test_a_full_export_under_the_share_is_applied_without_asking(tmp_path, org):
    listed = org["EX2016A"][: ON_EX2016A - 10] + org["EX2010A"]  # 10 of 180 missing: 5.6%
    path = exports.write(tmp_path, "devices.csv", exports.device_export(listed))

    code, _, err = run(path, full=True)

    assert code == 0, err
    assert stale() == 10
    assert InventoryImport.objects.get().counts["covered"]["partnerships"] == 180


def test_the_share_is_a_setting(tmp_path, org, settings):
    settings.STALE_CONFIRM_SHARE = 0.99
    code, _, err = run(three_rows(tmp_path, org), full=True)
    assert code == 0, err
    assert stale() == ON_EX2016A - 3


def test_full_and_partial_together_are_refused(tmp_path, org):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="contradict"):
        run(three_rows(tmp_path, org), full=True, partial=True)


# --- the web ------------------------------------------------------------------------------------


def test_the_full_export_box_is_unticked_by_default_and_says_what_it_does():
    field = ImportUploadForm().fields["full_export"]
    assert field.initial is False
    assert "marked stale" in field.help_text and "20%" in field.help_text
    assert ImportUploadForm({}, {}).fields["full_export"].clean(None) is False


@pytest.fixture
def eager():
    from exsync.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def upload(client, tmp_path, org, capture, **data):
    csv = three_rows(tmp_path, org).read_bytes()
    files = [SimpleUploadedFile("devices.csv", csv, "text/csv")]
    with capture(execute=True):
        response = client.post(reverse("devices:import_list"), {"files": files, **data})
    assert response.status_code == 302
    return response["Location"]


def confirm_url(page_url: str) -> str:
    return page_url + "confirm-stale/"


def test_web_upload_is_partial_by_default(
    client, admin_user, media_root, eager, tmp_path, org, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    upload(client, tmp_path, org, django_capture_on_commit_callbacks)
    record = InventoryImport.objects.get()
    assert record.state == ImportState.SUCCEEDED and record.full_export is False
    assert stale() == 0


@pytest.mark.parametrize("dry_run", [False, True])
def test_web_full_export_over_the_share_is_confirmed_once(
    client,
    admin_user,
    media_root,
    eager,
    tmp_path,
    org,
    django_capture_on_commit_callbacks,
    dry_run,
):
    client.force_login(admin_user)
    data = {"full_export": "on", **({"dry_run": "on"} if dry_run else {})}
    page_url = upload(client, tmp_path, org, django_capture_on_commit_callbacks, **data)

    page = client.get(page_url).content.decode()
    assert stale() == 0
    assert (
        f"would mark {ON_EX2016A - 3} of {ON_EX2016A} covered partnerships stale (97.5%): confirm"
        in page
    )
    assert "EX2016A" in page and "Confirm and mark them stale" in page

    # A double click: two POSTs, one import.
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(confirm_url(page_url), {"confirm_stale": "1"})
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(confirm_url(page_url), {"confirm_stale": "1"})

    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] != page_url
    assert InventoryImport.objects.count() == 2
    confirmed = InventoryImport.objects.latest("id")
    assert confirmed.state == ImportState.SUCCEEDED and confirmed.options["confirm_stale"]
    assert confirmed.counts["stale"] == ON_EX2016A - 3
    assert stale() == (0 if dry_run else ON_EX2016A - 3)
    assert not Partnership.objects.filter(is_stale=True, mailbox__server__name="EX2010A").exists()
    done = client.get(page_url).content.decode()
    assert "Confirm and mark them stale" not in done and "see the import that followed" in done


def test_helpdesk_cannot_confirm(
    client,
    admin_user,
    helpdesk_user,
    media_root,
    eager,
    tmp_path,
    org,
    django_capture_on_commit_callbacks,
):
    client.force_login(admin_user)
    page_url = upload(client, tmp_path, org, django_capture_on_commit_callbacks, full_export="on")
    client.force_login(helpdesk_user)
    assert "Confirm and mark them stale" not in client.get(page_url).content.decode()
    assert client.post(confirm_url(page_url), {"confirm_stale": "1"}).status_code == 403
    assert InventoryImport.objects.count() == 1


def test_new_partnerships_in_the_file_do_not_dilute_the_share(tmp_path, org):
    # 10 of EX2016A's 120 phones, plus 400 new ones on the same mailboxes: 110 of the 120
    # that were there would go stale, whatever the new ones add to the count.
    mailboxes = [identity for identity, _ in org["EX2016A"]]
    new = [(mailboxes[n % len(mailboxes)], f"NEWDEV{n:05d}") for n in range(400)]
    path = exports.write(tmp_path, "devices.csv", exports.device_export(org["EX2016A"][:10] + new))

    code, _, err = run(path, full=True)

    assert code == 1 and "110 of 120" in err, err
    assert stale() == 0 and not Partnership.objects.filter(device__device_id="NEWDEV00000")


def test_each_server_is_judged_on_its_own_phones(tmp_path, org, settings):
    settings.STALE_CONFIRM_SHARE = 0.5
    # All of EX2016A's, one of EX2010A's: 59 of 180 overall (33%) but 59 of EX2010A's 60.
    listed = org["EX2016A"] + org["EX2010A"][:1]
    path = exports.write(tmp_path, "devices.csv", exports.device_export(listed))

    code, _, err = run(path, full=True)

    assert code == 1 and "59 of 60" in err and "EX2010A" in err, err
    assert stale() == 0


def test_two_full_device_files_in_one_import_are_refused_together(tmp_path, org):
    half = ON_EX2016A // 2
    first = exports.write(tmp_path, "db1.csv", exports.device_export(org["EX2016A"][:half]))
    second = exports.write(tmp_path, "db2.csv", exports.device_export(org["EX2016A"][half:]))

    code, _, err = run(first, second, full=True, confirm_stale=True)

    assert code == 1 and "2 device files given as full exports together" in err, err
    assert stale() == 0
    assert set(InventoryImport.objects.values_list("state", flat=True)) == {ImportState.REJECTED}


def test_a_confirmation_covers_the_number_shown_and_no_more(
    client, admin_user, media_root, eager, tmp_path, org, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    page_url = upload(client, tmp_path, org, django_capture_on_commit_callbacks, full_export="on")
    # More phones appear on EX2016A after the page showed its numbers.
    _phones(ExchangeServer.objects.get(name="EX2016A"), 10, "Later")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(confirm_url(page_url), {"confirm_stale": "1"})

    confirmed = InventoryImport.objects.latest("id")
    assert confirmed.options["confirm_stale"] == ON_EX2016A - 3
    assert confirmed.state == ImportState.REJECTED, "it would mark 10 more: asked again"
    assert confirmed.counts["stale_confirm"]["would_mark_stale"] == ON_EX2016A - 3 + 10
    assert stale() == 0


def test_a_commands_file_is_confirmed_by_running_the_command_again(
    tmp_path, org, client, admin_user
):
    code, _, _ = run(three_rows(tmp_path, org), full=True)
    assert code == 1
    record = InventoryImport.objects.get()
    client.force_login(admin_user)

    page = client.get(reverse("devices:import_group", args=[record.group])).content.decode()

    assert "Confirm and mark them stale" not in page and "--confirm-stale" in page


def test_the_web_can_import_organisation_wide_files_as_partial(
    client, admin_user, media_root, eager, tmp_path, org, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    form = client.get(reverse("devices:import_list")).content.decode()
    assert "Organisation-wide files list only part of it" in form

    upload(client, tmp_path, org, django_capture_on_commit_callbacks, partial="on")

    assert InventoryImport.objects.get().options["partial"] is True  # as --partial
