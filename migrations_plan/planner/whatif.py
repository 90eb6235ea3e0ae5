"""What-if: the planner run again with one fact changed, for the admin actions of eas-moves.md.

A prerequisite is an admin action a rule names (rules.RULES[rule].admin_action): install 2007
SP1 on the target, enable IWA on the 2003 ActiveSync directory, move the namespace to a newer
front end, publish the ExternalUrl, keep or reissue the certificate, pre-approve the device,
raise EasMaxDevices, remove stale partnerships. Each Change below turns its action into the
one fact the action changes, and predict_range() decides what that fact does: nothing here
knows an outcome, so the rules have one copy, in predict.py.

Honesty: a Change is credited with an improvement only when the planner, with the fact
changed, reaches one decided outcome better than before that rests on no missing fact. When
the answer still depends on a missing fact (a range, `unknown`, a warning naming a fact nobody
checked, a client nobody knows follows HTTP 451), or the change itself cannot be stated without
one (which host name the phones use, which issuer their certificate has, which server is the
hybrid server), the effect says what is missing and gets no credit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from exchange.versions import (
    BUILD_2007_SP1,
    BUILD_2010_SP2_RU6,
    BUILD_2010_SP3_RU9,
    BUILD_2013_CU8,
    ExchangeVersion,
    Generation,
    describe,
)

from .facts import (
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    OrgFacts,
    ServerFacts,
)
from .outcomes import Outcome, severity
from .predict import Prediction, _covers, _day, server_generation, server_version
from .ranges import predict_range
from .rules import RULES

__all__ = [
    "CHANGES",
    "Applied",
    "Change",
    "Effect",
    "Missing",
    "Situation",
    "effects",
    "outcome_low_confidence",
]

G = Generation
G2013P = frozenset({G.EX2013, G.EX2016, G.EX2019, G.SE})
# A reissued certificate is judged valid for this long after the move (its exact expiry is the
# admin's choice; a year is what public CAs issue).
REISSUED_VALID_FOR = timedelta(days=365)
REISSUED_THUMBPRINT = "REISSUED"


@dataclass(frozen=True)
class Situation:
    """One fact key's facts and the planner's answer for them.

    stale_partnerships: how many of the user's partnerships are stale (no sync for the hygiene
        period); None = not counted. Only removing stale partnerships reads it.
    """

    move: MoveFacts
    device: DeviceFacts
    org: OrgFacts | None
    base: Prediction
    stale_partnerships: int | None = None


@dataclass(frozen=True)
class Applied:
    """The facts with the change made. subject: what the action is about (a server, a host
    name, an organisation); detail: the value it sets, in words."""

    move: MoveFacts
    device: DeviceFacts
    org: OrgFacts | None
    subject: str
    detail: str = ""


@dataclass(frozen=True)
class Missing:
    """The change cannot be stated for this device without a fact nobody recorded."""

    question: str  # a questions.QUESTIONS id
    subject: str
    text: str


@dataclass(frozen=True)
class Change:
    """One prerequisite: the admin action of `rules`, as the one fact it changes.

    where: the place the fact is recorded once done (a key the web layer turns into a link:
        server, namespaces, endpoints, imports, organisation, hygiene).
    shared: the fact is one of a server, a host name or a namespace, done once for everyone
        (so a later wave finds it done); False for what is about users or their devices
        (pre-approving them, their stale partnerships, a device limit each user may push
        higher), which every wave needs again for its own people.
    """

    id: str
    rules: tuple[str, ...]
    title: str
    where: str
    apply: Callable[[Situation], Applied | Missing | None]
    shared: bool = True

    @property
    def admin_action(self) -> str:
        return RULES[self.rules[0]].admin_action


@dataclass(frozen=True)
class Effect:
    """What one Change does to one fact key's devices.

    credited: the planner reaches one decided outcome (`after`) better than `before`.
    Otherwise `possible` holds the outcomes it may reach and `missing` the questions the
    answer still rests on.
    """

    change: str
    subject: str
    detail: str
    before: Outcome
    after: Outcome
    possible: tuple[Outcome, ...]
    credited: bool
    low_confidence: bool = False
    missing: tuple[str, ...] = ()
    missing_text: str = ""


# --- helpers: one fact changed everywhere the same server or endpoint appears -------------------


def _name(server: ServerFacts | None) -> str:
    return (server.name if server is not None else None) or "the server"


def _swap_server(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None, old: ServerFacts, new: ServerFacts
) -> tuple[MoveFacts, DeviceFacts, OrgFacts | None]:
    """Replace a server's facts wherever the planner may read them (the move's two sides, the
    endpoints answered by it, the organisation's servers and namespaces)."""

    def server(s: ServerFacts | None) -> ServerFacts | None:
        return new if s == old else s

    def endpoint(e: EndpointFacts | None) -> EndpointFacts | None:
        if e is None or e.server != old:
            return e
        return replace(e, server=new)

    move = replace(
        move,
        source=server(move.source) or move.source,
        target=server(move.target) or move.target,
        target_endpoint=endpoint(move.target_endpoint),
        hybrid_server=server(move.hybrid_server),
    )
    device = replace(device, endpoint=endpoint(device.endpoint))
    if org is not None:
        org = replace(
            org,
            servers=tuple(server(s) or s for s in org.servers) if org.servers else org.servers,
            namespaces=tuple(endpoint(e) or e for e in org.namespaces)
            if org.namespaces
            else org.namespaces,
        )
    return move, device, org


