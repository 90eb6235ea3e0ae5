"""Comparing targets (issue 17): a batch's comparison page, "Use this target" on a draft, the
comparison on the new-batch form, and the waves of an organisation-wide migration. The counting
lives in compare.py and waves.py; these views only read the request and show the answer."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from devices.models import Mailbox
from exsync.roles import can_schedule

from . import compare, services
from .forms import (
    BatchForm,
    CompareForm,
    RetargetForm,
    TargetChoiceField,
    WavesForm,
    mailboxes_filtered,
)
from .mailbox_csv import CsvProblem, mailboxes_from_csv
from .models import BatchState, MoveBatch
from .waves import wave_mailboxes, waves_suggest


@require_safe
def batch_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Every possible target for the batch's pending mailboxes, and the prerequisites of its
    target (or of ?target=, to see what another one would take). Helpdesk reads it too."""
    batch = get_object_or_404(MoveBatch.objects.select_related("target_server"), pk=pk)
    plan = compare.batch_target_plan(batch=batch, chosen=request.GET.get("target") or None)
    return render(
        request,
        "migrations_plan/batch_compare.html",
        {
            "batch": batch,
            "plan": plan,
            "outcomes": compare.OUTCOMES,
            "can_retarget": batch.state == BatchState.DRAFT,
            "can_use": batch.state == BatchState.DRAFT and can_schedule(request.user),
        },
    )


@require_POST
def batch_retarget(request: HttpRequest, pk: int) -> HttpResponse:
    """Use another target for a draft batch: an Exchange admin only; re-planned in the worker."""
    if not can_schedule(request.user):
        return render(
            request, "403.html", {"reason": "Only Exchange admins may change batches."}, status=403
        )
    batch = get_object_or_404(MoveBatch, pk=pk)
    form = RetargetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the targets listed.")
        return redirect("migrations_plan:batch_compare", pk=pk)
    target = form.cleaned_data["target"]
    try:
        batch = services.batch_retarget(
            batch=batch,
            target_server=target,
            actor=request.user,
            allow_unsupported=bool(request.POST.get("allow_unsupported")),
        )
    except services.BatchError as error:
        messages.error(request, str(error))
        return redirect("migrations_plan:batch_compare", pk=pk)
    messages.success(
        request,
        f"Batch '{batch.name}' now moves to {target.name}; its impact is being planned again.",
    )
    return redirect("migrations_plan:batch_detail", pk=pk)


def new_batch_compare(request: HttpRequest) -> HttpResponse:
    """The new-batch form, posted with "Compare targets" or a "Use this target" button: the
    comparison for the mailboxes it chooses, and the form again (nothing created), with the
    target picked when one was."""
    picked = request.POST.get("use_target", "")
    initial = {name: request.POST.get(name, "") for name in BatchForm.base_fields}
    initial["device_outcomes"] = request.POST.getlist("device_outcomes")
    initial["notify_unaffected"] = bool(request.POST.get("notify_unaffected"))
    initial["allow_unsupported"] = bool(request.POST.get("allow_unsupported"))
    if picked:
        initial["target_server"] = picked
    selection = CompareForm(request.POST, request.FILES)
    plan, problems = None, []
    if selection.is_valid():
        data = selection.cleaned_data
        try:
            mailboxes = _chosen(data)
        except CsvProblem as problem:
            problems = problem.lines[:30]
        else:
            start: datetime | None = data.get("start_at")
            policy = data.get("target_policy")
            plan = compare.target_plan(
                mailboxes=mailboxes,
                move_date=timezone.localdate(start) if start else timezone.localdate(),
                move_kind=data.get("move_kind") or "",
                target_policy_id=policy.pk if policy else None,
                chosen=picked or request.POST.get("target_server") or None,
            )
    else:
        problems = [e for errors in selection.errors.values() for e in errors]
    return render(
        request,
        "migrations_plan/batch_form.html",
        {
            "form": BatchForm(initial=initial),
            "plan": plan,
            "outcomes": compare.OUTCOMES,
            "can_use": True,
            "compare_problems": problems,
            "picked": picked,
        },
    )


def _chosen(data: dict) -> QuerySet[Mailbox]:
    if data.get("mailboxes_csv"):
        ids = [m.pk for m in mailboxes_from_csv(data["mailboxes_csv"])]
        return Mailbox.objects.filter(pk__in=ids)
    return mailboxes_filtered(data)


@require_safe
def waves(request: HttpRequest) -> HttpResponse:
    """An organisation-wide migration to one target, in suggested waves (one per source
    server), with what to do before each; helpdesk reads it, an admin creates the drafts."""
    form = WavesForm(request.GET or None)
    plan = None
    if form.is_valid():
        data = form.cleaned_data
        plan = waves_suggest(target=data["target"], move_date=timezone.localdate(data["start_at"]))
    return render(
        request,
        "migrations_plan/waves.html",
        {"form": form, "plan": plan, "outcomes": compare.OUTCOMES},
    )


@require_POST
def waves_create(request: HttpRequest) -> HttpResponse:
    """Draft batches from the suggestion, for the waves the admin kept ticked."""
    if not can_schedule(request.user):
        return render(
            request, "403.html", {"reason": "Only Exchange admins may change batches."}, status=403
        )
    form = WavesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The waves were not created: " + form.errors.as_text())
        return redirect("migrations_plan:waves")
    data = form.cleaned_data
    target = TargetChoiceField().clean(data["target"])  # Exchange Online gets its row now
    plan = waves_suggest(target=str(target.pk), move_date=timezone.localdate(data["start_at"]))
    kept = {int(pk) for pk in request.POST.getlist("server") if pk.isdigit()}
    mailboxes = wave_mailboxes(target_id=target.pk)
    chosen = [
        (wave.server, list(mailboxes.filter(server_id=wave.server_id)))
        for wave in plan.creatable
        if wave.server_id in kept
    ]
    try:
        created = services.batches_create_waves(
            target_server=target,
            waves=chosen,
            start_at=data["start_at"],
            days_between=data["days_between"],
            name_prefix=data["name_prefix"],
            actor=request.user,
        )
    except services.BatchError as error:
        messages.error(request, str(error))
        return redirect(f"{reverse('migrations_plan:waves')}?{request.POST.urlencode()}")
    messages.success(
        request,
        f"{len(created)} draft batch{'es' if len(created) != 1 else ''} created, one per wave; "
        "each is being planned. Review them, then schedule.",
    )
    return redirect("migrations_plan:batch_list")
