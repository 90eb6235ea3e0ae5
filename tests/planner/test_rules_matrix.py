"""One case per rule id of eas-moves.md §2 and §3 (and exsync's guards): outcome and reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest

from migrations_plan.planner.facts import AccessLevel, DeviceFacts, MoveFacts, OrgFacts
from migrations_plan.planner.outcomes import Outcome
from migrations_plan.planner.predict import DECIDERS, predict
from migrations_plan.planner.rules import CROSS_CUTTING, GUARDS, MATRIX, RULES

from .builders import (
    CERT,
    E2003,
    E2007RTM,
    E2007SP1,
    E2007SP3,
    E2010SP2,
    E2010SP3,
    E2013CU23,
    E2016,
    E2019,
    ESE,
    EXO,
    KIND,
    ORG,
    dev,
    ep,
    mv,
    org,
    srv,
)


@dataclass(frozen=True)
class Case:
    rule: str
    outcome: Outcome
    move: MoveFacts
    device: DeviceFacts
    org: OrgFacts | None = ORG

    def __str__(self) -> str:
        return self.rule


cas2007 = srv(E2007SP1, name="CAS2007")
cas2010 = srv(E2010SP3, name="CAS2010")
cas2016 = srv(E2016, name="CAS2016")
s2003 = srv(E2003, site=None)
hybrid_ok = dict(client_honours_451=True, supports_modern_auth=True, eas_version="16.1")

CASES: list[Case] = [
    # ---- §2 matrix --------------------------------------------------------------------------
    Case("M-2003-2003", Outcome.REPARTNER, mv(s2003, srv(E2003), kind=KIND.SAME_SITE), dev()),
    Case("M-2003-2007RTM", Outcome.REPARTNER, mv(s2003, srv(E2007RTM)), dev(cas2007)),
    Case("M-2003-2007SP1", Outcome.CONTINUES, mv(s2003, srv(E2007SP1)), dev(cas2007)),
    Case(
        "M-2007-2007SP1",
        Outcome.CONTINUES,
        mv(srv(E2007SP1), srv(E2007SP3, site="S2")),
        dev(cas2007),
    ),
    Case("M-2007-2007RTM", Outcome.UNKNOWN, mv(srv(E2007RTM), srv(E2007RTM)), dev(cas2007)),
    Case("M-2003-2010", Outcome.FULL_RESYNC, mv(s2003, srv(E2010SP3)), dev(cas2010)),
    Case("M-2007-2010", Outcome.FULL_RESYNC, mv(srv(E2007SP3), srv(E2010SP3)), dev(cas2010)),
    Case(
        "M-LEGACYNS-2010-451",
        Outcome.REDIRECT,
        mv(srv(E2007SP3), srv(E2010SP3, eas_external_url_set=True)),
        dev(cas2007, eas_version="14.0"),
    ),
    Case(
        "M-LEGACYNS-2010-403",
        Outcome.REPARTNER,
        mv(srv(E2007SP3), srv(E2010SP3, eas_external_url_set=True)),
        dev(cas2007, eas_version="2.5"),
    ),
    Case("M-2010-2010-SAME", Outcome.CONTINUES, mv(srv(E2010SP3), srv(E2010SP3)), dev(cas2010)),
    Case(
        "M-2010-2010-XS-PROXY",
        Outcome.CONTINUES,
        mv(srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=False)),
        dev(cas2010),
    ),
    Case(
        "M-2010-2010-XS-451",
        Outcome.REDIRECT,
        mv(srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=True)),
        dev(cas2010, eas_version="14.1"),
    ),
    Case(
        "M-2010-2010-XS-OLDDEV",
        Outcome.BLOCKED,
        mv(srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=True)),
        dev(srv(E2010SP2, exsetup_version="14.2.328.5"), eas_version="12.1"),
    ),
    Case(
        "M-2010-2010-XS-OLDDEV-RU6",
        Outcome.CONTINUES,
        mv(srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=True)),
        dev(cas2010, eas_version="12.1"),
    ),
    Case("M-2010-2013P", Outcome.CONTINUES, mv(srv(E2010SP3), srv(E2016)), dev(cas2016)),
    Case("M-2007-2013", Outcome.UNKNOWN, mv(srv(E2007SP3), srv(E2013CU23)), dev(cas2007)),
    Case("M-2013P-2013P", Outcome.CONTINUES, mv(srv(E2016), srv(E2019, site="S2")), dev(cas2016)),
    Case(
        "M-SAMESRV-DB",
        Outcome.CONTINUES,
        mv(srv(E2016, name="MBX1"), srv(E2016, name="mbx1")),
        dev(cas2016),
    ),
    Case(
        "M-SAMESRV-DB-2003",
        Outcome.REPARTNER,
        mv(srv(E2003, name="OLD1"), srv(E2003, name="OLD1")),
        dev(srv(E2003)),
    ),
    Case("M-HYB-ON-451", Outcome.REDIRECT, mv(srv(E2016), EXO), dev(cas2016, **hybrid_ok)),
    Case(
        "M-HYB-ON-NO451",
        Outcome.REPARTNER,
        mv(srv(E2010SP3), EXO),
        dev(srv(E2010SP2), **hybrid_ok),
    ),
    Case("M-2007-EXO-LEGACY", Outcome.REPARTNER, mv(srv(E2007SP3), EXO), dev(cas2007, **hybrid_ok)),
    Case(
        "M-2007-EXO-VIAHYB",
        Outcome.REDIRECT,
        mv(srv(E2007SP3), EXO),
        dev(srv(E2013CU23), **hybrid_ok),
    ),
    Case(
        "M-STAGED-EXO",
        Outcome.REPARTNER,
        mv(srv(E2007SP3), EXO, kind=KIND.STAGED_OR_CUTOVER_OR_IMAP),
        dev(cas2007, **hybrid_ok),
    ),
    Case(
        "M-HYB-OFF",
        Outcome.REPARTNER,
        mv(EXO, srv(E2016), target_endpoint=ep(cas2016)),
        dev(EXO, endpoint=ep(EXO, host="outlook.office365.com", certificate=None)),
    ),
    Case(
        "M-XORG",
        Outcome.REPARTNER,
        mv(srv(E2010SP3), srv(E2016, organization="fabrikam")),
        dev(cas2010),
    ),
    Case("M-SE-AS-2019", Outcome.CONTINUES, mv(srv(E2019), srv(ESE)), dev(srv(ESE))),
    Case("M-UNSUPPORTED-PATH", Outcome.UNKNOWN, mv(s2003, srv(E2016)), dev(cas2016)),
    # ---- §3 cross-cutting -------------------------------------------------------------------
    Case(
        # Redirected to the target site's namespace, whose certificate has another issuer.
        "X-CERT",
        Outcome.BLOCKED,
        mv(
            srv(E2010SP3),
            srv(E2010SP3, site="S2", eas_external_url_set=True),
            target_endpoint=ep(
                cas2010,
                host="mail-eu.contoso.com",
                certificate=replace(
                    CERT,
                    thumbprint="CC33DD44",
                    issuer="CN=Other CA",
                    names=("mail-eu.contoso.com",),
                ),
            ),
        ),
        dev(cas2010, eas_version="14.1"),
    ),
    Case(
        "X-IWA-2003",
        Outcome.BLOCKED,
        mv(srv(E2003, iwa_on_eas_vdir=False), srv(E2007SP1)),
        dev(cas2007),
    ),
    Case(
        "X-BLOCKLEGACY",
        Outcome.BLOCKED,
        mv(s2003, srv(E2007SP1)),
        dev(srv(E2007SP1, block_legacy_mailboxes=True)),
    ),
    Case(
        "X-ABQ",
        Outcome.BLOCKED,
        mv(srv(E2016), srv(E2019)),
        dev(cas2016, access_state=AccessLevel.QUARANTINE),
    ),
    Case("X-ABQ-UPGRADE", Outcome.FULL_RESYNC, mv(srv(E2007SP3), srv(E2010SP3)), dev(cas2010)),
    Case(
        "X-DEVLIMIT",
        Outcome.BLOCKED,
        mv(srv(E2010SP3), srv(E2016, organization="fabrikam"), target_partnership_count=100),
        dev(cas2010),
    ),
    Case(
        "X-EASVER-EXO",
        Outcome.BLOCKED,
        mv(srv(E2016), EXO),
        dev(cas2016, **{**hybrid_ok, "eas_version": "14.1"}),
    ),
    Case(
        "X-EASVER-451",
        Outcome.REPARTNER,
        mv(srv(E2016), EXO, move_date=date(2025, 6, 1)),
        dev(cas2016, **{**hybrid_ok, "eas_version": "2.5"}),
    ),
    Case(
        "X-AUTH-EXO",
        Outcome.BLOCKED,
        mv(srv(E2016), EXO),
        dev(cas2016, **{**hybrid_ok, "supports_modern_auth": False}),
    ),
    Case(
        "X-URL",
        Outcome.REPARTNER,
        mv(srv(E2016), srv(E2019)),
        dev(cas2016, endpoint=ep(cas2016, reaches_mailbox_after_move=False)),
    ),
    Case(
        "X-POLICY",
        Outcome.BLOCKED,
        mv(srv(E2016), srv(E2019), target_policy_differs=True),
        dev(cas2016, can_comply_with_target_policy=False),
    ),
    Case(
        "X-SE-COEXIST",
        Outcome.UNKNOWN,
        mv(srv(E2019), srv("15.2.2600.1")),
        dev(srv(ESE)),
        org=org(servers=(srv(E2019), srv("15.2.2600.1"))),
    ),
    # ---- exsync guards ----------------------------------------------------------------------
    Case("F-VERSION", Outcome.UNKNOWN, mv(srv(None), srv(E2016)), dev(cas2016)),
    Case("F-NO-ROW", Outcome.UNKNOWN, mv(srv(E2016), srv(E2010SP3)), dev(cas2016)),
    Case(
        "F-EAS-UNSUPPORTED",
        Outcome.UNKNOWN,
        mv(srv(E2016), srv(E2019)),
        dev(cas2016, eas_version="1.0"),
    ),
    Case(
        "F-SITE",
        Outcome.CONTINUES,
        mv(srv(E2010SP3, site=None), srv(E2010SP3, site=None, eas_external_url_set=False)),
        dev(cas2010),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_gives_its_outcome_and_is_named_in_the_reasons(case: Case) -> None:
    prediction = predict(case.move, case.device, case.org)
    rules = [reason.rule for reason in prediction.reasons]
    assert case.rule in rules, prediction.as_dict()
    assert prediction.outcome is case.outcome, prediction.as_dict()


def test_every_rule_has_exactly_oneCase() -> None:
    case_ids = [case.rule for case in CASES]
    assert len(case_ids) == len(set(case_ids)), "a rule id has two cases"
    assert set(case_ids) == set(RULES), (
        f"rules without a case: {sorted(set(RULES) - set(case_ids))}; "
        f"cases without a rule: {sorted(set(case_ids) - set(RULES))}"
    )


def test_the_table_holds_every_row_id_of_eas_moves() -> None:
    # The ids as printed in eas-moves.md §2 and §3 (2026-11-24).
    matrix = [
        "M-2003-2003",
        "M-2003-2007RTM",
        "M-2003-2007SP1",
        "M-2007-2007SP1",
        "M-2007-2007RTM",
        "M-2003-2010",
        "M-2007-2010",
        "M-LEGACYNS-2010-451",
        "M-LEGACYNS-2010-403",
        "M-2010-2010-SAME",
        "M-2010-2010-XS-PROXY",
        "M-2010-2010-XS-451",
        "M-2010-2010-XS-OLDDEV",
        "M-2010-2010-XS-OLDDEV-RU6",
        "M-2010-2013P",
        "M-2007-2013",
        "M-2013P-2013P",
        "M-SAMESRV-DB",
        "M-SAMESRV-DB-2003",
        "M-HYB-ON-451",
        "M-HYB-ON-NO451",
        "M-2007-EXO-LEGACY",
        "M-2007-EXO-VIAHYB",
        "M-STAGED-EXO",
        "M-HYB-OFF",
        "M-XORG",
        "M-SE-AS-2019",
        "M-UNSUPPORTED-PATH",
    ]
    cross = [
        "X-CERT",
        "X-IWA-2003",
        "X-BLOCKLEGACY",
        "X-ABQ",
        "X-ABQ-UPGRADE",
        "X-DEVLIMIT",
        "X-EASVER-EXO",
        "X-EASVER-451",
        "X-AUTH-EXO",
        "X-URL",
        "X-POLICY",
        "X-SE-COEXIST",
    ]
    assert [rule.id for rule in MATRIX] == matrix
    assert [rule.id for rule in CROSS_CUTTING] == cross
    assert all(rule.id.startswith("F-") for rule in GUARDS)


EAS_MOVES = Path(__file__).resolve().parents[3] / "shared" / "domain" / "eas-moves.md"


@pytest.mark.skipif(not EAS_MOVES.exists(), reason="the shared domain notes are not checked out")
def test_the_table_matches_the_ids_in_the_domain_notes() -> None:
    text = EAS_MOVES.read_text(encoding="utf-8")
    matrix_part, cross_part = text.split("## 2.")[1].split("## 3.")
    cross_part = cross_part.split("## 4.")[0]
    row_id = re.compile(r"^\| ((?:M|X)-[A-Z0-9-]+) \|", re.MULTILINE)
    assert row_id.findall(matrix_part) == [rule.id for rule in MATRIX]
    assert row_id.findall(cross_part) == [rule.id for rule in CROSS_CUTTING]


def test_every_rule_row_is_complete() -> None:
    for rule in RULES.values():
        assert rule.explanation and rule.user_action and rule.admin_action, rule.id
        assert rule.source_ref and rule.when, rule.id
        if rule.open_questions or rule.confidence.is_low:
            assert rule.low_confidence, rule.id


def test_every_decider_named_in_the_table_exists_and_is_used() -> None:
    named = {rule.decider for rule in MATRIX if rule.decider}
    assert named == set(DECIDERS)


def test_matrix_rows_with_a_decider_or_pairs_have_kinds() -> None:
    for rule in MATRIX:
        if rule.id == "M-SE-AS-2019":
            assert not rule.pairs  # an alias, applied by predict()
            continue
        assert rule.pairs and rule.kinds, rule.id
