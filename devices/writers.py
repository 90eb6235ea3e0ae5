"""Per-kind writers: turn the validated rows of one export into inventory rows, set-based.

Each writer runs inside the caller's transaction, checks what only the database can check
(unknown servers and mailboxes, duplicates in the file), and either returns counts or raises
ImportRejected with every problem found. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Min
from django.db.models.functions import Lower
from django.utils import timezone

from exsync.setsql import (
    WALLCLOCK,
    Stage,
    advisory_xact_lock,
    last_row_per,
    sql_bool,
    upsert,
)

from .importers import Problem
from .importers.values import UNLIMITED, forest_from_dn
from .models import (
    EXCHANGE_ONLINE_FOREST,
    AcceptedDomain,
    Certificate,
    DeviceAccessRule,
    ExchangeServer,
    FactChange,
    Mailbox,
    MailboxDatabase,
    MobileDevice,
    MobileDevicePolicy,
    Namespace,
    Organisation,
    Partnership,
    exchange_online_server,
)
from .selectors import VDIR_FACTS, subject_of

Rows = Iterable[tuple[int, dict[str, Any]]]
MAX_PROBLEMS = 50


class ImportRejected(Exception):
    """The file cannot be imported; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


class StaleConfirmationNeeded(ImportRejected):
    """A full device export would mark more than the allowed share of the partnerships it
    covers stale: the whole file is refused until an admin confirms (`confirm_stale`), so a
    file is still imported whole or not at all and nothing is written before the decision."""

    def __init__(self, *, filename: str, stale: int, covered: int, servers: list[str]) -> None:
        self.stale, self.covered, self.servers = stale, covered, servers
        self.percent = round(100 * stale / covered, 1) if covered else 0.0
        message = (
            f"would mark {stale} of {covered} covered partnerships stale ({self.percent:g}%): "
            f"confirm. Covered: the partnerships of mailboxes on {', '.join(servers)}, the "
            "servers of the mailboxes in this file; nothing from it was written"
        )
        super().__init__([Problem(filename, None, None, message)])


class Context:
    """What every writer needs: file name, time zone of naive export dates, options."""

    def __init__(
        self,
        *,
        filename: str,
        tz: ZoneInfo,
        full_export: bool = True,
        server: str | None = None,
        organisation: str | None = None,
        actor_id: int | None = None,
        import_id: int | None = None,
        stale_share: float = 1.0,
        confirm_stale: bool | int = False,
    ) -> None:
        self.filename = filename
        self.import_id = import_id  # the InventoryImport, for rows that record what it saw
        self.tz = tz
        self.full_export = full_export
        # A full device export marking more than this share of the partnerships it covers
        # stale is refused unless confirm_stale (settings.STALE_CONFIRM_SHARE).
        self.stale_share = stale_share
        # True (the CLI's --confirm-stale): any number; a number (the page's Confirm button):
        # at most the number the admin was shown.
        self.confirm_stale = confirm_stale
        self.server = server
        # --organisation FOREST: the organisation of an export without DistinguishedName.
        self.organisation = organisation
        self.actor_id = actor_id  # the importing user, recorded on FactChange rows
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        # The day/month order the file's one pass decided for a date key (Export.date_order);
        # known once the rows are read. Rows from elsewhere carry datetimes: no order needed.
        self.date_order: Callable[[str], object] = lambda key: None

    def problem(self, line: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(self.filename, line, column, message))

    def warn(self, line: int | None, column: str | None, message: str) -> None:
        self.warnings.append(Problem(self.filename, line, column, message))

    def aware(self, value: datetime | None) -> datetime | None:
        # Exports carry the exporting machine's local time without an offset.
        if value is None or timezone.is_aware(value):
            return value
        return value.replace(tzinfo=self.tz)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ImportRejected(self.problems)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _now_sql() -> str:
    return "CURRENT_TIMESTAMP"


def _report_unmatched(stage: Stage, ctx: Context, sql: str, column: str, message: str) -> None:
    total = stage.scalar(f"SELECT COUNT(*) FROM ({sql}) q")
    for line, value in stage.rows(f"{sql} ORDER BY line LIMIT {MAX_PROBLEMS}"):
        ctx.problem(line, column, message.format(value=value))
    if total > MAX_PROBLEMS:
        ctx.problem(None, column, f"and {total - MAX_PROBLEMS} more rows like these")


def _report_duplicates(stage: Stage, ctx: Context, key: str, column: str, what: str) -> None:
    sql = (
        f"SELECT s.line, s.{key}, (SELECT MIN(o.line) FROM {stage.name} o WHERE o.{key} = s.{key}) "
        f"FROM {stage.name} s WHERE s.{key} IS NOT NULL AND s.line > "
        f"(SELECT MIN(o.line) FROM {stage.name} o WHERE o.{key} = s.{key}) ORDER BY s.line LIMIT {MAX_PROBLEMS}"
    )
    for line, value, first in stage.rows(sql):
        ctx.problem(line, column, f"{what} {value!s} is also on line {first}; each may appear once")


# -- servers (a handful of rows: plain ORM is clearer and fast enough) ----------------------------

SERVER_FIELDS = (
    "fqdn",
    "roles",
    "site",
    "edition",
    "admin_display_version",
    "generation",
    "build",
    "legacy_dn",
    "distinguished_name",
    "forest",
    "forest_source",
)


