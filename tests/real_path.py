"""The real path from exports to predictions, for tests: Export-Csv files -> import_inventory ->
facts recorded through devices.services (as the admin's forms do) -> create_batch -> plan_batch.

Nothing here writes a model field or builds planner facts: a `Lab` collects the objects an
admin would export (servers, mailboxes, devices, ActiveSync directories, certificates,
organisation-level settings), writes them as Windows PowerShell 5.1 `Export-Csv -Encoding UTF8`
writes them (BOM, CRLF, every value quoted, `$null` as nothing between the commas), imports them
with `manage.py import_inventory`, records what no export carries with the services behind the
Organisation pages, and reads the plan back from `manage.py plan_batch --json`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command
from django.db.models.functions import Lower
from django.utils import timezone

from devices.models import ClientProfile, ExchangeServer, Namespace, Organisation
from devices.services import (
    client_profile_save,
    namespace_save,
    organisation_record_facts,
    server_record_facts,
)

# AdminDisplayVersion as Get-ExchangeServer prints it (eas-moves.md §5).
V2003 = "Version 6.5 (Build 7638.2: Service Pack 2)"
V2007RTM = "Version 8.0 (Build 685.25)"
V2007SP1 = "Version 8.1 (Build 240.6)"
V2007SP3 = "Version 8.3 (Build 83.6)"
V2010SP1 = "Version 14.1 (Build 218.15)"
V2010SP2 = "Version 14.2 (Build 247.5)"
V2010SP3 = "Version 14.3 (Build 123.4)"
V2013CU23 = "Version 15.0 (Build 1497.2)"
V2016 = "Version 15.1 (Build 2507.6)"
V2019 = "Version 15.2 (Build 1748.10)"
VSE = "Version 15.2 (Build 2562.17)"
# An SE build later than RTM; which CU it is cannot be told (Q-SE-CU), the build is made up.
VSE_LATER = "Version 15.2 (Build 2663.10)"

EXO = "Exchange Online"
START = "2026-12-05T22:00"  # after 2026-03-01: Exchange Online's EAS 16.1 floor applies
DIGICERT = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US"
LETSENCRYPT = "CN=R11, O=Let's Encrypt, C=US"

_CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration"
_ADMIN_GROUP = "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups"
_PS51 = "utf-8-sig"  # Windows PowerShell 5.1 -Encoding UTF8


def config_dn(forest: str) -> str:
    """The Exchange configuration container of a forest, e.g. CN=Contoso,…,DC=contoso,DC=local."""
    organisation = forest.split(".")[0].capitalize()
    return f"CN={organisation},{_CONFIG}," + ",".join(f"DC={p}" for p in forest.split("."))


def _cell(value: object) -> str:
    if value is None:
        return ""  # $null: nothing between the delimiters
    return '"' + str(value).replace('"', '""') + '"'


def export_csv(header: Sequence[str], rows: Iterable[Sequence[object]], type_name: str = "") -> str:
    """Text as Export-Csv writes it: optional #TYPE line, quoted header and values, CRLF."""
    lines = [f"#TYPE {type_name}"] if type_name else []
    lines.append(",".join(_cell(h) for h in header))
    lines.extend(",".join(_cell(v) for v in row) for row in rows)
    return "\r\n".join(lines) + "\r\n"


# -- what the admin exports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    version: str
    site: str | None = "HQ"  # None: 2003 servers show Site empty
    forest: str = "contoso.local"
    roles: str | None = None

    @property
    def is_2003(self) -> bool:
        return self.version.startswith("Version 6.5")


@dataclass(frozen=True)
class Mailbox:
    alias: str
    server: Server
    name: str

    @property
    def identity(self) -> str:
        return f"{self.server.forest}/Users/{self.name}"

    @property
    def address(self) -> str:
        return f"{self.alias}@{self.server.forest.split('.')[0]}.com"


