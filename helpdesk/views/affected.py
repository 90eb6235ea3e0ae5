"""The affected-people list: everyone in an active batch, filtered in the URL, paged by key,
and the same view as a CSV download (?export=csv)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from exsync.templatetags.exsync_tags import outcome_label

from .. import affected
from ..csv_export import csv_response
from ..filters import AffectedPeopleFilter

CURSORS = ("after", "before", "export")


@require_safe
def page(request: HttpRequest) -> HttpResponse:
    filters = AffectedPeopleFilter(request.GET or None, queryset=affected.affected_people())
    sort = filters.chosen_sort
    if request.GET.get("export") == "csv":
        return _export(filters.qs, sort=sort)
    people = affected.people_page(
        filters.qs,
        sort=sort,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
        size=affected.PAGE_SIZE,
    )
    people.devices = affected.phones_of(person.pk for person in people.rows)
    query = request.GET.copy()
    for name in CURSORS:
        query.pop(name, None)
    return render(
        request,
        "helpdesk/affected.html",
        {
            "filters": filters,
            "people": people,
            "rows": [
                (person, affected.worst_outcome_of(person), people.devices.get(person.pk, []))
                for person in people.rows
            ],
            # How many match is known only when they all fit on the first page: counting
            # them otherwise costs as much as the page again (device filters: more).
            "count": len(people.rows) if people.first and not people.has_next else None,
            "querystring": query.urlencode(),
            "sort_label": affected.SORTS[people.sort][0],
        },
    )


HEADER = (
    "Name",
    "Address",
    "Batch",
    "Batch start",
    "Move",
    "From",
    "To",
    "Worst outcome",
    "Devices",
    "Needing action",
    "Last successful sync",
    "Phones",
)


def _phone_text(phone: dict[str, Any]) -> str:
    what = phone["model"] or phone["device_type"] or phone["device_id"]
    name = f" “{phone['friendly_name']}”" if phone["friendly_name"] else ""
    return f"{what}{name} ({phone['platform']}): {outcome_label(phone['outcome'])}"


def _export(people, *, sort: str) -> HttpResponse:
    def rows() -> Iterator[list[Any]]:
        # One query for the people (streamed by the database cursor), one per 1,000 for their
        # phones: the same rows and order as the pages, all of them.
        walk = affected.ordered(people, sort).iterator(chunk_size=1000)
        for person, phones in affected.with_phones(walk):
            worst = affected.worst_outcome_of(person)
            yield [
                person.mailbox.display_name,
                person.mailbox.primary_smtp_address,
                person.batch.name,
                person.batch.start_at,
                person.get_state_display(),
                person.source_server.name if person.source_server else "",
                person.batch.target_server.name,
                "No phone" if worst == affected.NO_PHONE else outcome_label(worst),
                person.n_devices,
                person.n_action,
                person.last_sync,
                "; ".join(_phone_text(phone) for phone in phones),
            ]

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_response(filename=f"affected-people-{stamp}.csv", header=HEADER, rows=rows())
