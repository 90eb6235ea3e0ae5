"""Compare move targets for a selection of mailboxes, and the prerequisites that change the
answer (issue 17). Reads only: no prediction row is written.

As in the create form's preview (preview.py), a prediction depends on a partnership only
through fact_key.KEY. The selection's live partnerships are read once (one query) and grouped
by key; each candidate target is then the planner once per distinct key, and people are
counted from which keys each mailbox's phones have. So comparing every target costs one read
and (targets x distinct keys) planner calls, whatever the number of mailboxes.

Ranges stay ranges: a device whose prediction has several possible outcomes counts under
`unknown` with each possible outcome in `devices_possible`, and a low-confidence prediction
([I] rules, open questions) makes "needs action" a range rather than a count.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, QuerySet
from django.urls import reverse
from django.utils import timezone

from devices.models import ExchangeServer, Generation, Mailbox, Partnership
from exsync.setsql import local_settings

from .fact_key import KEY, FactKey, columns, source
from .facts_from_inventory import BatchContext, Inventory
from .models import MemberState, MoveBatch
from .planner.facts import DeviceFacts, MoveFacts, OrgFacts
from .planner.outcomes import SEVERITY, Outcome
from .planner.predict import Prediction
from .planner.questions import QUESTIONS
from .planner.ranges import predict_range
from .planner.whatif import (
    CHANGE_BY_ID,
    CHANGES,
    Effect,
    Situation,
    effects,
    outcome_low_confidence,
)
from .selectors import question_url

__all__ = [
    "Comparison",
    "Planner",
    "PrerequisiteRow",
    "Selection",
    "TargetPlan",
    "TargetResult",
    "batch_mailboxes",
    "batch_target_plan",
    "count_target",
    "hosts_mailboxes",
    "prerequisites",
    "selection_read",
    "target_offered",
    "target_plan",
    "targets_compare",
]

OUTCOMES = [o.value for o in SEVERITY]  # worst first, as on the batch page
EXCHANGE_ONLINE_CHOICE = "exo"  # forms.TargetChoiceField's value for Exchange Online
MOVE_KINDS_TO_EXO = ("hybrid_onboard", "staged_or_cutover_or_imap")
MOVE_KINDS_ON_PREMISES = ("hybrid_offboard", "cross_forest")
BULK_READ = {"enable_nestloop": "off", "work_mem": "64MB"}  # as services._bulk_plan_settings


# --- the selection, read once ---------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The live partnerships of the chosen mailboxes, grouped by fact key.

    devices[i]: partnerships with keys[i]. holdings: for each set of keys a mailbox's phones
    have (sorted key indices), how many mailboxes have exactly that set. stale: per key index,
    {stale partnerships of the device's mailbox: devices} (read only when asked for).
    """

    keys: tuple[FactKey, ...]
    devices: tuple[int, ...]
    holdings: dict[tuple[int, ...], int]
    mailboxes: int
    per_server: dict[int | None, int]
    stale: dict[int, Counter[int]] | None = None

    @property
    def people_with_phones(self) -> int:
        return sum(self.holdings.values())