@dataclass(frozen=True)
class Device:
    mailbox: Mailbox
    device_id: str
    device_type: str = "iPhone"
    model: str = "iPhone15C2"
    os: str = "iOS 17.5.1 21F90"
    user_agent: str = "Apple-iPhone15C2/2106.90"
    eas: str | None = "16.1"
    client_type: str | None = None
    access: str = "Allowed"
    policy: str = "Default"
    # LastSuccessSync (default SYNC) and FirstSyncTime (the column is written only when a
    # device of the export has one); a datetime is written as en-US Export-Csv writes it.
    last_sync: datetime | str | None = None
    first_sync: datetime | str | None = None


def us_time(value: datetime | str | None) -> str | None:
    """A time as Export-Csv writes it under en-US (M/d/yyyy h:mm:ss tt), in TIME_ZONE."""
    if value is None or isinstance(value, str):
        return value
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    hour = local.hour % 12 or 12
    return (
        f"{local.month}/{local.day}/{local.year} {hour}:{local:%M:%S} "
        f"{'PM' if local.hour >= 12 else 'AM'}"
    )


@dataclass(frozen=True)
class Vdir:
    server: Server
    external_host: str | None

    @property
    def row(self) -> list[object]:
        name = "Microsoft-Server-ActiveSync (Default Web Site)"
        internal = (
            f"https://{self.server.name.lower()}.{self.server.forest}/Microsoft-Server-ActiveSync"
        )
        external = (
            f"https://{self.external_host}/Microsoft-Server-ActiveSync"
            if self.external_host
            else None
        )
        return [
            self.server.name,
            name,
            f"{self.server.name}\\{name}",
            internal,
            external,
            "True",
            "True",
        ]


@dataclass(frozen=True)
class Cert:
    server: Server
    thumbprint: str
    host: str
    issuer: str = DIGICERT
    not_after: str = "1/15/2027 11:59:59 PM"
    self_signed: bool = False
    services: str = "IMAP, POP, IIS, SMTP"

    @property
    def row(self) -> list[object]:
        return [
            self.thumbprint,
            f"CN={self.host}, O=Contoso, C=DE",
            f"CN={self.host}" if self.self_signed else self.issuer,
            "1/15/2026 12:00:00 AM",
            self.not_after,
            self.services,
            # Joined by the admin (@{n='CertificateDomains';e={$_.CertificateDomains -join ';'}}).
            f"{self.host};autodiscover.{self.host.split('.', 1)[-1]}",
            "Valid",
            str(self.self_signed),
            self.host,
            self.server.name,
        ]


def org_settings(forest: str, level: str) -> str:
    """Get-ActiveSyncOrganizationSettings | Export-Csv (remote session, 2010+)."""
    return export_csv(
        ["DefaultAccessLevel", "Name", "DistinguishedName", "Identity"],
        [
            [
                level,
                "Mobile Mailbox Settings",
                f"CN=Mobile Mailbox Settings,{config_dn(forest)}",
                "Mobile Mailbox Settings",
            ]
        ],
        "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration."
        "ActiveSyncOrganizationSettings",
    )


def throttling_policy(forest: str, eas_max_devices: int) -> str:
    """Get-ThrottlingPolicy | Export-Csv from a 2010 SP1+ shell: the default is IsDefault."""
    name = "DefaultThrottlingPolicy_5f0c9a3e"
    return export_csv(
        ["Name", "IsDefault", "EasMaxConcurrency", "EasMaxDevices", "DistinguishedName"],
        [
            [
                name,
                "True",
                "10",
                str(eas_max_devices),
                f"CN={name},CN=Global Settings,{config_dn(forest)}",
            ],
            ["Executives", "False", "20", "Unlimited", None],
        ],
        "Deserialized.Microsoft.Exchange.Data.Directory.Management.ThrottlingPolicy",
    )


def mailbox_policies(forest: str, policies: Sequence[tuple[str, bool, bool]]) -> str:
    """Get-MobileDeviceMailboxPolicy | Export-Csv: (name, IsDefault, AllowNonProvisionable)."""
    return export_csv(
        [
            "Name",
            "IsDefault",
            "AllowNonProvisionableDevices",
            "PasswordEnabled",
            "RequireDeviceEncryption",
            "DistinguishedName",
        ],
        [
            [
                name,
                str(default),
                str(allow),
                "True",
                "True",
                f"CN={name},CN=Mobile Mailbox Policies,{config_dn(forest)}",
            ]
            for name, default, allow in policies
        ],
        "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileMailboxPolicy",
    )


