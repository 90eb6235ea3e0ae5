"""Reads for the helpdesk pages: a person's mailbox, batches, phones, predictions and notices.

A person's page costs a fixed number of queries however many phones and batches they have:
one per kind of row (memberships, partnerships, predictions, instructions, notices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef, QuerySet

from devices.models import Mailbox, Partnership
from exsync.process_cache import ProcessCache
from migrations_plan.models import (
    PERSON_KINDS,
    BatchMailbox,
    BatchState,
    Continuity,
    ContinuityState,
    Explanation,
    MemberState,
    Notice,
    Prediction,
)

from .models import Action, Instruction, needed_actions, pick_instruction
from .platforms import LABELS, detect_platform

# Every instruction (a few dozen rows), re-read at most every 5 s per process; apps.py clears
# it when one is saved, so the process that edited one shows it at once.
INSTRUCTIONS = ProcessCache(ttl=5.0)


@dataclass(frozen=True)
class Step:
    """One thing the user must do, with the deployment's text for their platform (if any)."""

    action: str
    label: str
    instruction: Instruction | None
    body: str = ""


@dataclass
class DeviceRow:
    partnership: Partnership
    platform: str
    platform_label: str
    prediction: Prediction | None = None
    explanation: Explanation | None = None
    steps: list[Step] = field(default_factory=list)
    # After the move (the person's page, the silent queue): what the exports showed.
    continuity: Continuity | None = None

    @property
    def device(self):
        return self.partnership.device

    @property
    def is_unknown(self) -> bool:
        return self.prediction is not None and self.prediction.outcome == "unknown"


@dataclass
class PersonPage:
    mailbox: Mailbox
    memberships: list[BatchMailbox]
    # The batch the device rows speak about: the active one, else the latest not left.
    focus: BatchMailbox | None
    devices: list[DeviceRow]
    notices: list[Notice]


def person_mailboxes() -> QuerySet[Mailbox]:
    return Mailbox.objects.select_related("server")


def _focus(memberships: list[BatchMailbox]) -> BatchMailbox | None:
    active = [m for m in memberships if m.is_active]
    if active:
        return active[0]
    # A cancelled batch never moved anyone: its plan must not be what the caller is told.
    kept = [
        m
        for m in memberships
        if m.state != MemberState.REMOVED and m.batch.state != BatchState.CANCELLED
    ]
    return kept[0] if kept else None


def device_rows(
    *, mailbox: Mailbox, member: BatchMailbox | None, current_only: bool = False
) -> list[DeviceRow]:
    """Each phone of the mailbox with its prediction in `member`'s batch and the steps the
    user needs, in three queries (four when some phone needs steps).

    The person's page and the e-mails (migrations_plan/notices) tell the same thing from
    here. `current_only` leaves out partnerships a full export no longer listed.
    """
    return members_device_rows([(mailbox, member)], current_only=current_only)[mailbox.pk]


def members_device_rows(
    people: Sequence[tuple[Mailbox, BatchMailbox | None]], *, current_only: bool = False
) -> dict[int, list[DeviceRow]]:
    """device_rows() of many mailboxes at once, by mailbox id, in the same three or four
    queries whatever their number (notices rendered ahead: migrations_plan/notices/prepared.py).
    Each mailbox appears once in `people`, with the membership whose predictions it shows."""
    by_mailbox: dict[int, list[DeviceRow]] = {mailbox.pk: [] for mailbox, _ in people}
    partnerships = Partnership.objects.filter(mailbox_id__in=list(by_mailbox))
    if current_only:
        partnerships = partnerships.filter(is_stale=False)
    partnerships = list(
        partnerships.select_related("device").order_by(
            "mailbox_id",
            "is_stale",
            F("last_success_sync_at").desc(nulls_last=True),
            "device__device_id",
        )
    )
    member_of = {mailbox.pk: member for mailbox, member in people if member is not None}
    predictions: dict[tuple[int, int], Prediction] = {}
    if member_of and partnerships:
        predictions = {
            (p.member_id, p.partnership_id): p
            for p in Prediction.objects.filter(
                member_id__in=[m.pk for m in member_of.values()]
            ).select_related("explanation")
        }
    for partnership in partnerships:
        member = member_of.get(partnership.mailbox_id)
        prediction = predictions.get((member.pk, partnership.pk)) if member else None
        by_mailbox[partnership.mailbox_id].append(_device_row(partnership, prediction))
    address = {mailbox.pk: mailbox.primary_smtp_address for mailbox, _ in people}
    _attach_steps(
        [(row, address[mailbox_id]) for mailbox_id, rows in by_mailbox.items() for row in rows]
    )
    return by_mailbox


