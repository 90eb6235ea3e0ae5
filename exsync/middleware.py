"""Signed in is not enough: a user must hold one of exsync's roles to see anything."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .roles import ROLE_PERMISSION


class RoleRequiredMiddleware:
    """After LoginRequiredMiddleware: a signed-in user in neither group gets a 403 page.

    Views that do not need a login (the login page) and the Django admin (which checks staff
    status itself) are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func, view_args, view_kwargs
    ) -> HttpResponse | None:
        if not getattr(view_func, "login_required", True) or not request.user.is_authenticated:
            return None
        if request.path.startswith("/admin/") or request.user.has_perm(ROLE_PERMISSION):
            return None
        reason = "Your account has no exsync role yet: ask an Exchange admin to add you to a group."
        return render(request, "403.html", {"reason": reason}, status=403)
