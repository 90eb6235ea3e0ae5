"""Reads of move planning for pages, commands and services; no writes here."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain, repeat
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from devices.models import Mailbox, Partnership

from . import accuracy
from .models import (
    ACTIVE_BATCH_STATES,
    BatchMailbox,
    Continuity,
    Explanation,
    MemberState,
    MoveBatch,
    Outcome,
    Prediction,
)

OUTCOME_ORDER = [o.value for o in Outcome]  # worst first
# Members a batch page and plan_batch show: all but removed ones, so a completed or
# cancelled batch (whose members no longer hold their mailboxes) still shows its plan.
SHOWN_STATES = (MemberState.PENDING, MemberState.MOVED, MemberState.FAILED)


def outcome_summary(*, batch: MoveBatch) -> dict[str, int]:
    """Devices per outcome, every outcome present (zero when none), worst first."""
    counts = Counter(
        dict(
            Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
            .values_list("outcome")
            .annotate(n=Count("outcome"))
            .values_list("outcome", "n")
        )
    )
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOME_ORDER}


def batch_plan_document(*, batch: MoveBatch) -> dict[str, Any]:
    """The plan as `plan_batch --json` prints it; three queries whatever the batch size."""
    members = list(
        BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES)
        .order_by("mailbox__primary_smtp_address")
        .values_list("pk", "mailbox__primary_smtp_address")
    )
    predictions = (
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .order_by("member_id", "partnership__device__device_id")
        .values_list("member_id", "partnership__device__device_id", "outcome", "explanation_id")
    )
    by_member: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    explanation_ids = set()
    for member_id, device_id, outcome, explanation_id in predictions.iterator(chunk_size=20_000):
        by_member[member_id].append((device_id, outcome, explanation_id))
        explanation_ids.add(explanation_id)
    explained = {
        pk: rest
        for pk, *rest in Explanation.objects.filter(pk__in=explanation_ids).values_list(
            "pk", "reasons", "possible", "depends_on", "branches", "user_text", "admin_text"
        )
    }
    summary: Counter[str] = Counter()
    items = []
    for member_id, address in members:
        devices = []
        for device_id, outcome, explanation_id in by_member.get(member_id, []):
            summary[outcome] += 1
            reasons, possible, depends_on, branches, user_text, admin_text = explained[
                explanation_id
            ]
            devices.append(
                {
                    "device_id": device_id,
                    "outcome": outcome,
                    # Outcomes reachable under the missing facts, and the facts deciding them.
                    "possible": possible or [outcome],
                    "depends_on": depends_on,
                    "branches": [{"outcome": o, "when": w} for o, w in branches],
                    "user_text": user_text,
                    "admin_text": admin_text,
                    "reasons": reasons,
                }
            )
        items.append({"mailbox": address, "devices": devices})
    return {
        "batch": batch.name,
        "target_server": batch.target_server.name,
        "target_database": batch.target_database,
        "start": batch.start_at.isoformat(),
        "state": batch.state,
        "items": items,
        "summary": {o: summary.get(o, 0) for o in OUTCOME_ORDER},
    }


def batch_list() -> QuerySet[MoveBatch]:
    """Batches with their mailbox and per-outcome device counts, in one query.

    People are counted too: `n_people` have at least one phone, and `n_people_<outcome>` is
    how many of them have that outcome as their worst (so these add up to n_people). A
    person's worst outcome is an aggregate of an aggregate; counting instead the people with a
    phone at least as bad as each outcome (one DISTINCT count each, in the same pass over the
    predictions) gives it by difference.
    """
    active = Q(members__state__in=SHOWN_STATES)
    counts = {
        f"n_{o}": Count(
            "members__predictions__outcome", filter=active & Q(members__predictions__outcome=o)
        )
        for o in OUTCOME_ORDER
    }
    at_least = {
        f"_people_at_least_{o}": Count(
            "members",
            filter=active & Q(members__predictions__outcome__in=OUTCOME_ORDER[: i + 1]),
            distinct=True,
        )
        for i, o in enumerate(OUTCOME_ORDER)
    }
    people = {
        f"n_people_{o}": F(f"_people_at_least_{o}")
        - (F(f"_people_at_least_{OUTCOME_ORDER[i - 1]}") if i else Value(0))
        for i, o in enumerate(OUTCOME_ORDER)
    }
    return (
        MoveBatch.objects.select_related("target_server", "created_by")
        .annotate(n_mailboxes=Count("members", filter=active, distinct=True), **counts)
        .alias(**at_least)
        .annotate(n_people=F(f"_people_at_least_{OUTCOME_ORDER[-1]}"), **people)
        .order_by("-start_at", "name")
    )


def rule_in(explanation: Explanation, rule: str) -> bool:
    return any(r["rule"].lower() == rule.lower() for r in explanation.reasons)


def blocking_fixes(*, batch: MoveBatch) -> list[dict[str, Any]]:
    """What admins can do before the move to turn `blocked` into something better, with how
    many devices each fix concerns, from the distinct explanations of blocked devices."""
    counts = dict(
        Prediction.objects.filter(
            member__batch=batch, member__state__in=SHOWN_STATES, outcome=Outcome.BLOCKED
        )
        .values_list("explanation_id")
        .annotate(n=Count("outcome"))
        .values_list("explanation_id", "n")
    )
    return fixes_from(counts=counts, explanations=Explanation.objects.filter(pk__in=list(counts)))


def fixes_from(
    *, counts: dict[int, int], explanations: Iterable[Explanation]
) -> list[dict[str, Any]]:
    """blocking_fixes() from blocked devices counted per explanation (no query of its own)."""
    fixes: dict[tuple[str, str], dict[str, Any]] = {}
    for explanation in explanations:
        if explanation.pk not in counts:
            continue
        for reason in explanation.reasons:
            if reason["outcome"] != Outcome.BLOCKED or reason.get("is_warning"):
                continue
            key = (reason["rule"], reason["admin_action"])
            fix = fixes.setdefault(
                key,
                {
                    "rule": reason["rule"],
                    "admin_action": reason["admin_action"],
                    "text": reason["text"],
                    "devices": 0,
                },
            )
            fix["devices"] += counts[explanation.pk]
    return sorted(fixes.values(), key=lambda f: -f["devices"])


# Where each kind of question is answered: a URL name and a fragment of the page.
QUESTION_PLACES = {
    "namespaces": ("devices:organisation", "#namespaces"),
    "client-profiles": ("devices:organisation", "#client-profiles"),
    "servers": ("devices:organisation", "#servers"),
    "organisation": ("devices:organisation", ""),
    "imports": ("devices:import_list", ""),
    "batch": (None, ""),
}


def question_url(question_id: str) -> str:
    """Where a question (planner/questions.py) is answered, as a URL; "" for none."""
    from django.urls import NoReverseMatch, reverse

    from .planner.questions import QUESTIONS

    question = QUESTIONS.get(question_id)
    name, fragment = QUESTION_PLACES.get(question.where, (None, "")) if question else (None, "")
    try:
        return (reverse(name) + fragment) if name else ""
    except NoReverseMatch:
        return ""


def open_questions(*, batch: MoveBatch) -> list[dict[str, Any]]:
    """The facts this batch's predictions are missing, ranked by how many devices each would
    decide (then by how many it concerns at all), each with where it is answered.

    Two queries whatever the batch size: predictions counted per explanation, then the
    distinct explanations (each lists the questions its reasons name).
    """
    counts = dict(
        Prediction.objects.filter(member__batch=batch, member__state=MemberState.PENDING)
        .values_list("explanation_id")
        .annotate(n=Count("outcome"))
        .values_list("explanation_id", "n")
    )
    return questions_from(
        counts=counts, explanations=Explanation.objects.filter(pk__in=list(counts))
    )


def questions_from(
    *, counts: dict[int, int], explanations: Iterable[Explanation]
) -> list[dict[str, Any]]:
    """open_questions() from pending devices counted per explanation (no query of its own)."""
    from .planner.questions import QUESTIONS

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for explanation in explanations:
        if explanation.pk not in counts:
            continue
        n = counts[explanation.pk]
        deciding = set(explanation.depends_on)
        for reason in explanation.reasons:
            question_id = reason.get("question")
            if not question_id or question_id not in QUESTIONS:
                continue
            key = (question_id, reason.get("subject") or "")
            entry = found.get(key)
            if entry is None:
                question = QUESTIONS[question_id]
                entry = found[key] = {
                    "id": question_id,
                    "subject": key[1],
                    "fact": question.fact,
                    "how": question.how,
                    "url": question_url(question_id),
                    "decides": 0,
                    "devices": 0,
                    "outcomes": set(),
                    "_seen": set(),
                }
            if explanation.pk in entry["_seen"]:
                continue
            entry["_seen"].add(explanation.pk)
            entry["devices"] += n
            if question_id in deciding or (
                reason.get("outcome") == "unknown" and explanation.outcome == "unknown"
            ):
                entry["decides"] += n
                entry["outcomes"].update(explanation.possible or [explanation.outcome])
    ranked = sorted(found.values(), key=lambda e: (-e["decides"], -e["devices"], e["id"]))
    for entry in ranked:
        entry.pop("_seen")
        entry["outcomes"] = [o for o in OUTCOME_ORDER if o in entry["outcomes"]]
    return ranked


def batch_unsupported_paths(*, batch: MoveBatch) -> list:
    """Source servers of this batch's mailboxes that cannot coexist with its target."""
    from .services import unsupported_paths

    per_server = (
        BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES)
        .order_by()
        .values_list("source_server_id")
        .annotate(n=Count("pk"))
        .values_list("source_server_id", "n")
    )
    # unsupported_paths() counts the ids it is given: a row per server, not one per mailbox.
    source_ids = chain.from_iterable(repeat(pk, n) for pk, n in per_server)
    return unsupported_paths(source_ids=source_ids, target=batch.target_server)


