"""Device reports of widely used community scripts, read as device exports (issue 16 point 5).

Each script writes its own column names for the facts of Get-MobileDeviceStatistics /
Get-MobileDevice; a :class:`ReportKind` maps them onto the DEVICES kind's keys, so its rows are
written by the same writer. Mailboxes are linked by the best key a report carries (primary SMTP
address, UPN, mailbox name, ExchangeGuid) and never by a display name. What a report leaves out
(EAS version, first sync ...) is said in the import's warnings, with the export that adds it.

Where each column list comes from is recorded beside each kind (repository, path, commit of
the version read). The column lists are the scripts' ``Select-Object`` / ``[PSCustomObject]``
property names; Export-Csv writes the first object's properties only (formats.md §1.1), so a
report may lack some of them: no column is required that a script adds conditionally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchange.versions import parse_eas_version

from . import values
from .kinds import DEVICE_CONTAINERS, DEVICES, SECTION, Col, Kind, RowContext

# Keys naming the mailbox, best first; a display name is never one of them.
MAILBOX_KEYS = ("mailbox_smtp", "mailbox_upn", "mailbox_name")
MAILBOX_KEY_LABELS = {
    "mailbox_smtp": "mailbox primary SMTP address",
    "mailbox_upn": "mailbox UPN",
    "mailbox_name": "mailbox alias or name",
    "mailbox_guid": "mailbox ExchangeGuid",
}

# The facts a device report may lack, and which export has them (Exchange 2013+ /
# Exchange Online; Get-ActiveSyncDeviceStatistics on 2007/2010 has the same columns).
FACTS: tuple[tuple[str, str, str], ...] = (
    ("device_id", "the DeviceId", "DeviceId"),
    ("eas_version", "the EAS version", "ClientVersion"),
    ("device_type", "the DeviceType", "DeviceType"),
    ("first_sync", "the first sync time", "FirstSyncTime"),
    ("last_success_sync", "the last successful sync", "LastSuccessSync"),
    ("access_state", "the access state", "DeviceAccessState"),
)
FULL_EXPORT = (
    "Get-Mailbox -ResultSize Unlimited | Get-MobileDeviceStatistics | Export-Csv devices.csv "
    "-NoTypeInformation -Encoding UTF8"
)


@dataclass(frozen=True)
class ReportKind(Kind):
    """A community script's report: a DEVICES row from other column names."""

    report: str = ""  # the script, as the warnings name it
    null_words: frozenset[str] = frozenset()  # lower-cased cell texts that mean "no value"

    def header_warnings(self, header: list[str]) -> list[str]:
        """What the admin should know about this file: what it is and which facts it lacks."""
        present = _present_keys(self, header)
        messages = [
            f"read as a report of {self.report}, not a cmdlet export: devices are linked to "
            "mailboxes by "
            + ", ".join(
                MAILBOX_KEY_LABELS[k] for k in (*MAILBOX_KEYS, "mailbox_guid") if k in present
            )
            + ", never by display name"
        ]
        for key, fact, column in FACTS:
            if key not in present:
                messages.append(
                    f"the report lacks {fact} ({column}); predictions that need it say unknown. "
                    f"Get-MobileDeviceStatistics exports it: {FULL_EXPORT}"
                )
        return messages


def _present_keys(kind: Kind, header: list[str]) -> set[str]:
    names = {name.lower() for name in header}
    return {c.key for c in kind.columns if any(n.lower() in names for n in c.names)}


def _device_type_from(removal_id: str | None) -> str | None:
    """DeviceType from a device Identity (``…/ExchangeActiveSyncDevices/<Type>§<Id>``), leniently:
    the scripts export Identity as ASCII by default, where '§' became '?'. None if unclear."""
    if not removal_id:
        return None
    for container in DEVICE_CONTAINERS:
        cut = removal_id.rfind(container)
        if cut >= 0:
            leaf = removal_id[cut + len(container) :]
            parts = leaf.split(SECTION) if SECTION in leaf else leaf.split("?")
            if len(parts) in (2, 3) and all(parts):
                return parts[-2]
    return None


