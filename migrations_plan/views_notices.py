"""Notice pages: the batch page's Notices panel, previews, the notice log, one notice with its
resend button, rescheduling, and the editor of the notice templates.

Who sees what: Exchange admins everything. Helpdesk reads the forecast on the batch page and
the notices of one person (a caller asks "what did you send me?"), never the batch's log as a
whole, reports, previews, resends or templates (exsync.roles: helpdesk lacks view_notice).

A notice's HTML part is never part of these pages' markup: it is shown in an
<iframe sandbox srcdoc="..."> (the attribute value autoescaped, no allow-scripts, no
allow-same-origin), and these pages send a Content-Security-Policy the srcdoc document inherits,
so an edited template cannot run a script or load anything from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from exsync.mail_policy import MAIL_CSP
from exsync.roles import can_schedule

from . import services
from .forms import NoticeFilterForm, NoticeTemplateForm, RescheduleForm
from .models import (
    PERSON_KINDS,
    REPORT_KINDS,
    BatchMailbox,
    BatchState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
    NoticeTemplate,
    TemplateName,
)
from .notice_samples import VARIANTS
from .notices import delivery, wording
from .notices.forecast import notice_forecast
from .notices.preview import NoSuchNotice, notice_preview_for
from .notices.queue import ResendRefused, leads_of, report_recipients

NOTICES_PER_PAGE = 50
RESENDABLE = (NoticeState.SENT, NoticeState.FAILED, NoticeState.SKIPPED)


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "403.html", {"reason": reason}, status=403)


def admins_only(reason: str) -> Callable:
    """Exchange admins only; helpdesk gets a 403 saying why (as the outbox does)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not can_schedule(request.user):
                return _forbidden(request, reason)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def mail_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pages that frame a notice's HTML part send MAIL_CSP."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = MAIL_CSP
        return response

    return wrapper


def _counts_text(counts: dict[str, int] | None) -> str:
    """What a batch service did to notices, in words: "8 notices queued, 1 report queued"."""
    words = {
        "notices_queued": ("notice queued", "notices queued"),
        "reports_queued": ("report queued", "reports queued"),
        "notices_withdrawn": ("pending notice withdrawn", "pending notices withdrawn"),
        "notices_moved": (
            "pending notice moved to the new time",
            "pending notices moved to the new time",
        ),
        "corrections_queued": ("correction queued", "corrections queued"),
    }
    parts = []
    for key, n in (counts or {}).items():
        one, many = words.get(key, (key.replace("_", " "), key.replace("_", " ")))
        parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def transition_message(batch: MoveBatch) -> str:
    """The success message of a lifecycle action, with the notices it queued or withdrew."""
    text = f"Batch '{batch.name}' is now {batch.get_state_display().lower()}."
    counts = getattr(batch, "notice_counts", None)  # absent when the click changed nothing
    if counts:
        text += f" {_counts_text(counts).capitalize()}."
        if counts.get("notices_queued"):
            text += (
                " Each person's notice is checked against the plan when it is due: what it "
                "says, or that it is not needed."
            )
    return text


# --- the batch page's panel ---------------------------------------------------------------


def _lead_hours(leads: list[int]) -> list[str]:
    return [f"{m / 60:g}" for m in leads]


def notices_panel(*, batch: MoveBatch, user) -> dict[str, Any]:
    """Context of the batch page's Notices panel: the forecast of a draft (three queries), the
    counts of a batch that queued notices (one), the reschedule form for admins."""
    leads = leads_of(batch)
    context: dict[str, Any] = {
        "notice_leads_hours": _lead_hours(leads),
        "preview_lead": leads[0] if leads else 0,
        # Before the move, a person's next notice is a before-the-move one; after, the other.
        "preview_kind": NoticeKind.BEFORE_MOVE
        if leads and batch.state in services.EDITABLE_STATES
        else NoticeKind.AFTER_MOVE,
        "report_kinds": REPORT_KINDS,
        "report_recipients": report_recipients(batch),
        "forecast": None,
        "notice_states": [],
        "reschedule_form": None,
    }
    if batch.state == BatchState.DRAFT:
        forecast = notice_forecast(batch=batch)
        context["forecast"] = forecast
        context["forecast_people"] = forecast.full + (
            forecast.short if batch.notify_unaffected and forecast.leads_minutes else 0
        )
        context["forecast_questions"] = [q for q in forecast.questions if q.get("decides")]
    else:
        by_kind: dict[str, dict[str, int]] = {}
        for kind, state, n in (
            batch.notices.order_by()
            .values_list("kind", "state")
            .annotate(n=Count("pk"))
            .values_list("kind", "state", "n")
        ):
            by_kind.setdefault(kind, {})[state] = n
        labels, states = dict(NoticeKind.choices), dict(NoticeState.choices)
        context["notice_states"] = [
            {
                "kind": kind,
                "label": labels[kind],
                "total": sum(by_kind[kind].values()),
                "states": [(s, states[s], by_kind[kind][s]) for s in states if s in by_kind[kind]],
            }
            for kind in labels
            if kind in by_kind
        ]
    if can_schedule(user) and batch.state in services.EDITABLE_STATES:
        context["reschedule_form"] = RescheduleForm.for_batch(batch)
    return context