# -- A batch's people: a person is a mailbox of the batch, with every phone it syncs ------------
#
# The batch page lists people, not devices, worst outcome first, and counts people next to
# devices; the dashboard counts the people of each coming batch who must act. Ranking 20,000
# people by the worst outcome of their phones is an aggregate over the whole batch (~50 ms on
# PostgreSQL), so it is computed once per plan: BatchImpact holds the ranking and the counts,
# cached under a key that changes with every plan and every change of membership.

NO_PHONE = len(OUTCOME_ORDER)  # the rank of a person without a phone: after every outcome
IMPACT_CACHE_SECONDS = 6 * 60 * 60  # a safety net only: the key changes when the data does
PHONE_SORTS = ("device", "model", "last_sync")  # orders by a fact of a person's phones


def outcome_rank(field: str = "outcome") -> Case:
    """An outcome as its place in OUTCOME_ORDER (0 = blocked, the worst), for MIN and ORDER BY."""
    return Case(
        *[When(**{field: o}, then=Value(i)) for i, o in enumerate(OUTCOME_ORDER)],
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class BatchImpact:
    """What a batch's plan does to its people and devices, counted in two queries.

    `people`: the member ids of everyone the page lists (all members but removed ones), the
    worst outcome first, then by name; `ranks`: each one's worst outcome in the same order, as
    an index into OUTCOME_ORDER (NO_PHONE: no phone syncs with the mailbox); `by_name`: the
    same ids by name. `devices`: devices per outcome. `explanation_counts`: (explanation id,
    member state, devices), from which the fixes and open questions are read. `key`: its cache
    key, under which the orders by a phone's fact are cached too.
    """

    people: tuple[int, ...]
    ranks: bytes
    by_name: tuple[int, ...]
    devices: dict[str, int]
    explanation_counts: tuple[tuple[int, str, int], ...]
    key: str = ""

    def people_per_outcome(self) -> dict[str, int]:
        """People per worst outcome: each person counts once, under their worst phone."""
        counts = Counter(self.ranks)
        return {o: counts.get(i, 0) for i, o in enumerate(OUTCOME_ORDER)}

    def people_without_phone(self) -> int:
        return self.ranks.count(NO_PHONE)

    def needing_action(self) -> dict[str, int]:
        """People whose worst phone does not simply continue, per outcome someone has."""
        return {o: n for o, n in self.people_per_outcome().items() if o != Outcome.CONTINUES and n}

    def explanation_devices(self, *, states: Iterable[str]) -> dict[int, int]:
        wanted = set(states)
        counts: Counter[int] = Counter()
        for explanation_id, state, n in self.explanation_counts:
            if state in wanted:
                counts[explanation_id] += n
        return dict(counts)


def batch_memberships(*, batch_ids: Iterable[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """Per batch and member state: (members, sum of their ids). One query.

    The counts are shown; with the id sums they also fingerprint who is in which state, so a
    removal, a move recorded or a mailbox added changes the key of the cached BatchImpact.
    """
    tally: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    rows = (
        BatchMailbox.objects.filter(batch_id__in=list(batch_ids))
        .values_list("batch_id", "state")
        .annotate(n=Count("pk"), ids=Sum("pk"))
        .order_by()
    )
    for batch_id, state, n, ids in rows:
        tally[batch_id][state] = (n, ids or 0)
    return tally


def _impact_key(batch: MoveBatch, membership: dict[str, tuple[int, int]]) -> str:
    # A plan rewrites predictions and then sets planned_at; everything else that changes what
    # the page counts changes the membership. created_at tells apart batches that reuse an id.
    # A mailbox removed and added back leaves the membership as it was, but its predictions
    # went with the removal and a plan was requested: the request time tells them apart.
    fingerprint = (
        batch.pk,
        batch.created_at.isoformat(),
        batch.planned_at.isoformat() if batch.planned_at else "",
        batch.plan_requested_at.isoformat() if batch.plan_requested_at else "",
        batch.plan_state,
        sorted(membership.items()),
    )
    digest = hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:32]
    return f"exsync:batch-impact:1:{digest}"


def batch_impacts(
    *, batches: Sequence[MoveBatch], memberships: dict[int, dict[str, tuple[int, int]]]
) -> dict[int, BatchImpact]:
    """BatchImpact of each batch, from the cache; those missing are built together (two
    queries whatever their number) and cached."""
    keys = {batch.pk: _impact_key(batch, memberships.get(batch.pk, {})) for batch in batches}
    found = cache.get_many(list(keys.values())) if keys else {}
    impacts = {pk: found[key] for pk, key in keys.items() if key in found}
    missing = [pk for pk in keys if pk not in impacts]
    if missing:
        built = _build_impacts(keys={pk: keys[pk] for pk in missing})
        cache.set_many({keys[pk]: built[pk] for pk in missing}, IMPACT_CACHE_SECONDS)
        impacts.update(built)
    return impacts


def _build_impacts(*, keys: dict[int, str]) -> dict[int, BatchImpact]:
    batch_ids = list(keys)
    # Sorted here rather than by the database: both orders from one unordered query, and names
    # compared without case whatever the database's collation.
    found: dict[int, list[tuple[str, str, int, int]]] = {pk: [] for pk in batch_ids}
    ranked = (
        BatchMailbox.objects.filter(batch_id__in=batch_ids, state__in=SHOWN_STATES)
        .annotate(worst=Min(outcome_rank("predictions__outcome")))
        .order_by()
        .values_list(
            "batch_id", "pk", "worst", "mailbox__display_name", "mailbox__primary_smtp_address"
        )
    )
    for batch_id, member_id, worst, name, address in ranked:
        rank = NO_PHONE if worst is None else worst
        found[batch_id].append((name.casefold(), address, member_id, rank))
    people: dict[int, list[tuple[str, str, int, int]]] = {}
    by_name: dict[int, tuple[int, ...]] = {}
    for pk, rows in found.items():
        rows.sort()
        by_name[pk] = tuple(row[2] for row in rows)
        people[pk] = sorted(rows, key=lambda row: row[3])  # stable: by name within an outcome
    devices: dict[int, Counter[str]] = {pk: Counter() for pk in batch_ids}
    explained: dict[int, list[tuple[int, str, int]]] = {pk: [] for pk in batch_ids}
    counted = (
        Prediction.objects.filter(member__batch_id__in=batch_ids, member__state__in=SHOWN_STATES)
        .values_list("member__batch_id", "explanation_id", "member__state", "outcome")
        .annotate(n=Count("outcome"))
        .order_by()
    )
    for batch_id, explanation_id, state, outcome, n in counted:
        devices[batch_id][outcome] += n
        explained[batch_id].append((explanation_id, state, n))
    return {
        pk: BatchImpact(
            people=tuple(row[2] for row in people[pk]),
            ranks=bytes(row[3] for row in people[pk]),
            by_name=by_name[pk],
            key=keys[pk],
            devices={o: devices[pk].get(o, 0) for o in OUTCOME_ORDER},
            explanation_counts=tuple(sorted(explained[pk])),
        )
        for pk in batch_ids
    }


def batch_impact(*, batch: MoveBatch, membership: dict[str, tuple[int, int]]) -> BatchImpact:
    return batch_impacts(batches=[batch], memberships={batch.pk: membership})[batch.pk]


def batch_people(
    *,
    batch: MoveBatch,
    impact: BatchImpact,
    outcome: str = "",
    query: str = "",
    rule: str = "",
    sort: str = "outcome",
) -> list[int]:
    """Member ids of the people the batch page lists, in order; the page shows 25 of them.

    A person matches `outcome` when it is the worst outcome of their phones (what they count
    under), `query` when it is in their name or address or in a phone's id, model or name,
    `rule` when one of their phones' predictions cites it. The orders come from the impact
    or the cache beside it; the text filters take one query.
    """
    ids = list(_people_order(batch, impact, sort))
    if query or rule:
        matching = set(_people_matching(batch, query, rule).values_list("pk", flat=True))
        ids = [pk for pk in ids if pk in matching]
    if outcome in OUTCOME_ORDER:
        wanted = OUTCOME_ORDER.index(outcome)
        rank_of = dict(zip(impact.people, impact.ranks, strict=True))
        ids = [pk for pk in ids if rank_of.get(pk) == wanted]
    return ids


def _people_matching(batch: MoveBatch, query: str, rule: str) -> QuerySet[BatchMailbox]:
    members = BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES)
    if query:
        # Matched in the mailbox and device tables (each searched once, through the trigram
        # indexes on PostgreSQL), not once per member of a 20,000-mailbox batch.
        named = Mailbox.objects.filter(
            Q(display_name__icontains=query)
            | Q(primary_smtp_address__icontains=query)
            | Q(alias__icontains=query)
        ).values("pk")
        with_phone = Partnership.objects.filter(
            Q(device__device_id__icontains=query)
            | Q(device__model__icontains=query)
            | Q(device__friendly_name__icontains=query)
        ).values("mailbox_id")
        members = members.filter(Q(mailbox_id__in=named) | Q(mailbox_id__in=with_phone))
    if rule:
        # The text match narrows the explanations in the database; rule_in() checks the id.
        cited = [
            e.pk for e in Explanation.objects.filter(reasons__icontains=rule) if rule_in(e, rule)
        ]
        members = members.filter(
            Exists(Prediction.objects.filter(member=OuterRef("pk"), explanation_id__in=cited))
        )
    return members


def _people_order(batch: MoveBatch, impact: BatchImpact, sort: str) -> Sequence[int]:
    """Everyone the page lists, in the order `sort` names: worst first and by name from the
    impact; by a fact of their phones (an aggregate over the batch, like the impact) computed
    the first time it is asked for and cached with it."""
    if sort == "mailbox":
        return impact.by_name
    if sort not in PHONE_SORTS:
        return impact.people
    key = f"{impact.key}:{sort}"
    order = cache.get(key) if impact.key else None
    if order is None:
        members = BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES)
        order = tuple(_people_sorted(members, sort))
        if impact.key:
            cache.set(key, order, IMPACT_CACHE_SECONDS)
    return order


