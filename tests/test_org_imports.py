"""Organisation-level exports: ActiveSync settings, throttling, mailbox policies, hybrid
relationships and accepted domains; which organisation each belongs to; the fact history."""

from __future__ import annotations

import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from devices.models import (
    EXCHANGE_ONLINE_FOREST,
    AcceptedDomain,
    FactChange,
    ImportState,
    InventoryImport,
    MobileDevicePolicy,
    Organisation,
)
from devices.services import import_record_create, inventory_import_run
from tests import exports
from tests.commands import import_inventory as run
from tests.factories import ExchangeServerFactory

pytestmark = pytest.mark.django_db


def contoso() -> Organisation:
    return Organisation.objects.get(forest="contoso.local")


def history() -> list[tuple[str, str, str, str, str]]:
    return list(
        FactChange.objects.order_by("id").values_list(
            "subject", "fact", "old_value", "new_value", "via"
        )
    )


@pytest.fixture
def one_forest(tmp_path) -> Path:
    """The inventory of contoso.local only (its servers), and the folder for exports."""
    code, _, err = run(exports.write(tmp_path, "servers.csv", exports.SERVERS))
    assert code == 0, err
    return tmp_path


@pytest.fixture
def two_forests(tmp_path) -> Path:
    code, _, err = run(exports.write(tmp_path, "servers.csv", exports.SERVERS_FORESTS))
    assert code == 0, err
    return tmp_path


# -- Get-ActiveSyncOrganizationSettings ----------------------------------------------------------


def test_org_settings_record_the_default_access_level_once(one_forest):
    settings = exports.write(one_forest, "org-settings.csv", exports.ORG_SETTINGS)

    code, out, err = run(settings)

    assert code == 0, err
    assert contoso().default_access_level == "Quarantine"
    change = FactChange.objects.get()
    assert (change.subject, change.fact, change.old_value, change.new_value) == (
        "Organisation contoso.local",
        "DefaultAccessLevel",
        "unknown",
        "Quarantine",
    )
    assert (change.via, change.actor) == ("import", None)
    assert "imported org_settings" in out

    code, _, _ = run(settings)

    assert code == 0
    assert FactChange.objects.count() == 1, "an unchanged re-import records nothing"
    record = InventoryImport.objects.latest("id")
    assert record.counts["organisations"] == {"created": 0, "updated": 0, "unchanged": 1}


def test_a_changed_value_is_recorded_with_old_and_new_value(one_forest):
    run(exports.write(one_forest, "org-settings.csv", exports.ORG_SETTINGS))
    blocked = exports.ORG_SETTINGS.replace('"Quarantine"', '"Block"')

    code, _, err = run(exports.write(one_forest, "org-settings.csv", blocked))

    assert code == 0, err
    assert history()[-1] == (
        "Organisation contoso.local",
        "DefaultAccessLevel",
        "Quarantine",
        "Block",
        "import",
    )


def test_a_tenant_distinguished_name_is_exchange_online(tmp_path):
    code, _, err = run(exports.write(tmp_path, "exo.csv", exports.ORG_SETTINGS_EXO))

    assert code == 0, err
    tenant = Organisation.objects.get()
    assert (tenant.forest, tenant.is_exchange_online, tenant.default_access_level) == (
        EXCHANGE_ONLINE_FOREST,
        True,
        "Allow",
    )


def test_without_dn_the_only_on_premises_organisation_is_used_with_a_warning(one_forest):
    Organisation.objects.create(forest=EXCHANGE_ONLINE_FOREST, is_exchange_online=True)

    code, _, err = run(exports.write(one_forest, "org.csv", exports.ORG_SETTINGS_NO_DN))

    assert code == 0, err
    assert contoso().default_access_level == "Block"
    assert (
        "warning: org.csv: has no DistinguishedName, so it was read as the settings of "
        "contoso.local, the only on-premises organisation in the inventory"
    ) in err


def test_without_dn_and_several_organisations_the_import_asks_which(two_forests):
    no_dn = exports.write(two_forests, "org.csv", exports.ORG_SETTINGS_NO_DN)

    code, _, err = run(no_dn)

    assert code == 1
    assert (
        "org.csv: has no DistinguishedName (line 2), so exsync cannot tell which organisation "
        "it belongs to: import it again with --organisation FOREST (organisations: "
        "contoso.local, emea.contoso.local, tailspin.local)"
    ) in err
    assert not FactChange.objects.exists()

    code, _, err = run(no_dn, organisation="fabrikam.local")
    assert code == 1
    assert "--organisation fabrikam.local: no organisation with that forest" in err

    code, _, err = run(no_dn, organisation="Tailspin.Local")
    assert code == 0, err
    assert Organisation.objects.get(forest="tailspin.local").default_access_level == "Block"
    assert contoso().default_access_level == ""


