"""import_inventory: every kind of export, all-or-nothing per file, idempotent, clear errors."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from devices.models import (
    Certificate,
    ExchangeServer,
    ImportState,
    InventoryImport,
    Mailbox,
    MobileDevice,
    MoveRequest,
    Namespace,
    Organisation,
    Partnership,
)
from tests import exports

pytestmark = pytest.mark.django_db


def run(*files: Path, **options) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_inventory", *map(str, files), stdout=out, stderr=err, **options)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def summary() -> dict:
    out = StringIO()
    call_command("inventory_summary", json=True, stdout=out)
    return json.loads(out.getvalue())


def test_servers_mailboxes_and_devices_import_in_dependency_order(tmp_path):
    code, _, err = run(*exports.inventory(tmp_path))

    assert code == 0, err
    assert summary() == {
        "servers": 3,
        "mailboxes": 3,
        "devices": 2,
        "partnerships": 3,
        "move_requests": 0,
        "mailboxes_per_server": {"EX03": 1, "EX2010A": 1, "EX2016A": 1},
        "partnerships_per_server": {"EX03": 0, "EX2010A": 1, "EX2016A": 2},
        "partnerships_without_mailbox": 0,
        "mailboxes_without_server": 0,
        "stale_partnerships": 0,
    }
    ex03 = ExchangeServer.objects.get(name="EX03")
    assert (ex03.generation, ex03.build, ex03.iwa_enabled) == ("2003", "6.5.7638.2", None)
    kim = Mailbox.objects.get(alias="kakers")
    assert kim.server == ex03, "2003 mailboxes without ServerName take the server from Database"
    assert kim.display_name == 'Katherine "Kate" Akers'
    shared = MobileDevice.objects.get(device_id="ApplF17LTTCGFFG8")
    assert shared.partnerships.count() == 2, "one device partnered with two mailboxes"
    assert shared.friendly_name == "Tony's iPhone, work"
    tony = Partnership.objects.get(device=shared, mailbox__alias="tsmith")
    assert tony.last_success_sync_at.isoformat() == "2026-11-24T16:05:07+00:00"
    assert tony.eas_version == "16.1"
    outlook = Partnership.objects.get(device__device_id="5eec4e941e0748a264512fd83770d5ac")
    assert outlook.mailbox.alias == "bgroesser" and outlook.client_type == "Outlook"


def test_importing_the_same_files_twice_changes_nothing(tmp_path):
    files = exports.inventory(tmp_path)
    run(*files)
    before = list(Partnership.objects.order_by("pk").values_list("pk", "updated_at"))

    code, out, _ = run(*files)

    assert code == 0
    assert list(Partnership.objects.order_by("pk").values_list("pk", "updated_at")) == before
    devices = InventoryImport.objects.filter(kind="devices").latest("id")
    assert devices.counts["partnerships"] == {"created": 0, "updated": 0, "unchanged": 3}
    assert devices.counts["devices"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert "3 unchanged" in out


def test_a_newer_export_updates_in_place_and_marks_missing_partnerships_stale(tmp_path):
    run(*exports.inventory(tmp_path))
    lines = exports.DEVICES.splitlines(keepends=True)
    newer = "".join(lines[:3] + lines[4:]).replace("iOS 17.5.1 21F90", "iOS 18.1 22B83")

    code, _, err = run(exports.write(tmp_path, "devices-new.csv", newer))

    assert code == 0, err
    assert MobileDevice.objects.get(device_id="ApplF17LTTCGFFG8").os == "iOS 18.1 22B83"
    gone = Partnership.objects.get(device__device_id="5eec4e941e0748a264512fd83770d5ac")
    assert gone.is_stale, "absent from the newer full export: kept, marked stale"
    assert Partnership.objects.count() == 3
    record = InventoryImport.objects.latest("id")
    assert record.counts["stale"] == 1
    assert record.counts["partnerships"]["updated"] == 0


def test_partial_export_marks_nothing_stale(tmp_path):
    run(*exports.inventory(tmp_path))
    first_device_only = "".join(exports.DEVICES.splitlines(keepends=True)[:3])
    run(exports.write(tmp_path, "one.csv", first_device_only), partial=True)
    assert not Partnership.objects.filter(is_stale=True).exists()


def test_device_of_an_unknown_mailbox_rejects_the_whole_file_with_line_and_column(tmp_path):
    run(*exports.inventory(tmp_path)[1:])  # mailboxes and servers
    ghost = exports.DEVICES.replace(
        "Europe/Munich/Björn Größer/ExchangeActiveSyncDevices/REST",
        "Users/Former User/ExchangeActiveSyncDevices/REST",
    )

    code, out, err = run(exports.write(tmp_path, "devices.csv", ghost))

    assert code == 1
    assert (
        "devices.csv:4: column Identity: mailbox 'contoso.local/users/former user' is not in the inventory"
        in err
    )
    assert "REJECTED" in out and "nothing from it was written" in out
    assert not Partnership.objects.exists() and not MobileDevice.objects.exists()


def test_every_problem_of_a_broken_file_is_reported_and_nothing_is_written(tmp_path):
    run(*exports.inventory(tmp_path))
    lines = exports.DEVICES.splitlines(keepends=True)
    broken = (
        lines[0]
        + lines[1]
        + lines[2].replace('"11/24/2026 4:05:07 PM"', '"2/30/2026 9:14:02 AM"', 1)
        + lines[3].replace(',"Allowed"', "", 1)
        + lines[4]
    )
    before = list(Partnership.objects.values_list("pk", "updated_at", "last_success_sync_at"))

    code, _, err = run(exports.write(tmp_path, "devices.csv", broken))

    assert code == 1
    assert "devices.csv:3: column LastSuccessSync:" in err
    assert "devices.csv:4: 16 values, but the header has 17 columns" in err
    assert (
        list(Partnership.objects.values_list("pk", "updated_at", "last_success_sync_at")) == before
    )


def test_dry_run_reports_what_would_change_and_writes_nothing(tmp_path):
    code, out, _ = run(*exports.inventory(tmp_path), dry_run=True)

    assert code == 0
    assert "would import" in out
    assert not ExchangeServer.objects.exists() and not Mailbox.objects.exists()
    servers = InventoryImport.objects.get(kind="servers")
    assert servers.dry_run and servers.counts["servers"]["created"] == 3


def test_mailbox_on_an_unknown_server_is_rejected(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    moved = exports.MAILBOXES.replace('"ex2016a"', '"ex-old9"')

    code, _, err = run(exports.write(tmp_path, "mailboxes.csv", moved))

    assert code == 1
    assert "mailboxes.csv:3: column ServerName: server 'ex-old9' is not in the inventory" in err
    assert not Mailbox.objects.exists()


def test_virtual_directories_set_the_endpoint_and_authentication(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))

    code, _, err = run(exports.write(tmp_path, "vdirs.csv", exports.VDIRS))

    assert code == 0, err
    ex2016 = ExchangeServer.objects.get(name="EX2016A")
    assert ex2016.eas_external_url == "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    assert ex2016.iwa_enabled is False, "the front-end directory wins over the back end"
    assert ExchangeServer.objects.get(name="EX03").iwa_enabled is None, "2003 stays unknown"


def test_certificates_need_a_server_and_set_the_iis_certificate_of_the_endpoint(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    certs = exports.write(tmp_path, "certs.csv", exports.CERTIFICATES)

    code, _, err = run(certs)
    assert code == 1 and "--server NAME" in err

    code, _, err = run(certs, server="ex2016a")
    assert code == 0, err
    server = ExchangeServer.objects.get(name="EX2016A")
    assert server.cert_thumbprint == "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C"
    assert server.cert_issuer.startswith("CN=DigiCert")
    assert Certificate.objects.count() == 2


def test_move_requests_link_to_mailboxes_by_exchange_guid(tmp_path):
    run(*exports.inventory(tmp_path))

    code, _, err = run(exports.write(tmp_path, "moves.csv", exports.MOVE_REQUESTS))

    assert code == 0, err
    assert dict(MoveRequest.objects.values_list("mailbox__alias", "status")) == {
        "tsmith": "Completed",
        "kakers": "Failed",
    }
    assert summary()["move_requests"] == 2


def test_a_migration_batch_csv_is_not_inventory(tmp_path):
    code, _, err = run(
        exports.write(tmp_path, "batch.csv", "EmailAddress\r\ntony.smith@contoso.com\r\n")
    )
    assert code == 1
    assert "New-MigrationBatch" in err


def test_format_list_output_is_refused_with_advice(tmp_path):
    listing = "\r\n\r\nDeviceID      : ApplF17LTTCGFFG8\r\nDeviceType    : iPhone\r\n\r\n"
    code, _, err = run(exports.write(tmp_path, "devices.csv", listing, encoding="utf-16"))
    assert code == 1
    assert "Format-List" in err and "Export-Csv" in err


def test_every_import_is_recorded_with_its_hash(tmp_path):
    files = exports.inventory(tmp_path)
    run(*files)
    import hashlib

    record = InventoryImport.objects.get(filename="devices.csv")
    assert record.sha256 == hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert record.state == ImportState.SUCCEEDED and record.source == "cli"


def test_device_text_that_looks_like_a_null_marker_is_kept_as_text(tmp_path):
    run(*exports.inventory(tmp_path))
    odd = exports.DEVICES.replace("Tony's iPhone, work", "\\N").replace(
        '"iPhone von Björn"', "\"=cmd|' /C calc'!A0\""
    )

    code, _, err = run(exports.write(tmp_path, "devices.csv", odd))

    assert code == 0, err
    names = set(MobileDevice.objects.values_list("friendly_name", flat=True))
    assert "\\N" in names and "=cmd|' /C calc'!A0" in names


def test_a_new_guid_with_a_taken_address_is_refused_and_never_merges_two_mailboxes(tmp_path):
    run(*exports.inventory(tmp_path))
    tony = Mailbox.objects.get(alias="tsmith")
    lines = exports.MAILBOXES.splitlines(keepends=True)
    takeover = (
        lines[0]
        + lines[1].replace("Tony.Smith@contoso.com", "t.smith.old@contoso.com")
        + lines[1]
        .replace("5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92", "11111111-2222-4333-8444-555555555555")
        .replace('"tsmith"', '"tsmith2"')
    )

    code, _, err = run(exports.write(tmp_path, "mailboxes.csv", takeover), partial=True)

    assert code == 1
    assert (
        "mailboxes.csv:3: column PrimarySmtpAddress: tony.smith@contoso.com belongs to another mailbox"
        in err
    )
    tony.refresh_from_db()
    assert tony.primary_smtp_address == "tony.smith@contoso.com" and Mailbox.objects.count() == 3


def test_a_device_key_matching_two_mailboxes_is_reported_not_guessed(tmp_path):
    run(*exports.inventory(tmp_path))
    Mailbox.objects.filter(alias="bgroesser").update(
        alias="TSMITH"
    )  # two mailboxes answer to tsmith
    Mailbox.objects.filter(alias="TSMITH").update(alias="tsmith")
    devices = '"Mailbox","DeviceID","DeviceType"\r\n"tsmith","ApplNEW000000001","iPhone"\r\n'

    code, _, err = run(exports.write(tmp_path, "devices.csv", devices), partial=True)

    assert code == 1
    assert (
        "devices.csv:2: column Identity: mailbox 'tsmith' is not in the inventory (or matches several"
        in err
    )


def test_export_times_are_read_in_the_given_time_zone(tmp_path):
    files = exports.inventory(tmp_path)
    run(*files[1:])

    code, _, err = run(files[0], timezone="Europe/Berlin")

    assert code == 0, err
    tony = Partnership.objects.get(device__device_id="ApplF17LTTCGFFG8", mailbox__alias="tsmith")
    # 4:05:07 PM in Berlin (CET, UTC+1 in November) is 15:05:07 UTC.
    assert tony.last_success_sync_at.isoformat() == "2026-11-24T15:05:07+00:00"
    moves = exports.write(tmp_path, "moves.csv", exports.MOVE_REQUESTS)
    run(moves, timezone="America/New_York")
    from devices.models import MoveRequest

    queued = MoveRequest.objects.get(mailbox__alias="tsmith").queued_at
    assert queued.isoformat() == "2026-11-21T02:26:00+00:00"  # 9:26 PM EST


# -- forests and namespaces -----------------------------------------------------------------------


def test_each_server_forest_comes_from_site_then_dn_then_fqdn(tmp_path):
    code, _, err = run(exports.write(tmp_path, "servers.csv", exports.SERVERS_FORESTS))

    assert code == 0, err
    forests = {s.name: (s.forest, s.forest_source) for s in ExchangeServer.objects.all()}
    assert forests == {
        "EX2016A": ("contoso.local", "Site"),
        "TS2019A": ("tailspin.local", "Site"),  # Site written in capitals: stored lower case
        "EX03": ("contoso.local", "DistinguishedName"),  # 2003: no Site; a child-domain Fqdn
        "EX03B": ("emea.contoso.local", "Fqdn"),  # only the Fqdn: the child domain, warned
    }
    assert "the forest of 1 servers was taken from Fqdn (first: EX03B -> emea.contoso.local)" in err
    assert sorted(Organisation.objects.values_list("forest", flat=True)) == [
        "contoso.local",
        "emea.contoso.local",
        "tailspin.local",
    ]
    ex03 = ExchangeServer.objects.get(name="EX03")
    assert ex03.distinguished_name.startswith("CN=EX03,CN=Servers,")


def test_a_re_import_keeps_the_declared_forest_and_adds_no_organisation(tmp_path):
    servers = exports.write(tmp_path, "servers.csv", exports.SERVERS_FORESTS)
    run(servers)
    ExchangeServer.objects.filter(name="EX03B").update(forest_recorded="contoso.local")

    code, _, err = run(servers)

    assert code == 0, err
    ex03b = ExchangeServer.objects.get(name="EX03B")
    assert (ex03b.forest_recorded, ex03b.forest, ex03b.effective_forest) == (
        "contoso.local",
        "emea.contoso.local",
        "contoso.local",
    )
    record = InventoryImport.objects.latest("id")
    assert record.counts["servers"] == {"created": 0, "updated": 0, "unchanged": 4}
    assert record.counts["organisations"] == {"created": 0, "unchanged": 3}


def test_two_forests_in_two_files_make_two_organisations(tmp_path):
    run(exports.write(tmp_path, "contoso.csv", exports.SERVERS))
    tailspin = "".join(exports.SERVERS_FORESTS.splitlines(keepends=True)[:2]) + "".join(
        exports.SERVERS_FORESTS.splitlines(keepends=True)[3:4]
    )

    code, _, err = run(exports.write(tmp_path, "tailspin.csv", tailspin))

    assert code == 0, err
    assert sorted(Organisation.objects.values_list("forest", flat=True)) == [
        "contoso.local",
        "tailspin.local",
    ]
    assert ExchangeServer.objects.get(name="EX03").forest_source == "Fqdn"
    assert not Organisation.objects.filter(is_exchange_online=True).exists()


def _namespaces() -> dict[str, tuple[list[str], bool, bool]]:
    return {
        ns.host: (sorted(s.name for s in ns.servers.all()), ns.is_legacy, ns.imported)
        for ns in Namespace.objects.prefetch_related("servers")
    }


def test_virtual_directories_make_namespaces_from_external_urls(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    vdirs = exports.write(tmp_path, "vdirs.csv", exports.VDIRS)

    code, _, err = run(vdirs)

    assert code == 0, err
    assert _namespaces() == {
        "mail.contoso.com": (["EX2016A"], False, True),
        "legacy.contoso.com": (["EX2010A"], True, True),
    }, "InternalUrl hosts make no namespace"
    imported = dict(ExchangeServer.objects.values_list("name", "eas_vdir_imported"))
    assert imported == {"EX2016A": True, "EX2010A": True, "EX03": False}

    code, _, _ = run(vdirs)

    assert code == 0
    record = InventoryImport.objects.latest("id")
    assert record.counts["namespaces"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert record.counts["servers"] == {"updated": 0, "unchanged": 2}


def test_a_re_import_keeps_what_an_admin_set_and_drops_servers_that_stopped_publishing(
    tmp_path,
):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    run(exports.write(tmp_path, "vdirs.csv", exports.VDIRS))
    Namespace.objects.filter(host="mail.contoso.com").update(
        devices_use=True, sites="HQ", retired=True, is_legacy=True
    )
    Namespace.objects.filter(host="legacy.contoso.com").update(is_legacy=False, devices_use=True)
    # EX2010A no longer publishes legacy.contoso.com (empty ExternalUrl: the site proxies).
    newer = exports.VDIRS.replace('"https://legacy.contoso.com/Microsoft-Server-ActiveSync"', "")

    code, _, err = run(exports.write(tmp_path, "vdirs.csv", newer))

    assert code == 0, err
    mail = Namespace.objects.get(host="mail.contoso.com")
    assert (mail.devices_use, mail.sites, mail.retired, mail.is_legacy) == (True, "HQ", True, True)
    legacy = Namespace.objects.get(host="legacy.contoso.com")
    assert (legacy.is_legacy, legacy.devices_use, list(legacy.servers.all())) == (False, True, [])
    assert "namespace legacy.contoso.com is no longer the ExternalUrl of any imported server" in err
    ex2010 = ExchangeServer.objects.get(name="EX2010A")
    assert (ex2010.eas_external_url, ex2010.eas_vdir_imported) == ("", True)
    record = InventoryImport.objects.latest("id")
    assert record.counts["namespaces"] == {"created": 0, "updated": 1, "unchanged": 1}


def test_an_admin_namespace_seen_in_an_export_becomes_imported_and_keeps_its_servers(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    ns = Namespace.objects.create(host="mail.contoso.com", devices_use=True)
    ns.servers.add(ExchangeServer.objects.get(name="EX03"))

    code, _, err = run(exports.write(tmp_path, "vdirs.csv", exports.VDIRS))

    assert code == 0, err
    assert _namespaces()["mail.contoso.com"] == (["EX03", "EX2016A"], False, True)
    assert Namespace.objects.get(host="mail.contoso.com").devices_use


def test_an_external_url_that_is_not_a_url_rejects_the_file(tmp_path):
    run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    bad = exports.VDIRS.replace(
        "https://legacy.contoso.com/Microsoft-Server-ActiveSync", "legacy.contoso.com"
    )

    code, _, err = run(exports.write(tmp_path, "vdirs.csv", bad))

    assert code == 1
    assert (
        "vdirs.csv:4: column ExternalUrl: 'legacy.contoso.com' is not a URL like "
        "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    ) in err
    assert not Namespace.objects.exists()
    assert not ExchangeServer.objects.filter(eas_vdir_imported=True).exists()
