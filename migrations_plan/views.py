"""Batch pages: list, create, the impact preview, lifecycle actions, mailboxes, moves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from devices.models import Mailbox
from exsync.roles import can_schedule

from . import selectors, services
from .forms import AddMailboxesForm, BatchForm, PredictionFilterForm
from .mailbox_csv import CsvProblem, mailboxes_from_csv, mailboxes_from_lines
from .models import MoveBatch, PlanState
from .preview import filter_by_outcome
from .views_compare import new_batch_compare
from .views_continuity import after_move_panel
from .views_notices import notices_panel, transition_message
from .views_readiness import readiness_panel


def schedulers_only(view):
    """Only Exchange admins change batches; helpdesk gets a 403, not a silent redirect."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not can_schedule(request.user):
            return render(
                request,
                "403.html",
                {"reason": "Only Exchange admins may change batches."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


PLANNING = (PlanState.QUEUED, PlanState.RUNNING)
PEOPLE_PER_PAGE = 25  # the batch page lists people (each with all their phones), 25 at a time


def _plan_status(batches: Iterable[MoveBatch], *, names: bool) -> dict[str, object]:
    """Context of _plan_status.html: the page reloads itself while a plan is under way."""
    batches = list(batches)
    for batch in batches:
        batch.plan_progress = (
            services.batch_plan_progress(batch_id=batch.pk)
            if batch.plan_state == PlanState.RUNNING
            else None
        )
    return {
        "plan_batches": batches,
        "plan_names": names,
        "plan_refresh": any(b.plan_state in PLANNING for b in batches),
        # Queued longer than this and not started: the worker is probably not running.
        "plan_stale_before": timezone.now() - timedelta(minutes=1),
    }


@require_safe
def batch_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.batch_list(), 25).get_page(request.GET.get("page"))
    planning = [b for b in page.object_list if b.plan_state in (*PLANNING, PlanState.FAILED)]
    return render(
        request,
        "migrations_plan/batch_list.html",
        {
            "page": page,
            "outcomes": selectors.OUTCOME_ORDER,
            **_plan_status(planning, names=True),
        },
    )


@schedulers_only
def batch_create(request: HttpRequest) -> HttpResponse:
    if (
        request.method == "POST"
        and (request.POST.get("action") == "compare" or request.POST.get("use_target"))
    ) or (request.method == "GET" and request.GET.get("compare")):
        return new_batch_compare(request)  # compare targets first: nothing is created
    form = BatchForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("mailboxes_csv"):
                mailboxes = mailboxes_from_csv(data["mailboxes_csv"])
            elif data.get("device_outcomes"):
                mailboxes = filter_by_outcome(
                    form.filtered_mailboxes(),
                    outcomes=data["device_outcomes"],
                    target=data["target_server"],
                    start_at=data["start_at"],
                    move_kind=data.get("move_kind") or "",
                    target_policy_id=data["target_policy"].pk
                    if data.get("target_policy")
                    else None,
                )
            else:
                mailboxes = list(form.filtered_mailboxes())
            if not mailboxes:
                raise CsvProblem(["No mailbox matches those filters."])
            batch = services.batch_create(
                name=data["name"],
                target_server=data["target_server"],
                target_database=data["target_database"],
                start_at=data["start_at"],
                complete_by=data["complete_by"],
                notification_emails=data["notification_emails"],
                notice_leads_minutes=data["notice_leads"],
                notify_unaffected=data["notify_unaffected"],
                mailboxes=mailboxes,
                actor=request.user,
                request_token=data["request_token"],
                plan="queue",
                move_kind=data.get("move_kind") or "",
                target_policy=data.get("target_policy"),
                allow_unsupported=bool(data.get("allow_unsupported")),
            )
            if data.get("grace_hours") and data["grace_hours"] != batch.grace_hours:
                batch = services.batch_grace_set(
                    batch=batch, grace_hours=data["grace_hours"], actor=request.user
                )
        except CsvProblem as problem:
            for line in problem.lines:
                form.add_error(None, line)
        except services.BatchError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"Batch '{batch.name}' created as a draft. Its impact is being planned; review "
                "it here, then schedule it.",
            )
            return redirect("migrations_plan:batch_detail", pk=batch.pk)
    return render(request, "migrations_plan/batch_form.html", {"form": form})


