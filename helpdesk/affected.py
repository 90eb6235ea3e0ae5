"""Reads for the affected-people list: one row per person in an active batch, paged by key.

A person is a mailbox that an active batch (draft, scheduled, in progress) holds as a pending,
moved or failed member. Their phones are the partnerships the batch's plan predicted; each row
carries the worst outcome among them, how many there are, how many need the user to act, and
the last successful sync of the most recently synced one.

Pages are cut by key (`WHERE (sort key, id) > (last row's) LIMIT n`), never by OFFSET, and
nothing counts the matches: at 400,000 partnerships either costs the whole filtered set on
every page (a count capped at 1,000 still took 75-85 ms with a platform filter).

The per-person figures are correlated subqueries, which PostgreSQL evaluates for the rows a
page returns only; a sort by one of them goes through an aggregate instead (see Key).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

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
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.models import AccessState
from exsync.setsql import session_setting
from migrations_plan.models import (
    ACTIVE_BATCH_STATES,
    BatchMailbox,
    MemberState,
    Outcome,
    Prediction,
)
from migrations_plan.selectors import OUTCOME_ORDER

PAGE_SIZE = 50
MEMBER_STATES = (MemberState.PENDING, MemberState.MOVED, MemberState.FAILED)
NO_PHONE = "none"
# Worst first, as OUTCOME_ORDER; a person without a predicted phone ranks after `continues`.
NO_PHONE_RANK = len(OUTCOME_ORDER)

# --- Platforms -----------------------------------------------------------------------------
# From what the phone reports (DeviceType, DeviceOS) and the partnership's ClientType, first
# match wins, in the order and with the values of helpdesk/platforms.py (the person page's
# richer mapping, which also reads user agents and models). This one has to be expressible in
# SQL so that the list can filter on it, and groups the person page's platforms into five.

PLATFORMS = (
    ("ios", "iPhone / iPad"),
    ("android", "Android"),
    ("outlook", "Outlook for iOS / Android"),
    ("windows", "Windows Mobile / Phone"),
    ("other", "Other"),
)
PLATFORM_LABELS = dict(PLATFORMS)
# Where each fact lives, seen from a partnership.
_FIELDS = {"client_type": "client_type", "device_type": "device__device_type", "os": "device__os"}
# (platform, ((fact, lookup, lower-case value), ...)): any one condition matches.
PLATFORM_RULES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    # Outlook for iOS and Android reports the phone's OS but is its own app (and not EAS at all
    # on Exchange 2013 and later: ClientType Outlook or REST).
    (
        "outlook",
        (
            ("client_type", "iexact", "outlook"),
            ("client_type", "iexact", "rest"),
            ("device_type", "iexact", "outlook"),
        ),
    ),
    ("ios", tuple(("device_type", "iexact", t) for t in ("iphone", "ipad", "ipod"))),
    (
        "windows",
        tuple(
            ("device_type", "iexact", t)
            for t in ("wp", "wp8", "windowsphone", "pocketpc", "smartphone", "wince")
        ),
    ),
    # Samsung's mail app says SAMSUNG<model>; Android's own and most others say Android in the
    # DeviceType or the DeviceOS.
    (
        "android",
        (
            ("device_type", "istartswith", "samsung"),
            ("device_type", "icontains", "android"),
            ("os", "istartswith", "android"),
        ),
    ),
)


def _matches(value: str, lookup: str, wanted: str) -> bool:
    value = (value or "").strip().lower()
    if lookup == "iexact":
        return value == wanted
    if lookup == "istartswith":
        return value.startswith(wanted)
    return wanted in value  # icontains


def platform_of(*, device_type: str = "", os: str = "", client_type: str = "") -> str:
    """The platform code of one phone: platform_q()'s rules, in Python."""
    facts = {"device_type": device_type, "os": os, "client_type": client_type}
    for code, conditions in PLATFORM_RULES:
        if any(_matches(facts[fact], lookup, value) for fact, lookup, value in conditions):
            return code
    return "other"


def _rule_q(conditions: tuple[tuple[str, str, str], ...], path: str) -> Q:
    q = Q()
    for fact, lookup, value in conditions:
        q |= Q(**{f"{path}{_FIELDS[fact]}__{lookup}": value})
    return q


