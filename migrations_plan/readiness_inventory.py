"""The readiness checks' adapter: the database as readiness facts, and which findings concern a
batch. The checks themselves are pure (migrations_plan/readiness/); this module only reads.

A fixed number of queries for the organisation, whatever its size (servers, mailbox servers,
OWA confirmations, namespaces, probes, domains, databases, vdir changes, and the hygiene
counts' own few).
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlparse

from django.conf import settings
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.urls import reverse
from django.utils import timezone

from devices.models import (
    AcceptedDomain,
    EndpointProbe,
    ExchangeServer,
    Generation,
    Mailbox,
    MailboxDatabase,
    Namespace,
    OwaBackupConfirmation,
)
from devices.probe_services import probe_urls
from devices.selectors import vdir_changes
from helpdesk.hygiene import hygiene_counts

from .facts_from_inventory import serves_client_access
from .models import BatchMailbox, FindingAcknowledgement, MoveBatch
from .readiness import facts
from .readiness.checks import FAILED_PROBES, run_checks
from .readiness.findings import Finding, Result

# FactChange.fact (devices vdir writer) -> the setting a readiness finding names.
VDIR_SETTINGS = {
    "ExternalUrl": "ExternalUrl",
    "InternalUrl": "InternalUrl",
    "IWA on Microsoft-Server-ActiveSync": "IWA",
    "Basic authentication": "Basic authentication",
}


def _host(url: str) -> str:
    return (urlparse(url).hostname or "").lower()


def _probe(row: EndpointProbe) -> facts.Probe:
    return facts.Probe(
        outcome=row.outcome,
        probed_at=row.probed_at,
        error=row.error,
        thumbprint=row.thumbprint,
        issuer=row.issuer,
        subject=row.subject,
        not_after=row.not_after,
        names=tuple(row.name_list()),
        self_signed=row.self_signed,
        trusted=row.trusted,
        covers_host=row.covers_host,
    )


def _servers() -> tuple[list[ExchangeServer], tuple[facts.Server, ...]]:
    servers = list(ExchangeServer.objects.all())
    with_mailboxes = set(
        Mailbox.objects.exclude(server_id=None).values_list("server_id", flat=True).distinct()
    )
    backups: dict[int, OwaBackupConfirmation] = {}
    for row in OwaBackupConfirmation.objects.select_related("confirmed_by").order_by(
        "server_id", "-confirmed_at", "-pk"
    ):
        backups.setdefault(row.server_id, row)
    return servers, tuple(
        facts.Server(
            id=s.pk,
            name=s.name,
            generation=s.generation,
            forest=s.effective_forest,
            serves_client_access=s.generation not in (Generation.EX2003, Generation.EXO, "")
            and serves_client_access(s),
            has_mailboxes=s.pk in with_mailboxes,
            iwa_enabled=s.iwa_enabled,
            basic_auth_enabled=s.basic_auth_enabled,
            block_legacy_mailboxes=s.block_legacy_mailboxes,
            eas_vdir_imported=s.eas_vdir_imported,
            is_sbs=s.is_sbs,
            third_party_backup=s.third_party_backup,
            owa_backup=facts.OwaBackup(
                by=backups[s.pk].confirmed_by.get_username()
                if backups[s.pk].confirmed_by
                else "someone",
                at=backups[s.pk].confirmed_at,
                update=backups[s.pk].update,
            )
            if s.pk in backups
            else None,
            page=reverse("devices:server_detail", args=[s.pk]),
        )
        for s in servers
    )


def _newest(rows: QuerySet, *partition: str) -> QuerySet:
    """The newest row of each `partition` group, in one query (a window function)."""
    return rows.annotate(
        newest=Window(
            RowNumber(),
            partition_by=[F(name) for name in partition],
            order_by=[F("probed_at").desc(), F("pk").desc()],
        )
    ).filter(newest=1)


def _endpoints(servers: list[ExchangeServer]) -> tuple[facts.Endpoint, ...]:
    by_host: dict[str, set[int]] = {}
    for server in servers:
        for url in (server.eas_external_url, server.eas_internal_url):
            if url:
                by_host.setdefault(_host(url), set()).add(server.pk)
    used: set[str] = set()
    for namespace in Namespace.objects.prefetch_related("servers"):
        by_host.setdefault(namespace.host.lower(), set()).update(
            s.pk for s in namespace.servers.all()
        )
        if namespace.devices_use:
            used.add(namespace.host.lower())
    newest = {row.url: row for row in _newest(EndpointProbe.objects.all(), "url")}
    # Each certificate an endpoint served, at its newest probe: the newest is the one judged,
    # the one before it what a change is measured against (bounded by certificates, not by
    # how many probes ever ran).
    certificates: dict[str, list[EndpointProbe]] = {}
    served = EndpointProbe.objects.exclude(thumbprint="").exclude(outcome__in=FAILED_PROBES)
    for row in sorted(
        _newest(served, "url", "thumbprint"), key=lambda r: (r.probed_at, r.pk), reverse=True
    ):
        certificates.setdefault(row.url, []).append(row)
    return tuple(
        facts.Endpoint(
            url=url,
            host=_host(url),
            source=source,
            servers=frozenset(by_host.get(_host(url), ())),
            probe=_probe(newest[url]) if url in newest else None,
            last_read=_probe(certificates[url][0]) if certificates.get(url) else None,
            previous=_probe(certificates[url][1]) if len(certificates.get(url, [])) > 1 else None,
            devices_use=_host(url) in used,
        )
        for url, source in probe_urls()
    )


def _vdir_changes(servers: list[ExchangeServer]) -> tuple[facts.VdirChange, ...]:
    by_name = {s.name.lower(): s.pk for s in servers}
    changes = []
    for change in vdir_changes(newest_only=True):  # the newest change of each setting holds
        name = change.subject.removeprefix("Server ").strip()
        changes.append(
            facts.VdirChange(
                server_id=by_name.get(name.lower()),
                server_name=name,
                setting=VDIR_SETTINGS.get(change.fact, change.fact),
                old=change.old_value,
                new=change.new_value,
                at=change.at,
            )
        )
    return tuple(changes)


def readiness_inventory(
    *,
    mailbox_ids: Collection[int] | None = None,
    target: ExchangeServer | None = None,
    batch: MoveBatch | None = None,
) -> facts.Inventory:
    """The organisation's readiness facts; the hygiene lists counted over `mailbox_ids` (a
    batch's) against `target` when given."""
    servers, server_facts = _servers()
    domains = list(AcceptedDomain.objects.select_related("organisation"))
    databases = list(MailboxDatabase.objects.select_related("server"))
    # Exchange 2007 keeps circular logging on the storage group: a group imported as a row of
    # its own (Get-StorageGroup) speaks for its databases, which carry its value.
    groups = {(d.server_id, d.name) for d in databases if not d.storage_group}
    databases = [d for d in databases if (d.server_id, d.storage_group) not in groups]
    return facts.Inventory(
        today=timezone.localdate(),
        servers=server_facts,
        endpoints=_endpoints(servers),
        domains=tuple(
            facts.AcceptedDomain(
                organisation=d.organisation.forest,
                domain=d.domain_name,
                domain_type=d.domain_type,
                shared=d.shared_with_other_system,
            )
            for d in domains
        ),
        domains_imported=bool(domains),
        databases=tuple(
            facts.Database(
                server_id=d.server_id,
                server_name=d.server.name if d.server else "",
                name=d.name,
                storage_group=d.storage_group,
                circular_logging=d.circular_logging_enabled,
                last_full_backup=d.last_full_backup,
            )
            for d in databases
        ),
        databases_imported=bool(databases),
        vdir_changes=_vdir_changes(servers),
        hygiene=tuple(
            facts.Hygiene(
                check=c.check,
                count=c.count,
                mailboxes=c.mailboxes,
                detail=c.detail,
                link=c.link,
            )
            for c in hygiene_counts(mailbox_ids=mailbox_ids, target=target, batch=batch)
        ),
        expiry_warning_days=settings.READINESS_EXPIRY_WARNING_DAYS,
        links={
            "probes": reverse("devices:endpoint_probes"),
            "domains": reverse("devices:organisation"),
            "databases": reverse("devices:import_list"),
            "imports": reverse("devices:import_list"),
        },
    )