def _finish_report(row: dict[str, Any], ctx: RowContext) -> None:
    keys = [(k, row[k]) for k in MAILBOX_KEYS if row.get(k)]
    row["mailbox_key"] = keys[0][1] if keys else None
    row["mailbox_key2"] = keys[1][1] if len(keys) > 1 else None
    row["mailbox_key_column"] = ctx.names[keys[0][0]] if keys else None
    if not keys and row.get("mailbox_guid") is None:
        named = [ctx.names[k] for k in (*MAILBOX_KEYS, "mailbox_guid") if k in ctx.names]
        ctx.problem(
            named[0] if named else None,
            "empty"
            + (f", and so is {', '.join(named[1:])}" if len(named) > 1 else "")
            + ": cannot tell the device's mailbox (a display name is never used to link)",
        )
    if row["device_id"] is None:
        ctx.problem("device_id", "empty, but a device needs an id")
    if row["device_type"] is None:
        row["device_type"] = _device_type_from(row.get("removal_id"))
    raw = row["eas_version"]
    if raw is not None:
        row["eas_version_parsed"] = parsed = parse_eas_version(raw)
        if parsed is None:
            ctx.note("eas", "eas_version", raw)


def report_kind(
    *,
    name: str = DEVICES.name,
    report: str,
    names: Mapping[str, tuple[str, ...]],
    signature: Any = None,
    null_words: frozenset[str] = frozenset(),
) -> ReportKind:
    """A kind read like DEVICES from the given column names (key -> header names)."""
    columns = [
        dataclasses.replace(c, names=tuple(names.get(c.key, ())))
        for c in DEVICES.columns
        if c.key not in ("identity", "mailbox_key")  # the scripts have no device Identity path
    ]
    columns += [
        Col("identity", ()),
        Col("mailbox_key", ()),
        Col("mailbox_smtp", tuple(names.get("mailbox_smtp", ())), convert=values.smtp_address),
        Col("mailbox_upn", tuple(names.get("mailbox_upn", ()))),
        Col("mailbox_name", tuple(names.get("mailbox_name", ()))),
        Col("removal_id", tuple(names.get("removal_id", ()))),
        # No cheaper check: _finish_report needs to see whether a GUID was given.
        Col("mailbox_guid", tuple(names.get("mailbox_guid", ())), convert=values.guid),
    ]
    key_names = tuple(n for k in (*MAILBOX_KEYS, "mailbox_guid") for n in names.get(k, ()))
    return ReportKind(
        name=name,
        cmdlets=report,
        type_names=frozenset(),
        columns=tuple(columns),
        required=(tuple(names.get("device_id", ())), key_names),
        derived=("mailbox_identity", "mailbox_key2", "mailbox_key_column", "eas_version_parsed"),
        finish=_finish_report,
        signature=signature or (lambda header: False),
        report=report,
        null_words=null_words,
    )


# -- the reports -------------------------------------------------------------------------------

# cunninghamp/Get-EASDeviceReport.ps1, Get-EASDeviceReport.ps1 (commit 925236ce, V1.02):
# "Display Name", "Email Address" (Get-Mailbox PrimarySMTPAddress), "Sync Age (Days)", then
# $stats of Get-ActiveSyncDeviceStatistics: DeviceID, DeviceAccessState, DeviceAccessStateReason,
# DeviceModel, DeviceType, DeviceFriendlyName, DeviceOS, LastSyncAttemptTime, LastSuccessSync.
# Forks add columns (e.g. ClientType): matched by name when present.
EAS_DEVICE_REPORT = report_kind(
    report="Get-EASDeviceReport.ps1 (Paul Cunningham)",
    names={
        "mailbox_smtp": ("Email Address",),
        "device_id": ("DeviceID",),
        "access_state": ("DeviceAccessState",),
        "access_state_reason": ("DeviceAccessStateReason",),
        "model": ("DeviceModel",),
        "device_type": ("DeviceType",),
        "friendly_name": ("DeviceFriendlyName",),
        "os": ("DeviceOS",),
        "last_sync_attempt": ("LastSyncAttemptTime",),
        "last_success_sync": ("LastSuccessSync",),
        "client_type": ("ClientType",),
        "eas_version": ("ClientVersion", "DeviceActiveSyncVersion"),
        "user_agent": ("DeviceUserAgent",),
        "first_sync": ("FirstSyncTime",),
    },
    signature=lambda h: "email address" in h and "deviceid" in h,
)