def platform_q(code: str, *, path: str = "") -> Q:
    """Partnerships (reached through `path`, e.g. "partnership__") of one platform."""
    if code not in PLATFORM_LABELS:
        raise ValueError(f"unknown platform {code!r}")
    earlier = Q()
    for rule_code, conditions in PLATFORM_RULES:
        matched = _rule_q(conditions, path)
        if rule_code == code:
            return matched & ~earlier if earlier else matched
        earlier |= matched
    return ~earlier  # other


# --- The people and their figures ----------------------------------------------------------

RANK = Case(
    *[When(outcome=o, then=Value(i)) for i, o in enumerate(OUTCOME_ORDER)],
    output_field=IntegerField(),
)


def _phones() -> QuerySet[Prediction]:
    """The predictions of the outer row's member, grouped to one row for an aggregate."""
    return Prediction.objects.filter(member=OuterRef("pk")).order_by().values("member")


def _any_phone(q: Q) -> Exists:
    """The outer member has at least one predicted phone matching q (a semi-join)."""
    return Exists(Prediction.objects.filter(q, member=OuterRef("pk")))


def affected_people() -> QuerySet[BatchMailbox]:
    """Every person of every active batch, with the figures the list shows, unordered."""
    return (
        BatchMailbox.objects.filter(
            # is_active is true exactly while an active batch holds the member (services keep
            # it); the partial unique index on it lets the database start from these rows.
            is_active=True,
            state__in=MEMBER_STATES,
            batch__state__in=ACTIVE_BATCH_STATES,
        )
        .select_related("mailbox", "batch__target_server", "source_server")
        .only(
            "state",
            "mailbox__display_name",
            "mailbox__primary_smtp_address",
            "batch__name",
            "batch__state",
            "batch__start_at",
            "batch__planned_at",
            "batch__target_server__name",
            "source_server__name",
        )
        .annotate(
            worst_rank=Coalesce(
                Subquery(_phones().annotate(r=Min(RANK)).values("r")), Value(NO_PHONE_RANK)
            ),
            n_devices=Coalesce(Subquery(_phones().annotate(n=Count("partnership")).values("n")), 0),
            n_action=Coalesce(
                Subquery(
                    _phones()
                    .exclude(outcome=Outcome.CONTINUES)
                    .annotate(n=Count("partnership"))
                    .values("n")
                ),
                0,
            ),
            last_sync=Subquery(
                _phones().annotate(t=Max("partnership__last_success_sync_at")).values("t")
            ),
        )
    )


def worst_outcome_of(person: BatchMailbox) -> str:
    """The outcome token of a row's worst_rank, or "none" for a person without phones."""
    rank = person.worst_rank
    return OUTCOME_ORDER[rank] if rank < NO_PHONE_RANK else NO_PHONE


# --- Filters (django-filter calls these through helpdesk/filters.py) -----------------------

LAST_SYNC_AGES = (
    ("1d", "Within 1 day"),
    ("7d", "Within 7 days"),
    ("older", "More than 7 days ago"),
    ("never", "Never"),
)
# Access states as filter tokens: Exchange's empty value (not recorded) needs a name of its
# own, because an empty filter value means "any".
ACCESS_STATES = tuple((value or "unknown", label) for value, label in AccessState.choices)


def filter_worst_outcome(people: QuerySet[BatchMailbox], outcome: str) -> QuerySet:
    """People whose worst phone has `outcome` ("none": people without a predicted phone).

    Spelled as "a phone has it and none has worse" rather than as the worst_rank figure: the
    database estimates semi-joins from the outcome's statistics and can walk the sort order,
    where a condition on a correlated subquery is a blind guess that makes it sort everyone.
    """
    if outcome == NO_PHONE:
        return people.filter(~_any_phone(Q()))
    worse = OUTCOME_ORDER[: OUTCOME_ORDER.index(outcome)]
    matched = people.filter(_any_phone(Q(outcome=outcome)))
    return matched.filter(~_any_phone(Q(outcome__in=worse))) if worse else matched


