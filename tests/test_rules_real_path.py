"""Every rule of eas-moves.md fires from facts a user can provide, through the real path.

Each scenario writes the exports an admin would make (tests/real_path.py), imports them with
`manage.py import_inventory`, records what no export carries through the services behind the
Organisation pages (namespaces, client profiles, server facts), creates the batch with
`manage.py create_batch` and reads the device's prediction from `manage.py plan_batch --json`.
The planner's own facts are never built by hand here (tests/planner/ does that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from migrations_plan.planner.rules import RULES
from tests.real_path import (
    DIGICERT,
    EXO,
    LETSENCRYPT,
    V2003,
    V2007RTM,
    V2007SP1,
    V2007SP3,
    V2010SP2,
    V2010SP3,
    V2013CU23,
    V2016,
    V2019,
    VSE,
    VSE_LATER,
    Lab,
    Server,
    export_csv,
    hybrid_relationship,
    mailbox_policies,
    org_settings,
    reasons,
    rules,
    throttling_policy,
    verdict,
)
from tests.real_path import Mailbox as MailboxSpec

pytestmark = pytest.mark.django_db

EAS_MOVES = Path(__file__).resolve().parents[2] / "shared/domain/eas-moves.md"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


# -- small organisations the scenarios share ----------------------------------------------------


def _iphone(lab: Lab, mailbox, device_id: str = "ApplF17LTTCGFFG8", **facts: Any):
    return lab.device(mailbox, device_id, **facts)


def _pocketpc(lab: Lab, mailbox, device_id: str = "6F24CAD599A5BF1A690246B8C68FAE8D"):
    # A Windows Mobile phone of a 2003 mailbox, as the front end's IIS log shows it.
    return lab.device(
        mailbox, device_id, device_type="PocketPC", user_agent="MSFT-PPC/5.2.5082", eas=None
    )


def _from_2003(lab: Lab, target_version: str, *, iwa: bool | None = True) -> dict:
    """A 2003 mailbox moved to a 2007 server (the 2007 CAS then fronts it)."""
    ex03 = lab.server("EX03", V2003)
    lab.server("EX07", target_version)
    kim = lab.mailbox("kakers", ex03, "Kim Akers")
    _pocketpc(lab, kim)
    lab.import_exports()
    if iwa is not None:
        lab.record_server("EX03", iwa_enabled=iwa)
    return lab.plan("EX07", kim).device("6F24CAD599A5BF1A690246B8C68FAE8D")


def _to_2010(lab: Lab, source_version: str, *, eas: str = "12.1", legacy: bool = False) -> dict:
    """A 2003/2007 mailbox moved to 2010; mail.contoso.com is published by the 2010 CAS and,
    for 2007 sources, legacy.contoso.com by the 2007 CAS. `legacy`: phones still use it."""
    source = lab.server("EX07" if source_version != V2003 else "EX03", source_version)
    ex2010 = lab.server("EX2010A", V2010SP3)
    kim = lab.mailbox("kakers", source, "Kim Akers")
    if source_version == V2003:
        _pocketpc(lab, kim)
    else:
        _iphone(lab, kim, eas=eas, os="iOS 4.3.5 8L1", model="iPhone3C1")
        lab.vdir(source, "legacy.contoso.com")
    lab.vdir(ex2010, "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("legacy.contoso.com" if legacy else "mail.contoso.com")
    if legacy:
        # Tested on a pilot phone: this model follows HTTP 451 (Q-451-121 for EAS 12.1).
        lab.client_profile("iPhone Mail", device_type="iPhone", honours_451=True)
    if source_version == V2003:
        lab.record_server("EX03", iwa_enabled=True)
    plan = lab.plan("EX2010A", kim)
    return plan.device(
        "6F24CAD599A5BF1A690246B8C68FAE8D" if source_version == V2003 else "ApplF17LTTCGFFG8"
    )


def _cross_site_2010(
    lab: Lab,
    *,
    version: str = V2010SP3,
    target_url: str | None = "mail-branch.contoso.com",
    target_vdir: bool = True,
    eas: str = "14.1",
    exsetup: str | None = None,
) -> dict:
    """A 2010 mailbox moved from site HQ to site Branch; phones use mail.contoso.com (HQ)."""
    hq = lab.server("EX2010A", version)
    branch = lab.server("EX2010B", version, site="Branch")
    tony = lab.mailbox("tsmith", hq, "Tony Smith")
    _iphone(lab, tony, eas=eas, os="iOS 6.1.4 10B350", model="iPhone5C1")
    lab.vdir(hq, "mail.contoso.com")
    if target_vdir:
        lab.vdir(branch, target_url)
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    lab.client_profile("iPhone Mail", device_type="iPhone", honours_451=True)
    if exsetup:
        lab.record_server("EX2010A", exsetup_version=exsetup)
    return lab.plan("EX2010B", tony).device("ApplF17LTTCGFFG8")


def _to_2016(
    lab: Lab, *, retired: bool = False, access: str = "Allowed", cert: tuple | None = None
) -> dict:
    """A 2010 mailbox moved to 2016; phones use mail.contoso.com, answered by the 2016 server."""
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, eas="14.1", access=access)
    lab.vdir(ex2016, "mail.contoso.com")
    if cert:
        thumbprint, host, not_after = cert
        lab.cert(ex2016, thumbprint, host, not_after=not_after)
    lab.import_exports()
    lab.phones_use("mail.contoso.com", retired=retired)
    return lab.plan("EX2016A", tony).device("ApplF17LTTCGFFG8")


def _modern(lab: Lab, target: str, target_version: str) -> dict:
    """A 2016 mailbox moved within 2013+ (or to SE); phones use mail.contoso.com on EX2016A."""
    ex2016 = lab.server("EX2016A", V2016)
    lab.server(target, target_version)
    tony = lab.mailbox("tsmith", ex2016, "Tony Smith")
    _iphone(lab, tony)
    lab.vdir(ex2016, "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    return lab.plan(target, tony).device("ApplF17LTTCGFFG8")


def _to_exchange_online(
    lab: Lab,
    source_version: str = V2016,
    *,
    device: dict | None = None,
    endpoint: str = "mail.contoso.com",
    hybrid: bool = True,
    profile: dict | None = None,
    start: str | None = None,
    move_kind: str = "hybrid_onboard",
) -> dict:
    """A mailbox moved to Exchange Online. Phones use `endpoint`: mail.contoso.com on a 2016
    front end, or legacy.contoso.com on the 2007 CAS."""
    ex2016 = lab.server("EX2016A", V2016)
    source = ex2016 if source_version == V2016 else lab.server("EXOLD", source_version)
    anna = lab.mailbox("anna", source, "Anna Lidman")
    _iphone(lab, anna, **(device or {}))
    lab.vdir(ex2016, "mail.contoso.com")
    if source is not ex2016:
        lab.vdir(source, "legacy.contoso.com")
    if hybrid:
        lab.export("relationships.csv", hybrid_relationship("contoso.local"))
    lab.import_exports()
    lab.phones_use(endpoint)
    facts = {"device_type": "iPhone", "honours_451": True, "supports_modern_auth": True}
    lab.client_profile("Mail app", **{**facts, **(profile or {})})
    extra = {"start": start} if start else {}
    plan = lab.plan(EXO, anna, options=("--move-kind", move_kind), **extra)
    return plan.device("ApplF17LTTCGFFG8")


# -- one scenario per rule id ---------------------------------------------------------------------


def s_2003_2003(lab: Lab) -> dict:
    ex03 = lab.server("EX03", V2003)
    lab.server("EX03B", V2003)
    kim = lab.mailbox("kakers", ex03, "Kim Akers")
    _pocketpc(lab, kim)
    lab.import_exports()
    return lab.plan("EX03B", kim).device("6F24CAD599A5BF1A690246B8C68FAE8D")


def s_same_server_2003(lab: Lab) -> dict:
    ex03 = lab.server("EX03", V2003)
    kim = lab.mailbox("kakers", ex03, "Kim Akers")
    _pocketpc(lab, kim)
    lab.import_exports()
    plan = lab.plan("EX03", kim, options=("--target-database", "Mailbox Store 2 (EX03)"))
    return plan.device("6F24CAD599A5BF1A690246B8C68FAE8D")


def s_2007_2007(version: str) -> Callable[[Lab], dict]:
    def build(lab: Lab) -> dict:
        ex07a = lab.server("EX07A", version)
        lab.server("EX07B", V2007SP3 if version != V2007RTM else V2007RTM)
        kim = lab.mailbox("kakers", ex07a, "Kim Akers")
        _iphone(lab, kim, eas="12.1", os="iOS 4.3.5 8L1")
        lab.import_exports()
        return lab.plan("EX07B", kim).device("ApplF17LTTCGFFG8")

    return build


def s_2010_same_site(lab: Lab) -> dict:
    ex2010a = lab.server("EX2010A", V2010SP3)
    lab.server("EX2010B", V2010SP3)
    tony = lab.mailbox("tsmith", ex2010a, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.import_exports()
    return lab.plan("EX2010B", tony).device("ApplF17LTTCGFFG8")


def s_same_server_2010(lab: Lab) -> dict:
    ex2010 = lab.server("EX2010A", V2010SP3)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.import_exports()
    plan = lab.plan("EX2010A", tony, options=("--target-database", "MDB02"))
    return plan.device("ApplF17LTTCGFFG8")


def s_2007_2013(lab: Lab) -> dict:
    ex07 = lab.server("EX07", V2007SP3)
    lab.server("EX2013A", V2013CU23)
    kim = lab.mailbox("kakers", ex07, "Kim Akers")
    _iphone(lab, kim, eas="12.1")
    lab.import_exports()
    return lab.plan("EX2013A", kim).device("ApplF17LTTCGFFG8")


def s_xorg(lab: Lab) -> dict:
    ex2016 = lab.server("EX2016A", V2016)
    lab.server("TS2016A", V2016, forest="tailspin.local")
    tony = lab.mailbox("tsmith", ex2016, "Tony Smith")
    _iphone(lab, tony)
    lab.vdir(ex2016, "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    return lab.plan("TS2016A", tony).device("ApplF17LTTCGFFG8")


def s_unsupported(lab: Lab) -> dict:
    ex2010 = lab.server("EX2010A", V2010SP3)
    lab.server("EX2019A", V2019)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.import_exports()
    plan = lab.plan("EX2019A", tony, options=("--allow-unsupported",))
    return plan.device("ApplF17LTTCGFFG8")


def s_cert_expired(lab: Lab) -> dict:
    # The IIS certificate of the host phones use expires four days before the move.
    cert = ("9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com")
    return _to_2016(lab, cert=(*cert, "12/1/2026 11:59:59 PM"))


def s_iwa_off(lab: Lab) -> dict:
    return _from_2003(lab, V2007SP1, iwa=False)


def s_block_legacy(lab: Lab) -> dict:
    ex03 = lab.server("EX03", V2003)
    lab.server("EX07", V2007SP1)
    kim = lab.mailbox("kakers", ex03, "Kim Akers")
    _pocketpc(lab, kim)
    lab.import_exports()
    lab.record_server("EX03", iwa_enabled=True)
    lab.record_server("EX07", block_legacy_mailboxes=True)
    return lab.plan("EX07", kim).device("6F24CAD599A5BF1A690246B8C68FAE8D")


def _legacy_2007_phones(lab: Lab, devices: dict[str, list[str]]) -> None:
    """2007 SP3 mailboxes whose phones (EAS 12.0) still use legacy.contoso.com on the 2007 CAS;
    the 2010 CAS publishes mail.contoso.com; EasMaxDevices 2 from Get-ThrottlingPolicy."""
    ex07 = lab.server("EX07", V2007SP3)
    ex2010 = lab.server("EX2010A", V2010SP3)
    for alias, device_ids in devices.items():
        mailbox = lab.mailbox(alias, ex07, alias.title())
        for device_id in device_ids:
            _iphone(lab, mailbox, device_id, eas="12.0", os="iOS 3.1.3 7E18", model="iPhone2C1")
    lab.vdir(ex07, "legacy.contoso.com")
    lab.vdir(ex2010, "mail.contoso.com")
    lab.export("throttling.csv", throttling_policy("contoso.local", 2))
    lab.import_exports()
    lab.phones_use("legacy.contoso.com")


def s_devlimit(lab: Lab) -> dict:
    """A 2007 -> 2010 move re-creates partnerships of EAS 12.0 phones on the legacy name
    (M-LEGACYNS-2010-403); the user already holds EasMaxDevices (2) partnerships."""
    _legacy_2007_phones(lab, {"kakers": ["ApplF17LTTCGFFG8", "ApplSECOND000001"]})
    return lab.plan("EX2010A", *lab.mailboxes_named("kakers")).device("ApplF17LTTCGFFG8")


def s_policy(lab: Lab) -> dict:
    """A cross-forest move to Tailspin, whose default policy refuses non-provisionable phones;
    an admin recorded that this model cannot comply."""
    ex2016 = lab.server("EX2016A", V2016)
    lab.server("TS2016A", V2016, forest="tailspin.local")
    tony = lab.mailbox("tsmith", ex2016, "Tony Smith")
    _iphone(lab, tony)
    lab.export(
        "tailspin-policies.csv",
        mailbox_policies("tailspin.local", [("Tailspin phones", True, False)]),
    )
    # Contoso's "Default", which the phone applied last, asks for no password.
    lab.export(
        "contoso-policies.csv",
        mailbox_policies("contoso.local", [("Default", True, True)]).replace(
            '"True","True","CN=Default', '"False","False","CN=Default'
        ),
    )
    lab.import_exports()
    lab.client_profile("Old iPhones", device_type="iPhone", can_comply_with_policy=False)
    return lab.plan("TS2016A", tony).device("ApplF17LTTCGFFG8")


@dataclass(frozen=True)
class Scenario:
    rule: str
    outcome: str  # the device's outcome
    build: Callable[[Lab], dict]
    summary: str
    reason_outcome: str = ""  # the rule's own reason; default: the device's outcome
    marks: tuple = ()

    @property
    def own(self) -> str:
        return self.reason_outcome or self.outcome


S = Scenario
SCENARIOS: list[Scenario] = [
    # ---- §2 matrix --------------------------------------------------------------------------
    S("M-2003-2003", "repartner", s_2003_2003, "2003 EX03 → 2003 EX03B (IIS-log device list)"),
    S(
        "M-2003-2007RTM",
        "repartner",
        lambda lab: _from_2003(lab, V2007RTM),
        "2003 → 2007 RTM (AdminDisplayVersion 8.0)",
    ),
    S(
        "M-2003-2007SP1",
        "continues",
        lambda lab: _from_2003(lab, V2007SP1),
        "2003 → 2007 SP1, IWA recorded on the 2003 EAS directory",
    ),
    S("M-2007-2007SP1", "continues", s_2007_2007(V2007SP1), "2007 SP1 → 2007 SP3, one site"),
    S("M-2007-2007RTM", "unknown", s_2007_2007(V2007RTM), "2007 RTM → 2007 RTM, one site"),
    S(
        "M-2003-2010",
        "full_resync",
        lambda lab: _to_2010(lab, V2003),
        "2003 → 2010; phones use mail.contoso.com (2010 CAS, recorded)",
    ),
    S(
        "M-2007-2010",
        "full_resync",
        lambda lab: _to_2010(lab, V2007SP3),
        "2007 → 2010; phones use mail.contoso.com (2010 CAS, recorded)",
    ),
    S(
        "M-LEGACYNS-2010-451",
        "redirect",
        lambda lab: _to_2010(lab, V2007SP3, legacy=True),
        "2007 → 2010; phones use legacy.contoso.com (2007 CAS), EAS 12.1, profile follows 451",
    ),
    S(
        "M-LEGACYNS-2010-403",
        "repartner",
        lambda lab: _to_2010(lab, V2007SP3, eas="12.0", legacy=True),
        "2007 → 2010; phones use legacy.contoso.com, EAS 12.0",
    ),
    S("M-2010-2010-SAME", "continues", s_2010_same_site, "2010 → 2010 in site HQ"),
    S(
        "M-2010-2010-XS-PROXY",
        "continues",
        lambda lab: _cross_site_2010(lab, target_url=None),
        "2010 HQ → Branch; Branch's directory imported without ExternalUrl",
    ),
    S(
        "M-2010-2010-XS-451",
        "redirect",
        _cross_site_2010,
        "2010 HQ → Branch; Branch publishes mail-branch.contoso.com; EAS 14.1",
    ),
    S(
        "M-2010-2010-XS-OLDDEV",
        "blocked",
        lambda lab: _cross_site_2010(lab, version=V2010SP2, eas="12.1", exsetup="14.2.328.5"),
        "as XS-451 with EAS 12.1; front end ExSetup 14.2.328.5 recorded (< SP2 RU6)",
    ),
    S(
        "M-2010-2010-XS-OLDDEV-RU6",
        "continues",
        lambda lab: _cross_site_2010(lab, version=V2010SP2, eas="12.1", exsetup="14.2.342.3"),
        "as XS-451 with EAS 12.1; front end ExSetup 14.2.342.3 recorded (SP2 RU6)",
    ),
    S("M-2010-2013P", "continues", _to_2016, "2010 → 2016; phones use mail.contoso.com on 2016"),
    S("M-2007-2013", "unknown", s_2007_2013, "2007 SP3 → 2013 CU23"),
    S(
        "M-2013P-2013P",
        "continues",
        lambda lab: _modern(lab, "EX2019A", V2019),
        "2016 → 2019 CU15; phones use mail.contoso.com on 2016",
    ),
    S(
        "M-SAMESRV-DB",
        "continues",
        s_same_server_2010,
        "2010 EX2010A → EX2010A --target-database MDB02",
    ),
    S(
        "M-SAMESRV-DB-2003",
        "repartner",
        s_same_server_2003,
        "2003 EX03 → EX03, other store",
    ),
    S(
        "M-HYB-ON-451",
        "redirect",
        _to_exchange_online,
        "2016 → Exchange Online hybrid; relationship imported; EAS 16.1; profile 451 + OAuth",
    ),
    S(
        "M-HYB-ON-NO451",
        "repartner",
        lambda lab: _to_exchange_online(
            lab, V2010SP2, device={"eas": "14.1"}, endpoint="legacy.contoso.com"
        ),
        "2010 SP2 → Exchange Online; phones use legacy.contoso.com on the 2010 SP2 server",
    ),
    S(
        "M-2007-EXO-LEGACY",
        "repartner",
        lambda lab: _to_exchange_online(
            lab, V2007SP3, device={"eas": "12.1"}, endpoint="legacy.contoso.com"
        ),
        "2007 → Exchange Online; phones use legacy.contoso.com (2007 CAS)",
    ),
    S(
        "M-2007-EXO-VIAHYB",
        "redirect",
        lambda lab: _to_exchange_online(lab, V2007SP3, device={"eas": "12.1"}),
        "2007 → Exchange Online; phones use mail.contoso.com on 2016; EAS 12.1, follows 451",
    ),
    S(
        "M-STAGED-EXO",
        "repartner",
        lambda lab: _to_exchange_online(
            lab, V2010SP3, device={"eas": "14.1"}, move_kind="staged_or_cutover_or_imap"
        ),
        "2010 → Exchange Online, --move-kind staged_or_cutover_or_imap",
    ),
    S(
        "M-HYB-OFF",
        "repartner",
        lambda lab: s_hybrid_offboard(lab),
        "tenant's Get-Mailbox (--organisation 'exchange online') → 2016, --move-kind "
        "hybrid_offboard",
    ),
    S("M-XORG", "repartner", s_xorg, "contoso.local 2016 → tailspin.local 2016 (forest from Site)"),
    S(
        "M-SE-AS-2019",
        "continues",
        lambda lab: _modern(lab, "EXSE01", VSE),
        "2016 → SE RTM (15.2.2562.17)",
    ),
    S(
        "M-UNSUPPORTED-PATH",
        "unknown",
        s_unsupported,
        "2010 → 2019, create_batch --allow-unsupported",
    ),
    # ---- §3 cross-cutting -------------------------------------------------------------------
    S(
        "X-CERT",
        "blocked",
        s_cert_expired,
        "2010 → 2016; the IIS certificate of mail.contoso.com expires before the move",
    ),
    S(
        "X-IWA-2003",
        "blocked",
        s_iwa_off,
        "2003 → 2007 SP1; IWA recorded off on EX03's EAS directory",
    ),
    S(
        "X-BLOCKLEGACY",
        "blocked",
        s_block_legacy,
        "2003 → 2007 SP1; BlockLegacyMailboxes recorded on the 2007 CAS",
    ),
    S(
        "X-ABQ",
        "blocked",
        lambda lab: _to_2016(lab, access="Quarantined"),
        "2010 → 2016; DeviceAccessState Quarantined",
    ),
    S(
        "X-ABQ-UPGRADE",
        "full_resync",
        lambda lab: _to_2010(lab, V2007SP3),
        "2007 → 2010 (as M-2007-2010)",
        reason_outcome="continues",
    ),
    S(
        "X-DEVLIMIT",
        "blocked",
        s_devlimit,
        "2007 → 2010, legacy name, EAS 12.0, 2 partnerships; Get-ThrottlingPolicy EasMaxDevices 2",
    ),
    S(
        "X-EASVER-EXO",
        "blocked",
        lambda lab: _to_exchange_online(
            lab,
            device={"eas": "14.1", "os": "Android 6.0.1", "device_type": "SAMSUNGSMG920F"},
            profile={"device_type": "SAMSUNGSMG920F"},
        ),
        "2016 → Exchange Online after 2026-03-01; the phone chose EAS 14.1 where 16.1 is offered",
    ),
    S(
        "X-EASVER-451",
        "repartner",
        lambda lab: _to_exchange_online(
            lab, device={"eas": "12.0", "os": "iOS 3.1.3 7E18"}, start="2026-02-16T22:00"
        ),
        "2016 → Exchange Online before 2026-03-01; hybrid redirect, device EAS 12.0",
    ),
    S(
        "X-AUTH-EXO",
        "blocked",
        lambda lab: _to_exchange_online(lab, profile={"supports_modern_auth": False}),
        "2016 → Exchange Online; client profile records no modern authentication",
    ),
    S(
        "X-URL",
        "repartner",
        lambda lab: _to_2016(lab, retired=True),
        "2010 → 2016; the namespace phones use is recorded as retired",
    ),
    S(
        "X-POLICY",
        "blocked",
        s_policy,
        "contoso → tailspin; Tailspin's default policy refuses non-provisionable phones",
    ),
    S(
        "X-SE-COEXIST",
        "unknown",
        lambda lab: _modern(lab, "EXSE02", VSE_LATER),
        "2016 → SE later than RTM while 2016 is still there",
    ),
]


def s_hybrid_offboard(lab: Lab) -> dict:
    """The tenant's Get-Mailbox (Identity is the name, ServerName a Microsoft server)."""
    lab.server("EX2016A", V2016)
    lab.import_exports()
    tenant_mailbox = export_csv(
        [
            "Identity",
            "Name",
            "DisplayName",
            "Alias",
            "PrimarySmtpAddress",
            "ExchangeGuid",
            "Database",
            "ServerName",
            "RecipientTypeDetails",
        ],
        [
            [
                "Anna Lidman",
                "Anna Lidman",
                "Anna Lidman",
                "anna",
                "anna@contoso.com",
                "3c5d7e9f-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                "EURPR05DG089-db123",
                "am6pr05mb4567",
                "UserMailbox",
            ]
        ],
        "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox",
    )
    lab.export("exo-mailboxes.csv", tenant_mailbox)
    lab.import_exports("--organisation", "exchange online")
    devices = export_csv(
        ["Identity", "DeviceId", "DeviceType", "DeviceOS", "ClientVersion", "ClientType"],
        [
            [
                "Anna Lidman/ExchangeActiveSyncDevices/iPhone§ApplF17LTTCGFFG8",
                "ApplF17LTTCGFFG8",
                "iPhone",
                "iOS 17.5.1 21F90",
                "16.1",
                "EAS",
            ]
        ],
    )
    lab.export("exo-devices.csv", devices)
    lab.import_exports()
    anna = MailboxSpec("anna", lab.servers["EX2016A"], "Anna Lidman")  # only its address
    plan = lab.plan("EX2016A", anna, options=("--move-kind", "hybrid_offboard"))
    return plan.device("ApplF17LTTCGFFG8")


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=s.marks, id=s.rule) for s in SCENARIOS])
def test_the_rule_fires_through_import_batch_and_plan(lab: Lab, scenario: Scenario) -> None:
    device = scenario.build(lab)
    found = [r for r in reasons(device, scenario.rule) if not r["is_warning"]]
    assert found, f"{scenario.rule} not among {rules(device)}: {json.dumps(device, indent=1)}"
    assert {r["outcome"] for r in found} == {scenario.own}, json.dumps(device, indent=1)
    assert device["outcome"] == scenario.outcome, json.dumps(device, indent=1)


