"""People search for the helpdesk: one row per mailbox, found by name, address or phone.

One selector for both databases. It matches with Django's case-insensitive lookups: PostgreSQL
runs them as `UPPER(column::text) LIKE UPPER('%...%')`, which the pg_trgm GIN indexes of
devices migration 0007 serve (EXPLAIN at 200,000 mailboxes in README.md, "Search"); SQLite scans
with the same lookups. Two queries whatever the number of hits: the matching people, ranked, and
their batches with the worst outcome of their phones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import and_, or_

from django.db.models import Case, IntegerField, Min, Model, Q, QuerySet, Value, When

from devices.models import Mailbox, MobileDevice, Partnership
from migrations_plan.models import (
    BatchMailbox,
    BatchState,
    Continuity,
    ContinuityState,
    MemberState,
)
from migrations_plan.selectors import OUTCOME_ORDER, SHOWN_STATES

MAX_QUERY_LENGTH = 100
# Fewer characters than this give pg_trgm no trigram to look up: such a search finds exact
# matches only (a display name "Ng", an alias "li"), not every name containing the letters.
MIN_PARTIAL_LENGTH = 3
MAX_NAME_WORDS = 6
CANDIDATES = 250  # rows per branch of _matches(), ranked and sorted
BRANCHES = 3  # of _matches()
EXACT, PREFIX, PARTIAL = 0, 1, 2

MAILBOX_TEXT = ("primary_smtp_address", "alias")
# Every partnership counts, stale ones too: a caller's phone may have stopped syncing long ago.
DEVICE_TEXT = ("device_id", "imei", "phone_number", "model", "friendly_name")


@dataclass(frozen=True)
class Person:
    """One search result: a mailbox, its current (else latest) batch and its worst outcome."""

    id: int
    display_name: str
    address: str
    batch_id: int | None = None
    batch_name: str = ""
    batch_start: datetime | None = None
    batch_state: str = ""
    batch_active: bool = False
    worst_outcome: str = ""  # empty: in no batch, or no prediction yet

    @property
    def batch_state_label(self) -> str:
        return BatchState(self.batch_state).label if self.batch_state else ""


@dataclass(frozen=True)
class People:
    """The people found (at most `limit`), and whether more matched than are shown."""

    query: str
    people: list[Person] = field(default_factory=list)
    more: bool = False
    exact_only: bool = False

    def __iter__(self) -> Iterator[Person]:
        return iter(self.people)

    def __len__(self) -> int:
        return len(self.people)


def normalise(query: str) -> str:
    """The query as searched: surrounding blanks and inner runs of blanks collapsed."""
    return " ".join((query or "").split())[:MAX_QUERY_LENGTH]


def name_words(query: str) -> list[str]:
    """Words of a name in any order: "Jensen, Kim" and "Kim Jensen" give the same words."""
    return [w for w in re.split(r"[\s,;]+", query) if w][:MAX_NAME_WORDS]


def name_forms(words: list[str]) -> set[str]:
    """The ways Exchange display names write these words: as typed, and family name first
    or last ("Kim Jensen" is also "Jensen, Kim" and "Jensen Kim")."""
    forms = {" ".join(words)}
    if len(words) > 1:
        first_last = (" ".join(words[:-1]), words[-1])
        last_first = (" ".join(words[1:]), words[0])
        for given, family in (first_last, last_first):
            forms |= {f"{given} {family}", f"{family}, {given}", f"{family} {given}"}
    return forms


def _any(conditions: list[Q]) -> Q:
    return reduce(or_, conditions)


def _all(conditions: list[Q]) -> Q:
    return reduce(and_, conditions)


def _rank(exact: Q, prefix: Q) -> Case:
    return Case(
        When(exact, then=Value(EXACT)),
        When(prefix, then=Value(PREFIX)),
        default=Value(PARTIAL),
        output_field=IntegerField(),
    )


def _mailbox_conditions(query: str) -> tuple[Q, Q, Q]:
    """(exact, prefix, partial) conditions on a mailbox's own fields."""
    words = name_words(query)
    exact = [Q(**{f"{f}__iexact": query}) for f in MAILBOX_TEXT]
    starts = [Q(**{f"{f}__istartswith": query}) for f in MAILBOX_TEXT]
    partial = [Q(**{f"{f}__icontains": query}) for f in MAILBOX_TEXT]
    if words:
        exact += [Q(display_name__iexact=form) for form in name_forms(words)]
        # Every word starts the name or a word of it ("Jensen, Kim": J... and K...).
        starts.append(
            _all(
                [Q(display_name__istartswith=w) | Q(display_name__icontains=f" {w}") for w in words]
            )
        )
        partial.append(_all([Q(display_name__icontains=w) for w in words]))
    return _any(exact), _any(starts), _any(partial)


def _device_conditions(query: str, *, prefix: str = "") -> tuple[Q, Q, Q]:
    """(exact, prefix, partial) conditions on a device's fields."""
    exact = _any([Q(**{f"{prefix}{f}__iexact": query}) for f in DEVICE_TEXT])
    starts = _any([Q(**{f"{prefix}{f}__istartswith": query}) for f in DEVICE_TEXT])
    partial = _any([Q(**{f"{prefix}{f}__icontains": query}) for f in DEVICE_TEXT])
    return exact, starts, partial


def _identifiers(query: str) -> Q:
    """An alias or address equal to the query: b-tree lookups, cheap however many names
    contain the query."""
    return Q(alias__in=sorted({query, query.lower()})) | Q(primary_smtp_address=query.lower())