def _people_sorted(members: QuerySet[BatchMailbox], sort: str) -> QuerySet:
    """The ids of `members` by a fact of their phones: the first device id or model, or the
    latest successful sync (most recent first); people without a phone last."""
    by_name = ("mailbox__display_name", "mailbox__primary_smtp_address", "pk")
    if sort == "last_sync":
        members = members.annotate(key=Max("predictions__partnership__last_success_sync_at"))
        order = (F("key").desc(nulls_last=True), *by_name)
    else:
        field = "device_id" if sort == "device" else "model"
        members = members.annotate(key=Min(f"predictions__partnership__device__{field}"))
        order = (F("key").asc(nulls_last=True), *by_name)
    return members.order_by(*order).values_list("pk", flat=True)


def people_with_phones(*, member_ids: Sequence[int]) -> list[BatchMailbox]:
    """The members `member_ids` names, in that order, each with `phones`: its predictions
    (worst first) with their partnership and device. Two queries; batch_report() attaches
    the predictions' explanations."""
    members = BatchMailbox.objects.filter(pk__in=list(member_ids)).select_related(
        "mailbox", "source_server"
    )
    by_id = {m.pk: m for m in members}
    for member in by_id.values():
        member.phones = []
    phones = (
        Prediction.objects.filter(member_id__in=list(member_ids))
        .select_related("partnership__device")
        .only(
            "member_id",
            "outcome",
            "explanation_id",
            "partnership__eas_version",
            "partnership__last_success_sync_at",
            "partnership__device__device_id",
            "partnership__device__model",
            "partnership__device__device_type",
            "partnership__device__friendly_name",
            "partnership__device__os",
        )
        .annotate(rank=outcome_rank())
        .order_by("member_id", "rank", "partnership__device__device_id")
    )
    for phone in phones:
        by_id[phone.member_id].phones.append(phone)
    return [by_id[pk] for pk in member_ids if pk in by_id]