# --- rescheduling -------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@admins_only("Only Exchange admins may change batches.")
def batch_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Another start, completion, lead times or short-notice switch (services.batch_reschedule
    moves or withdraws the pending notices and queues corrections)."""
    batch = get_object_or_404(MoveBatch.objects.select_related("target_server"), pk=pk)
    form = RescheduleForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            batch = services.batch_reschedule(
                batch=batch,
                start_at=data["start_at"],
                complete_by=data["complete_by"],
                notice_leads_minutes=data["notice_leads"],
                notify_unaffected=data["notify_unaffected"],
                actor=request.user,
            )
        except services.BatchError as error:
            form.add_error(None, str(error))
        else:
            # Absent or empty when nothing had to move (a draft, or the same values again).
            counts = getattr(batch, "notice_counts", None) or {}
            done = _counts_text({k: n for k, n in counts.items() if n})
            leads = ", ".join(f"{h} h" for h in _lead_hours(leads_of(batch)))
            messages.success(
                request,
                f"Batch '{batch.name}' starts {timezone.localtime(batch.start_at):%Y-%m-%d %H:%M}; "
                f"notices {leads} before." + (f" {done.capitalize()}." if done else ""),
            )
            return redirect("migrations_plan:batch_detail", pk=batch.pk)
    if form is None:
        form = RescheduleForm.for_batch(batch)
    return render(
        request,
        "migrations_plan/batch_reschedule.html",
        {"batch": batch, "form": form, "editable": batch.state in services.EDITABLE_STATES},
    )


# --- previews -----------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return int(value or "")
    except ValueError:
        return None


@require_safe
@mail_csp
@admins_only("Previews of notices are for Exchange admins.")
def notice_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """What one notice would say if it went out at its due time, from the plan as it is now:
    an unsaved Notice through delivery.notice_preview(); nothing is stored or sent."""
    batch = get_object_or_404(MoveBatch.objects.select_related("target_server"), pk=pk)
    kind = request.GET.get("kind") or NoticeKind.BEFORE_MOVE
    member = None
    if kind not in REPORT_KINDS:
        member = get_object_or_404(
            BatchMailbox.objects.select_related("mailbox", "mailbox__server"),
            batch=batch,
            mailbox_id=_int(request.GET.get("mailbox")),
        )
    try:
        preview = notice_preview_for(
            batch=batch, member=member, kind=kind, lead=_int(request.GET.get("lead"))
        )
    except NoSuchNotice as error:
        raise Http404(str(error)) from error
    decision, lead, recipient, at = (
        preview.decision,
        preview.notice.lead_minutes,
        preview.notice.recipient,
        preview.at,
    )
    recipients, assumed, leads = preview.report_recipients, preview.assumed, leads_of(batch)
    context: dict[str, Any] = {
        "batch": batch,
        "member": member,
        "kind": kind,
        "kind_label": NoticeKind(kind).label,
        "lead": lead,
        "lead_hours": f"{lead / 60:g}",
        "recipient": recipient,
        "report_recipients": recipients,
        "at": at,
        "assumed": assumed,
        "skip": decision if isinstance(decision, delivery.Skip) else None,
        "wait": decision if isinstance(decision, delivery.Wait) else None,
        "send": decision if isinstance(decision, delivery.Send) else None,
        "links": _preview_links(batch, member, leads),
    }
    if isinstance(decision, delivery.Send):
        if member is not None:  # as message.build() writes it: one line, no header breaks
            context["to"] = (
                f"{wording.one_line(decision.display_name, 100)} <{recipient}>"
                if decision.display_name
                else recipient
            )
        context["attachments"] = [
            {"name": name, "size": len(content.encode()), "type": mimetype}
            for name, content, mimetype in decision.attachments
        ]
    return render(request, "migrations_plan/notice_preview.html", context)


def _preview_links(
    batch: MoveBatch, member: BatchMailbox | None, leads: list[int]
) -> list[dict[str, str]]:
    """The other notices one can preview from here: each lead time and the after-move notice
    of this person, and the three reports."""
    base = reverse("migrations_plan:notice_preview", args=[batch.pk])
    links = []
    if member is not None:
        for lead in leads:
            query = {"mailbox": member.mailbox_id, "kind": NoticeKind.BEFORE_MOVE, "lead": lead}
            links.append({"label": f"{lead / 60:g} h before", "url": f"{base}?{urlencode(query)}"})
        for kind in (NoticeKind.AFTER_MOVE, NoticeKind.CORRECTION):
            query = {"mailbox": member.mailbox_id, "kind": kind}
            links.append({"label": NoticeKind(kind).label, "url": f"{base}?{urlencode(query)}"})
    for kind in REPORT_KINDS:
        links.append({"label": NoticeKind(kind).label, "url": f"{base}?kind={kind}"})
    return links


# --- the log, one notice, resending -------------------------------------------------------

LOG_FIELDS = (
    "id",
    "batch_id",
    "mailbox_id",
    "kind",
    "lead_minutes",
    "revision",
    "due_at",
    "state",
    "recipient",
    "attempts",
    "last_error",
    "reason",
    "sent_at",
)


@require_safe
@admins_only(
    "The notice log of a batch is for Exchange admins. A person's page shows the notices "
    "sent to them."
)
def batch_notices(request: HttpRequest, pk: int) -> HttpResponse:
    """Every notice of the batch, 50 a page, by state and kind; three queries whatever the
    batch's size (the batch, the count, the page)."""
    batch = get_object_or_404(MoveBatch, pk=pk)
    filters = NoticeFilterForm(request.GET)
    filters.is_valid()
    wanted = filters.cleaned_data
    notices = batch.notices.only(*LOG_FIELDS).order_by("due_at", "id")
    if wanted.get("state"):
        notices = notices.filter(state=wanted["state"])
    if wanted.get("kind"):
        notices = notices.filter(kind=wanted["kind"])
    page = Paginator(notices, NOTICES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "migrations_plan/batch_notices.html",
        {
            "batch": batch,
            "page": page,
            "filters": filters,
            "filtered": bool(wanted.get("state") or wanted.get("kind")),
            "querystring": query.urlencode(),
            "time_zone": timezone.get_current_timezone_name(),
        },
    )


