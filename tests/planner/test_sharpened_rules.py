"""The rows eas-moves.md sharpened (X-CERT, X-EASVER-EXO, M-XORG, M-UNSUPPORTED-PATH), device
access wording, hybrid as a fact, and the user/admin sentences."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from exchange.versions import Generation as G
from migrations_plan.planner.facts import EXCHANGE_ONLINE as EXO
from migrations_plan.planner.facts import AccessLevel, MoveKind
from migrations_plan.planner.outcomes import Outcome
from migrations_plan.planner.predict import derive_move_kind, predict
from migrations_plan.planner.ranges import predict_range
from migrations_plan.planner.rules import unsupported_path

from .builders import CERT, E2010SP3, E2013CU23, E2016, E2019, ESE, dev, ep, mv, org, srv

AFTER_FLOOR = date(2026, 12, 1)
cas2016 = srv(E2016, name="CAS2016")


def rules(prediction) -> dict[str, object]:
    return {r.rule: r for r in prediction.reasons}


# -- X-EASVER-EXO: capability, not the version negotiated with the source ---------------------


def test_eas_14_1_on_a_2010_mailbox_does_not_show_the_phone_lacks_16_1() -> None:
    phone = dev(cas2016, eas_version="14.1", os="Android 13.0.0", device_type="SAMSUNGSMG991B")
    prediction = predict(mv(srv(E2010SP3), EXO, move_date=AFTER_FLOOR), phone, org())
    reason = rules(prediction)["X-EASVER-EXO"]
    assert reason.is_warning and reason.question == "device-capability"
    assert prediction.outcome is not Outcome.BLOCKED


def test_a_phone_that_took_less_than_its_server_offered_is_blocked_by_exchange_online() -> None:
    # A 2016 server offers 16.1; the phone chose 14.1, so 14.1 is all it speaks.
    phone = dev(cas2016, eas_version="14.1", os="Android 6.0")
    prediction = predict(mv(srv(E2016), EXO, move_date=AFTER_FLOOR), phone, org())
    assert prediction.outcome is Outcome.BLOCKED
    assert "chose 14.1" in rules(prediction)["X-EASVER-EXO"].text


def test_ios_mail_since_ios_10_speaks_16_1_whatever_it_negotiated_with_2010() -> None:
    phone = dev(cas2016, eas_version="14.1", os="iOS 12.1 16B92")
    prediction = predict(mv(srv(E2010SP3), EXO, move_date=AFTER_FLOOR), phone, org())
    assert "X-EASVER-EXO" not in rules(prediction)


def test_nothing_known_about_the_os_makes_the_capability_unknown() -> None:
    phone = dev(cas2016, eas_version="14.1", os=None)
    prediction = predict(mv(srv(E2010SP3), EXO, move_date=AFTER_FLOOR), phone, org())
    assert rules(prediction)["X-EASVER-EXO"].outcome is Outcome.UNKNOWN
    ranged = predict_range(mv(srv(E2010SP3), EXO, move_date=AFTER_FLOOR), phone, org())
    assert Outcome.BLOCKED in ranged.possible and "device-capability" in ranged.depends_on


def test_a_recorded_capability_decides() -> None:
    phone = dev(cas2016, eas_version="14.1", os=None, max_eas_version="14.1")
    prediction = predict(mv(srv(E2010SP3), EXO, move_date=AFTER_FLOOR), phone, org())
    assert prediction.outcome is Outcome.BLOCKED


def test_2013_offers_14_1_so_14_1_there_is_not_read_as_the_phones_limit() -> None:
    phone = dev(cas2016, eas_version="14.1", os="Android 13")
    prediction = predict(mv(srv(E2013CU23), EXO, move_date=AFTER_FLOOR), phone, org())
    assert rules(prediction)["X-EASVER-EXO"].is_warning


@pytest.mark.parametrize("eas", ["12.1", "2.5", None])
def test_outlook_mobile_is_exempt_from_every_eas_version_rule(eas: str | None) -> None:
    outlook = dev(cas2016, client_type="Outlook", device_type="Outlook", eas_version=eas)
    prediction = predict(mv(srv(E2016), EXO, move_date=AFTER_FLOOR), outlook, org())
    assert not {"X-EASVER-EXO", "X-EASVER-451", "X-AUTH-EXO"} & set(rules(prediction))
    assert prediction.outcome is Outcome.REDIRECT


# -- hybrid is a fact ---------------------------------------------------------------------------


def test_without_the_hybrid_fact_the_onboarding_redirect_is_not_assumed() -> None:
    prediction = predict_range(mv(srv(E2016), EXO), dev(cas2016), org(hybrid_configured=None))
    assert prediction.outcome is Outcome.UNKNOWN
    assert set(prediction.possible) == {Outcome.REDIRECT, Outcome.REPARTNER}
    assert prediction.depends_on == ("hybrid",)


def test_hybrid_recorded_on_the_move_decides_it() -> None:
    move = mv(srv(E2016), EXO, hybrid_configured=True)
    prediction = predict(move, dev(cas2016), org(hybrid_configured=None))
    assert prediction.outcome is Outcome.REDIRECT


# -- X-CERT sharpened --------------------------------------------------------------------------


def _redirected(trusted, served, host="mail-eu.contoso.com"):
    source, target = srv(E2010SP3), srv(E2010SP3, site="S2", eas_external_url_set=True)
    phone = dev(srv(E2010SP3, name="CAS"), eas_version="14.1")
    phone = replace(phone, endpoint=replace(phone.endpoint, certificate=trusted))
    move = mv(source, target, target_endpoint=ep(None, host=host, certificate=served))
    return predict(move, phone, org())


def test_a_renewal_from_the_same_issuer_covering_the_host_is_not_blocked() -> None:
    served = replace(CERT, thumbprint="FFEE", names=("mail-eu.contoso.com",))
    assert _redirected(CERT, served).outcome is Outcome.REDIRECT


def test_another_issuer_on_the_host_the_phone_meets_blocks() -> None:
    served = replace(CERT, thumbprint="FFEE", issuer="CN=Other", names=("mail-eu.contoso.com",))
    prediction = _redirected(CERT, served)
    assert prediction.outcome is Outcome.BLOCKED
    assert "issuer changes" in rules(prediction)["X-CERT"].text


def test_a_self_signed_certificate_where_a_ca_was_trusted_blocks() -> None:
    trusted = replace(CERT, self_signed=False)
    served = replace(
        CERT,
        thumbprint="FFEE",
        self_signed=True,
        issuer=CERT.issuer,
        names=("mail-eu.contoso.com",),
    )
    assert _redirected(trusted, served).outcome is Outcome.BLOCKED


def test_a_renewed_self_signed_certificate_is_a_warning_for_phones_that_installed_it() -> None:
    trusted = replace(CERT, self_signed=True, issuer="CN=EX2010A")
    served = replace(trusted, thumbprint="FFEE", names=("mail-eu.contoso.com",))
    reason = rules(_redirected(trusted, served))["X-CERT"]
    assert reason.is_warning and "accept" in reason.user_action


def test_a_phone_that_keeps_its_host_name_meets_the_same_certificate() -> None:
    # No redirect: the target server's own certificate is not what the phone meets.
    other = ep(cas2016, host="ex2019.contoso.local", certificate=replace(CERT, thumbprint="99"))
    prediction = predict(mv(srv(E2016), srv(E2019), target_endpoint=other), dev(cas2016), org())
    assert prediction.outcome is Outcome.CONTINUES


# -- M-XORG, M-UNSUPPORTED-PATH ------------------------------------------------------------------


def test_servers_of_two_forests_make_a_cross_forest_move_that_needs_repartnering() -> None:
    source = srv(E2016, organization="contoso.local")
    target = srv(E2019, organization="tailspin.local")
    assert derive_move_kind(source, target) is MoveKind.CROSS_FOREST
    assert predict(mv(source, target), dev(cas2016), org()).outcome is Outcome.REPARTNER


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (G.EX2003, G.EX2013),
        (G.EX2007, G.EX2016),
        (G.EX2010, G.EX2019),
        (G.EX2010, G.SE),
        (G.EX2013, G.SE),
    ],
)
def test_unsupported_coexistence_paths(source, target) -> None:
    assert unsupported_path(source, target)


def test_2013_to_2019_is_supported_but_2013_to_se_is_not() -> None:
    assert not unsupported_path(G.EX2013, G.EX2019)
    to_se = predict(mv(srv(E2013CU23), srv(ESE)), dev(cas2016), org())
    assert "M-UNSUPPORTED-PATH" in rules(to_se)
    assert to_se.outcome is Outcome.UNKNOWN


# -- device access: Blocked is not Quarantined --------------------------------------------------


def test_a_blocked_device_is_not_told_to_wait_for_approval() -> None:
    blocked = predict_range(
        mv(srv(E2016), srv(E2019)), dev(cas2016, access_state=AccessLevel.BLOCK), org()
    )
    quarantined = predict_range(
        mv(srv(E2016), srv(E2019)), dev(cas2016, access_state=AccessLevel.QUARANTINE), org()
    )
    assert blocked.outcome is quarantined.outcome is Outcome.BLOCKED
    assert "wait" not in blocked.user_text.lower().replace("waiting will not", "")
    assert "Contact IT" in blocked.user_text
    assert "Wait for approval" in quarantined.user_text


# -- plain words ---------------------------------------------------------------------------------


def test_the_user_sentence_never_puts_nothing_to_do_beside_an_action() -> None:
    prediction = predict_range(
        mv(srv(E2016), srv(E2019)), dev(cas2016, access_state=AccessLevel.QUARANTINE), org()
    )
    assert "None." not in prediction.user_text
    assert "Nothing to do" not in prediction.user_text
    assert prediction.admin_text and "None." not in prediction.admin_text


def test_a_cross_forest_move_checks_the_certificate_of_the_new_forests_host() -> None:
    source = srv(E2016, organization="contoso.local")
    target = srv(E2019, organization="tailspin.local")
    expired = replace(CERT, not_after=date(2026, 1, 1), names=("mail.tailspin.com",))
    move = mv(
        source, target, target_endpoint=ep(None, host="mail.tailspin.com", certificate=expired)
    )
    old_host_expired = dev(
        cas2016, endpoint=ep(cas2016, certificate=replace(CERT, not_after=date(2026, 1, 1)))
    )

    prediction = predict_range(move, old_host_expired, org())

    reason = rules(prediction)["X-CERT"]
    assert "mail.tailspin.com" in reason.text and prediction.outcome is Outcome.BLOCKED
    # Blocked first, and the account must still be re-created once it is fixed.
    assert "Once that is fixed" in prediction.user_text and "add it again" in prediction.user_text


def test_one_server_of_unknown_forest_is_a_question_not_a_same_forest_guess() -> None:
    source = srv(E2016, organization=None)
    target = srv(E2019, organization="tailspin.local")
    prediction = predict_range(mv(source, target), dev(cas2016), org())
    assert prediction.outcome is Outcome.UNKNOWN
    assert set(prediction.possible) == {Outcome.REPARTNER, Outcome.CONTINUES}
    assert prediction.depends_on == ("forest",)


def test_a_target_that_blocks_unknown_devices_does_not_tell_the_user_to_wait() -> None:
    prediction = predict_range(
        mv(srv(E2016), srv(E2019), kind=MoveKind.CROSS_FOREST),
        dev(cas2016, allowed_on_target=False),
        org(default_access_level=AccessLevel.BLOCK),
    )
    assert prediction.outcome is Outcome.BLOCKED
    assert "wait" not in prediction.user_text.lower().replace("waiting will not", "")