def test_the_dn_wins_over_the_organisation_option(two_forests):
    code, _, err = run(
        exports.write(two_forests, "org.csv", exports.ORG_SETTINGS), organisation="tailspin.local"
    )

    assert code == 0, err
    assert contoso().default_access_level == "Quarantine"
    assert "--organisation tailspin.local ignored" in err


def test_a_bad_access_level_rejects_the_file_with_line_and_column(one_forest):
    bad = exports.ORG_SETTINGS.replace('"Quarantine"', '"Maybe"')

    code, out, err = run(exports.write(one_forest, "org-settings.csv", bad))

    assert code == 1
    assert (
        "org-settings.csv:3: column DefaultAccessLevel: 'Maybe' is not an access level "
        "(Allow, Quarantine, Block)"
    ) in err
    assert "REJECTED" in out
    assert contoso().default_access_level == ""


def test_two_settings_objects_of_one_organisation_are_refused(one_forest):
    lines = exports.ORG_SETTINGS.splitlines(keepends=True)
    twice = "".join(lines) + lines[2].replace('"Quarantine"', '"Allow"')

    code, _, err = run(exports.write(one_forest, "org.csv", twice))

    assert code == 1
    assert "org.csv:4: the settings of organisation contoso.local" in err
    assert "is also on line 3" in err


def test_the_importing_user_is_the_actor_of_the_fact_change(one_forest, admin_user):
    path = exports.write(one_forest, "org.csv", exports.ORG_SETTINGS)
    record = import_record_create(
        path=path, filename=path.name, group=uuid.uuid4(), actor=admin_user, source="web"
    )

    inventory_import_run(records=[record])

    record.refresh_from_db()
    assert record.state == ImportState.SUCCEEDED, record.problems
    assert FactChange.objects.get().actor == admin_user


# -- Get-ThrottlingPolicy -------------------------------------------------------------------------


def test_throttling_takes_eas_max_devices_from_the_global_policy_when_the_org_one_is_empty(
    one_forest,
):
    throttling = exports.write(one_forest, "throttling.csv", exports.THROTTLING)

    code, _, err = run(throttling)

    assert code == 0, err
    assert contoso().eas_max_devices == 100, "not the 3 of a Regular policy"
    assert history() == [
        ("Organisation contoso.local", "EasMaxDevices", "unknown", "100", "import")
    ]
    code, _, _ = run(throttling)
    assert code == 0 and FactChange.objects.count() == 1


def test_an_organization_scope_policy_that_sets_eas_max_devices_wins(one_forest):
    org_sets = exports.THROTTLING.replace(
        '"Organization","False",,', '"Organization","False",,"50"'
    )

    code, _, err = run(exports.write(one_forest, "throttling.csv", org_sets))

    assert code == 0, err
    assert contoso().eas_max_devices == 50


def test_2010_default_policy_without_dn_and_unlimited(one_forest):
    code, _, err = run(exports.write(one_forest, "throttling.csv", exports.THROTTLING_2010))

    assert code == 0, err
    assert contoso().eas_max_devices == 10
    unlimited = exports.THROTTLING_2010.replace('"True","10","10"', '"True","10","Unlimited"')

    code, _, err = run(exports.write(one_forest, "throttling.csv", unlimited))

    assert code == 0, err
    assert contoso().eas_max_devices is None
    assert "column EasMaxDevices: Unlimited in policy DefaultThrottlingPolicy_5f0c9a3e" in err
    assert history()[-1][2:4] == ("10", "unknown")


def test_throttling_problems_are_line_precise(one_forest):
    bad = exports.THROTTLING.replace('"Global","False","10","100"', '"Global","False","10","many"')
    code, _, err = run(exports.write(one_forest, "throttling.csv", bad))
    assert code == 1
    assert (
        "throttling.csv:3: column EasMaxDevices: 'many' is not a whole number or Unlimited" in err
    )

    two_global = exports.THROTTLING.replace(
        '"Restricted phones","Regular"', '"Restricted phones","Global"'
    )
    code, _, err = run(exports.write(one_forest, "throttling.csv", two_global))
    assert code == 1
    assert (
        "throttling.csv:5: column ThrottlingPolicyScope: another Global policy of contoso.local "
        "(Restricted phones) is also on line 3"
    ) in err
    assert contoso().eas_max_devices is None


# -- Get-MobileDeviceMailboxPolicy / Get-ActiveSyncMailboxPolicy ------------------------------------