@require_safe
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(
        MoveBatch.objects.select_related("target_server", "target_policy", "created_by"), pk=pk
    )
    # Always bound, worst first unless asked: the sort box then shows the order the page has.
    data = request.GET.copy()
    data.setdefault("sort", "outcome")
    filters = PredictionFilterForm(data)
    filters.is_valid()
    wanted = filters.cleaned_data
    membership = selectors.batch_memberships(batch_ids=[batch.pk])[batch.pk]
    impact = selectors.batch_impact(batch=batch, membership=membership)
    listed = selectors.batch_people(
        batch=batch,
        impact=impact,
        outcome=wanted.get("outcome") or "",
        query=wanted.get("q") or "",
        rule=wanted.get("rule") or "",
        sort=wanted.get("sort") or "outcome",
    )
    page = Paginator(listed, PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
    people = selectors.people_with_phones(member_ids=page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "migrations_plan/batch_detail.html",
        {
            "batch": batch,
            "report": selectors.batch_report(impact=impact, people=people),
            "unsupported": selectors.batch_unsupported_paths(batch=batch),
            "page": page,
            "people": people,
            "filtered": any(wanted.get(f) for f in ("outcome", "q", "rule")),
            "filters": filters,
            "querystring": query.urlencode(),
            "member_counts": {state: n for state, (n, _) in membership.items()},
            "audit": batch.audit.select_related("actor")[:50],
            "add_form": AddMailboxesForm(),
            "editable": batch.state in services.EDITABLE_STATES,
            "now": timezone.now(),
            **notices_panel(batch=batch, user=request.user),
            **after_move_panel(request, batch=batch, membership=membership),
            **readiness_panel(request, batch=batch),
            **_plan_status([batch], names=False),
        },
    )


@require_POST
@schedulers_only
def batch_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    batch = get_object_or_404(MoveBatch, pk=pk)
    try:
        if action in services.TRANSITIONS:
            batch = services.batch_transition(batch=batch, action=action, actor=request.user)
            messages.success(request, transition_message(batch))
        elif action == "replan":
            if services.batch_plan_request(batch=batch, reason="re-plan", actor=request.user):
                messages.success(request, "Re-plan queued; this page shows its progress.")
            elif batch.is_active:
                messages.info(
                    request,
                    "A plan of this batch is already under way; this page shows its progress.",
                )
            else:
                messages.error(request, "A finished batch keeps the plan it was moved with.")
        elif action == "mark_all_moved":
            ids = list(batch.members.filter(is_active=True).values_list("mailbox_id", flat=True))
            counts = services.batch_mark_moves(
                batch=batch, outcomes=dict.fromkeys(ids, "moved"), actor=request.user
            )
            messages.success(request, f"Marked {counts['moved']} mailboxes as moved.")
        elif action == "apply_move_requests":
            counts = services.batch_apply_move_requests(batch=batch, actor=request.user)
            messages.success(
                request,
                f"From the imported move requests: {counts['moved']} moved, {counts['failed']} failed, "
                f"{counts['unchanged']} unchanged. Import Get-MoveRequestStatistics on the Imports page first.",
            )
        else:
            messages.error(request, f"Unknown action '{action}'.")
    except services.BatchError as error:
        messages.error(request, str(error))
    return redirect("migrations_plan:batch_detail", pk=pk)


@require_POST
@schedulers_only
def batch_mailboxes_add(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(MoveBatch, pk=pk)
    form = AddMailboxesForm(request.POST, request.FILES)
    try:
        if not form.is_valid():
            raise CsvProblem(["The form was not valid."])
        if form.cleaned_data.get("mailboxes_csv"):
            mailboxes = mailboxes_from_csv(form.cleaned_data["mailboxes_csv"])
        else:
            mailboxes = mailboxes_from_lines(form.cleaned_data.get("addresses") or "")
        added = services.batch_add_mailboxes(
            batch=batch, mailboxes=mailboxes, actor=request.user, plan="queue"
        )
    except CsvProblem as problem:
        for line in problem.lines[:30]:
            messages.error(request, line)
    except services.BatchError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Added {added} mailbox{'es' if added != 1 else ''}; their predictions are being planned.",
        )
    return redirect("migrations_plan:batch_detail", pk=pk)


@require_POST
@schedulers_only
def batch_member(request: HttpRequest, pk: int, mailbox_id: int, action: str) -> HttpResponse:
    batch = get_object_or_404(MoveBatch, pk=pk)
    mailbox = get_object_or_404(Mailbox, pk=mailbox_id)
    try:
        if action == "remove":
            removed = services.batch_remove_mailboxes(
                batch=batch, mailbox_ids=[mailbox.pk], actor=request.user
            )
            if removed:
                messages.success(request, f"Removed {mailbox.primary_smtp_address} from the batch.")
            else:
                messages.info(
                    request, f"{mailbox.primary_smtp_address} was not in the batch any more."
                )
        elif action in ("moved", "failed"):
            services.batch_mark_moves(
                batch=batch, outcomes={mailbox.pk: action}, actor=request.user
            )
            messages.success(request, f"Recorded {mailbox.primary_smtp_address} as {action}.")
        else:
            messages.error(request, f"Unknown action '{action}'.")
    except services.BatchError as error:
        messages.error(request, str(error))
    return redirect(_safe_next(request, pk))


def _safe_next(request: HttpRequest, pk: int) -> str:
    """Back to the page the admin was on (its filters and page), never to another site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("migrations_plan:batch_detail", args=[pk])