def write_servers(rows: Rows, ctx: Context) -> dict[str, Any]:
    existing = {s.name.lower(): s for s in ExchangeServer.objects.all()}
    seen: dict[str, int] = {}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    forests: set[str] = set()
    from_fqdn: list[tuple[str, str]] = []
    for line, row in rows:
        name = row["name"]
        if not name:
            ctx.problem(line, "Name", "empty, but a server needs a name")
            continue
        if name.lower() in seen:
            ctx.problem(line, "Name", f"server {name} is also on line {seen[name.lower()]}")
            continue
        seen[name.lower()] = line
        values = {
            "fqdn": _text(row["fqdn"]),
            "roles": ", ".join(row["roles"] or []),
            "site": _text(row["site"]),
            "edition": _text(row["edition"]),
            "admin_display_version": _text(row["admin_display_version"]),
            "generation": _text(row["generation"]),
            "build": _text(row["version"]),
            "legacy_dn": _text(row["legacy_dn"]),
            "distinguished_name": _text(row["distinguished_name"]),
            # forest_recorded is the admin's and never written here.
            "forest": _text(row["forest"]),
            "forest_source": _text(row["forest_source"]),
        }
        server = existing.get(name.lower())
        weaker = row["forest_source"] == "Fqdn" and (
            server is not None and server.forest_source in ("Site", "DistinguishedName")
        )
        if server is not None and server.forest and (row["forest"] is None or weaker):
            # This export shows no forest (no Site, DN or Fqdn), or only the Fqdn's domain
            # (which may be a child domain): keep what Site or DistinguishedName showed.
            values["forest"], values["forest_source"] = server.forest, server.forest_source
        if values["forest"]:
            forests.add(values["forest"])
        if row["forest_source"] == "Fqdn":
            from_fqdn.append((name, values["forest"]))
        if row["version"] is None and row["admin_display_version"]:
            ctx.warn(
                line,
                "AdminDisplayVersion",
                f"'{row['admin_display_version']}' is not a build exsync knows; the server's "
                "version stays unknown and moves from or to it are predicted as unknown",
            )
        if server is None:
            ExchangeServer.objects.create(name=name, **values)
            counts["created"] += 1
        elif any(getattr(server, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(server, key, value)
            server.save()
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    ctx.raise_if_problems()
    if from_fqdn:
        first, forest = from_fqdn[0]
        ctx.warn(
            None,
            "Fqdn",
            f"the forest of {len(from_fqdn)} servers was taken from Fqdn (first: {first} -> "
            f"{forest}) because Site and DistinguishedName were empty or missing; that is the "
            "server's AD domain, which is not the forest root in a multi-domain forest. Export "
            "Site and DistinguishedName, or declare the forest on the server page",
        )
    return {"servers": counts, "organisations": _ensure_organisations(forests)}


def _ensure_organisations(forests: Iterable[str]) -> dict[str, int]:
    """An Organisation row for every forest (get_or_create by its lower-case forest)."""
    counts = {"created": 0, "unchanged": 0}
    for forest in sorted(set(forests)):
        _, created = Organisation.objects.get_or_create(forest=forest.lower())
        counts["created" if created else "unchanged"] += 1
    return counts


def _server_by_name(name: str | None) -> ExchangeServer | None:
    if not name:
        return None
    return (
        ExchangeServer.objects.annotate(lname=Lower("name"))
        .filter(lname=name.strip().lower())
        .first()
    )


# -- ActiveSync virtual directories -------------------------------------------------------------


def write_vdirs(rows: Rows, ctx: Context) -> dict[str, Any]:
    chosen: dict[int, tuple[int, dict[str, Any]]] = {}
    for line, row in rows:
        server = _server_by_name(row["server"] or (row["identity"] or "").split("\\")[0])
        if server is None:
            ctx.problem(
                line,
                "Server",
                f"server '{row['server']}' is not in the inventory; import Get-ExchangeServer first",
            )
            continue
        # 2013+ has a front-end ("Default Web Site") and a back-end vdir; devices talk to the
        # front end, so it wins over any other directory of the same server.
        front = "default web site" in (row["name"] or row["identity"] or "").lower()
        if server.pk not in chosen or front:
            chosen[server.pk] = (line, row)
    ctx.raise_if_problems()
    counts = {"updated": 0, "unchanged": 0}
    published: dict[int, str | None] = {}
    history: list[FactChange] = []
    for pk, (_line, row) in chosen.items():
        server = ExchangeServer.objects.get(pk=pk)
        present = row["present"]
        # Only the columns the export has: a missing column keeps what is stored.
        values = {
            field: value
            for key, field, value in (
                ("internal_url", "eas_internal_url", _text(row["internal_url"])),
                ("basic_auth", "basic_auth_enabled", row["basic_auth"]),
                ("windows_auth", "iwa_enabled", row["windows_auth"]),
            )
            if key in present
        }
        if "external_url" in present:
            published[pk] = row["external_host"]
            values["eas_external_url"] = _text(row["external_url"])
            # From now on an empty ExternalUrl means "none" (the site proxies), not "unknown".
            values["eas_vdir_imported"] = True
        if all(getattr(server, k) == v for k, v in values.items()):
            counts["unchanged"] += 1
            continue
        history.extend(_vdir_changes(server, values, ctx))
        for key, value in values.items():
            setattr(server, key, value)
        server.save()
        counts["updated"] += 1
    FactChange.objects.bulk_create(history)
    return {"servers": counts, "namespaces": _publish_namespaces(published, ctx)}


def _as_printed(value: object) -> str:
    """A vdir setting as Get-ActiveSyncVirtualDirectory prints it: True/False, the URL, or ''
    for an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _vdir_changes(server: ExchangeServer, values: dict[str, Any], ctx: Context) -> list[FactChange]:
    """A FactChange per known setting the export changes (not for the first value learnt:
    an unknown authentication setting, or a URL before any ExternalUrl was imported)."""
    changes = []
    for field, fact in VDIR_FACTS.items():
        if field not in values:
            continue
        old, new = getattr(server, field), values[field]
        known = old not in (None, "") or (field.endswith("_url") and server.eas_vdir_imported)
        if old == new or not known:
            continue
        changes.append(
            FactChange(
                subject=subject_of(server),
                fact=fact,
                old_value=_as_printed(old),
                new_value=_as_printed(new),
                actor_id=ctx.actor_id,
                via="import",
            )
        )
    return changes


def _publish_namespaces(published: dict[int, str | None], ctx: Context) -> dict[str, int]:
    """Namespaces from the ExternalUrl hosts of the servers in a vdir export.

    Each host becomes (or stays) an imported Namespace with the servers that publish it. What an
    admin set (devices_use, sites, retired, is_legacy) is never reset; is_legacy is guessed
    only when the namespace is created. A server of this export is removed from the imported
    namespaces it no longer publishes. InternalUrl never makes a namespace: phones use the
    published name.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    hosts = sorted({host for host in published.values() if host})
    by_host = {ns.host: ns for ns in Namespace.objects.filter(host__in=hosts)}
    created: set[int] = set()
    changed: set[int] = set()
    for host in hosts:
        namespace = by_host.get(host)
        if namespace is None:
            namespace = Namespace.objects.create(
                host=host, imported=True, is_legacy=host.startswith("legacy.")
            )
            by_host[host] = namespace
            created.add(namespace.pk)
        elif not namespace.imported:
            namespace.imported = True
            namespace.save(update_fields=["imported", "updated_at"])
            changed.add(namespace.pk)
    through = Namespace.servers.through
    current = set(
        through.objects.filter(
            exchangeserver_id__in=list(published), namespace__imported=True
        ).values_list("namespace_id", "exchangeserver_id")
    )
    wanted = {(by_host[host].pk, pk) for pk, host in published.items() if host}
    through.objects.bulk_create(
        [through(namespace_id=ns, exchangeserver_id=pk) for ns, pk in sorted(wanted - current)]
    )
    gone = current - wanted
    for ns, pk in gone:
        through.objects.filter(namespace_id=ns, exchangeserver_id=pk).delete()
    changed |= {ns for ns, _ in (wanted - current) | gone}
    changed -= created
    if changed:
        Namespace.objects.filter(pk__in=changed).update(updated_at=timezone.now())
    orphaned = (
        Namespace.objects.filter(pk__in={ns for ns, _ in gone}, imported=True, servers=None)
        .order_by("host")
        .values_list("host", flat=True)
    )
    for host in orphaned:
        ctx.warn(
            None,
            "ExternalUrl",
            f"namespace {host} is no longer the ExternalUrl of any imported server; phones "
            "configured with it may stop reaching moved mailboxes (mark it retired if so)",
        )
    counts["created"] = len(created)
    counts["updated"] = len(changed)
    counts["unchanged"] = sum(1 for h in hosts if by_host[h].pk not in created | changed)
    return counts


# -- certificates --------------------------------------------------------------------------------


def write_certificates(rows: Rows, ctx: Context) -> dict[str, Any]:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    touched: set[int] = set()
    default_server = _server_by_name(ctx.server)
    if ctx.server and default_server is None:
        ctx.problem(None, None, f"--server {ctx.server}: no such server in the inventory")
    for line, row in rows:
        server = _server_by_name(row["server"]) if row["server"] else default_server
        if server is None:
            if row["server"]:
                ctx.problem(line, "Server", f"server '{row['server']}' is not in the inventory")
            elif not ctx.server:
                ctx.problem(
                    None,
                    None,
                    "has no Server column, and Get-ExchangeCertificate runs per server: re-run with "
                    "--server NAME (or add @{n='Server';e={$env:COMPUTERNAME}} to the export)",
                )
                break
            continue
        values = {
            "server": server,
            "subject": _text(row["subject"]),
            "issuer": _text(row["issuer"]),
            "not_before": ctx.aware(row["not_before"]),
            "not_after": ctx.aware(row["not_after"]),
            "services": ", ".join(row["services"] or []),
            "domains": "\n".join(row["domains"] or []),
            "status": _text(row["status"]),
            "is_self_signed": row["is_self_signed"],
            "friendly_name": _text(row["friendly_name"]),
        }
        cert = Certificate.objects.filter(thumbprint=row["thumbprint"]).first()
        if cert is None:
            Certificate.objects.create(thumbprint=row["thumbprint"], **values)
            counts["created"] += 1
        elif any(getattr(cert, k) != v for k, v in values.items()):
            Certificate.objects.filter(pk=cert.pk).update(**values)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
        touched.add(server.pk)
    ctx.raise_if_problems()
    endpoints = 0
    for server in ExchangeServer.objects.filter(pk__in=touched):
        # The EAS endpoint's certificate is the one bound to IIS; the newest if several are.
        iis = [c for c in server.certificates.order_by("-not_after") if c.serves_iis]
        if iis and server.cert_thumbprint != iis[0].thumbprint:
            cert = iis[0]
            server.cert_thumbprint = cert.thumbprint
            server.cert_subject = cert.subject
            server.cert_issuer = cert.issuer
            server.cert_not_after = cert.not_after
            server.save()
            endpoints += 1
    return {"certificates": counts, "endpoints_updated": endpoints}


# -- mailboxes -----------------------------------------------------------------------------------

MAILBOX_STAGE = [
    ("line", "integer"),
    ("exchange_guid", "uuid"),
    ("primary_smtp_address", "text"),
    ("identity", "text"),
    ("identity_key", "text"),
    ("name", "text"),
    ("display_name", "text"),
    ("alias", "text"),
    ("user_principal_name", "text"),
    ("sam_account_name", "text"),
    ("database", "text"),
    ("server_name", "text"),
    ("organizational_unit", "text"),
    ("recipient_type", "text"),
    ("legacy_dn", "text"),
    ("server_id", "bigint"),
    ("mailbox_id", "bigint"),
]
MAILBOX_COLUMNS = [
    "exchange_guid",
    "primary_smtp_address",
    "identity",
    "identity_key",
    "name",
    "display_name",
    "alias",
    "user_principal_name",
    "sam_account_name",
    "database",
    "server_id",
    "organizational_unit",
    "recipient_type",
    "legacy_dn",
]


def _mailbox_server_name(row: dict[str, Any]) -> str:
    if row["server_name"]:
        return row["server_name"]
    database = row["database"] or ""
    # 2003/2007 database names start with the server: EX03\First Storage Group\Mailbox Store
    return database.split("\\")[0] if "\\" in database else ""


def write_mailboxes(rows: Rows, ctx: Context) -> dict[str, Any]:
    stage = Stage(connection, "stage_mailboxes", MAILBOX_STAGE)

    def staged() -> Iterator[tuple]:
        for line, row in rows:
            if not row["primary_smtp"]:
                ctx.problem(
                    line,
                    "PrimarySmtpAddress",
                    "empty, but a mailbox needs its primary SMTP address",
                )
                continue
            identity = _text(row["identity"])
            yield (
                line,
                row["exchange_guid"],
                row["primary_smtp"],
                identity,
                identity.lower(),
                _text(row["name"]),
                _text(row["display_name"] or row["name"]),
                _text(row["alias"]),
                _text(row["upn"]),
                _text(row["sam_account_name"]),
                _text(row["database"]),
                _mailbox_server_name(row).lower(),
                _text(row["ou"]),
                _text(row["recipient_type"]),
                _text(row["legacy_dn"]),
                None,
                None,
            )

    total = stage.load(staged())
    stage.index("exchange_guid")
    stage.index("primary_smtp_address")
    _report_duplicates(stage, ctx, "exchange_guid", "ExchangeGuid", "ExchangeGuid")
    _report_duplicates(stage, ctx, "primary_smtp_address", "PrimarySmtpAddress", "address")
    s = stage.name
    if (ctx.organisation or "").strip().lower() == EXCHANGE_ONLINE_FOREST:
        # Get-Mailbox from Exchange Online (--organisation "exchange online"): its ServerName is
        # a datacentre machine, not a server of the inventory; every mailbox lives in the cloud.
        cloud = exchange_online_server()
        stage.execute(f"UPDATE {s} SET server_id = %s, server_name = ''", [cloud.pk])
    stage.execute(
        f"UPDATE {s} SET server_id = (SELECT e.id FROM devices_exchangeserver e "
        f"WHERE LOWER(e.name) = {s}.server_name) WHERE server_name <> ''"
    )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, server_name FROM {s} WHERE server_name <> '' AND server_id IS NULL",
        "ServerName",
        "server '{value}' is not in the inventory; import Get-ExchangeServer first or in the same run",
    )
    ctx.raise_if_problems()
    # Key: ExchangeGuid (stable across renames), else the primary SMTP address.
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m WHERE m.exchange_guid = {s}.exchange_guid"
    )
    # The address identifies a mailbox only where a GUID cannot tell (one side has none):
    # two different ExchangeGuids are two mailboxes, whatever the addresses say.
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m "
        f"WHERE {s}.mailbox_id IS NULL AND m.primary_smtp_address = {s}.primary_smtp_address "
        f"AND ({s}.exchange_guid IS NULL OR m.exchange_guid IS NULL)"
    )
    # An address held by another mailbox is refused, swaps included: the admin fixes the
    # older mailbox first (or imports a file where the old owner has a new address first).
    clash = stage.rows(
        f"SELECT s.line, s.primary_smtp_address FROM {s} s JOIN devices_mailbox m "
        f"ON m.primary_smtp_address = s.primary_smtp_address "
        f"WHERE s.mailbox_id IS NULL OR m.id <> s.mailbox_id ORDER BY s.line LIMIT {MAX_PROBLEMS}"
    )
    for line, address in clash:
        ctx.problem(
            line,
            "PrimarySmtpAddress",
            f"{address} belongs to another mailbox in the inventory (a different ExchangeGuid); "
            "expected each address on one mailbox",
        )
    _report_duplicates(stage, ctx, "mailbox_id", "ExchangeGuid", "the same inventory mailbox (id)")
    ctx.raise_if_problems()

    new = stage.scalar(f"SELECT COUNT(*) FROM {s} WHERE mailbox_id IS NULL")
    changed = stage.scalar(
        f"SELECT COUNT(*) FROM {s} s JOIN devices_mailbox m ON m.id = s.mailbox_id "
        f"WHERE {stage.differs('m', 's', MAILBOX_COLUMNS)}"
    )
    assignments = ", ".join(f"{c} = {s}.{c}" for c in MAILBOX_COLUMNS)
    stage.execute(
        f"UPDATE devices_mailbox SET {assignments}, updated_at = {_now_sql()} FROM {s} "
        f"WHERE devices_mailbox.id = {s}.mailbox_id AND {stage.differs('devices_mailbox', s, MAILBOX_COLUMNS)}"
    )
    stage.execute(
        f"INSERT INTO devices_mailbox ({', '.join(MAILBOX_COLUMNS)}, created_at, updated_at) "
        f"SELECT {', '.join(MAILBOX_COLUMNS)}, {_now_sql()}, {_now_sql()} FROM {s} WHERE mailbox_id IS NULL"
    )
    return {
        "rows": total,
        "mailboxes": {"created": new, "updated": changed, "unchanged": total - new - changed},
    }


