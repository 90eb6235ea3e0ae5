"""Readiness pages: the organisation's findings, a batch's panel, and acknowledging a
blocking finding before scheduling (issue 15). The checks live in readiness/ (pure) and their
facts in readiness_inventory.py; this module only shows them and takes the admin's word."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from exsync.roles import can_schedule

from . import readiness_inventory, services
from .models import BatchState, MoveBatch
from .readiness.findings import Result

RESULTS = [r.value for r in Result]


@require_safe
def organisation_readiness(request: HttpRequest) -> HttpResponse:
    """Every check over the whole organisation, blocking first; filter by result or check."""
    findings = readiness_inventory.organisation_findings()
    counts = Counter(f.result.value for f in findings)
    checks = sorted({f.check for f in findings})
    wanted_result = request.GET.get("result", "")
    wanted_check = request.GET.get("check", "")
    shown = [
        f
        for f in findings
        if (not wanted_result or f.result.value == wanted_result)
        and (not wanted_check or f.check == wanted_check)
    ]
    return render(
        request,
        "migrations_plan/readiness.html",
        {
            "findings": shown,
            "counts": [(r, counts.get(r, 0)) for r in RESULTS],
            "checks": checks,
            "wanted_result": wanted_result,
            "wanted_check": wanted_check,
        },
    )


def readiness_panel(request: HttpRequest, *, batch: MoveBatch) -> dict[str, object]:
    """Context of _readiness_panel.html on the batch page."""
    if batch.state not in (BatchState.DRAFT, BatchState.SCHEDULED):
        return {"readiness": None}
    findings = readiness_inventory.batch_findings(batch)
    acknowledged = readiness_inventory.acknowledgements(batch)
    rows = [(f, acknowledged.get(f.digest)) for f in findings if f.result is not Result.OK]
    return {
        "readiness": {
            "rows": rows,
            "ok": sum(1 for f in findings if f.result is Result.OK),
            "blocking_open": sum(
                1 for f, ack in rows if f.result is Result.BLOCKING and ack is None
            ),
            "can_acknowledge": can_schedule(request.user),
        }
    }


@require_POST
def batch_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin acknowledges the chosen blocking findings (with why); audited."""
    if not can_schedule(request.user):
        return render(
            request, "403.html", {"reason": "Only Exchange admins may change batches."}, status=403
        )
    batch = get_object_or_404(MoveBatch, pk=pk)
    try:
        made = services.findings_acknowledge(
            batch=batch,
            digests=request.POST.getlist("finding"),
            note=request.POST.get("note", ""),
            actor=request.user,
        )
    except services.BatchError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"{made} blocking finding(s) acknowledged; the batch can be scheduled once none is "
            "left open."
            if made
            else "Those findings were acknowledged already.",
        )
    return redirect(f"{reverse('migrations_plan:batch_detail', args=[batch.pk])}#readiness")
