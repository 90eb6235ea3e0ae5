"""One notice as an e-mail: both parts, the configured sender, a Message-ID of its own.

Building the MIME of an e-mail (Django's message() and as_bytes()) costs more than handing
it to the SMTP server, so a before-move notice rendered ahead (prepared.py) keeps its e-mail
made then, every header but Date (`Notice.prepared_mime`), with the fingerprint of what it
was made from. The sender uses it only when the e-mail it would build now has the same
fingerprint: the same recipient, name, words, sender, reply-to and Message-ID.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address
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
    domain = _domain(settings.NOTICE_MESSAGE_ID_DOMAIN, settings.NOTICE_FROM_EMAIL)
    return f"<notice-{notice.pk}.{notice.kind}.{notice.revision}@{domain}>"


@lru_cache(maxsize=8)
def _domain(configured: str, sender: str) -> str:
    # Parsing the sender is most of what a Message-ID costs; it is asked for three times
    # per notice sent.
    return configured or parseaddr(sender)[1].rpartition("@")[2] or "exsync.invalid"


@dataclass(frozen=True)
class Ahead:
    """A notice's e-mail made ahead: the fingerprint it was made under, its SMTP envelope (as
    Django's SMTP backend would write it) and its MIME without Date."""

    fingerprint: str
    sender: str
    recipients: list[str]
    mime: bytes


class PreparedEmail(EmailMultiAlternatives):
    """An e-mail whose MIME and envelope were made ahead: the sender hands them, dated, to an
    SMTP connection as they are (delivery._smtp_send). Its fields are the ones build() gives,
    so any other backend (the outbox, the console) builds and sends the same e-mail."""

    ahead: Ahead

    def dated(self) -> bytes:
        """The MIME made ahead with its Date header, as Django would date it now."""
        date = formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
        return f"Date: {date}\r\n".encode() + self.ahead.mime


def fingerprint(notice: Notice, rendered: Rendered, display_name: str) -> str:
    """What an e-mail built by build() depends on, as a hash (no attachments: notices to
    people have none)."""
    said = [
        1,  # raised when build() changes what it writes
        notice.recipient,
        display_name,
        rendered.subject,
        rendered.body_text,
        rendered.body_html,
        settings.NOTICE_FROM_EMAIL,
        settings.NOTICE_REPLY_TO,
        settings.DEFAULT_CHARSET,
        message_id(notice),
        notice.pk,
    ]
    return hashlib.sha256(json.dumps(said).encode()).hexdigest()


def make_ahead(notice: Notice, rendered: Rendered, display_name: str) -> Ahead:
    """The notice's e-mail made now, to be sent later (prepared.py); UnusableAddress or
    BadHeaderError as build() would raise them."""
    email = build(notice, rendered, display_name=display_name)
    mime = email.message()
    del mime["Date"]
    encoding = email.encoding or settings.DEFAULT_CHARSET
    return Ahead(
        fingerprint=fingerprint(notice, rendered, display_name),
        sender=sanitize_address(email.from_email, encoding),
        recipients=[sanitize_address(address, encoding) for address in email.recipients()],
        mime=mime.as_bytes(linesep="\r\n"),
    )


def stored_ahead(notice: Notice) -> Ahead | None:
    """The e-mail prepared.py stored with the notice, if any."""
    said = (notice.prepared or {}).get("mime")
    if not isinstance(said, dict) or not notice.prepared_mime:
        return None
    return Ahead(
        said["fingerprint"], said["sender"], said["recipients"], bytes(notice.prepared_mime)
    )


def build(
    notice: Notice,
    rendered: Rendered,
    *,
    display_name: str = "",
    attachments: list[tuple[str, str, str]] | None = None,
    connection=None,
    ahead: Ahead | None = None,
) -> EmailMultiAlternatives:
    """The notice as an e-mail. `ahead` is used when its fingerprint is this e-mail's: the
    address was checked when it was made, and the MIME is sent as made then."""
    use_ahead = (
        ahead is not None
        and not attachments
        and ahead.fingerprint == fingerprint(notice, rendered, display_name)
    )
    address = notice.recipient.strip() if use_ahead else checked_address(notice.recipient)
    to = formataddr((one_line(display_name, 100), address)) if display_name else address
    message = (PreparedEmail if use_ahead else EmailMultiAlternatives)(
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
    if use_ahead:
        message.ahead = ahead
    return message
