"""Community scripts' device reports import like cmdlet exports; unknown shapes map to profiles."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from devices.models import ImportProfile, ImportState, InventoryImport, Partnership
from tests import exports
from tests.commands import import_inventory as run

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(tmp_path):
    code, _, err = run(
        exports.write(tmp_path, "servers.csv", exports.SERVERS),
        exports.write(tmp_path, "mailboxes.csv", exports.MAILBOXES),
        exports.write(tmp_path, "more-mailboxes.csv", exports.COMMUNITY_MAILBOXES),
        partial=True,
    )
    assert code == 0, err
    return tmp_path


def partners(device_id: str) -> list[str]:
    return sorted(
        Partnership.objects.filter(device__device_id=device_id).values_list(
            "mailbox__primary_smtp_address", flat=True
        )
    )


@pytest.mark.parametrize(
    ("name", "text", "device_id", "owner", "lacks"),
    [
        # "Alex Wilber" is the display name of two mailboxes: the address decides.
        (
            "ExchangeActiveSyncDeviceReport.csv",
            exports.EAS_DEVICE_REPORT,
            "SEC1A2B3C4D5E6F7",
            "alex.wilber2@contoso.com",
            "the EAS version (ClientVersion)",
        ),
        (
            "MDevStats_2026-11-24.csv",
            exports.MDEVSTATS,
            "C39XK2ABCDEF",
            "alex.wilber@contoso.com",
            "the first sync time (FirstSyncTime)",
        ),
        (
            "MobileDevices.csv",
            exports.O365ITPROS_MOBILE_DEVICES,
            "5eec4e941e0748a264512fd83770d5ac",
            "alex.wilber2@contoso.com",
            "the EAS version (ClientVersion)",
        ),
        (
            "2026-11-24_10-00-00_MobileDeviceReport.csv",
            exports.MICHEV_MOBILE_DEVICES,
            "androidc1234567890",
            "alex.wilber@contoso.com",
            "the EAS version (ClientVersion)",
        ),
        (
            "EXO Mobile Device Inventory_638680000000000000.csv",
            exports.EXO_MOBILE_DEVICE_INVENTORY,
            "DMPXK9ABCDEF",
            "kim.akers@contoso.com",
            "the last successful sync (LastSuccessSync)",
        ),
    ],
)
def test_community_report_links_devices_by_address_or_upn_and_says_what_it_lacks(
    inventory, name, text, device_id, owner, lacks
):
    code, out, err = run(exports.write(inventory, name, text), partial=True)
    assert code == 0, err
    assert f"{name}: imported devices" in out
    assert partners(device_id) == [owner]
    assert "read as a report of" in err
    assert f"the report lacks {lacks}" in err
    assert "Get-MobileDeviceStatistics exports it" in err


def test_michev_report_reads_never_as_no_sync_and_culture_dates(inventory):
    path = exports.write(inventory, "report.csv", exports.MICHEV_MOBILE_DEVICES)
    code, _, err = run(path, partial=True)
    assert code == 0, err
    björn = Partnership.objects.get(device__device_id="ApplDNPX12345678")
    assert björn.mailbox.primary_smtp_address == "bjoern.groesser@contoso.com"
    assert björn.last_success_sync_at is None
    assert björn.first_sync_at.day == 2 and björn.first_sync_at.month == 3


def test_exo_inventory_takes_the_device_type_from_the_ascii_removal_id(inventory):
    code, _, err = run(
        exports.write(inventory, "exo.csv", exports.EXO_MOBILE_DEVICE_INVENTORY), partial=True
    )
    assert code == 0, err
    partnership = Partnership.objects.get(device__device_id="DMPXK9ABCDEF")
    assert partnership.device.device_type == "iPad"
    assert partnership.eas_version == "16.1"


def test_report_row_of_an_unknown_mailbox_is_a_line_precise_problem(inventory):
    text = exports.EAS_DEVICE_REPORT.replace("alex.wilber2@contoso.com", "former@contoso.com")
    code, _, err = run(exports.write(inventory, "eas.csv", text), partial=True)
    assert code == 1
    assert (
        "eas.csv:3: column Email Address: mailbox 'former@contoso.com' is not in the inventory"
        in err
    )


def test_unknown_shape_is_mapped_on_the_web_into_a_profile_used_by_the_cli(
    inventory, client, admin_user, django_capture_on_commit_callbacks
):
    path = exports.write(inventory, "mdm.csv", exports.MDM_EXPORT)
    code, _, err = run(path, partial=True)
    assert code == 1
    assert "cannot tell which export this is" in err
    record = InventoryImport.objects.get(filename="mdm.csv")
    client.force_login(admin_user)
    rejected = client.get(reverse("devices:import_group", args=[record.group]))
    mapping_url = reverse("devices:import_mapping", args=[record.pk])
    assert mapping_url in rejected.text and "map its columns" in rejected.text
    page = client.get(mapping_url)
    assert page.status_code == 200
    assert b"HTC-0042-AB" in page.content  # the first rows are shown
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(
            reverse("devices:import_mapping", args=[record.pk]),
            {
                "name": "MDM console",
                "map_device_id": "Handset",
                "map_mailbox_guid": "Owner mailbox GUID",
                "map_os": "Platform",
                "map_eas_version": "Protocol",
                "map_first_sync": "Enrolled",
            },
        )
    assert saved.status_code == 302
    profile = ImportProfile.objects.get(name="MDM console")
    assert profile.mapping["device_id"] == "Handset"
    assert profile.header[0] == "Handset"
    # The CLI reads the next file of this shape through the profile: linked by ExchangeGuid,
    # never by the display name "Alex Wilber" that two mailboxes share.
    again = exports.write(inventory, "mdm-december.csv", exports.MDM_EXPORT)
    code, _, err = run(again, partial=True, profile="MDM console")
    assert code == 0, err
    assert partners("HTC-0077-CD") == ["alex.wilber@contoso.com"]
    assert partners("HTC-0042-AB") == ["tony.smith@contoso.com"]
    assert Partnership.objects.get(device__device_id="HTC-0042-AB").eas_version == "14.1"


def test_helpdesk_cannot_save_an_import_profile(inventory, client, helpdesk_user):
    run(exports.write(inventory, "mdm.csv", exports.MDM_EXPORT), partial=True)
    record = InventoryImport.objects.get(filename="mdm.csv")
    assert record.state == ImportState.REJECTED
    client.force_login(helpdesk_user)
    response = client.post(
        reverse("devices:import_mapping", args=[record.pk]),
        {"name": "sneaky", "map_device_id": "Handset", "map_mailbox_guid": "Owner mailbox GUID"},
    )
    assert response.status_code == 403
    assert not ImportProfile.objects.exists()


def test_cli_refuses_an_unknown_profile(inventory):
    path = exports.write(inventory, "mdm.csv", exports.MDM_EXPORT)
    with pytest.raises(Exception, match="no import profile named 'nope'"):
        call_command("import_inventory", str(path), profile="nope")