def _upgrade(s: Situation, server: ServerFacts, build: ExchangeVersion) -> Applied:
    new = replace(server, exsetup_version=str(build))
    move, device, org = _swap_server(s.move, s.device, s.org, server, new)
    was = describe(server_version(server))
    return Applied(move, device, org, subject=_name(server), detail=f"{was} → {describe(build)}")


def _front_end(s: Situation) -> ServerFacts | Missing:
    """The server answering the phone: recorded with its host name, or the change cannot be
    stated (which server to update is the missing fact)."""
    endpoint = s.device.endpoint
    if endpoint is None or endpoint.server is None:
        return Missing(
            "namespace",
            f"phones of mailboxes on {_name(s.move.source)}",
            "which host name the phones use, and so which server answers them, is not recorded",
        )
    return endpoint.server


# --- the changes ----------------------------------------------------------------------------------


def _target_service_pack(s: Situation) -> Applied | Missing | None:
    # M-2003-2007RTM / M-2007-2007RTM: 2007 SP1 brings Sync State Upgrade to Move-Mailbox.
    target = s.move.target
    version = server_version(target)
    if server_generation(target) is not G.EX2007 or version is None or version >= BUILD_2007_SP1:
        return None
    return _upgrade(s, target, BUILD_2007_SP1)


def _front_end_rollup(s: Situation) -> Applied | Missing | None:
    # M-2010-2010-XS-OLDDEV: KB 2751417 is fixed in 2010 SP2 RU6 on the CAS the phones reach.
    front = _front_end(s)
    if isinstance(front, Missing):
        return front
    version = server_version(front)
    if server_generation(front) is not G.EX2010 or version is None:
        return None
    if version >= BUILD_2010_SP2_RU6:
        return None  # recorded past RU6, or shown as SP3 (every build of which is)
    return _upgrade(s, front, BUILD_2010_SP2_RU6)


def _front_end_onboarding(s: Situation) -> Applied | Missing | None:
    # M-HYB-ON-NO451: the on-boarding 451 needs 2010 SP3 RU9 / 2013 CU8 on the server answering.
    front = _front_end(s)
    if isinstance(front, Missing):
        return front
    generation, version = server_generation(front), server_version(front)
    if version is None:
        return None
    # An AdminDisplayVersion of 2010 shows the service pack only: below RU9 until ExSetup says.
    if generation is G.EX2010 and version < BUILD_2010_SP3_RU9:
        return _upgrade(s, front, BUILD_2010_SP3_RU9)
    if generation is G.EX2013 and version < BUILD_2013_CU8:
        return _upgrade(s, front, BUILD_2013_CU8)
    return None  # 2003/2007 cannot be updated into it: that is the namespace move


