"""The what-if prerequisites on plain facts: each is the planner again with one fact changed,
credited only when the changed answer is decided (no Django here)."""

from __future__ import annotations

from migrations_plan.planner.facts import AccessLevel, MoveKind
from migrations_plan.planner.outcomes import Outcome
from migrations_plan.planner.questions import QUESTIONS
from migrations_plan.planner.ranges import predict_range
from migrations_plan.planner.rules import NO_ACTION, RULES
from migrations_plan.planner.whatif import CHANGE_BY_ID, CHANGES, Situation, effects
from tests.planner.builders import (
    E2003,
    E2007RTM,
    E2007SP3,
    E2010SP2,
    E2016,
    EXO,
    KIND,
    dev,
    ep,
    mv,
    org,
    srv,
)


def _effects(move, device, organisation=None, *, stale=None):
    base = predict_range(move, device, organisation)
    return base, effects(Situation(move, device, organisation, base, stale_partnerships=stale))


def _one(found, change):
    (effect,) = [e for e in found if e.change == change]
    return effect


def test_every_prerequisite_is_the_admin_action_of_a_rule_of_eas_moves() -> None:
    for change in CHANGES:
        assert change.rules and all(rule in RULES for rule in change.rules), change.id
        assert change.admin_action == RULES[change.rules[0]].admin_action


def test_raising_eas_max_devices_or_removing_stale_partnerships_makes_room() -> None:
    # A 2007 -> 2010 move on the legacy name with an EAS 12.0 phone re-creates the partnership
    # (M-LEGACYNS-2010-403); the user already holds the target's limit.
    ex07, ex2010 = srv("Version 8.3 (Build 83.6)"), srv("Version 14.3 (Build 123.4)")
    phone = dev(
        endpoint=ep(ex07, legacy_namespace=True), eas_version="12.0", allowed_on_target=True
    )
    move = mv(ex07, ex2010, target_partnership_count=5)
    organisation = org(eas_max_devices=5)

    base, found = _effects(move, phone, organisation, stale=3)

    assert base.outcome is Outcome.BLOCKED
    raise_limit = _one(found, "eas-max-devices")
    assert raise_limit.credited and raise_limit.after is Outcome.REPARTNER
    assert raise_limit.detail == "to 6"
    cleanup = _one(found, "stale-cleanup")
    assert cleanup.credited and cleanup.after is Outcome.REPARTNER
    assert cleanup.detail == "5 → 2 partnerships"


def test_stale_partnerships_not_counted_are_a_missing_fact_not_a_credit() -> None:
    ex07, ex2010 = srv("Version 8.3 (Build 83.6)"), srv("Version 14.3 (Build 123.4)")
    phone = dev(endpoint=ep(ex07, legacy_namespace=True), eas_version="12.0")
    move = mv(ex07, ex2010, target_partnership_count=5)

    _, found = _effects(move, phone, org(eas_max_devices=5), stale=None)

    cleanup = _one(found, "stale-cleanup")
    assert not cleanup.credited and cleanup.missing == ("partnership-count",)


def test_pre_approving_a_quarantined_device_but_never_a_blocked_one() -> None:
    ex2010, ex2016 = srv(E2010SP2), srv(E2016)
    quarantined = dev(ex2016, access_state=AccessLevel.QUARANTINE)
    blocked = dev(ex2016, access_state=AccessLevel.BLOCK)

    base, found = _effects(mv(ex2010, ex2016), quarantined, org())
    _, none = _effects(mv(ex2010, ex2016), blocked, org())

    assert base.outcome is Outcome.BLOCKED
    approve = _one(found, "abq-preapprove")
    assert approve.credited and approve.after is Outcome.CONTINUES
    assert not [e for e in none if e.change == "abq-preapprove"], "a block is a decision"


def test_pre_approval_is_offered_against_a_block_rule_or_default_but_never_a_personal_block():
    # The user's allow list (ActiveSyncAllowedDeviceIDs) wins over a Block rule and the
    # default level; their own block list wins over it.
    ex2010, ex2016 = srv(E2010SP2), srv(E2016)
    move = mv(ex2010, ex2016)
    by_rule = dev(
        ex2016,
        allowed_on_target=None,
        blocked_on_target=True,
        target_access=AccessLevel.BLOCK,
        blocked_personally=False,
    )
    personal = dev(
        ex2016,
        allowed_on_target=None,
        blocked_on_target=True,
        target_access=AccessLevel.BLOCK,
        blocked_personally=True,
    )
    by_default = dev(ex2016, allowed_on_target=False)

    rule_base, rule_found = _effects(move, by_rule, org())
    _, personal_found = _effects(move, personal, org())
    default_base, default_found = _effects(
        move, by_default, org(default_access_level=AccessLevel.BLOCK)
    )

    assert rule_base.outcome is default_base.outcome is Outcome.BLOCKED
    for found in (rule_found, default_found):
        approve = _one(found, "abq-preapprove")
        assert approve.credited and approve.after is Outcome.CONTINUES
    assert not [e for e in personal_found if e.change == "abq-preapprove"]


def test_the_2010_rollup_on_the_front_end_of_an_old_phone_moving_across_sites() -> None:
    # M-2010-2010-XS-OLDDEV: EAS 12.1, target site publishes an ExternalUrl, the CAS the phone
    # reaches runs SP2 without a recorded rollup.
    hq = srv(E2010SP2, site="HQ")
    branch = srv(E2010SP2, site="Branch", eas_external_url_set=True)
    phone = dev(hq, eas_version="12.1")
    move = mv(hq, branch, kind=MoveKind.CROSS_SITE)

    base, found = _effects(move, phone, org())

    assert base.outcome is not Outcome.CONTINUES
    rollup = _one(found, "front-end-rollup")
    assert rollup.credited and rollup.after is Outcome.CONTINUES
    assert (
        rollup.subject == hq.name and rollup.detail == "Exchange 2010 SP2 → Exchange 2010 SP2 RU6"
    )