def _candidates(model: type[Model], condition: Q) -> QuerySet:
    # At most CANDIDATES rows per branch: "iPhone" or "Outlook" match a phone of half the
    # organisation, and ranking all of them would cost more than the page can show.
    return model.objects.filter(condition).order_by().values("pk")[:CANDIDATES]


def silent_mailboxes() -> QuerySet:
    """Ids of mailboxes with a phone silent since their move (migrations_plan.continuity)."""
    return Continuity.objects.filter(
        state=ContinuityState.SILENT, member__state=MemberState.MOVED
    ).values("member__mailbox_id")


def _matches(query: str, *, exact_only: bool, silent_only: bool = False) -> QuerySet:
    """(id, display name, address, rank) of matching mailboxes, best first; a mailbox comes
    at most once per branch.

    Branches: mailboxes whose alias or address is the query (so that the person whose alias
    is "kim" is found even when thousands of names contain "kim"), and unless `exact_only`
    mailboxes and phones that contain it. `silent_only`: people with a phone silent since
    their move only (applied before the candidates are capped).
    """
    m_exact, m_prefix, m_partial = _mailbox_conditions(query)
    d_rank = _rank(*_device_conditions(query, prefix="device__")[:2])
    own, of_device, partnered = Q(), Q(), Q()
    if silent_only:
        own = Q(pk__in=silent_mailboxes())
        of_device = Q(partnerships__mailbox_id__in=silent_mailboxes())
        partnered = Q(mailbox_id__in=silent_mailboxes())

    def by_mailbox(condition: Q) -> QuerySet:
        return (
            Mailbox.objects.filter(pk__in=_candidates(Mailbox, condition & own))
            .annotate(rank=_rank(m_exact, m_prefix))
            .values_list("id", "display_name", "primary_smtp_address", "rank")
            .order_by()
        )

    def by_device(condition: Q) -> QuerySet:
        # A person with two matching phones is one row: grouped by mailbox, best rank kept.
        return (
            Partnership.objects.filter(
                partnered, device__in=_candidates(MobileDevice, condition & of_device)
            )
            .values("mailbox_id", "mailbox__display_name", "mailbox__primary_smtp_address")
            .annotate(rank=Min(d_rank))
            .values_list(
                "mailbox_id", "mailbox__display_name", "mailbox__primary_smtp_address", "rank"
            )
            .order_by()
        )

    if exact_only:
        # Too short for a trigram: whole values only (a display name "Ng", an alias "li").
        return by_mailbox(_identifiers(query) | m_exact).order_by("rank", "display_name", "id")
    _, _, d_partial = _device_conditions(query)
    branches = by_mailbox(_identifiers(query)).union(
        by_mailbox(m_partial), by_device(d_partial), all=True
    )
    # Ordered by the first branch's names; Django orders a union by column position.
    return branches.order_by("rank", "display_name", "id")


def _current_memberships(mailbox_ids: list[int]) -> dict[int, dict]:
    """Each mailbox's current batch (the active one, else the latest it was not removed
    from), with the worst predicted outcome of its phones there; one query."""
    worst = Min(
        Case(
            *[When(predictions__outcome=o, then=Value(i)) for i, o in enumerate(OUTCOME_ORDER)],
            output_field=IntegerField(),
        )
    )
    rows = (
        BatchMailbox.objects.filter(mailbox_id__in=mailbox_ids, state__in=SHOWN_STATES)
        # A cancelled batch moved nobody: it is not the batch a caller is in.
        .exclude(batch__state=BatchState.CANCELLED)
        .values(
            "id",
            "mailbox_id",
            "is_active",
            "batch_id",
            "batch__name",
            "batch__start_at",
            "batch__state",
        )
        .annotate(worst=worst)
        .order_by("mailbox_id", "-is_active", "-batch__start_at", "-id")
    )
    current: dict[int, dict] = {}
    for row in rows:
        current.setdefault(row["mailbox_id"], row)
    return current


def people(query: str, *, limit: int = 50, silent_only: bool = False) -> People:
    """People whose name, address, alias or phone (DeviceId, IMEI, phone number, model or
    friendly name, partial and any case) match `query`: exact matches first, then those
    starting with it, then the rest, by name. At most `limit`; `more` says there were more.

    A name matches in either order ("Kim Jensen", "Jensen, Kim") and in part ("jens"). A
    query shorter than three characters finds exact matches only. `silent_only`: only people
    with a phone silent since their mailbox moved.
    """
    query = normalise(query)
    if not query:
        return People(query="")
    exact_only = len(query) < MIN_PARTIAL_LENGTH
    seen: dict[int, tuple[str, str]] = {}
    # Each person comes at most once per branch: BRANCHES times limit + 1 rows hold
    # limit + 1 people if there are.
    rows = _matches(query, exact_only=exact_only, silent_only=silent_only)[: BRANCHES * (limit + 1)]
    for mailbox_id, display_name, address, _rank in rows:
        seen.setdefault(mailbox_id, (display_name, address))
    ids = list(seen)[:limit]
    memberships = _current_memberships(ids) if ids else {}
    found = []
    for mailbox_id in ids:
        display_name, address = seen[mailbox_id]
        member = memberships.get(mailbox_id)
        if member is None:
            found.append(Person(id=mailbox_id, display_name=display_name, address=address))
            continue
        found.append(
            Person(
                id=mailbox_id,
                display_name=display_name,
                address=address,
                batch_id=member["batch_id"],
                batch_name=member["batch__name"],
                batch_start=member["batch__start_at"],
                batch_state=member["batch__state"],
                batch_active=member["is_active"],
                worst_outcome="" if member["worst"] is None else OUTCOME_ORDER[member["worst"]],
            )
        )
    return People(query=query, people=found, more=len(seen) > limit, exact_only=exact_only)