def selection_read(*, mailboxes: QuerySet[Mailbox], stale_days: int | None = None) -> Selection:
    """Read the selection: two queries (three with `stale_days`), whatever its size."""
    ids_sql, params = mailboxes.order_by().values("pk").query.sql_with_params()
    # Assembled from fact_key's constant column names and the queryset's own SQL; every value
    # travels as a parameter (as in preview.py).
    sql = f"SELECT f.mailbox_id, {columns()} FROM {source(ids_sql)}"  # noqa: S608
    old: dict[int, int] = {}
    # The settings batch_plan reads a whole batch with: a freshly filled batch has no row
    # estimates, and nested loops with a sort spilled to disk take twice as long as hash joins.
    with transaction.atomic(), local_settings(BULK_READ):
        with connection.cursor() as cursor:
            cursor.execute(sql, list(params))
            rows = cursor.fetchall()
        per_server = dict(
            mailboxes.order_by()
            .values_list("server_id")
            .annotate(n=Count("pk"))
            .values_list("server_id", "n")
        )
        if stale_days is not None:
            from helpdesk.hygiene import stale_q  # the hygiene page's own definition of stale

            old = dict(
                Partnership.objects.filter(
                    stale_q(days=stale_days), is_stale=False, mailbox__in=mailboxes.order_by()
                )
                .values_list("mailbox_id")
                .annotate(n=Count("pk"))
                .values_list("mailbox_id", "n")
            )
    index: dict[tuple, int] = {}
    held: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        held[row[0]].add(index.setdefault(row[1:], len(index)))
    counts = Counter(index[row[1:]] for row in rows)
    stale: dict[int, Counter[int]] | None = None
    if stale_days is not None:
        stale = defaultdict(Counter)
        for row in rows:
            stale[index[row[1:]]][old.get(row[0], 0)] += 1
    width = len(KEY)
    return Selection(
        keys=tuple(FactKey(*k[:width]) for k in index),
        devices=tuple(counts[i] for i in range(len(index))),
        holdings=dict(Counter(tuple(sorted(keys)) for keys in held.values())),
        mailboxes=sum(per_server.values()),
        per_server=per_server,
        stale=dict(stale) if stale is not None else None,
    )


# --- every target ---------------------------------------------------------------------------------


def hosts_mailboxes(server: ExchangeServer) -> bool:
    """Whether a server can be a move target: a mailbox server (2003 shows ServerRole None; a
    server whose roles were not exported is offered too), or Exchange Online."""
    if server.generation == Generation.EXO:
        return True
    roles = server.roles.replace(" ", "").lower()
    return roles in ("", "none") or "mailbox" in roles


def target_offered(choice: str) -> bool:
    """Whether `choice` is a target the comparison lists: Exchange Online, or the id of a
    server that can hold mailboxes. One query; made-up values (any digit string) are refused
    before they are keyed or queued."""
    if choice == EXCHANGE_ONLINE_CHOICE:
        return True
    if not (choice.isascii() and choice.isdigit()) or len(choice) > 18:  # a bigint's digits
        return False
    server = ExchangeServer.objects.filter(pk=int(choice)).only("generation", "roles").first()
    return server is not None and hosts_mailboxes(server)


def move_kind_fits(move_kind: str, server: ExchangeServer) -> bool:
    """The batch's move kind, where it makes sense for this target (services._check_move_kind)."""
    to_cloud = server.generation == Generation.EXO
    if move_kind in MOVE_KINDS_TO_EXO:
        return to_cloud
    if move_kind in MOVE_KINDS_ON_PREMISES:
        return not to_cloud
    return True