def _iwa_2003(s: Situation) -> Applied | Missing | None:
    # X-IWA-2003: a 2007/2010 CAS proxies to the 2003 ActiveSync directory with IWA.
    source = s.move.source
    if server_generation(source) is not G.EX2003 or source.iwa_on_eas_vdir is True:
        return None
    new = replace(source, iwa_on_eas_vdir=True)
    move, device, org = _swap_server(s.move, s.device, s.org, source, new)
    return Applied(move, device, org, subject=_name(source), detail="IWA enabled")


def _host_unknown(s: Situation, what: str) -> Missing:
    return Missing(
        "namespace",
        f"phones of mailboxes on {_name(s.move.source)}",
        f"which host name the phones use is not recorded, so {what} is not known",
    )


def _namespace_move(s: Situation) -> Applied | Missing | None:
    # M-2010-2013P: the name phones use must be answered by 2013 or later; M-2007-EXO-LEGACY:
    # by the hybrid server. The host name and its certificate stay. (M-2013P-2013P names no
    # admin action: a 2013+ front end already proxies.)
    endpoint = s.device.endpoint
    if endpoint is None or not endpoint.host:
        return _host_unknown(s, "which name to move")
    target = s.move.target
    if target.is_exchange_online:
        # The name moves to the server the Hybrid Configuration Wizard set up, as an admin
        # recorded it; the newest server is not necessarily it, so without the record where to
        # move the name is a missing fact. Whether that server can send the on-boarding 451 is
        # the planner's to decide.
        front = s.move.hybrid_server
        if front is None:
            return Missing(
                "hybrid-server",
                f"phones of mailboxes on {_name(s.move.source)}",
                "which on-premises server is the hybrid server is not recorded, so which "
                "server the name should move to is not known",
            )
    else:
        front = target if server_generation(target) in G2013P else None
    if front is None or endpoint.server == front:
        return None
    old_front = endpoint.server
    moved = replace(endpoint, server=front, legacy_namespace=False)

    def same_host(e: EndpointFacts | None) -> EndpointFacts | None:
        return moved if e is not None and e.host == endpoint.host else e

    move = replace(s.move, target_endpoint=same_host(s.move.target_endpoint))
    device = replace(s.device, endpoint=moved)
    org = s.org
    if org is not None and org.namespaces:
        org = replace(org, namespaces=tuple(same_host(e) or e for e in org.namespaces))
    return Applied(
        move,
        device,
        org,
        subject=endpoint.host,
        detail=f"{_name(old_front) if old_front else 'unrecorded front end'} → {_name(front)}",
    )


def _external_url(s: Situation) -> Applied | Missing | None:
    # M-LEGACYNS-2010-451: the 2007 CAS redirects phones only to a published 2010 ExternalUrl.
    target = s.move.target
    if target.is_exchange_online or target.eas_external_url_set is True:
        return None
    new = replace(target, eas_external_url_set=True)
    move, device, org = _swap_server(s.move, s.device, s.org, target, new)
    return Applied(move, device, org, subject=_name(target), detail="EAS ExternalUrl published")


