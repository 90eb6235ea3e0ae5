"""Reads of the inventory for pages and services; no writes here."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Count, F, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from .models import (
    EXCHANGE_ONLINE_FOREST,
    ClientProfile,
    ExchangeServer,
    FactChange,
    Generation,
    Mailbox,
    MobileDevice,
    MobileDevicePolicy,
    Namespace,
    Organisation,
    OwaBackupConfirmation,
    Partnership,
)


def inventory_counts() -> dict[str, int]:
    return {
        "servers": ExchangeServer.objects.count(),
        "mailboxes": Mailbox.objects.count(),
        "devices": MobileDevice.objects.count(),
        "partnerships": Partnership.objects.filter(is_stale=False).count(),
    }


def server_list() -> list[ExchangeServer]:
    """Servers with their mailbox and partnership counts, in two joins not one query per row."""
    mailbox_counts = ExchangeServer.objects.annotate(n=Count("mailboxes")).values_list("pk", "n")
    partnership_counts = dict(
        Partnership.objects.filter(is_stale=False, mailbox__server__isnull=False)
        .values_list("mailbox__server")
        .annotate(n=Count("pk"))
        .values_list("mailbox__server", "n")
    )
    mailboxes = dict(mailbox_counts)
    servers = list(ExchangeServer.objects.order_by("name"))
    for server in servers:
        server.mailbox_count = mailboxes.get(server.pk, 0)
        server.partnership_count = partnership_counts.get(server.pk, 0)
    return servers


def server_detail(*, pk: int) -> ExchangeServer:
    return ExchangeServer.objects.annotate(mailbox_count=Count("mailboxes")).get(pk=pk)


def inventory_summary() -> dict[str, object]:
    """The figures `inventory_summary --json` prints; a fixed number of aggregate queries."""
    from .models import MoveRequest

    mailboxes_per_server = dict(
        ExchangeServer.objects.annotate(n=Count("mailboxes"))
        .order_by("name")
        .values_list("name", "n")
    )
    per_server = dict(
        Partnership.objects.filter(mailbox__server__isnull=False)
        .values_list("mailbox__server__name")
        .annotate(n=Count("pk"))
        .values_list("mailbox__server__name", "n")
    )
    return {
        "servers": ExchangeServer.objects.count(),
        "mailboxes": Mailbox.objects.count(),
        "devices": MobileDevice.objects.count(),
        # Stale partnerships (absent from the newest full export) are kept and counted here.
        "partnerships": Partnership.objects.count(),
        "move_requests": MoveRequest.objects.count(),
        "mailboxes_per_server": mailboxes_per_server,
        "partnerships_per_server": {name: per_server.get(name, 0) for name in mailboxes_per_server},
        # Partnerships are always linked to a mailbox (the import refuses unknown ones).
        "partnerships_without_mailbox": Partnership.objects.filter(mailbox__isnull=True).count(),
        "mailboxes_without_server": Mailbox.objects.filter(server__isnull=True).count(),
        "stale_partnerships": Partnership.objects.filter(is_stale=True).count(),
    }


def import_list() -> QuerySet:
    from .models import InventoryImport

    return InventoryImport.objects.select_related("created_by").defer("warnings", "options")


def subject_of(instance: Organisation | ExchangeServer | Namespace | ClientProfile) -> str:
    """How the fact history names a row: "Server EX2010A", "Namespace mail.contoso.com"."""
    if isinstance(instance, Organisation):
        return f"Organisation {instance.forest}"
    if isinstance(instance, ExchangeServer):
        return f"Server {instance.name}"
    if isinstance(instance, Namespace):
        return f"Namespace {instance.host}"
    if isinstance(instance, ClientProfile):
        return f"Client profile {instance.name}"
    raise TypeError(f"No fact history for {type(instance).__name__}")


def fact_history(*, subject: str | None = None) -> QuerySet[FactChange]:
    """Recorded fact changes, newest first; of one subject when given."""
    changes = FactChange.objects.select_related("actor").order_by("-at", "-id")
    return changes.filter(subject=subject) if subject is not None else changes


# The settings a re-created ActiveSync directory loses (its URLs and authentication): field of
# ExchangeServer -> the fact name of the FactChange rows a Get-ActiveSyncVirtualDirectory
# re-import writes (devices/writers.py write_vdirs).
VDIR_FACTS = {
    "eas_external_url": "ExternalUrl",
    "eas_internal_url": "InternalUrl",
    "iwa_enabled": "IWA on Microsoft-Server-ActiveSync",
    "basic_auth_enabled": "Basic authentication",
}


def vdir_changes(since: datetime | None = None, *, newest_only: bool = False) -> list[FactChange]:
    """What re-imports of Get-ActiveSyncVirtualDirectory changed, newest first, in one query;
    only changes at or after `since` when given; with `newest_only`, only the newest change of
    each server and setting (what holds now; a window function, bounded by servers, not by
    history).

    Each row: `subject` "Server <name>" (as subject_of prints it, the server's name as
    Exchange prints it), `fact` one of "ExternalUrl", "InternalUrl",
    "IWA on Microsoft-Server-ActiveSync" (WindowsAuthEnabled) and "Basic authentication"
    (BasicAuthEnabled), `old_value` / `new_value` as the export printed them: the URL, "True"
    or "False", and "" for an empty cell (a lost URL reads old "https://…", new ""); `via`
    "import", `actor` the importing user (None from the CLI), `at` when it was imported.
    Only a value that was known before is recorded as changed: the first import of a
    directory (or an authentication setting nobody had recorded) writes no row. Changes an
    admin records by hand on the server page (via "web") are not included.
    """
    changes = FactChange.objects.filter(
        via="import", subject__startswith="Server ", fact__in=list(VDIR_FACTS.values())
    )
    if since is not None:
        changes = changes.filter(at__gte=since)
    if newest_only:
        changes = changes.annotate(
            newest=Window(
                RowNumber(),
                partition_by=[F("subject"), F("fact")],
                order_by=[F("at").desc(), F("pk").desc()],
            )
        ).filter(newest=1)
    return list(changes.select_related("actor").order_by("-at", "-id"))


def owa_backups(*, server: ExchangeServer) -> list[OwaBackupConfirmation]:
    """The OWA-backup confirmations of a server (check O-UR-OWA), newest first (the last 50),
    with who confirmed each."""
    return list(
        OwaBackupConfirmation.objects.filter(server=server)
        .select_related("confirmed_by")
        .order_by("-confirmed_at", "-id")[:50]
    )


def hybrid_server_choices(*, organisation: Organisation) -> QuerySet[ExchangeServer]:
    """The servers that can be an organisation's hybrid server: its own on-premises servers
    (by their effective forest: the one an admin declared, else the exports')."""
    if organisation.is_exchange_online:
        return ExchangeServer.objects.none()
    forest = organisation.forest.strip().lower()
    return (
        ExchangeServer.objects.exclude(generation=Generation.EXO)
        .filter(Q(forest_recorded__iexact=forest) | Q(forest_recorded="", forest__iexact=forest))
        .order_by("name")
    )


def organisation_page() -> dict[str, object]:
    """Organisations with their policies, device access rules and servers, namespaces with the
    servers answering them, client profiles and every server: eight queries however many rows
    there are."""
    servers = list(ExchangeServer.objects.order_by("name"))
    organisations = list(
        Organisation.objects.select_related("hybrid_server").prefetch_related(
            Prefetch("policies", queryset=MobileDevicePolicy.objects.order_by("name")),
            "accepted_domains",
            "device_access_rules",
        )
    )
    by_forest: dict[str, list[ExchangeServer]] = defaultdict(list)
    for server in servers:
        by_forest[server.effective_forest].append(server)
    recorded = set()
    for organisation in organisations:
        key = EXCHANGE_ONLINE_FOREST if organisation.is_exchange_online else organisation.forest
        organisation.server_list = by_forest.get(key.strip().lower(), [])
        recorded.add(key.strip().lower())
    namespaces = list(
        Namespace.objects.prefetch_related(
            Prefetch("servers", queryset=ExchangeServer.objects.order_by("name"))
        )
    )
    return {
        "organisations": organisations,
        "policies_without_organisation": list(
            MobileDevicePolicy.objects.filter(organisation__isnull=True).order_by("name")
        ),
        "namespaces": namespaces,
        "namespaces_used": any(n.devices_use for n in namespaces),
        "client_profiles": list(ClientProfile.objects.order_by("name")),
        "servers": servers,
        # Forests the servers show that no organisation row stands for (yet).
        "servers_without_organisation": [s for s in servers if s.effective_forest not in recorded],
    }
