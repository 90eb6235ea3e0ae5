"""Inventory pages: servers and their endpoints, importing exports, facts people record."""

from __future__ import annotations

import copy
import itertools
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from . import selectors
from .forms import (
    AcceptedDomainSharedForm,
    ClientProfileForm,
    ImportMappingForm,
    ImportUploadForm,
    NamespaceForm,
    OrganisationFactsForm,
    OwaBackupForm,
    ServerFactsForm,
)
from .importers import CsvFile
from .importers.problems import Findings
from .models import (
    AcceptedDomain,
    ClientProfile,
    ExchangeServer,
    ImportState,
    InventoryImport,
    Namespace,
    Organisation,
)
from .profiles import import_profile_save
from .services import (
    accepted_domain_record_shared,
    client_profile_delete,
    client_profile_save,
    import_file_path,
    import_progress,
    import_record_create,
    inventory_import_confirm_stale,
    namespace_delete,
    namespace_save,
    organisation_record_facts,
    owa_backup_confirm,
    server_record_facts,
)
from .tasks import inventory_import_group


@require_safe
def server_list(request: HttpRequest) -> HttpResponse:
    return render(request, "devices/server_list.html", {"servers": selectors.server_list()})


def _submitted(form: Form, data: QueryDict) -> dict[str, object]:
    """The fields this admin changed (against the values the page showed them): a field left
    out of the POST, or left as it was shown, is not written."""
    return {
        name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data
    }


def _stored(instance, field: str) -> object:
    value = getattr(instance, field)
    return list(value.all()) if hasattr(value, "all") else value


def _saved_message(request: HttpRequest, form: Form, what: str) -> None:
    if form.has_changed():
        messages.success(
            request,
            f"Recorded the facts of {what}. Active batches are being planned again; their pages "
            "show the progress.",
        )
    else:
        messages.info(request, f"Nothing changed for {what}: nothing was recorded.")


def _server_or_404(pk: int) -> ExchangeServer:
    try:
        return selectors.server_detail(pk=pk)
    except ExchangeServer.DoesNotExist as exc:
        raise Http404("No such server") from exc


def _server_page(
    request: HttpRequest,
    server: ExchangeServer,
    form: ServerFactsForm,
    status: int = 200,
    owa_form: OwaBackupForm | None = None,
) -> HttpResponse:
    history = Paginator(selectors.fact_history(subject=selectors.subject_of(server)), 20)
    context = {
        "server": server,
        "form": form,
        "history": history.get_page(request.GET.get("page")),
        "owa_form": owa_form or OwaBackupForm(),
        "owa_backups": selectors.owa_backups(server=server),
    }
    return render(request, "devices/server_detail.html", context, status=status)


@require_safe
def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    server = _server_or_404(pk)
    # The form edits a copy: a bound ModelForm writes into its instance while validating.
    return _server_page(request, server, ServerFactsForm(instance=copy.copy(server)))


@require_POST
@permission_required("devices.change_exchangeserver", raise_exception=True)
def server_facts(request: HttpRequest, pk: int) -> HttpResponse:
    server = _server_or_404(pk)
    form = ServerFactsForm(request.POST, instance=copy.copy(server))
    if not form.is_valid():
        return _server_page(request, server, form, status=400)
    server_record_facts(server=server, actor=request.user, **_submitted(form, request.POST))
    _saved_message(request, form, server.name)
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
                for k in ("delimiter", "culture", "encoding", "timezone", "server", "organisation")
            }
            if form.cleaned_data["partial"]:
                options["partial"] = True  # organisation-wide exports and logs: as --partial
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


@require_POST
def import_confirm_stale(request: HttpRequest, group: uuid.UUID) -> HttpResponse:
    """The "Confirm and mark them stale" button: the files of an upload held back because they
    would mark too many partnerships stale are queued again, once however often it is pressed."""
    if not request.user.has_perm("devices.add_inventoryimport"):
        raise PermissionDenied("Only Exchange admins may import inventory.")
    new_group, queued = inventory_import_confirm_stale(group=group, actor=request.user)
    if new_group is None:
        messages.info(request, "Nothing in this import waits for a confirmation.")
        return redirect("devices:import_group", group=group)
    if queued:
        transaction.on_commit(lambda: inventory_import_group.delay(str(new_group)))
        messages.info(request, "Confirmed; the import runs again and marks them stale.")
    else:
        messages.info(request, "Already confirmed: this is the import that followed.")
    return redirect("devices:import_group", group=new_group)