def _certificate(s: Situation) -> Applied | Missing | None:
    # X-CERT: keep the certificate phones trust, or reissue one from the same issuer covering
    # every name they meet (legacy.*, mail.*, autodiscover.*), valid past the move.
    endpoint = s.device.endpoint
    if endpoint is None or not endpoint.host:
        return _host_unknown(s, "which certificate to keep")
    after = s.move.target_endpoint
    hosts = tuple(dict.fromkeys(h for h in (endpoint.host, after and after.host) if h))
    trusted = endpoint.certificate
    day = _day(s.move.move_date)
    expiry = _day(trusted.not_after) if trusted is not None else None
    if (
        trusted is not None
        and expiry is not None
        and (day is None or expiry >= day)
        and trusted.names is not None
        and all(_covers(trusted.names, h) for h in hosts)
    ):
        cert, detail = (
            trusted,
            f"keep {trusted.thumbprint or 'the certificate'} on {', '.join(hosts)}",
        )
    else:
        issuer = (trusted.issuer if trusted else None) or (
            after.certificate.issuer if after and after.certificate else None
        )
        if not issuer:
            return Missing(
                "certificate",
                endpoint.host,
                f"the issuer of the certificate phones trust on {endpoint.host} is not recorded, "
                "so a certificate they will accept cannot be named",
            )
        cert = CertificateFacts(
            thumbprint=REISSUED_THUMBPRINT,
            not_after=(day + REISSUED_VALID_FOR) if day else None,
            names=hosts,
            issuer=issuer,
            self_signed=trusted.self_signed if trusted else None,
        )
        detail = f"reissue from {issuer} covering {', '.join(hosts)}"

    def bound(e: EndpointFacts | None) -> EndpointFacts | None:
        return replace(e, certificate=cert) if e is not None and e.host in hosts else e

    move = replace(s.move, target_endpoint=bound(s.move.target_endpoint))
    device = replace(s.device, endpoint=bound(endpoint))
    org = s.org
    if org is not None and org.namespaces:
        org = replace(org, namespaces=tuple(bound(e) or e for e in org.namespaces))
    return Applied(move, device, org, subject=", ".join(hosts), detail=detail)


def _level(value: object) -> str:
    return str(value or "").strip().lower()


def _abq_preapprove(s: Situation) -> Applied | Missing | None:
    # X-ABQ: allow the device on the target (ActiveSyncAllowedDeviceIDs or an allow rule).
    # The user's allow list wins over a Block rule and the default level, so pre-approval is
    # offered against those (predict's X-ABQ admin action says so). It is not offered against
    # the user's own block list, which wins over their allow list, nor when what blocks it is
    # not told (a block on the device today, a target block of unknown origin).
    device = s.device
    if _level(device.access_state) in ("block", "blocked"):
        return None
    if (
        device.blocked_on_target is True
        and device.target_access is not AccessLevel.QUARANTINE
        and device.blocked_personally is not False
    ):
        return None
    if device.allowed_on_target is True and _level(device.access_state) not in (
        "quarantine",
        "quarantined",
    ):
        return None
    approved = replace(
        device,
        allowed_on_target=True,
        access_state=AccessLevel.ALLOW
        if _level(device.access_state) in ("quarantine", "quarantined")
        else device.access_state,
    )
    # One prerequisite per target, the device models it concerns as its details.
    label = " ".join(dict.fromkeys(p for p in (device.device_type, device.model) if p))
    return Applied(
        s.move, approved, s.org, subject=_name(s.move.target), detail=label or "unnamed devices"
    )


def _eas_max_devices(s: Situation) -> Applied | Missing | None:
    # X-DEVLIMIT: EasMaxDevices of the target organisation's throttling policy (not Exchange
    # Online, whose limit is fixed).
    if s.move.target.is_exchange_online:
        return None
    count = s.move.target_partnership_count
    if count is None:
        return Missing(
            "partnership-count",
            "this mailbox",
            "how many partnerships the user already has on the target is not recorded",
        )
    org = replace(s.org or OrgFacts(), eas_max_devices=count + 1)
    name = (s.org.name if s.org else None) or "the target organisation"
    return Applied(s.move, s.device, org, subject=name, detail=f"to {count + 1}")


