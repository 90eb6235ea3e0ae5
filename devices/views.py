"""Inventory pages: servers and their endpoints, importing exports."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import selectors
from .forms import ImportUploadForm, ServerFactsForm
from .models import ExchangeServer, InventoryImport
from .services import import_record_create, server_record_facts
from .tasks import inventory_import_group


def server_list(request: HttpRequest) -> HttpResponse:
    return render(request, "devices/server_list.html", {"servers": selectors.server_list()})


def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        server = selectors.server_detail(pk=pk)
    except ExchangeServer.DoesNotExist as exc:
        raise Http404("No such server") from exc
    form = ServerFactsForm(instance=server)
    return render(request, "devices/server_detail.html", {"server": server, "form": form})


@require_POST
@permission_required("devices.change_exchangeserver", raise_exception=True)
def server_facts(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        server = selectors.server_detail(pk=pk)
    except ExchangeServer.DoesNotExist as exc:
        raise Http404("No such server") from exc
    form = ServerFactsForm(request.POST, instance=server)
    if not form.is_valid():
        return render(
            request, "devices/server_detail.html", {"server": server, "form": form}, status=400
        )
    server_record_facts(
        server=server,
        iwa_enabled=form.cleaned_data["iwa_enabled"],
        exsetup_version=form.cleaned_data["exsetup_version"],
    )
    messages.success(request, f"Recorded the facts of {server.name}.")
    return redirect("devices:server_detail", pk=pk)


def import_list(request: HttpRequest) -> HttpResponse:
    can_import = request.user.has_perm("devices.add_inventoryimport")
    form = ImportUploadForm()
    if request.method == "POST":
        if not can_import:
            raise PermissionDenied("Only Exchange admins may import inventory.")
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            group = uuid.uuid4()
            options = {
                k: form.cleaned_data[k]
                for k in ("delimiter", "culture", "encoding", "timezone", "server")
            }
            with transaction.atomic():
                for upload in form.cleaned_data["files"]:
                    import_record_create(
                        upload=upload,
                        filename=upload.name,
                        group=group,
                        actor=request.user,
                        source="web",
                        dry_run=form.cleaned_data["dry_run"],
                        full_export=form.cleaned_data["full_export"],
                        options=options,
                    )
                transaction.on_commit(lambda: inventory_import_group.delay(str(group)))
            messages.info(request, "Upload received; the import runs in the background.")
            return redirect("devices:import_group", group=group)
    page = Paginator(selectors.import_list(), 25).get_page(request.GET.get("page"))
    return render(
        request, "devices/import_list.html", {"page": page, "form": form, "can_import": can_import}
    )


def import_group(request: HttpRequest, group: uuid.UUID) -> HttpResponse:
    records = list(
        InventoryImport.objects.filter(group=group).select_related("created_by").order_by("id")
    )
    if not records:
        raise Http404("No such import")
    running = any(not r.is_finished for r in records)
    return render(
        request,
        "devices/import_group.html",
        {"records": records, "running": running, "group": group},
    )