class Planner:
    """predict_range over an Inventory, remembered: the prerequisites of the chosen target start
    from the answers its comparison already has, and what-if facts met twice are asked once."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._by_key: dict[tuple[FactKey, BatchContext], Prediction] = {}
        self._by_facts: dict[tuple, tuple[OrgFacts | None, Prediction]] = {}

    def facts(self, key: FactKey, context: BatchContext) -> tuple[MoveFacts, DeviceFacts, OrgFacts]:
        return self.inventory.planner_inputs(key, context)

    def predict(self, key: FactKey, context: BatchContext) -> Prediction:
        answer = self._by_key.get((key, context))
        if answer is None:
            answer = self._by_key[(key, context)] = predict_range(*self.facts(key, context))
        return answer

    def predict_facts(
        self, move: MoveFacts, device: DeviceFacts, org: OrgFacts | None
    ) -> Prediction:
        # The Inventory hands out one OrgFacts per forest and target, and a what-if change
        # keeps it or makes a new one: its identity is enough, where hashing its tuples of
        # servers for every device would cost more than it saves.
        # The entry keeps its OrgFacts alive, so no other object can take over its id.
        memo = (move, device, id(org))
        known = self._by_facts.get(memo)
        if known is None or known[0] is not org:
            known = self._by_facts[memo] = (org, predict_range(move, device, org))
        return known[1]


@dataclass
class TargetResult:
    """What moving the selection to one target would do.

    needing_action: people whose worst phone does not simply continue (the batch page's
    measure); needing_action_range: at least (certainly, on decided, confident predictions) and
    at most (on any possible outcome, or any low-confidence one).
    """

    server_id: int
    choice: str
    name: str
    generation: str
    is_exchange_online: bool
    current: bool = False
    move_kind_used: str = ""
    already_there: int = 0
    unsupported: list[Any] = field(default_factory=list)
    devices: Counter[str] = field(default_factory=Counter)
    devices_possible: Counter[str] = field(default_factory=Counter)
    low_confidence_devices: int = 0
    people: Counter[str] = field(default_factory=Counter)
    needing_action: int = 0
    needing_action_min: int = 0
    needing_action_max: int = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Per outcome, worst first: people, devices and the devices it may be (a range)."""
        return [
            {
                "outcome": o,
                "people": self.people[o],
                "devices": self.devices[o],
                "devices_possible": self.devices_possible[o],
                "widens": self.devices_possible[o] > self.devices[o],
            }
            for o in OUTCOMES
        ]

    @property
    def is_range(self) -> bool:
        return self.needing_action_min != self.needing_action_max

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "choice": self.choice,
            "generation": self.generation,
            "exchange_online": self.is_exchange_online,
            "current": self.current,
            "move_kind": self.move_kind_used or "derived from the servers",
            "already_there": self.already_there,
            "unsupported": bool(self.unsupported),
            "unsupported_paths": [p.text for p in self.unsupported],
            "people_needing_action": self.needing_action,
            "people_needing_action_range": [self.needing_action_min, self.needing_action_max],
            "people": {o: self.people[o] for o in OUTCOMES},
            "devices": {o: self.devices[o] for o in OUTCOMES},
            "devices_possible": {o: self.devices_possible[o] for o in OUTCOMES},
            "low_confidence_devices": self.low_confidence_devices,
        }


@dataclass
class Comparison:
    targets: list[TargetResult]
    mailboxes: int
    people_with_phones: int
    devices: int
    seconds: float = 0.0

    def target(self, choice: str) -> TargetResult | None:
        return next((t for t in self.targets if t.choice == choice), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailboxes": self.mailboxes,
            "people_with_phones": self.people_with_phones,
            "devices": self.devices,
            "targets": [t.as_dict() for t in self.targets],
        }


def _choice(server: ExchangeServer) -> str:
    return EXCHANGE_ONLINE_CHOICE if server.generation == Generation.EXO else str(server.pk)


def target_context(
    *,
    inventory: Inventory,
    target_id: int,
    move_date: date,
    move_kind: str = "",
    target_policy_id: int | None = None,
) -> BatchContext:
    """The batch's move as it would go to `target_id`: its move kind and policy where they
    fit that target (a hybrid move kind means nothing for an on-premises server; a policy of
    another organisation is not the target's), else derived as for a new batch."""
    server = inventory.servers[target_id]
    policy = inventory.policies.get(target_policy_id) if target_policy_id else None
    if policy is not None and (
        policy.organisation is None or policy.organisation.forest != server.effective_forest
    ):
        policy = None
    return BatchContext(
        target_id=target_id,
        move_date=move_date,
        move_kind=move_kind if move_kind_fits(move_kind, server) else "",
        target_policy_id=policy.pk if policy else None,
    )