def _rule_ids_of_the_domain_notes() -> list[str]:
    if EAS_MOVES.exists():
        text = EAS_MOVES.read_text(encoding="utf-8")
        rows = text.split("## 2.", 1)[1].split("## 4.", 1)[0]
        return re.findall(r"^\| ((?:M|X)-[A-Z0-9-]+) \|", rows, re.MULTILINE)
    return [rule for rule in RULES if rule.startswith(("M-", "X-"))]


def test_every_rule_id_of_eas_moves_is_reached_through_the_real_path() -> None:
    ids = _rule_ids_of_the_domain_notes()
    assert len(ids) >= 40, ids  # the parse found the tables
    covered = [s.rule for s in SCENARIOS]
    assert len(covered) == len(set(covered)), "a rule id has two scenarios"
    missing = [rule for rule in ids if rule not in covered]
    assert not missing, f"rule ids without a real-path scenario: {', '.join(missing)}"


# -- classes of error an independent review found, through the same path -------------------------


def test_source_and_target_in_different_forests_repartner_and_never_continue(lab: Lab) -> None:
    # Select-Object Name,ServerRole,Site,AdminDisplayVersion: the forest comes from Site only.
    # Both sites are called HQ and both servers are 2016: only the forest tells them apart.
    contoso, tailspin = Server("EX2016A", V2016), Server("TS2016A", V2016, forest="tailspin.local")
    lab.export(
        "servers.csv",
        export_csv(
            ["Name", "ServerRole", "Site", "AdminDisplayVersion"],
            [
                [s.name, "Mailbox", f"{s.forest}/Configuration/Sites/HQ", s.version]
                for s in (contoso, tailspin)
            ],
            "Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
        ),
    )
    tony = lab.mailbox("tsmith", contoso, "Tony Smith")
    _iphone(lab, tony)
    lab.vdir(contoso, "mail.contoso.com")
    lab.vdir(tailspin, "mail.tailspin.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")

    device = lab.plan("TS2016A", tony).device("ApplF17LTTCGFFG8")

    assert device["outcome"] == "repartner", device
    assert "continues" not in device["possible"]
    assert verdict(device, "M-XORG")["outcome"] == "repartner"
    assert "M-2013P-2013P" not in rules(device)


