"""predict(): the outcome of one mailbox move for one phone, with every reason that applies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache

from exchange.versions import (
    BUILD_2007_SP1,
    BUILD_2010_SP2_RU6,
    BUILD_2010_SP3_RU9,
    BUILD_2013_CU8,
    BUILD_SE_MIN,
    EAS_EXO_MIN,
    EAS_MIN_451,
    EAS_NO_451_MAX,
    EAS_OLDEST_SUPPORTED,
    ExchangeVersion,
    Generation,
    describe,
    generation_of,
    parse_eas_version,
    parse_version,
)

from .facts import (
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    MoveKind,
    OrgFacts,
    ServerFacts,
)
from .outcomes import Confidence, Outcome, worst
from .rules import MATRIX, NO_ACTION, RULES, UNSUPPORTED_PATH, WAIT_FOR_IT, Rule, unsupported_path

__all__ = [
    "DECIDERS",
    "Prediction",
    "Reason",
    "derive_move_kind",
    "offered_eas",
    "predict",
    "server_generation",
    "server_version",
]

G = Generation
EXO_EAS_161_FROM = date(2026, 3, 1)
G2013P = frozenset({G.EX2013, G.EX2016, G.EX2019, G.SE})
ABQ_TARGETS = G2013P | {G.EX2010, G.EXO}  # Allow/Block/Quarantine exists from Exchange 2010
# Moves after which the device meets the target's device access rules afresh.
NEW_ACCESS_CONTEXT = frozenset(
    {
        MoveKind.CROSS_FOREST,
        MoveKind.HYBRID_ONBOARD,
        MoveKind.HYBRID_OFFBOARD,
        MoveKind.STAGED_OR_CUTOVER_OR_IMAP,
    }
)

HOW_EAS = (
    "import Get-ActiveSyncDeviceStatistics (DeviceActiveSyncVersion) on 2007/2010 or "
    "Get-MobileDevice (ClientVersion) on 2013 and later"
)
HOW_FRONT_END = (
    "record which EAS host name the device uses and which server answers it, or import every "
    "server of the organisation (Get-ExchangeServer) so exsync can bound it"
)
FRONT_END_ACTION = HOW_FRONT_END[0].upper() + HOW_FRONT_END[1:] + "."
HOW_EXSETUP = (
    "record the ExSetup.exe file version (Get-Command ExSetup | fl FileVersion); on 2007/2010 "
    "AdminDisplayVersion shows only the service-pack build"
)


@dataclass(frozen=True)
class Reason:
    """One rule that applies to this move and device, in words a user and an admin can act on.

    A warning names a fact nobody checked; it does not change the outcome (its own outcome is
    `continues`) but says how to check it.
    """

    rule: str
    outcome: Outcome
    text: str
    user_action: str
    admin_action: str
    source: str
    confidence: Confidence
    is_warning: bool = False
    open_questions: tuple[str, ...] = ()
    # The missing fact that would decide this reason (questions.QUESTIONS), and what it is
    # about (a host name, a server, a device model), so the batch page can rank questions.
    question: str | None = None
    subject: str = ""

    @property
    def low_confidence(self) -> bool:
        return self.confidence.is_low or bool(self.open_questions)

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "outcome": str(self.outcome),
            "text": self.text,
            "user_action": self.user_action,
            "admin_action": self.admin_action,
            "source": self.source,
            "confidence": str(self.confidence),
            "is_warning": self.is_warning,
            "open_questions": list(self.open_questions),
            "low_confidence": self.low_confidence,
            "question": self.question,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class Prediction:
    """The worst outcome over all reasons, the reasons themselves, and whether to trust it.

    possible: the outcomes the planner reaches under every value of the missing facts it could
        vary (ranges.predict_range); one outcome when nothing was missing or all agree.
    depends_on: the questions (questions.QUESTIONS ids) whose answer changes the outcome.
    branches: (outcome, condition) pairs saying which answer leads where.
    user_text / admin_text: one sentence each, composed from the reasons (wording.py).
    """

    outcome: Outcome
    reasons: tuple[Reason, ...]
    low_confidence: bool
    possible: tuple[Outcome, ...] = ()
    depends_on: tuple[str, ...] = ()
    branches: tuple[tuple[str, str], ...] = ()
    user_text: str = ""
    admin_text: str = ""

    @property
    def warnings(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.is_warning)

    @property
    def questions(self) -> tuple[tuple[str, str], ...]:
        """(question id, subject) of every missing fact named by a reason, in order."""
        return tuple(dict.fromkeys((r.question, r.subject) for r in self.reasons if r.question))

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": str(self.outcome),
            "low_confidence": self.low_confidence,
            "possible": [str(o) for o in (self.possible or (self.outcome,))],
            "depends_on": list(self.depends_on),
            "branches": [list(b) for b in self.branches],
            "user_text": self.user_text,
            "admin_text": self.admin_text,
            "reasons": [reason.as_dict() for reason in self.reasons],
        }


# --- facts, read safely ------------------------------------------------------------------------


# Facts are immutable and a plan (or a comparison of every target) asks about the same few
# servers for every device: parse each server's build once.
@lru_cache(maxsize=4096)
def server_version(server: ServerFacts | None) -> ExchangeVersion | None:
    """The most precise build known: ExSetup's file version, else AdminDisplayVersion."""
    if server is None or server.is_exchange_online:
        return None
    return parse_version(server.exsetup_version) or parse_version(server.admin_display_version)


def server_generation(server: ServerFacts | None) -> Generation | None:
    if server is None:
        return None
    if server.is_exchange_online:
        return G.EXO
    return generation_of(server_version(server))


def _at_least(server: ServerFacts, threshold: ExchangeVersion) -> bool | None:
    """Whether a server's build reaches a threshold; None when its facts cannot tell."""
    if server.is_exchange_online:
        return None
    exsetup = parse_version(server.exsetup_version)
    if exsetup is not None:
        return exsetup >= threshold
    shown = parse_version(server.admin_display_version)
    if shown is None:
        return None
    if shown >= threshold:
        return True
    if generation_of(shown) in (G.EX2007, G.EX2010):
        # AdminDisplayVersion is the service-pack build; an unseen rollup can only raise the
        # build within the same service pack (same major.minor).
        return False if (shown.major, shown.minor) < (threshold.major, threshold.minor) else None
    return False


def _day(value: date | None) -> date | None:
    """A datetime (as a DateTimeField gives it) compared as its day; date and datetime do not
    compare with each other."""
    return value.date() if isinstance(value, datetime) else value


def _all(values: Iterable[bool | None]) -> bool | None:
    """True if all are True, False if all are False, else None (undecided or mixed)."""
    seen = set(values)
    return seen.pop() if len(seen) == 1 else None


def _name(server: ServerFacts | None) -> str:
    return (server.name if server and server.name else None) or "the server"


@lru_cache(maxsize=4096)
def _thumb(text: str | None) -> str | None:
    cleaned = "".join(ch for ch in (text or "") if ch.isalnum()).upper()
    return cleaned or None