def filter_any_outcome(people: QuerySet[BatchMailbox], outcome: str) -> QuerySet:
    return people.filter(_any_phone(Q(outcome=outcome)))


def filter_needs_action(people: QuerySet[BatchMailbox], needs: bool) -> QuerySet:
    acting = _any_phone(~Q(outcome=Outcome.CONTINUES))
    return people.filter(acting if needs else ~acting)


def filter_platform(people: QuerySet[BatchMailbox], code: str) -> QuerySet:
    return people.filter(_any_phone(platform_q(code, path="partnership__")))


def filter_access_state(people: QuerySet[BatchMailbox], state: str) -> QuerySet:
    value = "" if state == "unknown" else state
    return people.filter(_any_phone(Q(partnership__access_state=value)))


def filter_last_sync(
    people: QuerySet[BatchMailbox], age: str, *, now: datetime | None = None
) -> QuerySet:
    """By the last successful sync of the person's most recently synced phone.

    Spelled for the plans they get at 20,000 people (EXPLAIN ANALYZE): the ages are
    conditions on the last_sync figure, which the database guesses to match a third of the
    people and so walks the sort order (6 ms for "within a day", 45 ms for "older"). "Never"
    starts from the phones that never synced, few and found in one pass (30-55 ms even when
    nobody matches): as a semi-join it walked everyone's phones (130 ms), and as a condition
    on the figure it made PostgreSQL's JIT compile for 400 ms.
    """
    now = now or timezone.now()
    if age == "1d":
        return people.filter(last_sync__gte=now - timedelta(days=1))
    if age == "7d":
        return people.filter(last_sync__gte=now - timedelta(days=7))
    if age == "older":
        return people.filter(last_sync__lt=now - timedelta(days=7))
    if age == "never":
        unsynced = Prediction.objects.filter(partnership__last_success_sync_at__isnull=True)
        synced = _any_phone(Q(partnership__last_success_sync_at__isnull=False))
        return people.filter(pk__in=unsynced.values("member_id")).filter(~synced)
    raise ValueError(f"unknown sync age {age!r}")