def targets_compare(
    *,
    selection: Selection,
    move_date: date,
    move_kind: str = "",
    target_policy_id: int | None = None,
    current_target_id: int | None = None,
    inventory: Inventory | None = None,
    planner: Planner | None = None,
) -> Comparison:
    """Every target that can hold mailboxes (and Exchange Online) for this selection, the one
    needing the fewest people to act first. No query beyond Inventory.load()."""
    started = time.perf_counter()
    inventory = inventory or Inventory.load()
    planner = planner or Planner(inventory)
    inventory.exchange_online_id()
    results = []
    for server in list(inventory.servers.values()):
        if not hosts_mailboxes(server):
            continue
        context = target_context(
            inventory=inventory,
            target_id=server.pk,
            move_date=move_date,
            move_kind=move_kind,
            target_policy_id=target_policy_id,
        )
        result = count_target(
            inventory=inventory, planner=planner, selection=selection, context=context
        )
        result.current = server.pk == current_target_id
        results.append(result)
    results.sort(
        key=lambda r: (
            r.needing_action,
            r.needing_action_max,
            bool(r.unsupported),
            r.people[Outcome.BLOCKED],
            r.name.lower(),
        )
    )
    return Comparison(
        targets=results,
        mailboxes=selection.mailboxes,
        people_with_phones=selection.people_with_phones,
        devices=sum(selection.devices),
        seconds=time.perf_counter() - started,
    )


def count_target(
    *, inventory: Inventory, planner: Planner, selection: Selection, context: BatchContext
) -> TargetResult:
    """People and devices per outcome if the selection moved as `context` says; no query."""
    from .services import unsupported_paths

    server = inventory.servers[context.target_id]
    result = TargetResult(
        server_id=server.pk,
        choice=_choice(server),
        name=server.name,
        generation=server.get_generation_display() if server.generation else "",
        is_exchange_online=server.generation == Generation.EXO,
        move_kind_used=context.move_kind,
        already_there=selection.per_server.get(server.pk, 0),
        unsupported=unsupported_paths(
            target=server, servers=inventory.servers, per_server=selection.per_server
        ),
    )
    _count(result, selection, [planner.predict(k, context) for k in selection.keys])
    return result


def _count(result: TargetResult, selection: Selection, answers: list[Prediction]) -> None:
    # Per key: the outcome's place worst-first (0 = blocked) and whether the device surely
    # (whatever the missing facts) or maybe needs action. Ranges and low confidence widen
    # "needs action" into a span, never a guess.
    place = {o: i for i, o in enumerate(SEVERITY)}
    worst: list[int] = []
    surely: list[bool] = []
    maybe: list[bool] = []
    for n, answer in zip(selection.devices, answers, strict=True):
        outcome = Outcome(answer.outcome)
        possible = answer.possible or (outcome,)
        result.devices[outcome.value] += n
        for o in possible:
            result.devices_possible[str(o)] += n
        low = outcome_low_confidence(answer)
        if low:
            result.low_confidence_devices += n
        worst.append(place[outcome])
        # "At least": decided and confident. A bare `unknown` may still turn out `continues`.
        surely.append(
            Outcome.CONTINUES not in possible and Outcome.UNKNOWN not in possible and not low
        )
        maybe.append(low or any(o != Outcome.CONTINUES for o in possible))
    continues = place[Outcome.CONTINUES]
    for keys, people in selection.holdings.items():
        first = min(worst[i] for i in keys)
        result.people[SEVERITY[first].value] += people
        if first != continues:
            result.needing_action += people
        if any(surely[i] for i in keys):
            result.needing_action_min += people
        if any(maybe[i] for i in keys):
            result.needing_action_max += people


# --- prerequisites for one target -----------------------------------------------------------------

WHERE_LABELS = {
    "server": "the server's page (facts)",
    "namespaces": "Organisation → Namespaces",
    "endpoints": "Endpoints (certificate probes)",
    "imports": "Imports",
    "organisation": "Organisation",
    "hygiene": "Helpdesk → Hygiene → Stale partnerships",
}


def _where_url(where: str, subject: str, inventory: Inventory) -> str:
    if where == "server":
        by_name = {s.name.lower(): s.pk for s in inventory.servers.values() if s.pk > 0}
        pk = by_name.get(subject.lower())
        if pk is not None:
            return reverse("devices:server_detail", args=[pk]) + "#facts"
        return reverse("devices:organisation") + "#servers"
    return {
        "namespaces": lambda: reverse("devices:organisation") + "#namespaces",
        "endpoints": lambda: reverse("devices:endpoint_probes"),
        "imports": lambda: reverse("devices:import_list"),
        "organisation": lambda: reverse("devices:organisation"),
        "hygiene": lambda: reverse("helpdesk:hygiene_stale"),
    }[where]()


