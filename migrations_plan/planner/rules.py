"""The move matrix and cross-cutting conditions of eas-moves.md, as data: one row per rule id.

To add a rule: add a row here, teach predict.py when it applies (a decider or a cross-cutting
check), and add a case to tests/planner/test_rules_matrix.py (a test fails until you do).
Rows marked [I] or tied to an open question (Q-...) make a prediction low-confidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product

from exchange.versions import Generation

from .facts import MoveKind
from .outcomes import Confidence, Outcome

__all__ = [
    "CROSS_CUTTING",
    "GUARDS",
    "MATRIX",
    "RULES",
    "Rule",
]

G = Generation
ON_PREM = frozenset({G.EX2003, G.EX2007, G.EX2010, G.EX2013, G.EX2016, G.EX2019})
# SE is not listed: rows name 2019 and predict matches SE as 2019 (M-SE-AS-2019).
G2013P = frozenset({G.EX2013, G.EX2016, G.EX2019})
G2007P = ON_PREM - {G.EX2003}
INTRA_ORG = frozenset({MoveKind.SAME_SERVER_DB, MoveKind.SAME_SITE, MoveKind.CROSS_SITE})
# A move between generations cannot stay on one server.
OTHER_SERVER = frozenset({MoveKind.SAME_SITE, MoveKind.CROSS_SITE})
NO_ACTION = "None."
WAIT_FOR_IT = "Nothing yet; wait for instructions from IT."

SRC_SEED = "seed-notes-2009.txt"
SRC_ONBOARD = 'Exchange Team blog "Exchange ActiveSync on-boarding to Office 365" (2015-03-23)'
SRC_UPGRADE_2010 = 'Exchange Team blog "Upgrading Exchange ActiveSync to Exchange 2010"'
SRC_PROXY_2010 = 'Microsoft "Understanding Proxying and Redirection" (Exchange 2010)'
SRC_KB2751417 = "Microsoft KB 2751417 (mskb.pkisolutions.com mirror)"
SRC_2013_COEX = (
    'Exchange Team "Client Connectivity in an Exchange 2013 Coexistence Environment"; '
    'm365security.eu "Exchange 2013 interoperability with legacy Exchange versions"'
)
SRC_CAS2007 = 'Exchange Team blog "How Exchange 2007 CAS proxying works for ActiveSync"'


def _pairs(
    sources: Iterable[Generation], targets: Iterable[Generation]
) -> frozenset[tuple[Generation, Generation]]:
    return frozenset(product(sources, targets))


@dataclass(frozen=True)
class Rule:
    """One row of eas-moves.md.

    outcome: what the row gives when its conditions hold.
    confidence: the weakest tag of the row; confidence_note keeps the tag as written when the
        file splits it (predict.py may use the stronger tag for the part it covers).
    when: the row's conditions in plain language, as the file states them.
    pairs, kinds: matrix rows only: the (source, target) generations and move kinds it covers.
    decider: name of the predict.py function that picks among rows sharing it (thresholds and
        device facts); None = the row applies whenever pairs and kinds match.
    """

    id: str
    outcome: Outcome
    confidence: Confidence
    source_ref: str
    explanation: str
    user_action: str
    admin_action: str
    when: str = ""
    confidence_note: str = ""
    open_questions: tuple[str, ...] = ()
    pairs: frozenset[tuple[Generation, Generation]] = frozenset()
    kinds: frozenset[MoveKind] = frozenset()
    decider: str | None = None

    @property
    def low_confidence(self) -> bool:
        return self.confidence.is_low or bool(self.open_questions)


# ---------------------------------------------------------------------------------------------
# §2 Move matrix
# ---------------------------------------------------------------------------------------------
MATRIX: tuple[Rule, ...] = (
    Rule(
        id="M-2003-2003",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.SOURCED,
        source_ref=f"{SRC_SEED} §1",
        explanation="Exchange 2003 carries no sync state across a move to another 2003 store "
        "or server, so the phone's partnership is lost.",
        user_action="Delete the Exchange account on the phone and add it again after the move.",
        admin_action="Tell the user before the move.",
        when="always",
        pairs=_pairs({G.EX2003}, {G.EX2003}),
        kinds=INTRA_ORG,
    ),
    Rule(
        id="M-2003-2007RTM",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.SOURCED,
        source_ref=f"{SRC_SEED} §1, §2",
        explanation="Exchange 2007 before SP1 has no Sync State Upgrade, so a mailbox moved "
        "from 2003 to 2007 RTM loses its partnership.",
        user_action="Delete the Exchange account on the phone and add it again after the move.",
        admin_action="Prefer installing Exchange 2007 SP1 or later on the target before moving.",
        when="target build < 8.1.240.6",
        pairs=_pairs({G.EX2003}, {G.EX2007}),
        kinds=OTHER_SERVER,
        decider="to_2007",
    ),
    Rule(
        id="M-2003-2007SP1",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.SOURCED,
        source_ref=f"{SRC_SEED} §2",
        explanation="Move-Mailbox from Exchange 2007 SP1 or later converts the sync state "
        "during the move (Sync State Upgrade), so the phone keeps syncing. This assumes the "
        "move is run with 2007 SP1+ tools.",
        user_action=NO_ACTION,
        admin_action="Run Move-Mailbox from 2007 SP1 or later tools; keep the EAS URL and "
        "certificate; check IWA on the 2003 EAS directory while mailboxes are still on 2003 "
        "(X-IWA-2003).",
        when="target ≥ 8.1.240.6; move run with 2007 SP1+ Move-Mailbox; device still reaches a "
        "CAS that can serve the mailbox; certificate unchanged (X-CERT)",
        pairs=_pairs({G.EX2003}, {G.EX2007}),
        kinds=OTHER_SERVER,
        decider="to_2007",
    ),
    Rule(
        id="M-2007-2007SP1",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.SOURCED,
        source_ref=f'{SRC_SEED} §2 ("sync state is updated automatically during the move")',
        explanation="Moving to Exchange 2007 SP1 or later updates the sync state automatically "
        "during the move.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="target ≥ 8.1.240.6",
        pairs=_pairs({G.EX2007}, {G.EX2007}),
        kinds=INTRA_ORG,
        decider="to_2007",
    ),
    Rule(
        id="M-2007-2007RTM",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.INFERRED,
        source_ref="none: the seed and sources are silent on a 2007 RTM target",
        explanation="No source describes a move to an Exchange 2007 RTM target (Q-2007RTM-TGT).",
        user_action=WAIT_FOR_IT,
        admin_action="Upgrade the target to Exchange 2007 SP1 or later before moving.",
        when="target build < 8.1.240.6",
        open_questions=("Q-2007RTM-TGT",),
        pairs=_pairs({G.EX2007}, {G.EX2007}),
        kinds=INTRA_ORG,
        decider="to_2007",
    ),
    Rule(
        id="M-2003-2010",
        outcome=Outcome.FULL_RESYNC,
        confidence=Confidence.VERIFIED_3P,
        source_ref='peppercrew.nl "Exchange Move Mailbox Experiences Part 1" (observed '
        '2003→2010); Practical365 "Exchange ActiveSync device access state"',
        explanation="A move from 2003 to 2010 keeps or rebuilds the partnership automatically, "
        "but the phone downloads all its data again. This rests on one field report plus the "
        "'Mailbox Upgrade' access state (Q-2003-2010-RESYNC).",
        user_action="Let the phone download everything again; accept a 'server change requires "
        "resync' prompt if one appears.",
        admin_action="None beyond the cross-cutting checks (certificate, device access).",
        when="device endpoint is served by a 2010 CAS (primary namespace moved to 2010)",
        open_questions=("Q-2003-2010-RESYNC",),
        pairs=_pairs({G.EX2003}, {G.EX2010}),
        kinds=OTHER_SERVER,
        decider="to_2010",
    ),
    Rule(
        id="M-2007-2010",
        outcome=Outcome.FULL_RESYNC,
        confidence=Confidence.INFERRED,
        confidence_note="[V-3p] partial / [I]",
        source_ref='Practical365 "Exchange ActiveSync device access state" (Mailbox Upgrade '
        "state); by analogy with M-2003-2010",
        explanation="A move from 2007 to 2010 is expected to behave like 2003 → 2010: the "
        "partnership is rebuilt automatically and all data downloads again "
        "(Q-2003-2010-RESYNC).",
        user_action="Let the phone download everything again; accept a 'server change requires "
        "resync' prompt if one appears.",
        admin_action="None beyond the cross-cutting checks (certificate, device access).",
        when="device endpoint is served by a 2010 CAS (primary namespace moved to 2010)",
        open_questions=("Q-2003-2010-RESYNC",),
        pairs=_pairs({G.EX2007}, {G.EX2010}),
        kinds=OTHER_SERVER,
        decider="to_2010",
    ),
    Rule(
        id="M-LEGACYNS-2010-451",
        outcome=Outcome.REDIRECT,
        confidence=Confidence.VERIFIED,
        source_ref=f"{SRC_UPGRADE_2010} (read via a verbatim mirror)",
        explanation="The phone still uses the legacy namespace (the 2007 CAS). That CAS answers "
        "HTTP 451 pointing at the 2010 ExternalUrl; a client that follows it re-syncs "
        "everything from 2010 (redirect, then full resync).",
        user_action="Accept the change; if the phone ignores the redirect, re-enter the server "
        "name or re-create the account.",
        admin_action="Make sure the 2010 EAS ExternalUrl is set and published.",
        when="device configured for the legacy namespace; device EAS ≥ 12.1 (12.1 itself: "
        "Q-451-121); 2010 CAS ExternalUrl set",
        pairs=_pairs({G.EX2003, G.EX2007}, {G.EX2010}),
        kinds=OTHER_SERVER,
        decider="to_2010",
    ),
    Rule(
        id="M-LEGACYNS-2010-403",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        confidence_note="[V] / [I] for the user-side result",
        source_ref=f'{SRC_UPGRADE_2010} (2007 CAS "must respond with a 403 or 451")',
        explanation="On the legacy namespace, devices below EAS 12.1 get HTTP 403 from the 2007 "
        "CAS instead of a redirect, so they cannot find the moved mailbox.",
        user_action="Change the server name on the phone, or delete and re-create the account.",
        admin_action="No server-side fix; send affected users the new server name.",
        when="device configured for the legacy namespace and EAS < 12.1",
        pairs=_pairs({G.EX2003, G.EX2007}, {G.EX2010}),
        kinds=OTHER_SERVER,
        decider="to_2010",
    ),
    Rule(
        id="M-2010-2010-SAME",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        source_ref="none (inferred)",
        explanation="Within one AD site the sync state travels inside the mailbox (MRS move), "
        "so the phone keeps syncing.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="same AD site (incl. same server, other database)",
        pairs=_pairs({G.EX2010}, {G.EX2010}),
        kinds=frozenset({MoveKind.SAME_SITE, MoveKind.SAME_SERVER_DB}),
    ),
    Rule(
        id="M-2010-2010-XS-PROXY",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.VERIFIED,
        source_ref=SRC_PROXY_2010,
        explanation="The target site's CAS publishes no EAS ExternalUrl, so the source-site CAS "
        "proxies the phone's requests to the moved mailbox.",
        user_action=NO_ACTION,
        admin_action="Keep the proxying CAS in the source site reachable.",
        when="cross AD site; target site has no EAS ExternalUrl",
        pairs=_pairs({G.EX2010}, {G.EX2010}),
        kinds=frozenset({MoveKind.CROSS_SITE}),
        decider="cross_site_2010",
    ),
    Rule(
        id="M-2010-2010-XS-451",
        outcome=Outcome.REDIRECT,
        confidence=Confidence.VERIFIED,
        source_ref=f'{SRC_PROXY_2010}; MS-ASHTTP §3.1.5.2.2 "HTTP Error 451"',
        explanation="The target site's CAS publishes an EAS ExternalUrl, so the source-site CAS "
        "answers HTTP 451 with the new URL; EAS 14.0+ clients that honour it move over.",
        user_action="Nothing if the phone follows the redirect; otherwise re-enter the server "
        "name.",
        admin_action="Publish the target-site URL with a valid certificate.",
        when="cross AD site; target-site ExternalUrl set; device EAS ≥ 14.0 and honours 451",
        pairs=_pairs({G.EX2010}, {G.EX2010}),
        kinds=frozenset({MoveKind.CROSS_SITE}),
        decider="cross_site_2010",
    ),
    Rule(
        id="M-2010-2010-XS-OLDDEV",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED,
        source_ref=SRC_KB2751417,
        explanation="Devices at EAS 12.1 or below cannot follow HTTP 451, and a CAS below "
        "Exchange 2010 SP2 RU6 (14.2.342.3) does not serve them otherwise: sync fails.",
        user_action="Nothing on the phone can fix this; wait for IT.",
        admin_action="Install Exchange 2010 SP2 RU6 or later (any SP3) on the CAS the devices "
        "reach.",
        when="cross AD site; target-site ExternalUrl set; device EAS ≤ 12.1; CAS the device hits "
        "< 14.2.342.3",
        pairs=_pairs({G.EX2010}, {G.EX2010}),
        kinds=frozenset({MoveKind.CROSS_SITE}),
        decider="cross_site_2010",
    ),
    Rule(
        id="M-2010-2010-XS-OLDDEV-RU6",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        confidence_note="[V] fix / [I] mechanism",
        source_ref=f"{SRC_KB2751417}: RU6 resolves it; that it does so by proxying is our reading",
        explanation="The CAS the device reaches is at 2010 SP2 RU6 or later, which KB 2751417 "
        "says resolves the old-device cross-site failure.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="as M-2010-2010-XS-OLDDEV but CAS ≥ 14.2.342.3",
        pairs=_pairs({G.EX2010}, {G.EX2010}),
        kinds=frozenset({MoveKind.CROSS_SITE}),
        decider="cross_site_2010",
    ),
    Rule(
        id="M-2010-2013P",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        confidence_note="[I] (proxy behaviour [V-3p]; partnership survival unconfirmed)",
        source_ref=SRC_2013_COEX,
        explanation="Exchange 2013 and later front ends always proxy EAS for 2010 mailboxes, so "
        "the partnership is expected to survive; whether it avoids a full resync is "
        "unconfirmed (Q-2010-2013).",
        user_action=NO_ACTION,
        admin_action="Move the EAS namespace to 2013 or later before moving mailboxes.",
        when="device endpoint resolves to a 2013+ server; a 2010-only CAS endpoint → unknown",
        open_questions=("Q-2010-2013",),
        pairs=_pairs({G.EX2010}, G2013P),
        kinds=OTHER_SERVER,
        decider="front_end_2013p",
    ),
    Rule(
        id="M-2007-2013",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.INFERRED,
        source_ref="no source found",
        explanation="No source describes 2007 → 2013 moves; by analogy with 2007 → 2010 a full "
        "resync is likely but unconfirmed (Q-2007-2013).",
        user_action=WAIT_FOR_IT,
        admin_action="Move a pilot mailbox with a test phone and record what happens.",
        when="2007 SP3 → 2013",
        open_questions=("Q-2007-2013",),
        pairs=_pairs({G.EX2007}, {G.EX2013}),
        kinds=OTHER_SERVER,
    ),
    Rule(
        id="M-2013P-2013P",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        confidence_note="[V-3p] proxy / [I] survival",
        source_ref=SRC_2013_COEX,
        explanation="A 2013 or later front end always proxies EAS to the mailbox's server and "
        "never sends 451 on-premises, so the phone keeps its partnership.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="same site, cross site or same server other database; device endpoint is any "
        "2013+ server in the org",
        pairs=_pairs(G2013P, G2013P),
        kinds=INTRA_ORG,
        decider="front_end_2013p",
    ),
    Rule(
        id="M-SAMESRV-DB",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        confidence_note="[S] for 2007 SP1, [I] otherwise",
        source_ref="follows M-2007-2007SP1 / M-2010-2010-SAME",
        explanation="A move to another database on the same server keeps the same version on "
        "both sides, so the sync state needs no conversion.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="any ≥ 2007 SP1; same server, other database; same version on both sides",
        # All pairs, so the decider can flag a "same server" whose two versions disagree.
        pairs=_pairs(G2007P, G2007P),
        kinds=frozenset({MoveKind.SAME_SERVER_DB}),
        decider="same_server",
    ),
    Rule(
        id="M-SAMESRV-DB-2003",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        confidence_note="[S] extended by [I]",
        source_ref=f"{SRC_SEED} §1 (2003→2003 needs re-creation), applied to same-server moves",
        explanation="The seed says a 2003 → 2003 move needs the partnership re-created; exsync "
        "applies that to moves between stores of one 2003 server too.",
        user_action="Delete the Exchange account on the phone and add it again after the move.",
        admin_action="Tell the user before the move.",
        when="same 2003 server, other store",
        pairs=_pairs({G.EX2003}, {G.EX2003}),
        kinds=frozenset({MoveKind.SAME_SERVER_DB}),
    ),
    Rule(
        id="M-HYB-ON-451",
        outcome=Outcome.REDIRECT,
        confidence=Confidence.VERIFIED,
        confidence_note="[V] (except the 14.0 floor: [I], Q-HYB-140)",
        source_ref=SRC_ONBOARD,
        explanation="The on-premises server answering the phone is recent enough to send the "
        "on-boarding HTTP 451 to Exchange Online; a client that honours it moves over and "
        "downloads the cloud mailbox afresh.",
        user_action="Sign in again with modern authentication when prompted; expect a fresh "
        "download of the mailbox.",
        admin_action="Run the Hybrid Configuration Wizard; keep the on-premises EAS endpoint "
        "alive during the migration.",
        when="server answering the device ≥ 14.3.235.1 or ≥ 15.0.1076.9 (any 15.1/15.2); hybrid "
        "configured; device EAS ≥ 14.0; client honours 451; plus X-AUTH-EXO, X-EASVER-EXO, "
        "X-DEVLIMIT",
        pairs=_pairs({G.EX2010} | G2013P, {G.EXO}),
        kinds=frozenset({MoveKind.HYBRID_ONBOARD}),
        decider="hybrid_onboard",
    ),
    Rule(
        id="M-HYB-ON-NO451",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.VERIFIED,
        source_ref=f'{SRC_ONBOARD} ("user has to manually re-configure the device with the new '
        'URL, or delete and recreate the email account")',
        explanation="No on-boarding redirect reaches this phone, so it cannot find the mailbox "
        "in Exchange Online by itself.",
        user_action="Change the server to outlook.office365.com, or delete and re-add the account.",
        admin_action="Upgrade the front-end server first (2010 SP3 RU9+, 2013 CU8+, or any "
        "2016/2019/SE) to get the redirect.",
        when="on-prem build below the thresholds, or client ignores 451, or device endpoint is "
        "a server below the thresholds",
        pairs=_pairs(ON_PREM, {G.EXO}),
        kinds=frozenset({MoveKind.HYBRID_ONBOARD}),
        decider="hybrid_onboard",
    ),
    Rule(
        id="M-2007-EXO-LEGACY",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        source_ref="inferred from the on-boarding blog's build list",
        explanation="The phone talks to an Exchange 2007 CAS (legacy namespace), which cannot "
        "issue the on-boarding redirect to Exchange Online.",
        user_action="Change the server to outlook.office365.com, or delete and re-add the account.",
        admin_action="Move the device endpoint to the hybrid server before moving mailboxes.",
        when="device endpoint is a 2007 CAS / legacy namespace",
        pairs=_pairs({G.EX2007}, {G.EXO}),
        kinds=frozenset({MoveKind.HYBRID_ONBOARD}),
        decider="hybrid_onboard",
    ),
    Rule(
        id="M-2007-EXO-VIAHYB",
        outcome=Outcome.REDIRECT,
        confidence=Confidence.INFERRED,
        source_ref="inferred from the on-boarding blog",
        explanation="The phone talks to a 2013 CU8+ (or 2010 SP3 RU9+) server that proxies for "
        "the 2007 mailbox and can send the on-boarding HTTP 451 to Exchange Online.",
        user_action="Sign in again with modern authentication when prompted; expect a fresh "
        "download of the mailbox.",
        admin_action="Run the Hybrid Configuration Wizard; keep the on-premises EAS endpoint "
        "alive during the migration.",
        when="device endpoint is a 2013 CU8+ / 2010 SP3 RU9+ server; all other M-HYB-ON-451 "
        "conditions",
        pairs=_pairs({G.EX2007}, {G.EXO}),
        kinds=frozenset({MoveKind.HYBRID_ONBOARD}),
        decider="hybrid_onboard",
    ),
    Rule(
        id="M-STAGED-EXO",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        source_ref="none (inferred)",
        explanation="A staged, cut-over or IMAP migration creates a new cloud mailbox and no "
        "hybrid redirect exists, so the phone needs a new partnership.",
        user_action="Delete the Exchange account on the phone and add it again after the cut-over.",
        admin_action="Send instructions with the cut-over.",
        when="always",
        pairs=_pairs(ON_PREM, {G.EXO}),
        kinds=frozenset({MoveKind.STAGED_OR_CUTOVER_OR_IMAP}),
    ),
    Rule(
        id="M-HYB-OFF",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        source_ref="on-boarding blog scope; no off-boarding equivalent found",
        explanation="No automatic EAS redirect from Exchange Online back to on-premises is "
        "documented (the 2015 feature is on-boarding only) (Q-HYB-OFF).",
        user_action="Enter the on-premises server name, or delete and re-create the account.",
        admin_action="Publish the on-premises EAS URL and Autodiscover.",
        when="always",
        open_questions=("Q-HYB-OFF",),
        pairs=_pairs({G.EXO}, ON_PREM),
        kinds=frozenset({MoveKind.HYBRID_OFFBOARD}),
    ),
    Rule(
        id="M-XORG",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        source_ref="none (inferred)",
        explanation="A move to another organisation or forest usually brings new credentials "
        "and a new namespace; MRS may copy the sync data, but that is unverified (Q-XORG).",
        user_action="Delete the Exchange account on the phone and add it again with the new "
        "server and credentials.",
        admin_action="Send users the new server name and credentials.",
        when="always",
        open_questions=("Q-XORG",),
        pairs=_pairs(ON_PREM, ON_PREM),
        kinds=frozenset({MoveKind.CROSS_FOREST}),
    ),
    Rule(
        id="M-SE-AS-2019",
        # An alias, not a verdict: it only explains why an SE server matched a 2019 row.
        outcome=Outcome.CONTINUES,
        confidence=Confidence.VERIFIED,
        source_ref='Exchange Team "Exchange Server Roadmap Update" (SE RTM = same code as 2019 '
        "CU15)",
        explanation="Exchange SE is treated as Exchange 2019 wherever a rule names 2019.",
        user_action=NO_ACTION,
        admin_action=NO_ACTION,
        when="source or target is SE",
    ),
    Rule(
        id="M-UNSUPPORTED-PATH",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.INFERRED,
        source_ref="general Exchange coexistence rules (2019 and SE release notes' coexistence "
        "lists)",
        explanation="This is not a supported coexistence/move path: 2013 cannot coexist with "
        "2003, 2016 with 2007, 2019 and SE with 2010, SE with 2013. Check the inventory for a "
        "data error.",
        user_action=WAIT_FOR_IT,
        admin_action="Check both servers' versions; move through a supported intermediate version.",
        when="2003 → 2013+; 2007 → 2016+; 2010 → 2019/SE; 2013 → SE",
        # Matched on the servers' own generations, SE not read as 2019 (2013 → 2019 is a
        # supported path, 2013 → SE is not). The CU-level limits of the row (2019 coexists only
        # with 2013 CU21+ / 2016 CU11+, SE only with 2016 CU23 / 2019 CU14+) are not encoded:
        # eas-moves.md gives no build numbers for those CUs.
        pairs=_pairs({G.EX2003}, {G.EX2013, G.EX2016, G.EX2019, G.SE})
        | _pairs({G.EX2007}, {G.EX2016, G.EX2019, G.SE})
        | _pairs({G.EX2010}, {G.EX2019, G.SE})
        | _pairs({G.EX2013}, {G.SE}),
        kinds=INTRA_ORG,
    ),
)

# ---------------------------------------------------------------------------------------------
# §3 Cross-cutting conditions: evaluated after the matrix; they only make the outcome worse.
# ---------------------------------------------------------------------------------------------
CROSS_CUTTING: tuple[Rule, ...] = (
    Rule(
        id="X-CERT",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.SOURCED,
        confidence_note="[S] + [I] (name coverage, expiry)",
        source_ref=f'{SRC_SEED} §3 ("the certificate should be the same"); name coverage per '
        'Exchange Team "Transitioning Client Access to Exchange Server 2010"',
        explanation="The certificate on the EAS endpoint the phone talks to after the move is "
        "not the one it trusts today.",
        user_action="You may have to accept or install the new certificate (older phones).",
        admin_action="Keep the same certificate, or use one from a public CA the devices trust "
        "covering every EAS/Autodiscover name (legacy.*, mail.*, autodiscover.*).",
        when="different certificate (thumbprint or issuer), expired at the move date, or "
        "subject/SAN not covering the host name",
    ),
    Rule(
        id="X-IWA-2003",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.SOURCED,
        confidence_note="[S] [V] for 2007 CAS; [I] for 2010 CAS",
        source_ref=f"{SRC_SEED} §4; {SRC_CAS2007}",
        explanation="A 2007 or 2010 CAS in front of a mailbox still on 2003 proxies to the "
        "2003 Microsoft-Server-ActiveSync directory, which needs Integrated Windows "
        "Authentication.",
        user_action=NO_ACTION,
        admin_action="Enable IWA on the Microsoft-Server-ActiveSync virtual directory on every "
        "2003 mailbox server.",
        when="2007/2010 CAS fronts a 2003 mailbox and IWA is not enabled on its EAS vdir",
    ),
    Rule(
        id="X-BLOCKLEGACY",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED,
        source_ref=SRC_CAS2007,
        explanation="The 2007 CAS's EAS web.config has BlockLegacyMailboxes = true, so it "
        "refuses phones whose mailbox is still on 2003.",
        user_action=NO_ACTION,
        admin_action="Set BlockLegacyMailboxes to false (the default) on that CAS.",
        when="2007 CAS web.config BlockLegacyMailboxes = true; mailbox on 2003",
    ),
    Rule(
        id="X-ABQ",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED,
        source_ref='Exchange Team blog "Controlling Exchange ActiveSync device access using the '
        'Allow/Block/Quarantine list" (2010-11-15)',
        explanation="Device access control (Allow/Block/Quarantine) keeps this phone out on the "
        "target.",
        user_action="Wait for approval (a quarantine notice is sent).",
        admin_action="Pre-approve the device (ActiveSyncAllowedDeviceIDs or an allow rule) "
        "before the move.",
        when="target DefaultAccessLevel Quarantine/Block, or an access rule / personal block "
        "matches, and the device is not already allowed on the target",
    ),
    Rule(
        id="X-ABQ-UPGRADE",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.VERIFIED_3P,
        confidence_note="[V] enum / [V-3p] behaviour; grace length not verified",
        source_ref="DeviceAccessStateReason enum (Upgrade member, Exchange 2010 SDK); "
        'Practical365 "Exchange ActiveSync device access state"',
        explanation="Moving from 2003/2007 to 2010+, the phone passes through a temporary "
        "'Upgrade' access state before device access rules apply; the length of any grace "
        "period is not verified (Q-ABQ-GRACE), so do not rely on one.",
        user_action=NO_ACTION,
        admin_action="Pre-approve devices rather than relying on an upgrade grace period.",
        when="mailbox moved from 2003/2007 to 2010+",
        open_questions=("Q-ABQ-GRACE",),
    ),
    Rule(
        id="X-DEVLIMIT",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED,
        confidence_note="[V] 100 on-prem / [V-3p] EXO 100 and 2010 SP1 10",
        source_ref="Set-ThrottlingPolicy (EasMaxDevices default 100); Virginia Tech 4help (EXO "
        '100); Tony Redmond "Managing Exchange ActiveSync device partnerships" (2010 SP1: 10)',
        explanation="The move creates a new partnership, and the user already has as many "
        "partnerships on the target as it allows.",
        user_action="Remove old devices in Outlook on the web (Options → Mobile devices).",
        admin_action="Remove stale partnerships (Remove-MobileDevice) or raise EasMaxDevices.",
        when="move creates a new partnership and the target holds ≥ limit partnerships (EXO "
        "100; on-prem EasMaxDevices, default 100 on 2013+, reported 10 on 2010 SP1)",
    ),
    Rule(
        id="X-EASVER-EXO",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED_3P,
        source_ref='MC1197103 "Exchange Online ActiveSync device support update" (via '
        "app.cloudscout.one); BleepingComputer coverage",
        explanation="From 2026-03-01 Exchange Online refuses EAS clients below version 16.1.",
        user_action="Update the phone's OS or mail app to one speaking EAS 16.1 (iOS Mail since "
        "iOS 10), or use Outlook mobile.",
        admin_action="Inventory with Get-MobileDevice where ClientType is EAS and "
        "[version]ClientVersion < 16.1.",
        when="target Exchange Online; move on or after 2026-03-01; device EAS < 16.1",
    ),
    Rule(
        id="X-EASVER-451",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        confidence_note="[V] (a) / [I] (b)",
        source_ref=f"{SRC_KB2751417}; {SRC_ONBOARD}",
        explanation="The matrix gives a redirect, but the device's EAS version is below 14.0, "
        "the lowest version treated as following HTTP 451. On-premises 2010 cross-site cases "
        "are the rows M-2010-2010-XS-OLDDEV(-RU6); this row covers the Exchange Online "
        "redirect.",
        user_action="Re-enter the server name or re-create the account.",
        admin_action="Install 2010 SP2 RU6+ for the on-premises cross-site case.",
        when="matrix outcome redirect and device EAS < 14.0",
    ),
    Rule(
        id="X-AUTH-EXO",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.VERIFIED_3P,
        source_ref='Exchange Team "Basic Authentication Deprecation in Exchange Online" series',
        explanation="Exchange Online switched Basic authentication for EAS off from 2022-10-01; "
        "a client without modern authentication (OAuth) cannot sign in.",
        user_action="Use a mail app that supports modern authentication.",
        admin_action="None possible on the tenant side.",
        when="target Exchange Online and client cannot do modern auth",
    ),
    Rule(
        id="X-URL",
        outcome=Outcome.REPARTNER,
        confidence=Confidence.INFERRED,
        confidence_note="[V] + [I]",
        source_ref="on-boarding blog (re-configure URL); 2010 transition guidance (keep primary "
        "namespace, add legacy.*)",
        explanation="The EAS host name the phone uses will not reach the mailbox after the "
        "move, and no redirect applies.",
        user_action="Enter the new server name, or re-create the account.",
        admin_action="Keep the old name pointing at a front end that can proxy, or publish "
        "Autodiscover so new setups find it.",
        when="host name retired or changed; no redirect row applies",
    ),
    Rule(
        id="X-POLICY",
        outcome=Outcome.BLOCKED,
        confidence=Confidence.INFERRED,
        confidence_note="[I] outcome / [V] parameter",
        source_ref="EAS provisioning model (MS-ASPROV); KB 945603 (AllowNonProvisionableDevices)",
        explanation="The target mobile device mailbox policy differs from the one the phone "
        "last applied.",
        user_action="Accept the new policy on the phone (you may have to set a PIN).",
        admin_action="Review AllowNonProvisionableDevices; announce new PIN rules.",
        when="policy differs: unchanged + accept if the device complies; blocked if it cannot "
        "and AllowNonProvisionableDevices is false; unknown if compliance is unknown",
    ),
    Rule(
        id="X-SE-COEXIST",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.VERIFIED_3P,
        confidence_note="[V-3p], not checked against Microsoft",
        source_ref='EighTwOne "Exchange Server SE RTM"; Stellar blog on SE release',
        explanation="Coexistence of Exchange SE CU2 or later with 2016/2019 servers is "
        "reported as blocked; SE CU build numbers are not verified (Q-SE-CU).",
        user_action=WAIT_FOR_IT,
        admin_action="Finish retiring the 2016/2019 servers first.",
        when="org still has 2016/2019 servers and SE CU2 or later is installed",
        open_questions=("Q-SE-CU",),
    ),
)

# ---------------------------------------------------------------------------------------------
# exsync's own guards (not rows of eas-moves.md). They make the planner's limits explicit
# instead of letting it fall through silently.
# ---------------------------------------------------------------------------------------------
GUARDS: tuple[Rule, ...] = (
    Rule(
        id="F-VERSION",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.INFERRED,
        source_ref='eas-moves.md §2 ("Inputs every row assumes ... else unknown")',
        explanation="The matrix needs both servers' Exchange versions.",
        user_action=WAIT_FOR_IT,
        admin_action="Import Get-ExchangeServer | fl Name,AdminDisplayVersion for both servers.",
        when="source or target version missing, unparseable or of no known generation",
    ),
    Rule(
        id="F-NO-ROW",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.INFERRED,
        source_ref="eas-moves.md §2 has no row for this combination",
        explanation="No row of the move matrix covers this combination of versions and move kind.",
        user_action=WAIT_FOR_IT,
        admin_action="Check the move kind and versions; if they are right, the matrix needs a "
        "new row.",
        when="no matrix row matches (source, target, move kind)",
    ),
    Rule(
        id="F-EAS-UNSUPPORTED",
        outcome=Outcome.UNKNOWN,
        confidence=Confidence.VERIFIED_3P,
        source_ref='eas-moves.md §6 (EAS 1.0: "treat as unsupported → unknown"); TechNet Wiki '
        '"Exchange ActiveSync Overview"',
        explanation="EAS 1.0 (Mobile Information Server 'AirSync') predates every rule here.",
        user_action="Replace or update the phone.",
        admin_action="Check whether this device really still syncs.",
        when="device EAS version below 2.0",
    ),
    Rule(
        id="F-SITE",
        outcome=Outcome.CONTINUES,
        confidence=Confidence.INFERRED,
        source_ref="exsync design choice (predict.derive_move_kind)",
        explanation="The AD site of the source or target server is not recorded, so the move "
        "is treated as cross-site, which needs the cross-site facts.",
        user_action=NO_ACTION,
        admin_action="Record both servers' AD sites (Get-ExchangeServer | fl Name,Site).",
        when="2010 → 2010 move whose kind was derived without both sites",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in (*MATRIX, *CROSS_CUTTING, *GUARDS)}
UNSUPPORTED_PATH = "M-UNSUPPORTED-PATH"


def unsupported_path(source: Generation | None, target: Generation | None) -> bool:
    """Whether moving from one generation to the other is not a supported coexistence path
    (eas-moves.md M-UNSUPPORTED-PATH), judged on the servers' own generations."""
    return (source, target) in RULES[UNSUPPORTED_PATH].pairs


if len(RULES) != len(MATRIX) + len(CROSS_CUTTING) + len(GUARDS):
    raise ValueError("two rules share an id")
