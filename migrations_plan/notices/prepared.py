"""Before-move notices rendered ahead of their time, so that sending one renders nothing.

What a notice says is still what the plan says when it is sent (content.py): a rendering made
ahead is used only while everything it was made from is unchanged, and that is checked at send
time without a query, from the rows the sender loads anyway. Its key covers:
- the plan: `planned_at` changes with every plan, and every import or recorded fact that
  changes the inventory re-plans the active batches (services.replan_after_import), so a
  device's name, outcome or steps cannot change under an unchanged `planned_at`;
- the batch's name and start, the person's name, address and time zone (their own, or their
  organisation's: zone_of);
- the wording: the admins' templates, the helpdesk's instructions (both re-read every 5 s per
  process, like the sender's own rendering), the shipped defaults and the helpdesk contact.
A key that does not match means the sender reads and renders the notice itself, as it would
without this module. The batch must not be being planned either way (delivery waits then).

Made by a Celery task (tasks.notices_prepare_task) after a batch is scheduled, rescheduled,
given new people or planned again; re-running it renders only what is out of date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.core.mail import BadHeaderError

from helpdesk.models import Action, Instruction
from helpdesk.platforms import LABELS
from helpdesk.selectors import INSTRUCTIONS, members_device_rows

from ..models import (
    BatchMailbox,
    BatchState,
    MoveBatch,
    Notice,
    NoticeKind,
    NoticeState,
    NoticeTemplate,
    PlanState,
)
from . import message as messages
from .content import (
    OUTCOME_FOR_USER,
    UNDECIDED_TEXT,
    PersonContent,
    content_from_json,
    content_of,
    content_to_json,
    person_context,
    zone_of,
)
from .wording import OVERRIDES, TEMPLATE_OF, Rendered, default_source, render

# Raised when what a prepared notice holds changes shape: older ones are then not used.
FORMAT = 1
CHUNK = 1000


# The caches' objects the hash was made from, and the hash: compared by identity, and held so
# that a freed object's id cannot come back as another's.
_wording_version: tuple[object, object, str] | None = None


def wording_version() -> str:
    """A hash of every word a before-move notice may hold besides the plan's: the admins'
    wordings, the helpdesk's steps, the shipped defaults and the words kept in code;
    recomputed only when the per-process caches of wordings and steps were re-read."""
    global _wording_version
    overrides = OVERRIDES.get("all", lambda: {t.name: t for t in NoticeTemplate.objects.all()})
    instructions = INSTRUCTIONS.get("all", lambda: list(Instruction.objects.all()))
    found = _wording_version
    if found is not None and found[0] is overrides and found[1] is instructions:
        return found[2]
    said = {
        "defaults": default_source(TEMPLATE_OF[NoticeKind.BEFORE_MOVE]),
        "overrides": sorted(
            (name, row.subject, row.body_text, row.body_html) for name, row in overrides.items()
        ),
        "instructions": sorted((i.pk, i.platform, i.action, i.title, i.body) for i in instructions),
        "helpdesk": settings.NOTICE_HELPDESK_CONTACT,
        # Words that live in code change with a deploy, not with a plan.
        "code": [OUTCOME_FOR_USER, UNDECIDED_TEXT, sorted(LABELS.items()), sorted(Action.choices)],
    }
    version = hashlib.sha256(json.dumps(said, default=str).encode()).hexdigest()
    _wording_version = (overrides, instructions, version)
    return version


def prepared_key(*, batch: MoveBatch, member: BatchMailbox) -> str:
    """What a rendering made now for this person depends on, as a hash (see the docstring)."""
    mailbox = member.mailbox
    parts = [
        FORMAT,
        batch.pk,
        batch.name,
        batch.start_at.isoformat(),
        batch.planned_at.isoformat() if batch.planned_at else "",
        member.pk,
        mailbox.display_name,
        mailbox.primary_smtp_address,
        zone_of(mailbox),
        wording_version(),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def prepared_content(notice: Notice) -> PersonContent | None:
    """The notice's content rendered ahead, if it is still what the plan says; else None."""
    if not notice.prepared or not notice.prepared_key or notice.member is None:
        return None
    if notice.prepared_key != prepared_key(batch=notice.batch, member=notice.member):
        return None
    content = content_from_json(notice.prepared["content"])
    content.rendered = {
        variant: Rendered(**parts) for variant, parts in notice.prepared["rendered"].items()
    }
    return content


