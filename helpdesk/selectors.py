"""Reads for the helpdesk pages: a person's mailbox, batches, phones, predictions and notices.

A person's page costs a fixed number of queries however many phones and batches they have:
one per kind of row (memberships, partnerships, predictions, instructions, notices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import F, QuerySet

from devices.models import Mailbox, Partnership
from migrations_plan.models import (
    PERSON_KINDS,
    BatchMailbox,
    BatchState,
    Explanation,
    MemberState,
    Notice,
    Prediction,
)

from .models import Action, Instruction, needed_actions, pick_instruction
from .platforms import LABELS, detect_platform


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
    partnerships = Partnership.objects.filter(mailbox=mailbox)
    if current_only:
        partnerships = partnerships.filter(is_stale=False)
    partnerships = list(
        partnerships.select_related("device").order_by(
            "is_stale", F("last_success_sync_at").desc(nulls_last=True), "device__device_id"
        )
    )
    predictions: dict[int, Prediction] = {}
    if member is not None and partnerships:
        predictions = {
            p.partnership_id: p
            for p in Prediction.objects.filter(member=member).select_related("explanation")
        }

    rows = []
    for partnership in partnerships:
        device = partnership.device
        platform = detect_platform(
            device_type=device.device_type,
            model=device.model,
            os=device.os,
            user_agent=device.user_agent,
            client_type=partnership.client_type,
        )
        prediction = predictions.get(partnership.pk)
        rows.append(
            DeviceRow(
                partnership=partnership,
                platform=platform,
                platform_label=LABELS[platform],
                prediction=prediction,
                explanation=prediction.explanation if prediction else None,
            )
        )

    wanted = {
        row.partnership.pk: needed_actions(row.prediction.outcome, row.explanation.reasons or [])
        for row in rows
        if row.prediction is not None and row.explanation is not None
    }
    texts: dict[tuple[str, str], Instruction] = {}
    actions = {a for needed in wanted.values() for a in needed}
    if actions:
        texts = {(i.platform, i.action): i for i in Instruction.objects.filter(action__in=actions)}
    labels = dict(Action.choices)
    for row in rows:
        for action in wanted.get(row.partnership.pk, []):
            text = pick_instruction(texts, platform=row.platform, action=action)
            body = text.body_for(address=mailbox.primary_smtp_address) if text else ""
            row.steps.append(Step(action=action, label=labels[action], instruction=text, body=body))
    return rows


def person_page(*, mailbox: Mailbox) -> PersonPage:
    """Everything the person's page shows, in at most five queries after the mailbox."""
    memberships = list(
        BatchMailbox.objects.filter(mailbox=mailbox)
        .select_related("batch", "batch__target_server", "source_server")
        .order_by("-batch__start_at", "-pk")
    )
    focus = _focus(memberships)
    devices = device_rows(mailbox=mailbox, member=focus)
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