# -- mobile devices and partnerships -------------------------------------------------------------

DEVICE_STAGE = [
    ("line", "integer"),
    ("mailbox_identity_key", "text"),
    ("mailbox_key", "text null"),
    ("mailbox_key2", "text null"),  # a community report's second key (UPN after the address)
    ("mailbox_guid", "uuid null"),  # an ExchangeGuid column (community reports, import profiles)
    ("device_id", "text"),
    ("device_type", "text"),
    ("model", "text"),
    ("os", "text"),
    ("user_agent", "text"),
    ("friendly_name", "text"),
    ("imei", "text"),
    ("phone_number", "text"),
    ("identity", "text"),
    ("client_type", "text"),
    ("eas_version", "text"),
    ("first_sync_at", WALLCLOCK),
    ("last_success_sync_at", WALLCLOCK),
    ("last_sync_attempt_at", WALLCLOCK),
    ("access_state", "text"),
    ("access_state_reason", "text"),
    ("policy_applied", "text"),
    ("policy_status", "text"),
    ("mailbox_id", "bigint"),
]
DEVICE_COLUMNS = [
    "device_type",
    "model",
    "os",
    "user_agent",
    "friendly_name",
    "imei",
    "phone_number",
]
PARTNERSHIP_COLUMNS = [
    "identity",
    "client_type",
    "eas_version",
    "first_sync_at",
    "last_success_sync_at",
    "last_sync_attempt_at",
    "access_state",
    "access_state_reason",
    "policy_applied",
    "policy_status",
    "is_stale",
]


# Staged text column -> (model field, the header an admin sees): device values are untrusted
# and may be longer than the inventory keeps; such a row is a line-precise problem, not a crash.
DEVICE_LIMITS = {
    "device_id": ("device_id", "DeviceID"),
    # DeviceType, DeviceModel, DeviceOS, ... are unbounded text (migration 0014).
}
PARTNERSHIP_LIMITS = {
    "identity": ("identity", "Identity"),
    "client_type": ("client_type", "ClientType"),
    "eas_version": ("eas_version", "ClientVersion"),
    "access_state": ("access_state", "DeviceAccessState"),
    "access_state_reason": ("access_state_reason", "DeviceAccessStateReason"),
    "policy_applied": ("policy_applied", "DevicePolicyApplied"),
    "policy_status": ("policy_status", "Status"),
}


def _report_too_long(
    stage: Stage, ctx: Context, model: type, limits: dict[str, tuple[str, str]]
) -> None:
    """One scan of the staged rows for values longer than the model's columns."""
    maxima = {
        col: (model._meta.get_field(f).max_length, header) for col, (f, header) in limits.items()
    }
    cols = ", ".join(f"LENGTH({c})" for c in maxima)
    where = " OR ".join(f"LENGTH({c}) > {n}" for c, (n, _) in maxima.items())
    for line, *lengths in stage.rows(
        f"SELECT line, {cols} FROM {stage.name} WHERE {where} ORDER BY line LIMIT {MAX_PROBLEMS}"
    ):
        for (n, header), length in zip(maxima.values(), lengths, strict=True):
            if length and length > n:
                ctx.problem(line, header, f"{length} characters; exsync keeps at most {n}")


class _IdentityLinks:
    """identity_key -> mailbox id of the mailboxes whose identity_key is theirs alone: the
    Identity path of a device row, looked up as the file is read. Only for a long file (at
    least LONG rows; the map is read before the COPY starts, which holds the connection):
    a short one is linked by one UPDATE after the load, cheaper than reading every mailbox.
    Memory grows with the mailboxes, not with the file."""

    LONG = 10_000

    def __init__(self, *, load: bool) -> None:
        self._ids: dict[str, int] = {}
        if load:
            self._ids = dict(
                Mailbox.objects.order_by()
                .exclude(identity_key="")
                .values("identity_key")
                .annotate(n=Count("id"), first=Min("id"))
                .filter(n=1)
                .values_list("identity_key", "first")
                .iterator(chunk_size=20_000)
            )

    def get(self, identity_key: str) -> int | None:
        return self._ids.get(identity_key)


# The advisory lock under which device and IIS-log imports write phones and partnerships, one
# import at a time: two would wait on each other's rows anyway, and under it new rows are added
# with plain INSERTs (setsql.upsert(serialised=True)).
DEVICE_WRITES = 0x45585359_4456  # "EXSYDV"


def write_devices(rows: Rows, ctx: Context) -> dict[str, Any]:
    advisory_xact_lock(DEVICE_WRITES)
    stage = Stage(connection, "stage_devices", DEVICE_STAGE, tz=ctx.tz)

    key_column: list[str] = []  # the column a community report names its mailbox in
    rows = iter(rows)
    head = list(islice(rows, _IdentityLinks.LONG))
    links = _IdentityLinks(load=len(head) == _IdentityLinks.LONG)
    rows = chain(head, rows)
    seen = {"keys": False, "guids": False, "unlinked": 0}

    def staged() -> Iterator[tuple]:
        # Device values are text or None: `or ""`, not _text(), on this path of every row.
        for line, row in rows:
            key = row["mailbox_key"]
            key2 = row.get("mailbox_key2")
            guid = row.get("mailbox_guid")
            if not key_column and "mailbox_key2" in row and row["mailbox_key_column"]:
                key_column.append(row["mailbox_key_column"])
            identity_key = (row["mailbox_identity"] or "").lower()
            mailbox_id = None
            if key or key2:
                seen["keys"] = True
            elif identity_key:
                # The Identity path, here rather than as an UPDATE of every staged row; a
                # GUID found below still wins, as it did.
                mailbox_id = links.get(identity_key)
            if guid is not None:
                seen["guids"] = True
            if mailbox_id is None:
                seen["unlinked"] += 1
            yield (
                line,
                identity_key,
                key.strip().lower() if key else None,
                key2.strip().lower() if key2 else None,
                guid,
                row["device_id"],
                row["device_type"] or "",
                row["model"] or "",
                row["os"] or "",
                row["user_agent"] or "",
                row["friendly_name"] or "",
                row["imei"] or "",
                row["phone_number"] or "",
                row["identity"] or "",
                row["client_type"] or "",
                row["eas_version"] or "",
                row["first_sync"],
                row["last_success_sync"],
                row["last_sync_attempt"],
                row["access_state"] or "",
                row["access_state_reason"] or "",
                row["policy_applied"] or "",
                row["status"] or "",
                mailbox_id,
            )

    total = stage.load(staged())
    s = stage.name
    if seen["unlinked"] or seen["keys"] or seen["guids"]:
        stage.analyze()  # row counts for the links below (without them: nested loops for hours)
    _report_too_long(stage, ctx, MobileDevice, DEVICE_LIMITS)
    _report_too_long(stage, ctx, Partnership, PARTNERSHIP_LIMITS)
    ctx.raise_if_problems()
    if seen["guids"]:
        # An ExchangeGuid (a community report's or an import profile's) is the surest key.
        stage.execute(
            f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m "
            f"WHERE {s}.mailbox_guid IS NOT NULL AND m.exchange_guid = {s}.mailbox_guid"
        )
    if seen["keys"]:
        # An explicit Mailbox/User/PrimarySmtpAddress column wins over the Identity path; a
        # community report's second key (its UPN after its address) is tried after the first.
        # Display names are never a key.
        stage.index("mailbox_key")
        for key in ("mailbox_key", "mailbox_key2"):
            stage.execute(
                f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m WHERE {s}.mailbox_id IS NULL "
                f"AND {s}.{key} IS NOT NULL AND m.primary_smtp_address = {s}.{key}"
            )
            for column in ("user_principal_name", "alias", "identity_key"):
                # Only a single match links: an ambiguous key is reported, never guessed.
                stage.execute(
                    f"UPDATE {s} SET mailbox_id = (SELECT MIN(m.id) FROM devices_mailbox m "
                    f"WHERE LOWER(m.{column}) = {s}.{key} HAVING COUNT(*) = 1) "
                    f"WHERE mailbox_id IS NULL AND {key} IS NOT NULL"
                )
    if seen["unlinked"]:
        # A short file's rows (_IdentityLinks reads no map for it), or keys the map lacks.
        stage.execute(
            f"UPDATE {s} SET mailbox_id = m.id FROM (SELECT identity_key, MIN(id) AS id FROM devices_mailbox "
            f"GROUP BY identity_key HAVING COUNT(*) = 1) m "
            f"WHERE {s}.mailbox_id IS NULL AND {s}.mailbox_key IS NULL AND {s}.mailbox_identity_key <> '' "
            f"AND m.identity_key = {s}.mailbox_identity_key"
        )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, COALESCE(mailbox_key, CAST(mailbox_guid AS text), mailbox_identity_key) "
        f"FROM {s} WHERE mailbox_id IS NULL",
        key_column[0] if key_column else "Identity",
        "mailbox '{value}' is not in the inventory (or matches several mailboxes); import mailboxes.csv "
        "(Get-Mailbox) first or in the same run",
    )
    stage.analyze()  # mailbox_id is filled in now: the joins below are planned on it
    # One sort instead of an index and a self-join: the first line of each (device, mailbox).
    dupes = stage.rows(
        "SELECT line, device_id, first FROM (SELECT line, device_id, MIN(line) OVER "
        f"(PARTITION BY device_id, mailbox_id) AS first FROM {s}) w WHERE line > first "
        f"ORDER BY line LIMIT {MAX_PROBLEMS}"
    )
    for line, device_id, first in dupes:
        ctx.problem(line, "DeviceID", f"device {device_id} of this mailbox is also on line {first}")
    ctx.raise_if_problems()

    # Whether a full export may mark stale is decided on the partnerships as they were before
    # this file: rows it creates or revives must not dilute the share. Its lookups of staged
    # (device, mailbox) pairs are what the index is for.
    stale_scope = None
    if ctx.full_export:
        stage.index("device_id", "mailbox_id")
        stale_scope = _stale_scope(stage, ctx)

    # One device may be partnered with several mailboxes: its own facts come from its last row.
    device_select = last_row_per(s, "device_id", DEVICE_COLUMNS, newest=["line"])
    devices = upsert(
        stage,
        table="devices_mobiledevice",
        conflict=["device_id"],
        columns=DEVICE_COLUMNS,
        select=device_select,
        now=_now_sql(),
        serialised=True,  # DEVICE_WRITES, taken above
    )
    dated = stage.dated(
        {
            "first_sync_at": ctx.date_order("first_sync"),
            "last_success_sync_at": ctx.date_order("last_success_sync"),
            "last_sync_attempt_at": ctx.date_order("last_sync_attempt"),
        }
    )
    partnership_select = (
        f"SELECT d.id AS device_id, s.mailbox_id, "
        f"{', '.join('s.' + c for c in PARTNERSHIP_COLUMNS if c != 'is_stale')}, "
        f"{sql_bool(False)} AS is_stale "
        f"FROM {dated} s JOIN devices_mobiledevice d ON d.device_id = s.device_id"
    )
    partnerships = upsert(
        stage,
        table="devices_partnership",
        conflict=["device_id", "mailbox_id"],
        columns=PARTNERSHIP_COLUMNS,
        select=partnership_select,
        now=_now_sql(),
        total=total,  # every staged row is one partnership: linked, no pair twice (above)
        serialised=True,
    )
    observed = _observe_watched(stage, dated, ctx)
    counts: dict[str, Any] = {
        "rows": total,
        "devices": devices,
        "partnerships": partnerships,
        "stale": 0,
        "observed": observed,
    }
    if stale_scope is not None:
        counts.update(_mark_stale(stage, ctx, stale_scope))
    return counts