def _renderings(batch: MoveBatch, content: PersonContent) -> dict[str, dict[str, str]]:
    """The rendering the sender would pick for this content: full when a phone needs
    something, short when all continue and the batch sends short notices, else none."""
    if not content.phones:
        return {}
    if content.needs_action:
        variant, extra = "full", {}
    elif batch.notify_unaffected:
        variant, extra = "short", {"short": True}
    else:
        return {}
    rendered = render(
        TEMPLATE_OF[NoticeKind.BEFORE_MOVE], person_context(batch.name, content, **extra)
    )
    return {variant: vars(rendered)}


# What a notice's own e-mail is made from, besides its person's content.
_READ = ("pk", "member_id", "prepared_key", "kind", "revision", "recipient")


def _made_ahead(
    notice: Notice, renderings: dict[str, dict[str, str]], display_name: str
) -> tuple[dict[str, object] | None, bytes]:
    """The notice's e-mail for the one rendering the sender would pick, made now (message.py):
    what is kept in `prepared`, and the MIME; nothing when there is no rendering or the
    address is unusable (the sender then builds it, or fails it, itself)."""
    if len(renderings) != 1:
        return None, b""
    [rendering] = renderings.values()
    try:
        ahead = messages.make_ahead(notice, Rendered(**rendering), display_name)
    except (messages.UnusableAddress, BadHeaderError):
        return None, b""
    kept = {"fingerprint": ahead.fingerprint, "sender": ahead.sender}
    return {**kept, "recipients": ahead.recipients}, ahead.mime


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def notices_prepare(*, batch_id: int) -> int:
    """Render ahead every pending before-move notice of a scheduled, planned batch whose
    rendering is missing or out of date; returns how many notices were written."""
    batch = MoveBatch.objects.filter(pk=batch_id).first()
    if (
        batch is None
        or batch.state != BatchState.SCHEDULED
        or batch.planned_at is None
        or batch.plan_state in (PlanState.QUEUED, PlanState.RUNNING)
    ):
        return 0  # the plan task prepares again when it is done
    pending = Notice.objects.filter(
        batch=batch, kind=NoticeKind.BEFORE_MOVE, state=NoticeState.PENDING, member__isnull=False
    )
    member_ids = sorted(set(pending.values_list("member_id", flat=True)))
    written = 0
    for chunk in _chunks(member_ids):
        members = list(BatchMailbox.objects.filter(pk__in=chunk).select_related("mailbox__server"))
        keys = {m.pk: prepared_key(batch=batch, member=m) for m in members}
        notices = [
            n
            for n in pending.filter(member_id__in=chunk).only(*_READ)
            if n.prepared_key != keys[n.member_id]
        ]
        if not notices:
            continue
        stale = {n.member_id for n in notices}
        members = [m for m in members if m.pk in stale]
        rows = members_device_rows([(m.mailbox, m) for m in members], current_only=True)
        prepared, names = {}, {}
        for member in members:
            content = content_of(batch=batch, member=member, rows=rows[member.mailbox_id])
            names[member.pk] = content.name
            prepared[member.pk] = {
                "content": content_to_json(content),
                "rendered": _renderings(batch, content),
            }
        for notice in notices:
            notice.prepared_key = keys[notice.member_id]
            notice.prepared = dict(prepared[notice.member_id])
            notice.prepared["mime"], notice.prepared_mime = _made_ahead(
                notice, notice.prepared["rendered"], names[notice.member_id]
            )
        # Only these columns: a notice claimed meanwhile keeps its state, and its sender
        # checks the key against the rows it loaded, not against this write.
        Notice.objects.bulk_update(
            notices, ["prepared_key", "prepared", "prepared_mime"], batch_size=250
        )
        written += len(notices)
    return written