# JeremyTBradshaw/PowerShell, Get-MDevStats.ps1 (commit 17b4aaa3; commit 79454ea9 has no
# UserGuid): Get-MobileDeviceStatistics | Select UserDisplayName (calculated), LastSuccessSync,
# DeviceAccessState, DeviceAccessStateReason, Status, DeviceModel, DeviceImei, DevicePhoneNumber,
# DeviceOS, DeviceType, DeviceID, DeviceUserAgent, DeviceFriendlyName, DeviceMobileOperator,
# DevicePolicyApplied, DevicePolicyApplicationStatus, LastDeviceWipeRequestor, ClientVersion,
# NumberOfFoldersSynced, ClientType, Guid (the device's), UserGuid, UserUPN.
# UserGuid is $mbx.Guid.Guid: the mailbox user's AD object GUID, not its ExchangeGuid; exsync keeps
# only ExchangeGuid (Mailbox.exchange_guid), so UserGuid cannot link and devices link by UserUPN.
MDEVSTATS = report_kind(
    report="Get-MDevStats.ps1 (Jeremy Bradshaw)",
    names={
        "mailbox_upn": ("UserUPN",),
        "device_id": ("DeviceID",),
        "last_success_sync": ("LastSuccessSync",),
        "access_state": ("DeviceAccessState",),
        "access_state_reason": ("DeviceAccessStateReason",),
        "status": ("Status",),
        "model": ("DeviceModel",),
        "imei": ("DeviceImei",),
        "phone_number": ("DevicePhoneNumber",),
        "os": ("DeviceOS",),
        "device_type": ("DeviceType",),
        "user_agent": ("DeviceUserAgent",),
        "friendly_name": ("DeviceFriendlyName",),
        "policy_applied": ("DevicePolicyApplied",),
        "eas_version": ("ClientVersion",),
        "client_type": ("ClientType",),
        "guid": ("Guid",),
    },
    signature=lambda h: "userupn" in h and "deviceid" in h,
)

# 12Knocksinna/Office365itpros, Report-MobileDevices.PS1 (commit 0f314dd8): [PSCustomObject]
# DeviceId, DeviceOS, Model (DeviceModel), UA (DeviceUserAgent), User (UserDisplayName), UPN,
# FirstSync, DaysSinceFirstSync, LastSync (LastSuccessSync), DaysSinceLastSync, SyncStatus, Status
# (DeviceOK ..., or "Unknown" when never synced), Policy (DevicePolicyApplied), State
# (DeviceAccessState), LastPolicy (LastPolicyUpdateTime). Not confirmed: that version pipes
# $ManagerReports (not $Report) to Export-CSV, so its CSV comes out empty; we read the columns of
# $Report, which is what a corrected copy writes.
O365ITPROS_MOBILE_DEVICES = report_kind(
    report="Report-MobileDevices.PS1 (Office 365 for IT Pros)",
    names={
        "mailbox_upn": ("UPN",),
        "device_id": ("DeviceId",),
        "os": ("DeviceOS",),
        "model": ("Model",),
        "user_agent": ("UA",),
        "first_sync": ("FirstSync",),
        "last_success_sync": ("LastSync",),
        "status": ("Status",),
        "policy_applied": ("Policy",),
        "access_state": ("State",),
    },
    signature=lambda h: {"upn", "deviceid", "ua"} <= h or {"upn", "deviceid", "lastsync"} <= h,
)

