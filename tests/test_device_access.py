"""Device access (Allow/Block/Quarantine) through the real path: personal lists from
Get-CASMailbox and the organisation's rules from Get-ActiveSyncDeviceAccessRule are imported with
`manage.py import_inventory`, and X-ABQ of `plan_batch --json` follows them (tests/real_path.py).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from devices.models import (
    DeviceAccessRule,
    FactChange,
    InventoryImport,
    Organisation,
    Partnership,
)
from migrations_plan.planner.questions import QUESTIONS
from tests.importers.helpers import crlf, quoted, read, rows
from tests.real_path import (
    V2007SP3,
    V2010SP3,
    V2016,
    Lab,
    cas_mailboxes,
    device_access_rules,
    org_settings,
    reasons,
    rules,
    verdict,
)

pytestmark = pytest.mark.django_db

IPHONE = "ApplF17LTTCGFFG8"
SECOND_IPHONE = "ApplC39XK2LPJC6Q"
ANDROID = "SEC1C0E3F4A5B6C7"
IPAD = "ApplDMPXQ5NHG7KL"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def _android(lab: Lab, mailbox, device_id: str = ANDROID) -> None:
    lab.device(
        mailbox,
        device_id,
        device_type="Android",
        model="SM-G991B",
        os="Android 14",
        user_agent="Android/14-EAS-2.0",
        eas="14.1",
    )


def _from_2007(lab: Lab, *, default: str = "Quarantine"):
    """A 2007 mailbox moving to 2010 in its organisation: the phones meet Allow/Block/Quarantine
    afresh there; the organisation quarantines (by default) what nothing allows."""
    ex07 = lab.server("EX07", V2007SP3)
    lab.server("EX2010A", V2010SP3)
    kim = lab.mailbox("kakers", ex07, "Kim Akers")
    lab.export("org-settings.csv", org_settings("contoso.local", default))
    return kim


def _asked(device: dict) -> bool:
    """X-ABQ could not tell: a warning asking whether the device is allowed on the target."""
    found = reasons(device, "X-ABQ")
    return len(found) == 1 and found[0]["is_warning"] and found[0]["question"] == "device-allowed"


def _latest_counts(filename: str) -> dict:
    return InventoryImport.objects.filter(filename=filename).order_by("-id").first().counts


# -- personal lists ---------------------------------------------------------------------------


def test_a_personally_allowed_device_passes_a_quarantining_target_and_another_is_asked_about(
    lab: Lab,
) -> None:
    kim = _from_2007(lab)
    lab.device(kim, IPHONE, eas="12.1")
    lab.device(kim, SECOND_IPHONE, eas="12.1")
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, [IPHONE], [])]))
    lab.import_exports()

    plan = lab.plan("EX2010A", kim)

    assert "X-ABQ" not in rules(plan.device(IPHONE)), plan.device(IPHONE)
    assert _asked(plan.device(SECOND_IPHONE)), plan.device(SECOND_IPHONE)
    how = QUESTIONS["device-allowed"].how
    assert "Get-CASMailbox" in how and "Get-ActiveSyncDeviceAccessRule" in how


def test_a_personal_block_blocks_and_a_device_id_matches_in_any_case(lab: Lab) -> None:
    kim = _from_2007(lab, default="Allow")
    lab.device(kim, IPHONE, eas="12.1")
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, "", [IPHONE.lower()])]))
    lab.import_exports()

    device = lab.plan("EX2010A", kim).device(IPHONE)

    assert device["outcome"] == "blocked"
    assert verdict(device, "X-ABQ")


def test_a_move_to_another_forest_ignores_the_source_mailboxs_allow_list_and_rules(
    lab: Lab,
) -> None:
    ex2016 = lab.server("EX2016A", V2016)
    lab.server("TS2016A", V2016, forest="tailspin.local")
    tony = lab.mailbox("tsmith", ex2016, "Tony Smith")
    lab.device(tony, IPHONE)
    lab.export("tailspin-settings.csv", org_settings("tailspin.local", "Quarantine"))
    # Contoso allows the phone twice over; Tailspin, where the mailbox lands, does not say.
    lab.export("cas-mailboxes.csv", cas_mailboxes([(tony, [IPHONE], [])]))
    lab.export(
        "contoso-rules.csv",
        device_access_rules("contoso.local", [("DeviceModel", "iPhone15C2", "Allow")]),
    )
    lab.import_exports()
    assert Partnership.objects.get(device__device_id=IPHONE).personal_access == "allowed"

    device = lab.plan("TS2016A", tony).device(IPHONE)

    assert _asked(device), device

    # Once Tailspin's own rules allow the model, the phone is allowed there.
    lab.export(
        "tailspin-rules.csv",
        device_access_rules("tailspin.local", [("DeviceModel", "iPhone15C2", "Allow")]),
    )
    lab.import_exports()
    assert "X-ABQ" not in rules(lab.replan().device(IPHONE))


# -- organisation rules -----------------------------------------------------------------------


def test_an_allow_rule_for_the_model_allows_it_and_leaves_other_models_to_the_default(
    lab: Lab,
) -> None:
    kim = _from_2007(lab)
    lab.device(kim, IPHONE, eas="12.1")  # DeviceModel iPhone15C2
    _android(lab, kim)
    # QueryString is compared with the whole DeviceModel, in any case.
    rules_csv = device_access_rules("contoso.local", [("DeviceModel", "IPHONE15C2", "Allow")])
    lab.export("device-access-rules.csv", rules_csv)
    lab.import_exports()

    plan = lab.plan("EX2010A", kim)

    assert "X-ABQ" not in rules(plan.device(IPHONE)), plan.device(IPHONE)
    assert _asked(plan.device(ANDROID)), plan.device(ANDROID)


def test_a_block_rule_on_the_device_type_blocks_unless_the_user_allowed_the_device(
    lab: Lab,
) -> None:
    kim = _from_2007(lab, default="Allow")
    _android(lab, kim)
    _android(lab, kim, "SEC0PERSONALLY01")
    lab.device(kim, IPAD, device_type="iPad", model="iPad13C1", eas="12.1")
    lab.device(kim, IPHONE, eas="12.1")
    lab.export(
        "device-access-rules.csv",
        device_access_rules(
            "contoso.local",
            [
                ("DeviceType", "Android", "Block"),
                # Exchange applies a Block rule before an Allow rule.
                ("DeviceModel", "SM-G991B", "Allow"),
                ("DeviceType", "iPad", "Quarantine"),
                # Not among a device's keyed facts: ignored.
                ("UserAgent", "Apple-iPhone15C2/2106.90", "Block"),
            ],
        ),
    )
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, ["SEC0PERSONALLY01"], [])]))
    lab.import_exports()

    plan = lab.plan("EX2010A", kim)

    android, ipad = plan.device(ANDROID), plan.device(IPAD)
    assert android["outcome"] == "blocked" and verdict(android, "X-ABQ")
    assert ipad["outcome"] == "blocked" and verdict(ipad, "X-ABQ")
    assert "X-ABQ" not in rules(plan.device("SEC0PERSONALLY01"))
    assert "X-ABQ" not in rules(plan.device(IPHONE))
    # A blocked phone is not told to wait; a quarantined one is.
    assert (
        "Contact IT" in android["user_text"]
        and "wait for approval" not in android["user_text"].lower()
    )
    assert "Wait for approval" in ipad["user_text"]


def test_rules_never_imported_in_full_allow_nothing(lab: Lab) -> None:
    kim = _from_2007(lab)
    lab.device(kim, IPHONE, eas="12.1")
    lab.export(
        "device-access-rules.csv",
        device_access_rules("contoso.local", [("DeviceModel", "iPhone15C2", "Allow")]),
    )
    lab.import_exports("--partial")

    assert _asked(lab.plan("EX2010A", kim).device(IPHONE))
    assert Organisation.objects.get(forest="contoso.local").device_access_rules_imported_at is None


# -- importing ---------------------------------------------------------------------------------


def test_importing_the_same_lists_and_rules_again_changes_nothing(lab: Lab) -> None:
    kim = _from_2007(lab)
    lab.device(kim, IPHONE, eas="12.1")
    lab.device(kim, SECOND_IPHONE, eas="12.1")
    lists = cas_mailboxes([(kim, [IPHONE], [SECOND_IPHONE])])
    rules_csv = device_access_rules(
        "contoso.local", [("DeviceModel", "iPhone15C2", "Allow"), ("DeviceType", "iPad", "Block")]
    )
    lab.export("cas-mailboxes.csv", lists)
    lab.export("device-access-rules.csv", rules_csv)
    kinds = lab.import_exports()
    assert kinds["cas-mailboxes.csv"] == "cas_mailboxes"
    assert kinds["device-access-rules.csv"] == "device_access_rules"
    stored = sorted(Partnership.objects.values_list("device__device_id", "personal_access"))
    history = FactChange.objects.count()
    assert stored == [(SECOND_IPHONE, "blocked"), (IPHONE, "allowed")]
    assert FactChange.objects.filter(fact__startswith="device access rule").count() == 2

    lab.export("cas-mailboxes.csv", lists)
    lab.export("device-access-rules.csv", rules_csv)
    lab.import_exports()

    assert sorted(Partnership.objects.values_list("device__device_id", "personal_access")) == stored
    assert FactChange.objects.count() == history
    assert _latest_counts("cas-mailboxes.csv")["partnerships"] == {"updated": 0, "unchanged": 2}
    assert _latest_counts("device-access-rules.csv")["device_access_rules"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "deleted": 0,
    }

    # The lists emptied and the iPad rule gone: both are reset, the removal is in the history.
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, [], [])]))
    lab.export(
        "device-access-rules.csv",
        device_access_rules("contoso.local", [("DeviceModel", "iPhone15C2", "Allow")]),
    )
    lab.import_exports()

    assert set(Partnership.objects.values_list("personal_access", flat=True)) == {""}
    removed = FactChange.objects.get(fact__contains="iPad", new_value="none")
    assert (removed.subject, removed.old_value, removed.new_value) == (
        "Organisation contoso.local",
        "Block",
        "none",
    )
    assert DeviceAccessRule.objects.count() == 1


def test_a_list_exported_as_a_type_name_is_unknown_and_keeps_what_was_recorded(
    lab: Lab,
) -> None:
    kim = _from_2007(lab)
    lab.device(kim, IPHONE, eas="12.1")
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, [IPHONE], [])]))
    lab.import_exports()

    lab.export(
        "cas-mailboxes.csv",
        cas_mailboxes([(kim, "System.Collections.ArrayList", "System.Collections.ArrayList")]),
    )
    lab.import_exports()

    assert Partnership.objects.get().personal_access == "allowed"
    record = InventoryImport.objects.filter(filename="cas-mailboxes.csv").order_by("-id").first()
    assert any("ActiveSyncAllowedDeviceIDs" in w and "-join" in w for w in record.warnings)


@pytest.mark.parametrize(
    ("header", "record", "kind"),
    [
        (
            ("Identity", "PrimarySmtpAddress", "ActiveSyncAllowedDeviceIDs"),
            ("contoso.local/Users/Kim Akers", "kim@contoso.com", "ApplF17LTTCGFFG8, ApplC39XK2"),
            "cas_mailboxes",
        ),
        (
            ("AccessLevel", "Characteristic", "QueryString", "Name"),
            ("quarantine", "devicetype", "iPad", "iPad (DeviceType)"),
            "device_access_rules",
        ),
    ],
)
def test_both_exports_are_recognised_by_their_columns_alone(header, record, kind) -> None:
    export = read(crlf(quoted(*header), quoted(*record)))

    [(_, row)] = rows(export)
    assert export.kind == kind
    if kind == "cas_mailboxes":
        assert (row["allowed"], row["blocked"]) == (["ApplF17LTTCGFFG8", "ApplC39XK2"], None)
    else:  # enums as Exchange spells them, whatever the case in the file
        assert (row["access_level"], row["characteristic"]) == ("Quarantine", "DeviceType")


def _import(path: Path) -> tuple[dict, int]:
    out = StringIO()
    try:
        call_command("import_inventory", str(path), "--json", stdout=out, stderr=StringIO())
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    [result] = json.loads(out.getvalue())
    return result, code


def test_a_bad_access_level_is_a_line_precise_problem_and_nothing_is_written(
    lab: Lab, tmp_path: Path
) -> None:
    lab.server("EX2016A", V2016)
    lab.import_exports()
    path = tmp_path / "device-access-rules.csv"
    text = device_access_rules(
        "contoso.local",
        [("DeviceModel", "iPhone15C2", "Allow"), ("DeviceType", "Android", "Allowed")],
    )
    path.write_bytes(text.encode("utf-8-sig"))

    result, code = _import(path)

    assert code == 1 and result["state"] == "rejected"
    assert result["problems"] == [
        "device-access-rules.csv:4: column AccessLevel: 'Allowed' is not an access level "
        "(Allow, Quarantine, Block)"
    ]
    assert not DeviceAccessRule.objects.exists() and not FactChange.objects.exists()
    assert Organisation.objects.get(forest="contoso.local").device_access_rules_imported_at is None


def test_lists_of_a_mailbox_not_in_the_inventory_are_a_line_precise_problem(
    lab: Lab, tmp_path: Path
) -> None:
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2016, "Tony Smith")
    lab.device(tony, IPHONE)
    lab.import_exports()
    stranger = lab.mailbox("nobody", ex2016, "Nobody")  # never exported with Get-Mailbox
    path = tmp_path / "cas-mailboxes.csv"
    path.write_bytes(cas_mailboxes([(tony, [IPHONE], []), (stranger, [], [])]).encode("utf-8-sig"))

    result, code = _import(path)

    assert code == 1
    assert result["problems"] == [
        "cas-mailboxes.csv:4: column PrimarySmtpAddress: mailbox 'nobody@contoso.com' is not in "
        "the inventory (or its Identity matches several mailboxes); import Get-Mailbox first or "
        "in the same run"
    ]
    assert Partnership.objects.get().personal_access == ""


def test_the_organisation_page_lists_the_imported_rules_and_says_when_none_were(
    lab: Lab, admin_client
) -> None:
    lab.server("EX2016A", V2016)
    lab.server("TS2016A", V2016, forest="tailspin.local")
    lab.export(
        "device-access-rules.csv",
        device_access_rules(
            "contoso.local",
            [("DeviceModel", "iPhone15C2", "Allow"), ("UserAgent", "<b>Bad/1.0</b>", "Quarantine")],
        ),
    )
    lab.import_exports()

    page = admin_client.get(reverse("devices:organisation")).content.decode()
    contoso = page[page.index("contoso.local") : page.index("tailspin.local")]
    tailspin = page[page.index("tailspin.local") :]

    assert "<code>iPhone15C2</code>" in contoso and "Quarantine" in contoso
    assert "not matched by the predictions" in contoso  # the UserAgent rule
    assert "&lt;b&gt;Bad/1.0&lt;/b&gt;" in contoso and "<b>Bad" not in page
    assert "Get-ActiveSyncDeviceAccessRule | Export-Csv</code>; until then" in tailspin
