"""Properties that must hold for any facts (hypothesis), and the planner's purity."""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import migrations_plan.planner as planner_package
from migrations_plan.planner.facts import (
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    MoveKind,
    OrgFacts,
    ServerFacts,
)
from migrations_plan.planner.outcomes import Outcome, severity, worst
from migrations_plan.planner.predict import Prediction, predict

from .builders import (
    E2003,
    E2007RTM,
    E2007SP1,
    E2007SP3,
    E2010SP1,
    E2010SP2,
    E2010SP3,
    E2013CU23,
    E2013RTM,
    E2016,
    E2019,
    ESE,
    HOST,
)

# Local settings, not a global profile: the rest of the suite keeps hypothesis's defaults.
fast = settings(max_examples=60, deadline=None, database=None)

tri = st.sampled_from([True, False, None])
versions = st.sampled_from(
    [
        *(E2003, E2007RTM, E2007SP1, E2007SP3, E2010SP1, E2010SP2, E2010SP3, E2013RTM),
        *(E2013CU23, E2016, E2019, ESE, "15.2.2600.1", None, "junk", "0.1 (14.0.100.0)"),
        "16.0.1.0",
    ]
)
exsetups = st.sampled_from([None, None, "14.2.342.3", "14.3.235.1", "14.2.328.5", "junk"])


def on_prem_servers(version: st.SearchStrategy[str | None] = versions) -> st.SearchStrategy:
    return st.builds(
        ServerFacts,
        name=st.sampled_from(["EX1", "EX2", None]),
        admin_display_version=version,
        exsetup_version=exsetups,
        site=st.sampled_from(["S1", "S2", None]),
        organization=st.sampled_from(["contoso", "fabrikam", None]),
        is_exchange_online=st.just(False),
        eas_external_url_set=tri,
        iwa_on_eas_vdir=tri,
        block_legacy_mailboxes=tri,
    )


exo = st.just(ServerFacts(name="Exchange Online", is_exchange_online=True))
servers = st.one_of(on_prem_servers(), on_prem_servers(), exo)
certificates = st.builds(
    CertificateFacts,
    thumbprint=st.sampled_from(["AA11", "BB22", None]),
    not_after=st.sampled_from([None, date(2025, 1, 1), date(2030, 1, 1), datetime(2026, 12, 1, 9)]),
    names=st.sampled_from([None, (HOST,), ("*.contoso.com",), ("other.example",)]),
    issuer=st.sampled_from([None, "CN=Public CA", "CN=Internal CA"]),
)


def endpoints(server: st.SearchStrategy = servers) -> st.SearchStrategy:
    return st.builds(
        EndpointFacts,
        host=st.sampled_from([HOST, "legacy.contoso.com", None]),
        server=st.none() | server,
        legacy_namespace=tri,
        certificate=st.none() | certificates,
        reaches_mailbox_after_move=tri,
    )


devices = st.builds(
    DeviceFacts,
    eas_version=st.sampled_from(
        [None, "junk", "1.0", "2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1"]
    ),
    client_type=st.sampled_from([None, "EAS", "Outlook"]),
    client_honours_451=tri,
    supports_modern_auth=tri,
    endpoint=st.none() | endpoints(),
    access_state=st.none()
    | st.sampled_from([*AccessLevel, "Allowed", "Quarantined", "Blocked", "DeviceDiscovery"]),
    allowed_on_target=tri,
    blocked_on_target=tri,
    can_comply_with_target_policy=tri,
)
orgs = st.none() | st.builds(
    OrgFacts,
    default_access_level=st.none() | st.sampled_from(AccessLevel),
    hybrid_configured=tri,
    eas_max_devices=st.sampled_from([None, 2, 100]),
    allow_non_provisionable_devices=tri,
    servers=st.none() | st.lists(on_prem_servers(), max_size=3).map(tuple),
)
moves = st.builds(
    MoveFacts,
    source=servers,
    target=servers,
    kind=st.none() | st.sampled_from(MoveKind),
    move_date=st.sampled_from([None, date(2025, 6, 1), date(2026, 12, 1)]),
    target_endpoint=st.none() | endpoints(),
    target_partnership_count=st.sampled_from([None, 0, 5, 100, 1000]),
    target_policy_differs=tri,
)


