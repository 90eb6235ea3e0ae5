"""Comparing targets (issue 17): a batch's comparison page, "Use this target" on a draft, the
comparison on the new-batch form, and the waves of an organisation-wide migration. The counting
lives in compare.py and waves.py and runs in the worker (comparisons.py); these views only read
the request, ask for the answer and show it, or that it is on its way."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from devices.models import ExchangeServer
from exsync.roles import can_schedule

from . import compare, comparisons, services
from .forms import (
    BatchForm,
    CompareForm,
    RetargetForm,
    TargetChoiceField,
    WavesForm,
)
from .mailbox_csv import CsvProblem, mailboxes_from_csv
from .models import BatchState, MoveBatch
from .waves import wave_mailboxes


@require_safe
def batch_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Every possible target for the batch's pending mailboxes, and the prerequisites of its
    target (or of ?target=, to see what another one would take). Helpdesk reads it too.
    Computed by the worker: the page says so and reloads itself until the answer is there."""
    batch = get_object_or_404(MoveBatch.objects.select_related("target_server"), pk=pk)
    comparing = comparisons.batch_comparison(
        batch=batch, chosen=_target_choice(request.GET.get("target", ""))
    )
    return render(
        request,
        "migrations_plan/batch_compare.html",
        {
            "batch": batch,
            "comparing": comparing,
            "plan": comparing.document,
            "outcomes": compare.OUTCOMES,
            "can_retarget": batch.state == BatchState.DRAFT,
            "can_use": batch.state == BatchState.DRAFT and can_schedule(request.user),
        },
    )


def _target_choice(value: str) -> str | None:
    """A target choice the comparison offers (a server holding mailboxes, or "exo"); else
    None, so made-up values (helpdesk reads this page) do not each start a comparison."""
    return value if value and compare.target_offered(value) else None


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
    target picked when one was. The worker compares; until it has, the form reloads itself
    as a GET with the comparison's key and its own values (?compare=...)."""
    asked = request.POST if request.method == "POST" else request.GET
    picked = asked.get("use_target", "")
    initial = {name: asked.get(name, "") for name in BatchForm.base_fields}
    initial["device_outcomes"] = asked.getlist("device_outcomes")
    initial["notify_unaffected"] = bool(asked.get("notify_unaffected"))
    initial["allow_unsupported"] = bool(asked.get("allow_unsupported"))
    if picked:
        initial["target_server"] = picked
    comparing, problems = None, []
    if request.method != "POST":
        comparing = comparisons.comparison_by_key(asked.get("compare", ""))
        if comparing is None:
            problems = ["That comparison is no longer kept: compare the targets again."]
    else:
        comparing, problems = _compare_selection(request, picked=picked)
    refresh = ""
    if comparing is not None and not comparing.done:
        again = asked.copy()
        for name in ("csrfmiddlewaretoken", "action", "mailboxes_csv", "compared"):
            again.pop(name, None)
        again["compare"] = comparing.key
        refresh = f"{reverse('migrations_plan:batch_create')}?{again.urlencode()}"
    return render(
        request,
        "migrations_plan/batch_form.html",
        {
            "form": BatchForm(initial=initial),
            "comparing": comparing,
            "plan": comparing.document if comparing else None,
            "refresh_url": refresh,
            "outcomes": compare.OUTCOMES,
            "can_use": True,
            "compare_problems": problems,
            "picked": picked,
        },
    )


def _compare_selection(
    request: HttpRequest, *, picked: str
) -> tuple[comparisons.Comparing | None, list[str]]:
    selection = CompareForm(request.POST, request.FILES)
    if not selection.is_valid():
        return None, [e for errors in selection.errors.values() for e in errors]
    data = selection.cleaned_data
    ids = None
    if data.get("mailboxes_csv"):
        try:
            ids = [m.pk for m in mailboxes_from_csv(data["mailboxes_csv"])]
        except CsvProblem as problem:
            return None, problem.lines[:30]
    elif picked and data.get("compared"):
        # "Use this target" under a comparison: the same mailboxes (a CSV's, which the browser
        # does not send twice); "Compare targets" reads the form's choices afresh instead.
        ids = comparisons.comparison_mailboxes(data["compared"])
        if ids is None and not (
            data.get("source_server")
            or data.get("source_database")
            or data.get("organizational_unit")
        ):
            return None, ["That comparison is no longer kept: compare the targets again."]
    start: datetime | None = data.get("start_at")
    policy = data.get("target_policy")
    server = data.get("source_server")
    comparing = comparisons.selection_comparison(
        mailbox_ids=ids,
        filters={
            "source_server": server.pk if server else None,
            "source_database": data.get("source_database") or "",
            "organizational_unit": data.get("organizational_unit") or "",
        },
        move_date=timezone.localdate(start) if start else timezone.localdate(),
        move_kind=data.get("move_kind") or "",
        target_policy_id=policy.pk if policy else None,
        chosen=_target_choice(picked or request.POST.get("target_server", "")),
    )
    return comparing, []


@require_safe
def waves(request: HttpRequest) -> HttpResponse:
    """An organisation-wide migration to one target, in suggested waves (one per source
    server), with what to do before each; helpdesk reads it, an admin creates the drafts.
    Suggested by the worker, like the comparison of targets."""
    form = WavesForm(request.GET or None)
    comparing = None
    if form.is_valid():
        data = form.cleaned_data
        comparing = comparisons.waves_comparison(
            target=data["target"], move_date=timezone.localdate(data["start_at"])
        )
    return render(
        request,
        "migrations_plan/waves.html",
        {
            "form": form,
            "comparing": comparing,
            "plan": comparing.document if comparing else None,
            "outcomes": compare.OUTCOMES,
        },
    )


@require_POST
def waves_create(request: HttpRequest) -> HttpResponse:
    """Draft batches from the suggestion the page showed, for the waves the admin kept ticked,
    in the suggested order."""
    if not can_schedule(request.user):
        return render(
            request, "403.html", {"reason": "Only Exchange admins may change batches."}, status=403
        )
    form = WavesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The waves were not created: " + form.errors.as_text())
        return redirect("migrations_plan:waves")
    data = form.cleaned_data
    shown = request.POST.copy()
    shown.pop("csrfmiddlewaretoken", None)  # the way back is a GET: no token in an address
    back = f"{reverse('migrations_plan:waves')}?{shown.urlencode()}"
    comparing = comparisons.waves_comparison(
        target=data["target"], move_date=timezone.localdate(data["start_at"])
    )
    if not comparing.done:
        # The inventory or the batches changed since the page was shown: suggest again first.
        messages.error(
            request,
            "The suggestion changed since it was shown; check the waves again, then create.",
        )
        return redirect(back)
    target = TargetChoiceField().clean(data["target"])  # Exchange Online gets its row now
    kept = {int(pk) for pk in request.POST.getlist("server") if pk.isdigit()}
    order = [pk for pk in comparing.document["creatable"] if pk in kept]
    servers = ExchangeServer.objects.in_bulk(order)
    mailboxes = wave_mailboxes(target_id=target.pk)
    chosen = [
        (servers[pk].name, list(mailboxes.filter(server_id=pk))) for pk in order if pk in servers
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
        return redirect(back)
    messages.success(
        request,
        f"{len(created)} draft batch{'es' if len(created) != 1 else ''} created, one per wave; "
        "each is being planned. Review them, then schedule.",
    )
    return redirect("migrations_plan:batch_list")
