"""Which export a file is, and the typed rows each kind yields."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from devices.importers import byte_size, is_type_name, multi_valued
from exchange.versions import ExchangeVersion

from .helpers import crlf, messages, only_row, quoted, read, rows, warnings

REMOTE = ("PSComputerName", "RunspaceId", "PSShowComputerName")
REMOTE_VALUES = ("ex2016a.contoso.local", "3b8c1d5e-0000-4000-8000-000000000001", "False")


def export_file(
    type_name: str | None,
    header: tuple[str, ...],
    *records: tuple[str | None, ...],
    name: str = "export.csv",
    **options,
):
    lines = [f"#TYPE {type_name}"] if type_name else []
    lines.append(quoted(*header))
    lines += [quoted(*record) for record in records]
    return read(crlf(*lines), name, **options)


# -- one sample per kind: (kind, #TYPE name, header, record) -----------------------------------

SERVER = (
    "servers",
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
    (
        "Name",
        "Fqdn",
        "ServerRole",
        "Site",
        "AdminDisplayVersion",
        "ExchangeVersion",
        "Edition",
        "IsExchange2007OrLater",
        "ExchangeLegacyDN",
        "StaticDomainControllers",
    ),
    (
        "EX2016A",
        "ex2016a.contoso.local",
        "Mailbox, ClientAccess, HubTransport",
        "contoso.local/Configuration/Sites/HQ",
        "Version 15.1 (Build 2507.6)",
        "0.1 (14.0.100.0)",
        "Enterprise",
        "True",
        "/o=Contoso/ou=Exchange/cn=Configuration/cn=Servers/cn=EX2016A",
        "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
    ),
)
MAILBOX = (
    "mailboxes",
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox",
    (
        "Identity",
        "Name",
        "DisplayName",
        "Alias",
        "PrimarySmtpAddress",
        "UserPrincipalName",
        "SamAccountName",
        "ExchangeGuid",
        "Database",
        "ServerName",
        "OrganizationalUnit",
        "RecipientTypeDetails",
        "EmailAddresses",
        "LegacyExchangeDN",
    ),
    (
        "contoso.local/Europe/Munich/Anne Müller",
        "Anne Müller",
        "Müller, Anne",
        "amueller",
        "Anne.Mueller@Contoso.com",
        "amueller@contoso.local",
        "amueller",
        "{5F0C9A3E-2B7D-4C11-9E8A-7D4B1C6E0F92}",
        "EX03\\First Storage Group\\Mailbox Store (EX03)",
        "ex03",
        "contoso.local/Europe/Munich",
        "LegacyMailbox",
        "System.Collections.ArrayList",
        "/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=amueller",
    ),
)
DEVICE = (
    "devices",
    "Deserialized.Microsoft.Exchange.Management.Tasks.MobileDeviceConfiguration",
    (
        "FirstSyncTime",
        "LastPolicyUpdateTime",
        "LastSyncAttemptTime",
        "LastSuccessSync",
        "DeviceType",
        "DeviceID",
        "DeviceUserAgent",
        "DeviceModel",
        "DeviceImei",
        "DeviceFriendlyName",
        "DeviceOS",
        "Identity",
        "Guid",
        "Status",
        "DeviceAccessState",
        "DeviceAccessStateReason",
        "DevicePolicyApplied",
        "ClientVersion",
        "ClientType",
    ),
    (
        "3/14/2019 9:12:44 AM",
        None,
        "3/20/2019 1:02:03 PM",
        "3/20/2019 1:02:00 PM",
        "iPhone",
        "ApplF17LTTCGFFG8",
        "Apple-iPhone9C1/1602.92",
        "iPhone9C1",
        "356938035643809",
        'Kim\'s iPhone, "work"',
        "iOS 12.1 16B92",
        "contoso.local/Europe/London/Tony Smith/ExchangeActiveSyncDevices/iPhone§ApplF17LTTCGFFG8",
        "c41d7e20-88a3-4f5b-b0c9-1e6f2a9d3b57",
        "DeviceOK",
        "Allowed",
        "Upgrade",
        "Default",
        "14.1",
        "EAS",
    ),
)
VDIR = (
    "vdirs",
    "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.ADMobileVirtualDirectory",
    (
        "Server",
        "Name",
        "Identity",
        "InternalUrl",
        "ExternalUrl",
        "BasicAuthEnabled",
        "WindowsAuthEnabled",
        "ClientCertAuth",
        "InternalAuthenticationMethods",
    ),
    (
        "EX2010A",
        "Microsoft-Server-ActiveSync (Default Web Site)",
        "EX2010A\\Microsoft-Server-ActiveSync (Default Web Site)",
        "https://ex2010a.contoso.local/Microsoft-Server-ActiveSync",
        "https://mail.contoso.com/Microsoft-Server-ActiveSync",
        "True",
        "false",
        "Ignore",
        "System.Collections.ArrayList",
    ),
)
CERTIFICATE = (
    "certificates",
    "Deserialized.Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
    (
        "Thumbprint",
        "Subject",
        "Issuer",
        "NotBefore",
        "NotAfter",
        "Services",
        "CertificateDomains",
        "Status",
        "IsSelfSigned",
        "FriendlyName",
    ),
    (
        "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "CN=mail.contoso.com, O=Contoso, C=DE",
        "CN=Contoso CA",
        "1/15/2024 12:00:00 AM",
        "1/15/2026 11:59:59 PM",
        "IMAP, POP, IIS, SMTP",
        "mail.contoso.com, autodiscover.contoso.com",
        "Valid",
        "False",
        "Mail 2024",
    ),
)
MOVE = (
    "move_requests",
    "Deserialized.Microsoft.Exchange.MailboxReplicationService.MoveRequestStatistics",
    (
        "DisplayName",
        "Alias",
        "ExchangeGuid",
        "MailboxIdentity",
        "Status",
        "StatusDetail",
        "SourceDatabase",
        "TargetDatabase",
        "SourceServer",
        "TargetServer",
        "QueuedTimestamp",
        "StartTimestamp",
        "CompletionTimestamp",
        "FailureTimestamp",
        "PercentComplete",
        "TotalMailboxSize",
        "BatchName",
    ),
    (
        "Kim Akers",
        "kakers",
        "0b7e4d21-93c6-4f0a-8b15-2e9d6c4a7f38",
        "contoso.local/Europe/Munich/Kim Akers",
        "InProgress",
        "CopyingMessages",
        "EX2007B\\First Storage Group\\Mailbox Database",
        "MDB2010-2",
        "ex2007b.contoso.local",
        "ex2010a.contoso.local",
        "4/2/2024 9:26:00 PM",
        "4/2/2024 9:27:10 PM",
        None,
        None,
        "62",
        "1.237 GB (1,328,218,112 bytes)",
        "MigrationService:Batch-Q3",
    ),
)
BATCH = ("migration_batch", None, ("EmailAddress",), ("Anna.Mueller@Contoso.com",))
CONTOSO = "CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local"
ORG_SETTINGS = (
    "org_settings",
    "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration."
    "ActiveSyncOrganizationSettings",
    ("DefaultAccessLevel", "UserMailInsert", "AdminMailRecipients", "Name", "DistinguishedName"),
    (
        "quarantine",
        None,
        "System.Collections.ArrayList",
        "Mobile Mailbox Settings",
        f"CN=Mobile Mailbox Settings,{CONTOSO}",
    ),
)
THROTTLING = (
    "throttling",
    "Deserialized.Microsoft.Exchange.Data.Directory.Management.ThrottlingPolicy",
    ("Name", "ThrottlingPolicyScope", "EasMaxConcurrency", "EasMaxDevices", "DistinguishedName"),
    ("GlobalThrottlingPolicy_1", "Global", "10", "100", f"CN=G,CN=Global Settings,{CONTOSO}"),
)
POLICY = (
    "mailbox_policies",
    "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileMailboxPolicy",
    (
        "Name",
        "IsDefault",
        "AllowNonProvisionableDevices",
        "PasswordEnabled",
        "RequireDeviceEncryption",
        "MinPasswordLength",
        "Identity",
    ),
    ("Default", "True", "True", "False", "False", None, "Default"),
)
RELATIONSHIP = (
    "org_relationships",
    "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.OrganizationRelationship",
    ("Name", "DomainNames", "Enabled", "TargetApplicationUri", "TargetOwaURL"),
    ("On-premises to O365", "contoso.mail.onmicrosoft.com", "True", "outlook.com", None),
)
HYBRID = (
    "org_relationships",
    "Deserialized.Microsoft.Exchange.Management.Hybrid.HybridConfiguration",
    ("ClientAccessServers", "OnPremisesSmartHost", "Domains", "Features", "Name"),
    (
        "System.Collections.ArrayList",
        "mail.contoso.com",
        "System.Collections.ArrayList",
        "FreeBusy, MoveMailbox, Mailtips",
        "Hybrid Configuration",
    ),
)
ACCEPTED = (
    "accepted_domains",
    "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomain",
    ("Name", "DomainName", "DomainType", "Default", "AddressBookEnabled", "MatchSubDomains"),
    ("Partner relay", "Partner.Contoso.com", "externalrelay", "False", "False", "False"),
)
ALL = [
    SERVER,
    MAILBOX,
    DEVICE,
    VDIR,
    CERTIFICATE,
    MOVE,
    BATCH,
    ORG_SETTINGS,
    THROTTLING,
    POLICY,
    RELATIONSHIP,
    HYBRID,
    ACCEPTED,
]
IDS = [sample[1].rsplit(".", 1)[-1] if sample[1] else sample[0] for sample in ALL]


@pytest.mark.parametrize("sample", ALL, ids=IDS)
def test_every_kind_is_detected_from_its_columns_without_type_line(sample):
    kind, _, header, record = sample
    export = export_file(None, header, record)
    assert export.kind == kind
    assert export.ok, messages(export)


@pytest.mark.parametrize(
    "sample", [s for s in ALL if s[1]], ids=[i for s, i in zip(ALL, IDS, strict=True) if s[1]]
)
@pytest.mark.parametrize("prefix", ["", "Selected.", "Selected.Deserialized."])
def test_every_kind_is_detected_with_a_type_line_and_its_prefixes(sample, prefix):
    kind, type_name, header, record = sample
    type_name = prefix + type_name.removeprefix("Deserialized.")
    export = export_file(type_name, header, record)
    assert (export.kind, export.type_hint) == (kind, type_name)
    assert warnings(export) == []


@pytest.mark.parametrize("sample", ALL, ids=IDS)
def test_remote_session_columns_anywhere_are_ignored(sample):
    kind, _, header, record = sample
    export = export_file(None, REMOTE + header, REMOTE_VALUES + record)
    assert export.kind == kind
    assert export.session_computer == "ex2016a.contoso.local"
    assert only_row(export) == only_row(export_file(None, header, record))


def test_type_line_breaks_the_tie_between_kinds_whose_columns_both_fit():
    header = ("Identity", "PrimarySmtpAddress", "Status", "TargetDatabase", "Alias")
    record = ("c/U/Kim", "kim@c.com", "Queued", "MDB1", "kim")
    assert export_file(None, header, record).kind == "move_requests"
    mailbox_type = "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox"
    assert export_file(mailbox_type, header, record).kind == "mailboxes"


def test_columns_win_over_a_type_line_that_does_not_fit_them():
    mailbox_type = "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox"
    export = export_file(mailbox_type, *SERVER[2:], name="servers.csv")
    assert export.kind == "servers"
    assert warnings(export) == [
        f"servers.csv: the #TYPE line names {mailbox_type}, but the columns are those of "
        "Get-ExchangeServer; read as servers"
    ]


def test_type_line_names_the_kind_when_the_columns_are_a_bare_subset():
    export = export_file(
        "Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
        ("Name", "AdminDisplayVersion"),
        ("EX1", "Version 15.0 (Build 1497.2)"),
    )
    assert export.kind == "servers"
    assert only_row(export)["generation"] == "2013"


def test_unrecognisable_columns_are_a_problem_listing_them():
    [message] = messages(export_file(None, ("Foo", "Bar"), ("1", "2"), name="x.csv"))
    assert message.startswith(
        "x.csv: cannot tell which export this is from its columns "
        "(columns found: Foo, Bar); expected an export of"
    )


def test_kind_can_be_forced_and_then_missing_columns_are_named():
    export = export_file(
        None, ("Fqdn", "ServerRole"), ("ex1.c", "Mailbox"), name="servers.csv", kind="servers"
    )
    assert messages(export) == [
        "servers.csv: has no column 'Name' (columns found: Fqdn, ServerRole)",
        "servers.csv: has no column 'AdminDisplayVersion' (columns found: Fqdn, ServerRole)",
    ]


def test_missing_one_of_several_possible_columns_names_them_all():
    export = export_file(
        None,
        ("DeviceType", "DeviceOS", "DeviceModel"),
        ("iPhone", "iOS", "iPhone9C1"),
        name="devices.csv",
    )
    assert messages(export) == [
        "devices.csv: has no column 'Identity' or 'Mailbox' or 'User' or 'PrimarySmtpAddress' or "
        "'UserPrincipalName' (columns found: DeviceType, DeviceOS, DeviceModel)",
        "devices.csv: has no column 'DeviceID' or 'Identity' (columns found: DeviceType, "
        "DeviceOS, DeviceModel)",
    ]


def test_headers_match_in_any_case_and_order_with_unknown_columns():
    export = export_file(
        None,
        ("ADMINDISPLAYVERSION", "Whatever", "name", "serverrole"),
        ("Version 14.3 (Build 123.4)", "x", "EX2010A", "Mailbox"),
    )
    row = only_row(export)
    assert (row["name"], row["roles"], row["generation"]) == ("EX2010A", ["Mailbox"], "2010")


# -- rows per kind ------------------------------------------------------------------------------


def test_server_row():
    assert only_row(export_file(*SERVER[1:3], SERVER[3])) == {
        "name": "EX2016A",
        "fqdn": "ex2016a.contoso.local",
        "roles": ["Mailbox", "ClientAccess", "HubTransport"],
        "site": "contoso.local/Configuration/Sites/HQ",
        "admin_display_version": "Version 15.1 (Build 2507.6)",
        "version": ExchangeVersion(15, 1, 2507, 6),
        "generation": "2016",
        "edition": "Enterprise",
        "legacy_dn": "/o=Contoso/ou=Exchange/cn=Configuration/cn=Servers/cn=EX2016A",
        "is_exchange_2007_or_later": True,
        "distinguished_name": None,
        "identity": None,
        "forest": "contoso.local",
        "forest_source": "Site",
    }


def test_exchange_2003_server_seen_from_a_newer_shell():
    row = only_row(
        export_file(
            None,
            SERVER[2],
            (
                "EX03",
                None,
                "None",
                None,
                "Version 6.5 (Build 7638.2: Service Pack 2)",
                "0.0 (6.5.6500.0)",
                "Standard",
                "False",
                "/o=C/cn=EX03",
                None,
            ),
        )
    )
    assert (row["roles"], row["site"], row["generation"], row["is_exchange_2007_or_later"]) == (
        [],
        None,
        "2003",
        False,
    )


def test_unknown_version_string_is_unknown_with_a_warning():
    export = export_file(
        None,
        ("Name", "AdminDisplayVersion", "ServerRole"),
        ("EX9", "Version 99.9 (Build 1.1)", "Mailbox"),
        ("EXA", "soon", "Mailbox"),
        name="servers.csv",
    )
    assert [(r["version"], r["generation"]) for _, r in rows(export)] == [
        (ExchangeVersion(99, 9, 1, 1), None),
        (None, None),
    ]
    assert warnings(export) == [
        "servers.csv: column AdminDisplayVersion: 1 values are not a "
        "version exsync knows (line 3 'soon'); their version is unknown"
    ]


def test_mailbox_row():
    assert only_row(export_file(*MAILBOX[1:3], MAILBOX[3])) == {
        "identity": "contoso.local/Europe/Munich/Anne Müller",
        "name": "Anne Müller",
        "display_name": "Müller, Anne",
        "alias": "amueller",
        "primary_smtp": "anne.mueller@contoso.com",
        "upn": "amueller@contoso.local",
        "sam_account_name": "amueller",
        "exchange_guid": uuid.UUID("5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92"),
        "database": "EX03\\First Storage Group\\Mailbox Store (EX03)",
        "server_name": "ex03",
        "ou": "contoso.local/Europe/Munich",
        "recipient_type": "LegacyMailbox",
        "legacy_dn": "/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=amueller",
        "email_addresses": None,
    }


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("System.Collections.ArrayList", None),
        ("Microsoft.Exchange.Data.ProxyAddressCollection", None),
        ("Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]", None),
        ("SMTP:anna@x.com;smtp:a.m@x.com", ["SMTP:anna@x.com", "smtp:a.m@x.com"]),
        ("SMTP:anna@x.com, smtp:a.m@x.com", ["SMTP:anna@x.com", "smtp:a.m@x.com"]),
        ("SMTP:anna@x.com smtp:a.m@x.com", ["SMTP:anna@x.com", "smtp:a.m@x.com"]),
        ("SMTP:anna@x.com", ["SMTP:anna@x.com"]),
    ],
)
def test_multi_valued_cells_are_not_exported_type_names_or_joined_lists(cell, expected):
    assert multi_valued(cell) == expected
    record = ("c/U/Anna", "anna@x.com", cell)
    row = only_row(export_file(None, ("Identity", "PrimarySmtpAddress", "EmailAddresses"), record))
    assert row["email_addresses"] == expected


def test_type_name_pattern():
    assert is_type_name("Microsoft.Exchange.Data.NetworkAddressCollection")
    assert not is_type_name("System is down")
    assert not is_type_name("SMTP:anna@x.com")


def test_mailbox_problems_bad_guid_bad_address_empty_identity():
    export = export_file(
        None,
        ("Identity", "PrimarySmtpAddress", "ExchangeGuid"),
        ("c/U/A", "not an address", "{5f0c9a3e}"),
        (None, "b@c.com", None),
        name="mailboxes.csv",
    )
    assert messages(export) == [
        "mailboxes.csv:2: column PrimarySmtpAddress: 'not an address' is not an e-mail address "
        "like anna@contoso.com",
        "mailboxes.csv:2: column ExchangeGuid: '{5f0c9a3e}' is not a GUID (like "
        "5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92)",
        "mailboxes.csv:3: column Identity: empty, but a mailbox needs its Identity",
    ]


def test_device_row():
    assert only_row(export_file(*DEVICE[1:3], DEVICE[3])) == {
        "identity": DEVICE[3][11],
        "mailbox_identity": "contoso.local/Europe/London/Tony Smith",
        "mailbox_key": None,
        "mailbox_key_column": None,
        "device_id": "ApplF17LTTCGFFG8",
        "device_type": "iPhone",
        "client_type": "EAS",
        "model": "iPhone9C1",
        "os": "iOS 12.1 16B92",
        "user_agent": "Apple-iPhone9C1/1602.92",
        "friendly_name": 'Kim\'s iPhone, "work"',
        "imei": "356938035643809",
        "phone_number": None,
        "eas_version": "14.1",
        "eas_version_parsed": (14, 1),
        "first_sync": datetime(2019, 3, 14, 9, 12, 44),
        "last_success_sync": datetime(2019, 3, 20, 13, 2),
        "last_sync_attempt": datetime(2019, 3, 20, 13, 2, 3),
        "last_policy_update": None,
        "access_state": "Allowed",
        "access_state_reason": "Upgrade",
        "policy_applied": "Default",
        "status": "DeviceOK",
        "guid": uuid.UUID("c41d7e20-88a3-4f5b-b0c9-1e6f2a9d3b57"),
    }


@pytest.mark.parametrize(
    ("identity", "mailbox", "client", "device_type", "device_id"),
    [
        (
            "contoso.local/Users/Björn Größer/ExchangeActiveSyncDevices/iPhone§ApplF17LTTCGFFG8",
            "contoso.local/Users/Björn Größer",
            None,
            "iPhone",
            "ApplF17LTTCGFFG8",
        ),
        (
            "contoso.local\\Users\\佐々木 花子\\ExchangeActiveSyncDevices\\REST§Outlook§"
            "5eec4e941e0748a264512fd83770d5ac",
            "contoso.local\\Users\\佐々木 花子",
            "REST",
            "Outlook",
            "5eec4e941e0748a264512fd83770d5ac",
        ),
        (
            "Tony Smith/ExchangeActiveSyncDevices/Outlook§5eec4e941e0748a264512fd83770d5ac",
            "Tony Smith",
            None,
            "Outlook",
            "5eec4e941e0748a264512fd83770d5ac",
        ),
    ],
    ids=["type§id", "client§type§id backslashes", "exchange-online name only"],
)
def test_both_identity_forms_give_mailbox_and_device(
    identity, mailbox, client, device_type, device_id
):
    # Get-MobileDevice spells the column DeviceId; the statistics cmdlets DeviceID.
    export = export_file(None, ("Identity", "DeviceId", "DeviceOS"), (identity, None, "iOS"))
    row = only_row(export)
    assert (row["mailbox_identity"], row["client_type"], row["device_type"], row["device_id"]) == (
        mailbox,
        client,
        device_type,
        device_id,
    )


def test_device_id_column_must_agree_with_identity_case_insensitively():
    header = ("Identity", "DeviceID", "DeviceType")
    ok = export_file(
        None, header, ("M/ExchangeActiveSyncDevices/iPhone§ApplX1", "applx1", "iPhone")
    )
    assert only_row(ok)["device_id"] == "applx1"
    bad = export_file(
        None,
        header,
        ("M/ExchangeActiveSyncDevices/iPhone§ApplX1", "X2", "iPhone"),
        name="devices.csv",
    )
    assert messages(bad) == [
        "devices.csv:2: column DeviceID: 'X2' differs from the id 'ApplX1' at the end of Identity"
    ]


@pytest.mark.parametrize(
    "identity",
    [
        "contoso.local/Users/Tony Smith",
        "/ExchangeActiveSyncDevices/iPhone§X1",
        "M/ExchangeActiveSyncDevices/iPhoneX1",
        "M/ExchangeActiveSyncDevices/a§b§c§d",
        "M/ExchangeActiveSyncDevices/iPhone§",
    ],
)
def test_unknown_identity_forms_are_line_precise_problems(identity):
    export = export_file(
        None, ("Identity", "DeviceID", "DeviceType"), (identity, "X1", "iPhone"), name="devices.csv"
    )
    [message] = messages(export)
    assert message.startswith(
        f"devices.csv:2: column Identity: {identity!r} is not a device identity"
    )


def test_explicit_mailbox_column_is_the_mailbox_key():
    export = export_file(
        None,
        ("User", "DeviceID", "DeviceType", "DeviceModel"),
        ("anna@contoso.com", "X1", "iPhone", "iPhone9C1"),
    )
    row = only_row(export)
    assert (row["mailbox_key"], row["mailbox_key_column"], row["mailbox_identity"]) == (
        "anna@contoso.com",
        "User",
        None,
    )


def test_device_without_any_mailbox_link_or_id_is_a_problem():
    export = export_file(
        None,
        ("Identity", "Mailbox", "DeviceID", "DeviceType"),
        (None, None, None, "iPhone"),
        name="devices.csv",
    )
    assert messages(export) == [
        "devices.csv:2: column DeviceID: empty, but a device needs an id",
        "devices.csv:2: column Identity: empty, but a device needs its mailbox (Identity or "
        "Mailbox)",
    ]


def test_2010_statistics_use_device_activesync_version():
    export = export_file(
        "Deserialized.Microsoft.Exchange.Management.Tasks.ActiveSyncDeviceConfiguration",
        ("Identity", "DeviceID", "DeviceType", "DeviceActiveSyncVersion"),
        (
            "M/ExchangeActiveSyncDevices/PocketPC§09310B008B41CF11",
            "09310B008B41CF11",
            "PocketPC",
            "12.1",
        ),
    )
    row = only_row(export)
    assert (row["eas_version"], row["eas_version_parsed"]) == ("12.1", (12, 1))


def test_ascii_export_question_marks_read_as_section_sign_with_warnings():
    text = crlf(
        quoted("Identity", "DeviceID", "DeviceType"),
        quoted("c/U/Bj?rn Gr??er/ExchangeActiveSyncDevices/iPhone?ApplX1", "ApplX1", "iPhone"),
    )
    export = read(text.encode("ascii"), "devices.csv")
    row = only_row(export)
    assert (row["device_id"], row["mailbox_identity"]) == ("ApplX1", "c/U/Bj?rn Gr??er")
    assert warnings(export) == [
        "devices.csv: column Identity: 1 device identities have '?' where '§' belongs (line 2 "
        "'c/U/Bj?rn Gr??er/ExchangeActiveSyncDevices/iPhone?ApplX1'): the file was exported as "
        "ASCII; '?' was read as '§'. Export again with -Encoding UTF8 to keep names intact.",
        "devices.csv: was exported as ASCII: 1 names contain '?' where letters were lost (line 2, "
        "column Identity: 'c/U/Bj?rn Gr??er/ExchangeActiveSyncDevices/iPhone?ApplX1'). Such rows "
        "are linked by GUID, alias or SMTP address, never by name; export with -Encoding UTF8 to "
        "keep the names.",
    ]


def test_question_mark_for_section_sign_in_a_unicode_file_is_a_problem():
    text = crlf(
        quoted("Identity", "DeviceID", "DeviceType"),
        quoted("c/U/Björn/ExchangeActiveSyncDevices/iPhone?ApplX1", "ApplX1", "iPhone"),
    )
    assert messages(read(text, "devices.csv")) == [
        "devices.csv:2: column Identity: 'c/U/Björn/ExchangeActiveSyncDevices/iPhone?ApplX1' has "
        "'?' where '§' belongs, but the file is not ASCII"
    ]


def test_ascii_damaged_names_in_mailboxes_warn_once_with_a_count():
    export = export_file(
        None,
        ("Identity", "PrimarySmtpAddress", "DisplayName"),
        ("c/U/bgroesser", "b@c.com", "Bj?rn Gr??er"),
        ("c/U/hsasaki", "h@c.com", "??? ??"),
        ("c/U/q", "q@c.com", "Who? Me"),
        name="m.csv",
    )
    [warning] = warnings(export)
    assert warning.startswith(
        "m.csv: was exported as ASCII: 2 names contain '?' where letters "
        "were lost (line 2, column DisplayName: 'Bj?rn Gr??er')"
    )


def test_vdir_row():
    row = only_row(export_file(*VDIR[1:3], VDIR[3]))
    assert row.pop("present") >= {"server", "internal_url", "external_url", "windows_auth"}
    assert row == {
        "server": "EX2010A",
        "name": "Microsoft-Server-ActiveSync (Default Web Site)",
        "identity": "EX2010A\\Microsoft-Server-ActiveSync (Default Web Site)",
        "internal_url": "https://ex2010a.contoso.local/Microsoft-Server-ActiveSync",
        "external_url": "https://mail.contoso.com/Microsoft-Server-ActiveSync",
        "external_host": "mail.contoso.com",
        "basic_auth": True,
        "windows_auth": False,
    }


def test_vdir_server_comes_from_identity_without_server_column():
    export = export_file(
        None,
        ("Identity", "BasicAuthEnabled", "WindowsAuthEnabled"),
        ("EX07\\Microsoft-Server-ActiveSync (Default Web Site)", "True", None),
    )
    row = only_row(export)
    assert (row["server"], row["windows_auth"]) == ("EX07", None)


def test_booleans_other_than_true_false_are_problems():
    export = export_file(None, VDIR[2], (*VDIR[3][:5], "Yes", *VDIR[3][6:]), name="vdirs.csv")
    assert messages(export) == ["vdirs.csv:2: column BasicAuthEnabled: 'Yes' is not True or False"]


def test_certificate_row():
    assert only_row(export_file(*CERTIFICATE[1:3], CERTIFICATE[3])) == {
        "thumbprint": "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        "subject": "CN=mail.contoso.com, O=Contoso, C=DE",
        "issuer": "CN=Contoso CA",
        "not_before": datetime(2024, 1, 15),
        "not_after": datetime(2026, 1, 15, 23, 59, 59),
        "services": ["IMAP", "POP", "IIS", "SMTP"],
        "domains": ["mail.contoso.com", "autodiscover.contoso.com"],
        "status": "Valid",
        "is_self_signed": False,
        "friendly_name": "Mail 2024",
        "server": None,
    }


def test_certificate_server_only_from_a_server_column_never_from_the_session():
    header = (*REMOTE, "Thumbprint", "Server")
    export = export_file(None, header, (*REMOTE_VALUES, "A" * 40, "EX2016B"))
    assert only_row(export)["server"] == "EX2016B"


def test_bad_thumbprint_is_a_problem():
    export = export_file(None, ("Thumbprint", "Subject"), ("ABC123", "CN=x"), name="certs.csv")
    assert messages(export) == [
        "certs.csv:2: column Thumbprint: 'ABC123' is not a certificate thumbprint (40 hex digits)"
    ]


def test_move_request_row():
    assert only_row(export_file(*MOVE[1:3], MOVE[3])) == {
        "exchange_guid": uuid.UUID("0b7e4d21-93c6-4f0a-8b15-2e9d6c4a7f38"),
        "identity": "contoso.local/Europe/Munich/Kim Akers",
        "display_name": "Kim Akers",
        "alias": "kakers",
        "status": "InProgress",
        "status_detail": "CopyingMessages",
        "source_database": "EX2007B\\First Storage Group\\Mailbox Database",
        "target_database": "MDB2010-2",
        "source_server": "ex2007b.contoso.local",
        "target_server": "ex2010a.contoso.local",
        "queued_at": datetime(2024, 4, 2, 21, 26),
        "started_at": datetime(2024, 4, 2, 21, 27, 10),
        "completed_at": None,
        "failed_at": None,
        "batch_name": "MigrationService:Batch-Q3",
        "total_mailbox_size": 1328218112,
        "percent_complete": 62,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.237 GB (1,328,218,112 bytes)", 1328218112),
        ("1,237 GB (1.328.218.112 bytes)", 1328218112),
        ("0 B (0 bytes)", 0),
        ("4096", 4096),
        ("Unlimited", None),
    ],
)
def test_byte_sizes_in_any_culture(text, expected):
    assert byte_size(text) == expected


def test_migration_batch_addresses_are_lower_cased_and_validated():
    text = "EmailAddress\r\nAnna.Mueller@Contoso.com\r\nnot-an-address\r\n\r\n"
    export = read(text, "batch.csv")
    assert messages(export) == [
        "batch.csv:3: column EmailAddress: 'not-an-address' is not an e-mail address like "
        "anna@contoso.com"
    ]
    good = read("EmailAddress\r\nAnna.Mueller@Contoso.com\r\n", "batch.csv")
    assert only_row(good) == {"email_address": "anna.mueller@contoso.com"}


def test_migration_batch_made_with_select_object_and_a_type_line():
    text = crlf(
        "#TYPE Selected.System.Management.Automation.PSCustomObject",
        quoted("EmailAddress"),
        quoted("kim@contoso.com"),
    )
    export = read(text, "batch.csv")
    assert (export.kind, only_row(export)) == (
        "migration_batch",
        {"email_address": "kim@contoso.com"},
    )


# -- organisation-level kinds -------------------------------------------------------------------


def test_org_settings_row():
    assert only_row(export_file(*ORG_SETTINGS[1:3], ORG_SETTINGS[3])) == {
        "default_access_level": "Quarantine",
        "name": "Mobile Mailbox Settings",
        "distinguished_name": f"CN=Mobile Mailbox Settings,{CONTOSO}",
        "identity": None,
    }


def test_org_settings_problems_name_line_and_column():
    export = export_file(
        None,
        ("DefaultAccessLevel", "Name"),
        ("Maybe", "Mobile Mailbox Settings"),
        (None, "Mobile Mailbox Settings"),
        name="org.csv",
    )
    assert messages(export) == [
        "org.csv:2: column DefaultAccessLevel: 'Maybe' is not an access level (Allow, "
        "Quarantine, Block)",
        "org.csv:3: column DefaultAccessLevel: empty, but the organisation always has a "
        "DefaultAccessLevel",
    ]


def test_throttling_rows_of_2010_and_2013():
    assert only_row(export_file(*THROTTLING[1:3], THROTTLING[3])) == {
        "name": "GlobalThrottlingPolicy_1",
        "eas_max_devices": 100,
        "is_default": None,
        "scope": "Global",
        "distinguished_name": f"CN=G,CN=Global Settings,{CONTOSO}",
        "identity": None,
    }
    export = export_file(
        None,
        ("Name", "IsDefault", "EasMaxDevices"),
        ("DefaultThrottlingPolicy_1", "True", "Unlimited"),
        ("Other", "False", "lots"),
        name="throttling.csv",
    )
    assert export.kind == "throttling"
    assert messages(export) == [
        "throttling.csv:3: column EasMaxDevices: 'lots' is not a whole number or Unlimited"
    ]


def test_throttling_needs_a_way_to_find_the_default_policy():
    export = export_file(None, ("Name", "EasMaxDevices"), ("P", "10"), name="t.csv")
    assert messages(export) == [
        "t.csv: has no column 'ThrottlingPolicyScope' or 'IsDefault' (columns found: Name, "
        "EasMaxDevices)"
    ]


def test_mailbox_policy_rows_of_both_cmdlets_and_the_columns_present():
    row = only_row(export_file(*POLICY[1:3], POLICY[3]))
    assert row == {
        "name": "Default",
        "is_default": True,
        "allow_non_provisionable": True,
        "password_enabled": False,
        "require_encryption": False,
        "min_password_length": None,
        "distinguished_name": None,
        "identity": "Default",
        "present": frozenset(
            {
                "name",
                "is_default",
                "allow_non_provisionable",
                "password_enabled",
                "require_encryption",
                "min_password_length",
                "identity",
            }
        ),
    }
    export = export_file(
        "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.ActiveSyncMailboxPolicy",
        ("Name", "IsDefaultPolicy", "DevicePasswordEnabled", "MinDevicePasswordLength"),
        ("Default", "True", "True", "four"),
        name="policies.csv",
    )
    assert export.kind == "mailbox_policies"
    assert messages(export) == [
        "policies.csv:3: column MinDevicePasswordLength: 'four' is not a whole number"
    ]


@pytest.mark.parametrize(
    ("cells", "hybrid"),
    [
        (("HCW", "contoso.mail.onmicrosoft.com", "True", "outlook.com", None), True),
        (("HCW", "System.Collections.ArrayList", None, "Outlook.com", None), None),
        (
            ("On-premises to O365 - 0b7e", "System.Collections.ArrayList", "True", None, None),
            True,
        ),
        (
            ("Fabrikam", "fabrikam.com;fabrikam.onmicrosoft.com", "True", "outlook.com", None),
            False,
        ),
        (("HCW", "contoso.mail.onmicrosoft.com;contoso.onmicrosoft.com", "True", None, None), True),
        (
            (
                "OWA",
                "System.Collections.ArrayList",
                "True",
                None,
                "https://outlook.com/owa/contoso.onmicrosoft.com",
            ),
            None,
        ),
        (("HCW", "contoso.mail.onmicrosoft.com", "False", "outlook.com", None), False),
        (
            ("Fabrikam", "fabrikam.com, fabrikam.de", "True", "FYDIBOHF25SPDLT.fabrikam.com", None),
            False,
        ),
        (("Unknown", "System.Collections.ArrayList", "True", None, None), None),
    ],
    ids=[
        "uri",
        "uri only: any tenant",
        "the wizard's name",
        "a partner's tenant",
        "domains",
        "owa url only: any tenant",
        "disabled",
        "partner",
        "not exported",
    ],
)
def test_relationship_to_the_tenant_is_recognised(cells, hybrid):
    row = only_row(export_file(None, RELATIONSHIP[2], cells))
    assert (row["source"], row["hybrid"]) == ("Get-OrganizationRelationship", hybrid)


def test_any_hybrid_configuration_object_means_hybrid():
    row = only_row(export_file(*HYBRID[1:3], HYBRID[3]))
    assert (row["source"], row["hybrid"], row["features"]) == (
        "Get-HybridConfiguration",
        True,
        ["FreeBusy", "MoveMailbox", "Mailtips"],
    )


def test_accepted_domain_row_and_problems():
    row = only_row(export_file(*ACCEPTED[1:3], ACCEPTED[3]))
    assert (row["domain_name"], row["domain_type"], row["is_default"]) == (
        "partner.contoso.com",
        "ExternalRelay",
        False,
    )
    export = export_file(
        None,
        ACCEPTED[2],
        ("x", "contoso com", "Internal", "Yes", "True", "False"),
        name="domains.csv",
    )
    assert messages(export) == [
        "domains.csv:2: column DomainName: 'contoso com' is not a domain name like contoso.com",
        "domains.csv:2: column DomainType: 'Internal' is not a domain type (Authoritative, "
        "InternalRelay, ExternalRelay)",
        "domains.csv:2: column Default: 'Yes' is not True or False",
    ]


def test_server_row_reads_the_distinguished_name_for_the_forest():
    dn = f"CN=EX03,CN=Servers,CN=First Administrative Group,{CONTOSO}"
    export = export_file(
        None,
        ("Name", "Fqdn", "Site", "AdminDisplayVersion", "DistinguishedName"),
        ("EX03", "ex03.emea.contoso.local", None, "Version 6.5 (Build 7638.2)", dn),
    )
    row = only_row(export)
    assert (row["distinguished_name"], row["forest"], row["forest_source"]) == (
        dn,
        "contoso.local",
        "DistinguishedName",
    )


def test_vdir_external_url_must_be_a_url():
    export = export_file(
        None,
        ("Server", "InternalUrl", "ExternalUrl", "BasicAuthEnabled"),
        ("EX1", "ex1.contoso.local", "mail.contoso.com", "True"),
        name="vdirs.csv",
    )
    assert messages(export) == [
        "vdirs.csv:2: column ExternalUrl: 'mail.contoso.com' is not a URL like "
        "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    ]
