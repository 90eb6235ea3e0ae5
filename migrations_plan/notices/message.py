"""One notice as an e-mail: both parts, the configured sender, a Message-ID of its own."""

from __future__ import annotations

import re
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email

from ..models import Notice
from .wording import Rendered, one_line


class UnusableAddress(ValueError):
    """The recipient cannot be written to (a permanent failure: retrying will not help)."""


_PLAIN_ADDRESS = re.compile(r"[^\s<>,;\"'()\[\]\\]+@[^\s<>,;\"'()\[\]\\]+")


def checked_address(address: str) -> str:
    """The address if it is one plain mailbox, else UnusableAddress saying why."""
    address = (address or "").strip()
    if not _PLAIN_ADDRESS.fullmatch(address):
        raise UnusableAddress(f"{address!r} is not a plain e-mail address")
    try:
        validate_email(address)
    except ValidationError:
        raise UnusableAddress(f"{address!r} is not a valid e-mail address") from None
    return address


def message_id(notice: Notice) -> str:
    """Stable for the row: a send repeated after a crash carries the same Message-ID, so the
    receiving system can drop the duplicate; a deliberate resend is a new row and a new id."""
    domain = settings.NOTICE_MESSAGE_ID_DOMAIN or (
        parseaddr(settings.NOTICE_FROM_EMAIL)[1].rpartition("@")[2] or "exsync.invalid"
    )
    return f"<notice-{notice.pk}.{notice.kind}.{notice.revision}@{domain}>"


def build(
    notice: Notice,
    rendered: Rendered,
    *,
    display_name: str = "",
    attachments: list[tuple[str, str, str]] | None = None,
    connection=None,
) -> EmailMultiAlternatives:
    address = checked_address(notice.recipient)
    to = formataddr((one_line(display_name, 100), address)) if display_name else address
    message = EmailMultiAlternatives(
        subject=one_line(rendered.subject, 200),
        body=rendered.body_text,
        from_email=settings.NOTICE_FROM_EMAIL,
        to=[to],
        reply_to=settings.NOTICE_REPLY_TO or None,
        headers={
            "Message-ID": message_id(notice),
            # RFC 3834: automatic replies (out of office) must not answer this.
            "Auto-Submitted": "auto-generated",
            "X-Exsync-Notice": str(notice.pk),
        },
        connection=connection,
    )
    message.attach_alternative(rendered.body_html, "text/html")
    for filename, content, mimetype in attachments or []:
        message.attach(filename, content, mimetype)
    return message