@dataclass
class PrerequisiteRow:
    """One admin action for one subject (a server, a host name), over the selection's devices."""

    change: str
    subject: str
    title: str
    rules: tuple[str, ...]
    admin_action: str
    where: str
    where_label: str
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)  # (from, to) -> devices
    low_confidence: int = 0
    uncredited: int = 0
    possible: set[str] = field(default_factory=set)
    missing: Counter[str] = field(default_factory=Counter)
    missing_text: set[str] = field(default_factory=set)
    details: set[str] = field(default_factory=set)

    @property
    def devices(self) -> int:
        return sum(self.moves.values())

    @property
    def from_to(self) -> list[dict[str, Any]]:
        rank = {o: i for i, o in enumerate(OUTCOMES)}
        return [
            {"from": a, "to": b, "devices": n}
            for (a, b), n in sorted(
                self.moves.items(), key=lambda item: (-item[1], rank[item[0][0]], rank[item[0][1]])
            )
        ]

    @property
    def missing_facts(self) -> list[dict[str, Any]]:
        return [
            {
                "question": q,
                "fact": QUESTIONS[q].fact if q in QUESTIONS else q,
                "how": QUESTIONS[q].how if q in QUESTIONS else "",
                "url": question_url(q),
                "devices": n,
            }
            for q, n in self.missing.most_common()
        ]

    @property
    def detail(self) -> str:
        if self.change == "eas-max-devices" and self.details:
            # Each user needs room for one more than they hold: the most any of them needs.
            return f"to at least {max(int(d.split()[-1]) for d in self.details)}"
        shown = sorted(self.details)
        return "; ".join(shown[:3]) + (f"; and {len(shown) - 3} more" if len(shown) > 3 else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.change,
            "title": self.title,
            "subject": self.subject,
            "detail": self.detail,
            "rules": list(self.rules),
            "admin_action": self.admin_action,
            "devices": self.devices,
            "from_to": self.from_to,
            "low_confidence_devices": self.low_confidence,
            "uncredited_devices": self.uncredited,
            "uncredited_possible": [o for o in OUTCOMES if o in self.possible],
            "missing": self.missing_facts,
            "missing_text": sorted(self.missing_text),
            "where": self.where,
        }


def prerequisites(
    *,
    selection: Selection,
    context: BatchContext,
    inventory: Inventory | None = None,
    planner: Planner | None = None,
) -> list[PrerequisiteRow]:
    """What an admin can change before moving the selection as `context` says, each with the
    devices it moves to a better outcome (from -> to), evaluated by the planner with that one
    fact changed (planner/whatif.py). Devices whose improvement would rest on a missing fact
    are counted apart (`uncredited`, with the facts missing), never credited.
    """
    inventory = inventory or Inventory.load()
    planner = planner or Planner(inventory)
    rows: dict[tuple[str, str], PrerequisiteRow] = {}
    cleanup = (CHANGE_BY_ID["stale-cleanup"],)
    others = tuple(c for c in CHANGES if c.id != "stale-cleanup")
    for i, (key, n) in enumerate(zip(selection.keys, selection.devices, strict=True)):
        move, device, org = planner.facts(key, context)
        base = planner.predict(key, context)
        situation = Situation(move, device, org, base)
        found = [(e, n) for e in effects(situation, others, planner.predict_facts)]
        groups = (selection.stale or {}).get(i) or Counter({None: n})
        for stale, m in groups.items():
            with_stale = Situation(move, device, org, base, stale_partnerships=stale)
            found.extend((e, m) for e in effects(with_stale, cleanup, planner.predict_facts))
        for effect, m in found:
            _add(rows, effect, m, inventory)
    return sorted(rows.values(), key=lambda r: (-r.devices, -r.uncredited, r.title, r.subject))


