"""What a notice says: the person's phones, what the move does to each, and what to do.

Read from the stored plan when the notice is sent, never when it was queued, so a re-import or
a recorded fact between scheduling and sending is already in it. A phone whose outcome is
`unknown` gets no steps at all: "IT is checking, a follow-up will come" is never wrong, a guess
could be (issue 13, point 2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from devices.models import Mailbox, Organisation
from exsync.process_cache import ProcessCache
from helpdesk.selectors import DeviceRow, device_rows

from ..models import BatchMailbox, MoveBatch
from .wording import Rendered, one_line

# What the move does to a phone, in the user's words (the closed vocabulary of eas-moves.md).
OUTCOME_FOR_USER = {
    "continues": "keeps syncing",
    "full_resync": "keeps its account but downloads your mail again",
    "redirect": "is pointed to the new server by itself",
    "repartner": "needs its mail account set up again",
    "blocked": "will not sync until IT fixes something on the server side",
    "unknown": "is still being checked by IT",
}
UNDECIDED_TEXT = (
    "IT is still checking what the move does to this phone. You will get another e-mail as "
    "soon as we know; until then there is nothing to do."
)


@dataclass(frozen=True)
class Step:
    title: str
    lines: list[str]


@dataclass
class Phone:
    """One phone as the e-mail describes it: only plain strings (device data is untrusted)."""

    partnership_id: int
    name: str
    model: str
    platform: str
    outcome: str
    what_happens: str
    explanation: str
    undecided: bool
    steps: list[Step] = field(default_factory=list)

    @property
    def continues(self) -> bool:
        return self.outcome == "continues"


@dataclass
class PersonContent:
    """Everything a person's notice may say, and the digest of it (for corrections)."""

    name: str
    address: str
    time_zone: str
    move_at: datetime
    phones: list[Phone]
    digest: str
    # Renderings made ahead of time ("full", "short"), valid for the key they were made
    # under (prepared.py); empty when the content was read at send time.
    rendered: dict[str, Rendered] = field(default_factory=dict)

    @property
    def undecided(self) -> int:
        return sum(1 for p in self.phones if p.undecided)

    @property
    def needs_action(self) -> bool:
        return any(not p.continues for p in self.phones)


def _phone(row: DeviceRow) -> Phone:
    device = row.partnership.device
    # Device-reported: one line, no control or bidi characters, whatever the phone sent.
    name = one_line(device.friendly_name or device.model or device.device_type, 100)
    outcome = row.prediction.outcome if row.prediction is not None else "unknown"
    undecided = outcome == "unknown"
    steps = []
    if not undecided:
        for step in row.steps:
            if step.action == "nothing":
                continue
            title = step.instruction.title if step.instruction else step.label
            lines = [line.strip() for line in step.body.splitlines() if line.strip()]
            steps.append(Step(title=title, lines=lines))
    explanation = ""
    if row.explanation is not None and not undecided:
        explanation = row.explanation.user_text
    return Phone(
        partnership_id=row.partnership.pk,
        name=name or "Your phone",
        model=one_line(device.model, 100),
        platform=row.platform_label,
        outcome=outcome,
        what_happens=OUTCOME_FOR_USER.get(outcome, OUTCOME_FOR_USER["unknown"]),
        explanation=explanation,
        undecided=undecided,
        steps=steps,
    )


# {forest: time zone} of the organisations that recorded one: read per notice otherwise. Kept
# 5 s per process, cleared at once in the process that saves an organisation (apps.py).
ORGANISATION_ZONES = ProcessCache(ttl=5.0)


def zone_of(mailbox: Mailbox) -> str:
    """The person's own time zone, else their organisation's, else the deployment's."""
    server = mailbox.server
    forest = (server.forest_recorded or server.forest) if server is not None else ""
    candidates = [mailbox.time_zone]
    if not mailbox.time_zone and forest:
        zones = ORGANISATION_ZONES.get(
            "all",
            lambda: dict(
                Organisation.objects.exclude(time_zone="").values_list("forest", "time_zone")
            ),
        )
        candidates.append(zones.get(forest, ""))
    for candidate in [*candidates, settings.TIME_ZONE]:
        if candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