# --- Sorting and keyset pages --------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One column of a sort: an ORM path on the row, its direction, and how it travels in a
    cursor. NULL sorts as the smallest value in both directions.

    A key that is a figure of the person's phones names the aggregate that computes it over
    a join. Sorting by it has to compute it for every person anyway; as an aggregate it is
    computed once per person and shared by the ORDER BY and the keyset condition, where the
    row's correlated subquery would run again for every mention of it.
    """

    path: str
    kind: str = "str"  # str | int | dt
    desc: bool = False
    nullable: bool = False
    aggregate: Callable[[], Any] | None = None

    @property
    def name(self) -> str:
        """What the keyed query (people_page's first step) sorts and seeks on."""
        return f"key_{self.path}" if self.aggregate else self.path

    def value_of(self, row: Any) -> Any:
        value = row
        for part in self.path.split("__"):
            value = getattr(value, part)
        return value

    def order(self, *, name: str = "", reverse: bool = False):
        expression = F(name or self.path)
        if self.desc != reverse:
            return expression.desc(nulls_last=True) if self.nullable else expression.desc()
        return expression.asc(nulls_first=True) if self.nullable else expression.asc()


def _worst_rank_aggregate() -> Coalesce:
    rank = Case(
        *[When(predictions__outcome=o, then=Value(i)) for i, o in enumerate(OUTCOME_ORDER)],
        output_field=IntegerField(),
    )
    return Coalesce(Min(rank), Value(NO_PHONE_RANK))


def _last_sync_aggregate() -> Max:
    return Max("predictions__partnership__last_success_sync_at")


NAME = Key("mailbox__display_name")
# The tie-breaker: an active batch holds a mailbox at most once (a partial unique index), so
# the mailbox id names a row, and an index on the mailbox's (display_name, id) can serve the
# default sort whole.
ID = Key("mailbox_id", "int")
WORST = Key("worst_rank", "int", aggregate=_worst_rank_aggregate)
SYNC = Key("last_sync", "dt", nullable=True, aggregate=_last_sync_aggregate)
SORTS: dict[str, tuple[str, tuple[Key, ...]]] = {
    "name": ("Name", (NAME, ID)),
    "address": ("Address", (Key("mailbox__primary_smtp_address"), ID)),
    "start": ("Batch start", (Key("batch__start_at", "dt"), NAME, ID)),
    "outcome": ("Worst outcome first", (WORST, NAME, ID)),
    "last_sync": ("Longest without sync first", (SYNC, NAME, ID)),
    "-last_sync": ("Most recent sync first", (replace(SYNC, desc=True), NAME, ID)),
}
DEFAULT_SORT = "name"
SORT_CHOICES = tuple((code, label) for code, (label, _) in SORTS.items())


def _keys(sort: str) -> tuple[Key, ...]:
    return SORTS.get(sort, SORTS[DEFAULT_SORT])[1]


def ordered(people: QuerySet[BatchMailbox], sort: str) -> QuerySet[BatchMailbox]:
    """Everyone in the order of a sort, in one query (the CSV export walks it whole)."""
    return people.order_by(*(key.order() for key in _keys(sort)))


def encode_cursor(values: Iterable[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, keys: tuple[Key, ...]) -> list[Any] | None:
    """The key values a cursor carries, or None for anything that is not one of ours (a
    hand-edited or stale link starts again from the first page)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(values, list) or len(values) != len(keys):
        return None
    decoded = []
    for key, value in zip(keys, values, strict=True):
        if value is None:
            if not key.nullable:
                return None
        elif key.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                return None
        elif key.kind == "dt":
            value = parse_datetime(value) if isinstance(value, str) else None
            if value is None:
                return None
        elif not isinstance(value, str):
            return None
        decoded.append(value)
    return decoded


def _beyond(key: Key, value: Any, *, backwards: bool) -> tuple[Q | None, Q]:
    """(rows strictly beyond `value` in the walking direction, or None when there are none;
    rows equal to it)."""
    name = key.name
    rising = key.desc == backwards  # walking towards larger values
    if value is None:  # NULL is the smallest value
        after = Q(**{f"{name}__isnull": False}) if rising else None
        return after, Q(**{f"{name}__isnull": True})
    if rising:
        after = Q(**{f"{name}__gt": value})
    else:
        after = Q(**{f"{name}__lt": value})
        if key.nullable:
            after |= Q(**{f"{name}__isnull": True})
    return after, Q(**{name: value})


def seek(keys: tuple[Key, ...], values: list[Any], *, backwards: bool = False) -> Q:
    """Rows after (or, backwards, before) the row whose sort key is `values`:
    k1 > v1 OR (k1 = v1 AND k2 > v2) OR ... , the portable spelling of a row comparison
    that also places NULLs."""
    terms = []
    equal_so_far = Q()
    for key, value in zip(keys, values, strict=True):
        after, equal = _beyond(key, value, backwards=backwards)
        if after is not None:
            terms.append(equal_so_far & after)
        equal_so_far &= equal
    condition = Q(pk__in=[])  # nothing, when no term applies
    for term in terms:
        condition |= term
    return condition


def _walk(
    people: QuerySet[BatchMailbox],
    keys: tuple[Key, ...],
    cursor: list[Any] | None,
    *,
    backwards: bool,
    limit: int,
) -> list[BatchMailbox]:
    """Up to `limit` people beyond the cursor, in walking order.

    Sorted by plain columns: one query, whose per-person figures PostgreSQL computes for the
    returned rows only. Sorted by a figure: a first query finds the page's ids by the
    aggregate (grouped by person), a second one reads those people.
    """
    if not any(key.aggregate for key in keys):
        walk = people.order_by(*(key.order(reverse=backwards) for key in keys))
        if cursor is not None:
            walk = walk.filter(seek(keys, cursor, backwards=backwards))
        return list(walk[:limit])
    plain = [key.path for key in keys if not key.aggregate]
    ids = people.values("pk", *plain).annotate(
        **{key.name: key.aggregate() for key in keys if key.aggregate}
    )
    if cursor is not None:
        ids = ids.filter(seek(keys, cursor, backwards=backwards))
    ids = ids.order_by(*(key.order(name=key.name, reverse=backwards) for key in keys))
    wanted = [row["pk"] for row in ids[:limit]]
    found = {person.pk: person for person in people.filter(pk__in=wanted).order_by()}
    return [found[pk] for pk in wanted if pk in found]


@dataclass
class Page:
    rows: list[BatchMailbox]
    sort: str
    next_cursor: str = ""
    previous_cursor: str = ""
    first: bool = True
    devices: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)


def people_page(
    people: QuerySet[BatchMailbox],
    *,
    sort: str = DEFAULT_SORT,
    after: str = "",
    before: str = "",
    size: int = PAGE_SIZE,
) -> Page:
    """One page of people by key, in a constant number of queries (one or two, once more
    when a "previous" link reaches the start; two more on PostgreSQL, for a setting)."""
    # No parallel workers for the walk: a page is a LIMIT over a walk of the sort order, and
    # a filtered walk (a worst outcome, say) is planned as a parallel Gather Merge whose
    # workers each run well past the page before the merge stops them: 60-65 ms for
    # ?outcome=blocked at 20,000 people, 10 ms walked by one process (EXPLAIN ANALYZE; the
    # other filters gain 1-2 ms).
    with session_setting("max_parallel_workers_per_gather", "0"):
        return _people_page(people, sort=sort, after=after, before=before, size=size)


def _people_page(
    people: QuerySet[BatchMailbox], *, sort: str, after: str, before: str, size: int
) -> Page:
    sort = sort if sort in SORTS else DEFAULT_SORT
    keys = _keys(sort)
    cursor_after = decode_cursor(after, keys) if after else None
    cursor_before = decode_cursor(before, keys) if before and cursor_after is None else None

    if cursor_before is not None:
        rows = _walk(people, keys, cursor_before, backwards=True, limit=size + 1)
        if len(rows) <= size:
            # Fewer than a page before it: that is the first page, shown whole.
            return _people_page(people, sort=sort, after="", before="", size=size)
        rows = rows[:size][::-1]
        has_previous, has_next = True, True
    else:
        rows = _walk(people, keys, cursor_after, backwards=False, limit=size + 1)
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = cursor_after is not None and bool(rows)

    def cursor(row: BatchMailbox) -> str:
        return encode_cursor(key.value_of(row) for key in keys)

    return Page(
        rows=rows,
        sort=sort,
        next_cursor=cursor(rows[-1]) if has_next and rows else "",
        previous_cursor=cursor(rows[0]) if has_previous and rows else "",
        first=cursor_after is None and cursor_before is None,
    )


# --- Phones of a page of people ------------------------------------------------------------


def phones_of(member_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Each member's predicted phones, worst outcome first: one query for a page."""
    rows = (
        Prediction.objects.filter(member_id__in=list(member_ids))
        .annotate(rank=RANK)
        .order_by("member_id", "rank", "partnership__device__device_id")
        .values_list(
            "member_id",
            "outcome",
            "partnership__client_type",
            "partnership__access_state",
            "partnership__last_success_sync_at",
            "partnership__device__device_id",
            "partnership__device__device_type",
            "partnership__device__model",
            "partnership__device__os",
            "partnership__device__friendly_name",
        )
    )
    phones: dict[int, list[dict[str, Any]]] = {}
    for member_id, outcome, client, access, synced, device_id, kind, model, os, friendly in rows:
        platform = platform_of(device_type=kind, os=os, client_type=client)
        phones.setdefault(member_id, []).append(
            {
                "outcome": outcome,
                "platform": PLATFORM_LABELS[platform],
                "access_state": access,
                "last_sync": synced,
                "device_id": device_id,
                "device_type": kind,
                "model": model,
                "friendly_name": friendly,
            }
        )
    return phones


def with_phones(
    people: Iterable[BatchMailbox], *, chunk: int = 1000
) -> Iterator[tuple[BatchMailbox, list[dict[str, Any]]]]:
    """Every person with their phones, reading people once and phones per chunk of people:
    memory stays flat for an export of the whole list."""
    iterator = iter(people)
    while group := list(islice(iterator, chunk)):
        phones = phones_of(person.pk for person in group)
        for person in group:
            yield person, phones.get(person.pk, [])
