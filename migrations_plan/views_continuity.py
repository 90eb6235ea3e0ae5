"""After the move: the batch page's "After the move" panel, the grace period form, and the
prediction-accuracy page (per rule, over every batch, with each rule's wrong phones).

Both roles read these; only Exchange admins change the grace period. The verdicts are
defined in accuracy.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from exsync.roles import can_schedule

from . import accuracy, selectors, services
from .forms import GraceForm
from .models import MemberState, MoveBatch

PHONES_PER_PAGE = 25


def _judged(page):
    """Each Continuity row of the page gets its verdict (accuracy.verdict) for the template."""
    page.object_list = list(page.object_list)
    for row in page.object_list:
        row.verdict = accuracy.verdict(row.predicted, row.state)
    return page


def after_move_panel(
    request: HttpRequest, *, batch: MoveBatch, membership: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """Context of the batch page's "After the move" panel (three queries, none before a
    member moved) and of its grace period form."""
    context: dict[str, Any] = {
        "after_move": None,
        "grace_form": GraceForm(initial={"grace_hours": batch.grace_hours})
        if can_schedule(request.user) and batch.state != "cancelled"
        else None,
    }
    if not membership.get(MemberState.MOVED, (0, 0))[0]:
        return context
    phones = Paginator(selectors.batch_continuity_phones(batch=batch), PHONES_PER_PAGE)
    query = request.GET.copy()
    query.pop("phones", None)
    context["after_move"] = {
        **selectors.batch_continuity(batch=batch),
        "page": _judged(phones.get_page(request.GET.get("phones"))),
        "querystring": query.urlencode(),
    }
    return context


@require_POST
def batch_grace(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the batch's grace period (services.batch_grace_set re-decides its phones)."""
    if not can_schedule(request.user):
        return render(
            request, "403.html", {"reason": "Only Exchange admins may change batches."}, status=403
        )
    batch = get_object_or_404(MoveBatch, pk=pk)
    form = GraceForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Silent after: {error}")
        return redirect("migrations_plan:batch_detail", pk=pk)
    try:
        before = batch.grace_hours
        batch = services.batch_grace_set(
            batch=batch, grace_hours=form.cleaned_data["grace_hours"], actor=request.user
        )
    except services.BatchError as error:
        messages.error(request, str(error))
    else:
        if batch.grace_hours != before:
            messages.success(
                request,
                f"Phones of '{batch.name}' are silent after {batch.grace_hours} hours without "
                "a sync since the move; they were decided again.",
            )
    return redirect("migrations_plan:batch_detail", pk=pk)


@require_safe
def prediction_accuracy(request: HttpRequest) -> HttpResponse:
    """Per rule: predicted against observed over all batches, the most wrong rule first;
    ?rule=ID lists that rule's wrong phones."""
    rule = (request.GET.get("rule") or "").strip()[:64]
    rules = selectors.rule_accuracy()
    wrong_page = None
    if rule:
        wrong_page = _judged(
            Paginator(selectors.rule_wrong_phones(rule=rule), PHONES_PER_PAGE).get_page(
                request.GET.get("page")
            )
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "migrations_plan/accuracy.html",
        {
            "rules": rules,
            "rule": rule,
            "wrong_page": wrong_page,
            "querystring": query.urlencode(),
            "expected": [
                (accuracy.PREDICTED_TEXT[o], accuracy.OBSERVED_TEXT[s])
                for o, s in accuracy.EXPECTED.items()
            ],
        },
    )
