"""A person's page: what a helpdesk agent needs on the phone with a caller, on one screen."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from .. import selectors


@require_safe
def page(request: HttpRequest, pk: int) -> HttpResponse:
    """Mailbox facts, batches, each phone with what to tell the user, and their notices.

    Both roles read it; nothing here changes state, so anything but GET/HEAD gets a 405.
    """
    mailbox = get_object_or_404(selectors.person_mailboxes(), pk=pk)
    person = selectors.person_page(mailbox=mailbox)
    return render(
        request,
        "helpdesk/person.html",
        {"person": person, "mailbox": mailbox, "time_zone": timezone.get_current_timezone_name()},
    )