@require_safe
@mail_csp
def notice_detail(request: HttpRequest, notice_id: int) -> HttpResponse:
    """One notice whole: its log (state, attempts, error), headers and both parts.

    Helpdesk may read a person's notice (the caller asks what they were sent); reports, which
    list many people, are for Exchange admins.
    """
    notice = get_object_or_404(
        Notice.objects.select_related("batch", "member", "mailbox"), pk=notice_id
    )
    admin = can_schedule(request.user)
    if notice.is_report and not admin:
        return _forbidden(
            request, "Batch reports list many people's phones; they are for Exchange admins."
        )
    copies = list(
        Notice.objects.filter(
            batch_id=notice.batch_id,
            recipient=notice.recipient,
            kind=notice.kind,
            lead_minutes=notice.lead_minutes,
        )
        .only("id", "revision", "state", "sent_at", "due_at")
        .order_by("revision", "id")
    )
    newest = max((c.revision for c in copies), default=notice.revision)
    preview_url = ""
    if admin and notice.state in (NoticeState.PENDING, NoticeState.SENDING):
        query: dict[str, object] = {"kind": notice.kind}
        if notice.kind in PERSON_KINDS:
            query["mailbox"] = notice.mailbox_id
        if notice.kind == NoticeKind.BEFORE_MOVE:
            query["lead"] = notice.lead_minutes
        preview_url = (
            reverse("migrations_plan:notice_preview", args=[notice.batch_id])
            + "?"
            + urlencode(query)
        )
    return render(
        request,
        "migrations_plan/notice_detail.html",
        {
            "notice": notice,
            "copies": copies if len(copies) > 1 else [],
            "newest_revision": newest,
            "can_resend": admin and notice.state in RESENDABLE,
            "preview_url": preview_url,
            "lead_hours": f"{notice.lead_minutes / 60:g}",
            "written": bool(notice.subject or notice.body_text or notice.body_html),
            "headers": {
                "From": settings.NOTICE_FROM_EMAIL,
                "To": notice.recipient,
                "Reply-To": ", ".join(settings.NOTICE_REPLY_TO),
                "Message-ID": notice.message_id,
                "Auto-Submitted": "auto-generated",
            },
            "time_zone": timezone.get_current_timezone_name(),
        },
    )


