"""The people search page: /people/?q=..., reached from the search box in the top bar."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from helpdesk import search

RESULTS = 50


@require_safe
def page(request: HttpRequest) -> HttpResponse:
    """Both roles search; the middleware sends anonymous users to log in first."""
    query = search.normalise(request.GET.get("q", ""))
    # The "silent since move" checkbox: only people with a phone silent since their move.
    silent = bool(request.GET.get("silent"))
    results = search.people(query, limit=RESULTS, silent_only=silent) if query else None
    return render(
        request,
        "helpdesk/search.html",
        {
            "query": query,
            "silent": silent,
            "results": results,
            "limit": RESULTS,
            "min_partial": search.MIN_PARTIAL_LENGTH,
        },
    )
