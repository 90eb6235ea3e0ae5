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
from tests.commands import import_inventory as run

pytestmark = pytest.mark.django_db


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

    # 1 of the 3 partnerships it covers: over the share, confirmed (tests/test_stale_marking.py).
    code, _, err = run(
        exports.write(tmp_path, "devices-new.csv", newer), full=True, confirm_stale=True
    )

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


# -- Exchange 2003: the front end's IIS logs and the Exchange_Mailbox WMI export ------------------

IIS_HEADER = (
    "#Software: Microsoft Internet Information Services 6.0\r\n"
    "#Version: 1.0\r\n"
    "#Date: 2009-04-17 00:00:04\r\n"
    "#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
    "c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status\r\n"
)
POCKETPC = "6F24CAD599A5BF1A690246B8C68FAE8D"
# The example line of formats.md §3 (line 5 of the log).
IIS_EXAMPLE = (
    "2009-04-17 07:14:03 W3SVC1 10.1.0.25 POST /Microsoft-Server-ActiveSync "
    f"User=kakers&DeviceId={POCKETPC}&DeviceType=PocketPC&Cmd=Sync"
    "&Log=V2TEmSSC:0A0C0D0FS:2A0C0D0SP:1C1I180S200R 443 CONTOSO\\kakers 192.0.2.17 "
    "MSFT-PPC/5.2.5082 200 0 0\r\n"
)


def eas(time: str, user: str, device: str, *, status: str = "200", day: str = "17") -> str:
    return (
        f"2009-04-{day} {time} W3SVC1 10.1.0.25 POST /Microsoft-Server-ActiveSync "
        f"User={user}&DeviceId={device}&DeviceType=PocketPC&Cmd=Sync 443 - 192.0.2.17 "
        f"MSFT-PPC/5.2.5082 {status} 0 0\r\n"
    )


# exports.SERVERS and a second Exchange 2003 server to move to.
SERVERS_2003 = exports.SERVERS + (
    '"ex2016a.contoso.local","5b1c","False","EX03B","ex03b.contoso.local","None",,'
    '"Version 6.5 (Build 7638.2: Service Pack 2)","0.0 (6.5.6500.0)","Standard","False"\r\n'
)


def inventory_2003(folder: Path) -> list[Path]:
    return [
        exports.write(folder, "servers.csv", SERVERS_2003),
        exports.write(folder, "mailboxes.csv", exports.MAILBOXES),
    ]


def test_an_iis_log_of_the_2003_front_end_gives_the_mailbox_its_phone(tmp_path):
    log = exports.write(
        tmp_path,
        "ex090417.log",
        IIS_HEADER + IIS_EXAMPLE + eas("09:30:00", "kakers", POCKETPC, status="503"),
        encoding="ascii",
    )

    # Given before the CSVs it needs: imported after the servers and mailboxes all the same.
    code, out, err = run(log, *inventory_2003(tmp_path))

    assert code == 0, err
    record = InventoryImport.objects.get(filename="ex090417.log")
    assert (record.kind, record.rows_total) == ("iis_log", 2)
    assert record.counts["partnerships"] == {"created": 1, "updated": 0, "unchanged": 0}
    phone = Partnership.objects.get(device__device_id=POCKETPC)
    assert phone.mailbox.alias == "kakers" and phone.mailbox.server.name == "EX03"
    assert (phone.device.device_type, phone.device.user_agent) == ("PocketPC", "MSFT-PPC/5.2.5082")
    assert (phone.identity, phone.client_type, phone.eas_version) == ("", "EAS", "")
    assert phone.first_sync_at.isoformat() == "2009-04-17T07:14:03+00:00"
    assert phone.last_success_sync_at.isoformat() == "2009-04-17T07:14:03+00:00"
    assert phone.last_sync_attempt_at.isoformat() == "2009-04-17T09:30:00+00:00"
    assert "ex090417.log: imported iis_log" in out