def hybrid_relationship(forest: str) -> str:
    """Get-OrganizationRelationship | Export-Csv after the Hybrid Configuration Wizard ran."""
    name = "On-premises to O365 - 0b7e4d21"
    tenant = f"{forest.split('.')[0]}.mail.onmicrosoft.com"
    return export_csv(
        ["Name", "DomainNames", "Enabled", "TargetApplicationUri", "DistinguishedName"],
        [[name, tenant, "True", "outlook.com", f"CN={name},CN=Federation,{config_dn(forest)}"]],
        "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration."
        "OrganizationRelationship",
    )


def move_request_statistics(moves: Sequence[tuple[Mailbox, str, datetime | str | None]]) -> str:
    """Get-MoveRequest | Get-MoveRequestStatistics | Export-Csv: (mailbox, Status,
    CompletionTimestamp); the mailbox is matched by its ExchangeGuid, as the import does."""
    return export_csv(
        [
            "DisplayName",
            "Alias",
            "ExchangeGuid",
            "Status",
            "StatusDetail",
            "SourceDatabase",
            "TargetDatabase",
            "QueuedTimestamp",
            "CompletionTimestamp",
            "BatchName",
        ],
        [
            [
                m.name,
                m.alias,
                str(uuid.uuid5(uuid.NAMESPACE_DNS, m.address)),
                status,
                status,
                "MDB01",
                "MDB02",
                None,
                us_time(completed),
                None,
            ]
            for m, status, completed in moves
        ],
        "Deserialized.Microsoft.Exchange.Management.MigrationTasks.MoveRequestStatistics",
    )


def device_access_rules(forest: str, rules: Sequence[tuple[str, str, str]]) -> str:
    """Get-ActiveSyncDeviceAccessRule | Export-Csv: (Characteristic, QueryString, AccessLevel).
    Exchange names a rule "QueryString (Characteristic)"."""
    rows = []
    for characteristic, query, level in rules:
        name = f"{query} ({characteristic})"
        dn = f"CN={name},CN=Mobile Mailbox Settings,{config_dn(forest)}"
        rows.append([name, query, characteristic, level, dn, name])
    return export_csv(
        ["Name", "QueryString", "Characteristic", "AccessLevel", "DistinguishedName", "Identity"],
        rows,
        "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration."
        "ActiveSyncDeviceAccessRule",
    )


def cas_mailboxes(lists: Sequence[tuple[Mailbox, Sequence[str] | str, Sequence[str] | str]]) -> str:
    """Get-CASMailbox -ResultSize Unlimited | Select Identity,PrimarySmtpAddress, the two device
    lists joined with -join ';' | Export-Csv: (mailbox, allowed ids, blocked ids). A str is
    written as it is: a type name stands for a list that was not joined."""

    def cell(ids: Sequence[str] | str) -> str:
        return ids if isinstance(ids, str) else ";".join(ids)

    return export_csv(
        [
            "Identity",
            "PrimarySmtpAddress",
            "ActiveSyncAllowedDeviceIDs",
            "ActiveSyncBlockedDeviceIDs",
        ],
        [[m.identity, m.address, cell(allowed), cell(blocked)] for m, allowed, blocked in lists],
        "Selected.Microsoft.Exchange.Data.Directory.Management.CASMailbox",
    )


# -- the plan as plan_batch --json prints it ----------------------------------------------------


@dataclass(frozen=True)
class Plan:
    document: dict[str, Any]

    def device(self, device_id: str) -> dict[str, Any]:
        for item in self.document["items"]:
            for device in item["devices"]:
                if device["device_id"] == device_id:
                    return device
        raise AssertionError(f"no prediction for device {device_id}: {self.document}")