def _covers(names: tuple[str, ...], host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        # A wildcard covers exactly one left-most label.
        if name.startswith("*.") and host.split(".", 1)[-1] == name[2:] and "." in host:
            return True
    return False


@dataclass(frozen=True)
class _Ctx:
    move: MoveFacts
    device: DeviceFacts
    org: OrgFacts | None
    kind: MoveKind
    site_assumed: bool
    src_version: ExchangeVersion | None
    tgt_version: ExchangeVersion | None
    src_gen: Generation | None
    tgt_gen: Generation | None
    eas: tuple[int, int] | None

    @property
    def outlook_mobile(self) -> bool:
        # Outlook for iOS/Android is listed by Get-MobileDevice (ClientType Outlook or REST; on
        # premises DeviceType Outlook) but does not speak EAS: EAS-version rules exempt it.
        client = (self.device.client_type or "").strip().lower()
        return client in ("outlook", "rest") or (
            (self.device.device_type or "").strip().lower() == "outlook"
        )

    @property
    def device_label(self) -> str:
        """The device model as a question's subject: what a client profile would match."""
        d = self.device
        parts = [p for p in (d.device_type, d.model) if p]
        label = " ".join(dict.fromkeys(parts)) or "this device model"
        return f"{label} ({d.os})" if d.os else label

    @property
    def endpoint_label(self) -> str:
        endpoint = self.device.endpoint
        if endpoint is not None and endpoint.host:
            return endpoint.host
        return f"phones of mailboxes on {_name(self.move.source)}"

    @property
    def eas_text(self) -> str:
        return f"{self.eas[0]}.{self.eas[1]}" if self.eas else "unknown"

    def eas_missing(self) -> str:
        raw = self.device.eas_version
        what = f"'{raw}' is not an EAS version" if raw else "the device's EAS version is missing"
        return f"{what}; {HOW_EAS}"

    def front_ends(self) -> tuple[ServerFacts, ...] | None:
        """Servers that may be answering the device: its recorded front end, else every
        on-premises server of the org (the front end must be one of them), else None."""
        endpoint = self.device.endpoint
        if endpoint is not None and endpoint.server is not None:
            return (endpoint.server,)
        if self.org is not None and self.org.servers:
            return tuple(s for s in self.org.servers if not s.is_exchange_online) or None
        return None


def _reason(
    rule_id: str,
    extra: str = "",
    *,
    outcome: Outcome | None = None,
    confidence: Confidence | None = None,
    warning: bool = False,
    questions: tuple[str, ...] = (),
    user_action: str | None = None,
    admin_action: str | None = None,
    question: str | None = None,
    subject: str = "",
) -> Reason:
    rule: Rule = RULES[rule_id]
    if warning:
        # A warning names only the unchecked fact: the row's explanation, actions and open
        # questions describe a problem nobody has seen (and are on the row's own reason).
        return Reason(
            rule=rule.id,
            outcome=Outcome.CONTINUES,
            text=extra or rule.explanation,
            user_action=user_action or NO_ACTION,
            admin_action=admin_action or rule.admin_action,
            source=rule.source_ref,
            confidence=confidence or rule.confidence,
            is_warning=True,
            open_questions=questions,
            question=question,
            subject=subject,
        )
    return Reason(
        rule=rule.id,
        outcome=outcome or rule.outcome,
        text=f"{rule.explanation} {extra}".strip(),
        user_action=user_action or rule.user_action,
        admin_action=admin_action or rule.admin_action,
        source=rule.source_ref,
        confidence=confidence or rule.confidence,
        open_questions=tuple(dict.fromkeys(rule.open_questions + questions)),
        question=question,
        subject=subject,
    )


def _unknown(
    rule_id: str,
    missing: str,
    *,
    questions: tuple[str, ...] = (),
    question: str | None = None,
    subject: str = "",
) -> Reason:
    """The row's verdict turned `unknown`, naming the missing fact and how to supply it."""
    rule = RULES[rule_id]
    text = f"Cannot decide: {missing}."
    if rule.id.startswith("F-"):
        return replace(
            _reason(rule_id, questions=questions, question=question, subject=subject),
            text=f"{rule.explanation} {text}",
        )
    # The row's explanation and user action would state its outcome as fact; its conditions
    # do not.
    admin = "Record the missing fact named above."
    if rule.admin_action != NO_ACTION:
        admin = f"{admin} {rule.admin_action}"
    return replace(
        _reason(
            rule_id,
            outcome=Outcome.UNKNOWN,
            questions=questions,
            question=question,
            subject=subject,
        ),
        text=f"{text} {rule.id} ({rule.outcome}) applies when: {rule.when}.",
        user_action=WAIT_FOR_IT,
        admin_action=admin,
    )


def _say_uncertainty(reason: Reason) -> Reason:
    """Low-confidence reasons say so in their text, not only in a flag."""
    notes = []
    if reason.confidence.is_low and "inferred" not in reason.text.lower():
        notes.append("Inferred by exsync; not found stated in any source.")
    unsaid = [q for q in reason.open_questions if q not in reason.text]
    if unsaid:
        notes.append(f"Open question: {', '.join(unsaid)} (eas-moves.md §7).")
    return replace(reason, text=" ".join([reason.text, *notes])) if notes else reason


def _honour_451(ctx: _Ctx, reason: Reason) -> Reason:
    """Redirect rows only help a client that follows HTTP 451 (eas-moves.md §2 notes)."""
    honours = ctx.device.client_honours_451
    if honours is False:
        return replace(
            reason,
            outcome=Outcome.REPARTNER,
            text=f"{reason.text} This client is recorded as ignoring HTTP 451, so it must be "
            "re-configured by hand.",
            user_action="Re-enter the server name, or delete and re-add the account.",
        )
    if honours is None:
        return replace(
            reason,
            text=f"{reason.text} Whether this client honours HTTP 451 is not recorded; if it "
            "does not, the user must re-enter the server or re-create the account.",
            open_questions=(*reason.open_questions, "Q-CLIENT-451"),
        )
    return reason


# --- deciders: pick among matrix rows sharing a (source, target, kind) --------------------------


def _decide_to_2007(ctx: _Ctx) -> list[Reason]:
    sp1 = ctx.tgt_version is not None and ctx.tgt_version >= BUILD_2007_SP1
    target = describe(ctx.tgt_version)
    if ctx.src_gen is G.EX2003:
        return [_reason("M-2003-2007SP1" if sp1 else "M-2003-2007RTM", f"Target: {target}.")]
    return [_reason("M-2007-2007SP1" if sp1 else "M-2007-2007RTM", f"Target: {target}.")]


def _legacy_namespace(ctx: _Ctx) -> bool | None:
    endpoint = ctx.device.endpoint
    if endpoint is None:
        return None
    if endpoint.legacy_namespace is not None:
        return endpoint.legacy_namespace
    generation = server_generation(endpoint.server)
    if generation in (G.EX2003, G.EX2007):
        return True
    return False if generation is not None else None


def _decide_to_2010(ctx: _Ctx) -> list[Reason]:
    base = "M-2003-2010" if ctx.src_gen is G.EX2003 else "M-2007-2010"
    legacy = _legacy_namespace(ctx)
    if legacy is None:
        return [
            _unknown(
                base,
                "which namespace the device uses is not recorded; on the 2010 namespace it "
                "resyncs, on the legacy (2007 CAS) namespace it is redirected or must be "
                f"re-configured (M-LEGACYNS-2010-451/403); {HOW_FRONT_END}",
                question="namespace",
                subject=ctx.endpoint_label,
            )
        ]
    if not legacy:
        return [_reason(base)]
    if ctx.eas is None:
        return [
            _unknown(
                "M-LEGACYNS-2010-451",
                ctx.eas_missing(),
                question="device-eas",
                subject=ctx.device_label,
            )
        ]
    if ctx.eas < EAS_NO_451_MAX:
        return [_reason("M-LEGACYNS-2010-403", f"Device EAS {ctx.eas_text}.")]
    if ctx.eas == EAS_NO_451_MAX and ctx.device.client_honours_451 is None:
        return [
            _unknown(
                "M-LEGACYNS-2010-451",
                "the device speaks EAS 12.1; KB 2751417 says 12.1 clients cannot follow HTTP "
                "451 while the 2010 upgrade blog says 12.1+ clients get it (Q-451-121); test "
                "this device model and record the result in a client profile",
                questions=("Q-451-121",),
                question="honours-451",
                subject=ctx.device_label,
            )
        ]
    external = ctx.move.target.eas_external_url_set
    if external is None:
        return [
            _unknown(
                "M-LEGACYNS-2010-451",
                "whether the 2010 EAS ExternalUrl is set is not recorded (Get-ActiveSyncVirtual"
                "Directory | fl Server,ExternalUrl)",
                question="target-external-url",
                subject=_name(ctx.move.target),
            )
        ]
    if not external:
        return [
            _unknown(
                "M-LEGACYNS-2010-451",
                "the 2010 EAS ExternalUrl is not set, and eas-moves.md does not say what the "
                "2007 CAS does then; set the ExternalUrl",
                questions=("Q-451-121",),
            )
        ]
    return [_honour_451(ctx, _reason("M-LEGACYNS-2010-451", f"Device EAS {ctx.eas_text}."))]


def _decide_cross_site_2010(ctx: _Ctx) -> list[Reason]:
    external = ctx.move.target.eas_external_url_set
    if external is None:
        return [
            _unknown(
                "M-2010-2010-XS-451",
                "whether the target site's CAS publishes an EAS ExternalUrl is not recorded "
                "(without one the source CAS proxies; with one the device is redirected, or "
                "blocked if it is old); record it from Get-ActiveSyncVirtualDirectory | fl "
                "Server,ExternalUrl",
                question="target-external-url",
                subject=_name(ctx.move.target),
            )
        ]
    if not external:
        return [_reason("M-2010-2010-XS-PROXY")]
    if ctx.eas is None:
        return [
            _unknown(
                "M-2010-2010-XS-451",
                ctx.eas_missing(),
                question="device-eas",
                subject=ctx.device_label,
            )
        ]
    if ctx.eas > EAS_NO_451_MAX:
        return [_honour_451(ctx, _reason("M-2010-2010-XS-451", f"Device EAS {ctx.eas_text}."))]
    fronts = ctx.front_ends()
    patched = _all(_at_least(s, BUILD_2010_SP2_RU6) for s in fronts) if fronts else None
    if patched is None:
        return [
            _unknown(
                "M-2010-2010-XS-OLDDEV",
                f"the device speaks EAS {ctx.eas_text} and the build of the CAS it reaches is "
                f"not known well enough to compare with 14.2.342.3; {HOW_FRONT_END}, and "
                f"{HOW_EXSETUP}",
                question="front-end-build" if fronts and len(fronts) == 1 else "namespace",
                subject=_name(fronts[0]) if fronts and len(fronts) == 1 else ctx.endpoint_label,
            )
        ]
    rule = "M-2010-2010-XS-OLDDEV-RU6" if patched else "M-2010-2010-XS-OLDDEV"
    return [_reason(rule, f"Device EAS {ctx.eas_text}.")]


def _decide_front_end_2013p(ctx: _Ctx) -> list[Reason]:
    rule = "M-2010-2013P" if ctx.src_gen is G.EX2010 else "M-2013P-2013P"
    fronts = ctx.front_ends()
    modern = _all(server_generation(s) in G2013P for s in fronts) if fronts else None
    if modern is False:
        names = ", ".join(f"{_name(s)} ({describe(server_version(s))})" for s in fronts or ())
        return [
            _unknown(
                rule,
                f"the device's front end is not Exchange 2013 or later ({names}); move the EAS "
                "namespace to a 2013+ server first",
            )
        ]
    if modern is None:
        # The row needs the device's endpoint to be a 2013+ server; nothing says which one
        # answers this phone, so the answer is a range over the organisation's namespaces.
        return [
            _unknown(
                rule,
                "which host name the phone uses, and so which server answers it, is not "
                f"recorded; {HOW_FRONT_END}",
                question="namespace",
                subject=ctx.endpoint_label,
            )
        ]
    # Decided: the phone already reaches a 2013+ front end, so the row's advice is done.
    return [_reason(rule, admin_action=NO_ACTION)]


def _decide_same_server(ctx: _Ctx) -> list[Reason]:
    # Rollups and SUs may show on one side only (ExSetup vs AdminDisplayVersion); a different
    # generation on "one server" is an inventory error.
    if ctx.src_gen is not ctx.tgt_gen:
        return [
            _unknown(
                "M-SAMESRV-DB",
                f"the move is on one server but the recorded versions differ "
                f"({_describe_server(ctx.move.source)} vs "
                f"{_describe_server(ctx.move.target)}); fix the inventory",
                question="server-version",
                subject=_name(ctx.move.source),
            )
        ]
    versions = [v for v in (ctx.src_version, ctx.tgt_version) if v is not None]
    if not versions or min(versions) < BUILD_2007_SP1:
        return []  # 2007 RTM is M-2007-2007RTM's case
    confidence = Confidence.SOURCED if ctx.src_gen is G.EX2007 else None
    return [_reason("M-SAMESRV-DB", confidence=confidence)]


def _onboarding_build(server: ServerFacts) -> bool | None:
    """Whether a server can send the on-boarding 451 (2010 SP3 RU9+, 2013 CU8+, any later)."""
    generation = server_generation(server)
    if generation in (G.EX2016, G.EX2019, G.SE):
        return True
    if generation is G.EX2013:
        return _at_least(server, BUILD_2013_CU8)
    if generation is G.EX2010:
        return _at_least(server, BUILD_2010_SP3_RU9)
    if generation in (G.EX2003, G.EX2007):
        return False
    return None


def _decide_hybrid_onboard(ctx: _Ctx) -> list[Reason]:
    if ctx.src_gen is G.EX2003:
        return [_reason("M-HYB-ON-NO451", "Exchange 2003 cannot send the on-boarding redirect.")]
    row = "M-2007-EXO-VIAHYB" if ctx.src_gen is G.EX2007 else "M-HYB-ON-451"
    fronts = ctx.front_ends()
    capable = _all(_onboarding_build(s) for s in fronts) if fronts else None
    if ctx.src_gen is G.EX2007 and (capable is False or _legacy_namespace(ctx)):
        return [_reason("M-2007-EXO-LEGACY")]
    deduced: list[Reason] = []
    if capable is None and ctx.src_gen in (G.EX2016, G.EX2019, G.SE):
        # Not in eas-moves.md: Exchange 2016+ installs only beside 2013 CU10+ / 2010 SP3 RU11+
        # (Microsoft's coexistence requirements), so any server that can answer qualifies.
        capable = True
        deduced.append(
            _reason(
                row,
                "The build of the server answering this device is not recorded precisely; an "
                f"organisation with Exchange {ctx.src_gen} mailboxes can only have servers from "
                "2010 SP3 RU11 / 2013 CU10 on, so it is assumed to qualify.",
                warning=True,
                confidence=Confidence.INFERRED,
                admin_action=FRONT_END_ACTION,
            )
        )
    if capable is None:
        single = fronts is not None and len(fronts) == 1
        return [
            _unknown(
                row,
                "the build of the on-premises server answering the device is not known well "
                "enough (needs 2010 SP3 RU9 / 2013 CU8 or later); "
                f"{HOW_FRONT_END}; for 2010, {HOW_EXSETUP}",
                question="front-end-build" if single else "namespace",
                subject=_name(fronts[0]) if single and fronts else ctx.endpoint_label,
            )
        ]
    if capable is False:
        names = ", ".join(f"{_name(s)} ({describe(server_version(s))})" for s in fronts or ())
        return [_reason("M-HYB-ON-NO451", f"Server answering the device: {names}.")]
    hybrid = ctx.move.hybrid_configured
    if hybrid is None and ctx.org is not None:
        hybrid = ctx.org.hybrid_configured
    if hybrid is False:
        return [_reason("M-HYB-ON-NO451", "No hybrid organisation relationship is recorded.")]
    if hybrid is None:
        # The redirect exists only once the Hybrid Configuration Wizard has run: without the
        # fact M-HYB-ON-451 cannot be assumed (the answer is a range: redirect or repartner).
        return [
            _unknown(
                row,
                "whether hybrid is configured (an organisation relationship to the Exchange "
                "Online tenant) is not recorded; import Get-OrganizationRelationship or "
                "Get-HybridConfiguration, or record it on Organisation",
                question="hybrid",
                subject="the source organisation",
            )
        ]
    if ctx.device.client_honours_451 is False:
        return [_reason("M-HYB-ON-NO451", "This client is recorded as ignoring HTTP 451.")]
    if ctx.outlook_mobile:
        # Outlook for iOS/Android is not an EAS client: EAS-version rules do not apply to it.
        return [_honour_451(ctx, _reason(row, "Outlook for iOS/Android.")), *deduced]
    if ctx.eas is None:
        return [_unknown(row, ctx.eas_missing(), question="device-eas", subject=ctx.device_label)]
    return [_honour_451(ctx, _reason(row, f"Device EAS {ctx.eas_text}.")), *deduced]


DECIDERS: dict[str, Callable[[_Ctx], list[Reason]]] = {
    "to_2007": _decide_to_2007,
    "to_2010": _decide_to_2010,
    "cross_site_2010": _decide_cross_site_2010,
    "front_end_2013p": _decide_front_end_2013p,
    "same_server": _decide_same_server,
    "hybrid_onboard": _decide_hybrid_onboard,
}


def _matrix(ctx: _Ctx) -> list[Reason]:
    # The matrix names 2019 where SE also applies (M-SE-AS-2019).
    def as_named(g: Generation | None) -> Generation | None:
        return G.EX2019 if g is G.SE else g

    pair = (as_named(ctx.src_gen), as_named(ctx.tgt_gen))
    rows = [
        r for r in MATRIX if r.id != UNSUPPORTED_PATH and pair in r.pairs and ctx.kind in r.kinds
    ]
    reasons: list[Reason] = []
    if ctx.kind in RULES[UNSUPPORTED_PATH].kinds and unsupported_path(ctx.src_gen, ctx.tgt_gen):
        reasons.append(
            _reason(
                UNSUPPORTED_PATH,
                f"Source {_describe_server(ctx.move.source)}, target "
                f"{_describe_server(ctx.move.target)}.",
                question="unsupported-path",
                subject=f"{ctx.src_gen} → {ctx.tgt_gen}",
            )
        )
    deciders_run: set[str] = set()
    for row in rows:
        if row.decider is None:
            reasons.append(_reason(row.id))
        elif row.decider not in deciders_run:
            deciders_run.add(row.decider)
            reasons.extend(DECIDERS[row.decider](ctx))
    if not reasons:
        reasons.append(
            _reason(
                "F-NO-ROW",
                f"Source {_describe_server(ctx.move.source)}, target "
                f"{_describe_server(ctx.move.target)}, move kind {ctx.kind}.",
                question="row",
                subject=f"{_describe_server(ctx.move.source)} → "
                f"{_describe_server(ctx.move.target)}, {ctx.kind}",
            )
        )
    if G.SE in (ctx.src_gen, ctx.tgt_gen):
        reasons.append(_reason("M-SE-AS-2019"))
    return reasons


def _describe_server(server: ServerFacts) -> str:
    if server.is_exchange_online:
        return "Exchange Online"
    return describe(server_version(server))


# --- cross-cutting conditions (eas-moves.md §3): they can only make the outcome worse ----------


def _x_cert(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    """X-CERT on the host name the phone uses after the move (eas-moves.md §3).

    The phone keeps its host name unless the matrix redirects it, in which case it meets the
    target's published namespace. Blocking: issuer changed, a certificate the phone cannot
    trust (self-signed where it trusted a CA), expired at the move date, or names not covering
    the host. A renewal from the same issuer that covers the host is not blocking ([I]: a
    warning for phones that installed a self-signed certificate by hand).
    """
    device_endpoint = ctx.device.endpoint
    check = "Probe the certificate on the device's EAS host name, or import Get-ExchangeCertificate"
    if device_endpoint is None:
        return [
            _reason(
                "X-CERT",
                "Which EAS host name the device uses is not recorded, so the certificate it "
                "will meet after the move was never checked.",
                warning=True,
                admin_action=f"Record the device's EAS host name. {check}.",
                question="namespace",
                subject=ctx.endpoint_label,
            )
        ]
    redirected = any(r.outcome is Outcome.REDIRECT and not r.is_warning for r in matrix)
    after: EndpointFacts = device_endpoint
    if redirected and ctx.move.target_endpoint is not None:
        after = ctx.move.target_endpoint
    if ctx.kind is MoveKind.CROSS_FOREST:
        # The account is re-created against the other forest's host name: its certificate is
        # the one that counts, met fresh (nothing is trusted from before).
        if ctx.move.target_endpoint is None:
            return [
                _reason(
                    "X-CERT",
                    "The host name of the target forest is not recorded, so its certificate "
                    "was never checked.",
                    warning=True,
                    admin_action="Import the target forest's ActiveSync directories and "
                    "certificates (Get-ActiveSyncVirtualDirectory, Get-ExchangeCertificate).",
                    question="certificate",
                    subject=_name(ctx.move.target),
                )
            ]
        # Compared with itself: only expiry, name coverage and trust are judged.
        after = device_endpoint = ctx.move.target_endpoint
    if after.server is not None and after.server.is_exchange_online:
        return []  # Microsoft's public certificate; the device builds a new partnership there
    if device_endpoint.server is not None and device_endpoint.server.is_exchange_online:
        return []  # coming from Exchange Online the phone pinned no on-premises certificate
    host = after.host or "the EAS host name"
    cert: CertificateFacts | None = after.certificate
    if cert is None:
        return [
            _reason(
                "X-CERT",
                f"The certificate on {host} was never probed or imported.",
                warning=True,
                admin_action=f"{check} for the servers behind {host}.",
                question="certificate",
                subject=host,
            )
        ]
    trusted = device_endpoint.certificate
    problems: list[str] = []
    unsure: list[str] = []
    notes: list[str] = []
    names_only = False
    old, new = (_thumb(trusted.thumbprint), _thumb(cert.thumbprint)) if trusted else (None, None)
    changed = trusted is not None and trusted is not cert and old != new
    if changed and trusted is not None:
        same_issuer = (
            _same_dn(trusted.issuer, cert.issuer) if trusted.issuer and cert.issuer else None
        )
        if same_issuer is False:
            problems.append(f"the issuer changes from {trusted.issuer} to {cert.issuer}")
        elif cert.self_signed is True and trusted.self_signed is False:
            problems.append("it is self-signed, where the phone trusted a CA-issued certificate")
        elif same_issuer is None:
            unsure.append(
                f"the certificate changes ({old or 'unknown'} → {new or 'unknown'}) and the "
                "issuer of one of them is not recorded, so a renewal cannot be told from a "
                "change"
            )
        elif trusted.self_signed or cert.self_signed:
            notes.append(
                "a renewal from the same issuer; phones that trusted the old self-signed or "
                "private-CA certificate by installing it must accept the new one"
            )
    elif trusted is None and after is not device_endpoint:
        unsure.append("which certificate the device trusts today is not recorded")
    expiry, when = _day(cert.not_after), _day(ctx.move.move_date)
    if expiry is not None:
        if when is None:
            unsure.append(f"no move date is recorded to compare with its expiry {expiry}")
        elif expiry < when:
            problems.append(f"it expires on {expiry}, before the move on {when}")
    if cert.names is not None and after.host and not _covers(cert.names, after.host):
        names_only = not problems
        problems.append(f"its names ({', '.join(cert.names)}) do not cover {after.host}")
    if problems:
        # The seed covers a changed or unusable certificate ([S]); name coverage is the row's
        # inferred part ([I]).
        confidence = Confidence.INFERRED if names_only else None
        # An expired certificate or one not covering the host is fixed on the server only; a
        # new certificate is one the user may have to accept (the row's own user action).
        server_side = not changed or all(
            p.startswith(("it expires", "its names")) for p in problems
        )
        return [
            _reason(
                "X-CERT",
                f"On {host}: {'; '.join(problems)}.",
                confidence=confidence,
                user_action="Nothing to do on the phone: IT must fix the certificate on the "
                "server first."
                if server_side
                else None,
            )
        ]
    if unsure or notes:
        return [
            _reason(
                "X-CERT",
                f"Not fully checked on {host}: {'; '.join(unsure + notes)}.",
                warning=True,
                confidence=Confidence.INFERRED if notes and not unsure else None,
                admin_action=f"{check}; record the move date."
                if unsure
                else "Tell users of older phones (Windows Mobile) to accept the new certificate.",
                user_action="You may have to accept the new certificate when the phone asks."
                if notes
                else None,
                question="certificate" if unsure else None,
                subject=host,
            )
        ]
    return []


def _same_dn(a: str, b: str) -> bool:
    """Two distinguished names as equal, whatever the spacing and case Exchange printed."""

    def norm(dn: str) -> tuple[str, ...]:
        return tuple(sorted(part.strip().casefold() for part in dn.split(",") if part.strip()))

    return norm(a) == norm(b)


def _x_iwa_2003(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.src_gen is not G.EX2003:
        return []
    endpoint = ctx.device.endpoint
    front = endpoint.server if endpoint and endpoint.server else None
    # Without a recorded front end, a 2007/2010 target brings the newer CAS that will front the
    # mailbox while it is still on 2003.
    front_gen = server_generation(front) if front else ctx.tgt_gen
    if front_gen not in (G.EX2007, G.EX2010):
        return []
    # Confirmed for a 2007 CAS; for a 2010 CAS the same requirement is our inference.
    inferred = front_gen is G.EX2010
    confidence = Confidence.INFERRED if inferred else None
    questions = ("Q-IWA-2010",) if inferred else ()
    source = _name(ctx.move.source)
    iwa = ctx.move.source.iwa_on_eas_vdir
    if iwa is False:
        text = f"IWA is recorded as off on {source}'s Microsoft-Server-ActiveSync directory."
        return [_reason("X-IWA-2003", text, confidence=confidence, questions=questions)]
    if iwa is None:
        return [
            _reason(
                "X-IWA-2003",
                f"Nobody recorded whether IWA is enabled on {source}'s "
                "Microsoft-Server-ActiveSync directory.",
                warning=True,
                confidence=confidence,
                questions=questions,
                admin_action=f"Check IIS on {source} (Microsoft-Server-ActiveSync → "
                "Authentication) and record IWA on the server's page.",
                question="iwa-2003",
                subject=source,
            )
        ]
    return []


def _x_blocklegacy(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.src_gen is not G.EX2003:
        return []
    endpoint = ctx.device.endpoint
    front = endpoint.server if endpoint and endpoint.server else ctx.move.target
    # BlockLegacyMailboxes defaults to false, so only a recorded True is reported.
    if server_generation(front) is G.EX2007 and front.block_legacy_mailboxes is True:
        return [_reason("X-BLOCKLEGACY", f"CAS: {_name(front)}.")]
    return []


# Exchange prints DefaultAccessLevel as Allow/Block/Quarantine and DeviceAccessState as
# Allowed/Blocked/Quarantined/DeviceDiscovery; DeviceDiscovery decides nothing yet.
_LEVELS = {
    "allow": AccessLevel.ALLOW,
    "allowed": AccessLevel.ALLOW,
    "quarantine": AccessLevel.QUARANTINE,
    "quarantined": AccessLevel.QUARANTINE,
    "block": AccessLevel.BLOCK,
    "blocked": AccessLevel.BLOCK,
}


def _level(value: object) -> AccessLevel | None:
    return _LEVELS.get(str(value).strip().lower()) if value is not None else None


def _x_abq(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    device = ctx.device
    state = _level(device.access_state)
    if state is AccessLevel.QUARANTINE:
        return [
            _reason(
                "X-ABQ",
                "The device is quarantined now: it syncs once an administrator approves it.",
                user_action="Wait for approval; you received a quarantine notice by e-mail.",
                admin_action="Approve the device (Set-CASMailbox -ActiveSyncAllowedDeviceIDs, "
                "or an allow rule) before the move.",
            )
        ]
    if state is AccessLevel.BLOCK:
        # A block is not a queue: waiting does not help, and the user must not be told to.
        return [
            _reason(
                "X-ABQ",
                "The device is blocked now (a personal block, a device access rule or the "
                "organisation's default); it will not sync after the move either.",
                user_action="Contact IT: this phone is blocked from company mail; waiting will "
                "not change that.",
                admin_action="Decide whether this device may sync; if so, remove the block "
                "(Set-CASMailbox -ActiveSyncBlockedDeviceIDs, or the matching device access "
                "rule) and allow it.",
            )
        ]
    if device.blocked_on_target is True and device.allowed_on_target is not True:
        if device.target_access is AccessLevel.QUARANTINE:
            return [
                _reason(
                    "X-ABQ",
                    "A device access rule of the target quarantines it: it syncs once an "
                    "administrator approves it.",
                    user_action="Wait for approval; a quarantine notice is sent by e-mail.",
                )
            ]
        return [
            _reason(
                "X-ABQ",
                "A personal block or a device access rule of the target blocks it.",
                user_action="Contact IT: this phone is blocked from company mail on the new "
                "server; waiting will not change that.",
                admin_action="Decide whether this device may sync; if so, allow it (Set-CASMailbox "
                "-ActiveSyncAllowedDeviceIDs) or change the matching device access rule before "
                "the move.",
            )
        ]
    if ctx.tgt_gen not in ABQ_TARGETS:
        return []
    fresh = ctx.src_gen in (G.EX2003, G.EX2007) or ctx.kind in NEW_ACCESS_CONTEXT
    allowed = device.allowed_on_target
    if allowed is None and not fresh and state is AccessLevel.ALLOW:
        allowed = True  # same org, access control already applied: the allowance moves along
    default = _level(ctx.org.default_access_level) if ctx.org else None
    if default in (AccessLevel.QUARANTINE, AccessLevel.BLOCK):
        if allowed is False:
            if default is AccessLevel.BLOCK:
                return [
                    _reason(
                        "X-ABQ",
                        "The target's DefaultAccessLevel is 'block' and nothing allows this "
                        "device there.",
                        user_action="Contact IT: this phone will be blocked from company mail on "
                        "the new server; waiting will not change that.",
                    )
                ]
            return [_reason("X-ABQ", f"The target's DefaultAccessLevel is '{default}'.")]
        if allowed is None:
            return [
                _reason(
                    "X-ABQ",
                    f"The target's DefaultAccessLevel is '{default}' and nobody recorded "
                    "whether this device is already allowed there.",
                    warning=True,
                    admin_action="Record the device's allowance (ActiveSyncAllowedDeviceIDs or "
                    "an allow rule) or pre-approve it.",
                    question="device-allowed",
                    subject=ctx.device_label,
                )
            ]
    elif default is None and fresh:
        return [
            _reason(
                "X-ABQ",
                "The target organisation's DefaultAccessLevel is not recorded.",
                warning=True,
                admin_action="Import Get-ActiveSyncOrganizationSettings | fl DefaultAccessLevel "
                "for the target organisation.",
                question="default-access",
                subject=(ctx.org.name if ctx.org and ctx.org.name else "the target organisation"),
            )
        ]
    return []


def _x_abq_upgrade(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.src_gen in (G.EX2003, G.EX2007) and ctx.tgt_gen in (G2013P | {G.EX2010}):
        return [_reason("X-ABQ-UPGRADE")]
    return []


def offered_eas(server: ServerFacts, version: ExchangeVersion | None) -> tuple[int, int] | None:
    """The highest EAS version a server offers: a device reporting less could speak no more.

    eas-moves.md §6 and MS-ASHTTP Appendix A ([V]): 2003 offers 2.5, 2007 RTM 12.0, 2007 SP1
    12.1, 2010 RTM 14.0, 2010 SP1+ and 2013 14.1, 2016 and later 16.1. The X-EASVER-EXO row's
    own summary says "2013+: 16.1"; Appendix A says 2013 does not offer 16.x, and reading 14.1
    on a 2013 mailbox as the device's limit would block phones that may speak 16.1, so exsync
    follows Appendix A (the safer reading: the capability stays a missing fact).
    """
    generation = generation_of(version) if not server.is_exchange_online else G.EXO
    if generation is None:
        return None
    if generation is G.EX2003:
        return (2, 5)
    if generation is G.EX2007:
        return (12, 1) if version is not None and version >= BUILD_2007_SP1 else (12, 0)
    if generation is G.EX2010:
        return (
            (14, 1)
            if version is not None and (version.major, version.minor) >= (14, 1)
            else (14, 0)
        )
    if generation is G.EX2013:
        return (14, 1)
    return (16, 1)


def _os_capability(device: DeviceFacts) -> tuple[int, int] | None:
    """What the OS says the native mail app speaks, where eas-moves.md states it: iOS Mail
    speaks EAS 16.1 since iOS 10 (X-EASVER-EXO's user action). Nothing else is assumed."""
    text = (device.os or "").strip()
    if text.lower().startswith("ios "):
        major = text[4:].split(".", 1)[0].strip()
        if major.isdigit() and int(major) >= 10:
            return EAS_EXO_MIN
    return None


def _x_easver_exo(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    """Exchange Online refuses EAS below 16.1 from 2026-03-01: judged on what the device CAN
    speak, not on the version it negotiated with the source server (capped by that server)."""
    if ctx.tgt_gen is not G.EXO or ctx.outlook_mobile:
        return []
    when = _day(ctx.move.move_date)
    if when is not None and when < EXO_EAS_161_FROM:
        return []
    date_note = (
        f"the move is on {when}"
        if when
        else "no move date is recorded; the floor has applied since 2026-03-01"
    )
    recorded = parse_eas_version(ctx.device.max_eas_version)
    offered = offered_eas(ctx.move.source, ctx.src_version)
    if recorded is not None:
        capability, how = recorded, "recorded for this model"
    elif ctx.eas is not None and ctx.eas >= EAS_EXO_MIN:
        capability, how = ctx.eas, "it already syncs with it"
    elif ctx.eas is not None and offered is not None and ctx.eas < offered:
        # The source offered more and the device took less: that is all it speaks ([I]).
        capability = ctx.eas
        how = f"the source offers {offered[0]}.{offered[1]} and the device chose {ctx.eas_text}"
    else:
        capability, how = _os_capability(ctx.device), f"its OS ({ctx.device.os})"
    if capability is None:
        seen = (
            f"it reports EAS {ctx.eas_text}, the most {_name(ctx.move.source)} offers, which "
            "does not show whether it can speak 16.1"
            if ctx.eas is not None
            else ctx.eas_missing()
        )
        if ctx.device.os:
            return [
                _reason(
                    "X-EASVER-EXO",
                    f"Not checked: {seen}; its OS ({ctx.device.os}) does not tell either.",
                    warning=True,
                    admin_action="Record the highest EAS version this model speaks in a client "
                    "profile (Organisation → Client profiles).",
                    question="device-capability",
                    subject=ctx.device_label,
                )
            ]
        return [
            _unknown(
                "X-EASVER-EXO",
                f"{seen}, and nothing about its OS is known",
                question="device-capability",
                subject=ctx.device_label,
            )
        ]
    if capability < EAS_EXO_MIN:
        return [
            _reason(
                "X-EASVER-EXO",
                f"The device speaks EAS {capability[0]}.{capability[1]} at most ({how}); "
                f"{date_note}.",
            )
        ]
    return []


def _x_easver_451(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    redirected = any(r.outcome is Outcome.REDIRECT and not r.is_warning for r in matrix)
    if not redirected or ctx.tgt_gen is not G.EXO or ctx.outlook_mobile:
        return []
    if ctx.eas is None or ctx.eas >= EAS_MIN_451:
        return []
    if ctx.eas == EAS_NO_451_MAX:
        honours = ctx.device.client_honours_451
        if honours is True:
            return []  # tested and recorded for this model: the redirect row stands
        if honours is None:
            return [
                _unknown(
                    "X-EASVER-451",
                    "the device speaks EAS 12.1, and sources disagree on whether 12.1 clients "
                    "follow HTTP 451 (Q-451-121); test this device model and record it",
                    questions=("Q-451-121", "Q-HYB-140"),
                    question="honours-451",
                    subject=ctx.device_label,
                )
            ]
    return [_reason("X-EASVER-451", f"Device EAS {ctx.eas_text}.", questions=("Q-HYB-140",))]


def _x_auth_exo(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.tgt_gen is not G.EXO or ctx.outlook_mobile:
        return []  # Outlook for iOS/Android signs in with modern authentication
    modern = ctx.device.supports_modern_auth
    if modern is False:
        return [_reason("X-AUTH-EXO")]
    if modern is None:
        return [
            _reason(
                "X-AUTH-EXO",
                "Nobody recorded whether this mail app supports modern authentication.",
                warning=True,
                admin_action="Record modern-auth support for this device model in a client "
                "profile (Organisation → Client profiles).",
                question="modern-auth",
                subject=ctx.device_label,
            )
        ]
    return []


def _x_url(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    endpoint = ctx.device.endpoint
    if endpoint is None or endpoint.reaches_mailbox_after_move is not False:
        return []
    if any(r.outcome is Outcome.REDIRECT for r in matrix):
        return []
    return [_reason("X-URL", f"Host name: {endpoint.host or 'not recorded'}.")]


def _x_policy(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.move.target_policy_differs is None and ctx.kind in NEW_ACCESS_CONTEXT:
        # Another organisation's policy applies; whether it asks more of the phone is unknown.
        return [
            _reason(
                "X-POLICY",
                "The target organisation's mobile device policy may differ from the one the "
                "phone applied; the two are not both imported.",
                warning=True,
                admin_action="Import Get-MobileDeviceMailboxPolicy (or Get-ActiveSyncMailbox"
                "Policy) from both organisations, or choose the target policy on the batch.",
                question="target-policy",
                subject=_name(ctx.move.target),
            )
        ]
    if ctx.move.target_policy_differs is not True:
        return []
    complies = ctx.device.can_comply_with_target_policy
    if complies is True:
        return [_reason("X-POLICY", "The device can comply.", outcome=Outcome.CONTINUES)]
    if complies is None:
        return [
            _unknown(
                "X-POLICY",
                "whether the device can comply with the new policy is not recorded; record "
                "it for this device model",
                question="policy-compliance",
                subject=ctx.device_label,
            )
        ]
    allow = ctx.org.allow_non_provisionable_devices if ctx.org else None
    if allow is True:
        return [
            _reason(
                "X-POLICY",
                "The device cannot comply, but AllowNonProvisionableDevices is true.",
                outcome=Outcome.CONTINUES,
            )
        ]
    if allow is None:
        return [
            _unknown(
                "X-POLICY",
                "the device cannot comply and AllowNonProvisionableDevices on the target "
                "policy is not recorded (Get-MobileDeviceMailboxPolicy)",
                question="non-provisionable",
                subject="the target policy",
            )
        ]
    return [
        _reason(
            "X-POLICY",
            "The device cannot comply and the target policy refuses it.",
            user_action="This phone cannot meet the new security policy: IT will tell you "
            "whether it can be allowed or which phone to use.",
            admin_action="Set AllowNonProvisionableDevices on the target policy, exempt these "
            "users, or plan new phones.",
        )
    ]


def _x_se_coexist(ctx: _Ctx, matrix: Sequence[Reason]) -> list[Reason]:
    if ctx.tgt_gen not in (G.EX2016, G.EX2019, G.SE) or ctx.org is None or not ctx.org.servers:
        return []
    servers = (*ctx.org.servers, ctx.move.target)
    old = any(server_generation(s) in (G.EX2016, G.EX2019) for s in servers)
    # SE CU build numbers are unverified (Q-SE-CU); any SE build past RTM's 2562 might be CU2+.
    versions = [server_version(s) for s in servers if server_generation(s) is G.SE]
    past_rtm = [v for v in versions if v is not None and v.build > BUILD_SE_MIN.build]
    if old and past_rtm:
        return [
            _unknown(
                "X-SE-COEXIST",
                f"the organisation still has 2016/2019 servers and runs SE build "
                f"{max(past_rtm)}, later than RTM; whether that is CU2 or later is not "
                "verified (Q-SE-CU)",
                question="se-cu",
                subject=str(max(past_rtm)),
            )
        ]
    return []


def _x_devlimit(ctx: _Ctx, reasons: Sequence[Reason]) -> list[Reason]:
    creates = any(
        not r.is_warning
        and (
            r.outcome is Outcome.REPARTNER
            or (r.outcome is Outcome.REDIRECT and ctx.tgt_gen is G.EXO)
        )
        for r in reasons
    )
    if not creates or ctx.tgt_gen not in ABQ_TARGETS:
        # No per-user device limit before Exchange 2010: EasMaxDevices is a throttling
        # setting of 2010 and later (and Exchange Online).
        return []
    questions: tuple[str, ...] = ()
    confidence = Confidence.VERIFIED
    if ctx.tgt_gen is G.EXO:
        limit, confidence, questions = 100, Confidence.VERIFIED_3P, ("Q-EXO-LIMIT",)
    elif ctx.org is not None and ctx.org.eas_max_devices is not None:
        limit = ctx.org.eas_max_devices
    elif ctx.tgt_gen in G2013P:
        limit = 100
    elif ctx.tgt_gen is G.EX2010:
        limit, confidence, questions = 10, Confidence.VERIFIED_3P, ("Q-2010SP1-LIMIT",)
    else:
        return []
    count = ctx.move.target_partnership_count
    if count is None:
        return [
            _reason(
                "X-DEVLIMIT",
                f"The move creates a new partnership; how many the user already has on the "
                f"target is not recorded (limit {limit}).",
                warning=True,
                confidence=confidence,
                questions=questions,
                admin_action="Import Get-MobileDevice -Mailbox <user> for the target, or record "
                "the count.",
                question="partnership-count",
                subject="this mailbox",
            )
        ]
    if count >= limit:
        return [
            _reason(
                "X-DEVLIMIT",
                f"The user already has {count} partnerships; the limit is {limit}.",
                confidence=confidence,
                questions=questions,
            )
        ]
    return []


# Each gets the matrix reasons; X-DEVLIMIT runs last, on everything that came before it.
CROSS_CUTTING_CHECKS: tuple[Callable[[_Ctx, Sequence[Reason]], list[Reason]], ...] = (
    _x_cert,
    _x_iwa_2003,
    _x_blocklegacy,
    _x_abq,
    _x_abq_upgrade,
    _x_easver_exo,
    _x_easver_451,
    _x_auth_exo,
    _x_url,
    _x_policy,
    _x_se_coexist,
)


# --- the public entry points --------------------------------------------------------------------


def _derive(source: ServerFacts, target: ServerFacts, staged: bool) -> tuple[MoveKind, bool]:
    def same(a: str | None, b: str | None) -> bool | None:
        if not a or not b:
            return None
        return a.strip().casefold() == b.strip().casefold()

    if source.is_exchange_online and target.is_exchange_online:
        return MoveKind.CROSS_FOREST, False  # tenant to tenant: a new organisation
    if target.is_exchange_online:
        return (MoveKind.STAGED_OR_CUTOVER_OR_IMAP if staged else MoveKind.HYBRID_ONBOARD), False
    if source.is_exchange_online:
        return MoveKind.HYBRID_OFFBOARD, False
    if same(source.organization, target.organization) is False:
        return MoveKind.CROSS_FOREST, False
    if same(source.name, target.name):
        return MoveKind.SAME_SERVER_DB, False
    site = same(source.site, target.site)
    if site is None:
        return MoveKind.CROSS_SITE, True
    return (MoveKind.SAME_SITE if site else MoveKind.CROSS_SITE), False


def derive_move_kind(source: ServerFacts, target: ServerFacts, *, staged: bool = False) -> MoveKind:
    """The move kind implied by the two servers.

    Exchange Online as target is `hybrid_onboard` (`staged_or_cutover_or_imap` when `staged`);
    as source `hybrid_offboard`; Exchange Online on both sides (tenant to tenant) and servers
    of two different recorded organisations are `cross_forest`. Otherwise: same server name
    `same_server_db`, same AD site `same_site`, different sites `cross_site`. When either site
    is not recorded (2003 servers always show it empty) the move counts as `cross_site`: the
    kind only matters for 2010 → 2010 moves, and cross-site rows ask for the facts that decide
    them, where `same_site` would answer `continues` unchecked.
    """
    return _derive(source, target, staged)[0]


def predict(move: MoveFacts, device: DeviceFacts, org: OrgFacts | None = None) -> Prediction:
    """Predict what `move` does to `device`'s partnership. Never raises on missing facts."""
    if move.kind is not None:
        kind, site_assumed = MoveKind(move.kind), False
    else:
        kind, site_assumed = _derive(move.source, move.target, staged=False)
    src_version, tgt_version = server_version(move.source), server_version(move.target)
    ctx = _Ctx(
        move=move,
        device=device,
        org=org,
        kind=kind,
        site_assumed=site_assumed,
        src_version=src_version,
        tgt_version=tgt_version,
        src_gen=server_generation(move.source),
        tgt_gen=server_generation(move.target),
        eas=parse_eas_version(device.eas_version),
    )

    matrix: list[Reason] = []
    missing = [
        (_name(server), _version_gap(side, server, version))
        for side, server, version in (
            ("source", move.source, src_version),
            ("target", move.target, tgt_version),
        )
        if not server.is_exchange_online and generation_of(version) is None
    ]
    forests = (move.source.organization, move.target.organization)
    if (
        move.kind is None
        and not (move.source.is_exchange_online or move.target.is_exchange_online)
        and sum(1 for f in forests if f) == 1
    ):
        # One server's forest is known and the other's is not: the move may be cross-forest.
        unrecorded = move.target if move.source.organization else move.source
        matrix.append(
            _unknown(
                "M-XORG",
                f"the forest of {_name(unrecorded)} is not recorded, so a move to another forest "
                "cannot be ruled out; import Get-ExchangeServer with Site or DistinguishedName, "
                "or declare the forest on Organisation → Servers",
                question="forest",
                subject=_name(unrecorded),
            )
        )
    if missing:
        matrix.extend(
            _unknown("F-VERSION", gap, question="server-version", subject=name)
            for name, gap in missing
        )
    else:
        matrix.extend(_matrix(ctx))
        if site_assumed and ctx.src_gen is G.EX2010 and ctx.tgt_gen is G.EX2010:
            matrix.append(_reason("F-SITE", warning=True, question="site", subject="both servers"))
    if ctx.eas is not None and ctx.eas < EAS_OLDEST_SUPPORTED and not ctx.outlook_mobile:
        matrix.append(_reason("F-EAS-UNSUPPORTED", f"Device EAS {ctx.eas_text}."))
    reasons = list(matrix)
    for check in CROSS_CUTTING_CHECKS:
        reasons.extend(check(ctx, matrix))
    reasons.extend(_x_devlimit(ctx, reasons))
    reasons = [_say_uncertainty(r) for r in reasons]

    return Prediction(
        outcome=worst(r.outcome for r in reasons),
        reasons=tuple(reasons),
        low_confidence=any(r.low_confidence for r in reasons),
    )


def _version_gap(side: str, server: ServerFacts, version: ExchangeVersion | None) -> str:
    label = f"the {side} server {server.name}" if server.name else f"the {side} server"
    if version is not None:
        return f"{label} reports {version}, which is not a known Exchange generation"
    raw = server.admin_display_version or server.exsetup_version
    if raw:
        return (
            f"{label}'s version '{raw}' is not a recognised Exchange build (expected e.g. "
            "'Version 15.1 (Build 2507.6)' or '15.1.2507.6'); import Get-ExchangeServer | fl "
            "Name,AdminDisplayVersion"
        )
    return f"{label}'s version is missing; import Get-ExchangeServer | fl Name,AdminDisplayVersion"