def organisation_findings() -> list[Finding]:
    return run_checks(readiness_inventory())


def _batch_servers(batch: MoveBatch, inventory: facts.Inventory) -> set[int]:
    """The servers a batch's phones go through: the members' sources, the target, and the
    client-access servers of their forests (the namespaces phones use are published there)."""
    sources = set(
        BatchMailbox.objects.filter(batch=batch, is_active=True)
        .exclude(source_server_id=None)
        .values_list("source_server_id", flat=True)
        .distinct()
    )
    involved = sources | {batch.target_server_id}
    forests = {s.forest for s in inventory.servers if s.id in involved}
    fronts = {
        s.id
        for s in inventory.servers
        if s.serves_client_access and (s.forest in forests or not s.forest or "" in forests)
    }
    return involved | fronts


def batch_findings(batch: MoveBatch) -> list[Finding]:
    """The findings that concern the batch, blocking first: those about its servers or the
    host names they publish, those about no server in particular (the organisation's domains),
    and the hygiene of its own members against its target."""
    member_ids = list(
        BatchMailbox.objects.filter(batch=batch, is_active=True).values_list(
            "mailbox_id", flat=True
        )
    )
    inventory = readiness_inventory(mailbox_ids=member_ids, target=batch.target_server, batch=batch)
    servers = _batch_servers(batch, inventory)
    # An endpoint phones are recorded to use, or one tied to no known server (a namespace
    # without servers, a URL an admin added), may be any batch's: it concerns each of them.
    hosts = {
        e.host for e in inventory.endpoints if e.servers & servers or e.devices_use or not e.servers
    }
    return [
        f
        for f in run_checks(inventory)
        if (not f.servers and not f.hosts) or f.servers & servers or f.hosts & hosts
    ]


def unacknowledged_blocking(batch: MoveBatch, findings: list[Finding]) -> list[Finding]:
    """Blocking findings no admin acknowledged as they read now (a changed finding counts as
    new)."""
    acknowledged = set(
        FindingAcknowledgement.objects.filter(batch=batch).values_list("digest", flat=True)
    )
    return [f for f in findings if f.result is Result.BLOCKING and f.digest not in acknowledged]


def acknowledgements(batch: MoveBatch) -> dict[str, FindingAcknowledgement]:
    return {
        a.digest: a
        for a in FindingAcknowledgement.objects.filter(batch=batch).select_related(
            "acknowledged_by"
        )
    }