@require_safe
def import_group(request: HttpRequest, group: uuid.UUID) -> HttpResponse:
    records = list(
        InventoryImport.objects.filter(group=group).select_related("created_by").order_by("id")
    )
    if not records:
        raise Http404("No such import")
    running = any(not r.is_finished for r in records)
    import_progress(records)
    return render(
        request,
        "devices/import_group.html",
        {
            "records": records,
            "running": running,
            "group": group,
            "can_import": request.user.has_perm("devices.add_inventoryimport"),
            "stale_confirm_share": settings.STALE_CONFIRM_SHARE,
        },
    )


@require_safe
def organisation(request: HttpRequest) -> HttpResponse:
    """Every fact the planner reads that an export may not carry, and who changed which."""
    history = Paginator(selectors.fact_history(), 25).get_page(request.GET.get("page"))
    context = {**selectors.organisation_page(), "history": history}
    return render(request, "devices/organisation.html", context)


def _back_to(anchor: str) -> HttpResponse:
    return redirect(f"{reverse('devices:organisation')}#{anchor}")


@permission_required("devices.change_organisation", raise_exception=True)
def organisation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    data = request.POST if request.method == "POST" else None
    form = OrganisationFactsForm(data, instance=copy.copy(organisation))
    if form.is_valid():
        organisation_record_facts(
            organisation=organisation, actor=request.user, **_submitted(form, request.POST)
        )
        _saved_message(request, form, organisation.forest)
        return _back_to(f"org-{pk}")
    return render(
        request,
        "devices/organisation_form.html",
        {"organisation": organisation, "form": form},
        status=400 if form.is_bound else 200,
    )


def _edit(
    request: HttpRequest,
    *,
    model: type,
    pk: int | None,
    form_class: type,
    save,
    label: str,
    template: str,
    anchor: str,
    context_name: str,
) -> HttpResponse:
    """Add (no pk) or change one row through its service; admins only."""
    action = "add" if pk is None else "change"
    if not request.user.has_perm(f"devices.{action}_{model._meta.model_name}"):
        raise PermissionDenied(
            f"Only Exchange admins may change {model._meta.verbose_name_plural}."
        )
    instance = None if pk is None else get_object_or_404(model, pk=pk)
    data = request.POST if request.method == "POST" else None
    form = form_class(data, instance=copy.copy(instance) if instance else None)
    if form.is_valid():
        # A new row takes every field; an existing one only what this admin changed (the
        # others as stored now, which the service then leaves alone).
        stored = model.objects.get(pk=instance.pk) if instance is not None else None
        changed = set(form.changed_data) if stored is not None else set(form_class.Meta.fields)
        values = {
            field: form.cleaned_data[field] if field in changed else _stored(stored, field)
            for field in form_class.Meta.fields
        }
        saved = save(instance, actor=request.user, **values)
        _saved_message(request, form, getattr(saved, label))
        return _back_to(anchor)
    return render(
        request,
        template,
        {
            model._meta.model_name: instance,
            "profile": instance,
            "namespace": instance,
            "form": form,
        },
        status=400 if form.is_bound else 200,
    )


def namespace_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a namespace (no pk) or change one."""
    return _edit(
        request,
        model=Namespace,
        pk=pk,
        form_class=NamespaceForm,
        save=lambda instance, **kw: namespace_save(namespace=instance, **kw),
        label="host",
        template="devices/namespace_form.html",
        anchor="namespaces",
        context_name="namespace",
    )


@require_POST
@permission_required("devices.delete_namespace", raise_exception=True)
def namespace_remove(request: HttpRequest, pk: int) -> HttpResponse:
    namespace = get_object_or_404(Namespace, pk=pk)
    namespace_delete(namespace=namespace, actor=request.user)
    messages.success(request, f"Deleted the namespace {namespace.host}.")
    return _back_to("namespaces")


def client_profile_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a client profile (no pk) or change one."""
    return _edit(
        request,
        model=ClientProfile,
        pk=pk,
        form_class=ClientProfileForm,
        save=lambda instance, **kw: client_profile_save(profile=instance, **kw),
        label="name",
        template="devices/client_profile_form.html",
        anchor="client-profiles",
        context_name="profile",
    )