def test_mailbox_policies_are_upserted_by_name_in_any_case(one_forest):
    policies = exports.write(one_forest, "policies.csv", exports.MAILBOX_POLICIES)

    code, _, err = run(policies)

    assert code == 0, err
    rows = {
        p.name: (
            p.is_default,
            p.allow_non_provisionable_devices,
            p.password_enabled,
            p.require_device_encryption,
            p.min_password_length,
        )
        for p in MobileDevicePolicy.objects.filter(organisation=contoso())
    }
    assert rows == {
        "Default": (True, True, False, False, None),
        "Executives": (False, False, True, True, 6),
    }
    code, _, _ = run(policies)
    record = InventoryImport.objects.latest("id")
    assert record.counts["policies"] == {"created": 0, "updated": 0, "unchanged": 2}

    # The 2010 cmdlet names the same facts differently, and the policy "default".
    code, _, err = run(
        exports.write(one_forest, "policies-2010.csv", exports.ACTIVESYNC_POLICIES_2010)
    )

    assert code == 0, err
    default = MobileDevicePolicy.objects.get(organisation=contoso(), name__iexact="default")
    assert (default.name, default.password_enabled, default.min_password_length) == (
        "default",
        True,
        4,
    )
    assert MobileDevicePolicy.objects.count() == 2


def test_columns_left_out_of_a_policy_export_keep_their_values(one_forest):
    run(exports.write(one_forest, "policies.csv", exports.MAILBOX_POLICIES))
    subset = (  # Select-Object Name,PasswordEnabled,DistinguishedName: the #TYPE line tells
        "#TYPE Selected.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileMailboxPolicy\r\n"
        '"Name","PasswordEnabled","DistinguishedName"\r\n'
        f'"Executives","False","CN=Executives,CN=Mobile Mailbox Policies,{exports.CONTOSO_CONFIG}"\r\n'
    )

    code, _, err = run(exports.write(one_forest, "subset.csv", subset), partial=True)

    assert code == 0, err
    executives = MobileDevicePolicy.objects.get(name="Executives")
    assert (executives.password_enabled, executives.require_device_encryption) == (False, True)
    assert executives.min_password_length == 6


def test_policy_problems(one_forest):
    lines = exports.MAILBOX_POLICIES.splitlines(keepends=True)
    two_defaults = "".join(lines) + lines[3].replace('"Executives","False"', '"VIP","True"')
    bad_length = exports.MAILBOX_POLICIES.replace('"True","6"', '"True","six"')

    code, _, err = run(exports.write(one_forest, "p.csv", two_defaults))
    assert code == 1
    assert (
        "p.csv:5: column IsDefault: another default policy of contoso.local (VIP) is also on line 3"
    ) in err
    code, _, err = run(exports.write(one_forest, "p.csv", bad_length))
    assert code == 1
    assert "p.csv:4: column MinPasswordLength: 'six' is not a whole number" in err
    assert not MobileDevicePolicy.objects.exists()


# -- Get-OrganizationRelationship / Get-HybridConfiguration ----------------------------------------


def test_the_relationship_to_the_tenant_means_hybrid(one_forest):
    relationships = exports.write(one_forest, "rel.csv", exports.ORG_RELATIONSHIPS)

    code, _, err = run(relationships)

    assert code == 0, err
    assert contoso().hybrid_configured is True
    assert history() == [
        ("Organisation contoso.local", "hybrid configured", "unknown", "yes", "import")
    ]
    run(relationships)
    assert FactChange.objects.count() == 1


def test_a_full_export_without_a_tenant_relationship_means_no_hybrid(one_forest):
    lines = exports.ORG_RELATIONSHIPS.splitlines(keepends=True)
    partner_only = "".join(lines[:2] + lines[3:])
    path = exports.write(one_forest, "rel.csv", partner_only)

    code, _, err = run(path, partial=True)
    assert code == 0, err
    assert contoso().hybrid_configured is None, "a partial export proves nothing"

    code, _, err = run(path)
    assert code == 0, err
    assert contoso().hybrid_configured is False


def test_relationships_that_do_not_show_their_target_leave_hybrid_unknown(one_forest):
    hidden = (
        '"Name","DomainNames","Enabled","TargetApplicationUri"\r\n'
        '"Somewhere","System.Collections.ArrayList","True",\r\n'
    )

    code, _, err = run(exports.write(one_forest, "rel.csv", hidden))

    assert code == 0, err
    assert contoso().hybrid_configured is None
    assert "rel.csv:2: column DomainNames: cannot tell whether relationship Somewhere" in err