def batch_report(*, impact: BatchImpact, people: Sequence[BatchMailbox]) -> dict[str, Any]:
    """The batch page's counts, fixes and open questions, and the explanations of the listed
    phones attached to them (phone.explanation): one query for all explanations."""
    ids = {explanation_id for explanation_id, _, _ in impact.explanation_counts}
    ids.update(phone.explanation_id for person in people for phone in person.phones)
    explanations = {e.pk: e for e in Explanation.objects.filter(pk__in=ids).order_by("pk")}
    for person in people:
        for phone in person.phones:
            phone.explanation = explanations.get(phone.explanation_id)
    blocked = {
        pk: n
        for pk, n in impact.explanation_devices(states=SHOWN_STATES).items()
        if pk in explanations and explanations[pk].outcome == Outcome.BLOCKED
    }
    per_person = impact.people_per_outcome()
    top = max(per_person.values(), default=0) or 1
    return {
        "outcomes": [
            {
                "outcome": o,
                "people": per_person[o],
                "devices": impact.devices[o],
                "width": round(100 * per_person[o] / top),  # an SVG width: no locale
            }
            for o in OUTCOME_ORDER
        ],
        "people": len(impact.people),
        "people_with_phones": len(impact.people) - impact.people_without_phone(),
        "people_without_phone": impact.people_without_phone(),
        "needing_action": sum(impact.needing_action().values()),
        "devices": sum(impact.devices.values()),
        "fixes": fixes_from(counts=blocked, explanations=explanations.values()),
        "questions": questions_from(
            counts=impact.explanation_devices(states=[MemberState.PENDING]),
            explanations=explanations.values(),
        ),
    }