@require_POST
@permission_required("devices.delete_clientprofile", raise_exception=True)
def client_profile_remove(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(ClientProfile, pk=pk)
    client_profile_delete(profile=profile, actor=request.user)
    messages.success(request, f"Deleted the client profile {profile.name}.")
    return _back_to("client-profiles")


# -- readiness facts (issue 15) --------------------------------------------------------------------


@require_POST
@permission_required("devices.change_exchangeserver", raise_exception=True)
def server_owa_backup(request: HttpRequest, pk: int) -> HttpResponse:
    """O-UR-OWA: an admin ticks that the OWA customisations were backed up before an update."""
    server = _server_or_404(pk)
    form = OwaBackupForm(request.POST)
    if not form.is_valid():
        blank = ServerFactsForm(instance=copy.copy(server))
        return _server_page(request, server, blank, status=400, owa_form=form)
    before = selectors.owa_backups(server=server)
    confirmation = owa_backup_confirm(
        server=server,
        update=form.cleaned_data["update"],
        note=form.cleaned_data["note"],
        actor=request.user,
    )
    if any(c.pk == confirmation.pk for c in before):
        messages.info(request, "That confirmation was already recorded a moment ago.")
    else:
        messages.success(
            request,
            f"Recorded: the OWA customisations of {server.name} were backed up before "
            f"{confirmation.update}.",
        )
    return redirect(f"{reverse('devices:server_detail', args=[pk])}#owa-backup")


@require_POST
@permission_required("devices.change_organisation", raise_exception=True)
def accepted_domain_shared(request: HttpRequest, pk: int) -> HttpResponse:
    """O-SAS: record whether another mail system also receives mail for an accepted domain."""
    domain = get_object_or_404(AcceptedDomain.objects.select_related("organisation"), pk=pk)
    form = AcceptedDomainSharedForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose shared, not shared or unknown.")
        return _back_to(f"org-{domain.organisation_id}-domains")
    before = domain.shared_with_other_system
    accepted_domain_record_shared(
        domain=domain, shared=form.cleaned_data["shared_with_other_system"], actor=request.user
    )
    if before == domain.shared_with_other_system:
        messages.info(request, f"Nothing changed for {domain.domain_name}: nothing was recorded.")
    else:
        messages.success(request, f"Recorded whether {domain.domain_name} is shared.")
    return _back_to(f"org-{domain.organisation_id}-domains")


# -- mapping an export exsync does not recognise (issue 16) ------------------------------------

PREVIEW_ROWS = 5


def _preview(record: InventoryImport) -> tuple[list[str], list[list[str]], list[str]]:
    """The file's header and first rows (untrusted text: the template escapes it), and why
    it cannot be read as CSV at all."""
    path = import_file_path(record)
    problems = Findings(file=record.filename)
    csv_file = CsvFile(
        path,
        filename=record.filename,
        delimiter=record.options.get("delimiter"),
        encoding=record.options.get("encoding"),
    )
    if not csv_file.open(problems, Findings(file=record.filename, warning=True)):
        return [], [], [str(p) for p in problems.as_list()]
    rows = [fields for _, fields in itertools.islice(csv_file.records(problems), PREVIEW_ROWS)]
    return csv_file.header, rows, []


def import_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """A rejected file whose kind exsync could not tell: its first rows, and a form that maps
    its columns onto a device export's; saving makes an import profile and imports again."""
    record = get_object_or_404(InventoryImport, pk=pk)
    if record.kind or record.state != ImportState.REJECTED:
        raise Http404("Only a file exsync did not recognise is mapped")
    header, rows, unreadable = _preview(record)
    can_save = request.user.has_perm("devices.add_inventoryimport")
    form = ImportMappingForm(header=header)
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied("Only Exchange admins may save import profiles.")
        form = ImportMappingForm(request.POST, header=header)
        if form.is_valid() and not unreadable:
            profile = import_profile_save(
                name=form.cleaned_data["name"],
                kind="devices",
                mapping=form.mapping,
                header=header,
                actor=request.user,
            )
            group = uuid.uuid4()
            with transaction.atomic():
                import_record_create(
                    path=import_file_path(record),
                    filename=record.filename,
                    group=group,
                    actor=request.user,
                    source="web",
                    dry_run=record.dry_run,
                    full_export=record.full_export,
                    options={**record.options, "profile": profile.name},
                )
                transaction.on_commit(lambda: inventory_import_group.delay(str(group)))
            messages.info(request, f"Saved the import profile {profile.name}; importing again.")
            return redirect("devices:import_group", group=group)
    context = {
        "record": record,
        "header": header,
        "rows": rows,
        "unreadable": unreadable,
        "form": form,
        "can_save": can_save,
    }
    return render(
        request, "devices/import_mapping.html", context, status=400 if form.errors else 200
    )
