"""Project-wide pages: the dashboard, the outbox of e-mails exsync has sent, the lockout page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from devices import selectors as inventory
from migrations_plan import selectors as plans
from migrations_plan.models import OutboxMessage

from .mail_policy import MAIL_CSP
from .models import Heartbeat
from .roles import can_schedule

RECENT_IMPORTS = 5


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    """The start page of both roles: the search box, the batches coming up with the people who
    must act, the last imports, whether the worker runs, the inventory. Fixed query count."""
    imports = inventory.import_list().only(
        "group",
        "filename",
        "kind",
        "state",
        "dry_run",
        "source",
        "created_at",
        "created_by__username",
    )
    return render(
        request,
        "dashboard.html",
        {
            "batches": plans.batches_ahead(),
            "imports": imports[:RECENT_IMPORTS],
            "heartbeat": Heartbeat.objects.filter(name="worker").first(),
            "counts": inventory.inventory_counts(),
            "servers": inventory.server_list(),
            "notice_health": plans.notice_health() if can_schedule(request.user) else None,
        },
    )


def exchange_admins_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The outbox holds every user's notices: helpdesk gets a 403 (a person's page shows theirs)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_schedule(request.user):
            reason = (
                "The e-mail outbox is for Exchange admins. A person's page shows the notices "
                "sent to them."
            )
            return render(request, "403.html", {"reason": reason}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


@require_safe
@exchange_admins_only
def outbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(OutboxMessage.objects.only("id", "to", "subject", "sent_at"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "outbox/list.html", {"page": page})


@require_safe
@exchange_admins_only
def outbox_message(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(OutboxMessage, pk=pk)
    response = render(request, "outbox/detail.html", {"message": message})
    # The sandboxed frame of the HTML part inherits it: no script, nothing from elsewhere.
    response["Content-Security-Policy"] = MAIL_CSP
    return response


@require_safe
@exchange_admins_only
def outbox_attachment(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """A kept attachment, downloaded as a file (never shown inline: it came with the mail)."""
    message = get_object_or_404(OutboxMessage, pk=pk)
    if index >= len(message.attachments) or message.attachments[index].get("content") is None:
        raise Http404("No such attachment kept.")
    kept = message.attachments[index]
    response = HttpResponse(kept["content"], content_type="application/octet-stream")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in kept["name"]) or "attachment"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The login page again, saying why: django-axes answers with it (429) while the user name
    is locked at this address (settings.AXES_LOCKOUT_CALLABLE)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    messages.error(
        request,
        f"Too many failed log-ins: this user name is locked for {minutes} minutes from your "
        "address. Try again later, or ask an Exchange admin to unlock it.",
    )
    context = {"form": AuthenticationForm(request), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