def test_a_change_whose_answer_rests_on_an_unrecorded_host_name_is_not_credited() -> None:
    # 2003 -> 2007 RTM with nobody knowing which host the phones use: SP1 would decide the
    # matrix row, but `continues` then rests on a certificate nobody checked (X-CERT warns),
    # so SP1 is not credited and says what is missing; a certificate cannot be named without
    # the host. (This test used to assert the SP1 credit under a name saying the opposite.)
    ex03, rtm = srv(E2003, site=None), srv(E2007RTM)
    phone = dev(None, endpoint=None, eas_version=None)

    _, found = _effects(mv(ex03, rtm), phone, org())

    sp1 = _one(found, "target-service-pack")
    assert not sp1.credited and sp1.possible == (Outcome.CONTINUES,)
    assert "namespace" in sp1.missing and "X-CERT" in sp1.missing_text
    assert "certificate" not in {e.change for e in found}


def test_sp1_on_the_target_is_credited_once_host_and_certificate_are_recorded() -> None:
    ex03, rtm = srv(E2003, site=None), srv(E2007RTM)
    phone = dev(rtm, eas_version=None)

    _, found = _effects(mv(ex03, rtm), phone, org())

    sp1 = _one(found, "target-service-pack")
    assert sp1.credited and (sp1.before, sp1.after) == (Outcome.REPARTNER, Outcome.CONTINUES)


def test_a_redirect_is_not_credited_while_nobody_knows_the_client_follows_451() -> None:
    # M-HYB-ON-NO451: a 2010 SP2 front end cannot send the on-boarding 451; SP3 RU9 would,
    # but a redirect helps only a client that follows it (Q-CLIENT-451).
    front = srv(E2010SP2)
    move = mv(front, EXO, kind=KIND.HYBRID_ONBOARD)

    base, unsure = _effects(move, dev(front, client_honours_451=None), org())
    _, sure = _effects(move, dev(front, client_honours_451=True), org())

    assert base.outcome is Outcome.REPARTNER
    rollup = _one(unsure, "front-end-onboarding")
    assert not rollup.credited and rollup.after is Outcome.REDIRECT
    assert rollup.missing == ("honours-451",) and "451" in rollup.missing_text
    assert _one(sure, "front-end-onboarding").credited


def test_moving_2007_phones_to_the_hybrid_server_names_the_unrecorded_hybrid_server() -> None:
    # M-2007-EXO-LEGACY: "move device endpoint to the hybrid server". Which server that is is
    # not recorded: the newest one is not assumed to be it.
    ex07, ex2016 = srv(E2007SP3), srv(E2016)
    phone = dev(ex07, endpoint=ep(ex07, legacy_namespace=True))
    move = mv(ex07, EXO, kind=KIND.HYBRID_ONBOARD)

    base, found = _effects(move, phone, org(servers=(ex07, ex2016)))

    assert base.outcome is Outcome.REPARTNER
    namespace = _one(found, "namespace-move")
    assert not namespace.credited and namespace.missing == ("hybrid-server",)
    assert namespace.missing_text and "hybrid-server" in QUESTIONS


def test_moving_2007_phones_to_the_recorded_hybrid_server_is_credited_by_the_planner() -> None:
    # M-2007-EXO-LEGACY → M-2007-EXO-VIAHYB once the name is answered by the hybrid server
    # an admin recorded; the planner, not whatif, decides the outcome.
    ex07, ex2016 = srv(E2007SP3), srv(E2016)
    phone = dev(ex07, endpoint=ep(ex07, legacy_namespace=True))
    move = mv(ex07, EXO, kind=KIND.HYBRID_ONBOARD, hybrid_configured=True, hybrid_server=ex2016)

    base, found = _effects(move, phone, org(servers=(ex07, ex2016)))

    assert base.outcome is Outcome.REPARTNER
    namespace = _one(found, "namespace-move")
    assert namespace.credited and namespace.after is Outcome.REDIRECT
    assert namespace.detail == f"{ex07.name} → {ex2016.name}" and namespace.low_confidence


def test_a_recorded_hybrid_server_too_old_for_the_redirect_earns_no_credit() -> None:
    # The namespace moved to a 2010 SP2 hybrid server still cannot get the on-boarding 451.
    ex07, ex2010 = srv(E2007SP3), srv(E2010SP2)
    phone = dev(ex07, endpoint=ep(ex07, legacy_namespace=True))
    move = mv(ex07, EXO, kind=KIND.HYBRID_ONBOARD, hybrid_configured=True, hybrid_server=ex2010)

    _, found = _effects(move, phone, org(servers=(ex07, ex2010)))

    assert [e for e in found if e.change == "namespace-move" and e.credited] == []


def test_no_prerequisite_rests_on_a_rule_whose_admin_action_is_none() -> None:
    # M-2013P-2013P: a 2013+ front end already proxies; eas-moves.md names no admin action.
    for change in CHANGES:
        for rule in change.rules:
            assert RULES[rule].admin_action != NO_ACTION, rule


def test_changes_are_only_tried_where_their_rule_made_the_answer_worse() -> None:
    ex2016a, ex2016b = srv(E2016), srv(E2016)

    base, found = _effects(mv(ex2016a, ex2016b), dev(ex2016a), org())

    assert base.outcome is Outcome.CONTINUES and found == []
    assert set(CHANGE_BY_ID) == {c.id for c in CHANGES}