def _stale_cleanup(s: Situation) -> Applied | Missing | None:
    # X-DEVLIMIT: Remove-MobileDevice for the user's stale partnerships makes room.
    count = s.move.target_partnership_count
    if count is None or s.stale_partnerships is None:
        return Missing(
            "partnership-count",
            "this mailbox",
            "how many of the user's partnerships are stale is not counted",
        )
    if s.stale_partnerships <= 0:
        return None
    left = max(count - s.stale_partnerships, 1)  # this phone syncs: it stays
    move = replace(s.move, target_partnership_count=left)
    return Applied(
        move,
        s.device,
        s.org,
        subject="stale partnerships",
        detail=f"{count} → {left} partnerships",
    )


CHANGES: tuple[Change, ...] = (
    Change(
        "target-service-pack",
        ("M-2003-2007RTM", "M-2007-2007RTM"),
        "Install Exchange 2007 SP1 or later on the target",
        "server",
        _target_service_pack,
    ),
    Change(
        "front-end-rollup",
        ("M-2010-2010-XS-OLDDEV",),
        "Install Exchange 2010 SP2 RU6 or later on the front end phones reach",
        "server",
        _front_end_rollup,
    ),
    Change(
        "front-end-onboarding",
        ("M-HYB-ON-NO451",),
        "Update the front end to 2010 SP3 RU9 / 2013 CU8 for the on-boarding redirect",
        "server",
        _front_end_onboarding,
    ),
    Change(
        "iwa-2003",
        ("X-IWA-2003",),
        "Enable IWA on the 2003 Microsoft-Server-ActiveSync directory",
        "server",
        _iwa_2003,
    ),
    Change(
        "namespace-move",
        ("M-2010-2013P", "M-2007-EXO-LEGACY"),
        "Move the namespace phones use to a newer front end",
        "namespaces",
        _namespace_move,
    ),
    Change(
        "external-url",
        ("M-LEGACYNS-2010-451",),
        "Publish the target site's EAS ExternalUrl",
        "imports",
        _external_url,
    ),
    Change(
        "certificate",
        ("X-CERT",),
        "Keep the certificate, or reissue one covering the names phones use",
        "endpoints",
        _certificate,
    ),
    Change(
        "abq-preapprove",
        ("X-ABQ",),
        "Pre-approve the devices on the target (Allow/Block/Quarantine)",
        "imports",
        _abq_preapprove,
        shared=False,
    ),
    Change(
        "eas-max-devices",
        ("X-DEVLIMIT",),
        "Raise EasMaxDevices on the target",
        "organisation",
        _eas_max_devices,
        shared=False,
    ),
    Change(
        "stale-cleanup",
        ("X-DEVLIMIT",),
        "Remove stale partnerships (Remove-MobileDevice)",
        "hygiene",
        _stale_cleanup,
        shared=False,
    ),
)
CHANGE_BY_ID: dict[str, Change] = {c.id: c for c in CHANGES}


def outcome_low_confidence(prediction: Prediction) -> bool:
    """Whether the prediction's outcome rests only on low-confidence reasons ([I] rows, open
    questions): a worse outcome holds if one confident reason gives it; `continues` holds only
    if no reason that decided it is low-confidence. Warnings decide nothing."""
    decided = [r for r in prediction.reasons if not r.is_warning]
    if prediction.outcome is Outcome.CONTINUES:
        return any(r.low_confidence for r in decided)
    giving = [r for r in decided if r.outcome is prediction.outcome]
    return bool(giving) and all(r.low_confidence for r in giving)


def _fired(prediction: Prediction) -> set[str]:
    """The rules that made this prediction worse than `continues` (warnings aside)."""
    return {
        r.rule
        for r in prediction.reasons
        if not r.is_warning and r.outcome is not Outcome.CONTINUES
    }


def _questions(prediction: Prediction) -> tuple[str, ...]:
    """The facts a prediction still rests on: those deciding its range, else those its
    undecided reasons name."""
    if prediction.depends_on:
        return prediction.depends_on
    return tuple(
        dict.fromkeys(
            r.question
            for r in prediction.reasons
            if r.question and r.outcome is Outcome.UNKNOWN and not r.is_warning
        )
    )