def _check_consistent(prediction: Prediction) -> None:
    assert prediction.reasons, "every prediction carries at least one reason"
    assert prediction.outcome is worst(r.outcome for r in prediction.reasons)
    assert prediction.low_confidence == any(r.low_confidence for r in prediction.reasons)
    for reason in prediction.reasons:
        if reason.is_warning:
            assert reason.outcome is Outcome.CONTINUES  # a warning never changes the outcome
        # Uncertainty is said in words, not only flagged.
        if reason.confidence.is_low:
            assert "inferred" in reason.text.lower(), reason
        assert all(question in reason.text for question in reason.open_questions), reason
    as_dict = json.loads(json.dumps(prediction.as_dict()))
    for reason in as_dict["reasons"]:
        assert {"rule", "text", "user_action", "admin_action", "source"} <= set(reason)
        assert all(reason[key] for key in ("rule", "text", "user_action", "admin_action"))


@fast
@given(moves, devices, orgs)
def test_any_facts_give_a_consistent_prediction_and_never_raise(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None
) -> None:
    _check_consistent(predict(move, device, org))


on_prem_endpoints = endpoints(on_prem_servers())


@fast
@given(moves, devices, orgs, on_prem_endpoints, on_prem_endpoints, certificates)
def test_a_renewal_from_the_same_issuer_covering_the_host_never_blocks_by_certificate(
    move: MoveFacts,
    device: DeviceFacts,
    org: OrgFacts | None,
    before: EndpointFacts,
    after: EndpointFacts,
    certificate: CertificateFacts,
) -> None:
    host = "mail.contoso.com"
    renewal = replace(
        certificate,
        issuer="CN=Public CA",
        names=(host,),
        not_after=date(2040, 1, 1),
        self_signed=False,
    )
    device = replace(
        device,
        endpoint=replace(before, host=host, certificate=replace(renewal, thumbprint="AA:11")),
    )
    move = replace(
        move,
        move_date=date(2026, 12, 1),
        target_endpoint=replace(after, host=host, certificate=replace(renewal, thumbprint="BB22")),
    )
    reasons = predict(move, device, org).reasons
    assert not [r for r in reasons if r.rule == "X-CERT" and r.outcome is Outcome.BLOCKED]


@fast
@given(moves, devices, orgs, st.integers(min_value=1, max_value=3000))
def test_a_certificate_expired_at_the_move_date_never_continues(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None, days: int
) -> None:
    moved_on = date(2026, 12, 1)
    # Whichever host the phone meets after the move (its own, or the target's on a redirect),
    # an expired certificate there is never "continues".
    for endpoint in (device.endpoint, move.target_endpoint):
        assume(endpoint is None or not (endpoint.server and endpoint.server.is_exchange_online))
    assume(device.endpoint is not None)

    def expire(endpoint: EndpointFacts) -> EndpointFacts:
        certificate = endpoint.certificate or CertificateFacts()
        return replace(
            endpoint, certificate=replace(certificate, not_after=moved_on - timedelta(days=days))
        )

    assert device.endpoint is not None
    device = replace(device, endpoint=expire(device.endpoint))
    if move.target_endpoint is not None:
        move = replace(move, target_endpoint=expire(move.target_endpoint))
    move = replace(move, move_date=moved_on)
    assert predict(move, device, org).outcome is not Outcome.CONTINUES


unusable_versions = st.sampled_from([None, "", "junk", "0.1 (14.0.100.0)", "15.1.2507", "7.0.1.1"])


@fast
@given(moves, devices, orgs, unusable_versions, st.booleans())
def test_a_missing_or_unparseable_server_version_is_never_better_than_unknown(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None, version: str | None, source: bool
) -> None:
    broken = ServerFacts(name="EX9", admin_display_version=version, exsetup_version=version)
    move = replace(move, source=broken) if source else replace(move, target=broken)
    prediction = predict(move, device, org)
    assert severity(prediction.outcome) >= severity(Outcome.UNKNOWN)
    assert "F-VERSION" in {r.rule for r in prediction.reasons}


