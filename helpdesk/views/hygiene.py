"""Partnership hygiene pages (issue 15 point 4): the four counts, and the four lists.

Each list is filtered in the URL (server, batch, organisation and its own knobs), paged, and
downloadable as CSV by both roles (?export=csv). Exchange admins also see, and can download
as a .ps1 (?export=ps1), the Exchange Management Shell lines that would remove what the list
points at; exsync itself never runs anything against Exchange.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from devices.models import ExchangeServer, Mailbox, Organisation, Partnership
from exchange.powershell import SCRIPT_HEADER
from exsync.roles import can_schedule
from migrations_plan.models import ACTIVE_BATCH_STATES, MoveBatch

from .. import hygiene
from ..csv_export import csv_response
from ..hygiene import DUPLICATES, EASVER, LIMIT, STALE, Scope

PER_PAGE = 50

TITLES = {
    STALE: "Stale partnerships",
    DUPLICATES: "Duplicate partnerships",
    LIMIT: "Mailboxes near the partnership limit",
    EASVER: "EAS versions the target will not accept",
}


class HygieneForm(forms.Form):
    """Every list's filters; each page keeps the fields it uses (FIELDS)."""

    batch = forms.ModelChoiceField(
        queryset=MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES).order_by("start_at"),
        required=False,
        empty_label="Organisation-wide",
        help_text="Its mailboxes only, against its target.",
    )
    server = forms.ModelChoiceField(
        label="Mailbox server",
        queryset=ExchangeServer.objects.order_by("name"),
        required=False,
        empty_label="Any server",
    )
    organisation = forms.ModelChoiceField(
        queryset=Organisation.objects.all(), required=False, empty_label="Any organisation"
    )
    target = forms.ModelChoiceField(
        label="Target server",
        queryset=ExchangeServer.objects.order_by("name"),
        required=False,
        empty_label="Any Exchange",
        help_text="A batch's own target is used when a batch is chosen.",
    )
    days = forms.IntegerField(
        label="No sync for (days)", min_value=1, max_value=3650, required=False
    )
    kind = forms.ChoiceField(
        label="Duplicates",
        choices=[("", "All"), *hygiene.DUPLICATE_KINDS],
        required=False,
    )
    level = forms.ChoiceField(label="Level", choices=hygiene.LIMIT_LEVELS, required=False)
    category = forms.ChoiceField(
        label="Version", choices=[("", "Any"), *hygiene.EAS_CATEGORIES], required=False
    )


FIELDS = {
    STALE: ("batch", "server", "organisation", "days"),
    DUPLICATES: ("batch", "server", "organisation", "kind"),
    LIMIT: ("batch", "server", "organisation", "level", "days"),
    EASVER: ("batch", "server", "organisation", "target", "category"),
}
OVERVIEW_FIELDS = ("batch", "target")


def _form(request: HttpRequest, fields: Iterable[str]) -> tuple[HygieneForm, dict[str, Any]]:
    form = HygieneForm(request.GET or None)
    keep = set(fields)
    for name in list(form.fields):
        if name not in keep:
            del form.fields[name]
    if not form.is_bound:
        return form, {}
    form.is_valid()  # cleaned_data keeps the fields that are valid
    return form, form.cleaned_data


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "403.html",
        {"reason": "Only Exchange admins see the Exchange Management Shell lines."},
        status=403,
    )


def _querystring(request: HttpRequest) -> str:
    query = request.GET.copy()
    for name in ("page", "export"):
        query.pop(name, None)
    return query.urlencode()


def _stamp() -> str:
    return timezone.localtime().strftime("%Y%m%d-%H%M")


