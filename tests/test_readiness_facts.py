"""Readiness facts (issue 15): mailbox databases and storage groups from their exports, what a
re-imported ActiveSync directory lost, SBS and backup facts, OWA backups, shared domains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.models import (
    AcceptedDomain,
    ExchangeServer,
    FactChange,
    ImportState,
    InventoryImport,
    MailboxDatabase,
    OwaBackupConfirmation,
)
from devices.selectors import vdir_changes
from devices.services import owa_backup_confirm
from tests import exports
from tests.commands import import_inventory as run

pytestmark = pytest.mark.django_db


def databases() -> list[tuple[str, str, str, bool | None, datetime | None]]:
    return list(
        MailboxDatabase.objects.order_by("server__name", "storage_group", "name").values_list(
            "server__name", "storage_group", "name", "circular_logging_enabled", "last_full_backup"
        )
    )


@pytest.fixture
def servers(tmp_path) -> Path:
    """EX2016A, EX2010A, EX03 and the SBS 2008 box EX2007A; the folder for the exports."""
    code, _, err = run(
        exports.write(tmp_path, "servers.csv", exports.SERVERS),
        exports.write(tmp_path, "servers-2007.csv", exports.SERVERS_2007),
    )
    assert code == 0, err
    return tmp_path


# -- Get-MailboxDatabase -Status / Get-StorageGroup --------------------------------------------


def test_mailbox_databases_are_imported_and_a_reimport_changes_nothing(servers):
    path = exports.write(servers, "databases.csv", exports.MAILBOX_DATABASES)

    code, out, err = run(path)

    assert code == 0, err
    assert "databases.csv: imported mailbox_databases" in out
    assert databases() == [
        ("EX2010A", "", "MDB01", True, None),  # LastFullBackup $null with -Status: never
        ("EX2016A", "", "DB2016-01", False, datetime(2026, 11, 23, 22, 0, 12, tzinfo=UTC)),
    ]
    ids = set(MailboxDatabase.objects.values_list("id", flat=True))

    code, _, err = run(path)

    assert code == 0, err
    assert InventoryImport.objects.latest("id").counts["databases"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 2,
    }
    assert set(MailboxDatabase.objects.values_list("id", flat=True)) == ids
    assert databases()[1][3] is False


def test_2007_databases_in_the_exporting_culture_take_circular_logging_from_their_group(servers):
    """SBS 2008: the storage groups carry circular logging, the de-DE database export the
    backup times (dd.MM.yyyy, ';'); files given together are imported groups first."""
    code, out, err = run(
        exports.write(servers, "databases-2007.csv", exports.MAILBOX_DATABASES_2007),
        exports.write(servers, "storage-groups.csv", exports.STORAGE_GROUPS),
    )

    assert code == 0, err
    assert "storage-groups.csv: imported storage_groups" in out
    assert databases() == [
        ("EX2007A", "", "First Storage Group", True, None),
        ("EX2007A", "", "Second Storage Group", False, None),
        (
            "EX2007A",
            "First Storage Group",
            "Mailbox Database",
            True,
            datetime(2026, 11, 22, 23, 15, 40, tzinfo=UTC),
        ),
        ("EX2007A", "Second Storage Group", "Archive", False, None),
    ]

    # The admin turns circular logging off in the first group: a new Get-StorageGroup says so,
    # for the group and for its database.
    off = exports.STORAGE_GROUPS.replace(
        'Group","True","False","E00"', 'Group","False","False","E00"'
    )
    code, _, err = run(exports.write(servers, "storage-groups.csv", off))

    assert code == 0, err
    assert {row[3] for row in databases()} == {False}
    assert MailboxDatabase.objects.count() == 4


def test_a_broken_database_export_names_file_line_and_column_and_stores_nothing(servers):
    broken = exports.MAILBOX_DATABASES.replace('"False","False","D:', '"False","Yes","D:')

    code, out, err = run(exports.write(servers, "databases.csv", broken))

    assert code == 1
    assert "databases.csv:3: column CircularLoggingEnabled: 'Yes' is not True or False" in err, err
    assert "REJECTED" in out
    assert not MailboxDatabase.objects.exists()

    unknown = exports.MAILBOX_DATABASES.replace('"MDB01","EX2010A"', '"MDB01","EX9999"')
    code, _, err = run(exports.write(servers, "databases.csv", unknown))

    assert code == 1
    assert (
        "databases.csv:4: column Server: server 'EX9999' is not in the inventory; import "
        "Get-ExchangeServer first or in the same run"
    ) in err
    assert not MailboxDatabase.objects.exists(), "a file is imported whole or not at all"


def test_a_bad_date_in_the_export_culture_is_line_precise(servers):
    bad = exports.MAILBOX_DATABASES_2007.replace("22.11.2026 23:15:40", "31.11.2026 23:15:40")

    code, _, err = run(exports.write(servers, "databases-2007.csv", bad))

    assert code == 1
    assert "databases-2007.csv:3: column LastFullBackup: '31.11.2026 23:15:40'" in err
    assert not MailboxDatabase.objects.exists()


def test_a_broken_storage_group_export_is_refused_whole(servers):
    lines = exports.STORAGE_GROUPS.splitlines(keepends=True)
    twice = "".join(lines) + lines[2]
    empty = exports.STORAGE_GROUPS.replace('Group","False","False","E01"', 'Group",,"False","E01"')

    code, _, err = run(exports.write(servers, "storage-groups.csv", twice))

    assert code == 1
    assert (
        "storage-groups.csv:5: column Name: EX2007A\\First Storage Group is also on line 3" in err
    ), err
    code, _, err = run(exports.write(servers, "storage-groups.csv", empty))

    assert code == 1
    assert (
        "storage-groups.csv:4: column CircularLoggingEnabled: empty, but a storage group has "
        "CircularLoggingEnabled True or False"
    ) in err
    assert not MailboxDatabase.objects.exists()


def test_without_status_the_stored_last_full_backup_is_kept(servers):
    run(exports.write(servers, "databases.csv", exports.MAILBOX_DATABASES))
    # Get-MailboxDatabase without -Status: Mounted and every backup time $null.
    no_status = exports.MAILBOX_DATABASES.replace(
        '"True","False","11/23/2026 10:00:12 PM","11/24/2026 4:00:03 AM"', ',"False",,'
    )

    code, _, err = run(exports.write(servers, "databases.csv", no_status))

    assert code == 0, err
    assert "column Mounted: 1 databases have no Mounted value (first: DB2016-01)" in err
    stored = MailboxDatabase.objects.get(name="DB2016-01").last_full_backup
    assert stored == datetime(2026, 11, 23, 22, 0, 12, tzinfo=UTC)


def test_the_imports_page_accepts_both_exports(
    client, admin_user, media_root, django_capture_on_commit_callbacks, servers
):
    from exsync.celery import app

    app.conf.task_always_eager = True
    client.force_login(admin_user)
    files = [
        SimpleUploadedFile("db.csv", exports.MAILBOX_DATABASES.encode("utf-8-sig"), "text/csv"),
        SimpleUploadedFile("sg.csv", exports.STORAGE_GROUPS.encode("utf-16"), "text/csv"),
    ]
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("devices:import_list"), {"files": files})
    finally:
        app.conf.task_always_eager = False

    assert response.status_code == 302
    records = InventoryImport.objects.filter(source="web")
    assert {(r.kind, r.state) for r in records} == {
        ("mailbox_databases", ImportState.SUCCEEDED),
        ("storage_groups", ImportState.SUCCEEDED),
    }
    assert MailboxDatabase.objects.count() == 4


# -- a re-imported ActiveSync directory ---------------------------------------------------------


def test_a_reimported_vdir_that_lost_its_external_url_is_a_fact_change(servers):
    vdirs = exports.write(servers, "vdirs.csv", exports.VDIRS)
    code, _, err = run(vdirs)
    assert code == 0, err
    assert vdir_changes() == [], "the first import learns the settings; it changes none"

    # EX2010A's directory was re-created: no ExternalUrl, IWA off.
    recreated = exports.VDIRS.replace(
        '"https://legacy.contoso.com/Microsoft-Server-ActiveSync","True","True"', ',"True","False"'
    )
    code, _, err = run(exports.write(servers, "vdirs.csv", recreated))

    assert code == 0, err
    changes = vdir_changes()
    assert [(c.subject, c.fact, c.old_value, c.new_value, c.via) for c in changes] == [
        ("Server EX2010A", "IWA on Microsoft-Server-ActiveSync", "True", "False", "import"),
        (
            "Server EX2010A",
            "ExternalUrl",
            "https://legacy.contoso.com/Microsoft-Server-ActiveSync",
            "",
            "import",
        ),
    ]
    assert vdir_changes(since=changes[0].at + timedelta(seconds=1)) == []
    assert ExchangeServer.objects.get(name="EX2010A").eas_external_url == ""

    code, _, _ = run(exports.write(servers, "vdirs.csv", recreated))
    assert len(vdir_changes()) == 2, "the same export again changes nothing"


def test_vdir_changes_is_one_query(servers, django_assert_num_queries):
    FactChange.objects.create(
        subject="Server EX2010A", fact="ExternalUrl", old_value="https://x", via="import"
    )
    FactChange.objects.create(subject="Server EX2010A", fact="ExternalUrl", via="web")
    with django_assert_num_queries(1):
        changes = vdir_changes()
        assert [c.actor for c in changes] == [None]


# -- recorded facts of a server ------------------------------------------------------------------


def _facts(server: ExchangeServer, **changes: str) -> dict[str, str]:
    """The server-facts form as the page renders it (hidden initials), with changes."""
    shown = {
        "forest_recorded": server.forest_recorded,
        "iwa_enabled": "unknown",
        "exsetup_version": server.exsetup_version,
        "block_legacy_mailboxes": "unknown",
        "is_sbs": "unknown",
        "third_party_backup": "unknown",
    }
    data = {f"initial-{k}": v for k, v in shown.items()}
    return data | shown | changes


def test_an_admin_records_sbs_and_third_party_backup_with_history(client, admin_user, servers):
    server = ExchangeServer.objects.get(name="EX2007A")
    client.force_login(admin_user)

    response = client.post(
        reverse("devices:server_facts", args=[server.pk]),
        _facts(server, is_sbs="true", third_party_backup="true"),
    )

    assert response.status_code == 302
    server.refresh_from_db()
    assert (server.is_sbs, server.third_party_backup) == (True, True)
    history = FactChange.objects.filter(subject="Server EX2007A").order_by("fact")
    assert [(h.fact, h.old_value, h.new_value, h.actor) for h in history] == [
        ("Small Business Server", "unknown", "yes", admin_user),
        ("third-party backup in use", "unknown", "yes", admin_user),
    ]
    page = client.get(reverse("devices:server_detail", args=[server.pk])).content.decode()
    assert "Small Business Server 2008" in page and "Third-party backup in use" in page


def test_helpdesk_cannot_record_server_facts_or_confirm_a_backup(client, helpdesk_user, servers):
    server = ExchangeServer.objects.get(name="EX2007A")
    client.force_login(helpdesk_user)

    facts = client.post(
        reverse("devices:server_facts", args=[server.pk]), _facts(server, is_sbs="true")
    )
    owa = client.post(
        reverse("devices:server_owa_backup", args=[server.pk]),
        {"backed_up": "on", "update": "Exchange 2007 SP3 RU23"},
    )

    assert (facts.status_code, owa.status_code) == (403, 403)
    server.refresh_from_db()
    assert server.is_sbs is None
    assert not OwaBackupConfirmation.objects.exists()
    page = client.get(reverse("devices:server_detail", args=[server.pk])).content.decode()
    assert "OWA customisations backed up before an update" in page
    assert reverse("devices:server_owa_backup", args=[server.pk]) not in page


# -- O-UR-OWA: the checklist item --------------------------------------------------------------


def test_an_admin_confirms_the_owa_backup_and_the_page_shows_who_and_when(
    client, admin_user, helpdesk_user, servers
):
    server = ExchangeServer.objects.get(name="EX2007A")
    client.force_login(admin_user)

    with time_machine.travel(datetime(2026, 12, 1, 9, 30, tzinfo=UTC), tick=False):
        response = client.post(
            reverse("devices:server_owa_backup", args=[server.pk]),
            {"backed_up": "on", "update": "Exchange 2007 SP3 RU23", "note": "copy on \\\\nas\\owa"},
        )

    assert response.status_code == 302
    backup = OwaBackupConfirmation.objects.get()
    assert (backup.server, backup.update, backup.confirmed_by) == (
        server,
        "Exchange 2007 SP3 RU23",
        admin_user,
    )
    client.force_login(helpdesk_user)  # helpdesk sees the list
    page = client.get(reverse("devices:server_detail", args=[server.pk])).content.decode()
    assert admin_user.username in page
    assert "2026-12-01 09:30" in page
    assert "Exchange 2007 SP3 RU23" in page


def test_an_unticked_or_unnamed_confirmation_is_refused(client, admin_user, servers):
    server = ExchangeServer.objects.get(name="EX2007A")
    client.force_login(admin_user)

    response = client.post(reverse("devices:server_owa_backup", args=[server.pk]), {"update": "  "})

    assert response.status_code == 400
    assert not OwaBackupConfirmation.objects.exists()


def test_a_double_click_makes_one_confirmation(client, admin_user, servers):
    server = ExchangeServer.objects.get(name="EX2007A")
    client.force_login(admin_user)
    url = reverse("devices:server_owa_backup", args=[server.pk])
    form = {"backed_up": "on", "update": "Exchange 2007 SP3 RU23"}

    start = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert client.post(url, form).status_code == 302
    with time_machine.travel(start + timedelta(seconds=2), tick=False):
        second = client.post(url, form, follow=True)

    assert OwaBackupConfirmation.objects.count() == 1
    assert "already recorded" in second.content.decode()
    # Before the next update, or a minute later, it is a new confirmation.
    with time_machine.travel(start + timedelta(seconds=3), tick=False):
        owa_backup_confirm(server=server, update="Exchange 2007 SP3 RU24", actor=admin_user)
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        owa_backup_confirm(server=server, update="Exchange 2007 SP3 RU23", actor=admin_user)
    assert OwaBackupConfirmation.objects.count() == 3


# -- O-SAS: a domain shared with another mail system --------------------------------------------


@pytest.fixture
def domains(servers) -> AcceptedDomain:
    code, _, err = run(exports.write(servers, "domains.csv", exports.ACCEPTED_DOMAINS))
    assert code == 0, err
    return AcceptedDomain.objects.get(domain_name="partner.contoso.com")


def test_an_admin_marks_a_domain_shared_on_the_organisation_page(client, admin_user, domains):
    client.force_login(admin_user)
    url = reverse("devices:accepted_domain_shared", args=[domains.pk])
    assert url in client.get(reverse("devices:organisation")).content.decode()

    response = client.post(url, {"shared_with_other_system": "true"})

    assert response.status_code == 302
    domains.refresh_from_db()
    assert domains.shared_with_other_system is True
    change = FactChange.objects.get(fact="shared with another mail system")
    assert (change.subject, change.old_value, change.new_value, change.actor) == (
        "Accepted domain partner.contoso.com of contoso.local",
        "unknown",
        "yes",
        admin_user,
    )
    client.post(url, {"shared_with_other_system": "true"})
    assert FactChange.objects.filter(fact="shared with another mail system").count() == 1


def test_helpdesk_sees_but_cannot_mark_a_domain_shared(client, helpdesk_user, domains):
    client.force_login(helpdesk_user)
    url = reverse("devices:accepted_domain_shared", args=[domains.pk])

    response = client.post(url, {"shared_with_other_system": "true"})

    assert response.status_code == 403
    domains.refresh_from_db()
    assert domains.shared_with_other_system is None
    page = client.get(reverse("devices:organisation")).content.decode()
    assert "partner.contoso.com" in page and url not in page


@pytest.mark.parametrize(
    ("header", "type_name", "kind"),
    [
        (("Name", "Server", "LastFullBackup", "Mounted"), None, "mailbox_databases"),
        (("Name", "Server", "CircularLoggingEnabled", "SystemFolderPath"), None, "storage_groups"),
        (("Name", "Server", "CircularLoggingEnabled"), None, "storage_groups"),
        (
            ("Name", "Server", "CircularLoggingEnabled"),
            "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase",
            "mailbox_databases",
        ),
        # The 2003 WMI mailbox export has StorageGroupName too: still a mailbox export.
        (
            ("LegacyDN", "MailboxGUID", "ServerName", "StorageGroupName", "StoreName"),
            None,
            "wmi_mailboxes",
        ),
    ],
)
def test_database_exports_are_told_apart_by_their_columns(header, type_name, kind):
    from devices.importers.kinds import detect

    assert detect(list(header), type_name)[0].name == kind


def test_a_database_name_taken_from_a_too_long_identity_is_refused_with_its_line(servers):
    long_name = "D" * 300
    text = (
        "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase\r\n"
        '"Server","CircularLoggingEnabled","Identity"\r\n'
        f'"EX2016A","False","EX2016A\\{long_name}"\r\n'
    )

    code, _, err = run(exports.write(servers, "databases.csv", text))

    assert code == 1
    assert "databases.csv:3: column Identity: 300 characters, at most 255" in err, err
    assert not MailboxDatabase.objects.exists()
