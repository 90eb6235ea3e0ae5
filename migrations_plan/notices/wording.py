"""The words of every notice: admin-editable templates, and headers no device data can break.

Defaults live in templates/notices/NAME.{subject.txt,txt,html}; a NoticeTemplate row replaces
them for one name. Both are rendered by an engine of their own with plain values only (dicts,
strings, numbers): an edited template cannot reach a model or a method. The HTML part is
autoescaped; the plain-text part is not (it is not HTML), and the subject and display names are
made one short line without control characters, so a friendly name holding CR/LF cannot add a
header.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.base import Lexer, TokenType

from exsync.process_cache import ProcessCache

from ..models import NoticeKind, NoticeTemplate, TemplateName

DEFAULTS_DIR = Path(settings.BASE_DIR) / "templates" / "notices"
PARTS = ("subject", "body_text", "body_html")
_SUFFIX = {"subject": "subject.txt", "body_text": "txt", "body_html": "html"}

# Which wording each kind of notice uses.
TEMPLATE_OF = {
    NoticeKind.BEFORE_MOVE: TemplateName.BEFORE,
    NoticeKind.AFTER_MOVE: TemplateName.AFTER,
    NoticeKind.CORRECTION: TemplateName.CORRECTION,
    NoticeKind.CHASE: TemplateName.CHASE,
    NoticeKind.REPORT_SCHEDULED: TemplateName.REPORT,
    NoticeKind.REPORT_STARTED: TemplateName.REPORT,
    NoticeKind.REPORT_COMPLETED: TemplateName.REPORT,
}

# The admins' wordings, re-read at most every 5 s per process (and at once in the process that
# saved one: apps.py connects the model's signals to OVERRIDES.clear).
OVERRIDES = ProcessCache(ttl=5.0)

_TEXT = Engine(autoescape=False, string_if_invalid="")
_HTML = Engine(autoescape=True, string_if_invalid="")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str


def default_source(name: str) -> dict[str, str]:
    """The shipped wording of one template name: {part: template source}."""
    return {
        part: (DEFAULTS_DIR / f"{name}.{_SUFFIX[part]}").read_text(encoding="utf-8")
        for part in PARTS
    }


# Tags a notice's wording has no use for: they reach files, other libraries or the whole
# context (debug prints every loaded module's name).
FORBIDDEN_TAGS = frozenset({"include", "extends", "load", "debug", "ssi", "block", "autoescape"})
# Would let a phone's friendly name become HTML in the e-mail.
FORBIDDEN_FILTERS = frozenset({"safe", "safeseq"})


class UnusableTemplate(ValueError):
    """An edited wording that cannot be used (syntax, or a forbidden tag): the message says
    which; a notice rendered with it fails for good rather than retrying."""


@lru_cache(maxsize=64)
def _compiled(part: str, source: str) -> Template:
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            tag = token.contents.split()[0] if token.contents.split() else ""
            if tag in FORBIDDEN_TAGS:
                raise UnusableTemplate(
                    f"line {token.lineno}: {{% {tag} %}} is not allowed in a notice's wording"
                )
        if token.token_type == TokenType.VAR:
            for applied in token.contents.split("|")[1:]:
                name = applied.split(":")[0].strip()
                if name in FORBIDDEN_FILTERS:
                    raise UnusableTemplate(
                        f"line {token.lineno}: the filter |{name} is not allowed in a notice's "
                        "wording (it would let device data become HTML)"
                    )
    try:
        return (_HTML if part == "body_html" else _TEXT).from_string(source)
    except TemplateSyntaxError as error:
        raise UnusableTemplate(str(error)) from error


def check_source(part: str, source: str) -> str | None:
    """None when the template can be used, else what is wrong, in words (for the edit form)."""
    try:
        _compiled(part, source)
    except UnusableTemplate as error:
        return str(error)
    return None


def sources(name: str, overrides: dict[str, NoticeTemplate] | None = None) -> dict[str, str]:
    """The admin's wording for `name` when there is one, else the default."""
    if overrides is None:
        overrides = OVERRIDES.get("all", lambda: {t.name: t for t in NoticeTemplate.objects.all()})
    row = overrides.get(name)
    if row is None:
        return default_source(name)
    return {part: getattr(row, part) for part in PARTS}


def render(name: str, context: dict[str, Any], *, source: dict[str, str] | None = None) -> Rendered:
    """Subject, plain text and HTML of one notice. `context` holds plain values only."""
    source = source or sources(name)
    # A Context escapes unless told not to, whatever its engine says: plain parts say so.
    subject = _compiled("subject", source["subject"]).render(Context(context, autoescape=False))
    subject = one_line(subject, 200)
    with_subject = {**context, "subject": subject}
    text = _compiled("body_text", source["body_text"]).render(
        Context(with_subject, autoescape=False)
    )
    # A plain str, not the SafeString the engine returns: a page showing this HTML as text
    # must escape it like anything else.
    html = str.__str__(_compiled("body_html", source["body_html"]).render(Context(with_subject)))
    return Rendered(
        subject=subject or "Your mailbox move", body_text=text.strip() + "\n", body_html=html
    )


# Line and paragraph separators that some mail readers break headers on, besides CR/LF.
_BREAKS = {"\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def one_line(value: str, limit: int) -> str:
    """A header-safe line: breaks become spaces, control and format characters (incl. the
    bidirectional overrides) go, whitespace collapses, and it is cut to `limit` characters."""
    cleaned = []
    for char in str(value):
        if char in _BREAKS or char == "\t":
            cleaned.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf"):
            continue
        else:
            cleaned.append(char)
    text = " ".join("".join(cleaned).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
