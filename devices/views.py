"""Inventory pages: servers and their endpoints."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors
from .models import ExchangeServer


def server_list(request: HttpRequest) -> HttpResponse:
    return render(request, "devices/server_list.html", {"servers": selectors.server_list()})


def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        server = selectors.server_detail(pk=pk)
    except ExchangeServer.DoesNotExist as exc:
        raise Http404("No such server") from exc
    return render(request, "devices/server_detail.html", {"server": server})