def _device_row(partnership: Partnership, prediction: Prediction | None) -> DeviceRow:
    device = partnership.device
    platform = detect_platform(
        device_type=device.device_type,
        model=device.model,
        os=device.os,
        user_agent=device.user_agent,
        client_type=partnership.client_type,
    )
    return DeviceRow(
        partnership=partnership,
        platform=platform,
        platform_label=LABELS[platform],
        prediction=prediction,
        explanation=prediction.explanation if prediction else None,
    )


def _attach_steps(rows: list[tuple[DeviceRow, str]]) -> None:
    """Each row's steps (for the user at that address): one query for every row's texts,
    none when no row needs a step."""
    wanted = {
        id(row): needed_actions(row.prediction.outcome, row.explanation.reasons or [])
        for row, _ in rows
        if row.prediction is not None and row.explanation is not None
    }
    texts: dict[tuple[str, str], Instruction] = {}
    actions = {a for needed in wanted.values() for a in needed}
    if actions:
        every = INSTRUCTIONS.get("all", lambda: list(Instruction.objects.all()))
        texts = {(i.platform, i.action): i for i in every if i.action in actions}
    labels = dict(Action.choices)
    for row, address in rows:
        for action in wanted.get(id(row), []):
            text = pick_instruction(texts, platform=row.platform, action=action)
            body = text.body_for(address=address) if text else ""
            row.steps.append(Step(action=action, label=labels[action], instruction=text, body=body))


def person_page(*, mailbox: Mailbox) -> PersonPage:
    """Everything the person's page shows, in at most five queries after the mailbox (six
    once the focus batch moved it: the phones' continuity)."""
    memberships = list(
        BatchMailbox.objects.filter(mailbox=mailbox)
        .select_related("batch", "batch__target_server", "source_server")
        .order_by("-batch__start_at", "-pk")
    )
    focus = _focus(memberships)
    devices = device_rows(mailbox=mailbox, member=focus)
    if focus is not None and focus.state == MemberState.MOVED:
        # One query more once the focus batch moved the mailbox: each phone's continuity.
        found = {
            c.partnership_id: c
            for c in Continuity.objects.filter(member=focus).select_related("replaced_by__device")
        }
        for row in devices:
            row.continuity = found.get(row.partnership.pk)
    notices = list(
        Notice.objects.filter(mailbox=mailbox, kind__in=PERSON_KINDS)
        .select_related("batch")
        .order_by("-due_at", "-pk")
    )
    return PersonPage(
        mailbox=mailbox,
        memberships=memberships,
        focus=focus,
        devices=devices,
        notices=notices,
    )


# -- Silent since the move: the helpdesk queue (issue 14) ------------------------------------


@dataclass
class SilentPerson:
    """A moved member with a phone silent since the move, and those phones (DeviceRow, each
    with its continuity and the steps the user needs)."""

    member: BatchMailbox
    phones: list[DeviceRow]

    @property
    def mailbox(self) -> Mailbox:
        return self.member.mailbox


def silent_members() -> QuerySet[BatchMailbox]:
    """Moved members with a silent phone, the oldest move first (the longest waiting)."""
    return (
        BatchMailbox.objects.filter(state=MemberState.MOVED)
        .filter(
            Exists(Continuity.objects.filter(member=OuterRef("pk"), state=ContinuityState.SILENT))
        )
        .select_related("mailbox", "batch")
        .order_by("moved_at", "pk")
    )


def silent_people(*, members: Sequence[BatchMailbox]) -> list[SilentPerson]:
    """The silent phones of `members` (a page of silent_members()), each with its prediction
    and the steps to tell the user, as the person's page and the follow-up e-mail say them.
    Three queries whatever the number of people: the phones, the predictions, the texts."""
    members = list(members)
    if not members:
        return []
    ids = [m.pk for m in members]
    silent = list(
        Continuity.objects.filter(member_id__in=ids, state=ContinuityState.SILENT)
        .select_related("partnership__device")
        .order_by("member_id", "partnership__device__device_id")
    )
    predictions = {
        (p.member_id, p.partnership_id): p
        for p in Prediction.objects.filter(
            member_id__in=ids, partnership_id__in={c.partnership_id for c in silent}
        ).select_related("explanation")
    }
    by_member: dict[int, list[DeviceRow]] = {pk: [] for pk in ids}
    addresses = {m.pk: m.mailbox.primary_smtp_address for m in members}
    rows = []
    for c in silent:
        row = _device_row(c.partnership, predictions.get((c.member_id, c.partnership_id)))
        row.continuity = c
        by_member[c.member_id].append(row)
        rows.append((row, addresses[c.member_id]))
    _attach_steps(rows)
    return [SilentPerson(member=m, phones=by_member[m.pk]) for m in members]