# michevnew/PowerShell, Mobile_devices_inventory.ps1 and Mobile_devices_inventoryV2.ps1 (commit
# 24d28b9d): Get-MobileDevice | Select FriendlyName, UserDisplayName, DeviceId, DeviceOS,
# DeviceType, DeviceUserAgent, DeviceModel, DistinguishedName, [V2: Identity, OrganizationId],
# FirstSyncTime, DeviceAccessState, DeviceAccessStateReason, DeviceAccessControlRule, ClientType;
# then added when found: LastSuccessSync ("Never" when none), Status, DevicePolicyApplied,
# DevicePolicyApplicationStatus, UserPrincipalName, PrimarySmtpAddress. Exported with -UseCulture
# (';' in many locales: the delimiter is detected).
_MICHEV_COLUMNS = frozenset(
    {
        "friendlyname",
        "userdisplayname",
        "deviceid",
        "deviceos",
        "devicetype",
        "deviceuseragent",
        "devicemodel",
        "distinguishedname",
        "identity",
        "organizationid",
        "firstsynctime",
        "deviceaccessstate",
        "deviceaccessstatereason",
        "deviceaccesscontrolrule",
        "clienttype",
        "lastsuccesssync",
        "status",
        "devicepolicyapplied",
        "devicepolicyapplicationstatus",
        "userprincipalname",
        "primarysmtpaddress",
    }
)
MICHEV_MOBILE_DEVICES = report_kind(
    report="Mobile_devices_inventory.ps1 (Vasil Michev)",
    names={
        "mailbox_smtp": ("PrimarySmtpAddress",),
        "mailbox_upn": ("UserPrincipalName",),
        "friendly_name": ("FriendlyName",),
        "device_id": ("DeviceId",),
        "os": ("DeviceOS",),
        "device_type": ("DeviceType",),
        "user_agent": ("DeviceUserAgent",),
        "model": ("DeviceModel",),
        "first_sync": ("FirstSyncTime",),
        "access_state": ("DeviceAccessState",),
        "access_state_reason": ("DeviceAccessStateReason",),
        "client_type": ("ClientType",),
        "last_success_sync": ("LastSuccessSync",),
        "status": ("Status",),
        "policy_applied": ("DevicePolicyApplied",),
        "removal_id": ("Identity",),
    },
    # Only the script's columns: a whole Get-MobileDevice export has UserDisplayName and
    # DeviceAccessControlRule too, and stays a DEVICES export.
    signature=lambda h: (
        {"userdisplayname", "deviceaccesscontrolrule", "deviceid"} <= h and h <= _MICHEV_COLUMNS
    ),
    null_words=frozenset({"never"}),
)

# garrint/Activesync-Device-report (Austin McCollum and Garrin Thompson, Microsoft),
# EXO_MobileDevice_Inventory_3.6.ps1 (commit 3378c922; 3.1 selects the same): DisplayName, User
# (the mailbox name: Identity's first part), UserId, PrimarySMTPAddress, FriendlyName, UserAgent,
# FirstSyncTime, LastPolicyUpdate (WhenChangedUTC: not a sync time, not read), DeviceOS,
# ClientProtocolVersion (ClientVersion), ClientType, DeviceModel, DeviceId, AccessState,
# AccessReason, ActivesyncSuppressReadReceipt, ActivesyncDebugLogging, Managed,
# DistinguishedName, RemovalId (the device Identity, '§' often '?'). Not confirmed: whether a copy
# under a microsoft/ organisation writes other columns.
EXO_MOBILE_DEVICE_INVENTORY = report_kind(
    report="EXO_MobileDevice_Inventory.ps1 (Microsoft)",
    names={
        "mailbox_smtp": ("PrimarySMTPAddress",),
        "mailbox_name": ("User",),
        "friendly_name": ("FriendlyName",),
        "user_agent": ("UserAgent",),
        "first_sync": ("FirstSyncTime",),
        "os": ("DeviceOS",),
        "eas_version": ("ClientProtocolVersion",),
        "client_type": ("ClientType",),
        "model": ("DeviceModel",),
        "device_id": ("DeviceId",),
        "access_state": ("AccessState",),
        "access_state_reason": ("AccessReason",),
        "removal_id": ("RemovalId",),
    },
    signature=lambda h: "deviceid" in h and ("removalid" in h or "clientprotocolversion" in h),
)

