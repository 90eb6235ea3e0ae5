"""Bad input found by trying it (issue 16 point 4): refused whole, line-precise, nothing stored.

Every test goes through the entry point an admin uses (import_inventory, or the Imports page)
and runs on whatever DATABASE_URL names: SQLite by default; run this module again with
DATABASE_URL=postgres://... to check PostgreSQL says the same (COPY is where they differed).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.forms import ImportUploadForm
from devices.importers.kinds import COLUMN_LIMITS, KINDS_BY_NAME
from devices.importers.problems import WEB_FIELDS
from devices.models import (
    Certificate,
    ExchangeServer,
    InventoryImport,
    Mailbox,
    MobileDevice,
    MoveRequest,
    Partnership,
)
from tests import exports
from tests.commands import import_inventory as run

pytestmark = pytest.mark.django_db

DEVICE_HEADER = exports.DEVICES.split("\r\n")[1]  # "Identity","DeviceId",... (17 columns)
TONY = "contoso.local/Europe/London/Tony Smith/ExchangeActiveSyncDevices"


def problems(err: str) -> list[str]:
    return [line for line in err.splitlines() if line and not line.startswith("warning:")]


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (ExchangeServer, Mailbox, MobileDevice, Partnership, MoveRequest, Certificate)
    )


@pytest.fixture
def inventory(tmp_path):
    """Servers and mailboxes in place, so a device file fails only for what it holds."""
    code, _, err = run(
        exports.write(tmp_path, "servers.csv", exports.SERVERS),
        exports.write(tmp_path, "mailboxes.csv", exports.MAILBOXES),
    )
    assert code == 0, err
    return counts()


def device_line(n: int, *, friendly: str = "Tony's iPhone", device_id: str | None = None) -> str:
    device_id = device_id or f"Appl{n:08d}"
    cells = [
        f"{TONY}/iPhone§{device_id}",
        device_id,
        "iPhone",
        "iPhone15C2",
        "iOS 17.5.1 21F90",
        "Apple-iPhone15C2/2106.90",
        friendly,
        "",
        "16.1",
        "EAS",
        "3/14/2019 9:12:44 AM",
        "11/24/2026 4:05:07 PM",
        "11/24/2026 4:05:07 PM",
        "Allowed",
        "Global",
        "Default",
        "DeviceOK",
    ]
    return ",".join('"' + cell.replace('"', '""') + '"' for cell in cells)


def devices_file(folder: Path, lines: list[str], name: str = "devices.csv") -> Path:
    """A device export: line 1 the header, line N + 1 the N-th of ``lines``."""
    return exports.write(folder, name, "\r\n".join([DEVICE_HEADER, *lines]) + "\r\n")


# -- values longer than their column --------------------------------------------------------------


@pytest.mark.parametrize("length", [321, 10_000])
def test_a_long_device_friendly_name_is_stored_whole_on_every_database(tmp_path, inventory, length):
    name = "N" * length
    code, _, err = run(devices_file(tmp_path, [device_line(1, friendly=name)]))

    assert code == 0, err
    assert MobileDevice.objects.get(device_id="Appl00000001").friendly_name == name


def test_a_device_id_longer_than_its_column_is_refused_with_its_line(tmp_path, inventory):
    long_id = "A" * 129
    path = devices_file(tmp_path, [device_line(1), device_line(2, device_id=long_id)])

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv:3: column DeviceId: 129 characters, at most 128",
        # Identity ends in the same id, and is still within its 768 characters.
    ]
    assert counts() == inventory


def test_every_too_long_mailbox_value_is_reported_in_one_run_and_nothing_is_stored(tmp_path):
    header, *rows = exports.MAILBOXES.split("\r\n")
    fields = next(csv.reader([rows[0]]))
    fields[2] = "D" * 256  # DisplayName: 255
    fields[3] = "a" * 129  # Alias: 128
    bad = ",".join('"' + f.replace('"', '""') + '"' for f in fields)
    path = exports.write(tmp_path, "mailboxes.csv", "\r\n".join([header, rows[1], bad]) + "\r\n")
    before = counts()

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "mailboxes.csv:3: column DisplayName: 256 characters, at most 255",
        "mailboxes.csv:3: column Alias: 129 characters, at most 128",
    ]
    assert counts() == before


def test_column_limits_are_the_models_limits():
    from django.apps import apps

    fields = {
        "devices": {
            "device_id": "MobileDevice.device_id",
            "identity": "Partnership.identity",
            "client_type": "Partnership.client_type",
            "eas_version": "Partnership.eas_version",
            "access_state": "Partnership.access_state",
            "access_state_reason": "Partnership.access_state_reason",
            "policy_applied": "Partnership.policy_applied",
            "status": "Partnership.policy_status",
        },
        "mailboxes": {
            key: f"Mailbox.{field}"
            for key, field in {
                "identity": "identity",
                "name": "name",
                "display_name": "display_name",
                "alias": "alias",
                "primary_smtp": "primary_smtp_address",
                "upn": "user_principal_name",
                "sam_account_name": "sam_account_name",
                "database": "database",
                "ou": "organizational_unit",
                "recipient_type": "recipient_type",
                "legacy_dn": "legacy_dn",
            }.items()
        },
        "servers": {key: f"ExchangeServer.{key}" for key in COLUMN_LIMITS["servers"]},
        "vdirs": {
            "internal_url": "ExchangeServer.eas_internal_url",
            "external_url": "ExchangeServer.eas_external_url",
        },
        "certificates": {key: f"Certificate.{key}" for key in COLUMN_LIMITS["certificates"]},
        "move_requests": {key: f"MoveRequest.{key}" for key in COLUMN_LIMITS["move_requests"]},
        "wmi_mailboxes": {
            "legacy_dn": "Mailbox.legacy_dn",
            "display_name": "Mailbox.display_name",
        },
        "mailbox_policies": {"name": "MobileDevicePolicy.name"},
        "device_access_rules": {
            "name": "DeviceAccessRule.name",
            "query_string": "DeviceAccessRule.query_string",
        },
        "mailbox_databases": {
            "name": "MailboxDatabase.name",
            "storage_group_name": "MailboxDatabase.storage_group",
        },
    }
    for kind, limits in COLUMN_LIMITS.items():
        keys = {c.key for c in KINDS_BY_NAME[kind].columns}
        assert set(limits) <= keys, kind
        for key, limit in limits.items():
            model, field = fields[kind][key].split(".")
            assert apps.get_model("devices", model)._meta.get_field(field).max_length == limit, (
                kind,
                key,
            )


def test_device_reported_strings_have_no_limit():
    for field in ("device_type", "model", "os", "user_agent", "friendly_name", "imei"):
        assert MobileDevice._meta.get_field(field).max_length is None, field
    assert MobileDevice._meta.get_field("phone_number").max_length is None


# -- NUL bytes --------------------------------------------------------------------------------------


def test_a_nul_after_the_first_64_kb_is_refused_with_its_line_and_column(tmp_path, inventory):
    lines = [device_line(n) for n in range(1, 299)]
    lines.append(device_line(299, friendly="Tony's\x00iPhone"))
    position = lines[-1].index("\x00") + 1
    path = devices_file(tmp_path, lines)
    assert path.stat().st_size > 1 << 16 and len(path.read_bytes().splitlines()) == 300

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv:300: column DeviceFriendlyName: a NUL character (byte 0) at position "
        f"{position}; an Export-Csv file has none "
        "(a damaged file?)"
    ]
    assert counts() == inventory


def test_a_nul_early_in_the_file_is_a_damaged_line_not_utf16(tmp_path, inventory):
    path = devices_file(tmp_path, [device_line(1), device_line(2, friendly="a\x00b")])

    code, _, err = run(path)

    assert code == 1
    (message,) = problems(err)
    assert message.startswith("devices.csv:3: column DeviceFriendlyName: a NUL character")
    assert "UTF-16" not in err
    assert counts() == inventory


def test_a_nul_in_a_value_spanning_lines_names_the_line_it_is_on(tmp_path, inventory):
    path = devices_file(tmp_path, [device_line(1), device_line(2, friendly="a\r\nb\x00c")])

    code, _, err = run(path)

    assert code == 1
    (message,) = problems(err)
    assert message.startswith("devices.csv:3: column DeviceFriendlyName: a NUL character (byte 0) ")
    assert "of line 4;" in message
    assert counts() == inventory


def test_a_nul_in_a_utf16_export_with_bom_is_found_too(tmp_path, inventory):
    text = "\r\n".join([DEVICE_HEADER, device_line(1), device_line(2, friendly="x\x00")]) + "\r\n"
    path = tmp_path / "devices.csv"
    path.write_bytes(text.encode("utf-16"))

    code, _, err = run(path)

    assert code == 1
    (message,) = problems(err)
    assert message.startswith("devices.csv:3: column DeviceFriendlyName: a NUL character")
    assert counts() == inventory


def test_utf16_without_a_bom_is_still_recognised(tmp_path, inventory):
    path = tmp_path / "devices.csv"
    path.write_bytes(("\r\n".join([DEVICE_HEADER, device_line(1)]) + "\r\n").encode("utf-16-le"))

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv: looks like UTF-16-LE without a byte order mark (every other byte is NUL). "
        "Re-run with --encoding utf-16-le, or export again with -Encoding UTF8."
    ]
    code, _, err = run(path, encoding="utf-16-le")
    assert code == 0, err


# -- long values and quotes ---------------------------------------------------------------------------


def test_a_properly_closed_one_megabyte_value_is_read_whole(tmp_path, inventory):
    name = "x" * 1_000_000
    path = devices_file(tmp_path, [device_line(1), device_line(2, friendly=name), device_line(3)])

    code, _, err = run(path)

    assert code == 0, err
    assert MobileDevice.objects.get(device_id="Appl00000002").friendly_name == name


def test_a_value_longer_than_the_reader_takes_is_named_at_its_own_line_and_column(
    tmp_path, inventory
):
    path = devices_file(
        tmp_path, [device_line(1), device_line(2, friendly="y" * 5000), device_line(3)]
    )
    before = csv.field_size_limit(1000)
    try:
        code, _, err = run(path)
    finally:
        csv.field_size_limit(before)

    assert code == 1
    assert problems(err) == [
        "devices.csv:3: column DeviceFriendlyName: a value of 5000 characters; exsync reads at "
        "most 1000 in one value"
    ]
    assert counts() == inventory


def test_a_quote_never_closed_names_the_line_and_column_where_it_opened(tmp_path, inventory):
    cut = device_line(3).split(",")
    runaway = ",".join(cut[:6]) + ",\"Tony's iPhone\r\nand so on," + "z" * 200
    path = devices_file(tmp_path, [device_line(1), device_line(2), runaway])

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv:4: column DeviceFriendlyName: quoted value never closed before the end of "
        "the file (file cut off?)"
    ]
    assert counts() == inventory


# -- not text at all, or nothing ------------------------------------------------------------------


def test_a_png_is_not_a_text_export(tmp_path, inventory):
    path = tmp_path / "devices.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv: not a text export (a PNG image); expected a CSV file written by Export-Csv"
    ]
    assert counts() == inventory


def test_random_bytes_are_not_a_text_export(tmp_path, inventory):
    path = tmp_path / "devices.csv"
    path.write_bytes(random.Random(16).randbytes(100_000))

    code, _, err = run(path)

    assert code == 1
    (message,) = problems(err)
    assert message.startswith("devices.csv: not a text export (")
    assert "control characters" in message and "UTF-16" not in message
    assert counts() == inventory


def test_an_empty_file_is_refused_with_its_name(tmp_path, inventory):
    path = tmp_path / "devices.csv"
    path.write_bytes(b"")

    code, _, err = run(path)

    assert code == 1
    assert problems(err) == [
        "devices.csv: the file is empty; expected an Export-Csv file with a header line"
    ]
    assert counts() == inventory


# -- the Imports page -----------------------------------------------------------------------------


def upload(client, capture, *files, **fields):
    """Post files on the Imports page; the import task runs at once (as a worker would)."""
    from exsync.celery import app

    app.conf.task_always_eager = True
    try:
        with capture(execute=True):
            return client.post(
                reverse("devices:import_list"),
                {"files": list(files), "full_export": "on", **fields},
            )
    finally:
        app.conf.task_always_eager = False


def test_the_web_form_names_its_own_fields(
    client, admin_user, media_root, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    cp1252 = SimpleUploadedFile("mailboxes.csv", exports.MAILBOXES.encode("cp1252"), "text/csv")
    upload(client, django_capture_on_commit_callbacks, cp1252)

    (record,) = InventoryImport.objects.all()
    assert record.problems == [
        "mailboxes.csv:3: is not UTF-8 (byte 0xF6 on line 3). It was probably exported with "
        "-Encoding Default or OEM; re-import with the Encoding field set to cp1252 (or the code "
        "page it was written in), or export again with -Encoding UTF8."
    ]
    assert "--" not in " ".join(record.problems)
    assert Mailbox.objects.count() == 0


def test_the_command_line_names_its_options(tmp_path):
    path = exports.write(tmp_path, "mailboxes.csv", exports.MAILBOXES, encoding="cp1252")

    code, _, err = run(path)

    assert code == 1
    assert "re-import with --encoding cp1252 (or the code page" in err
    assert Mailbox.objects.count() == 0


def test_web_field_names_are_the_forms_labels():
    form = ImportUploadForm()
    for name, label in WEB_FIELDS.items():
        assert label == f"the {form[name].label} field"


def test_a_long_value_is_refused_the_same_through_the_web(
    client, admin_user, media_root, django_capture_on_commit_callbacks, tmp_path
):
    header, *rows = exports.MAILBOXES.split("\r\n")
    fields = next(csv.reader([rows[0]]))
    fields[4] = "a" * 320 + "@contoso.com"  # PrimarySmtpAddress: 320
    bad = ",".join('"' + f.replace('"', '""') + '"' for f in fields)
    text = "\r\n".join([header, bad]) + "\r\n"
    client.force_login(admin_user)
    upload(
        client,
        django_capture_on_commit_callbacks,
        SimpleUploadedFile("mailboxes.csv", text.encode("utf-8-sig"), "text/csv"),
    )

    (record,) = InventoryImport.objects.all()
    assert record.problems == [
        "mailboxes.csv:2: column PrimarySmtpAddress: 332 characters, at most 320"
    ]
    assert Mailbox.objects.count() == 0


def test_an_empty_upload_is_refused_with_its_name(
    client, admin_user, media_root, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    good = SimpleUploadedFile("servers.csv", exports.SERVERS.encode("utf-8-sig"), "text/csv")
    empty = SimpleUploadedFile("devices.csv", b"", "text/csv")

    response = upload(client, django_capture_on_commit_callbacks, good, empty)

    assert response.status_code == 200
    assert "devices.csv: the file is empty" in response.content.decode()
    assert not InventoryImport.objects.exists()


def test_an_ambiguous_date_message_names_the_culture_field_on_the_web(tmp_path):
    from devices.importers import open_export

    line = device_line(1).replace("11/24/2026 4:05:07 PM", "3/4/2026 16:05:07")
    line = line.replace("3/14/2019 9:12:44 AM", "3/4/2019 09:12:44")
    path = devices_file(tmp_path, [line])

    cli, web = open_export(path), open_export(path, via="web")

    assert "re-run with --culture en-GB (day first) or --culture en-US" in str(cli.problems[0])
    assert (
        "re-run with the Culture field set to en-GB (day first) or the Culture field set to "
        "en-US (month first)"
    ) in str(web.problems[0])
