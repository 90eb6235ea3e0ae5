"""An e-mail backend that keeps messages in the database (OutboxMessage) for the UI to show."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class DatabaseEmailBackend(BaseEmailBackend):
    """Stores each message instead of sending it: the embedded default needs no mail server."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        from .models import OutboxMessage

        rows = []
        for message in email_messages:
            html = ""
            for content, mimetype in getattr(message, "alternatives", []) or []:
                if mimetype == "text/html":
                    html = content
            # message.message() runs Django's header checks (no newlines in headers), so a
            # hostile subject is refused here exactly as the SMTP backend would refuse it.
            message.message()
            rows.append(
                OutboxMessage(
                    from_email=message.from_email,
                    to=", ".join(message.to),
                    cc=", ".join(message.cc),
                    subject=message.subject,
                    body=message.body,
                    html_body=html,
                    headers=dict(message.extra_headers),
                )
            )
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