def _add(
    rows: dict[tuple[str, str], PrerequisiteRow], effect: Effect, n: int, inventory: Inventory
) -> None:
    change = CHANGE_BY_ID[effect.change]
    row = rows.get((change.id, effect.subject))
    if row is None:
        row = rows[(change.id, effect.subject)] = PrerequisiteRow(
            change=change.id,
            subject=effect.subject,
            title=change.title,
            rules=change.rules,
            admin_action=change.admin_action,
            where=_where_url(change.where, effect.subject, inventory),
            where_label=WHERE_LABELS[change.where],
        )
    if effect.detail:
        row.details.add(effect.detail)
    if effect.credited:
        row.moves[(str(effect.before), str(effect.after))] += n
        if effect.low_confidence:
            row.low_confidence += n
        return
    row.uncredited += n
    row.possible.update(str(o) for o in effect.possible)
    for question in effect.missing:
        row.missing[question] += n
    if effect.missing_text:
        row.missing_text.add(effect.missing_text)


# --- the whole comparison for a page or the command line --------------------------------------------


@dataclass
class TargetPlan:
    """A comparison of every target, and the prerequisites of the chosen one."""

    comparison: Comparison
    chosen: TargetResult | None
    prerequisites: list[PrerequisiteRow]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.comparison.as_dict(),
            "prerequisites": {
                "target": self.chosen.name if self.chosen else None,
                "items": [row.as_dict() for row in self.prerequisites],
            },
        }


def target_plan(
    *,
    mailboxes: QuerySet[Mailbox],
    move_date: date,
    move_kind: str = "",
    target_policy_id: int | None = None,
    current_target_id: int | None = None,
    chosen: str | None = None,
    stale_days: int | None = None,
) -> TargetPlan:
    """Compare every target for these mailboxes, and list the prerequisites of `chosen` (a
    target choice: a server id, or "exo"; default: the current target). A fixed number of
    queries, whatever the number of mailboxes."""
    from django.conf import settings

    inventory = Inventory.load()
    planner = Planner(inventory)
    days = stale_days if stale_days is not None else settings.HYGIENE_STALE_DAYS
    selection = selection_read(mailboxes=mailboxes, stale_days=days)
    comparison = targets_compare(
        selection=selection,
        move_date=move_date,
        move_kind=move_kind,
        target_policy_id=target_policy_id,
        current_target_id=current_target_id,
        inventory=inventory,
        planner=planner,
    )
    pick = comparison.target(chosen) if chosen else None
    if pick is None and current_target_id is not None:
        pick = next((t for t in comparison.targets if t.current), None)
    rows: list[PrerequisiteRow] = []
    if pick is not None:
        context = target_context(
            inventory=inventory,
            target_id=pick.server_id,
            move_date=move_date,
            move_kind=move_kind,
            target_policy_id=target_policy_id,
        )
        rows = prerequisites(
            selection=selection, context=context, inventory=inventory, planner=planner
        )
    return TargetPlan(comparison=comparison, chosen=pick, prerequisites=rows)


def batch_mailboxes(batch: MoveBatch) -> QuerySet[Mailbox]:
    """The mailboxes a plan of the batch predicts for: its pending members."""
    return Mailbox.objects.filter(
        batch_memberships__batch=batch,
        batch_memberships__is_active=True,
        batch_memberships__state=MemberState.PENDING,
    )


def batch_target_plan(*, batch: MoveBatch, chosen: str | None = None) -> TargetPlan:
    """target_plan() for a batch's pending mailboxes, moving as the batch says (date, move kind,
    policy); prerequisites for `chosen` or, by default, the batch's own target."""
    return target_plan(
        mailboxes=batch_mailboxes(batch),
        move_date=timezone.localdate(batch.start_at),
        move_kind=batch.move_kind,
        target_policy_id=batch.target_policy_id,
        current_target_id=batch.target_server_id,
        chosen=chosen,
    )
