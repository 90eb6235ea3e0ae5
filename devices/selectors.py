"""Reads of the inventory for pages and services; no writes here."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import ExchangeServer, Mailbox, MobileDevice, Partnership


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
