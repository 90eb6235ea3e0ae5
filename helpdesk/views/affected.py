"""Placeholder until the affected page lands (replaced in this change)."""

from django.http import Http404, HttpRequest, HttpResponse


def page(request: HttpRequest, **kwargs) -> HttpResponse:
    raise Http404("not built yet")