def _ps1_response(kind: str, lines: Iterable[str]) -> StreamingHttpResponse:
    """The lines as a .ps1: a UTF-8 byte order mark first, so that Windows PowerShell 5.1
    reads the file as UTF-8 and not in the ANSI code page (where the UTF-8 bytes of some
    letters, ё for one, read as ‘ and would end a literal early)."""

    def body() -> Iterator[str]:
        yield "\ufeff"
        for line in (*SCRIPT_HEADER, f"# List: {TITLES[kind]}, {_stamp()}.", ""):
            yield line + "\r\n"
        for line in lines:
            yield line + "\r\n"

    response = StreamingHttpResponse(body(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exsync-{kind}-{_stamp()}.ps1"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _device(p: Partnership) -> str:
    d = p.device
    return d.model or d.device_type or d.device_id


PARTNERSHIP_HEADER = (
    "Name",
    "Address",
    "Mailbox server",
    "Device",
    "DeviceType",
    "Friendly name",
    "DeviceId",
    "IMEI",
    "EAS version",
    "First sync",
    "Last successful sync",
    "Identity",
)


def _partnership_cells(p: Partnership) -> list[Any]:
    d = p.device
    return [
        p.mailbox.display_name,
        p.mailbox.primary_smtp_address,
        p.mailbox.server.name if p.mailbox.server else "",
        d.model,
        d.device_type,
        d.friendly_name,
        d.device_id,
        d.imei,
        p.eas_version,
        p.first_sync_at,
        p.last_success_sync_at,
        p.identity,
    ]


# --- the lists -----------------------------------------------------------------------------


def _stale(request, values, *, scope, admin, export, now) -> dict[str, Any] | HttpResponse:
    days = values.get("days") or hygiene.stale_days_default()
    rows = hygiene.stale_partnerships(scope, days=days, now=now)
    if export == "csv":
        return csv_response(
            filename=f"stale-partnerships-{_stamp()}.csv",
            header=PARTNERSHIP_HEADER,
            rows=(_partnership_cells(p) for p in rows.iterator(chunk_size=1000)),
        )
    if export == "ps1":
        return _ps1_response(STALE, hygiene.script_lines(rows.iterator(chunk_size=1000)))
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return {
        "page": page,
        "rows": page.object_list,
        "days": days,
        "ps_lines": list(hygiene.script_lines(page.object_list)) if admin else None,
    }


def _duplicates(request, values, *, scope, admin, export, now) -> dict[str, Any] | HttpResponse:
    kind = values.get("kind") or ""
    if export == "csv":
        rows = hygiene.duplicate_partnerships(scope, kind=kind).iterator(chunk_size=1000)

        def cells() -> Iterator[list[Any]]:
            for number, group in enumerate(hygiene.duplicate_groups(rows), start=1):
                for p in group.partnerships:
                    keep = "remove (likely)" if p.candidate and not p.candidate_exact else None
                    verdict = keep or ("remove" if p.candidate else "keep")
                    yield [number, group.basis_label, verdict, *_partnership_cells(p)]

        return csv_response(
            filename=f"duplicate-partnerships-{_stamp()}.csv",
            header=("Group", "Same phone because", "Verdict", *PARTNERSHIP_HEADER),
            rows=cells(),
        )
    if export == "ps1":
        rows = hygiene.duplicate_partnerships(scope, kind=kind).iterator(chunk_size=1000)
        return _ps1_response(DUPLICATES, hygiene.script_lines(p for p in rows if p.candidate))
    page = Paginator(hygiene.duplicate_mailboxes(scope, kind=kind), PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = hygiene.duplicate_partnerships(scope, kind=kind).filter(
        mailbox_id__in=[m.pk for m in page.object_list]
    )
    groups = list(hygiene.duplicate_groups(rows))
    candidates = [p for g in groups for p in g.partnerships if p.candidate]
    return {
        "page": page,
        "groups": groups,
        "ps_lines": list(hygiene.script_lines(candidates)) if admin else None,
    }


def _limit(request, values, *, scope, admin, export, now) -> dict[str, Any] | HttpResponse:
    days = values.get("days") or hygiene.stale_days_default()
    level = values.get("level") or "near"
    mailboxes = hygiene.limit_mailboxes(scope, level=level, days=days, now=now)
    if export == "csv":

        def cells() -> Iterator[list[Any]]:
            for m in mailboxes.iterator(chunk_size=1000):
                yield [
                    m.display_name,
                    m.primary_smtp_address,
                    m.server.name if m.server else "",
                    m.n_partnerships,
                    m.limit,
                    "EasMaxDevices" if m.recorded_limit is not None else hygiene.LIMIT_NOTE,
                    m.n_stale,
                ]

        return csv_response(
            filename=f"partnership-limit-{_stamp()}.csv",
            header=(
                "Name",
                "Address",
                "Mailbox server",
                "Partnerships",
                "Limit",
                "Limit from",
                f"Stale ({days} days)",
            ),
            rows=cells(),
        )
    if export == "ps1":
        removable = hygiene.limit_removable(mailboxes, days=days, now=now)
        return _ps1_response(LIMIT, hygiene.script_lines(removable.iterator(chunk_size=1000)))
    page = Paginator(mailboxes, PER_PAGE).get_page(request.GET.get("page"))
    ps_lines = None
    if admin:
        shown = Mailbox.objects.filter(pk__in=[m.pk for m in page.object_list])
        ps_lines = list(hygiene.script_lines(hygiene.limit_removable(shown, days=days, now=now)))
    return {
        "page": page,
        "mailboxes": page.object_list,
        "days": days,
        "level": level,
        "near_percent": hygiene.NEAR_PERCENT,
        "default_limit": hygiene.DEFAULT_LIMIT,
        "limit_note": hygiene.LIMIT_NOTE,
        "ps_lines": ps_lines,
    }


def _easver(request, values, *, scope, admin, export, now) -> dict[str, Any] | HttpResponse:
    batch = values.get("batch")
    target = batch.target_server if batch is not None else values.get("target")
    on: date = timezone.localdate(batch.start_at) if batch is not None else timezone.localdate(now)
    exo = hygiene.requires_16_1(target, on=on)
    rows = hygiene.easver_partnerships(
        scope, target=target, on=on, category=values.get("category") or ""
    )

    def label(p: Partnership) -> str:
        return hygiene.EAS_CATEGORY_LABELS[p.eas_category]

    if export == "csv":
        return csv_response(
            filename=f"eas-versions-{_stamp()}.csv",
            header=(*PARTNERSHIP_HEADER, "Source offers at most", "Target", "Verdict"),
            rows=(
                [
                    *_partnership_cells(p),
                    hygiene.source_cap(p.mailbox.server.generation if p.mailbox.server else ""),
                    target.name if target else "any Exchange",
                    label(p),
                ]
                for p in rows.iterator(chunk_size=1000)
            ),
        )
    if export == "ps1":
        # Only what is proven not accepted: an unconfirmed or unknown version may be fine.
        below = hygiene.easver_partnerships(scope, target=target, on=on, category=hygiene.BELOW)
        return _ps1_response(EASVER, hygiene.script_lines(below.iterator(chunk_size=1000)))
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    for p in page.object_list:
        p.category_label = label(p)
        p.source_cap = hygiene.source_cap(p.mailbox.server.generation if p.mailbox.server else "")
    shown_below = [p for p in page.object_list if p.eas_category == hygiene.BELOW]
    return {
        "page": page,
        "rows": page.object_list,
        "target": target,
        "exo": exo,
        "exo_from": hygiene.EXO_EAS_FROM,
        "ps_lines": list(hygiene.script_lines(shown_below)) if admin else None,
    }


LISTS = {STALE: _stale, DUPLICATES: _duplicates, LIMIT: _limit, EASVER: _easver}


@require_safe
def page(request: HttpRequest, kind: str) -> HttpResponse:
    """One hygiene list: both roles read it and its CSV; only admins get the PowerShell."""
    admin = can_schedule(request.user)
    export = request.GET.get("export", "")
    if export == "ps1" and not admin:
        return _forbidden(request)
    form, values = _form(request, FIELDS[kind])
    scope = Scope(
        server=values.get("server"),
        batch=values.get("batch"),
        organisation=values.get("organisation"),
    )
    found = LISTS[kind](request, values, scope=scope, admin=admin, export=export, now=None)
    if isinstance(found, HttpResponseBase):
        return found
    return render(
        request,
        f"helpdesk/hygiene_{kind}.html",
        {
            "kind": kind,
            "title": TITLES[kind],
            "form": form,
            "batch": values.get("batch"),
            "querystring": _querystring(request),
            "default_days": settings.HYGIENE_STALE_DAYS,
            **found,
        },
    )


@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    """The four lists counted, organisation-wide or for one batch (against its target)."""
    form, values = _form(request, OVERVIEW_FIELDS)
    batch = values.get("batch")
    counts = hygiene.hygiene_counts(batch=batch, target=values.get("target"))
    return render(
        request,
        "helpdesk/hygiene.html",
        {
            "form": form,
            "batch": batch,
            "querystring": _querystring(request),
            "counts": [(c, TITLES[kind]) for c, kind in zip(counts, hygiene.KINDS, strict=True)],
        },
    )