# Open questions of a reason that are a fact about this device, not research still to be done
# (eas-moves.md §7): Q-CLIENT-451 "must come from a maintained device table or default to
# unknown", i.e. the client profile's honours-451. The others (Q-2010-2013 ...) are what no
# source says for anyone: they make an answer low-confidence, not undecided.
FACT_QUESTIONS = {"Q-CLIENT-451": "honours-451"}


def _unchecked(prediction: Prediction) -> tuple[str, ...]:
    """The missing facts a decided prediction still rests on: the unchecked facts its warnings
    name (a host name, a certificate, an allowance nobody recorded) and the device facts its
    reasons leave open (whether the client follows HTTP 451). An outcome reached only because
    nobody looked is not an improvement a prerequisite can be credited with."""
    found: list[str] = []
    for reason in prediction.reasons:
        if reason.is_warning and reason.question:
            found.append(reason.question)
        found.extend(FACT_QUESTIONS[q] for q in reason.open_questions if q in FACT_QUESTIONS)
    return tuple(dict.fromkeys(found))


def _unchecked_text(prediction: Prediction) -> str:
    """The first unchecked fact, in the planner's words."""
    for reason in prediction.reasons:
        if (reason.is_warning and reason.question) or any(
            q in FACT_QUESTIONS for q in reason.open_questions
        ):
            return f"{reason.rule}: {reason.text}"
    return ""


def _undecided(prediction: Prediction) -> str:
    """What still leaves the answer open, in the planner's words (its first undecided reason)."""
    for reason in prediction.reasons:
        if reason.outcome is Outcome.UNKNOWN and not reason.is_warning:
            return f"{reason.rule}: {reason.text}"
    return ""


def effects(
    situation: Situation,
    changes: tuple[Change, ...] = CHANGES,
    predict: Callable[[MoveFacts, DeviceFacts, OrgFacts | None], Prediction] = predict_range,
) -> list[Effect]:
    """What each change whose rule applies here would do to this situation's devices.

    Only changes that could make the outcome better are returned: credited ones (a decided,
    better outcome) and uncredited ones (a better outcome is possible but rests on a missing
    fact, named in `missing`). `predict` is predict_range; a caller comparing many keys may
    pass a memoised one.
    """
    base = situation.base
    fired = _fired(base)
    found: list[Effect] = []
    for change in changes:
        if not fired.intersection(change.rules):
            continue
        applied = change.apply(situation)
        if applied is None:
            continue
        if isinstance(applied, Missing):
            found.append(
                Effect(
                    change=change.id,
                    subject=applied.subject,
                    detail="",
                    before=base.outcome,
                    after=Outcome.UNKNOWN,
                    possible=(),
                    credited=False,
                    missing=(applied.question,),
                    missing_text=applied.text,
                )
            )
            continue
        new = predict(applied.move, applied.device, applied.org)
        possible = new.possible or (new.outcome,)
        unchecked = _unchecked(new)
        decided = len(possible) == 1 and new.outcome is not Outcome.UNKNOWN and not unchecked
        better = severity(new.outcome) < severity(base.outcome)
        if decided and better:
            found.append(
                Effect(
                    change=change.id,
                    subject=applied.subject,
                    detail=applied.detail,
                    before=base.outcome,
                    after=new.outcome,
                    possible=possible,
                    credited=True,
                    low_confidence=outcome_low_confidence(new),
                )
            )
        elif not decided and any(severity(o) < severity(base.outcome) for o in possible):
            found.append(
                Effect(
                    change=change.id,
                    subject=applied.subject,
                    detail=applied.detail,
                    before=base.outcome,
                    after=new.outcome,
                    possible=possible,
                    credited=False,
                    low_confidence=outcome_low_confidence(new),
                    missing=tuple(dict.fromkeys((*_questions(new), *unchecked))),
                    missing_text=_undecided(new) or _unchecked_text(new),
                )
            )
    return found