@dataclass(frozen=True)
class StaleScope:
    """The servers a full device export covers, and the partnerships there before it."""

    servers: list[tuple[int, str]]
    covered: int
    missing: int


def _scope_sql(stage: Stage, servers: list[tuple[int, str]]) -> tuple[str, str]:
    s = stage.name
    in_scope = (
        "NOT p.is_stale AND p.mailbox_id IN (SELECT m.id FROM devices_mailbox m "
        f"WHERE m.server_id IN ({', '.join('%s' for _ in servers)}))"
    )
    listed = (
        f"EXISTS (SELECT 1 FROM {s} s JOIN devices_mobiledevice d ON d.device_id = s.device_id "
        "WHERE d.id = p.device_id AND s.mailbox_id = p.mailbox_id)"
    )
    return in_scope, listed


def _stale_scope(stage: Stage, ctx: Context) -> StaleScope:
    """Before the upserts: the covered servers and, on each, the partnerships (not stale) the
    file does not list. More than ctx.stale_share of any one server's: StaleConfirmationNeeded
    unless ctx.confirm_stale (one server's phones must not hide behind another's count)."""
    s = stage.name
    servers = stage.rows(
        "SELECT e.id, e.name FROM devices_exchangeserver e WHERE e.generation <> '2003' "
        f"AND e.id IN (SELECT m.server_id FROM {s} s JOIN devices_mailbox m ON m.id = s.mailbox_id) "
        "ORDER BY e.name"
    )
    unplaced = stage.scalar(
        f"SELECT COUNT(DISTINCT s.mailbox_id) FROM {s} s JOIN devices_mailbox m "
        "ON m.id = s.mailbox_id WHERE m.server_id IS NULL"
    )
    if unplaced:
        ctx.warn(
            None,
            "Identity",
            f"{unplaced} mailboxes in this file have no server in the inventory: their "
            "partnerships are not covered, none of them is marked stale; import Get-Mailbox "
            "(with ServerName or Database) to place them",
        )
    if not servers:
        return StaleScope(servers=[], covered=0, missing=0)
    in_scope, listed = _scope_sql(stage, servers)
    per_server = stage.rows(
        "SELECT m.server_id, COUNT(*), COALESCE(SUM(CASE WHEN "
        f"{listed} THEN 0 ELSE 1 END), 0) FROM devices_partnership p "
        f"JOIN devices_mailbox m ON m.id = p.mailbox_id WHERE {in_scope} GROUP BY m.server_id",
        [pk for pk, _ in servers],
    )
    names = dict(servers)
    over = [
        (names[server], int(covered), int(missing))
        for server, covered, missing in per_server
        if int(missing) > ctx.stale_share * int(covered)
    ]
    shown = ctx.confirm_stale
    more_than_shown = shown is not True and sum(m for _, _, m in over) > int(shown or 0)
    if over and more_than_shown:
        raise StaleConfirmationNeeded(
            filename=ctx.filename,
            stale=sum(m for _, _, m in over),
            covered=sum(c for _, c, _ in over),
            servers=[name for name, _, _ in over],
        )
    return StaleScope(
        servers=servers,
        covered=sum(int(c) for _, c, _ in per_server),
        missing=sum(int(m) for _, _, m in per_server),
    )


def _mark_stale(stage: Stage, ctx: Context, scope: StaleScope) -> dict[str, Any]:
    """Mark stale what a full device export could have listed but did not.

    The scope is the servers of the mailboxes in the file's own rows, read from the inventory:
    a device export has no server or database column (its Identity names only the mailbox,
    formats.md §2.3), so the mailboxes it lists are the only evidence of what it covered. An
    export of one server (Get-Mailbox -Server X | ...) then never marks another server's phones
    stale. Databases are not used to narrow it: the export does not carry them, and a database
    whose every phone is gone would never be covered; a file exported per database is what
    the confirmation share catches. Mailboxes without a known server, and those on Exchange
    2003 (whose partnerships come from IIS logs, which device cmdlets cannot see), are never
    covered. Whether it may (the share) was decided before the upserts (_stale_scope).
    """
    servers = scope.servers
    if not servers:
        return {"stale": 0, "covered": {"servers": 0, "partnerships": 0}}
    names = [name for _, name in servers]
    in_scope, listed = _scope_sql(stage, servers)
    ids = [pk for pk, _ in servers]
    covered, missing = scope.covered, scope.missing
    stale = 0
    if missing:
        stale = stage.execute(
            f"UPDATE devices_partnership SET is_stale = {sql_bool(True)}, updated_at = {_now_sql()} "
            f"WHERE id IN (SELECT p.id FROM devices_partnership p WHERE {in_scope} "
            f"AND NOT {listed})",
            ids,
        )
    ctx.warn(
        None,
        None,
        f"full export covering {', '.join(names)} (the servers of the mailboxes in its rows): "
        f"{stale} of its {covered} partnerships there are not in the file and were marked "
        "stale; partnerships on other servers were left as they were",
    )
    return {"stale": stale, "covered": {"servers": len(names), "partnerships": covered}}


def _link_by_address_then_identity(stage: Stage) -> None:
    """Link staged rows of a per-mailbox export to their mailbox: by PrimarySmtpAddress
    (`mailbox_key`), else by an Identity that names exactly one mailbox (`identity_key`)."""
    s = stage.name
    stage.index("mailbox_key")
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m "
        f"WHERE {s}.mailbox_key <> '' AND m.primary_smtp_address = {s}.mailbox_key"
    )
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM (SELECT identity_key, MIN(id) AS id "
        f"FROM devices_mailbox GROUP BY identity_key HAVING COUNT(*) = 1) m "
        f"WHERE {s}.mailbox_id IS NULL AND {s}.identity_key <> '' "
        f"AND m.identity_key = {s}.identity_key"
    )


def _observe_watched(stage: Stage, dated: str, ctx: Context) -> int:
    """Keep what this export says of the partnerships of watched mailboxes (those recorded as
    moved): one INSERT ... SELECT, nothing at all while no mailbox is watched. `dated`: the
    stage with its dates read (Stage.dated)."""
    if ctx.import_id is None:
        return 0
    if not Mailbox.objects.filter(watch_until__gte=timezone.now()).exists():
        return 0  # the join below would still read every staged row to find none
    s = dated
    return stage.execute(
        "INSERT INTO devices_partnershipobservation (partnership_id, inventory_import_id, "
        "observed_at, last_success_sync_at, first_sync_at) "
        f"SELECT p.id, %s, {_now_sql()}, s.last_success_sync_at, s.first_sync_at FROM {s} s "
        "JOIN devices_mailbox m ON m.id = s.mailbox_id "
        "JOIN devices_mobiledevice d ON d.device_id = s.device_id "
        "JOIN devices_partnership p ON p.device_id = d.id AND p.mailbox_id = s.mailbox_id "
        f"WHERE m.watch_until >= {_now_sql()} "
        "ON CONFLICT (partnership_id, inventory_import_id) DO NOTHING",
        [ctx.import_id],
    )


# -- Exchange 2003: devices from the front end's IIS log (importers/iislog.py) -------------------

IIS_STAGE = [
    ("line", "integer"),
    ("user_name", "text"),  # User= as the log wrote it, for messages
    ("user_key", "text"),  # without DOMAIN\, lower case
    ("device_id", "text"),
    ("device_type", "text"),
    ("user_agent", "text"),
    ("first_seen", "timestamptz"),
    ("last_success", "timestamptz"),
    ("last_attempt", "timestamptz"),
    ("mailbox_id", "bigint"),
]
IIS_DEVICE_COLUMNS = ["device_type", "model", "os", "user_agent", "friendly_name", "imei"]
IIS_PARTNERSHIP_COLUMNS = [
    "identity",
    "client_type",
    "eas_version",
    "first_sync_at",
    "last_success_sync_at",
    "last_sync_attempt_at",
    "access_state",
    "access_state_reason",
    "policy_applied",
    "policy_status",
    "is_stale",
]
IIS_USER_COLUMN = "cs-uri-query"


def _earlier(new: str, stored: str) -> str:
    """SQL: the earlier of a new and a stored time; the stored one when the new one is NULL."""
    return f"CASE WHEN {stored} IS NULL OR {new} < {stored} THEN {new} ELSE {stored} END"


def _later(new: str, stored: str) -> str:
    return f"CASE WHEN {stored} IS NULL OR {new} > {stored} THEN {new} ELSE {stored} END"