COMMUNITY_KINDS: tuple[ReportKind, ...] = (
    EAS_DEVICE_REPORT,
    MDEVSTATS,
    O365ITPROS_MOBILE_DEVICES,
    MICHEV_MOBILE_DEVICES,
    EXO_MOBILE_DEVICE_INVENTORY,
)

# -- import profiles: an admin's column mapping for a shape exsync does not recognise -----------

# The keys a profile maps (key -> label on the mapping form); device_id and one mailbox key needed.
PROFILE_KEYS: dict[str, str] = {
    "device_id": "DeviceId",
    "mailbox_smtp": MAILBOX_KEY_LABELS["mailbox_smtp"],
    "mailbox_upn": MAILBOX_KEY_LABELS["mailbox_upn"],
    "mailbox_name": MAILBOX_KEY_LABELS["mailbox_name"],
    "mailbox_guid": MAILBOX_KEY_LABELS["mailbox_guid"],
    "device_type": "DeviceType",
    "model": "DeviceModel",
    "os": "DeviceOS",
    "user_agent": "DeviceUserAgent",
    "friendly_name": "DeviceFriendlyName",
    "eas_version": "EAS version (ClientVersion)",
    "client_type": "ClientType",
    "first_sync": "FirstSyncTime",
    "last_success_sync": "LastSuccessSync",
    "last_sync_attempt": "LastSyncAttemptTime",
    "access_state": "DeviceAccessState",
    "access_state_reason": "DeviceAccessStateReason",
    "imei": "DeviceImei",
    "phone_number": "DevicePhoneNumber",
}
PROFILE_KINDS = (DEVICES.name,)  # the kinds a profile may read a file as


def profile_problems(mapping: Mapping[str, str], header: list[str] | None = None) -> list[str]:
    """Why a mapping cannot read a file (with ``header``, also: columns it does not have)."""
    problems = []
    unknown = sorted(set(mapping) - set(PROFILE_KEYS))
    if unknown:
        problems.append(f"unknown keys {', '.join(unknown)}")
    if not mapping.get("device_id"):
        problems.append("map a column to DeviceId: every device needs its id")
    if not any(mapping.get(k) for k in (*MAILBOX_KEYS, "mailbox_guid")):
        problems.append(
            "map a column to the mailbox's address, UPN, alias or ExchangeGuid: devices are "
            "never linked by display name"
        )
    if header is not None:
        names = {name.lower() for name in header}
        missing = sorted({c for c in mapping.values() if c and c.lower() not in names})
        if missing:
            problems.append(f"the file has no column {', '.join(repr(c) for c in missing)}")
    return problems


def profile_kind(*, name: str, kind: str, mapping: Mapping[str, str]) -> ReportKind:
    """The kind a saved profile reads a file as. Raises ValueError for an unusable mapping."""
    if kind not in PROFILE_KINDS:
        raise ValueError(
            f"import profile {name!r} reads files as {kind!r}; exsync maps devices only"
        )
    problems = profile_problems(mapping)
    if problems:
        raise ValueError(f"import profile {name!r}: " + "; ".join(problems))
    return report_kind(
        report=f"the import profile {name!r}",
        names={key: (column,) for key, column in mapping.items() if column},
    )


def report_kind_of(header: list[str]) -> ReportKind | None:
    """The community report whose columns the header has (a #TYPE line does not overrule it:
    Select-Object over Get-MobileDeviceStatistics keeps the cmdlet's type name)."""
    names = frozenset(name.lower() for name in header)
    return next((kind for kind in COMMUNITY_KINDS if kind.signature(names)), None)


def null_aware(kind: Kind | None, parse: Any) -> Any:
    """``parse`` of a date column, except that a report's words for "none" read as no value
    (Mobile_devices_inventory.ps1 writes LastSuccessSync "Never")."""
    words = getattr(kind, "null_words", None)
    if not words:
        return parse
    return lambda value: None if value.strip().lower() in words else parse(value)