def rules(device: dict[str, Any], *, warnings: bool = True) -> list[str]:
    return [r["rule"] for r in device["reasons"] if warnings or not r["is_warning"]]


def reasons(device: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [r for r in device["reasons"] if r["rule"] == rule]


def verdict(device: dict[str, Any], rule: str) -> dict[str, Any]:
    """The rule's one reason that is not a warning (a warning names an unchecked fact)."""
    found = [r for r in reasons(device, rule) if not r["is_warning"]]
    assert len(found) == 1, (rule, json.dumps(device, indent=1))
    return found[0]


# -- a test organisation, built and planned through the commands --------------------------------


@dataclass
class Lab:
    folder: Path
    servers: dict[str, Server] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    vdirs: list[Vdir] = field(default_factory=list)
    certs: list[Cert] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    _imported: set[str] = field(default_factory=set)
    _round: int = 0

    # -- exports -------------------------------------------------------------------------------

    def server(
        self,
        name: str,
        version: str,
        *,
        site: str | None = "HQ",
        forest: str = "contoso.local",
        roles: str | None = None,
    ) -> Server:
        server = Server(name, version, None if version == V2003 else site, forest, roles)
        self.servers[name] = server
        return server

    def mailbox(self, alias: str, server: Server, name: str | None = None) -> Mailbox:
        mailbox = Mailbox(alias, server, name or alias.capitalize())
        self.mailboxes[alias] = mailbox
        return mailbox

    def mailboxes_named(self, *aliases: str) -> list[Mailbox]:
        return [self.mailboxes[alias] for alias in aliases]

    def device(self, mailbox: Mailbox, device_id: str, **facts: Any) -> Device:
        device = Device(mailbox, device_id, **facts)
        self.devices.append(device)
        return device

    def vdir(self, server: Server, external_host: str | None) -> None:
        self.vdirs.append(Vdir(server, external_host))

    def cert(self, server: Server, thumbprint: str, host: str, **facts: Any) -> None:
        self.certs.append(Cert(server, thumbprint, host, **facts))

    def export(self, filename: str, text: str) -> None:
        """An organisation-level export (settings, throttling, policies, relationships)."""
        self.extra.append((filename, text))

    def _servers_csv(self) -> str:
        rows = []
        for s in self.servers.values():
            roles = s.roles or (
                "None"
                if s.is_2003
                else "Mailbox"
                if s.version.startswith("Version 15")
                else "Mailbox, ClientAccess, HubTransport"
            )
            group = "CN=First Administrative Group" if s.is_2003 else _ADMIN_GROUP
            rows.append(
                [
                    s.name,
                    f"{s.name.lower()}.{s.forest}",
                    roles,
                    f"{s.forest}/Configuration/Sites/{s.site}" if s.site else None,
                    s.version,
                    str(not s.is_2003),
                    f"CN={s.name},CN=Servers,{group},{config_dn(s.forest)}",
                    s.name,
                ]
            )
        return export_csv(
            [
                "Name",
                "Fqdn",
                "ServerRole",
                "Site",
                "AdminDisplayVersion",
                "IsExchange2007OrLater",
                "DistinguishedName",
                "Identity",
            ],
            rows,
            "Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
        )

    def _mailboxes_csv(self) -> str:
        rows = []
        for m in self.mailboxes.values():
            s = m.server
            old = s.is_2003 or s.version.startswith("Version 8")
            store = "Mailbox Store" if s.is_2003 else "Mailbox Database"
            rows.append(
                [
                    m.identity,
                    m.name,
                    m.name,
                    m.alias,
                    m.address,
                    str(uuid.uuid5(uuid.NAMESPACE_DNS, m.address)),
                    f"{s.name}\\First Storage Group\\{store} ({s.name})" if old else "MDB01",
                    # 2003 mailboxes seen from a newer shell: ServerName $null, server in Database.
                    None if s.is_2003 else s.name.lower(),
                    "LegacyMailbox" if s.is_2003 else "UserMailbox",
                    "System.Collections.ArrayList",
                ]
            )
        return export_csv(
            [
                "Identity",
                "Name",
                "DisplayName",
                "Alias",
                "PrimarySmtpAddress",
                "ExchangeGuid",
                "Database",
                "ServerName",
                "RecipientTypeDetails",
                "EmailAddresses",
            ],
            rows,
            "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox",
        )

    def _devices_csv(self, devices: Sequence[Device]) -> str:
        if all(d.mailbox.server.is_2003 for d in devices):
            # 2003 keeps no device objects in AD (formats.md §3): the admin's own script turns
            # the front end's IIS log lines (User=…&DeviceId=…&DeviceType=…) into objects.
            return export_csv(
                ["Mailbox", "DeviceId", "DeviceType", "DeviceUserAgent", "LastSuccessSync"],
                [
                    [d.mailbox.alias, d.device_id, d.device_type, d.user_agent, SYNC]
                    for d in devices
                ],
                "System.Management.Automation.PSCustomObject",
            )
        # Get-MobileDeviceStatistics from the newest shell of the organisation (2013+ names).
        first_sync = any(d.first_sync is not None for d in devices)
        rows = []
        for d in devices:
            container = f"{d.mailbox.identity}/ExchangeActiveSyncDevices/"
            leaf = f"{d.device_type}§{d.device_id}"
            if d.client_type and d.client_type.lower() in ("outlook", "rest"):
                leaf = f"REST§{d.device_type}§{d.device_id}"
            rows.append(
                [
                    container + leaf,
                    d.device_id,
                    d.device_type,
                    d.model,
                    d.os,
                    d.user_agent,
                    d.eas,
                    d.client_type or "EAS",
                    *([us_time(d.first_sync)] if first_sync else []),
                    SYNC if d.last_sync is None else us_time(d.last_sync),
                    d.access,
                    "Global",
                    d.policy,
                    "DeviceOK",
                ]
            )
        return export_csv(
            [
                "Identity",
                "DeviceId",
                "DeviceType",
                "DeviceModel",
                "DeviceOS",
                "DeviceUserAgent",
                "ClientVersion",
                "ClientType",
                *(["FirstSyncTime"] if first_sync else []),
                "LastSuccessSync",
                "DeviceAccessState",
                "DeviceAccessStateReason",
                "DevicePolicyApplied",
                "Status",
            ],
            rows,
            "Deserialized.Microsoft.Exchange.Management.Tasks.MobileDeviceConfiguration",
        )

    def _vdirs_csv(self) -> str:
        return export_csv(
            [
                "Server",
                "Name",
                "Identity",
                "InternalUrl",
                "ExternalUrl",
                "BasicAuthEnabled",
                "WindowsAuthEnabled",
            ],
            [v.row for v in self.vdirs],
            "Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration."
            "ADMobileVirtualDirectory",
        )

    def _certs_csv(self) -> str:
        return export_csv(
            [
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
                "Server",
            ],
            [c.row for c in self.certs],
            "Deserialized.Microsoft.Exchange.Management.SystemConfigurationTasks."
            "ExchangeCertificate",
        )

    def import_exports(self, *options: str, devices_again: bool = False) -> dict[str, str]:
        """Write every export collected since the last call and import them in one run; fails
        the test if the importer rejects one. Returns {file name: kind}. devices_again: the
        device export is imported even if the same one was imported before (an admin running
        the same export twice)."""
        self._round += 1
        files: list[tuple[str, str]] = []
        parts = [
            ("servers", self._servers_csv, bool(self.servers)),
            ("mailboxes", self._mailboxes_csv, bool(self.mailboxes)),
            ("vdirs", self._vdirs_csv, bool(self.vdirs)),
            ("certificates", self._certs_csv, bool(self.certs)),
        ]
        for name, make, present in parts:
            text = make() if present else ""
            key = f"{name}:{text}"
            if present and key not in self._imported:
                self._imported.add(key)
                files.append((f"{name}.csv", text))
        if self.devices:
            text = self._devices_csv(self.devices)
            if devices_again or f"devices:{text}" not in self._imported:
                self._imported.add(f"devices:{text}")
                files.append(("devices.csv", text))
        files.extend(self.extra)
        self.extra = []
        folder = self.folder / f"round{self._round}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for filename, text in files:
            path = folder / filename
            path.write_bytes(text.encode(_PS51))
            paths.append(str(path))
        out, err = StringIO(), StringIO()
        try:
            call_command("import_inventory", *paths, *options, "--json", stdout=out, stderr=err)
        except SystemExit as exc:
            raise AssertionError(f"import rejected:\n{out.getvalue()}\n{err.getvalue()}") from exc
        return {r["file"]: r["kind"] for r in json.loads(out.getvalue())}

    # -- facts no export carries, recorded as the Organisation pages record them --------------

    @staticmethod
    def stored_server(name: str) -> ExchangeServer:
        return ExchangeServer.objects.annotate(lname=Lower("name")).get(lname=name.lower())

    def record_server(self, name: str, **facts: object) -> None:
        """Organisation → Servers: IWA on a 2003 EAS directory, ExSetup, BlockLegacyMailboxes."""
        server_record_facts(server=self.stored_server(name), actor=None, **facts)

    def record_organisation(self, forest: str, **facts: object) -> None:
        """Organisation → the facts of one organisation; hybrid_server by the server's name."""
        if isinstance(facts.get("hybrid_server"), str):
            facts["hybrid_server"] = self.stored_server(str(facts["hybrid_server"]))
        organisation_record_facts(
            organisation=Organisation.objects.get(forest=forest), actor=None, **facts
        )

    def phones_use(
        self,
        host: str,
        *,
        servers: Sequence[str] | None = None,
        sites: str = "",
        retired: bool = False,
        legacy: bool | None = None,
    ) -> None:
        """Organisation → Namespaces: mark the host name phones are configured with, keeping
        what the import recorded (the servers publishing it, legacy) unless given."""
        namespace = Namespace.objects.filter(host=host).first()
        if servers is not None:
            answering = [self.stored_server(n) for n in servers]
        else:
            answering = list(namespace.servers.all()) if namespace else []
        namespace_save(
            namespace=namespace,
            actor=None,
            host=host,
            servers=answering,
            is_legacy=namespace.is_legacy if legacy is None and namespace else bool(legacy),
            devices_use=True,
            sites=sites,
            retired=retired,
        )

    def client_profile(self, name: str, **facts: Any) -> None:
        """Organisation → Client profiles: add one, or change the one with this name."""
        client_profile_save(
            profile=ClientProfile.objects.filter(name=name).first(), actor=None, name=name, **facts
        )

    # -- the batch ------------------------------------------------------------------------------

    def plan(
        self,
        target: str,
        *mailboxes: Mailbox,
        name: str = "Wave",
        start: str = START,
        options: Sequence[str] = (),
        stderr: StringIO | None = None,
    ) -> Plan:
        """create_batch NAME --target-server … --start … --mailboxes-csv …, then plan_batch.
        stderr: receives create_batch's warnings."""
        batch_csv = self.folder / f"{name}.csv"
        # Select-Object @{Name='EmailAddress';Expression={$_.PrimarySmtpAddress}} | Export-Csv
        batch_csv.write_bytes(
            export_csv(["EmailAddress"], [[m.address] for m in mailboxes]).encode(_PS51)
        )
        run(
            "create_batch",
            name,
            "--target-server",
            target,
            "--start",
            start,
            "--mailboxes-csv",
            str(batch_csv),
            *options,
            stderr=stderr,
        )
        return self.replan(name)

    @staticmethod
    def replan(name: str = "Wave") -> Plan:
        return Plan(json.loads(run("plan_batch", name, "--json")))


SYNC = "11/24/2026 4:05:07 PM"


def run(command: str, *args: str, stderr: StringIO | None = None) -> str:
    """The command's output; fails the test if it fails. stderr: receives its warnings."""
    out, err = StringIO(), stderr if stderr is not None else StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except (CommandError, SystemExit) as exc:
        raise AssertionError(f"{command} {' '.join(args)} failed: {exc}\n{err.getvalue()}") from exc
    return out.getvalue()