def write_iis_log(rows: Rows, ctx: Context) -> dict[str, Any]:
    advisory_xact_lock(DEVICE_WRITES)  # write_devices adds new rows with plain INSERTs
    """Partnerships of Exchange 2003 mailboxes from an IIS log, one per (User, DeviceId).

    Same staging and upserts as write_devices, with three differences a log needs: a log
    covers a time window, not every device, so nothing is marked stale; its times only widen
    what is stored (earliest first sync, latest success and attempt), so logs of several days
    add up and a re-import changes nothing; and what only a device export knows (Identity,
    EAS version, access state, model, OS ...) is kept. The EAS version is left unknown: the
    MS-ASProtocolVersion header is not logged.
    """
    stage = Stage(connection, "stage_iis_devices", IIS_STAGE)
    total = stage.load(
        (
            line,
            row["user"],
            row["user_key"],
            row["device_id"],
            row["device_type"],
            row["user_agent"],
            row["first_seen"],
            row["last_success"],
            row["last_attempt"],
            None,
        )
        for line, row in rows
    )
    s = stage.name
    stage.index("user_key")
    # Only one mailbox with that SamAccountName links: none or several is reported, not guessed.
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM (SELECT LOWER(sam_account_name) AS sam, "
        f"MIN(id) AS id FROM devices_mailbox WHERE sam_account_name <> '' "
        f"GROUP BY LOWER(sam_account_name) HAVING COUNT(*) = 1) m WHERE m.sam = {s}.user_key"
    )
    unmatched_users = f"SELECT DISTINCT user_key FROM {s} WHERE mailbox_id IS NULL"
    total_unmatched = stage.scalar(f"SELECT COUNT(*) FROM ({unmatched_users}) u")
    skipped = 0
    if total_unmatched:
        report = ctx.problem if ctx.full_export else ctx.warn
        first_lines = stage.rows(
            f"SELECT s.line, s.user_name, s.user_key FROM {s} s WHERE s.mailbox_id IS NULL "
            f"AND s.line = (SELECT MIN(o.line) FROM {s} o WHERE o.user_key = s.user_key) "
            f"ORDER BY s.line LIMIT {MAX_PROBLEMS}"
        )
        for line, user, user_key in first_lines:
            holders = stage.scalar(
                "SELECT COUNT(*) FROM devices_mailbox WHERE LOWER(sam_account_name) = %s",
                [user_key],
            )
            if holders:
                message = (
                    f"User '{user}' is the SamAccountName of {holders} mailboxes (in different "
                    "domains?); exsync cannot tell which one its devices belong to"
                )
            else:
                message = (
                    f"User '{user}' is not the SamAccountName of any mailbox in the inventory; "
                    "import mailboxes.csv (Get-Mailbox) first or in the same run"
                )
            if not ctx.full_export:
                message += "; its devices were skipped (--partial)"
            report(line, IIS_USER_COLUMN, message)
        if total_unmatched > MAX_PROBLEMS:
            report(None, IIS_USER_COLUMN, f"and {total_unmatched - MAX_PROBLEMS} more users")
        ctx.raise_if_problems()
        skipped = stage.execute(f"DELETE FROM {s} WHERE mailbox_id IS NULL")
    stage.index("device_id", "mailbox_id")
    # One row per device (a phone may sync two mailboxes): type and agent of its latest request.
    latest = last_row_per(
        s, "device_id", ["device_type", "user_agent"], newest=["last_attempt", "line"]
    )
    devices = upsert(
        stage,
        table="devices_mobiledevice",
        conflict=["device_id"],
        columns=IIS_DEVICE_COLUMNS,
        select=(
            "SELECT l.device_id, COALESCE(NULLIF(l.device_type, ''), d.device_type, '') AS "
            "device_type, COALESCE(d.model, '') AS model, COALESCE(d.os, '') AS os, "
            "COALESCE(NULLIF(l.user_agent, ''), d.user_agent, '') AS user_agent, "
            "COALESCE(d.friendly_name, '') AS friendly_name, COALESCE(d.imei, '') AS imei "
            f"FROM ({latest}) l LEFT JOIN devices_mobiledevice d ON d.device_id = l.device_id"
        ),
        now=_now_sql(),
    )
    # Text facts only a device export gives: kept as stored, empty for a new partnership.
    kept = ", ".join(
        f"COALESCE(p.{c}, '') AS {c}"
        for c in IIS_PARTNERSHIP_COLUMNS
        if c not in ("client_type", "is_stale") and not c.endswith("_at")
    )
    partnerships = upsert(
        stage,
        table="devices_partnership",
        conflict=["device_id", "mailbox_id"],
        columns=IIS_PARTNERSHIP_COLUMNS,
        select=(
            f"SELECT d.id AS device_id, s.mailbox_id, {kept}, "
            "COALESCE(NULLIF(p.client_type, ''), 'EAS') AS client_type, "
            f"{_earlier('s.first_seen', 'p.first_sync_at')} AS first_sync_at, "
            f"{_later('s.last_success', 'p.last_success_sync_at')} AS last_success_sync_at, "
            f"{_later('s.last_attempt', 'p.last_sync_attempt_at')} AS last_sync_attempt_at, "
            # Seen in the log: a partnership, even if a device export (which cannot see 2003
            # partnerships) marked it stale.
            f"{sql_bool(False)} AS is_stale "
            f"FROM {s} s JOIN devices_mobiledevice d ON d.device_id = s.device_id "
            "LEFT JOIN devices_partnership p ON p.device_id = d.id AND p.mailbox_id = s.mailbox_id"
        ),
        now=_now_sql(),
    )
    counts: dict[str, Any] = {"rows": total, "devices": devices, "partnerships": partnerships}
    if skipped:
        counts["skipped_users"] = total_unmatched
        counts["skipped_rows"] = skipped
    return counts


# -- Exchange 2003 mailboxes through WMI (Exchange_Mailbox) ---------------------------------------

WMI_STAGE = [
    ("line", "integer"),
    ("mailbox_guid", "uuid"),
    ("legacy_dn_key", "text"),
    ("display_name", "text"),
    ("server_name", "text"),
    ("database", "text"),
    ("server_id", "bigint"),
    ("guid_mailbox_id", "bigint"),
    ("dn_mailbox_id", "bigint"),
    ("mailbox_id", "bigint"),
]


def write_wmi_mailboxes(rows: Rows, ctx: Context) -> dict[str, Any]:
    """The 2003 server and SERVER\\Storage Group\\Store of mailboxes already in the inventory.

    Matched by MailboxGUID = ExchangeGuid, else LegacyDN = LegacyExchangeDN (any case). WMI
    lists what the stores hold, not who owns it: a mailbox it names that Get-Mailbox did not
    is a problem, never a new mailbox. Disconnected mailboxes (DateDiscoveredAbsentInDS set)
    are skipped and counted.
    """
    stage = Stage(connection, "stage_wmi_mailboxes", WMI_STAGE)
    disconnected = 0

    def staged() -> Iterator[tuple]:
        nonlocal disconnected
        for line, row in rows:
            if row["disconnected"]:
                disconnected += 1
                continue
            yield (
                line,
                row["mailbox_guid"],
                _text(row["legacy_dn"]).lower(),
                _text(row["display_name"]),
                _text(row["server_name"]).lower(),
                _text(row["database"]),
                None,
                None,
                None,
                None,
            )

    total = stage.load(staged())
    s = stage.name
    stage.execute(
        f"UPDATE {s} SET server_id = (SELECT e.id FROM devices_exchangeserver e "
        f"WHERE LOWER(e.name) = {s}.server_name)"
    )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, server_name FROM {s} WHERE server_id IS NULL",
        "ServerName",
        "server '{value}' is not in the inventory; import Get-ExchangeServer first or in the same run",
    )
    stage.execute(
        f"UPDATE {s} SET guid_mailbox_id = m.id FROM devices_mailbox m "
        f"WHERE m.exchange_guid = {s}.mailbox_guid"
    )
    stage.execute(
        f"UPDATE {s} SET dn_mailbox_id = m.id FROM (SELECT LOWER(legacy_dn) AS dn, MIN(id) AS id "
        "FROM devices_mailbox WHERE legacy_dn <> '' GROUP BY LOWER(legacy_dn) HAVING COUNT(*) = 1) m "
        f"WHERE {s}.legacy_dn_key <> '' AND m.dn = {s}.legacy_dn_key"
    )
    clashes = stage.rows(
        f"SELECT s.line, g.primary_smtp_address, d.primary_smtp_address FROM {s} s "
        "JOIN devices_mailbox g ON g.id = s.guid_mailbox_id "
        "JOIN devices_mailbox d ON d.id = s.dn_mailbox_id "
        f"WHERE s.guid_mailbox_id <> s.dn_mailbox_id ORDER BY s.line LIMIT {MAX_PROBLEMS}"
    )
    for line, by_guid, by_dn in clashes:
        ctx.problem(
            line,
            "LegacyDN",
            f"MailboxGUID is the ExchangeGuid of {by_guid}, but LegacyDN is the "
            f"LegacyExchangeDN of {by_dn}; expected both to name the same mailbox",
        )
    stage.execute(f"UPDATE {s} SET mailbox_id = COALESCE(guid_mailbox_id, dn_mailbox_id)")
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, display_name FROM {s} WHERE mailbox_id IS NULL",
        "MailboxGUID",
        "mailbox '{value}' is not in the inventory (no ExchangeGuid or LegacyExchangeDN like "
        "it); import mailboxes.csv (Get-Mailbox) first or in the same run",
    )
    _report_duplicates(stage, ctx, "mailbox_id", "MailboxGUID", "the same inventory mailbox (id)")
    ctx.raise_if_problems()
    columns = ["server_id", "database"]
    changed = stage.scalar(
        f"SELECT COUNT(*) FROM {s} s JOIN devices_mailbox m ON m.id = s.mailbox_id "
        f"WHERE {stage.differs('m', 's', columns)}"
    )
    stage.execute(
        f"UPDATE devices_mailbox SET server_id = {s}.server_id, database = {s}.database, "
        f"updated_at = {_now_sql()} FROM {s} WHERE devices_mailbox.id = {s}.mailbox_id "
        f"AND {stage.differs('devices_mailbox', s, columns)}"
    )
    return {
        "rows": total + disconnected,
        "mailboxes": {"updated": changed, "unchanged": total - changed},
        "skipped_disconnected": disconnected,
    }


# -- move requests -------------------------------------------------------------------------------

MOVE_STAGE = [
    ("line", "integer"),
    ("exchange_guid", "uuid"),
    ("identity_key", "text"),
    ("alias", "text"),
    ("status", "text"),
    ("status_detail", "text"),
    ("source_database", "text"),
    ("target_database", "text"),
    ("source_server", "text"),
    ("target_server", "text"),
    ("queued_at", WALLCLOCK),
    ("started_at", WALLCLOCK),
    ("completed_at", WALLCLOCK),
    ("failed_at", WALLCLOCK),
    ("batch_name", "text"),
    ("mailbox_id", "bigint"),
]
MOVE_COLUMNS = [
    c
    for c, _ in MOVE_STAGE
    if c not in ("line", "exchange_guid", "identity_key", "alias", "mailbox_id")
]


def write_move_requests(rows: Rows, ctx: Context) -> dict[str, Any]:
    stage = Stage(connection, "stage_moves", MOVE_STAGE, tz=ctx.tz)

    def staged() -> Iterator[tuple]:
        for line, row in rows:
            if not row["status"]:
                ctx.problem(line, "Status", "empty, but a move request always has a status")
                continue
            yield (
                line,
                row["exchange_guid"],
                _text(row["identity"]).lower(),
                _text(row["alias"]).lower(),
                row["status"],
                _text(row["status_detail"]),
                _text(row["source_database"]),
                _text(row["target_database"]),
                _text(row["source_server"]),
                _text(row["target_server"]),
                row["queued_at"],
                row["started_at"],
                row["completed_at"],
                row["failed_at"],
                _text(row["batch_name"]),
                None,
            )

    total = stage.load(staged())
    s = stage.name
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m WHERE m.exchange_guid = {s}.exchange_guid"
    )
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m "
        f"WHERE {s}.mailbox_id IS NULL AND {s}.identity_key <> '' AND m.identity_key = {s}.identity_key"
    )
    stage.execute(
        f"UPDATE {s} SET mailbox_id = (SELECT MIN(m.id) FROM devices_mailbox m WHERE LOWER(m.alias) = {s}.alias "
        f"HAVING COUNT(*) = 1) "
        f"WHERE mailbox_id IS NULL AND alias <> ''"
    )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, COALESCE(NULLIF(identity_key, ''), alias) FROM {s} WHERE mailbox_id IS NULL",
        "ExchangeGuid",
        "mailbox '{value}' is not in the inventory (matched by ExchangeGuid, identity, then alias)",
    )
    _report_duplicates(stage, ctx, "mailbox_id", "ExchangeGuid", "the mailbox (inventory id)")
    ctx.raise_if_problems()
    dated = stage.dated({c: ctx.date_order(c) for c in stage.wallclock})
    moves = upsert(
        stage,
        table="devices_moverequest",
        conflict=["mailbox_id"],
        columns=MOVE_COLUMNS,
        select=f"SELECT mailbox_id, {', '.join(MOVE_COLUMNS)} FROM {dated} m",
        now=_now_sql(),
        created_at=False,
    )
    return {"rows": total, "move_requests": moves}