def test_any_hybrid_configuration_object_means_hybrid(one_forest):
    Organisation.objects.filter(forest="contoso.local").update(hybrid_configured=False)

    code, _, err = run(exports.write(one_forest, "hybrid.csv", exports.HYBRID_CONFIGURATION))

    assert code == 0, err
    assert contoso().hybrid_configured is True
    assert history()[-1][2:4] == ("no", "yes")


# -- Get-AcceptedDomain ---------------------------------------------------------------------------


def test_accepted_domains_keep_what_an_admin_recorded(one_forest):
    domains = exports.write(one_forest, "domains.csv", exports.ACCEPTED_DOMAINS)

    code, _, err = run(domains)

    assert code == 0, err
    rows = dict(
        AcceptedDomain.objects.filter(organisation=contoso()).values_list(
            "domain_name", "domain_type"
        )
    )
    assert rows == {
        "contoso.com": "Authoritative",
        "partner.contoso.com": "ExternalRelay",
        "contoso.mail.onmicrosoft.com": "Authoritative",  # an on-premises DN: not the tenant
    }
    assert AcceptedDomain.objects.get(domain_name="contoso.com").is_default is True
    AcceptedDomain.objects.filter(domain_name="partner.contoso.com").update(
        shared_with_other_system=True
    )

    code, _, _ = run(domains)

    assert code == 0
    assert AcceptedDomain.objects.get(domain_name="partner.contoso.com").shared_with_other_system
    record = InventoryImport.objects.latest("id")
    assert record.counts["accepted_domains"] == {"created": 0, "updated": 0, "unchanged": 3}

    lines = exports.ACCEPTED_DOMAINS.splitlines(keepends=True)
    code, _, err = run(exports.write(one_forest, "domains.csv", "".join(lines[:4])))
    assert code == 0, err
    assert "1 accepted domains of contoso.local in the inventory are not in this export" in err
    assert AcceptedDomain.objects.count() == 3


def test_accepted_domain_problems(one_forest):
    lines = exports.ACCEPTED_DOMAINS.splitlines(keepends=True)
    duplicate = "".join(lines) + lines[2].replace(
        '"contoso.com","contoso.com"', '"c","CONTOSO.com"'
    )
    bad_type = exports.ACCEPTED_DOMAINS.replace('"ExternalRelay"', '"Relay"')

    code, _, err = run(exports.write(one_forest, "domains.csv", duplicate))
    assert code == 1
    assert (
        "domains.csv:6: column DomainName: domain contoso.com of contoso.local is also on line 3"
        in err
    )
    code, _, err = run(exports.write(one_forest, "domains.csv", bad_type))
    assert code == 1
    assert (
        "domains.csv:4: column DomainType: 'Relay' is not a domain type (Authoritative, "
        "InternalRelay, ExternalRelay)"
    ) in err
    assert not AcceptedDomain.objects.exists()


# -- together -------------------------------------------------------------------------------------


def test_organisation_exports_given_with_the_servers_import_after_them(tmp_path):
    files = [
        exports.write(tmp_path, "domains.csv", exports.ACCEPTED_DOMAINS),
        exports.write(tmp_path, "org.csv", exports.ORG_SETTINGS_NO_DN),
        exports.write(tmp_path, "servers.csv", exports.SERVERS),
    ]

    code, _, err = run(*files)

    assert code == 0, err
    assert contoso().default_access_level == "Block"
    assert AcceptedDomain.objects.count() == 3
    kinds = list(
        InventoryImport.objects.order_by("finished_at", "id").values_list("kind", flat=True)
    )
    assert kinds.index("servers") < kinds.index("org_settings")


def test_a_vdir_export_without_external_url_or_auth_columns_keeps_what_is_stored(tmp_path):
    """Select-Object Server,InternalUrl,BasicAuthEnabled says nothing about ExternalUrl or IWA: it
    neither marks
    the site as proxying nor forgets a recorded IWA."""
    from devices.models import ExchangeServer
    from tests.exports import write

    server = ExchangeServerFactory(
        name="EX2010A",
        eas_external_url="https://mail.contoso.com/Microsoft-Server-ActiveSync",
        iwa_enabled=True,
        eas_vdir_imported=False,
    )
    path = write(
        tmp_path,
        "vdirs.csv",
        '"Server","InternalUrl","BasicAuthEnabled"\r\n'
        '"EX2010A","https://ex2010a.contoso.local/Microsoft-Server-ActiveSync","True"\r\n',
    )
    call_command("import_inventory", str(path), stdout=StringIO(), stderr=StringIO())

    server = ExchangeServer.objects.get(pk=server.pk)
    assert server.eas_internal_url == "https://ex2010a.contoso.local/Microsoft-Server-ActiveSync"
    assert server.eas_external_url == "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    assert server.iwa_enabled is True
    assert server.eas_vdir_imported is False
