"""Ranges instead of a bare `unknown`: the planner evaluated under each value of a missing fact.

predict() answers `unknown` when a fact a matrix row needs is missing. predict_range() then
replaces each such fact (a question of questions.py that has a finite set of answers) by each
value it can take, predicts again, and reports the outcomes reached (`possible`), the facts
that decide between them (`depends_on`) and which answer leads where (`branches`). When every
possibility agrees, that outcome is the answer; otherwise the outcome stays `unknown` with the
range. Nothing here invents a fact: the values tried are the recorded candidates (the
organisation's namespaces, the versions a server can have offered) or both sides of a yes/no.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from exchange.versions import (
    BUILD_2010_SP2_RU6,
    BUILD_2010_SP3_RU9,
    BUILD_2013_CU8,
    parse_eas_version,
)

from .facts import DeviceFacts, EndpointFacts, MoveFacts, MoveKind, OrgFacts
from .outcomes import SEVERITY, Outcome
from .predict import Prediction, offered_eas, predict, server_version
from .wording import admin_sentence, user_sentence

__all__ = ["MAX_WORLDS", "predict_range"]

MAX_WORLDS = 48
MAX_DEPTH = 4
EAS_CANDIDATES = ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0", "16.1")

Facts = tuple[MoveFacts, DeviceFacts, OrgFacts | None]
Variant = tuple[str, MoveFacts, DeviceFacts, OrgFacts | None]


def _namespaces(move: MoveFacts, device: DeviceFacts, org: OrgFacts | None) -> Iterator[Variant]:
    candidates: tuple[EndpointFacts, ...] = ()
    if org is not None and org.namespaces:
        candidates = org.namespaces
    elif org is not None and org.servers:
        # No namespace recorded at all: the phone's front end is one of the org's servers.
        candidates = tuple(EndpointFacts(server=s, certificate=None) for s in org.servers if s.name)
    for endpoint in candidates:
        label = endpoint.host or (endpoint.server.name if endpoint.server else None) or "?"
        yield f"the phones use {label}", move, replace(device, endpoint=endpoint), org


def _target_external_url(move, device, org) -> Iterator[Variant]:
    for value, label in ((True, "publishes"), (False, "does not publish")):
        target = replace(move.target, eas_external_url_set=value)
        yield (
            f"the target site {label} an EAS ExternalUrl",
            replace(move, target=target),
            device,
            org,
        )


def _device_eas(move, device, org) -> Iterator[Variant]:
    offered = offered_eas(move.source, server_version(move.source))
    for text in EAS_CANDIDATES:
        version = parse_eas_version(text)
        if offered is not None and version is not None and version > offered:
            continue
        yield f"the device speaks EAS {text}", move, replace(device, eas_version=text), org


def _front_end_build(move, device, org) -> Iterator[Variant]:
    endpoint = device.endpoint
    server = endpoint.server if endpoint else None
    shown = server_version(server)
    if endpoint is None or server is None or shown is None:
        return
    builds = [shown] + [
        t
        for t in (BUILD_2010_SP2_RU6, BUILD_2010_SP3_RU9, BUILD_2013_CU8)
        if (t.major, t.minor) == (shown.major, shown.minor) and t > shown
    ]
    for build in builds:
        front = replace(server, exsetup_version=str(build))
        label = f"{server.name or 'the front end'} runs build {build}"
        yield label, move, replace(device, endpoint=replace(endpoint, server=front)), org


def _site(move, device, org) -> Iterator[Variant]:
    for kind, label in ((MoveKind.SAME_SITE, "in one AD site"), (MoveKind.CROSS_SITE, "in two")):
        yield f"the servers are {label}", replace(move, kind=kind), device, org


def _yes_no(
    what: str, apply: Callable[[bool, MoveFacts, DeviceFacts, OrgFacts | None], Facts]
) -> Callable[[MoveFacts, DeviceFacts, OrgFacts | None], Iterator[Variant]]:
    def vary(move, device, org) -> Iterator[Variant]:
        for value in (True, False):
            yield (f"{what}: {'yes' if value else 'no'}", *apply(value, move, device, org))

    return vary


def _org(org: OrgFacts | None) -> OrgFacts:
    return org if org is not None else OrgFacts()


def _forest(move, device, org) -> Iterator[Variant]:
    known = move.source.organization or move.target.organization
    same = replace(
        move,
        source=replace(move.source, organization=known),
        target=replace(move.target, organization=known),
    )
    yield "both servers are in one forest", same, device, org
    yield "the servers are in two forests", replace(move, kind=MoveKind.CROSS_FOREST), device, org


VARIERS: dict[str, Callable[[MoveFacts, DeviceFacts, OrgFacts | None], Iterator[Variant]]] = {
    "namespace": _namespaces,
    "target-external-url": _target_external_url,
    "device-eas": _device_eas,
    "front-end-build": _front_end_build,
    "site": _site,
    "forest": _forest,
    "hybrid": _yes_no(
        "hybrid configured",
        lambda v, m, d, o: (replace(m, hybrid_configured=v), d, o),
    ),
    "device-capability": _yes_no(
        "the device speaks EAS 16.1",
        lambda v, m, d, o: (m, replace(d, max_eas_version="16.1" if v else "14.1"), o),
    ),
    "honours-451": _yes_no(
        "the client follows HTTP 451",
        lambda v, m, d, o: (m, replace(d, client_honours_451=v), o),
    ),
    "policy-compliance": _yes_no(
        "the device can comply with the target policy",
        lambda v, m, d, o: (m, replace(d, can_comply_with_target_policy=v), o),
    ),
    "non-provisionable": _yes_no(
        "AllowNonProvisionableDevices",
        lambda v, m, d, o: (m, d, replace(_org(o), allow_non_provisionable_devices=v)),
    ),
}


@dataclass(frozen=True)
class _World:
    assumed: tuple[tuple[str, str], ...]  # (question id, the answer assumed)
    facts: Facts
    prediction: Prediction


def _open_questions(prediction: Prediction) -> list[str]:
    """Questions that made this prediction unknown and that have a finite set of answers."""
    if prediction.outcome is not Outcome.UNKNOWN:
        return []
    return [
        r.question
        for r in prediction.reasons
        if r.outcome is Outcome.UNKNOWN and not r.is_warning and r.question in VARIERS
    ]


def _finish(prediction: Prediction, **fields: object) -> Prediction:
    done = replace(prediction, **fields)
    return replace(
        done,
        user_text=user_sentence(done.outcome, done.reasons),
        admin_text=admin_sentence(done.outcome, done.reasons, done.questions),
    )


def predict_range(move: MoveFacts, device: DeviceFacts, org: OrgFacts | None = None) -> Prediction:
    """predict(), and where it answers `unknown` for want of a fact, the range of answers."""
    base = predict(move, device, org)
    if base.outcome is not Outcome.UNKNOWN:
        return _finish(base, possible=(base.outcome,))
    worlds = [_World((), (move, device, org), base)]
    varied: list[str] = []
    for _ in range(MAX_DEPTH):
        pending = [q for w in worlds for q in _open_questions(w.prediction) if q not in varied]
        if not pending:
            break
        question = pending[0]
        grown: list[_World] = []
        for world in worlds:
            if question not in _open_questions(world.prediction):
                grown.append(world)
                continue
            variants = list(VARIERS[question](*world.facts))
            if not variants:
                grown.append(world)
                continue
            for label, m, d, o in variants:
                grown.append(
                    _World((*world.assumed, (question, label)), (m, d, o), predict(m, d, o))
                )
        if len(grown) > MAX_WORLDS:
            break  # too many combinations to explore: the range stays open (unknown in it)
        varied.append(question)
        worlds = grown

    reached = {w.prediction.outcome for w in worlds}
    possible = tuple(o for o in SEVERITY if o in reached)
    depends_on = tuple(q for q in varied if _decides(q, worlds))
    branches = _branches(worlds, depends_on)
    if len(possible) == 1 and possible[0] is not Outcome.UNKNOWN:
        # Every possibility agrees: that is the answer, whatever the missing facts are.
        first = worlds[0].prediction
        what = "; ".join(label for _, label in worlds[0].assumed)
        note = replace(
            first.reasons[0],
            text=f"{first.reasons[0].text} The same answer holds for every possibility "
            f"exsync tried for the missing facts (e.g. {what}).",
        )
        return _finish(
            replace(first, reasons=(note, *first.reasons[1:])),
            possible=possible,
            depends_on=(),
            branches=(),
        )
    return _finish(base, possible=possible, depends_on=depends_on, branches=branches)


def _decides(question: str, worlds: list[_World]) -> bool:
    """Whether changing only the answer to `question` changes some world's outcome."""
    groups: dict[tuple, set[Outcome]] = {}
    for world in worlds:
        others = tuple(a for a in world.assumed if a[0] != question)
        groups.setdefault(others, set()).add(world.prediction.outcome)
    return any(len(outcomes) > 1 for outcomes in groups.values())


def _branches(worlds: list[_World], depends_on: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """For each outcome reached, the first set of deciding answers that leads to it."""
    seen: dict[Outcome, str] = {}
    for world in worlds:
        outcome = world.prediction.outcome
        if outcome in seen:
            continue
        conditions = [label for q, label in world.assumed if q in depends_on]
        seen[outcome] = " and ".join(conditions) or "whatever the answers"
    return tuple((str(o), seen[o]) for o in SEVERITY if o in seen)