@require_POST
@admins_only("Only Exchange admins may send a notice again.")
def notice_resend(request: HttpRequest, notice_id: int) -> HttpResponse:
    """A new copy of a sent, failed or not-needed notice, due now. The form carries the newest
    revision the admin saw, so a double click (or two admins) makes one copy."""
    notice = get_object_or_404(Notice.objects.select_related("batch"), pk=notice_id)
    expected = _int(request.POST.get("expected_revision"))
    if expected is None:
        messages.error(request, "The resend form was incomplete; nothing was sent.")
        return redirect("migrations_plan:notice_detail", notice_id=notice.pk)
    try:
        copy_ = services.notice_resend(
            notice=notice, expected_revision=expected, actor=request.user
        )
    except ResendRefused as refused:
        messages.error(request, str(refused))
        return redirect("migrations_plan:notice_detail", notice_id=notice.pk)
    messages.success(
        request,
        f"A new copy to {copy_.recipient} is queued (copy {copy_.revision}); it is written from "
        "the plan as it is now and goes out within a minute.",
    )
    return redirect("migrations_plan:notice_detail", notice_id=copy_.pk)


# --- the template editor ------------------------------------------------------------------

TEMPLATES_REASON = "The wording of the e-mails is edited by Exchange admins."


@require_safe
@admins_only(TEMPLATES_REASON)
def notice_templates(request: HttpRequest) -> HttpResponse:
    edited = {t.name: t for t in NoticeTemplate.objects.select_related("updated_by")}
    rows = [
        {"name": name, "label": label, "edited": edited.get(name)}
        for name, label in TemplateName.choices
    ]
    return render(request, "migrations_plan/notice_templates.html", {"rows": rows})


def _template_name(name: str) -> str:
    if name not in TemplateName.values:
        raise Http404("No such notice template.")
    return name


@require_http_methods(["GET", "HEAD", "POST"])
@mail_csp
@admins_only(TEMPLATES_REASON)
def notice_template_edit(request: HttpRequest, name: str) -> HttpResponse:
    """Subject, plain text and HTML of one template name; "Preview" renders what is in the
    boxes with sample values, "Save" stores it (both only once every part compiles)."""
    name = _template_name(name)
    row = NoticeTemplate.objects.filter(name=name).select_related("updated_by").first()
    variants = VARIANTS[name]
    variant = request.POST.get("sample") or request.GET.get("sample") or variants[0][0]
    if variant not in dict(variants):
        variant = variants[0][0]
    instance = row or NoticeTemplate(name=name)
    if request.method == "POST":
        form = NoticeTemplateForm(request.POST, instance=instance, sample=variant)
        if form.is_valid() and "save" in request.POST:
            saved = form.save(commit=False)
            saved.updated_by = request.user
            saved.save()
            messages.success(
                request,
                f"Saved. Notices using “{TemplateName(name).label}” use this wording from now on.",
            )
            return redirect("migrations_plan:notice_template_edit", name=name)
    else:
        initial = None if row is not None else wording.default_source(name)
        form = NoticeTemplateForm(instance=instance, initial=initial, sample=variant)
    rendered = form.rendered if form.is_bound else form.render_sample()
    return render(
        request,
        "migrations_plan/notice_template_edit.html",
        {
            "name": name,
            "label": TemplateName(name).label,
            "row": row,
            "form": form,
            "variants": variants,
            "variant": variant,
            "rendered": rendered,
            "render_error": form.render_error,
        },
    )


@require_POST
@admins_only(TEMPLATES_REASON)
def notice_template_reset(request: HttpRequest, name: str) -> HttpResponse:
    """Back to the shipped wording: the admin's row goes."""
    name = _template_name(name)
    deleted, _ = NoticeTemplate.objects.filter(name=name).delete()
    if deleted:
        messages.success(request, f"“{TemplateName(name).label}” is back to the default wording.")
    else:
        messages.info(request, f"“{TemplateName(name).label}” already used the default wording.")
    return redirect("migrations_plan:notice_template_edit", name=name)