def digest_of(*, move_at: datetime | None, phones: list[tuple[int, str, tuple[str, ...]]]) -> str:
    """What a notice told, as a hash: the move time and each phone's outcome and steps."""
    said = {
        "at": move_at.astimezone(UTC).isoformat() if move_at else None,
        "phones": sorted([pk, outcome, list(actions)] for pk, outcome, actions in phones),
    }
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


def _move_context(content: PersonContent) -> dict[str, str]:
    at = content.move_at
    return {
        "at": f"{at:%A} {at.day} {at:%B %Y} at {at:%H:%M}",
        "day": f"{at:%A} {at.day} {at:%B}",
        "time_zone": content.time_zone,
    }


def person_context(batch_name: str, content: PersonContent, **extra: object) -> dict[str, object]:
    """The plain values a person's template sees (no model objects: templates are editable)."""
    phones = [
        {
            "name": p.name,
            "model": p.model,
            "platform": p.platform,
            "outcome": p.outcome,
            "what_happens": p.what_happens,
            "explanation": p.explanation,
            "undecided": p.undecided,
            "continues": p.continues,
            "steps": [{"title": s.title, "lines": list(s.lines)} for s in p.steps],
        }
        for p in content.phones
    ]
    return {
        "person": {"name": content.name, "address": content.address},
        "batch": {"name": batch_name},
        "move": _move_context(content),
        "phones": phones,
        "needs_action": content.needs_action,
        "needs_steps": any(p.steps for p in content.phones),
        "undecided": content.undecided,
        "undecided_text": UNDECIDED_TEXT,
        "short": False,
        "cancelled": False,
        "helpdesk": settings.NOTICE_HELPDESK_CONTACT,
        **extra,
    }


def variant_of(extra: dict[str, object]) -> str | None:
    """Which rendering of a before-move notice the extras ask for: the full one, the short one
    (every phone continues), or one never rendered ahead (a cancellation)."""
    if not extra:
        return "full"
    if extra == {"short": True}:
        return "short"
    return None


def person_content(*, batch: MoveBatch, member: BatchMailbox) -> PersonContent:
    """The person's phones in this batch's plan, in the person's time zone."""
    # The phones a current export lists; one a full export no longer lists is not told about.
    rows = device_rows(mailbox=member.mailbox, member=member, current_only=True)
    return content_of(batch=batch, member=member, rows=rows)


def content_of(*, batch: MoveBatch, member: BatchMailbox, rows: list[DeviceRow]) -> PersonContent:
    """person_content() from device rows read already (many people at once: prepared.py)."""
    mailbox = member.mailbox
    zone = zone_of(mailbox)
    phones = [_phone(row) for row in rows]
    digest = digest_of(
        move_at=batch.start_at,
        phones=[
            (
                row.partnership.pk,
                phone.outcome,
                tuple(s.action for s in row.steps) if not phone.undecided else (),
            )
            for row, phone in zip(rows, phones, strict=True)
        ],
    )
    return PersonContent(
        name=one_line(mailbox.display_name, 100) or mailbox.primary_smtp_address,
        address=mailbox.primary_smtp_address,
        time_zone=zone,
        move_at=timezone.localtime(batch.start_at, ZoneInfo(zone)),
        phones=phones,
        digest=digest,
    )


def content_to_json(content: PersonContent) -> dict:
    """A person's content as JSON values, to be stored with a notice rendered ahead."""
    return {
        "name": content.name,
        "address": content.address,
        "time_zone": content.time_zone,
        "move_at": content.move_at.isoformat(),
        "phones": [asdict(phone) for phone in content.phones],
        "digest": content.digest,
    }


def content_from_json(data: dict) -> PersonContent:
    phones = [
        Phone(**{**phone, "steps": [Step(**step) for step in phone["steps"]]})
        for phone in data["phones"]
    ]
    return PersonContent(
        name=data["name"],
        address=data["address"],
        time_zone=data["time_zone"],
        move_at=datetime.fromisoformat(data["move_at"]),
        phones=phones,
        digest=data["digest"],
    )