# -- organisation-level exports ------------------------------------------------------------------


def _fact_text(value: object) -> str:
    """A fact as the history shows it (as services.fact_text does for facts people record)."""
    if value is None or value == "":
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Organisations:
    """Which organisation each row of an organisation-level export belongs to, and its facts.

    The forest of the row's DistinguishedName (Exchange Online for a tenant DN) first; without
    one, the import's --organisation option; without that, the only on-premises organisation
    of the inventory (with a warning); else a problem asking for --organisation.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.created: set[int] = set()
        self.updated: set[int] = set()
        self.seen: dict[int, Organisation] = {}
        self._by_forest: dict[str, Organisation] = {}
        self._default: Organisation | None = None
        self._default_done = False
        self._option_ignored = False

    def _get(self, forest: str) -> Organisation:
        org = self._by_forest.get(forest)
        if org is None:
            org, created = Organisation.objects.get_or_create(
                forest=forest,
                defaults={"is_exchange_online": forest == EXCHANGE_ONLINE_FOREST},
            )
            if created:
                self.created.add(org.pk)
            self._by_forest[forest] = org
        self.seen[org.pk] = org
        return org

    def of(self, line: int, row: dict[str, Any]) -> Organisation | None:
        dn = row.get("distinguished_name")
        identity = row.get("identity") or ""
        if not dn and "dc=" in identity.lower() and "=" in identity.split(",", 1)[0]:
            dn = identity  # an Identity printed as a DN
        if not dn:
            return self.default(line)
        forest, cloud = forest_from_dn(dn)
        if cloud:
            forest = EXCHANGE_ONLINE_FOREST
        if forest is None:
            self.ctx.problem(
                line,
                "DistinguishedName",
                f"{dn!r} has no DC= parts; expected a DN ending in DC=contoso,DC=local",
            )
            return None
        wanted = (self.ctx.organisation or "").strip().lower()
        if wanted and wanted != forest and not self._option_ignored:
            self._option_ignored = True
            self.ctx.warn(
                line,
                "DistinguishedName",
                f"--organisation {self.ctx.organisation} ignored: the DistinguishedName names "
                f"the organisation ({forest})",
            )
        return self._get(forest)

    def default(self, line: int | None) -> Organisation | None:
        if self._default_done:
            return self._default
        self._default_done = True
        ctx = self.ctx
        known = list(Organisation.objects.order_by("forest").values_list("forest", flat=True))
        listed = ", ".join(known) if known else "none yet: import Get-ExchangeServer first"
        if ctx.organisation:
            wanted = ctx.organisation.strip().lower()
            if wanted == EXCHANGE_ONLINE_FOREST or wanted in known:
                self._default = self._get(wanted)
            else:
                ctx.problem(
                    None,
                    None,
                    f"--organisation {ctx.organisation}: no organisation with that forest in the "
                    f"inventory (known: {listed}; '{EXCHANGE_ONLINE_FOREST}' for the tenant)",
                )
            return self._default
        on_premises = list(Organisation.objects.filter(is_exchange_online=False)[:2])
        if len(on_premises) == 1:
            self._default = self._get(on_premises[0].forest)
            ctx.warn(
                None,
                None,
                f"has no DistinguishedName, so it was read as the settings of "
                f"{self._default.forest}, the only on-premises organisation in the inventory; "
                "give --organisation FOREST to choose another",
            )
        else:
            where = f" (line {line})" if line else ""
            ctx.problem(
                None,
                None,
                f"has no DistinguishedName{where}, so exsync cannot tell which organisation it "
                f"belongs to: import it again with --organisation FOREST (organisations: "
                f"{listed}), or export the DistinguishedName column too",
            )
        return self._default

    def set_fact(self, org: Organisation, field: str, new: object) -> None:
        """Change one fact of ``org``, with a FactChange row saying from what to what."""
        old = getattr(org, field)
        if old == new:
            return
        FactChange.objects.create(
            subject=f"Organisation {org.forest}",
            fact=str(Organisation._meta.get_field(field).verbose_name),
            old_value=_fact_text(old),
            new_value=_fact_text(new),
            actor_id=self.ctx.actor_id,
            via="import",
        )
        setattr(org, field, new)
        org.save(update_fields=[field, "updated_at"])
        self.updated.add(org.pk)

    def counts(self) -> dict[str, int]:
        updated = self.updated - self.created
        return {
            "created": len(self.created),
            "updated": len(updated),
            "unchanged": len(set(self.seen) - self.created - updated),
        }


def _by_organisation(
    rows: Rows, orgs: _Organisations
) -> dict[int, list[tuple[int, dict[str, Any]]]]:
    groups: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for line, row in rows:
        org = orgs.of(line, row)
        if org is not None:
            groups.setdefault(org.pk, []).append((line, row))
    return groups


def _one_per_organisation(
    items: list[tuple[int, dict[str, Any]]],
    ctx: Context,
    key: Callable[[dict[str, Any]], object],
    column: str | None,
    what: Callable[[dict[str, Any]], str],
) -> None:
    """A problem for each row whose ``key`` (when not None) an earlier row already had."""
    first: dict[object, int] = {}
    for line, row in items:
        value = key(row)
        if value is None:
            continue
        if value in first:
            ctx.problem(line, column, f"{what(row)} is also on line {first[value]}")
        else:
            first[value] = line


def write_org_settings(rows: Rows, ctx: Context) -> dict[str, Any]:
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    for pk, items in groups.items():
        _one_per_organisation(
            items,
            ctx,
            lambda row: True,
            None,
            lambda row, pk=pk: (
                f"the settings of organisation {orgs.seen[pk].forest} (one object per organisation)"
            ),
        )
    ctx.raise_if_problems()
    for pk, [(_line, row), *_] in groups.items():
        orgs.set_fact(orgs.seen[pk], "default_access_level", row["default_access_level"])
    return {"rows": sum(len(i) for i in groups.values()), "organisations": orgs.counts()}


def write_throttling(rows: Rows, ctx: Context) -> dict[str, Any]:
    """EasMaxDevices of each organisation: from its Organization-scope policy when that sets
    it, else the Global one (2013+), else the IsDefault one (2010)."""
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    chosen: dict[int, tuple[int, dict[str, Any]] | None] = {}
    for pk, items in groups.items():
        org = orgs.seen[pk]
        _one_per_organisation(
            items, ctx, lambda r: r["name"].lower(), "Name", lambda r: f"policy {r['name']}"
        )

        def scope(row: dict[str, Any]) -> str | None:
            if row["scope"] is not None:
                return row["scope"] if row["scope"] != "Regular" else None
            return "Default" if row["is_default"] else None

        column = "ThrottlingPolicyScope" if any(r["scope"] for _, r in items) else "IsDefault"
        _one_per_organisation(
            items,
            ctx,
            scope,
            column,
            lambda r, org=org: f"another {scope(r)} policy of {org.forest} ({r['name']})",
        )
        by_scope = {scope(r): (line, r) for line, r in reversed(items) if scope(r)}
        pick = by_scope.get("Organization")
        if pick is None or pick[1]["eas_max_devices"] is None:
            pick = by_scope.get("Global") or by_scope.get("Default")
        chosen[pk] = pick
    ctx.raise_if_problems()
    for pk, pick in chosen.items():
        org = orgs.seen[pk]
        if pick is None:
            ctx.warn(
                None,
                None,
                f"has no default policy of {org.forest} (IsDefault True, or ThrottlingPolicyScope "
                "Organization or Global): its EasMaxDevices is unchanged",
            )
            continue
        line, row = pick
        limit = row["eas_max_devices"]
        if limit is None:
            ctx.warn(
                line,
                "EasMaxDevices",
                f"empty in policy {row['name']}: the EasMaxDevices of {org.forest} is unchanged",
            )
            continue
        if limit == UNLIMITED:
            ctx.warn(
                line,
                "EasMaxDevices",
                f"Unlimited in policy {row['name']}: {org.forest} has no device-count limit "
                "exsync can check; recorded as unknown",
            )
            limit = None
        orgs.set_fact(org, "eas_max_devices", limit)
    return {"rows": sum(len(i) for i in groups.values()), "organisations": orgs.counts()}


POLICY_FIELDS = {
    "is_default": "is_default",
    "allow_non_provisionable": "allow_non_provisionable_devices",
    "password_enabled": "password_enabled",
    "require_encryption": "require_device_encryption",
    "min_password_length": "min_password_length",
}


def write_mailbox_policies(rows: Rows, ctx: Context) -> dict[str, Any]:
    """MobileDevicePolicy rows per organisation, keyed by name (any case). Columns the export
    left out keep their recorded values; policies missing from the export are kept."""
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    for pk, items in groups.items():
        forest = orgs.seen[pk].forest
        _one_per_organisation(
            items,
            ctx,
            lambda r: r["name"].lower(),
            "Name",
            lambda r, forest=forest: f"policy {r['name']} of {forest}",
        )
        _one_per_organisation(
            items,
            ctx,
            lambda r: True if r["is_default"] else None,
            "IsDefault",
            lambda r, forest=forest: f"another default policy of {forest} ({r['name']})",
        )
    ctx.raise_if_problems()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for pk, items in groups.items():
        existing = {
            p.name.lower(): p for p in MobileDevicePolicy.objects.filter(organisation_id=pk)
        }
        for _line, row in items:
            fields = {
                field: row[key] for key, field in POLICY_FIELDS.items() if key in row["present"]
            }
            fields["name"] = row["name"]
            policy = existing.get(row["name"].lower())
            if policy is None:
                MobileDevicePolicy.objects.create(organisation_id=pk, **fields)
                counts["created"] += 1
            elif any(getattr(policy, k) != v for k, v in fields.items()):
                for key, value in fields.items():
                    setattr(policy, key, value)
                policy.save()
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return {
        "rows": sum(len(i) for i in groups.values()),
        "policies": counts,
        "organisations": orgs.counts(),
    }


def write_org_relationships(rows: Rows, ctx: Context) -> dict[str, Any]:
    """hybrid_configured of each organisation: True when a row shows the relationship to
    Exchange Online (or Get-HybridConfiguration has an object); False from a full
    Get-OrganizationRelationship export without one."""
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    if not groups and ctx.full_export:
        # A header-only export: the organisation has no relationship at all.
        org = orgs.default(None)
        if org is not None:
            groups[org.pk] = []
    ctx.raise_if_problems()
    for pk, items in groups.items():
        org = orgs.seen[pk]
        if any(row["hybrid"] for _, row in items):
            orgs.set_fact(org, "hybrid_configured", True)
            continue
        if not ctx.full_export or any(r["source"] == "Get-HybridConfiguration" for _, r in items):
            continue
        unknown = [(line, row) for line, row in items if row["hybrid"] is None]
        if unknown:
            line, row = unknown[0]
            ctx.warn(
                line,
                "DomainNames",
                f"cannot tell whether relationship {row['name'] or '?'} leads to Exchange Online "
                "(DomainNames holds a type name, TargetApplicationUri is empty), so 'hybrid "
                f"configured' of {org.forest} is unchanged; export DomainNames with "
                "@{n='DomainNames';e={$_.DomainNames -join ';'}}",
            )
        elif org.is_exchange_online:
            # The tenant's side points at the on-premises organisation, which this rule
            # does not recognise: no conclusion about the tenant.
            continue
        else:
            orgs.set_fact(org, "hybrid_configured", False)
    return {"rows": sum(len(i) for i in groups.values()), "organisations": orgs.counts()}


def write_accepted_domains(rows: Rows, ctx: Context) -> dict[str, Any]:
    """AcceptedDomain rows per organisation and domain. What an admin recorded
    (shared_with_other_system) stays; domains missing from a full export are kept, with a
    warning."""
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    for pk, items in groups.items():
        forest = orgs.seen[pk].forest
        _one_per_organisation(
            items,
            ctx,
            lambda r: r["domain_name"],
            "DomainName",
            lambda r, forest=forest: f"domain {r['domain_name']} of {forest}",
        )
        _one_per_organisation(
            items,
            ctx,
            lambda r: True if r["is_default"] else None,
            "Default",
            lambda r, forest=forest: f"another default domain of {forest} ({r['domain_name']})",
        )
    ctx.raise_if_problems()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for pk, items in groups.items():
        existing = {d.domain_name: d for d in AcceptedDomain.objects.filter(organisation_id=pk)}
        for _line, row in items:
            fields: dict[str, Any] = {"domain_type": row["domain_type"]}
            if "is_default" in row["present"]:
                fields["is_default"] = row["is_default"]
            domain = existing.pop(row["domain_name"], None)
            if domain is None:
                AcceptedDomain.objects.create(
                    organisation_id=pk, domain_name=row["domain_name"], **fields
                )
                counts["created"] += 1
            elif any(getattr(domain, k) != v for k, v in fields.items()):
                AcceptedDomain.objects.filter(pk=domain.pk).update(
                    updated_at=timezone.now(), **fields
                )
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        if existing and ctx.full_export:
            names = ", ".join(sorted(existing))
            ctx.warn(
                None,
                None,
                f"{len(existing)} accepted domains of {orgs.seen[pk].forest} in the inventory are "
                f"not in this export ({names}); they were kept: delete them by hand if Exchange "
                "no longer accepts them",
            )
    return {
        "rows": sum(len(i) for i in groups.values()),
        "accepted_domains": counts,
        "organisations": orgs.counts(),
    }


# -- device access: personal lists (Get-CASMailbox) and organisation rules ---------------------

CAS_STAGE = [
    ("line", "integer"),
    ("mailbox_key", "text"),  # PrimarySmtpAddress, lower case; '' when not given
    ("identity_key", "text"),
    ("allowed_known", "boolean"),
    ("blocked_known", "boolean"),
    ("mailbox_id", "bigint"),
]
CAS_LISTED_STAGE = [("line", "integer"), ("device_key", "text"), ("list", "text")]


def _listed(stage: str, list_name: str) -> str:
    """SQL: the partnership's device is on the named list of its CAS row (alias c, device d)."""
    return (
        f"EXISTS (SELECT 1 FROM {stage} i WHERE i.line = c.line AND i.list = '{list_name}' "
        "AND i.device_key = LOWER(d.device_id))"
    )


