"""Partnership hygiene (issue 15 point 4): reads for the four lists, and their counts.

- stale: no successful sync for N days; one that never synced counts once it was first
  synced (FirstSyncTime) or, without one, first seen by exsync more than N days ago;
- duplicates: one phone partnered several times with one mailbox: the same IMEI when both
  have one, else the same DeviceId (the inventory keeps one row per DeviceId and mailbox, so
  that is a DeviceId in another case); "likely" when DeviceType, model and FriendlyName are the
  same (all three given) and the DeviceIds differ, unless both IMEIs are known. In a group the
  most recently synced partnership is kept; one with a newer partner is a removal candidate;
- mailboxes at or near the per-mailbox partnership limit (EasMaxDevices of the mailbox's
  organisation where recorded, else 100; eas-moves.md X-DEVLIMIT);
- EAS versions the target will not accept (X-EASVER-EXO, MS-ASHTTP's oldest version 2.5).

Only partnerships the latest full export still listed (is_stale false) are read: the others
are history. Every list and every count is a fixed number of queries however many rows: the
rules are SQL (EXISTS on the same mailbox's partnerships), and the EAS version classes are
decided in Python once per distinct version string, then applied as one CASE.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower, NullIf, Trim, Upper
from django.urls import reverse
from django.utils import timezone

from devices.models import (
    EXCHANGE_ONLINE_FOREST,
    ExchangeServer,
    Generation,
    Mailbox,
    Organisation,
    Partnership,
)
from exchange.powershell import RemovalLine, removal_line
from exchange.versions import EAS_EXO_MIN, parse_eas_version
from migrations_plan.models import BatchMailbox, MoveBatch

STALE, DUPLICATES, LIMIT, EASVER = "stale", "duplicates", "limit", "easver"
KINDS = (STALE, DUPLICATES, LIMIT, EASVER)
CHECK_IDS = {STALE: "HYG-STALE", DUPLICATES: "HYG-DUP", LIMIT: "HYG-LIMIT", EASVER: "HYG-EASVER"}
URL_NAMES = {kind: f"helpdesk:hygiene_{kind}" for kind in KINDS}

# X-DEVLIMIT: EasMaxDevices defaults to 100 (2013+, Exchange Online); Exchange 2010 SP1
# deployments commonly report 10 (Q-2010SP1-LIMIT), so an unrecorded limit is said to be one.
DEFAULT_LIMIT = 100
NEAR_PERCENT = 80
LIMIT_NOTE = (
    "not recorded: 100 assumed (the Exchange 2013+ and Exchange Online default); "
    "Exchange 2010 SP1 deployments commonly report 10"
)

# EAS versions (eas-moves.md §6). MS-ASHTTP lists 2.5 as the oldest: 1.0, 2.0 and 2.1 are
# accepted by no target. Exchange Online refuses versions below 16.1 from 2026-03-01.
EAS_FLOOR = (2, 5)
EXO_EAS_FROM = date(2026, 3, 1)
# The highest version a source server offers caps what its export can show (X-EASVER-EXO;
# MS-ASHTTP Appendix A: 2010 SP1 and 2013 do not offer 16.x). Unknown source: the lowest cap.
SOURCE_CAPS: dict[str, tuple[int, int]] = {
    Generation.EX2003: (2, 5),
    Generation.EX2007: (12, 1),
    Generation.EX2010: (14, 1),
    Generation.EX2013: (14, 1),
    Generation.EX2016: (16, 1),
    Generation.EX2019: (16, 1),
    Generation.SE: (16, 1),
    Generation.EXO: (16, 1),
}
BELOW, UNCONFIRMED, UNKNOWN_VERSION = "below", "unconfirmed", "unknown"
EAS_CATEGORIES = (
    (BELOW, "Not accepted"),
    (UNCONFIRMED, "Unconfirmed: not shown to speak 16.1"),
    (UNKNOWN_VERSION, "Unknown version"),
)
EAS_CATEGORY_LABELS = dict(EAS_CATEGORIES)
# Outlook for iOS and Android is not an EAS client on 2013+ (ClientType Outlook or REST).
NOT_EAS = Q(client_type__iexact="outlook") | Q(client_type__iexact="rest")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """Which mailboxes a list reads: all of them, or those on a server, in an active batch
    (its active members), of an organisation, or with these ids."""

    server: ExchangeServer | None = None
    batch: MoveBatch | None = None
    organisation: Organisation | None = None
    mailbox_ids: Collection[int] | None = None

    def mailbox_q(self, *, prefix: str = "") -> Q:
        """The condition on a mailbox, reached through `prefix` ("" or "mailbox__")."""
        q = Q()
        pk = f"{prefix}pk" if prefix else "pk"
        if self.server is not None:
            q &= Q(**{f"{prefix}server": self.server})
        if self.batch is not None:
            members = BatchMailbox.objects.filter(batch=self.batch, is_active=True)
            q &= Q(**{f"{pk}__in": members.values("mailbox_id")})
        if self.mailbox_ids is not None:
            q &= Q(**{f"{pk}__in": list(self.mailbox_ids)})
        if self.organisation is not None:
            q &= _organisation_q(self.organisation, prefix=f"{prefix}server__")
        return q


def _organisation_q(organisation: Organisation, *, prefix: str) -> Q:
    """Servers of the organisation, as ExchangeServer.effective_forest decides."""
    exo = Q(**{f"{prefix}generation": Generation.EXO})
    if organisation.forest == EXCHANGE_ONLINE_FOREST:
        return exo
    forest = organisation.forest
    return ~exo & (
        Q(**{f"{prefix}forest_recorded__iexact": forest})
        | Q(**{f"{prefix}forest_recorded": "", f"{prefix}forest__iexact": forest})
    )


def _forest_of_server(prefix: str) -> Case:
    """ExchangeServer.effective_forest in SQL."""
    return Case(
        When(**{f"{prefix}generation": Generation.EXO}, then=Value(EXCHANGE_ONLINE_FOREST)),
        default=Lower(
            Trim(Coalesce(NullIf(F(f"{prefix}forest_recorded"), Value("")), F(f"{prefix}forest")))
        ),
        output_field=CharField(),
    )


def current_partnerships(scope: Scope) -> QuerySet[Partnership]:
    return Partnership.objects.filter(scope.mailbox_q(prefix="mailbox__"), is_stale=False)


def _rows(partnerships: QuerySet[Partnership]) -> QuerySet[Partnership]:
    """What a row shows: the phone, the mailbox and its server (for the cmdlet)."""
    return partnerships.select_related("device", "mailbox__server")


# --- stale ---------------------------------------------------------------------------------


def stale_days_default() -> int:
    return settings.HYGIENE_STALE_DAYS


def stale_q(*, days: int, now: datetime | None = None) -> Q:
    cutoff = (now or timezone.now()) - timedelta(days=days)
    never = Q(last_success_sync_at__isnull=True) & (
        Q(first_sync_at__lt=cutoff) | Q(first_sync_at__isnull=True, created_at__lt=cutoff)
    )
    return Q(last_success_sync_at__lt=cutoff) | never


def stale_partnerships(
    scope: Scope, *, days: int, now: datetime | None = None
) -> QuerySet[Partnership]:
    """Stale partnerships, the longest silent first (never synced before them)."""
    return _rows(current_partnerships(scope).filter(stale_q(days=days, now=now))).order_by(
        F("last_success_sync_at").asc(nulls_first=True), "first_sync_at", "pk"
    )


# --- duplicates ----------------------------------------------------------------------------


# The comparison keys, computed by the database so that SQL and Python agree (LOWER is
# ASCII-only on SQLite). Spelled as functions of a reference (F, or OuterRef inside a
# subquery): an OuterRef to an annotation's name would compile to its alias, which neither
# an aggregate nor PostgreSQL's WHERE can see.
KEYS = {
    "imei_key": lambda ref: Upper(Trim(ref("device__imei"))),
    "id_key": lambda ref: Lower(ref("device__device_id")),
    "type_key": lambda ref: Lower(Trim(ref("device__device_type"))),
    "model_key": lambda ref: Lower(Trim(ref("device__model"))),
    "name_key": lambda ref: Lower(Trim(ref("device__friendly_name"))),
    "sync_key": lambda ref: Coalesce(ref("last_success_sync_at"), Value(EPOCH)),
}


def _keyed(partnerships: QuerySet[Partnership]) -> QuerySet[Partnership]:
    return partnerships.annotate(**{name: key(F) for name, key in KEYS.items()})


def _outer(name: str):
    """A key of the outer partnership, inside a subquery."""
    return KEYS[name](OuterRef)


def _partners(*, newer: bool) -> QuerySet[Partnership]:
    """The outer partnership's current partners on the same mailbox (only the ones that
    synced more recently, with `newer`: the order a group is listed in)."""
    others = _keyed(Partnership.objects.filter(is_stale=False)).filter(
        mailbox_id=OuterRef("mailbox_id")
    )
    others = others.exclude(pk=OuterRef("pk"))
    if newer:
        others = others.filter(
            Q(sync_key__gt=_outer("sync_key"))
            | Q(sync_key=_outer("sync_key"), pk__gt=OuterRef("pk"))
        )
    return others


def same_phone_q(*, newer: bool = False) -> Q:
    """The outer partnership has a partner that is certainly the same phone."""
    others = _partners(newer=newer)
    same_imei = Exists(others.filter(imei_key=_outer("imei_key")).exclude(imei_key=""))
    same_id = others.filter(id_key=_outer("id_key"))
    return (
        (~Q(imei_key="") & same_imei)
        | Q(Exists(same_id.filter(imei_key="")))
        | (Q(imei_key="") & Exists(same_id))
    )


def likely_same_phone_q(*, newer: bool = False) -> Q:
    """The outer partnership has a partner that is likely the same phone."""
    others = _partners(newer=newer).exclude(type_key="").exclude(model_key="").exclude(name_key="")
    alike = others.filter(
        type_key=_outer("type_key"),
        model_key=_outer("model_key"),
        name_key=_outer("name_key"),
    ).exclude(id_key=_outer("id_key"))
    return Q(Exists(alike.filter(imei_key=""))) | (Q(imei_key="") & Exists(alike))


def relation(a: Partnership, b: Partnership) -> str | None:
    """How two keyed partnerships of one mailbox are the same phone: "imei", "device_id",
    "likely" or None; the rules of same_phone_q() and likely_same_phone_q()."""
    if a.imei_key and b.imei_key:
        return "imei" if a.imei_key == b.imei_key else None
    if a.id_key == b.id_key:
        return "device_id"
    keys = ("type_key", "model_key", "name_key")
    if all(getattr(a, k) and getattr(a, k) == getattr(b, k) for k in keys):
        return "likely"
    return None


DUPLICATE_KINDS = (("exact", "Same IMEI or DeviceId"), ("likely", "Likely (type, model, name)"))


def duplicate_partnerships(scope: Scope, *, kind: str = "") -> QuerySet[Partnership]:
    """Partnerships in a duplicate group, by mailbox, the newest sync first, each marked
    `candidate` (a partner synced more recently) and `candidate_exact` (such a partner is
    certainly the same phone)."""
    certain, likely = same_phone_q(), likely_same_phone_q()
    if kind == "exact":
        condition = certain
    elif kind == "likely":
        condition = likely & ~certain
    else:
        condition = certain | likely
    newer_certain = same_phone_q(newer=True)
    newer_any = newer_certain | likely_same_phone_q(newer=True)
    return (
        _rows(_keyed(current_partnerships(scope)))
        .filter(condition)
        .annotate(
            candidate=ExpressionWrapper(newer_any, output_field=BooleanField()),
            candidate_exact=ExpressionWrapper(newer_certain, output_field=BooleanField()),
        )
        .order_by("mailbox__display_name", "mailbox_id", F("sync_key").desc(), F("pk").desc())
    )


def duplicate_mailboxes(scope: Scope, *, kind: str = "") -> QuerySet[Mailbox]:
    """The mailboxes that hold a duplicate group, by name: what the page is cut by."""
    holding = duplicate_partnerships(scope, kind=kind).order_by().values("mailbox_id")
    return Mailbox.objects.filter(pk__in=holding).order_by("display_name", "pk")


@dataclass
class DuplicateGroup:
    mailbox: Mailbox
    partnerships: list[Partnership]
    bases: set[str] = field(default_factory=set)

    @property
    def likely_only(self) -> bool:
        return self.bases == {"likely"}

    @property
    def basis_label(self) -> str:
        said = [
            label
            for key, label in (
                ("imei", "same IMEI"),
                ("device_id", "same DeviceId"),
                ("likely", "likely: same type, model and name"),
            )
            if key in self.bases
        ]
        return "; ".join(said).capitalize()


def _components(rows: list[Partnership]) -> Iterator[tuple[list[Partnership], set[str]]]:
    """The rows joined by relation(), with how (in rows' order), by union-find."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges = []
    for i, a in enumerate(rows):
        for j in range(i + 1, len(rows)):
            how = relation(a, rows[j])
            if how:
                parent[find(j)] = find(i)
                edges.append((i, how))
    bases: dict[int, set[str]] = {}
    for i, how in edges:
        bases.setdefault(find(i), set()).add(how)
    members: dict[int, list[Partnership]] = {}
    for i, row in enumerate(rows):
        members.setdefault(find(i), []).append(row)
    for root, group in members.items():
        yield group, bases.get(root, set())


def duplicate_groups(partnerships: Iterable[Partnership]) -> Iterator[DuplicateGroup]:
    """Groups of duplicate_partnerships() rows (in its order), per mailbox, newest first."""
    for _, rows in groupby(partnerships, key=lambda p: p.mailbox_id):
        for group, bases in _components(list(rows)):
            if len(group) > 1:
                yield DuplicateGroup(group[0].mailbox, group, bases)


# --- mailboxes near the limit --------------------------------------------------------------

LIMIT_LEVELS = (("near", f"At {NEAR_PERCENT}% or more"), ("at", "At or over the limit"))


def _partnership_count(condition: Q) -> Coalesce:
    counted = (
        Partnership.objects.filter(condition, mailbox_id=OuterRef("pk"), is_stale=False)
        .order_by()
        .values("mailbox_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _with_limits(mailboxes: QuerySet[Mailbox], *, days: int, now: datetime | None) -> QuerySet:
    recorded = Organisation.objects.filter(forest=OuterRef("forest_key")).values("eas_max_devices")[
        :1
    ]
    return mailboxes.annotate(
        forest_key=_forest_of_server("server__"),
        recorded_limit=Subquery(recorded, output_field=IntegerField()),
        limit=Coalesce("recorded_limit", Value(DEFAULT_LIMIT)),
        n_partnerships=_partnership_count(Q()),
        n_stale=_partnership_count(stale_q(days=days, now=now)),
    )


def _level_q(level: str) -> Q:
    if level == "at":
        return Q(n_partnerships__gte=F("limit"))
    # n >= 80% of the limit, in whole numbers: 100 n >= 80 limit.
    return Q(n_hundred__gte=F("limit") * NEAR_PERCENT)


def limit_mailboxes(
    scope: Scope, *, level: str = "near", days: int, now: datetime | None = None
) -> QuerySet[Mailbox]:
    """Mailboxes holding at least 80% of their limit (`level` "at": the limit or more), the
    fullest first, with n_partnerships, limit, recorded_limit (None: not recorded) and
    n_stale (how many of them are stale after `days`)."""
    return (
        _with_limits(
            Mailbox.objects.filter(scope.mailbox_q()).select_related("server"), days=days, now=now
        )
        .annotate(n_hundred=F("n_partnerships") * 100)
        .filter(_level_q(level))
        .order_by(F("n_partnerships").desc(), "display_name", "pk")
    )


def limit_removable(mailboxes: QuerySet[Mailbox], *, days: int, now: datetime | None = None):
    """The stale partnerships of these mailboxes: what an admin removes to make room."""
    return _rows(
        Partnership.objects.filter(
            stale_q(days=days, now=now), is_stale=False, mailbox_id__in=mailboxes.values("pk")
        )
    ).order_by("mailbox__display_name", "mailbox_id", "pk")


# --- EAS versions the target will not accept -----------------------------------------------


def requires_16_1(target: ExchangeServer | None, *, on: date | None = None) -> bool:
    """Whether the target refuses EAS below 16.1 on that day (Exchange Online, X-EASVER-EXO)."""
    if target is None or target.generation != Generation.EXO:
        return False
    return (on or timezone.localdate()) >= EXO_EAS_FROM


def eas_category(version: str | None, *, source_generation: str | None, exo: bool) -> str | None:
    """BELOW, UNCONFIRMED, UNKNOWN_VERSION, or None when the target accepts it."""
    parsed = parse_eas_version(version)
    if parsed is None:
        return UNKNOWN_VERSION
    if parsed < EAS_FLOOR:
        return BELOW
    if not exo or parsed >= EAS_EXO_MIN:
        return None
    cap = SOURCE_CAPS.get(source_generation or "", EAS_FLOOR)
    return BELOW if parsed < min(cap, EAS_EXO_MIN) else UNCONFIRMED


def source_cap(generation: str | None) -> str:
    cap = SOURCE_CAPS.get(generation or "")
    return f"{cap[0]}.{cap[1]}" if cap else "unknown"


def _eas_case(versions: Iterable[str], *, exo: bool) -> Case:
    """eas_category() as one CASE over the version strings present (and, for Exchange
    Online, the source server's generation)."""
    versions = set(versions)
    by_category: dict[tuple[str | None, str | None], list[str]] = {}
    generations: list[str | None] = [*SOURCE_CAPS, None] if exo else [None]
    for generation in generations:
        for version in versions:
            category = eas_category(version, source_generation=generation, exo=exo)
            if category is not None:
                by_category.setdefault((generation, category), []).append(version)
    whens = []
    # Known generations first; a mailbox without a server or of an unknown generation falls
    # through to the None entries (the lowest cap).
    for (generation, category), listed in sorted(
        by_category.items(), key=lambda item: (item[0][0] is None, str(item[0]))
    ):
        condition = Q(eas_version__in=sorted(listed))
        if generation is not None:
            condition &= Q(mailbox__server__generation=generation)
        whens.append(When(condition, then=Value(category)))
    return Case(*whens, default=Value(""), output_field=CharField())


def _versions_present() -> list[str]:
    """Every distinct version string of a current partnership (a few dozen at most)."""
    return list(
        Partnership.objects.filter(is_stale=False)
        .order_by()
        .values_list("eas_version", flat=True)
        .distinct()
    )


EAS_RANK = Case(
    *[When(eas_category=c, then=Value(i)) for i, (c, _) in enumerate(EAS_CATEGORIES)],
    default=Value(len(EAS_CATEGORIES)),
    output_field=IntegerField(),
)


def easver_partnerships(
    scope: Scope,
    *,
    target: ExchangeServer | None,
    on: date | None = None,
    category: str = "",
) -> QuerySet[Partnership]:
    """EAS partnerships whose version the target will not accept (`eas_category`), worst
    first. Without a target: against any Exchange (below 2.5, or unknown)."""
    case = _eas_case(_versions_present(), exo=requires_16_1(target, on=on))
    rows = (
        _rows(current_partnerships(scope))
        .exclude(NOT_EAS)
        .annotate(eas_category=case)
        .exclude(eas_category="")
    )
    if category:
        rows = rows.filter(eas_category=category)
    return rows.annotate(eas_rank=EAS_RANK).order_by(
        "eas_rank", "mailbox__display_name", "mailbox_id", "pk"
    )


# --- PowerShell ----------------------------------------------------------------------------


def removal_of(partnership: Partnership) -> RemovalLine:
    server = partnership.mailbox.server
    return removal_line(
        identity=partnership.identity, generation=server.generation if server else None
    )


def script_lines(partnerships: Iterable[Partnership]) -> Iterator[str]:
    """One line per partnership: the command, or a comment saying why there is none. The
    comment names exsync's own row number only: nothing untrusted goes outside a literal.

    A duplicate found only by its look (same type, model and name, another DeviceId) may be a
    second, identical phone that is in use: it gets a comment to check it, never a command."""
    for partnership in partnerships:
        if getattr(partnership, "candidate", False) and not getattr(
            partnership, "candidate_exact", True
        ):
            yield (
                f"# partnership {partnership.pk}: likely the same phone (same type, model and "
                "name, another DeviceId): check it in the list before removing it by hand."
            )
            continue
        removal = removal_of(partnership)
        yield removal.line or f"# partnership {partnership.pk}: no line, {removal.problem}."


# --- counts for the readiness checks -------------------------------------------------------


@dataclass(frozen=True)
class HygieneCount:
    """One hygiene list, counted: partnerships (mailboxes for HYG-LIMIT), the mailboxes they
    concern, a short detail and the list's URL with the same batch / target."""

    check: str
    count: int
    mailboxes: int
    detail: str
    link: str

    @property
    def url(self) -> str:
        return self.link


def list_url(kind: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse(URL_NAMES[kind]) + (f"?{query}" if query else "")


def hygiene_counts(
    *,
    mailbox_ids: Collection[int] | None = None,
    target: ExchangeServer | None = None,
    batch: MoveBatch | None = None,
    now: datetime | None = None,
) -> list[HygieneCount]:
    """The four lists counted over `mailbox_ids` (all mailboxes: None), EAS versions against
    `target` (None: against any Exchange). `batch`, when given, scopes to its active members
    and its target (unless one is given) and puts ?batch= in the links. Three queries."""
    now = now or timezone.now()
    days = stale_days_default()
    if batch is not None and target is None:
        target = batch.target_server
    scope = Scope(batch=batch, mailbox_ids=mailbox_ids)
    on = timezone.localdate(batch.start_at) if batch is not None else timezone.localdate(now)
    exo = requires_16_1(target, on=on)

    stale = stale_q(days=days, now=now)
    certain = same_phone_q(newer=True)
    any_dup = certain | likely_same_phone_q(newer=True)
    eas = ~NOT_EAS & ~Q(eas_category="")
    figures = (
        _keyed(current_partnerships(scope))
        .annotate(eas_category=_eas_case(_versions_present(), exo=exo))
        .aggregate(
            stale=Count("pk", filter=stale),
            stale_mailboxes=Count("mailbox_id", distinct=True, filter=stale),
            dup=Count("pk", filter=any_dup),
            dup_certain=Count("pk", filter=certain),
            dup_mailboxes=Count("mailbox_id", distinct=True, filter=any_dup),
            eas=Count("pk", filter=eas),
            eas_mailboxes=Count("mailbox_id", distinct=True, filter=eas),
            **{
                f"eas_{c}": Count("pk", filter=~NOT_EAS & Q(eas_category=c))
                for c, _ in EAS_CATEGORIES
            },
        )
    )
    limits = (
        limit_mailboxes(scope, days=days, now=now)
        .order_by()
        .aggregate(
            near=Count("pk"),
            at=Count("pk", filter=Q(n_partnerships__gte=F("limit"))),
            unrecorded=Count("pk", filter=Q(recorded_limit__isnull=True)),
        )
    )

    base = {"batch": batch.pk} if batch is not None else {}
    with_target = base or ({"target": target.pk} if target is not None else {})
    against = (
        f"against {target.name}" + (" (Exchange Online needs 16.1)" if exo else "")
        if target is not None
        else "against any Exchange (below 2.5); choose a target for Exchange Online's 16.1"
    )
    likely = figures["dup"] - figures["dup_certain"]
    return [
        HygieneCount(
            check=CHECK_IDS[STALE],
            count=figures["stale"],
            mailboxes=figures["stale_mailboxes"],
            detail=f"{figures['stale']} partnership(s) with no successful sync for {days} days "
            f"or more, in {figures['stale_mailboxes']} mailbox(es).",
            link=list_url(STALE, **base),
        ),
        HygieneCount(
            check=CHECK_IDS[DUPLICATES],
            count=figures["dup"],
            mailboxes=figures["dup_mailboxes"],
            detail=f"{figures['dup']} older duplicate partnership(s) to remove "
            f"({figures['dup_certain']} certain, {likely} likely) in "
            f"{figures['dup_mailboxes']} mailbox(es).",
            link=list_url(DUPLICATES, **base),
        ),
        HygieneCount(
            check=CHECK_IDS[LIMIT],
            count=limits["near"],
            mailboxes=limits["near"],
            detail=f"{limits['near']} mailbox(es) at {NEAR_PERCENT}% or more of their "
            f"partnership limit, {limits['at']} at or over it"
            + (
                f"; {limits['unrecorded']} without a recorded EasMaxDevices ({LIMIT_NOTE})."
                if limits["unrecorded"]
                else "."
            ),
            link=list_url(LIMIT, **base),
        ),
        HygieneCount(
            check=CHECK_IDS[EASVER],
            count=figures["eas"],
            mailboxes=figures["eas_mailboxes"],
            detail=f"{figures['eas_below']} not accepted, {figures['eas_unconfirmed']} "
            f"unconfirmed, {figures['eas_unknown']} of unknown version, {against}.",
            link=list_url(EASVER, **with_target),
        ),
    ]
