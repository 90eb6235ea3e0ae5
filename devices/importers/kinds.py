"""The export kinds exsync reads: how to recognise each one and how to turn a record into a row.

Every kind maps the cmdlet's column names (matched case-insensitively, first alias present
wins) to normalized keys; a row is a dict with every key of its kind, None meaning "not given".
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exchange.versions import generation_of, parse_eas_version, parse_version

from . import values
from .values import BadValue

DEVICE_CONTAINERS = ("/ExchangeActiveSyncDevices/", "\\ExchangeActiveSyncDevices\\")
SECTION = "\u00a7"  # '§' between DeviceType and DeviceId in a device identity


@dataclass(frozen=True, slots=True)
class Col:
    """One normalized key and the header names it is read from."""

    key: str
    names: tuple[str, ...]
    convert: Callable[[str], Any] | None = None  # None: the text as written
    check: Callable[[str], Any] | None = None  # first pass: a cheaper test than convert
    date: bool = False
    name_like: bool = False  # a person's or object's name: check for ASCII '?' damage


def col(key: str, *names: str, **options: Any) -> Col:
    return Col(key, names, **options)


@dataclass(frozen=True)
class Kind:
    """What one kind of export looks like and how its rows are normalized."""

    name: str
    cmdlets: str
    type_names: frozenset[str]  # last dotted part of the #TYPE name, lower-cased
    columns: tuple[Col, ...]
    required: tuple[tuple[str, ...], ...]  # each: the header must have one of these
    needs: tuple[tuple[str, str], ...] = ()  # (key, what needs it): empty value -> problem
    derived: tuple[str, ...] = ()  # keys that finish() fills
    finish: Callable[[dict[str, Any], RowContext], None] | None = None
    signature: Callable[[frozenset[str]], bool] = field(default=lambda header: False)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns) + self.derived


class RowContext:
    """What a row parser may ask of the pass it runs in: the line, problems, file facts."""

    def __init__(self, report: Callable[[int, str | None, str], None]) -> None:
        self._report = report
        self.line = 0
        self.names: dict[str, str] = {}  # key -> header name as the file spells it
        self.ascii_file: bool | None = None  # None in the first pass (not known yet)
        self.question_marks: list[tuple[int, str]] = []  # '?' where '§' was, first pass
        self.question_mark_count = 0
        self.notes: dict[str, list[Any]] = {}  # warning tallies: topic -> [count, example]

    def problem(self, key: str | None, message: str) -> None:
        self._report(self.line, self.names.get(key, key) if key else None, message)

    def note(self, topic: str, key: str, value: str) -> None:
        """Count a warning-worthy value; the export reports each topic once."""
        tally = self.notes.get(topic)
        if tally is None:
            self.notes[topic] = [1, self.line, self.names.get(key, key), value]
        else:
            tally[0] += 1


# -- finishing rules that need several columns --------------------------------------------------


def server_forest(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """(forest, where it came from) of a Get-ExchangeServer row, most reliable source first."""
    if row["site"]:
        forest = values.forest_from_site(row["site"])
        if forest:
            return forest, "Site"
    dn = row["distinguished_name"] or (
        row["identity"] if row["identity"] and "dc=" in row["identity"].lower() else None
    )
    if dn:
        forest, _ = values.forest_from_dn(dn)
        if forest:
            return forest, "DistinguishedName"
    if row["fqdn"]:
        # Least reliable: the server's own AD domain. In a multi-domain forest a server in
        # emea.contoso.local gives the child domain, not the forest root contoso.local.
        forest = values.forest_from_fqdn(row["fqdn"])
        if forest:
            return forest, "Fqdn"
    return None, None


def _finish_server(row: dict[str, Any], ctx: RowContext) -> None:
    row["forest"], row["forest_source"] = server_forest(row)
    raw = row["admin_display_version"]
    if raw is None:
        return
    version = parse_version(raw)
    row["version"] = version
    generation = generation_of(version)
    row["generation"] = generation.value if generation is not None else None
    if version is None:
        ctx.note("version", "admin_display_version", raw)


def _finish_vdir(row: dict[str, Any], ctx: RowContext) -> None:
    # Which columns the export has: a Select-Object without ExternalUrl (or without the auth
    # columns) says nothing about them, which is not the same as saying "none".
    row["present"] = frozenset(ctx.names)
    if row["server"] is None and row["identity"] and "\\" in row["identity"]:
        row["server"] = row["identity"].split("\\", 1)[0] or None
    if row["external_url"] is not None:
        # The host phones are configured with (the published namespace); never InternalUrl.
        try:
            row["external_host"] = values.url_host(row["external_url"])
        except BadValue as error:
            ctx.problem("external_url", str(error))


def _finish_move(row: dict[str, Any], ctx: RowContext) -> None:
    if row["exchange_guid"] is None and row["identity"] is None and row["alias"] is None:
        ctx.problem(None, "no ExchangeGuid, Identity or Alias: cannot tell which mailbox moves")


_eas_cache: dict[str, tuple[int, int] | None] = {}


def _finish_device(row: dict[str, Any], ctx: RowContext) -> None:
    identity = row["identity"]
    id_from_identity = type_from_identity = client_from_identity = None
    if identity is not None:
        for container in DEVICE_CONTAINERS:
            cut = identity.rfind(container)
            if cut >= 0:
                break
        if cut < 0:
            ctx.problem(
                "identity",
                f"{identity!r} is not a device identity; expected "
                "'<mailbox>/ExchangeActiveSyncDevices/<DeviceType>§<DeviceId>'",
            )
        else:
            mailbox = row["mailbox_identity"] = identity[:cut] or None
            if ctx.ascii_file is None and mailbox and values.looks_ascii_damaged(mailbox):
                ctx.note("ascii", "identity", identity)
            leaf = identity[cut + len(container) :]
            parts = leaf.split(SECTION)
            if len(parts) == 1 and "?" in leaf:
                # An ASCII export turned '§' into '?': fine only if the whole file is ASCII.
                if ctx.ascii_file is None:
                    ctx.question_mark_count += 1
                    if len(ctx.question_marks) < 200:
                        ctx.question_marks.append((ctx.line, identity))
                elif not ctx.ascii_file:
                    ctx.problem("identity", f"{identity!r} has '?' where '§' belongs")
                parts = leaf.split("?")
            if len(parts) in (2, 3) and all(parts) and row["mailbox_identity"]:
                id_from_identity = parts[-1]
                type_from_identity = parts[-2]
                client_from_identity = parts[0] if len(parts) == 3 else None
            else:
                ctx.problem(
                    "identity",
                    f"{identity!r} is not a device identity exsync knows; expected it to end in "
                    "'/ExchangeActiveSyncDevices/<DeviceType>§<DeviceId>' or "
                    "'…/<ClientType>§<DeviceType>§<DeviceId>'",
                )
    device_id = row["device_id"]
    if device_id is None:
        row["device_id"] = id_from_identity
        if identity is None:
            ctx.problem(
                "device_id" if "device_id" in ctx.names else "identity",
                "empty, but a device needs an id",
            )
    elif id_from_identity is not None and device_id.lower() != id_from_identity.lower():
        ctx.problem(
            "device_id",
            f"{device_id!r} differs from the id {id_from_identity!r} at the end of Identity",
        )
    if row["device_type"] is None:
        row["device_type"] = type_from_identity
    if row["client_type"] is None:
        row["client_type"] = client_from_identity
    if row["mailbox_key"] is not None:
        row["mailbox_key_column"] = ctx.names["mailbox_key"]
    elif identity is None:
        ctx.problem(
            "identity" if "identity" in ctx.names else "mailbox_key",
            "empty, but a device needs its mailbox (Identity or Mailbox)",
        )
    raw = row["eas_version"]
    if raw is not None:
        try:
            parsed = _eas_cache[raw]
        except KeyError:
            parsed = parse_eas_version(raw)
            if len(_eas_cache) < 1000:
                _eas_cache[raw] = parsed
        row["eas_version_parsed"] = parsed
        if parsed is None:
            ctx.note("eas", "eas_version", raw)


def _finish_present(row: dict[str, Any], ctx: RowContext) -> None:
    # Which keys had a column: a writer must not overwrite a known value with a column the
    # export left out (a Select-Object subset), while an empty cell may be a real $null.
    row["present"] = frozenset(ctx.names)


# The coexistence routing domain the Hybrid Configuration Wizard gives the tenant relationship
# (tenant.mail.onmicrosoft.com); a partner's free/busy relationship to its own tenant names its
# own domains (fabrikam.com, fabrikam.onmicrosoft.com) and must not count as hybrid. [I]
_ROUTING_DOMAINS = (".mail.onmicrosoft.com", ".mail.partner.onmschina.cn")
_HCW_NAME = "on-premises to o365"


def _relationship_is_hybrid(row: dict[str, Any]) -> bool | None:
    """True for the relationship the Hybrid Configuration Wizard creates to the tenant, False
    for another one, None when the export does not show (DomainNames a type name)."""
    if row["enabled"] is False:
        return False
    if (row.get("name") or "").strip().lower().startswith(_HCW_NAME):
        return True
    domains = row["domain_names"]
    if domains is None:
        return None  # an outlook.com target alone could be any tenant's relationship
    return any(d.lower().rstrip(".").endswith(_ROUTING_DOMAINS) for d in domains)


def _finish_relationship(row: dict[str, Any], ctx: RowContext) -> None:
    if "domain_names" in ctx.names or "target_application_uri" in ctx.names:
        row["source"] = "Get-OrganizationRelationship"
        row["hybrid"] = _relationship_is_hybrid(row)
    else:
        # Get-HybridConfiguration has an object only once the wizard ran.
        row["source"] = "Get-HybridConfiguration"
        row["hybrid"] = True


# -- header signatures ------------------------------------------------------------------------

_DEVICE_HINTS = frozenset(
    {
        "devicetype",
        "deviceuseragent",
        "deviceos",
        "devicemodel",
        "firstsynctime",
        "lastsuccesssync",
        "clientversion",
        "deviceactivesyncversion",
        "deviceaccessstate",
        "devicefriendlyname",
    }
)
_MAILBOX_HINTS = frozenset(
    {
        "database",
        "recipienttypedetails",
        "recipienttype",
        "servername",
        "samaccountname",
        "exchangeguid",
        "alias",
        "userprincipalname",
        "organizationalunit",
        "emailaddresses",
        "legacyexchangedn",
    }
)
_VDIR_HINTS = frozenset(
    {
        "basicauthenabled",
        "windowsauthenabled",
        "clientcertauth",
        "activesyncserver",
        "mobileclientcertificateprovisioningenabled",
        "baditemreportingenabled",
    }
)


def _is_devices(h: frozenset[str]) -> bool:
    return ("deviceid" in h and bool(h & _DEVICE_HINTS)) or len(h & _DEVICE_HINTS) >= 3


def _is_moves(h: frozenset[str]) -> bool:
    return "status" in h and "targetdatabase" in h


def _is_vdirs(h: frozenset[str]) -> bool:
    return bool(h & _VDIR_HINTS)


def _is_certificates(h: frozenset[str]) -> bool:
    return "thumbprint" in h


def _is_servers(h: frozenset[str]) -> bool:
    return (
        "serverrole" in h
        or "isexchange2007orlater" in h
        or ("admindisplayversion" in h and "fqdn" in h)
    )


def _is_mailboxes(h: frozenset[str]) -> bool:
    return "primarysmtpaddress" in h and ("identity" in h or bool(h & _MAILBOX_HINTS))


def _is_batch(h: frozenset[str]) -> bool:
    return "emailaddress" in h


def _is_org_settings(h: frozenset[str]) -> bool:
    return "defaultaccesslevel" in h


def _is_throttling(h: frozenset[str]) -> bool:
    return "easmaxdevices" in h or "throttlingpolicyscope" in h


_POLICY_HINTS = frozenset(
    {
        "allownonprovisionabledevices",
        "devicepasswordenabled",
        "mindevicepasswordlength",
        "minpasswordlength",
        "requiredeviceencryption",
        "isdefaultpolicy",
    }
)
_HYBRID_HINTS = frozenset(
    {
        "onpremisessmarthost",
        "tlscertificatename",
        "clientaccessservers",
        "sendingtransportservers",
        "receivingtransportservers",
        "edgetransportservers",
        "serviceinstance",
        "domains",
        "onpremisessmtpdomains",
    }
)


def _is_mailbox_policies(h: frozenset[str]) -> bool:
    return len(h & _POLICY_HINTS) >= 2 or "allownonprovisionabledevices" in h


def _is_org_relationships(h: frozenset[str]) -> bool:
    relationship = "targetapplicationuri" in h or (
        "domainnames" in h and bool(h & {"targetowaurl", "targetautodiscoverepr"})
    )
    return relationship or ("features" in h and bool(h & _HYBRID_HINTS))


def _is_accepted_domains(h: frozenset[str]) -> bool:
    return "domaintype" in h and ("domainname" in h or "default" in h)


# -- device access: personal lists (Get-CASMailbox) and organisation rules ----------------------


def _is_cas_mailboxes(h: frozenset[str]) -> bool:
    return "activesyncalloweddeviceids" in h or "activesyncblockeddeviceids" in h


def _is_device_access_rules(h: frozenset[str]) -> bool:
    return "querystring" in h and "characteristic" in h


def _device_list(row: dict[str, Any], ctx: RowContext, key: str) -> list[str] | None:
    """A personal device list; None = not exported: no column, or a type name (§1.7)."""
    if key not in ctx.names:
        return None
    raw = row[key]
    if raw is None:
        return []  # joined by the admin (-join ';') and empty: nothing on the list
    return values.multi_valued(raw)


def _finish_cas_mailbox(row: dict[str, Any], ctx: RowContext) -> None:
    row["present"] = frozenset(ctx.names)
    row["allowed"] = _device_list(row, ctx, "allowed_ids")
    row["blocked"] = _device_list(row, ctx, "blocked_ids")
    if row["primary_smtp"] is None and row["identity"] is None:
        ctx.problem(
            "primary_smtp" if "primary_smtp" in ctx.names else "identity",
            "empty, but the lists need their mailbox (PrimarySmtpAddress or Identity)",
        )


# -- the kinds --------------------------------------------------------------------------------

SERVERS = Kind(
    name="servers",
    cmdlets="Get-ExchangeServer",
    type_names=frozenset({"exchangeserver"}),
    columns=(
        col("name", "Name"),
        col("fqdn", "Fqdn"),
        col("roles", "ServerRole", convert=values.flags),
        col("site", "Site"),
        col("admin_display_version", "AdminDisplayVersion"),
        col("edition", "Edition"),
        col("legacy_dn", "ExchangeLegacyDN"),
        col("is_exchange_2007_or_later", "IsExchange2007OrLater", convert=values.boolean),
        col("distinguished_name", "DistinguishedName"),
        col("identity", "Identity"),
    ),
    required=(("Name",), ("AdminDisplayVersion",)),
    needs=(("name", "a server needs a name"),),
    derived=("version", "generation", "forest", "forest_source"),
    finish=_finish_server,
    signature=_is_servers,
)

MAILBOXES = Kind(
    name="mailboxes",
    cmdlets="Get-Mailbox",
    type_names=frozenset({"mailbox"}),
    columns=(
        col("identity", "Identity", name_like=True),
        col("name", "Name", name_like=True),
        col("display_name", "DisplayName", name_like=True),
        col("alias", "Alias"),
        col("primary_smtp", "PrimarySmtpAddress", convert=values.smtp_address),
        col("upn", "UserPrincipalName"),
        col("sam_account_name", "SamAccountName"),
        col("exchange_guid", "ExchangeGuid", convert=values.guid, check=values.check_guid),
        col("database", "Database"),
        col("server_name", "ServerName"),
        col("ou", "OrganizationalUnit", name_like=True),
        col("recipient_type", "RecipientTypeDetails", "RecipientType"),
        col("legacy_dn", "LegacyExchangeDN"),
        col("email_addresses", "EmailAddresses", convert=values.multi_valued),
    ),
    required=(("Identity",), ("PrimarySmtpAddress",)),
    needs=(
        ("identity", "a mailbox needs its Identity"),
        ("primary_smtp", "a mailbox needs its primary SMTP address"),
    ),
    signature=_is_mailboxes,
)

DEVICES = Kind(
    name="devices",
    cmdlets="Get-MobileDeviceStatistics / Get-MobileDevice / Get-ActiveSyncDeviceStatistics",
    type_names=frozenset(
        {
            "activesyncdeviceconfiguration",
            "mobiledeviceconfiguration",
            "activesyncdevice",
            "mobiledevice",
            "activesyncdevicestatistics",
            "mobiledevicestatistics",
        }
    ),
    columns=(
        col("identity", "Identity"),  # its mailbox part is checked for '?' in _finish_device
        col("mailbox_key", "Mailbox", "User", "PrimarySmtpAddress", "UserPrincipalName"),
        col("device_id", "DeviceID"),  # also DeviceId: names match case-insensitively
        col("device_type", "DeviceType"),
        col("client_type", "ClientType"),
        col("model", "DeviceModel"),
        col("os", "DeviceOS"),
        col("user_agent", "DeviceUserAgent"),
        col("friendly_name", "DeviceFriendlyName", "FriendlyName", name_like=True),
        col("imei", "DeviceImei"),
        col("phone_number", "DevicePhoneNumber"),
        col("eas_version", "ClientVersion", "DeviceActiveSyncVersion"),
        col("first_sync", "FirstSyncTime", date=True),
        col("last_success_sync", "LastSuccessSync", date=True),
        col("last_sync_attempt", "LastSyncAttemptTime", date=True),
        col("last_policy_update", "LastPolicyUpdateTime", date=True),
        col("access_state", "DeviceAccessState"),
        col("access_state_reason", "DeviceAccessStateReason"),
        col("policy_applied", "DevicePolicyApplied"),
        col("status", "Status"),
        col("guid", "Guid", convert=values.guid, check=values.check_guid),
    ),
    required=(
        ("Identity", "Mailbox", "User", "PrimarySmtpAddress", "UserPrincipalName"),
        ("DeviceID", "Identity"),
    ),
    derived=("mailbox_identity", "mailbox_key_column", "eas_version_parsed"),
    finish=_finish_device,
    signature=_is_devices,
)

VDIRS = Kind(
    name="vdirs",
    cmdlets="Get-ActiveSyncVirtualDirectory",
    type_names=frozenset({"admobilevirtualdirectory", "activesyncvirtualdirectory"}),
    columns=(
        col("server", "Server"),
        col("name", "Name"),
        col("identity", "Identity"),
        col("internal_url", "InternalUrl"),
        col("external_url", "ExternalUrl"),
        col("basic_auth", "BasicAuthEnabled", convert=values.boolean),
        col("windows_auth", "WindowsAuthEnabled", convert=values.boolean),
    ),
    required=(("Server", "Identity"),),
    needs=(("server", "a virtual directory needs its server"),),
    derived=("external_host", "present"),
    finish=_finish_vdir,
    signature=_is_vdirs,
)

CERTIFICATES = Kind(
    name="certificates",
    cmdlets="Get-ExchangeCertificate",
    type_names=frozenset({"exchangecertificate"}),
    columns=(
        col("thumbprint", "Thumbprint", convert=values.thumbprint),
        col("subject", "Subject"),
        col("issuer", "Issuer"),
        col("not_before", "NotBefore", date=True),
        col("not_after", "NotAfter", date=True),
        col("services", "Services", convert=values.flags),
        col("domains", "CertificateDomains", convert=values.multi_valued),
        col("status", "Status"),
        col("is_self_signed", "IsSelfSigned", convert=values.boolean),
        col("friendly_name", "FriendlyName"),
        col("server", "Server"),  # never PSComputerName: that is the session's server
    ),
    required=(("Thumbprint",),),
    needs=(("thumbprint", "a certificate needs its thumbprint"),),
    signature=_is_certificates,
)

MOVE_REQUESTS = Kind(
    name="move_requests",
    cmdlets="Get-MoveRequest / Get-MoveRequestStatistics",
    type_names=frozenset({"moverequeststatistics", "moverequest"}),
    columns=(
        col("exchange_guid", "ExchangeGuid", convert=values.guid, check=values.check_guid),
        col("identity", "MailboxIdentity", "Identity", name_like=True),
        col("display_name", "DisplayName", name_like=True),
        col("alias", "Alias"),
        col("status", "Status"),
        col("status_detail", "StatusDetail"),
        col("source_database", "SourceDatabase"),
        col("target_database", "TargetDatabase"),
        col("source_server", "SourceServer"),
        col("target_server", "TargetServer"),
        col("queued_at", "QueuedTimestamp", date=True),
        col("started_at", "StartTimestamp", date=True),
        col("completed_at", "CompletionTimestamp", date=True),
        col("failed_at", "FailureTimestamp", date=True),
        col("batch_name", "BatchName"),
        col("total_mailbox_size", "TotalMailboxSize", convert=values.byte_size),
        col("percent_complete", "PercentComplete", convert=values.integer),
    ),
    required=(
        ("Status",),
        ("TargetDatabase",),
        ("ExchangeGuid", "MailboxIdentity", "Identity", "Alias"),
    ),
    finish=_finish_move,
    signature=_is_moves,
)

MIGRATION_BATCH = Kind(
    name="migration_batch",
    cmdlets="New-MigrationBatch CSV (EmailAddress)",
    type_names=frozenset(),
    columns=(col("email_address", "EmailAddress", convert=values.smtp_address),),
    required=(("EmailAddress",),),
    needs=(("email_address", "each line of a migration batch needs an address"),),
    signature=_is_batch,
)

# -- Exchange 2003 through WMI (formats.md §3): Get-WmiObject -Namespace root\MicrosoftExchangeV2
# -Class Exchange_Mailbox | Export-Csv. The __ columns (WMI system properties) and the trailing
# Scope ... Container columns (PowerShell's WMI adapter) are not Exchange data: never read. ---------


def _is_wmi_mailboxes(h: frozenset[str]) -> bool:
    return "legacydn" in h and bool(h & {"mailboxguid", "storagegroupname", "storename"})


def _finish_wmi_mailbox(row: dict[str, Any], ctx: RowContext) -> None:
    if row["mailbox_guid"] is None and row["legacy_dn"] is None:
        ctx.problem(
            "mailbox_guid" if "mailbox_guid" in ctx.names else "legacy_dn",
            "empty, and so is LegacyDN: cannot tell which mailbox this is",
        )
    # A disconnected mailbox: the store still holds it, but no AD user owns it any more.
    row["disconnected"] = row["absent_since"] is not None
    if row["server_name"] and row["storage_group"] and row["store"]:
        # Get-Mailbox prints a 2003 mailbox's Database as SERVER\Storage Group\Store.
        row["database"] = f"{row['server_name']}\\{row['storage_group']}\\{row['store']}"


WMI_MAILBOXES = Kind(
    name="wmi_mailboxes",
    cmdlets="Get-WmiObject -Namespace root\\MicrosoftExchangeV2 -Class Exchange_Mailbox",
    # The #TYPE line's last dotted part (the WMI path follows the '#').
    type_names=frozenset({"managementobject#root\\microsoftexchangev2\\exchange_mailbox"}),
    columns=(
        # No cheaper first-pass check: _finish_wmi_mailbox needs to see whether it is empty.
        col("mailbox_guid", "MailboxGUID", convert=values.guid),
        col("legacy_dn", "LegacyDN"),
        col("display_name", "MailboxDisplayName", name_like=True),
        col("server_name", "ServerName"),
        col("storage_group", "StorageGroupName"),
        col("store", "StoreName"),
        col("absent_since", "DateDiscoveredAbsentInDS"),  # only whether it is set matters
    ),
    required=(("MailboxGUID", "LegacyDN"), ("ServerName",), ("StorageGroupName",), ("StoreName",)),
    needs=(
        ("server_name", "a 2003 mailbox is on a server"),
        ("storage_group", "a 2003 mailbox is in a storage group"),
        ("store", "a 2003 mailbox is in a store"),
    ),
    derived=("disconnected", "database"),
    finish=_finish_wmi_mailbox,
    signature=_is_wmi_mailboxes,
)

# -- organisation-level kinds: the organisation is the forest of the DistinguishedName, else the
# import's --organisation option (writers decide) ------------------------------------------------


def _where(*extra: Col) -> tuple[Col, ...]:
    return (
        *extra,
        col("distinguished_name", "DistinguishedName"),
        col("identity", "Identity"),
    )


ORG_SETTINGS = Kind(
    name="org_settings",
    cmdlets="Get-ActiveSyncOrganizationSettings",
    type_names=frozenset({"activesyncorganizationsettings"}),
    columns=_where(
        col("default_access_level", "DefaultAccessLevel", convert=values.access_level),
        col("name", "Name"),
    ),
    required=(("DefaultAccessLevel",),),
    needs=(("default_access_level", "the organisation always has a DefaultAccessLevel"),),
    signature=_is_org_settings,
)

THROTTLING = Kind(
    name="throttling",
    cmdlets="Get-ThrottlingPolicy",
    type_names=frozenset({"throttlingpolicy"}),
    columns=_where(
        col("name", "Name"),
        col("eas_max_devices", "EasMaxDevices", convert=values.integer_or_unlimited),
        col("is_default", "IsDefault", convert=values.boolean),
        col("scope", "ThrottlingPolicyScope", convert=values.throttling_scope),
    ),
    required=(("Name",), ("EasMaxDevices",), ("ThrottlingPolicyScope", "IsDefault")),
    needs=(("name", "a throttling policy needs its name"),),
    signature=_is_throttling,
)

MAILBOX_POLICIES = Kind(
    name="mailbox_policies",
    cmdlets="Get-MobileDeviceMailboxPolicy / Get-ActiveSyncMailboxPolicy",
    type_names=frozenset({"mobilemailboxpolicy", "activesyncmailboxpolicy"}),
    columns=_where(
        col("name", "Name"),
        col("is_default", "IsDefault", "IsDefaultPolicy", convert=values.boolean),
        col(
            "allow_non_provisionable",
            "AllowNonProvisionableDevices",
            convert=values.boolean,
        ),
        col("password_enabled", "PasswordEnabled", "DevicePasswordEnabled", convert=values.boolean),
        col("require_encryption", "RequireDeviceEncryption", convert=values.boolean),
        col(
            "min_password_length",
            "MinPasswordLength",
            "MinDevicePasswordLength",
            convert=values.integer,
        ),
    ),
    required=(("Name",),),
    needs=(("name", "a mailbox policy needs its name"),),
    derived=("present",),
    finish=_finish_present,
    signature=_is_mailbox_policies,
)

ORG_RELATIONSHIPS = Kind(
    name="org_relationships",
    cmdlets="Get-OrganizationRelationship / Get-HybridConfiguration",
    type_names=frozenset({"organizationrelationship", "hybridconfiguration"}),
    columns=_where(
        col("name", "Name"),
        col("domain_names", "DomainNames", convert=values.multi_valued),
        col("enabled", "Enabled", convert=values.boolean),
        col("target_application_uri", "TargetApplicationUri"),
        col("target_owa_url", "TargetOwaURL"),
        col("features", "Features", convert=values.multi_valued),
        col("hybrid_domains", "Domains", "OnPremisesSmtpDomains", convert=values.multi_valued),
    ),
    required=(("DomainNames", "TargetApplicationUri", "Features"),),
    derived=("source", "hybrid"),
    finish=_finish_relationship,
    signature=_is_org_relationships,
)

ACCEPTED_DOMAINS = Kind(
    name="accepted_domains",
    cmdlets="Get-AcceptedDomain",
    type_names=frozenset({"accepteddomain"}),
    columns=_where(
        col("domain_name", "DomainName", convert=values.domain_name),
        col("domain_type", "DomainType", convert=values.domain_type),
        col("is_default", "Default", convert=values.boolean),
        col("name", "Name"),
    ),
    required=(("DomainName",), ("DomainType",)),
    needs=(
        ("domain_name", "an accepted domain needs its DomainName"),
        ("domain_type", "an accepted domain has a DomainType"),
    ),
    derived=("present",),
    finish=_finish_present,
    signature=_is_accepted_domains,
)

# Get-CASMailbox -ResultSize Unlimited | Select Identity,PrimarySmtpAddress,
#   @{n='ActiveSyncAllowedDeviceIDs';e={$_.ActiveSyncAllowedDeviceIDs -join ';'}},
#   @{n='ActiveSyncBlockedDeviceIDs';e={$_.ActiveSyncBlockedDeviceIDs -join ';'}}
CAS_MAILBOXES = Kind(
    name="cas_mailboxes",
    cmdlets="Get-CASMailbox (ActiveSyncAllowedDeviceIDs / ActiveSyncBlockedDeviceIDs)",
    type_names=frozenset({"casmailbox"}),
    columns=(
        col("identity", "Identity", name_like=True),
        col("primary_smtp", "PrimarySmtpAddress", convert=values.smtp_address),
        # Text: an empty cell is an empty joined list, a type name is "not exported".
        col("allowed_ids", "ActiveSyncAllowedDeviceIDs"),
        col("blocked_ids", "ActiveSyncBlockedDeviceIDs"),
    ),
    required=(
        ("PrimarySmtpAddress", "Identity"),
        ("ActiveSyncAllowedDeviceIDs", "ActiveSyncBlockedDeviceIDs"),
    ),
    derived=("present", "allowed", "blocked"),
    finish=_finish_cas_mailbox,
    signature=_is_cas_mailboxes,
)


# Get-Mailbox -ResultSize Unlimited | Get-MailboxRegionalConfiguration | Export-Csv; the admin
# may join the address in: Get-Mailbox … | ForEach-Object { Get-MailboxRegionalConfiguration
#   $_.Identity | Select Identity,@{n='PrimarySmtpAddress';e={…}},Language,…,TimeZone }.
# TimeZone is the Windows time zone id the mailbox's owner chose (empty: never chosen).
def _is_regional_configurations(h: frozenset[str]) -> bool:
    return "timezone" in h and bool(h & {"identity", "primarysmtpaddress"})


def _finish_regional(row: dict[str, Any], ctx: RowContext) -> None:
    if row["identity"] is not None or row["primary_smtp"] is not None:
        return
    if "identity" in ctx.names and "primary_smtp" in ctx.names:
        ctx.problem("identity", "empty, and so is PrimarySmtpAddress: cannot tell which mailbox")
    else:
        ctx.problem(
            "identity" if "identity" in ctx.names else "primary_smtp",
            "empty, but it names the mailbox",
        )


REGIONAL_CONFIGURATIONS = Kind(
    name="regional_configurations",
    cmdlets="Get-MailboxRegionalConfiguration (TimeZone)",
    type_names=frozenset({"mailboxregionalconfiguration"}),
    columns=(
        col("identity", "Identity", name_like=True),
        col("primary_smtp", "PrimarySmtpAddress", convert=values.smtp_address),
        col("time_zone", "TimeZone", convert=values.time_zone),
    ),
    required=(("PrimarySmtpAddress", "Identity"), ("TimeZone",)),
    finish=_finish_regional,
    signature=_is_regional_configurations,
)

DEVICE_ACCESS_RULES = Kind(
    name="device_access_rules",
    cmdlets="Get-ActiveSyncDeviceAccessRule",
    type_names=frozenset({"activesyncdeviceaccessrule"}),
    columns=_where(
        col("name", "Name"),
        col("query_string", "QueryString"),
        col("characteristic", "Characteristic", convert=values.device_characteristic),
        col("access_level", "AccessLevel", convert=values.access_level),
    ),
    required=(("QueryString",), ("Characteristic",), ("AccessLevel",)),
    needs=(
        ("query_string", "a device access rule needs its QueryString"),
        ("characteristic", "a device access rule has a Characteristic"),
        ("access_level", "a device access rule has an AccessLevel"),
    ),
    signature=_is_device_access_rules,
)

# -- mailbox databases and storage groups (check O-SBS-CIRC) -------------------------------------
#
# Neither cmdlet is described in formats.md; the column names below come from Microsoft's
# cmdlet documentation and admin scripts ([V] CircularLoggingEnabled on Database (2010 API
# reference) and on Set-StorageGroup (2007); [V-3p] LastFullBackup, Mounted and StorageGroupName
# in -Status output; [I] the #TYPE names and what 2007 prints in StorageGroup). Like every kind,
# the columns decide; the #TYPE line is only a hint.
#   Get-MailboxDatabase -Status | Export-Csv databases.csv -NoTypeInformation -Encoding UTF8
#   Get-StorageGroup | Export-Csv storage-groups.csv -NoTypeInformation -Encoding UTF8   (2007)

# Columns only a mailbox database has (a storage group has none of them). [I] for the set.
_DATABASE_HINTS = frozenset(
    {
        "lastfullbackup",
        "lastincrementalbackup",
        "edbfilepath",
        "mounted",
        "storagegroup",
        "storagegroupname",
        "masterserveroravailabilitygroup",
        "mailboxretention",
        "publicfolderdatabase",
        "offlineaddressbook",
        "databasesize",
    }
)
# Columns of a 2007 storage group (Get-StorageGroup) that 2010+ databases do not print. [I]
_STORAGE_GROUP_HINTS = frozenset({"systemfolderpath", "zerodatabasepages", "copysystemfolderpath"})


def _is_mailbox_databases(h: frozenset[str]) -> bool:
    # A bare Select Name,Server,CircularLoggingEnabled also fits: the #TYPE line then decides,
    # else the storage-group kind (earlier in KINDS) takes it; both store it the same way.
    if "legacydn" in h or "mailboxguid" in h:
        return False  # the 2003 WMI mailbox export has StorageGroupName too
    return bool(h & _DATABASE_HINTS) or (
        "circularloggingenabled" in h and not h & _STORAGE_GROUP_HINTS
    )


def _is_storage_groups(h: frozenset[str]) -> bool:
    return "circularloggingenabled" in h and not h & _DATABASE_HINTS


def _identity_parts(row: dict[str, Any]) -> list[str]:
    """``EX2007A\\First Storage Group\\Mailbox Database`` -> its parts; [] for a bare name."""
    identity = row["identity"] or ""
    return [part.strip() for part in identity.split("\\")] if "\\" in identity else []


def _last_part(value: str | None) -> str | None:
    # StorageGroup is an AD object id; printed as its name, or as SERVER\name [I]: accept both.
    if value is None:
        return None
    return value.rsplit("\\", 1)[-1].strip() or None


def _finish_database(row: dict[str, Any], ctx: RowContext) -> None:
    row["present"] = frozenset(ctx.names)
    parts = _identity_parts(row)
    if row["server"] is None and parts:
        row["server"] = parts[0] or None
    row["storage_group"] = (
        _last_part(row["storage_group_name"])
        or _last_part(row["storage_group_id"])
        or (parts[1] if len(parts) == 3 else None)
    )
    if row["name"] is None and parts:
        row["name"] = parts[-1] or None
    # Without -Status (or with the server unreachable) Mounted and the backup times are all
    # $null: an empty LastFullBackup then says nothing, not "never backed up". [V-3p]
    row["status_read"] = row["mounted"] is not None if "mounted" in ctx.names else True
    row["mounted_column"] = ctx.names.get("mounted")
    _need_name_and_server(row, ctx, "a database")


def _finish_storage_group(row: dict[str, Any], ctx: RowContext) -> None:
    row["present"] = frozenset(ctx.names)
    parts = _identity_parts(row)
    if row["server"] is None and parts:
        row["server"] = parts[0] or None
    if row["name"] is None and parts:
        row["name"] = parts[-1] or None
    _need_name_and_server(row, ctx, "a storage group")


def _need_name_and_server(row: dict[str, Any], ctx: RowContext, what: str) -> None:
    # Where the writer points when the name or the server is wrong (the header as spelt).
    row["name_column"] = ctx.names.get("name") or ctx.names.get("identity")
    row["server_column"] = ctx.names.get("server") or ctx.names.get("identity")
    if row["name"] is None:
        ctx.problem(
            "name" if "name" in ctx.names else "identity", f"empty, but {what} needs a name"
        )
    if row["server"] is None:
        ctx.problem(
            "server" if "server" in ctx.names else "identity",
            f"empty, but {what} is on a server (Server, or an Identity like SERVER\\name)",
        )
    # A name or group taken from the Identity (no Name column) has no column limit of its own
    # to be checked against: the stored columns' (MailboxDatabase: 255) apply to it here.
    for key in ("name", "storage_group"):
        value = row.get(key)
        if value and len(value) > DATABASE_NAME_LIMIT:
            ctx.problem(
                key if key in ctx.names else "identity",
                f"{len(value)} characters, at most {DATABASE_NAME_LIMIT}",
            )


DATABASE_NAME_LIMIT = 255  # MailboxDatabase.name and .storage_group


MAILBOX_DATABASES = Kind(
    name="mailbox_databases",
    cmdlets="Get-MailboxDatabase -Status",
    type_names=frozenset({"mailboxdatabase"}),
    columns=(
        col("name", "Name"),
        col("server", "Server", "ServerName"),
        col("identity", "Identity"),
        col("storage_group_name", "StorageGroupName"),  # 2007 only
        col("storage_group_id", "StorageGroup"),  # 2007 only
        col("circular_logging", "CircularLoggingEnabled", convert=values.boolean),
        col("last_full_backup", "LastFullBackup", date=True),
        col("mounted", "Mounted", convert=values.boolean),
    ),
    required=(("Name", "Identity"), ("Server", "ServerName", "Identity")),
    derived=(
        "storage_group",
        "status_read",
        "present",
        "mounted_column",
        "name_column",
        "server_column",
    ),
    finish=_finish_database,
    signature=_is_mailbox_databases,
)

STORAGE_GROUPS = Kind(
    name="storage_groups",
    cmdlets="Get-StorageGroup (Exchange 2007)",
    type_names=frozenset({"storagegroup"}),
    columns=(
        col("name", "Name"),
        col("server", "Server", "ServerName"),
        col("identity", "Identity"),
        col("circular_logging", "CircularLoggingEnabled", convert=values.boolean),
    ),
    required=(
        ("Name", "Identity"),
        ("Server", "ServerName", "Identity"),
        ("CircularLoggingEnabled",),
    ),
    needs=(("circular_logging", "a storage group has CircularLoggingEnabled True or False"),),
    derived=("present", "name_column", "server_column"),
    finish=_finish_storage_group,
    signature=_is_storage_groups,
)

# Detection order: the most specific signature first (a device export may carry a calculated
# PrimarySmtpAddress column; a move request has Alias and ExchangeGuid like a mailbox).
KINDS: tuple[Kind, ...] = (
    DEVICES,
    MOVE_REQUESTS,
    ORG_SETTINGS,
    THROTTLING,
    MAILBOX_POLICIES,
    ORG_RELATIONSHIPS,
    ACCEPTED_DOMAINS,
    DEVICE_ACCESS_RULES,
    STORAGE_GROUPS,  # before MAILBOX_DATABASES: a bare CircularLoggingEnabled export is one
    MAILBOX_DATABASES,
    CAS_MAILBOXES,  # before MAILBOXES: it has Identity and PrimarySmtpAddress too
    REGIONAL_CONFIGURATIONS,  # before MAILBOXES for the same reason
    VDIRS,
    CERTIFICATES,
    SERVERS,
    MAILBOXES,
    WMI_MAILBOXES,
    MIGRATION_BATCH,
)
KINDS_BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}


def type_hint_kind(type_name: str | None) -> Kind | None:
    """The kind a #TYPE name suggests (``Deserialized.``/``Selected.`` stripped), if any."""
    if not type_name:
        return None
    name = type_name.strip()
    while True:
        for prefix in ("Deserialized.", "Selected."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        else:
            break
    last = name.rsplit(".", 1)[-1].lower()
    for kind in KINDS:
        if last in kind.type_names:
            return kind
    return None


def detect(header: list[str], type_name: str | None) -> tuple[Kind | None, Kind | None]:
    """(kind read from the columns, kind the #TYPE line suggests); the columns decide."""
    names = frozenset(name.lower() for name in header)
    hinted = type_hint_kind(type_name)
    matching = [kind for kind in KINDS if kind.signature(names)]
    if hinted is not None and hinted in matching:
        return hinted, hinted
    return (matching[0] if matching else None), hinted


def missing_columns(kind: Kind, header: list[str]) -> list[tuple[str, ...]]:
    """The required column groups the header has none of."""
    names = {name.lower() for name in header}
    return [group for group in kind.required if not any(n.lower() in names for n in group)]


# The longest text the inventory keeps, per kind and key: identities, addresses and names whose
# Exchange schema has a limit keep a bounded column, and a longer value is refused with its line
# (the same on every database) instead of failing inside the write. Device-reported strings
# (DeviceModel, DeviceOS, DeviceUserAgent, DeviceFriendlyName, ...) have no natural limit and are
# stored unbounded. Must equal the model fields' max_length (tests/test_bad_input.py checks).
COLUMN_LIMITS: dict[str, dict[str, int]] = {
    "devices": {
        "device_id": 128,  # MobileDevice.device_id
        "identity": 768,  # Partnership.*
        "client_type": 32,
        "eas_version": 16,
        "access_state": 32,
        "access_state_reason": 32,
        "policy_applied": 128,
        "status": 64,  # Partnership.policy_status
    },
    "mailboxes": {
        "identity": 512,  # Mailbox.*
        "name": 255,
        "display_name": 255,
        "alias": 128,
        "primary_smtp": 320,
        "upn": 320,
        "sam_account_name": 64,
        "database": 255,
        "ou": 512,  # Mailbox.organizational_unit
        "recipient_type": 64,
        "legacy_dn": 512,
    },
    "servers": {
        "name": 64,  # ExchangeServer.*
        "fqdn": 255,
        "roles": 255,
        "site": 255,
        "admin_display_version": 128,
        "edition": 64,
        "legacy_dn": 512,
        "distinguished_name": 512,
    },
    "vdirs": {"internal_url": 512, "external_url": 512},  # ExchangeServer.eas_*_url
    "certificates": {
        "subject": 512,  # Certificate.*
        "issuer": 512,
        "services": 128,
        "status": 32,
        "friendly_name": 255,
    },
    "move_requests": {
        "status": 32,  # MoveRequest.*
        "status_detail": 64,
        "source_database": 255,
        "target_database": 255,
        "source_server": 255,
        "target_server": 255,
        "batch_name": 255,
    },
    "wmi_mailboxes": {"legacy_dn": 512, "display_name": 255},  # Mailbox.*
    "mailbox_policies": {"name": 255},  # MobileDevicePolicy.name
    "device_access_rules": {"name": 255, "query_string": 255},  # DeviceAccessRule.*
    "mailbox_databases": {"name": 255, "storage_group_name": 255},  # MailboxDatabase.*
}


class RowParser:
    """Turns the fields of one record into a row dict of ``kind``, for one pass.

    In the first pass (``first_pass=True``) values are only checked where checking is cheaper
    than converting, and names are checked for ASCII damage; its rows are thrown away. An
    import's one pass (``one_pass=True``) converts and checks everything at once.
    """

    def __init__(
        self,
        kind: Kind,
        columns: dict[str, int],
        header: list[str],
        ctx: RowContext,
        dates: dict[str, Callable[[str], Any]],
        *,
        first_pass: bool,
        one_pass: bool = False,
    ) -> None:
        self.ctx = ctx
        self.first_pass = first_pass
        checks = first_pass or one_pass  # the checks a pass over the file must make once
        text: list[tuple[str, int]] = []
        converted: list[tuple[str, int, Callable[[str], Any]]] = []
        damage: list[tuple[str, int]] = []
        limits: list[tuple[str, int, int]] = []
        kind_limits = COLUMN_LIMITS.get(kind.name, {})
        for c in kind.columns:
            index = next((columns[a.lower()] for a in c.names if a.lower() in columns), None)
            if index is None:
                continue
            ctx.names[c.key] = header[index]
            if checks and c.key in kind_limits:
                limits.append((c.key, index, kind_limits[c.key]))
            if c.date:
                converted.append((c.key, index, dates[c.key]))
            elif c.convert is None:
                text.append((c.key, index))
            else:
                convert = (c.check or c.convert) if first_pass and not one_pass else c.convert
                converted.append((c.key, index, convert))
            if c.name_like and checks:
                damage.append((c.key, index))
        self.blank = dict.fromkeys(kind.keys)
        self.text_keys = tuple(key for key, _ in text)
        indexes = [index for _, index in text]
        if len(indexes) > 1:
            self.text_values: Callable[[list[str]], Any] = operator.itemgetter(*indexes)
        else:  # itemgetter of one index returns the item, not a tuple
            self.text_values = lambda fields: tuple(fields[i] for i in indexes)
        self.converted = tuple(converted)
        self.damage = tuple(damage)
        self.limits = tuple(limits)
        where = {key: index for key, index in text} | {key: i for key, i, _ in converted}
        self.needs = tuple((key, where[key], what) for key, what in kind.needs if key in where)
        self.finish = kind.finish

    def parse(self, line: int, fields: list[str]) -> dict[str, Any]:
        """The row; bad values are reported through the context (and left None)."""
        ctx = self.ctx
        ctx.line = line
        row = self.blank.copy()
        texts = zip(self.text_keys, self.text_values(fields), strict=True)
        row.update({key: value or None for key, value in texts})
        for key, index, convert in self.converted:
            value = fields[index]
            if value:
                try:
                    row[key] = convert(value)
                except BadValue as error:
                    ctx.problem(key, str(error))
        for key, index, what in self.needs:
            if not fields[index]:
                ctx.problem(key, f"empty, but {what}")
        for key, index, limit in self.limits:
            length = len(fields[index])
            if length > limit:
                ctx.problem(key, f"{length} characters, at most {limit}")
        for key, index in self.damage:
            value = fields[index]
            if "?" in value and values.looks_ascii_damaged(value):
                ctx.note("ascii", key, value)
        if self.finish is not None:
            self.finish(row, ctx)
        return row


# -- community scripts' device reports (issue 16): read as DEVICES, see community.py ------------
from . import community  # noqa: E402  (community.py builds on the kinds above)

KINDS = (*KINDS, *community.COMMUNITY_KINDS)
