"""Small builders of planner facts for tests: fully checked by default, so each test changes
only the fact it is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from migrations_plan.planner.facts import (
    EXCHANGE_ONLINE,
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    MoveKind,
    OrgFacts,
    ServerFacts,
)

E2003 = "Version 6.5 (Build 7638.2: Service Pack 2)"
E2007RTM = "Version 8.0 (Build 685.25)"
E2007SP1 = "Version 8.1 (Build 240.6)"
E2007SP3 = "Version 8.3 (Build 83.6)"
E2010SP1 = "Version 14.1 (Build 218.15)"
E2010SP2 = "Version 14.2 (Build 247.5)"
E2010SP3 = "Version 14.3 (Build 123.4)"
E2013RTM = "Version 15.0 (Build 516.32)"
E2013CU23 = "Version 15.0 (Build 1497.2)"
E2016 = "Version 15.1 (Build 2507.6)"
E2019 = "Version 15.2 (Build 1748.10)"
ESE = "Version 15.2 (Build 2562.17)"

MOVE_DATE = date(2026, 12, 1)
HOST = "mail.contoso.com"
CERT = CertificateFacts(
    thumbprint="AA11BB22",
    not_after=date(2030, 1, 1),
    names=(HOST, "autodiscover.contoso.com", "legacy.contoso.com"),
    issuer="CN=Public CA",
)
ORG = OrgFacts(
    name="contoso",
    default_access_level=AccessLevel.ALLOW,
    hybrid_configured=True,
    eas_max_devices=100,
    allow_non_provisionable_devices=False,
)
KIND = MoveKind
EXO = EXCHANGE_ONLINE

_counter = iter(range(1, 1_000_000))


def srv(version: str | None, **kw: Any) -> ServerFacts:
    """A server with a unique name in site S1 of org contoso, IWA on, BlockLegacy off."""
    defaults: dict[str, Any] = {
        "name": f"EX{next(_counter)}",
        "admin_display_version": version,
        "site": "S1",
        "organization": "contoso",
        "iwa_on_eas_vdir": True,
        "block_legacy_mailboxes": False,
    }
    return ServerFacts(**{**defaults, **kw})


def ep(server: ServerFacts | None, **kw: Any) -> EndpointFacts:
    defaults: dict[str, Any] = {
        "host": HOST,
        "server": server,
        "certificate": CERT,
        "reaches_mailbox_after_move": True,
    }
    return EndpointFacts(**{**defaults, **kw})


def dev(front: ServerFacts | None = None, **kw: Any) -> DeviceFacts:
    """A modern, allowed, fully recorded phone whose endpoint is `front`."""
    defaults: dict[str, Any] = {
        "device_id": "ABC123",
        "device_type": "iPhone",
        "eas_version": "16.1",
        "client_honours_451": True,
        "supports_modern_auth": True,
        "endpoint": ep(front),
        "access_state": AccessLevel.ALLOW,
        "allowed_on_target": True,
        "blocked_on_target": False,
        "can_comply_with_target_policy": True,
    }
    return DeviceFacts(**{**defaults, **kw})


def mv(source: ServerFacts, target: ServerFacts, **kw: Any) -> MoveFacts:
    defaults: dict[str, Any] = {
        "move_date": MOVE_DATE,
        "target_partnership_count": 1,
        "target_policy_differs": False,
    }
    return MoveFacts(source=source, target=target, **{**defaults, **kw})


def org(**kw: Any) -> OrgFacts:
    return replace(ORG, **kw)
