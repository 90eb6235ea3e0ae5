"""An e-mail backend that keeps messages in the database (OutboxMessage) for the UI to show."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

KEPT_BYTES = 5_000_000  # a text attachment up to this is kept whole; larger ones by name


def _kept(attachment: Any) -> dict[str, Any]:
    """An attachment as the outbox keeps it: text whole (up to KEPT_BYTES), else its name."""
    if isinstance(attachment, tuple):
        name, content, mimetype = attachment
    else:  # a MIMEBase part
        name = attachment.get_filename() or "attachment"
        content, mimetype = attachment.get_payload(decode=True), attachment.get_content_type()
    size = len(content.encode() if isinstance(content, str) else content or b"")
    text = content if isinstance(content, str) and size <= KEPT_BYTES else None
    return {"name": name, "mimetype": mimetype or "", "size": size, "content": text}


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
            headers = dict(message.extra_headers)
            if message.reply_to:
                headers.setdefault("Reply-To", ", ".join(message.reply_to))
            rows.append(
                OutboxMessage(
                    from_email=message.from_email,
                    to=", ".join(message.to),
                    cc=", ".join(message.cc),
                    subject=message.subject,
                    body=message.body,
                    html_body=html,
                    headers=headers,
                    attachments=[_kept(a) for a in message.attachments],
                )
            )
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