def write_cas_mailboxes(rows: Rows, ctx: Context) -> dict[str, Any]:
    """personal_access of every partnership of each mailbox whose lists the export shows.

    A list written as a type name (Export-Csv without -join) is not exported: it changes
    nothing it would decide. A device on both lists is blocked (Exchange checks the personal
    block list first). Mailboxes are matched as the device import matches them: by
    PrimarySmtpAddress, else by Identity when exactly one mailbox has it.
    """
    listed: list[tuple[int, str, str]] = []
    not_exported: dict[str, list[Any]] = {}  # column -> [count, first line, value]

    def staged() -> Iterator[tuple]:
        for line, row in rows:
            known = {}
            for key, column in (
                ("allowed", "ActiveSyncAllowedDeviceIDs"),
                ("blocked", "ActiveSyncBlockedDeviceIDs"),
            ):
                ids = row[key]
                known[key] = ids is not None
                if ids is None and f"{key}_ids" in row["present"]:
                    tally = not_exported.setdefault(column, [0, line, row[f"{key}_ids"]])
                    tally[0] += 1
                for device_id in ids or ():
                    listed.append((line, device_id.lower(), key))
            yield (
                line,
                row["primary_smtp"] or "",
                _text(row["identity"]).lower(),
                known["allowed"],
                known["blocked"],
                None,
            )

    stage = Stage(connection, "stage_cas_mailboxes", CAS_STAGE)
    total = stage.load(staged())
    s = stage.name
    _link_by_address_then_identity(stage)
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, CASE WHEN mailbox_key <> '' THEN mailbox_key ELSE identity_key END "
        f"FROM {s} WHERE mailbox_id IS NULL",
        "PrimarySmtpAddress",
        "mailbox '{value}' is not in the inventory (or its Identity matches several mailboxes); "
        "import Get-Mailbox first or in the same run",
    )
    stage.index("mailbox_id")  # the duplicate check and the join to partnerships look it up
    _report_duplicates(stage, ctx, "mailbox_id", "PrimarySmtpAddress", "the mailbox (inventory id)")
    ctx.raise_if_problems()
    for column, (count, line, value) in not_exported.items():
        ctx.warn(
            line,
            column,
            f"{count} mailboxes have a type name ({value!r}) instead of the list: not exported, "
            "so what they would say is unchanged; export it with "
            f"@{{n='{column}';e={{$_.{column} -join ';'}}}}",
        )

    ids = Stage(connection, "stage_cas_listed", CAS_LISTED_STAGE)
    ids.load(listed)
    ids.index("line", "device_key")
    # Each partnership of an exported mailbox: on the block list, else on the allow list,
    # else neither; a list that was not exported keeps what the stored value says of it.
    access = Stage(
        connection, "stage_cas_access", [("partnership_id", "bigint"), ("personal_access", "text")]
    )
    access.execute(
        f"INSERT INTO {access.name} (partnership_id, personal_access) "
        f"SELECT p.id, CASE "
        f"WHEN CASE WHEN c.blocked_known THEN {_listed(ids.name, 'blocked')} "
        "ELSE p.personal_access = 'blocked' END THEN 'blocked' "
        f"WHEN CASE WHEN c.allowed_known THEN {_listed(ids.name, 'allowed')} "
        "ELSE p.personal_access = 'allowed' END THEN 'allowed' "
        "ELSE '' END "
        f"FROM devices_partnership p JOIN devices_mobiledevice d ON d.id = p.device_id "
        f"JOIN {s} c ON c.mailbox_id = p.mailbox_id "
        "WHERE c.allowed_known OR c.blocked_known"
    )
    considered = access.scalar(f"SELECT COUNT(*) FROM {access.name}")
    updated = access.execute(
        f"UPDATE devices_partnership SET personal_access = a.personal_access, "
        f"updated_at = {_now_sql()} FROM {access.name} a "
        "WHERE devices_partnership.id = a.partnership_id "
        "AND devices_partnership.personal_access <> a.personal_access"
    )
    exported = stage.scalar(f"SELECT COUNT(*) FROM {s} WHERE allowed_known OR blocked_known")
    return {
        "rows": total,
        "mailboxes": {"lists exported": exported, "lists not exported": total - exported},
        "partnerships": {"updated": updated, "unchanged": considered - updated},
    }


def _rule_text(rule: DeviceAccessRule | None) -> str:
    return rule.access_level if rule is not None else "none"


def write_device_access_rules(rows: Rows, ctx: Context) -> dict[str, Any]:
    """DeviceAccessRule rows per organisation, keyed by Characteristic and QueryString (any
    case). A full export replaces the organisation's rules and records that they are known
    (a header-only file: the organisation has none); --partial only adds and changes rules.
    Every rule added, changed or removed is a FactChange of the organisation."""
    orgs = _Organisations(ctx)
    groups = _by_organisation(rows, orgs)
    if not groups and ctx.full_export:
        org = orgs.default(None)
        if org is not None:
            groups[org.pk] = []

    def key(row: dict[str, Any]) -> tuple[str, str]:
        return row["characteristic"], row["query_string"].casefold()

    for pk, items in groups.items():
        forest = orgs.seen[pk].forest
        _one_per_organisation(
            items,
            ctx,
            key,
            "QueryString",
            lambda r, forest=forest: (
                f"the rule for {r['characteristic']} {r['query_string']!r} of {forest}"
            ),
        )
    ctx.raise_if_problems()
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    now = timezone.now()

    def history(org: Organisation, rule: str, old: str, new: str) -> None:
        FactChange.objects.create(
            subject=f"Organisation {org.forest}",
            fact=f"device access rule {rule}",
            old_value=old,
            new_value=new,
            actor_id=ctx.actor_id,
            via="import",
        )

    for pk, items in groups.items():
        org = orgs.seen[pk]
        existing = {
            (r.characteristic, r.query_string.casefold()): r
            for r in DeviceAccessRule.objects.filter(organisation_id=pk)
        }
        for _line, row in items:
            fields = {
                "name": row["name"] or f"{row['query_string']} ({row['characteristic']})",
                "query_string": row["query_string"],
                "access_level": row["access_level"],
            }
            label = f"{row['characteristic']} {row['query_string']!r}"
            rule = existing.pop(key(row), None)
            if rule is None:
                DeviceAccessRule.objects.create(
                    organisation_id=pk, characteristic=row["characteristic"], **fields
                )
                history(org, label, _rule_text(None), row["access_level"])
                counts["created"] += 1
            elif any(getattr(rule, k) != v for k, v in fields.items()):
                if rule.access_level != row["access_level"]:
                    history(org, label, _rule_text(rule), row["access_level"])
                DeviceAccessRule.objects.filter(pk=rule.pk).update(updated_at=now, **fields)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        if not ctx.full_export:
            continue
        for rule in existing.values():
            history(org, f"{rule.characteristic} {rule.query_string!r}", _rule_text(rule), "none")
            rule.delete()
            counts["deleted"] += 1
        if org.device_access_rules_imported_at is None:
            orgs.updated.add(pk)  # its rules were unknown until now
        # The time of the last full import; not a fact of its own (no FactChange).
        Organisation.objects.filter(pk=pk).update(device_access_rules_imported_at=now)
    return {
        "rows": sum(len(i) for i in groups.values()),
        "device_access_rules": counts,
        "organisations": orgs.counts(),
    }


