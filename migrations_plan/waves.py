"""Waves of an organisation-wide migration (issue 17, part 3): many source servers to one
target. Which servers to move first, what to do before each wave, and the devices each wave
would break. Reads only, like compare.py (one read of every mailbox not yet in a batch, split by
source server); services.batches_create_waves turns a suggestion into draft batches.

The order is a suggestion, stated as such: fewest people needing action first (a quiet pilot,
then the harder servers once their prerequisites are done), unsupported paths last (they need
an intermediate version, not a wave).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from devices.models import Mailbox

from .compare import (
    EXCHANGE_ONLINE_CHOICE,
    OUTCOMES,
    Planner,
    PrerequisiteRow,
    Selection,
    TargetResult,
    count_target,
    prerequisites,
    selection_read,
    target_context,
)
from .facts_from_inventory import Inventory
from .planner.outcomes import Outcome
from .planner.whatif import CHANGE_BY_ID

__all__ = ["Wave", "WavePlan", "wave_mailboxes", "waves_suggest"]

BREAKS = (Outcome.BLOCKED.value, Outcome.REPARTNER.value)


@dataclass
class Wave:
    """The mailboxes of one source server, moved together.

    breaks: devices that would stop syncing or need re-creating (blocked, repartner);
    may_break: devices whose outcome is a range or unknown. first_needed: prerequisites this
    wave is the first to need, and every one about its own users (pre-approval, stale
    partnerships, the device limit); also_needs: server, host name or namespace changes an
    earlier wave needed already (done by then).
    """

    number: int
    server_id: int
    server: str
    generation: str
    mailboxes: int
    result: TargetResult
    first_needed: list[PrerequisiteRow] = field(default_factory=list)
    also_needs: list[tuple[PrerequisiteRow, int]] = field(default_factory=list)

    @property
    def breaks(self) -> int:
        return sum(self.result.devices[o] for o in BREAKS)

    @property
    def may_break(self) -> int:
        return self.result.devices[Outcome.UNKNOWN.value]

    @property
    def unsupported(self) -> bool:
        return bool(self.result.unsupported)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wave": self.number,
            "server": self.server,
            "generation": self.generation,
            "mailboxes": self.mailboxes,
            "unsupported": self.unsupported,
            "people_needing_action": self.result.needing_action,
            "people_needing_action_range": [
                self.result.needing_action_min,
                self.result.needing_action_max,
            ],
            "devices": {o: self.result.devices[o] for o in OUTCOMES},
            "breaks": self.breaks,
            "may_break": self.may_break,
            "before_this_wave": [row.as_dict() for row in self.first_needed],
            "done_in_earlier_wave": [
                {"id": row.change, "subject": row.subject, "wave": n} for row, n in self.also_needs
            ],
        }


@dataclass
class WavePlan:
    target: TargetResult | None
    waves: list[Wave]

    @property
    def creatable(self) -> list[Wave]:
        return [w for w in self.waves if not w.unsupported]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name if self.target else None,
            "waves": [w.as_dict() for w in self.waves],
        }


def wave_mailboxes(*, target_id: int) -> QuerySet[Mailbox]:
    """Every mailbox that still has to move to the target: on another (recorded) server and in
    no active batch."""
    return (
        Mailbox.objects.exclude(server=None)
        .exclude(server_id=target_id)
        .exclude(batch_memberships__is_active=True)
    )


def _split(selection: Selection) -> dict[int, Selection]:
    """The selection per source server: fact keys carry the mailbox's server, and every key of
    one mailbox has the same one."""
    indices: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(selection.keys):
        indices[key.server_id].append(i)
    parts: dict[int, Selection] = {}
    for server_id, n in selection.per_server.items():
        if not server_id:
            continue
        own = indices.get(server_id, [])
        renumber = {old: new for new, old in enumerate(own)}
        parts[server_id] = Selection(
            keys=tuple(selection.keys[i] for i in own),
            devices=tuple(selection.devices[i] for i in own),
            holdings={
                tuple(renumber[i] for i in keys): people
                for keys, people in selection.holdings.items()
                if keys and keys[0] in renumber
            },
            mailboxes=n,
            per_server={server_id: n},
            stale={renumber[i]: c for i, c in selection.stale.items() if i in renumber}
            if selection.stale is not None
            else None,
        )
    return parts


def waves_suggest(
    *, target: str, move_date: date, move_kind: str = "", stale_days: int | None = None
) -> WavePlan:
    """One wave per source server still to move to `target` (a target choice: a server id, or
    "exo"), in the suggested order, each with the prerequisites to do before it. A fixed
    number of queries, whatever the organisation. Raises KeyError for an unknown target."""
    inventory = Inventory.load()
    planner = Planner(inventory)
    days = stale_days if stale_days is not None else settings.HYGIENE_STALE_DAYS
    target_id = inventory.exchange_online_id() if target == EXCHANGE_ONLINE_CHOICE else int(target)
    if target_id not in inventory.servers:
        raise KeyError(target)
    selection = selection_read(mailboxes=wave_mailboxes(target_id=target_id), stale_days=days)
    context = target_context(
        inventory=inventory, target_id=target_id, move_date=move_date, move_kind=move_kind
    )
    waves: list[Wave] = []
    for server_id, part in _split(selection).items():
        server = inventory.servers[server_id]
        result = count_target(inventory=inventory, planner=planner, selection=part, context=context)
        waves.append(
            Wave(
                number=0,
                server_id=server_id,
                server=server.name,
                generation=server.get_generation_display() if server.generation else "",
                mailboxes=part.mailboxes,
                result=result,
                first_needed=prerequisites(
                    selection=part, context=context, inventory=inventory, planner=planner
                ),
            )
        )
    waves.sort(
        key=lambda w: (
            w.unsupported,
            w.result.needing_action,
            w.result.needing_action_max,
            w.server.lower(),
        )
    )
    first: dict[tuple[str, str], int] = {}
    for number, wave in enumerate(waves, start=1):
        wave.number = number
        new, earlier = [], []
        for row in wave.first_needed:
            if not row.devices and not row.uncredited:
                continue
            if not CHANGE_BY_ID[row.change].shared:
                # About this wave's own users and devices: done for earlier waves' people
                # does not make it done for these.
                new.append((row, number))
                continue
            seen = first.setdefault((row.change, row.subject), number)
            (new if seen == number else earlier).append((row, seen))
        wave.first_needed = [row for row, _ in new]
        wave.also_needs = earlier
    chosen = count_target(
        inventory=inventory, planner=planner, selection=selection, context=context
    )
    return WavePlan(target=chosen, waves=waves)