@pytest.mark.parametrize("expired", ["namespace phones use", "mailbox server's own directory"])
def test_the_devices_endpoint_is_the_namespace_phones_use_not_the_mailbox_servers_directory(
    lab: Lab, expired: str
) -> None:
    """EX2010A (the mailbox's server) publishes legacy.contoso.com and answers internally as
    ex2010a.contoso.local; phones use mail.contoso.com, answered by EX2016A (recorded)."""
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.vdir(ex2010, "legacy.contoso.com")
    lab.vdir(ex2016, "mail.contoso.com")
    soon = "12/1/2026 11:59:59 PM"  # before the move
    own_expiry = soon if expired == "mailbox server's own directory" else "1/15/2027 11:59:59 PM"
    used_expiry = soon if expired == "namespace phones use" else "1/15/2027 11:59:59 PM"
    lab.cert(ex2010, "0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E", "legacy.contoso.com",
             not_after=own_expiry)  # fmt: skip
    lab.cert(ex2016, "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com",
             not_after=used_expiry)  # fmt: skip
    lab.import_exports()
    lab.phones_use("mail.contoso.com")

    device = lab.plan("EX2016A", tony).device("ApplF17LTTCGFFG8")

    # The 2016 front end proxies for the 2010 mailbox: that needs the endpoint to be 2016.
    assert verdict(device, "M-2010-2013P")["outcome"] == "continues"
    text = json.dumps(device)
    assert "ex2010a.contoso.local" not in text and "legacy.contoso.com" not in text
    if expired == "namespace phones use":
        assert device["outcome"] == "blocked"
        assert "mail.contoso.com" in verdict(device, "X-CERT")["text"]
    else:
        assert device["outcome"] == "continues", text
        assert not [r for r in reasons(device, "X-CERT") if not r["is_warning"]]


