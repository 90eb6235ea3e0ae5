"""Behaviour of predict() beyond single rows: missing facts, redirects, builds, move kinds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from migrations_plan.planner.facts import EXCHANGE_ONLINE, AccessLevel, MoveKind, ServerFacts
from migrations_plan.planner.outcomes import Outcome
from migrations_plan.planner.predict import Prediction, Reason, derive_move_kind, predict
from migrations_plan.planner.ranges import predict_range

from .builders import (
    CERT,
    E2003,
    E2007SP1,
    E2007SP3,
    E2010SP2,
    E2010SP3,
    E2016,
    E2019,
    ESE,
    EXO,
    dev,
    ep,
    mv,
    org,
    srv,
)

cas2007 = srv(E2007SP1, name="CAS2007")
cas2010 = srv(E2010SP3, name="CAS2010")
cas2016 = srv(E2016, name="CAS2016")


def reason(prediction: Prediction, rule: str, *, warning: bool = False) -> Reason:
    matches = [r for r in prediction.reasons if r.rule == rule and r.is_warning == warning]
    assert matches, (rule, warning, prediction.as_dict())
    return matches[0]


def xs_2010(**target: object) -> tuple[ServerFacts, ServerFacts]:
    return srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=True, **target)


# --- missing facts --------------------------------------------------------------------------


def test_unrecorded_iwa_keeps_the_version_outcome_and_warns_how_to_check_it() -> None:
    prediction = predict(mv(srv(E2003, iwa_on_eas_vdir=None), srv(E2007SP1)), dev(cas2007))
    assert prediction.outcome is Outcome.CONTINUES
    warning = reason(prediction, "X-IWA-2003", warning=True)
    assert "IWA" in warning.text
    assert "record IWA on the server's page" in warning.admin_action


def test_unprobed_certificate_keeps_the_version_outcome_and_warns_how_to_check_it() -> None:
    device = dev(cas2016, endpoint=ep(cas2016, certificate=None))
    prediction = predict(mv(srv(E2016), srv(E2019)), device, org())
    assert prediction.outcome is Outcome.CONTINUES
    warning = reason(prediction, "X-CERT", warning=True)
    assert "never probed" in warning.text
    assert "Get-ExchangeCertificate" in warning.admin_action


def test_a_device_with_no_recorded_endpoint_is_a_question_not_an_assumption() -> None:
    prediction = predict(mv(srv(E2016), srv(E2019)), dev(None, endpoint=None), org())
    assert prediction.outcome is Outcome.UNKNOWN
    assert reason(prediction, "X-CERT", warning=True).question == "namespace"
    assert reason(prediction, "M-2013P-2013P").question == "namespace"


def test_the_range_over_the_known_namespaces_decides_when_they_all_agree() -> None:
    front = srv(E2016, name="CAS2016")
    known = org(servers=(front,), namespaces=(ep(front, host="mail.contoso.com"),))
    prediction = predict_range(mv(srv(E2016), srv(E2019)), dev(None, endpoint=None), known)
    assert prediction.outcome is Outcome.CONTINUES
    assert prediction.possible == (Outcome.CONTINUES,)


def test_namespaces_answered_by_different_generations_give_a_range_and_name_the_fact() -> None:
    new, old = srv(E2016, name="CAS2016"), srv(E2010SP3, name="CAS2010")
    known = org(
        servers=(new, old),
        namespaces=(ep(new, host="mail.contoso.com"), ep(old, host="legacy.contoso.com")),
    )
    prediction = predict_range(mv(srv(E2010SP3), srv(E2016)), dev(None, endpoint=None), known)
    assert prediction.outcome is Outcome.UNKNOWN
    assert set(prediction.possible) == {Outcome.CONTINUES, Outcome.UNKNOWN}
    assert prediction.depends_on == ("namespace",)
    assert ("continues", "the phones use mail.contoso.com") in prediction.branches
    assert "host name the phones use" in prediction.admin_text
    assert "IT is still checking" in prediction.user_text


def test_expired_certificate_at_the_move_date_blocks() -> None:
    expired = replace(CERT, not_after=date(2026, 11, 30))
    device = dev(cas2016, endpoint=ep(cas2016, certificate=expired))
    prediction = predict(mv(srv(E2016), srv(E2019), move_date=date(2026, 12, 1)), device)
    assert prediction.outcome is Outcome.BLOCKED
    assert "expires on 2026-11-30" in reason(prediction, "X-CERT").text


def test_certificate_not_covering_the_host_name_blocks() -> None:
    narrow = replace(CERT, names=("webmail.contoso.com",))
    device = dev(cas2016, endpoint=ep(cas2016, certificate=narrow))
    assert predict(mv(srv(E2016), srv(E2019)), device).outcome is Outcome.BLOCKED


def test_a_wildcard_certificate_covers_one_label() -> None:
    wildcard = replace(CERT, names=("*.contoso.com",))
    device = dev(cas2016, endpoint=ep(cas2016, certificate=wildcard))
    assert predict(mv(srv(E2016), srv(E2019)), device, org()).outcome is Outcome.CONTINUES


def test_missing_source_version_says_which_fact_and_how_to_supply_it() -> None:
    prediction = predict(mv(srv(None, name="MBX7"), srv(E2016)), dev(cas2016))
    assert prediction.outcome is Outcome.UNKNOWN
    text = reason(prediction, "F-VERSION").text
    assert "source server MBX7" in text
    assert "Get-ExchangeServer" in text


def test_unparseable_target_version_is_quoted_back() -> None:
    prediction = predict(mv(srv(E2016), srv("Exchange 2019")), dev(cas2016))
    assert prediction.outcome is Outcome.UNKNOWN
    assert (
        "'Exchange 2019' is not a recognised Exchange build" in reason(prediction, "F-VERSION").text
    )


def test_missing_eas_version_for_a_row_that_needs_it_is_unknown_and_says_how() -> None:
    source, target = xs_2010()
    prediction = predict(mv(source, target), dev(cas2010, eas_version=None))
    assert prediction.outcome is Outcome.UNKNOWN
    text = reason(prediction, "M-2010-2010-XS-451").text
    assert "EAS version is missing" in text
    assert "Get-MobileDevice" in text


def test_predict_reports_instead_of_raising_on_empty_facts() -> None:
    prediction = predict(mv(ServerFacts(), ServerFacts()), dev(None, endpoint=None), None)
    assert prediction.outcome is Outcome.UNKNOWN
    assert [r.rule for r in prediction.reasons if not r.is_warning] == ["F-VERSION", "F-VERSION"]


# --- redirects ------------------------------------------------------------------------------


def test_redirect_with_a_client_that_ignores_451_needs_a_new_partnership() -> None:
    source, target = xs_2010()
    prediction = predict(mv(source, target), dev(cas2010, client_honours_451=False))
    assert prediction.outcome is Outcome.REPARTNER
    assert "ignoring HTTP 451" in reason(prediction, "M-2010-2010-XS-451").text


def test_redirect_with_an_unknown_client_stays_redirect_with_low_confidence() -> None:
    source, target = xs_2010()
    prediction = predict(mv(source, target), dev(cas2010, client_honours_451=None))
    assert prediction.outcome is Outcome.REDIRECT
    assert prediction.low_confidence
    assert "Q-CLIENT-451" in reason(prediction, "M-2010-2010-XS-451").open_questions


def test_eas_12_1_on_a_redirect_path_is_unknown() -> None:
    legacy = predict(
        mv(srv(E2007SP3), srv(E2010SP3, eas_external_url_set=True)),
        dev(cas2007, eas_version="12.1", client_honours_451=None),
    )
    assert legacy.outcome is Outcome.UNKNOWN
    assert "Q-451-121" in reason(legacy, "M-LEGACYNS-2010-451").open_questions

    onboarding = predict(
        mv(srv(E2016), EXO, move_date=date(2025, 6, 1)),
        dev(cas2016, eas_version="12.1", client_honours_451=None),
        org(),
    )
    assert onboarding.outcome is Outcome.UNKNOWN
    assert "Q-451-121" in reason(onboarding, "X-EASVER-451").text


def test_client_ignoring_451_on_hybrid_onboarding_must_re_enter_the_server() -> None:
    prediction = predict(mv(srv(E2016), EXO), dev(cas2016, client_honours_451=False), org())
    assert prediction.outcome is Outcome.REPARTNER
    assert "outlook.office365.com" in reason(prediction, "M-HYB-ON-NO451").user_action


def test_eas_16_1_floor_applies_only_from_march_2026() -> None:
    before = predict(
        mv(srv(E2016), EXO, move_date=date(2026, 2, 28)), dev(cas2016, eas_version="14.1"), org()
    )
    after = predict(
        mv(srv(E2016), EXO, move_date=date(2026, 3, 1)), dev(cas2016, eas_version="14.1"), org()
    )
    assert before.outcome is Outcome.REDIRECT
    assert after.outcome is Outcome.BLOCKED


def test_outlook_mobile_is_exempt_from_the_eas_floor() -> None:
    device = dev(cas2016, eas_version="16.0", client_type="Outlook")
    assert "X-EASVER-EXO" not in {r.rule for r in predict(mv(srv(E2016), EXO), device).reasons}


# --- builds that only ExSetup shows ----------------------------------------------------------


def test_2010_rollup_rules_need_the_exsetup_version() -> None:
    source, target = xs_2010()
    sp2_as_shown = srv(E2010SP2)
    unknown = predict(mv(source, target), dev(sp2_as_shown, eas_version="12.1"))
    assert unknown.outcome is Outcome.UNKNOWN
    assert "ExSetup.exe" in reason(unknown, "M-2010-2010-XS-OLDDEV").text

    with_ru6 = replace(sp2_as_shown, exsetup_version="14.2.342.3")
    assert predict(mv(source, target), dev(with_ru6, eas_version="12.1")).outcome is (
        Outcome.CONTINUES
    )


def test_service_pack_shown_below_the_threshold_is_decidable_without_exsetup() -> None:
    source, target = xs_2010()
    sp1 = srv("Version 14.1 (Build 218.15)")
    assert predict(mv(source, target), dev(sp1, eas_version="2.5")).outcome is Outcome.BLOCKED


def test_hybrid_onboarding_from_2010_sp3_needs_exsetup_for_ru9() -> None:
    shown = srv(E2010SP3)
    unknown = predict(mv(srv(E2010SP3), EXO), dev(shown), org())
    assert unknown.outcome is Outcome.UNKNOWN
    assert "ExSetup.exe" in reason(unknown, "M-HYB-ON-451").text

    ru9 = replace(shown, exsetup_version="14.3.235.1")
    assert predict(mv(srv(E2010SP3), EXO), dev(ru9), org()).outcome is Outcome.REDIRECT


def test_hybrid_onboarding_bounds_the_front_end_by_the_org_servers() -> None:
    modern_org = org(servers=(srv(E2016), srv(E2019)))
    device = dev(None, endpoint=ep(None))
    assert predict(mv(srv(E2010SP3), EXO), device, modern_org).outcome is Outcome.REDIRECT
    mixed_org = org(servers=(srv(E2016), srv(E2010SP3)))
    assert predict(mv(srv(E2010SP3), EXO), device, mixed_org).outcome is Outcome.UNKNOWN


def test_hybrid_onboarding_from_2016_assumes_a_qualifying_front_end_and_says_so() -> None:
    prediction = predict(mv(srv(E2016), EXO), dev(None, endpoint=ep(None)), org())
    assert prediction.outcome is Outcome.REDIRECT
    assert prediction.low_confidence
    assert "2013 CU10" in reason(prediction, "M-HYB-ON-451", warning=True).text


def test_quarantine_default_warns_on_unknown_allowance_and_blocks_when_denied() -> None:
    quarantining = org(default_access_level="quarantine")
    move = mv(srv(E2007SP3), srv(E2010SP3))
    unknown = predict(move, dev(cas2010, allowed_on_target=None), quarantining)
    assert unknown.outcome is Outcome.FULL_RESYNC
    assert reason(unknown, "X-ABQ", warning=True)
    denied = predict(move, dev(cas2010, allowed_on_target=False), quarantining)
    assert denied.outcome is Outcome.BLOCKED


@pytest.mark.parametrize("state", ["Quarantined", "Blocked", "quarantine", AccessLevel.BLOCK])
def test_access_state_accepts_exchange_spellings(state: str) -> None:
    prediction = predict(mv(srv(E2016), srv(E2019)), dev(cas2016, access_state=state), org())
    assert prediction.outcome is Outcome.BLOCKED


def test_device_discovery_state_decides_nothing_by_itself() -> None:
    device = dev(cas2016, access_state="DeviceDiscovery")
    assert predict(mv(srv(E2016), srv(E2019)), device, org()).outcome is Outcome.CONTINUES


def test_datetimes_from_the_database_compare_with_dates() -> None:
    expired = replace(CERT, not_after=datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    device = dev(cas2016, endpoint=ep(cas2016, certificate=expired))
    move = mv(srv(E2016), srv(E2019), move_date=datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert predict(move, device, org()).outcome is Outcome.BLOCKED


def test_se_is_treated_as_2019_and_says_so() -> None:
    prediction = predict(mv(srv(ESE), EXO), dev(srv(ESE)), org())
    assert prediction.outcome is Outcome.REDIRECT
    assert {"M-HYB-ON-451", "M-SE-AS-2019"} <= {r.rule for r in prediction.reasons}


def test_unsupported_2007_to_2019_path_is_unknown() -> None:
    prediction = predict(mv(srv(E2007SP3), srv(E2019)), dev(cas2016))
    assert prediction.outcome is Outcome.UNKNOWN
    assert reason(prediction, "M-UNSUPPORTED-PATH")


def test_same_server_move_with_disagreeing_versions_is_flagged() -> None:
    prediction = predict(mv(srv(E2016, name="MBX1"), srv(E2019, name="MBX1")), dev(cas2016), org())
    assert prediction.outcome is Outcome.UNKNOWN
    assert "versions differ" in reason(prediction, "M-SAMESRV-DB").text


# --- confidence -------------------------------------------------------------------------------


def test_inferred_rows_are_low_confidence_and_say_why() -> None:
    prediction = predict(mv(srv(E2010SP3), srv(E2016)), dev(cas2016), org())
    assert prediction.outcome is Outcome.CONTINUES
    assert prediction.low_confidence
    assert "unconfirmed (Q-2010-2013)" in reason(prediction, "M-2010-2013P").text


def test_inferred_rows_without_an_open_question_still_say_they_are_inferred() -> None:
    prediction = predict(mv(srv(E2010SP3), srv(E2010SP3)), dev(cas2010), org())
    assert prediction.low_confidence
    assert "Inferred by exsync" in reason(prediction, "M-2010-2010-SAME").text


def test_verified_rows_are_not_low_confidence() -> None:
    source, target = xs_2010()
    prediction = predict(mv(source, target), dev(cas2010))
    assert prediction.outcome is Outcome.REDIRECT
    assert not prediction.low_confidence


def test_device_limit_on_2010_uses_the_reported_default_of_10_with_low_confidence() -> None:
    prediction = predict(
        mv(srv(E2007SP3), srv(E2010SP3, eas_external_url_set=True), target_partnership_count=10),
        dev(cas2007, eas_version="2.5"),
        org(eas_max_devices=None),
    )
    assert prediction.outcome is Outcome.BLOCKED
    limit = reason(prediction, "X-DEVLIMIT")
    assert "Q-2010SP1-LIMIT" in limit.open_questions
    assert prediction.low_confidence


# --- move kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "kind"),
    [
        (srv(E2016, name="MBX1"), srv(E2016, name="mbx1"), MoveKind.SAME_SERVER_DB),
        (srv(E2016, site="S1"), srv(E2019, site="s1"), MoveKind.SAME_SITE),
        (srv(E2016, site="S1"), srv(E2019, site="S2"), MoveKind.CROSS_SITE),
        (srv(E2003, site=None), srv(E2007SP1, site="S1"), MoveKind.CROSS_SITE),
        (srv(E2016), EXCHANGE_ONLINE, MoveKind.HYBRID_ONBOARD),
        (EXCHANGE_ONLINE, srv(E2016), MoveKind.HYBRID_OFFBOARD),
        (EXCHANGE_ONLINE, EXCHANGE_ONLINE, MoveKind.CROSS_FOREST),
        (
            srv(E2016, organization="contoso"),
            srv(E2019, organization="fabrikam"),
            MoveKind.CROSS_FOREST,
        ),
        (srv(E2016, organization=None), srv(E2019, organization="fabrikam"), MoveKind.SAME_SITE),
    ],
)
def test_derive_move_kind(source: ServerFacts, target: ServerFacts, kind: MoveKind) -> None:
    assert derive_move_kind(source, target) is kind


def test_derive_move_kind_marks_staged_migrations() -> None:
    assert derive_move_kind(srv(E2016), EXCHANGE_ONLINE, staged=True) is (
        MoveKind.STAGED_OR_CUTOVER_OR_IMAP
    )


def test_a_2010_move_without_sites_is_treated_as_cross_site_with_a_warning() -> None:
    source = srv(E2010SP3, site=None)
    target = srv(E2010SP3, site=None, eas_external_url_set=None)
    prediction = predict(mv(source, target), dev(cas2010))
    assert prediction.outcome is Outcome.UNKNOWN  # cross-site needs the ExternalUrl fact
    assert reason(prediction, "F-SITE", warning=True)


def test_an_explicit_move_kind_wins_over_derivation() -> None:
    source, target = srv(E2010SP3, site=None), srv(E2010SP3, site=None)
    prediction = predict(mv(source, target, kind=MoveKind.SAME_SITE), dev(cas2010))
    assert prediction.outcome is Outcome.CONTINUES
    assert reason(prediction, "M-2010-2010-SAME")


# --- serialisation ----------------------------------------------------------------------------


def test_as_dict_is_json_ready_with_the_documented_keys() -> None:
    prediction = predict(mv(srv(E2003), srv(E2007SP1)), dev(cas2007, endpoint=None))
    data = prediction.as_dict()
    assert data["outcome"] == "continues"
    assert isinstance(data["low_confidence"], bool)
    for item in data["reasons"]:
        assert {"rule", "text", "user_action", "admin_action", "source", "is_warning"} <= set(item)
        assert isinstance(item["outcome"], str) and isinstance(item["confidence"], str)
