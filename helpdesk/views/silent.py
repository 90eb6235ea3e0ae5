"""The queue of people whose phone has not synced since their mailbox moved (issue 14)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from .. import selectors

PER_PAGE = 25


@require_safe
def page(request: HttpRequest) -> HttpResponse:
    """Both roles read it: each person with their silent phones, what they were predicted,
    when the mailbox moved, the last syncs, and what to tell them; the oldest move first."""
    people = Paginator(selectors.silent_members(), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "helpdesk/silent.html",
        {
            "page": people,
            "people": selectors.silent_people(members=people.object_list),
            "time_zone": timezone.get_current_timezone_name(),
            "querystring": "",
        },
    )
