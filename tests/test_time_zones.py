"""Time zones of people and organisations: IANA and Windows names, the mailboxes' zones from
Get-MailboxRegionalConfiguration (through import_inventory and the web upload), and the
organisation's zone on its facts form."""

from __future__ import annotations

import ast
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

import devices.timezones
from devices.models import FactChange, ImportState, InventoryImport, Mailbox, Organisation
from devices.timezones import resolve, zone_name
from tests import exports
from tests.factories import MailboxFactory, OrganisationFactory
from tests.real_path import export_csv

REGIONAL_TYPE = (
    "Deserialized.Microsoft.Exchange.Data.Storage.Management.MailboxRegionalConfiguration"
)


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        (" America/New_York ", "America/New_York"),
        ("UTC", "UTC"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("GMT Standard Time", "Europe/London"),
        ("Tokyo Standard Time", "Asia/Tokyo"),
        ("w. europe standard time", "Europe/Berlin"),
    ],
)
def test_zone_name_turns_iana_and_windows_names_into_the_iana_name(given, expected):
    assert zone_name(given) == expected


@pytest.mark.parametrize(
    "junk",
    ["", "   ", "Mars Standard Time", "Europe/Atlantis", "localtime", "Factory", "../etc/passwd"],
)
def test_zone_name_of_anything_else_is_none(junk):
    assert zone_name(junk) is None


def test_resolve_takes_the_mailboxs_zone_then_the_organisations_then_the_default():
    assert resolve("Asia/Tokyo", "Europe/Berlin", "UTC") == "Asia/Tokyo"
    assert resolve("", "W. Europe Standard Time", "UTC") == "Europe/Berlin"
    assert resolve("nonsense", "", "Europe/London") == "Europe/London"
    assert resolve("", "", "nonsense") == "UTC"


def test_the_time_zone_module_imports_no_django():
    tree = ast.parse(Path(devices.timezones.__file__).read_text())
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert not {m for m in imported if m.split(".")[0] in {"django", "devices"}}, imported


# -- Get-MailboxRegionalConfiguration through import_inventory --------------------------------


def run(*files: Path) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_inventory", *map(str, files), stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def zones() -> dict[str, str]:
    return dict(Mailbox.objects.values_list("primary_smtp_address", "time_zone"))


@pytest.mark.django_db
def test_a_regional_configuration_export_sets_each_mailboxs_zone_and_again_changes_nothing(
    tmp_path,
):
    regional = exports.write(tmp_path, "regional.csv", exports.REGIONAL_CONFIGURATIONS)

    code, _, err = run(*exports.inventory(tmp_path), regional)

    assert code == 0, err
    assert zones() == {
        "tony.smith@contoso.com": "Europe/London",
        "bjoern.groesser@contoso.com": "Europe/Berlin",
        "kim.akers@contoso.com": "",  # never chose one: unknown
    }
    record = InventoryImport.objects.get(filename="regional.csv")
    assert record.kind == "regional_configurations"
    assert record.counts["mailboxes"] == {"updated": 2, "unchanged": 1}

    stamps = dict(Mailbox.objects.values_list("pk", "updated_at"))
    code, _, err = run(regional)

    assert code == 0, err
    again = InventoryImport.objects.filter(filename="regional.csv").latest("id")
    assert again.counts["mailboxes"] == {"updated": 0, "unchanged": 3}
    assert dict(Mailbox.objects.values_list("pk", "updated_at")) == stamps


@pytest.mark.django_db
def test_an_empty_time_zone_makes_a_known_zone_unknown_and_other_mailboxes_keep_theirs(tmp_path):
    kim = MailboxFactory(identity="contoso.local/Users/Kim Akers", time_zone="Europe/Paris")
    other = MailboxFactory(time_zone="Asia/Tokyo")
    text = export_csv(["Identity", "TimeZone"], [[kim.identity, None]], REGIONAL_TYPE)

    code, _, err = run(exports.write(tmp_path, "regional.csv", text))

    assert code == 0, err
    assert Mailbox.objects.get(pk=kim.pk).time_zone == ""
    assert Mailbox.objects.get(pk=other.pk).time_zone == "Asia/Tokyo"


@pytest.mark.django_db
def test_an_export_with_the_address_joined_in_matches_mailboxes_by_address(tmp_path):
    # Get-Mailbox | ForEach-Object { [pscustomobject]@{ PrimarySmtpAddress = …; TimeZone = … } }
    # in PowerShell 7: no #TYPE line, Identity a bare name that several mailboxes share.
    anna = MailboxFactory(name="Anna", primary_smtp_address="anna@contoso.com")
    MailboxFactory(name="Anna", primary_smtp_address="anna.lee@contoso.com")
    text = export_csv(
        ["Identity", "PrimarySmtpAddress", "Language", "TimeZone"],
        [["Anna", "Anna@Contoso.com", "ja-JP", "Tokyo Standard Time"]],
    )

    code, out, err = run(exports.write(tmp_path, "regional.csv", text))

    assert code == 0, err
    assert "regional_configurations" in out
    assert zones() == {"anna@contoso.com": "Asia/Tokyo", "anna.lee@contoso.com": ""}
    assert Mailbox.objects.get(pk=anna.pk).time_zone == "Asia/Tokyo"


