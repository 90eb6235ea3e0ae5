"""Project-wide pages: the dashboard and the outbox of e-mails exsync has sent."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from devices import selectors as inventory
from migrations_plan.models import OutboxMessage

from .models import Heartbeat


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard.html",
        {
            "counts": inventory.inventory_counts(),
            "servers": inventory.server_list(),
            "heartbeat": Heartbeat.objects.filter(name="worker").first(),
        },
    )


def outbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(OutboxMessage.objects.only("id", "to", "subject", "sent_at"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "outbox/list.html", {"page": page})


def outbox_message(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(OutboxMessage, pk=pk)
    return render(request, "outbox/detail.html", {"message": message})