def batches_ahead(*, limit: int = 10) -> list[MoveBatch]:
    """Draft, scheduled and running batches, the next to start first, each with `people`
    (everyone listed on its page) and `needing_action` ({outcome: people whose worst phone
    has it}, continues left out). A fixed number of queries whatever the batches' sizes."""
    batches = list(
        MoveBatch.objects.filter(state__in=ACTIVE_BATCH_STATES)
        .select_related("target_server")
        .order_by("start_at", "name")[:limit]
    )
    memberships = batch_memberships(batch_ids=[b.pk for b in batches])
    impacts = batch_impacts(batches=batches, memberships=memberships)
    for batch in batches:
        impact = impacts[batch.pk]
        batch.people = len(impact.people)
        batch.needing_action = impact.needing_action()
        batch.needing_action_total = sum(batch.needing_action.values())
    return batches


def notice_health(*, now: datetime | None = None) -> dict[str, Any]:
    """For the dashboard, in one query: notices that failed for good, and notices due for a
    while that nobody sent (no worker or no beat running), with a batch to look at."""
    from .models import Notice, NoticeState

    now = now or timezone.now()
    overdue = Q(state=NoticeState.PENDING, due_at__lt=now - timedelta(minutes=10)) & (
        Q(next_try_at__isnull=True) | Q(next_try_at__lt=now - timedelta(minutes=10))
    )
    counts = Notice.objects.aggregate(
        failed=Count("pk", filter=Q(state=NoticeState.FAILED)),
        overdue=Count("pk", filter=overdue),
        failed_batch=Max("batch_id", filter=Q(state=NoticeState.FAILED)),
    )
    return {**counts, "dispatch_seconds": settings.NOTICE_DISPATCH_SECONDS}


