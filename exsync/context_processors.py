"""Template context shared by every page."""

from django.http import HttpRequest

from .roles import can_schedule


def roles(request: HttpRequest) -> dict[str, bool]:
    return {"can_schedule": can_schedule(request.user)}