def _expire_post_move_certificate(m: MoveFacts, d: DeviceFacts, o: OrgFacts | None) -> tuple:
    if m.target_endpoint is not None:
        cert = replace(
            m.target_endpoint.certificate or CertificateFacts(), not_after=date(2000, 1, 1)
        )
        return replace(m, target_endpoint=replace(m.target_endpoint, certificate=cert)), d, o
    assume(d.endpoint is not None)
    assert d.endpoint is not None
    cert = replace(d.endpoint.certificate or CertificateFacts(), not_after=date(2000, 1, 1))
    return m, replace(d, endpoint=replace(d.endpoint, certificate=cert)), o


def _retire_host_name(m: MoveFacts, d: DeviceFacts, o: OrgFacts | None) -> tuple:
    assume(d.endpoint is not None)
    assert d.endpoint is not None
    return m, replace(d, endpoint=replace(d.endpoint, reaches_mailbox_after_move=False)), o


def _org_blocks_by_default(m: MoveFacts, d: DeviceFacts, o: OrgFacts | None) -> tuple:
    assume(o is not None)
    return m, d, replace(o, default_access_level=AccessLevel.BLOCK)  # type: ignore[arg-type]


# Each replaces one fact (whatever it was, known good or unknown) with a known-bad value.
BAD_FACTS: dict[str, Callable[[MoveFacts, DeviceFacts, OrgFacts | None], tuple]] = {
    "device quarantined": lambda m, d, o: (m, replace(d, access_state=AccessLevel.QUARANTINE), o),
    "device blocked on target": lambda m, d, o: (
        m,
        replace(d, blocked_on_target=True, allowed_on_target=False),
        o,
    ),
    "device not allowed on target": lambda m, d, o: (m, replace(d, allowed_on_target=False), o),
    "client ignores 451": lambda m, d, o: (m, replace(d, client_honours_451=False), o),
    "no modern auth": lambda m, d, o: (m, replace(d, supports_modern_auth=False), o),
    "IWA off on source": lambda m, d, o: (
        replace(m, source=replace(m.source, iwa_on_eas_vdir=False)),
        d,
        o,
    ),
    "BlockLegacyMailboxes on target": lambda m, d, o: (
        replace(m, target=replace(m.target, block_legacy_mailboxes=True)),
        d,
        o,
    ),
    "user at the device limit": lambda m, d, o: (
        replace(m, target_partnership_count=10_000),
        d,
        o,
    ),
    "target policy differs": lambda m, d, o: (replace(m, target_policy_differs=True), d, o),
    "expired certificate": _expire_post_move_certificate,
    "retired host name": _retire_host_name,
    "org blocks by default": _org_blocks_by_default,
}


@fast
@given(moves, devices, orgs, st.sampled_from(sorted(BAD_FACTS)))
def test_adding_a_bad_fact_never_makes_the_outcome_better(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None, bad: str
) -> None:
    before = predict(move, device, org)
    after = predict(*BAD_FACTS[bad](move, device, org))
    assert severity(after.outcome) >= severity(before.outcome), (bad, before, after)


@fast
@given(moves, devices, orgs)
def test_cross_cutting_rules_only_make_the_matrix_outcome_worse(
    move: MoveFacts, device: DeviceFacts, org: OrgFacts | None
) -> None:
    prediction = predict(move, device, org)
    matrix = [r for r in prediction.reasons if r.rule.startswith(("M-", "F-"))]
    assert severity(prediction.outcome) >= severity(worst(r.outcome for r in matrix))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("__import__")  # dynamic imports would dodge this check
    return found


def test_planner_imports_only_the_standard_library_and_itself() -> None:
    package_dir = Path(planner_package.__file__).parent
    modules = sorted(package_dir.rglob("*.py"))
    assert {p.name for p in modules} >= {
        "__init__.py",
        "outcomes.py",
        "facts.py",
        "rules.py",
        "predict.py",
    }
    # `exchange` is the shared pure module of build numbers and EAS versions.
    allowed = (set(sys.stdlib_module_names) - {"importlib"}) | {"exchange"}
    for path in modules:
        outside = _imported_modules(path) - allowed
        assert not outside, f"{path.name} imports {sorted(outside)}"
        assert "django" not in path.read_text(encoding="utf-8").lower().replace(
            "no django", ""
        ).replace("imports django", ""), f"{path.name} mentions django"


def test_planner_modules_start_with_a_one_line_docstring() -> None:
    for path in sorted(Path(planner_package.__file__).parent.rglob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring, path.name
        assert docstring.splitlines()[0].strip(), path.name