@pytest.mark.parametrize("case", ["2010 → 2016", "2010 cross-site"])
def test_importing_more_exports_never_makes_the_answer_worse(lab: Lab, case: str) -> None:
    # First only Get-ExchangeServer, Get-Mailbox and Get-MobileDeviceStatistics.
    source = lab.server("EX2010A", V2010SP3)
    other_site = case == "2010 cross-site"
    target = lab.server(*(("EX2010B", V2010SP3) if other_site else ("EX2016A", V2016)),
                        site="Branch" if other_site else "HQ")  # fmt: skip
    tony = lab.mailbox("tsmith", source, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.import_exports()
    before = lab.plan(target.name, tony).device("ApplF17LTTCGFFG8")

    # The ActiveSync directories, IIS certificates and ActiveSync settings of the same org.
    servers = lab.servers
    if case == "2010 → 2016":
        lab.vdir(servers["EX2010A"], None)
        lab.vdir(servers["EX2016A"], "mail.contoso.com")
        lab.cert(servers["EX2016A"], "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com")
    else:
        lab.vdir(servers["EX2010A"], "mail.contoso.com")
        lab.vdir(servers["EX2010B"], None)
        lab.cert(servers["EX2010A"], "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com")
    lab.export("org-settings.csv", org_settings("contoso.local", "Allow"))
    lab.import_exports()
    after = lab.replan().device("ApplF17LTTCGFFG8")

    assert len(before["possible"]) > 1, before  # the sparse inventory left the answer open
    assert set(after["possible"]) <= set(before["possible"]), (before, after)
    assert after["outcome"] == "continues", after


@pytest.mark.parametrize("imported", [True, False], ids=["imported-without", "never-imported"])
def test_a_target_site_without_external_url_proxies_only_when_its_directory_was_imported(
    lab: Lab, imported: bool
) -> None:
    device = _cross_site_2010(lab, target_url=None, target_vdir=imported)

    if imported:
        assert device["outcome"] == "continues" and device["possible"] == ["continues"]
        assert verdict(device, "M-2010-2010-XS-PROXY")["outcome"] == "continues"
    else:
        assert device["outcome"] == "unknown", device
        assert len(device["possible"]) > 1 and "continues" in device["possible"]
        assert "target-external-url" in device["depends_on"]
        assert "M-2010-2010-XS-PROXY" not in rules(device, warnings=False)


@pytest.mark.parametrize("issuer", ["same issuer", "another issuer"])
def test_a_new_certificate_after_a_redirect_blocks_only_when_the_issuer_changes(
    lab: Lab, issuer: str
) -> None:
    """Cross-site 2010 → 2010: phones follow the 451 from mail.contoso.com (HQ, DigiCert) to
    mail-branch.contoso.com, whose certificate is another one."""
    hq = lab.server("EX2010A", V2010SP3)
    branch = lab.server("EX2010B", V2010SP3, site="Branch")
    tony = lab.mailbox("tsmith", hq, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.vdir(hq, "mail.contoso.com")
    lab.vdir(branch, "mail-branch.contoso.com")
    lab.cert(hq, "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com")
    lab.cert(branch, "51A7C0E2D9B84F6A3C2E1D0F9B8A7C6D5E4F3A2B", "mail-branch.contoso.com",
             issuer=DIGICERT if issuer == "same issuer" else LETSENCRYPT)  # fmt: skip
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    lab.client_profile("iPhone Mail", device_type="iPhone", honours_451=True)

    device = lab.plan("EX2010B", tony).device("ApplF17LTTCGFFG8")

    assert verdict(device, "M-2010-2010-XS-451")["outcome"] == "redirect"
    if issuer == "same issuer":
        assert device["outcome"] == "redirect", device
        assert not [r for r in reasons(device, "X-CERT") if not r["is_warning"]]
    else:
        assert device["outcome"] == "blocked"
        assert "issuer" in verdict(device, "X-CERT")["text"]


def test_a_certificate_renewed_from_the_same_issuer_on_the_same_host_is_not_blocked(
    lab: Lab,
) -> None:
    # Get-ExchangeCertificate lists the old IIS certificate (expiring before the move) and its
    # renewal: the endpoint's certificate is the renewal.
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, eas="14.1")
    lab.vdir(ex2016, "mail.contoso.com")
    lab.cert(ex2016, "0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E", "mail.contoso.com",
             not_after="12/1/2026 11:59:59 PM")  # fmt: skip
    lab.cert(ex2016, "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com",
             not_after="12/1/2027 11:59:59 PM")  # fmt: skip
    lab.import_exports()
    lab.phones_use("mail.contoso.com")

    device = lab.plan("EX2016A", tony).device("ApplF17LTTCGFFG8")

    assert device["outcome"] == "continues", device
    assert not [r for r in reasons(device, "X-CERT") if not r["is_warning"]]


def test_eas_14_1_on_a_2010_mailbox_is_a_missing_capability_not_a_block_for_exchange_online(
    lab: Lab,
) -> None:
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    anna = lab.mailbox("anna", ex2010, "Anna Lidman")
    ben = lab.mailbox("bsmith", ex2016, "Ben Smith")
    lab.device(anna, "SEC1C0E3F4A5B6C7", device_type="SAMSUNGSMG991B", model="SM-G991B",
               os="Android 13.0.0", user_agent="Android-SAMSUNG-SM-G991B/101.10.1",
               eas="14.1")  # fmt: skip
    lab.device(ben, "5eec4e941e0748a264512fd83770d5ac", device_type="Outlook",
               model="Outlook for iOS and Android", os="iOS 17.4",
               user_agent="Outlook-iOS-Android/1.0", eas="16.1", client_type="Outlook")  # fmt: skip
    lab.vdir(ex2016, "mail.contoso.com")
    lab.export("relationships.csv", hybrid_relationship("contoso.local"))
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    samsung = {"device_type": "SAMSUNGSMG991B", "honours_451": True, "supports_modern_auth": True}
    lab.client_profile("Samsung Email", **samsung)

    plan = lab.plan(EXO, anna, ben, options=("--move-kind", "hybrid_onboard"))
    android, outlook = (
        plan.device("SEC1C0E3F4A5B6C7"),
        plan.device("5eec4e941e0748a264512fd83770d5ac"),
    )

    # 14.1 is the most 2010 offers: it does not show the phone lacks 16.1.
    assert android["outcome"] != "blocked", android
    assert reasons(android, "X-EASVER-EXO")
    assert all(
        r["is_warning"] or r["outcome"] == "unknown" for r in reasons(android, "X-EASVER-EXO")
    )
    assert "X-EASVER-EXO" not in rules(outlook) and outlook["outcome"] != "blocked"

    lab.client_profile("Samsung Email", **samsung, max_eas_version="14.1")
    plan = lab.replan()

    android = plan.device("SEC1C0E3F4A5B6C7")
    assert android["outcome"] == "blocked"
    assert verdict(android, "X-EASVER-EXO")["outcome"] == "blocked"
    assert "X-EASVER-EXO" not in rules(plan.device("5eec4e941e0748a264512fd83770d5ac"))


def test_without_hybrid_recorded_an_exchange_online_move_is_a_range_decided_by_hybrid(
    lab: Lab,
) -> None:
    device = _to_exchange_online(lab, hybrid=False)

    assert device["outcome"] == "unknown", device
    assert {"redirect", "repartner"} <= set(device["possible"])
    assert device["depends_on"] == ["hybrid"]


def test_the_device_limit_counts_the_partnerships_the_mailbox_already_has(lab: Lab) -> None:
    _legacy_2007_phones(
        lab, {"kakers": ["ApplKIM000000001", "ApplKIM000000002"], "tsmith": ["ApplTONY00000001"]}
    )

    plan = lab.plan("EX2010A", *lab.mailboxes_named("kakers", "tsmith"))

    for device_id in ("ApplKIM000000001", "ApplKIM000000002"):
        device = plan.device(device_id)
        assert device["outcome"] == "blocked", device
        assert verdict(device, "M-LEGACYNS-2010-403")["outcome"] == "repartner"
        limit = verdict(device, "X-DEVLIMIT")
        assert limit["outcome"] == "blocked" and "2 partnerships" in limit["text"]
    one = plan.device("ApplTONY00000001")
    assert one["outcome"] == "repartner"
    assert "X-DEVLIMIT" not in rules(one, warnings=False)


def test_exchange_2003_has_no_device_limit_even_with_easmaxdevices_imported(lab: Lab) -> None:
    ex03 = lab.server("EX03", V2003)
    lab.server("EX03B", V2003)
    lab.server("EX2010A", V2010SP3)
    kim = lab.mailbox("kakers", ex03, "Kim Akers")
    _pocketpc(lab, kim)
    _pocketpc(lab, kim, "0A1B2C3D4E5F60718293A4B5C6D7E8F9")
    lab.export("throttling.csv", throttling_policy("contoso.local", 2))
    lab.import_exports()

    device = lab.plan("EX03B", kim).device("6F24CAD599A5BF1A690246B8C68FAE8D")

    assert device["outcome"] == "repartner"
    assert "X-DEVLIMIT" not in rules(device)


def test_a_blocked_device_is_told_something_else_than_a_quarantined_one(lab: Lab) -> None:
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    _iphone(lab, tony, "ApplBLOCKED00001", eas="14.1", access="Blocked")
    _iphone(lab, tony, "ApplQUARANTINED1", eas="14.1", access="Quarantined")
    lab.vdir(ex2016, "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")

    plan = lab.plan("EX2016A", tony)
    blocked, quarantined = plan.device("ApplBLOCKED00001"), plan.device("ApplQUARANTINED1")

    assert blocked["outcome"] == quarantined["outcome"] == "blocked"
    assert verdict(blocked, "X-ABQ") and verdict(quarantined, "X-ABQ")
    assert blocked["user_text"] != quarantined["user_text"]
    for device in (blocked, quarantined):
        assert device["user_text"] and "None." not in device["user_text"], device["user_text"]
    assert "approv" in quarantined["user_text"].lower()


# -- where the path itself is wrong (found while writing these) -----------------------------------


def test_create_batch_says_when_a_path_is_unsupported(lab: Lab) -> None:
    ex2010 = lab.server("EX2010A", V2010SP3)
    lab.server("EX2019A", V2019)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    lab.import_exports()

    with pytest.raises(AssertionError, match="M-UNSUPPORTED-PATH"):
        lab.plan("EX2019A", tony)


def test_a_legacy_redirect_checks_the_certificate_of_the_2010_external_url(lab: Lab) -> None:
    ex07 = lab.server("EX07", V2007SP3)
    ex2010 = lab.server("EX2010A", V2010SP3)
    kim = lab.mailbox("kakers", ex07, "Kim Akers")
    _iphone(lab, kim, eas="12.1", os="iOS 4.3.5 8L1", model="iPhone3C1")
    lab.vdir(ex07, "legacy.contoso.com")
    lab.vdir(ex2010, "mail.contoso.com")
    lab.cert(ex07, "0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E", "legacy.contoso.com")
    lab.cert(ex2010, "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com",
             not_after="12/1/2026 11:59:59 PM")  # fmt: skip
    lab.import_exports()
    lab.phones_use("legacy.contoso.com")
    lab.client_profile("iPhone Mail", device_type="iPhone", honours_451=True)

    device = lab.plan("EX2010A", kim).device("ApplF17LTTCGFFG8")

    assert verdict(device, "M-LEGACYNS-2010-451")["outcome"] == "redirect"
    assert device["outcome"] == "blocked", device
    assert "mail.contoso.com" in verdict(device, "X-CERT")["text"]