def batch_status_document(*, batch: MoveBatch) -> dict[str, Any]:
    """batch_status --json: per mailbox, each predicted device with its continuity (pending
    until the mailbox moved and an export spoke of the phone). Four queries."""
    from .models import Continuity, ContinuityState

    members = list(
        batch.members.filter(state__in=SHOWN_STATES)
        .select_related("mailbox")
        .order_by("mailbox__primary_smtp_address")
    )
    predictions = defaultdict(list)
    for member_id, device_id, outcome, partnership_id, last_sync in (
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .values_list(
            "member_id",
            "partnership__device__device_id",
            "outcome",
            "partnership_id",
            "partnership__last_success_sync_at",
        )
        .order_by("member_id", "partnership__device__device_id")
    ):
        predictions[member_id].append((device_id, outcome, partnership_id, last_sync))
    continuity = {
        (c["member_id"], c["partnership_id"]): c
        for c in Continuity.objects.filter(member__batch=batch).values(
            "member_id",
            "partnership_id",
            "state",
            "last_success_sync_at",
            "moved_at",
            "replaced_by__device__device_id",
        )
    }
    mailboxes = []
    for member in members:
        devices = []
        for device_id, outcome, partnership_id, last_sync in predictions[member.pk]:
            found = continuity.get((member.pk, partnership_id))
            devices.append(
                {
                    "device_id": device_id,
                    "predicted": outcome,
                    "continuity": found["state"] if found else ContinuityState.PENDING.value,
                    "last_success_sync_at": _iso(
                        found["last_success_sync_at"] if found else last_sync
                    ),
                    "replaced_by": found["replaced_by__device__device_id"] if found else None,
                }
            )
        mailboxes.append(
            {
                "address": member.mailbox.primary_smtp_address,
                "move": member.state,
                "moved_at": _iso(member.moved_at),
                "devices": devices,
            }
        )
    return {"batch": batch.name, "state": batch.state, "mailboxes": mailboxes}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- After the move: continuity against the prediction (issue 14) -------------------------------