# -- time zones of mailboxes (Get-MailboxRegionalConfiguration) ---------------------------------

REGIONAL_STAGE = [
    ("line", "integer"),
    ("mailbox_key", "text"),  # PrimarySmtpAddress, lower case; '' when not given
    ("identity_key", "text"),
    ("time_zone", "text"),  # IANA name; '' when the mailbox's owner never chose one
    ("mailbox_id", "bigint"),
]


def write_regional_configurations(rows: Rows, ctx: Context) -> dict[str, Any]:
    """Mailbox.time_zone from TimeZone, converted to an IANA name by the importer; an empty
    TimeZone (never chosen) makes it unknown again. Mailboxes are matched as Get-CASMailbox
    rows are: by PrimarySmtpAddress, else by Identity when exactly one mailbox has it, else by
    an Identity that is an address. Mailboxes the export leaves out keep their zone."""

    def staged() -> Iterator[tuple]:
        for line, row in rows:
            yield (
                line,
                row["primary_smtp"] or "",
                _text(row["identity"]).lower(),
                row["time_zone"] or "",
                None,
            )

    stage = Stage(connection, "stage_regional", REGIONAL_STAGE)
    total = stage.load(staged())
    s = stage.name
    _link_by_address_then_identity(stage)
    # Scripts that call Get-MailboxRegionalConfiguration -Identity <address> print the address.
    stage.execute(
        f"UPDATE {s} SET mailbox_id = m.id FROM devices_mailbox m "
        f"WHERE {s}.mailbox_id IS NULL AND {s}.identity_key LIKE %s "
        f"AND m.primary_smtp_address = {s}.identity_key",
        ["%@%"],
    )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, mailbox_key FROM {s} WHERE mailbox_id IS NULL AND mailbox_key <> ''",
        "PrimarySmtpAddress",
        "mailbox '{value}' is not in the inventory; import Get-Mailbox first or in the same run",
    )
    _report_unmatched(
        stage,
        ctx,
        f"SELECT line, identity_key FROM {s} WHERE mailbox_id IS NULL AND mailbox_key = ''",
        "Identity",
        "mailbox '{value}' is not in the inventory, or several mailboxes have this Identity; "
        "import Get-Mailbox first or in the same run, or export PrimarySmtpAddress too",
    )
    stage.index("mailbox_id")
    duplicates = stage.rows(
        f"SELECT s.line, s.mailbox_key, s.identity_key, MIN(o.line) FROM {s} s "
        f"JOIN {s} o ON o.mailbox_id = s.mailbox_id AND o.line < s.line "
        f"GROUP BY s.line, s.mailbox_key, s.identity_key ORDER BY s.line LIMIT {MAX_PROBLEMS}"
    )
    for line, address, identity, first in duplicates:
        ctx.problem(
            line,
            "PrimarySmtpAddress" if address else "Identity",
            f"mailbox '{address or identity}' is also on line {first}; each mailbox may appear once",
        )
    ctx.raise_if_problems()
    updated = stage.execute(
        f"UPDATE devices_mailbox SET time_zone = {s}.time_zone, updated_at = {_now_sql()} "
        f"FROM {s} WHERE devices_mailbox.id = {s}.mailbox_id "
        f"AND devices_mailbox.time_zone <> {s}.time_zone"
    )
    unset = stage.scalar(f"SELECT COUNT(*) FROM {s} WHERE time_zone = ''")
    return {
        "rows": total,
        "mailboxes": {"updated": updated, "unchanged": total - updated},
        "time zones": {"known": total - unset, "not chosen": unset},
    }


# -- mailbox databases and storage groups (Get-MailboxDatabase -Status, Get-StorageGroup) --------
#
# A few dozen rows: plain ORM. A 2010+ database is (server, "", name); a 2007 database
# (server, storage group, name); a 2007 storage group (server, "", its name), which is also how
# its Identity reads (EX2007A\First Storage Group). Circular logging is a storage-group
# property in 2007: a Get-StorageGroup import sets it on the databases of the group too.


def _server_for(name: str, servers: dict[str, ExchangeServer]) -> ExchangeServer | None:
    """A server by its name in any case, or by the first label of an FQDN."""
    key = name.strip().lower()
    return servers.get(key) or servers.get(key.split(".", 1)[0])


def _database_rows(
    rows: Rows, ctx: Context
) -> list[tuple[int, dict[str, Any], ExchangeServer, tuple[int, str, str]]]:
    """The rows with their server and key; a problem for unknown servers and duplicates."""
    servers = {s.name.lower(): s for s in ExchangeServer.objects.all()}
    seen: dict[tuple[int, str, str], int] = {}
    found = []
    for line, row in rows:
        server = _server_for(row["server"], servers)
        if server is None:
            ctx.problem(
                line,
                row["server_column"],
                f"server '{row['server']}' is not in the inventory; import Get-ExchangeServer "
                "first or in the same run",
            )
            continue
        group = row.get("storage_group") or ""
        key = (server.pk, group.lower(), row["name"].lower())
        if key in seen:
            where = "\\".join(part for part in (server.name, group, row["name"]) if part)
            ctx.problem(line, row["name_column"], f"{where} is also on line {seen[key]}")
            continue
        seen[key] = line
        found.append((line, row, server, key))
    return found


def _write_database_rows(
    found: list[tuple[int, dict[str, Any], ExchangeServer, tuple[int, str, str]]],
    ctx: Context,
    fields: Callable[[dict[str, Any], dict[tuple[int, str, str], MailboxDatabase]], dict],
) -> tuple[dict[str, int], dict[tuple[int, str, str], MailboxDatabase]]:
    existing = {
        (d.server_id, d.storage_group.lower(), d.name.lower()): d
        for d in MailboxDatabase.objects.filter(server__in={s.pk for _, _, s, _ in found})
    }
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    now = timezone.now()
    for _line, row, server, key in found:
        values = fields(row, existing)
        values["name"] = row["name"]
        values["storage_group"] = row.get("storage_group") or ""
        database = existing.get(key)
        if database is None:
            existing[key] = MailboxDatabase.objects.create(server=server, imported_at=now, **values)
            counts["created"] += 1
            continue
        if any(getattr(database, k) != v for k, v in values.items()):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
        for k, v in values.items():
            setattr(database, k, v)
        database.imported_at = now
        database.save()
    return counts, existing


def write_mailbox_databases(rows: Rows, ctx: Context) -> dict[str, Any]:
    """MailboxDatabase rows keyed by server, storage group (2007) and name, in any case.

    Columns the export left out keep what is stored. An empty LastFullBackup means "never
    backed up" only when the row shows it was read with -Status (Mounted True/False); without
    -Status every backup time is empty, and the stored one is kept (with a warning). A 2007
    database without CircularLoggingEnabled takes its storage group's, when that was imported.
    """
    found = _database_rows(rows, ctx)
    ctx.raise_if_problems()
    not_read = [(line, row) for line, row, _, _ in found if not row["status_read"]]

    def fields(row: dict[str, Any], existing: dict) -> dict[str, Any]:
        present = row["present"]
        values: dict[str, Any] = {}
        circular = row["circular_logging"]
        group = (row.get("storage_group") or "").lower()
        if circular is None and group:
            server_id = row["server_id"]
            stored_group = existing.get((server_id, "", group))
            if stored_group is not None:
                circular = stored_group.circular_logging_enabled
        if circular is not None or "circular_logging" in present:
            values["circular_logging_enabled"] = circular
        if "last_full_backup" in present and row["status_read"]:
            values["last_full_backup"] = ctx.aware(row["last_full_backup"])
        return values

    for _line, row, server, _key in found:
        row["server_id"] = server.pk
    counts, _ = _write_database_rows(found, ctx, fields)
    if not_read and any("last_full_backup" in row["present"] for _, row in not_read):
        line, row = not_read[0]
        ctx.warn(
            line,
            row["mounted_column"],
            f"{len(not_read)} databases have no Mounted value (first: {row['name']}): exported "
            "without -Status, or their server did not answer, so LastFullBackup says nothing; "
            "their last full backup was left as it was. Export Get-MailboxDatabase -Status",
        )
    return {"rows": len(found), "databases": counts}


def write_storage_groups(rows: Rows, ctx: Context) -> dict[str, Any]:
    """Exchange 2007 storage groups as MailboxDatabase rows (server, "", name) with their
    CircularLoggingEnabled, which the databases of the group already imported take too."""
    found = _database_rows(rows, ctx)
    ctx.raise_if_problems()

    def fields(row: dict[str, Any], existing: dict) -> dict[str, Any]:
        return {"circular_logging_enabled": row["circular_logging"]}

    counts, _ = _write_database_rows(found, ctx, fields)
    in_groups = 0
    for _line, row, server, _key in found:
        in_groups += (
            MailboxDatabase.objects.filter(server=server, storage_group__iexact=row["name"])
            .exclude(circular_logging_enabled=row["circular_logging"])
            .update(circular_logging_enabled=row["circular_logging"])
        )
    return {
        "rows": len(found),
        "storage_groups": counts,
        "databases": {"updated": in_groups},
    }


# The kinds whose writers stage an export's dates as wall-clock text, read by the database
# in the day/month order the file decides at the end of its one pass (Stage.dated).
DATES_IN_SQL = frozenset({"devices", "move_requests"})

WRITERS: dict[str, Callable[[Rows, Context], dict[str, Any]]] = {
    "servers": write_servers,
    "vdirs": write_vdirs,
    "certificates": write_certificates,
    "mailboxes": write_mailboxes,
    "devices": write_devices,
    "iis_log": write_iis_log,
    "wmi_mailboxes": write_wmi_mailboxes,
    "move_requests": write_move_requests,
    "org_settings": write_org_settings,
    "throttling": write_throttling,
    "mailbox_policies": write_mailbox_policies,
    "org_relationships": write_org_relationships,
    "accepted_domains": write_accepted_domains,
    "device_access_rules": write_device_access_rules,
    "cas_mailboxes": write_cas_mailboxes,
    "regional_configurations": write_regional_configurations,
    "mailbox_databases": write_mailbox_databases,
    "storage_groups": write_storage_groups,
}
# Files given together are imported in this order, so devices find their mailboxes and
# organisation-level settings find the organisations the servers' forests made.
KIND_ORDER = [
    "servers",
    "vdirs",
    "org_settings",
    "throttling",
    "mailbox_policies",
    "org_relationships",
    "accepted_domains",
    "device_access_rules",
    "certificates",
    "storage_groups",  # after servers; before databases, which take their circular logging
    "mailbox_databases",
    "mailboxes",
    "wmi_mailboxes",  # updates mailboxes: after them
    "devices",
    "iis_log",  # 2003 partnerships: after mailboxes and the device exports
    "cas_mailboxes",  # after devices: the lists are written onto partnerships
    "regional_configurations",  # after mailboxes: sets their time zones
    "move_requests",
]