@pytest.mark.django_db
def test_an_unknown_time_zone_rejects_the_file_with_its_line_and_stores_nothing(tmp_path):
    tony = MailboxFactory(identity="contoso.local/Europe/London/Tony Smith")
    kim = MailboxFactory(identity="contoso.local/Users/Kim Akers")
    text = export_csv(
        ["Identity", "Language", "DateFormat", "TimeFormat", "TimeZone"],
        [
            [tony.identity, "en-GB", "dd/MM/yyyy", "HH:mm", "GMT Standard Time"],
            [kim.identity, "en-US", "M/d/yyyy", "h:mm tt", "Mars Standard Time"],
        ],
        REGIONAL_TYPE,
    )

    code, out, err = run(exports.write(tmp_path, "regional.csv", text))

    assert code == 1
    assert (
        "regional.csv:4: column TimeZone: 'Mars Standard Time' is not a time zone exsync knows; "
        "expected a Windows time zone name as Exchange prints it (e.g. 'W. Europe Standard "
        "Time') or an IANA name (e.g. 'Europe/Berlin')"
    ) in err
    assert "REJECTED" in out
    assert set(zones().values()) == {""}, "a rejected file writes nothing"


@pytest.mark.django_db
def test_a_mailbox_not_in_the_inventory_is_a_problem_of_its_line(tmp_path):
    tony = MailboxFactory(identity="contoso.local/Europe/London/Tony Smith")
    text = export_csv(
        ["Identity", "TimeZone"],
        [
            [tony.identity, "GMT Standard Time"],
            ["contoso.local/Users/Former User", "Pacific Standard Time"],
        ],
        REGIONAL_TYPE,
    )

    code, _, err = run(exports.write(tmp_path, "regional.csv", text))

    assert code == 1
    assert (
        "regional.csv:4: column Identity: mailbox 'contoso.local/users/former user' is not in "
        "the inventory"
    ) in err
    assert Mailbox.objects.get(pk=tony.pk).time_zone == ""


@pytest.mark.django_db
def test_the_web_upload_imports_a_regional_configuration_export_too(
    client, admin_user, media_root, django_capture_on_commit_callbacks
):
    from exsync.celery import app

    björn = MailboxFactory(identity="contoso.local/Europe/Munich/Björn Größer")
    text = export_csv(
        ["Identity", "TimeZone"], [[björn.identity, "W. Europe Standard Time"]], REGIONAL_TYPE
    )
    upload = SimpleUploadedFile("regional.csv", text.encode("utf-8-sig"), "text/csv")
    client.force_login(admin_user)
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("devices:import_list"), {"files": [upload]})
    finally:
        app.conf.task_always_eager = False

    assert response.status_code == 302
    record = InventoryImport.objects.get()
    assert (record.state, record.kind) == (ImportState.SUCCEEDED, "regional_configurations")
    assert Mailbox.objects.get(pk=björn.pk).time_zone == "Europe/Berlin"


# -- the organisation's time zone on its facts form ----------------------------------------------


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _facts(org: Organisation, **changed: str) -> dict[str, str]:
    """The facts form as the page shows it (each value with its hidden initial), changed."""
    shown = {
        "name": org.name,
        "default_access_level": org.default_access_level,
        "eas_max_devices": "" if org.eas_max_devices is None else str(org.eas_max_devices),
        "hybrid_configured": "unknown",
        "time_zone": org.time_zone,
    }
    return {**shown, **{f"initial-{k}": v for k, v in shown.items()}, **changed}


@pytest.mark.django_db
def test_an_admin_records_the_organisations_time_zone_by_its_windows_name(admin_client, admin_user):
    org = OrganisationFactory(forest="contoso.local")
    url = reverse("devices:organisation_edit", args=[org.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="time_zone"' in page and '<option value="Europe/Berlin">' in page

    response = admin_client.post(url, _facts(org, time_zone="W. Europe Standard Time"))

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.time_zone == "Europe/Berlin"
    change = FactChange.objects.get()
    assert (change.fact, change.old_value, change.new_value, change.actor) == (
        "time zone",
        "unknown",
        "Europe/Berlin",
        admin_user,
    )


@pytest.mark.django_db
def test_a_time_zone_nobody_knows_is_a_form_error_and_nothing_is_recorded(admin_client):
    org = OrganisationFactory(forest="contoso.local", time_zone="Europe/Berlin")
    url = reverse("devices:organisation_edit", args=[org.pk])

    response = admin_client.post(url, _facts(org, time_zone="Central Europe Time"))

    assert response.status_code == 400
    assert "&#x27;Central Europe Time&#x27; is not a time zone name" in response.content.decode()
    org.refresh_from_db()
    assert org.time_zone == "Europe/Berlin"
    assert not FactChange.objects.exists()


@pytest.mark.django_db
def test_emptying_the_time_zone_records_it_as_unknown(admin_client):
    org = OrganisationFactory(forest="contoso.local", time_zone="Asia/Tokyo")
    url = reverse("devices:organisation_edit", args=[org.pk])

    assert admin_client.post(url, _facts(org, time_zone="")).status_code == 302

    org.refresh_from_db()
    assert org.time_zone == ""
    assert FactChange.objects.values_list("old_value", "new_value").get() == (
        "Asia/Tokyo",
        "unknown",
    )