#
# A verdict (accuracy.py) is a function of (predicted, observed): pages count Continuity rows
# per pair in the database and judge the pairs in Python; lists sort by the verdict's rank,
# written as one CASE over the thirty pairs.

NO_RULE = "(no deciding rule)"


def verdict_rank() -> Case:
    """A Continuity row's verdict as its rank (0 = wrong), for ORDER BY."""
    return Case(
        *[
            When(predicted=predicted, state=state, then=Value(rank))
            for predicted, state, rank in accuracy.verdict_rank_table()
        ],
        default=Value(len(accuracy.Verdict)),
        output_field=IntegerField(),
    )


def batch_continuity(*, batch: MoveBatch) -> dict[str, Any]:
    """The batch page's "After the move" counts: phones per (predicted, observed) pair with
    its verdict, wrong predictions first (the largest group of a verdict first, then the
    worst outcome), and phones per verdict. One query."""
    counted = (
        Continuity.objects.filter(member__batch=batch, member__state=MemberState.MOVED)
        .values_list("predicted", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows = []
    per_verdict: Counter[str] = Counter()
    for predicted, state, n in counted:
        verdict = accuracy.verdict(predicted, state)
        per_verdict[verdict] += n
        rows.append(
            {
                "predicted": predicted,
                "observed": state,
                "phones": n,
                "verdict": verdict.value,
                "verdict_label": verdict.label,
                "text": accuracy.describe(predicted, state),
            }
        )
    rows.sort(
        key=lambda r: (
            accuracy.Verdict(r["verdict"]).rank,
            -r["phones"],
            OUTCOME_ORDER.index(r["predicted"]) if r["predicted"] in OUTCOME_ORDER else 99,
            accuracy.STATES.index(r["observed"]) if r["observed"] in accuracy.STATES else 99,
        )
    )
    return {
        "rows": rows,
        "phones": sum(per_verdict.values()),
        "verdicts": [
            {"verdict": v.value, "label": v.label, "phones": per_verdict[v]}
            for v in accuracy.Verdict
            if per_verdict.get(v)
        ],
        "wrong": per_verdict.get(accuracy.Verdict.WRONG, 0),
    }


def _continuity_rows() -> QuerySet:
    """Continuity rows with what a list of phones shows, wrong predictions first."""
    return (
        Continuity.objects.filter(member__state=MemberState.MOVED)
        .select_related(
            "member__mailbox", "member__batch", "partnership__device", "replaced_by__device"
        )
        .annotate(verdict_rank=verdict_rank())
    )


def batch_continuity_phones(*, batch: MoveBatch) -> QuerySet:
    """The batch's moved phones, wrong predictions first, then by person: one query a page."""
    return (
        _continuity_rows()
        .filter(member__batch=batch)
        .order_by(
            "verdict_rank",
            "member__mailbox__display_name",
            "member__mailbox__primary_smtp_address",
            "pk",
        )
    )


def rule_accuracy() -> list[dict[str, Any]]:
    """Per rule id, over every batch: phones predicted, decided (not pending), as predicted,
    wrong, not re-partnered yet, and the wrong share (wrong / (as predicted + wrong)); the
    most wrong rule first. A prediction counts under each of its deciding rules (its reasons
    with the predicted outcome, accuracy.deciding_rules).

    Two queries whatever the number of phones: Continuity rows counted per (explanation,
    predicted, observed), then the distinct explanations, folded per rule here.
    """
    counted = list(
        Continuity.objects.filter(member__state=MemberState.MOVED)
        .values_list("explanation_id", "predicted", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    ids = {explanation_id for explanation_id, _, _, _ in counted if explanation_id is not None}
    reasons = dict(Explanation.objects.filter(pk__in=ids).values_list("pk", "reasons"))
    rules: dict[str, dict[str, Any]] = {}
    for explanation_id, predicted, state, n in counted:
        verdict = accuracy.verdict(predicted, state)
        for rule in accuracy.deciding_rules(reasons.get(explanation_id) or [], predicted) or [
            NO_RULE
        ]:
            entry = rules.setdefault(
                rule,
                {
                    "rule": rule,
                    "outcomes": set(),
                    "predicted": 0,
                    "decided": 0,
                    "as_predicted": 0,
                    "wrong": 0,
                    "not_yet": 0,
                    "pending": 0,
                    "gone": 0,
                    "no_prediction": 0,
                },
            )
            entry["outcomes"].add(predicted)
            entry["predicted"] += n
            entry["decided"] += 0 if verdict == accuracy.Verdict.PENDING else n
            entry[verdict.value] += n
    for entry in rules.values():
        checked = entry["as_predicted"] + entry["wrong"]
        entry["checked"] = checked
        entry["wrong_share"] = entry["wrong"] / checked if checked else None
        entry["wrong_percent"] = round(100 * entry["wrong"] / checked) if checked else None
        entry["outcomes"] = [o for o in OUTCOME_ORDER if o in entry["outcomes"]]
        entry["linked"] = entry["rule"] != NO_RULE
    return sorted(
        rules.values(),
        key=lambda e: (-e["wrong"], -(e["wrong_share"] or 0), -e["predicted"], e["rule"]),
    )


def rule_wrong_phones(*, rule: str) -> QuerySet:
    """The phones a rule decided whose prediction was wrong, over every batch: one query for
    the explanations that cite the rule, then one a page."""
    per_outcome: dict[str, list[int]] = defaultdict(list)
    # The text match narrows the explanations in the database; deciding_rules() checks them.
    for pk, reasons in Explanation.objects.filter(reasons__icontains=rule).values_list(
        "pk", "reasons"
    ):
        for outcome in OUTCOME_ORDER:
            if any(r.lower() == rule.lower() for r in accuracy.deciding_rules(reasons, outcome)):
                per_outcome[outcome].append(pk)
    wrong_pairs = accuracy.pairs_with(accuracy.Verdict.WRONG)
    decided_by_rule = Q(pk__in=[])
    for outcome, ids in per_outcome.items():
        decided_by_rule |= Q(predicted=outcome, explanation_id__in=ids)
    wrong = Q(pk__in=[])
    for predicted, state in wrong_pairs:
        wrong |= Q(predicted=predicted, state=state)
    return (
        _continuity_rows()
        .filter(decided_by_rule & wrong)
        .order_by("-moved_at", "member__mailbox__display_name", "pk")
    )