def test_re_importing_an_iis_log_changes_nothing_and_logs_of_several_days_add_up(tmp_path):
    run(*inventory_2003(tmp_path))
    day1 = exports.write(tmp_path, "ex090417.log", IIS_HEADER + IIS_EXAMPLE)
    day2 = exports.write(
        tmp_path, "ex090418.log", IIS_HEADER + eas("08:00:00", "kakers", POCKETPC, day="18")
    )
    run(day1)
    before = list(Partnership.objects.values_list("pk", "updated_at"))

    code, _, err = run(day1)

    assert code == 0, err
    assert list(Partnership.objects.values_list("pk", "updated_at")) == before
    record = InventoryImport.objects.latest("id")
    assert record.counts["partnerships"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert record.counts["devices"] == {"created": 0, "updated": 0, "unchanged": 1}

    run(day2)
    run(day1)  # an older log again: widens nothing
    phone = Partnership.objects.get()
    assert phone.first_sync_at.isoformat() == "2009-04-17T07:14:03+00:00"
    assert phone.last_success_sync_at.isoformat() == "2009-04-18T08:00:00+00:00"
    assert InventoryImport.objects.latest("id").counts["partnerships"]["unchanged"] == 1


def test_an_iis_log_marks_no_partnership_stale(tmp_path):
    run(*inventory_2003(tmp_path))
    run(
        exports.write(
            tmp_path,
            "ex090417.log",
            IIS_HEADER + IIS_EXAMPLE + eas("07:20:00", "tsmith", "SEC1C0E3F4A5B6C7"),
        )
    )

    code, _, err = run(exports.write(tmp_path, "ex090418.log", IIS_HEADER + IIS_EXAMPLE))

    assert code == 0, err
    assert Partnership.objects.count() == 2
    assert not Partnership.objects.filter(is_stale=True).exists(), "a log covers a time window"


def test_an_unknown_user_in_an_iis_log_rejects_it_naming_the_first_line(tmp_path):
    run(*inventory_2003(tmp_path))
    log = exports.write(
        tmp_path,
        "ex090417.log",
        IIS_HEADER
        + IIS_EXAMPLE
        + eas("07:15:00", "CONTOSO%5Cjdoe", "JD0001")
        + eas("07:16:00", "jdoe", "JD0002"),
    )

    code, out, err = run(log)

    assert code == 1
    assert (
        "ex090417.log:6: column cs-uri-query: User 'CONTOSO\\jdoe' is not the SamAccountName of "
        "any mailbox in the inventory; import mailboxes.csv (Get-Mailbox) first or in the same run"
    ) in err
    assert ":7:" not in err, "one problem per user, on the first line it appears on"
    assert "REJECTED" in out
    assert not Partnership.objects.exists() and not MobileDevice.objects.exists()


def test_with_partial_an_unknown_user_is_a_warning_and_the_others_are_imported(tmp_path):
    run(*inventory_2003(tmp_path))
    log = exports.write(
        tmp_path, "ex090417.log", IIS_HEADER + eas("07:00:00", "jdoe", "JD0001") + IIS_EXAMPLE
    )

    code, _, err = run(log, partial=True)

    assert code == 0, err
    assert (
        "warning: ex090417.log:5: column cs-uri-query: User 'jdoe' is not the SamAccountName of "
        "any mailbox in the inventory; import mailboxes.csv (Get-Mailbox) first or in the same "
        "run; its devices were skipped (--partial)"
    ) in err
    assert list(Partnership.objects.values_list("device__device_id", flat=True)) == [POCKETPC]
    record = InventoryImport.objects.latest("id")
    assert (record.counts["skipped_users"], record.counts["skipped_rows"]) == (1, 1)


def test_a_user_two_mailboxes_answer_to_is_reported_not_guessed(tmp_path):
    run(*inventory_2003(tmp_path))
    Mailbox.objects.filter(alias="tsmith").update(sam_account_name="KAKERS")

    code, _, err = run(exports.write(tmp_path, "ex090417.log", IIS_HEADER + IIS_EXAMPLE))

    assert code == 1
    assert "ex090417.log:5: column cs-uri-query: User 'kakers' is the SamAccountName of 2" in err


def test_a_cut_off_iis_log_is_rejected_with_its_line(tmp_path):
    run(*inventory_2003(tmp_path))
    cut = IIS_HEADER + IIS_EXAMPLE + "2009-04-17 07:20:00 W3SVC1 10.1.0.25 POST"

    code, _, err = run(exports.write(tmp_path, "ex090417.log", cut))

    assert code == 1
    assert "ex090417.log:6: 5 values, but the #Fields line (line 4) names 14 fields" in err
    assert not Partnership.objects.exists()


def test_a_2003_to_2003_move_of_the_mailbox_repartners_its_imported_pocketpc(tmp_path):
    from django.core.management import call_command

    run(
        *inventory_2003(tmp_path), exports.write(tmp_path, "ex090417.log", IIS_HEADER + IIS_EXAMPLE)
    )
    batch_csv = exports.write(tmp_path, "batch.csv", "EmailAddress\r\nkim.akers@contoso.com\r\n")
    call_command(
        "create_batch",
        "2003 wave",
        "--target-server",
        "EX03B",
        "--start",
        "2026-12-05T22:00",
        "--mailboxes-csv",
        str(batch_csv),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    out = StringIO()

    call_command("plan_batch", "2003 wave", "--json", stdout=out)

    document = json.loads(out.getvalue())
    [item] = document["items"]
    [device] = item["devices"]
    assert (item["mailbox"], device["device_id"], device["outcome"]) == (
        "kim.akers@contoso.com",
        POCKETPC,
        "repartner",
    )
    assert "M-2003-2003" in [reason["rule"] for reason in device["reasons"]]


# Get-Mailbox with LegacyExchangeDN; Kim's mailbox (2003) came without Database and ServerName.
MAILBOXES_2003 = (
    '"Identity","DisplayName","Alias","PrimarySmtpAddress","SamAccountName","ExchangeGuid",'
    '"Database","ServerName","RecipientTypeDetails","LegacyExchangeDN"\r\n'
    '"contoso.local/Users/Kim Akers","Kim Akers","kakers","kim.akers@contoso.com","kakers",'
    '"0b7e4d21-93c6-4f0a-8b15-2e9d6c4a7f38",,,"LegacyMailbox",'
    '"/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=kakers"\r\n'
    '"contoso.local/Users/Ann Beebe","Ann Beebe","abeebe","ann.beebe@contoso.com","abeebe",'
    '"3c9d2e10-7a4b-4c5d-9e6f-0a1b2c3d4e5f","EX03\\First Storage Group\\Mailbox Store (EX03)",'
    '"ex03","LegacyMailbox","/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=abeebe"\r\n'
)
# The #TYPE line, header and row of formats.md §3, as written there.
WMI_HEADER = (
    "#TYPE System.Management.ManagementObject#root\\MicrosoftExchangeV2\\Exchange_Mailbox\r\n"
    '"__GENUS","__CLASS","__SUPERCLASS","__DYNASTY","__RELPATH","__PROPERTY_COUNT",'
    '"__DERIVATION","__SERVER","__NAMESPACE","__PATH","AssocContentCount",'
    '"DateDiscoveredAbsentInDS","DeletedMessageSizeExtended","LastLoggedOnUserAccount",'
    '"LastLogoffTime","LastLogonTime","LegacyDN","MailboxDisplayName","MailboxGUID","ServerName",'
    '"Size","StorageGroupName","StorageLimitInfo","StoreName","TotalItems","Scope","Path",'
    '"Options","ClassPath","Properties","SystemProperties","Qualifiers","Site","Container"\r\n'
)
WMI_KIM = (
    '"2","Exchange_Mailbox","CIM_LogicalElement","CIM_ManagedSystemElement",'
    '"Exchange_Mailbox.LegacyDN=""/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=KAKERS"",…",'
    '"…","System.String[]","EX03","root\\MicrosoftExchangeV2",'
    '"\\\\EX03\\root\\MicrosoftExchangeV2:Exchange_Mailbox.…","312",,"1048576","CONTOSO\\kakers",'
    '"20090416171502.000000+000","20090417071203.000000+000",'
    '"/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=KAKERS","Kim Akers",'
    '"{0B7E4D21-93C6-4F0A-8B15-2E9D6C4A7F38}","EX03","184320","First Storage Group","1",'
    '"Mailbox Store (EX03)","5210","System.Management.ManagementScope","\\\\EX03\\root\\…",'
    '"System.Management.ObjectGetOptions","…","System.Management.PropertyDataCollection",'
    '"System.Management.PropertyDataCollection","System.Management.QualifierDataCollection",,\r\n'
)


def wmi_row(*, name: str, guid: str, dn: str, server: str = "EX03", absent: str = "") -> str:
    """A row like WMI_KIM for another mailbox."""
    row = (
        WMI_KIM.replace("Kim Akers", name)
        .replace("{0B7E4D21-93C6-4F0A-8B15-2E9D6C4A7F38}", guid)
        .replace(
            ',"/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=KAKERS",', f',"{dn}",'
        )
        .replace('"EX03","184320"', f'"{server}","184320"')
    )
    return row.replace('"312",,', f'"312","{absent}",') if absent else row


def test_the_wmi_example_row_sets_the_2003_server_and_database_of_the_mailbox(tmp_path):
    run(exports.write(tmp_path, "servers.csv", SERVERS_2003))
    run(exports.write(tmp_path, "mailboxes.csv", MAILBOXES_2003))
    assert Mailbox.objects.get(alias="kakers").server is None

    code, _, err = run(exports.write(tmp_path, "wmi.csv", WMI_HEADER + WMI_KIM))

    assert code == 0, err
    kim = Mailbox.objects.get(alias="kakers")
    assert (kim.server.name, kim.database) == (
        "EX03",
        "EX03\\First Storage Group\\Mailbox Store (EX03)",
    )
    record = InventoryImport.objects.get(filename="wmi.csv")
    assert record.kind == "wmi_mailboxes"
    assert record.counts == {
        "rows": 1,
        "mailboxes": {"updated": 1, "unchanged": 0},
        "skipped_disconnected": 0,
    }
    assert Mailbox.objects.count() == 2, "never a new mailbox"

    run(exports.write(tmp_path, "wmi.csv", WMI_HEADER + WMI_KIM))
    assert InventoryImport.objects.latest("id").counts["mailboxes"] == {
        "updated": 0,
        "unchanged": 1,
    }


def test_wmi_rows_match_by_guid_in_braces_else_by_legacy_dn_and_skip_disconnected_ones(tmp_path):
    run(exports.write(tmp_path, "servers.csv", SERVERS_2003))
    run(exports.write(tmp_path, "mailboxes.csv", MAILBOXES_2003))
    rows = (
        # Ann moved to EX03B; her LegacyDN is not in this row, her GUID (braces, any case) is.
        wmi_row(
            name="Ann Beebe", guid="{3c9d2e10-7A4B-4C5D-9E6F-0A1B2C3D4E5F}", dn="", server="EX03B"
        )
        # Kim: a GUID no mailbox has, but her LegacyDN (upper case).
        + wmi_row(
            name="Kim Akers",
            guid="{11111111-2222-4333-8444-555555555555}",
            dn="/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=KAKERS",
        )
        # A disconnected mailbox nobody owns any more.
        + wmi_row(
            name="Former User",
            guid="{99999999-2222-4333-8444-555555555555}",
            dn="/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=FORMER",
            absent="20090301120000.000000+000",
        )
    )

    code, _, err = run(exports.write(tmp_path, "wmi.csv", WMI_HEADER + rows))

    assert code == 0, err
    servers = dict(Mailbox.objects.values_list("alias", "server__name"))
    assert servers == {"abeebe": "EX03B", "kakers": "EX03"}
    ann = Mailbox.objects.get(alias="abeebe")
    assert ann.database == "EX03B\\First Storage Group\\Mailbox Store (EX03)"
    counts = InventoryImport.objects.latest("id").counts
    assert counts["skipped_disconnected"] == 1 and counts["rows"] == 3
    assert Mailbox.objects.count() == 2


def test_a_wmi_mailbox_not_in_the_inventory_rejects_the_file_naming_its_line(tmp_path):
    run(exports.write(tmp_path, "servers.csv", SERVERS_2003))
    run(exports.write(tmp_path, "mailboxes.csv", MAILBOXES_2003))
    ghost = wmi_row(
        name="Former User",
        guid="{99999999-2222-4333-8444-555555555555}",
        dn="/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=FORMER",
    )

    code, _, err = run(exports.write(tmp_path, "wmi.csv", WMI_HEADER + WMI_KIM + ghost))

    assert code == 1
    assert (
        "wmi.csv:4: column MailboxGUID: mailbox 'Former User' is not in the inventory (no "
        "ExchangeGuid or LegacyExchangeDN like it); import mailboxes.csv (Get-Mailbox) first or "
        "in the same run"
    ) in err
    assert Mailbox.objects.count() == 2
    assert Mailbox.objects.get(alias="kakers").server is None, "whole file or nothing"


def test_a_wmi_row_whose_guid_and_legacy_dn_name_two_mailboxes_is_refused(tmp_path):
    run(exports.write(tmp_path, "servers.csv", SERVERS_2003))
    run(exports.write(tmp_path, "mailboxes.csv", MAILBOXES_2003))
    crossed = wmi_row(
        name="Kim Akers",
        guid="{3C9D2E10-7A4B-4C5D-9E6F-0A1B2C3D4E5F}",  # Ann's ExchangeGuid
        dn="/O=CONTOSO/OU=FIRST ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=KAKERS",
    )

    code, _, err = run(exports.write(tmp_path, "wmi.csv", WMI_HEADER + crossed))

    assert code == 1
    assert (
        "wmi.csv:3: column LegacyDN: MailboxGUID is the ExchangeGuid of ann.beebe@contoso.com, "
        "but LegacyDN is the LegacyExchangeDN of kim.akers@contoso.com"
    ) in err


def test_a_full_device_export_leaves_the_2003_phones_of_iis_logs_alone(tmp_path):
    # Get-ActiveSyncDeviceStatistics cannot see partnerships of mailboxes still on 2003.
    run(*inventory_2003(tmp_path))
    run(exports.write(tmp_path, "ex090417.log", IIS_HEADER + IIS_EXAMPLE))
    assert Partnership.objects.filter(is_stale=False).count() == 1

    code, _, err = run(exports.write(tmp_path, "devices.csv", exports.DEVICES), full=True)

    assert code == 0, err
    assert (
        Partnership.objects.get(device__device_id="6F24CAD599A5BF1A690246B8C68FAE8D").is_stale
        is False
    )


def test_a_move_request_export_keyed_by_exchange_guid_alone_is_imported(tmp_path):
    run(*exports.inventory(tmp_path))
    moves = exports.write(
        tmp_path,
        "moves.csv",
        '"ExchangeGuid","Status","TargetDatabase"\r\n'
        '"5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92","Completed","DB2016-01"\r\n',
    )

    code, _, err = run(moves)

    assert code == 0, err
    assert MoveRequest.objects.get().status == "Completed"
