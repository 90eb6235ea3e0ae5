"""Plain, immutable inputs to the planner: what exsync knows about servers, devices and moves.

Every fact that can be missing defaults to None, meaning "not known". A tri-state bool uses
None for "nobody recorded it", which is never read as False: the planner reports it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "EXCHANGE_ONLINE",
    "AccessLevel",
    "CertificateFacts",
    "DeviceFacts",
    "EndpointFacts",
    "MoveFacts",
    "MoveKind",
    "OrgFacts",
    "ServerFacts",
]


class MoveKind(StrEnum):
    """How the mailbox travels (the move-kind column of the eas-moves.md matrix)."""

    SAME_SERVER_DB = "same_server_db"
    SAME_SITE = "same_site"
    CROSS_SITE = "cross_site"
    CROSS_FOREST = "cross_forest"
    HYBRID_ONBOARD = "hybrid_onboard"
    HYBRID_OFFBOARD = "hybrid_offboard"
    STAGED_OR_CUTOVER_OR_IMAP = "staged_or_cutover_or_imap"


class AccessLevel(StrEnum):
    """Allow/Block/Quarantine state: an org's DefaultAccessLevel or a device's access state."""

    ALLOW = "allow"
    QUARANTINE = "quarantine"
    BLOCK = "block"


@dataclass(frozen=True)
class ServerFacts:
    """One Exchange server (or Exchange Online) as inventoried.

    admin_display_version: `Get-ExchangeServer` AdminDisplayVersion as printed. For 2007/2010
        it shows only the service-pack build.
    exsetup_version: file version of ExSetup.exe; the only way to see a 2007/2010 rollup.
    site: AD site name (2003 servers show it empty from a 2007+ shell).
    organization: Exchange organisation / forest the server belongs to.
    eas_external_url_set: whether the CAS in this server's AD site has an EAS ExternalUrl.
    iwa_on_eas_vdir: 2003 only: Integrated Windows Authentication on Microsoft-Server-ActiveSync.
    block_legacy_mailboxes: 2007 CAS only: BlockLegacyMailboxes in the EAS web.config.
    """

    name: str | None = None
    admin_display_version: str | None = None
    exsetup_version: str | None = None
    site: str | None = None
    organization: str | None = None
    is_exchange_online: bool = False
    eas_external_url_set: bool | None = None
    iwa_on_eas_vdir: bool | None = None
    block_legacy_mailboxes: bool | None = None


EXCHANGE_ONLINE = ServerFacts(name="Exchange Online", is_exchange_online=True)


@dataclass(frozen=True)
class CertificateFacts:
    """A TLS certificate as probed on an endpoint or imported from Get-ExchangeCertificate."""

    thumbprint: str | None = None
    not_after: date | None = None  # a datetime is read as its day
    names: tuple[str, ...] | None = None  # subject CN and SANs; None = not recorded
    issuer: str | None = None
    # True: self-signed (or from a private CA a phone only trusts once a user installed it);
    # None: not recorded.
    self_signed: bool | None = None


@dataclass(frozen=True)
class EndpointFacts:
    """An EAS host name and what answers on it.

    server: the front-end (CAS) server that answers this host name.
    legacy_namespace: True for the legacy.* name kept on the old CAS during a transition.
    certificate: the certificate served on the host; None = never probed.
    reaches_mailbox_after_move: False when the name is retired or will not reach the moved
        mailbox (X-URL).
    """

    host: str | None = None
    server: ServerFacts | None = None
    legacy_namespace: bool | None = None
    certificate: CertificateFacts | None = None
    reaches_mailbox_after_move: bool | None = None


@dataclass(frozen=True)
class DeviceFacts:
    """One partnership: a phone or app syncing one mailbox.

    eas_version: the EAS protocol version as reported (DeviceActiveSyncVersion or ClientVersion):
        the version negotiated with the *source* server, so capped by what that server offers.
    max_eas_version: the highest EAS version the device can speak, when recorded (a client
        profile) or known from its OS; None = not known.
    os: DeviceOS as reported (e.g. "iOS 17.5.1 21F90"); used only to tell what the device can
        speak, never to decide a matrix row.
    client_type: Get-MobileDevice ClientType; "Outlook" / "REST" is Outlook mobile, not EAS.
    endpoint: the host the device is configured for; its certificate is the one it trusts now.
    access_state: the device's current Allow/Block/Quarantine state (Exchange's own spellings,
        "Allowed", "Quarantined", "Blocked", are accepted as well).
    allowed_on_target / blocked_on_target: whether a personal list or device access rule on the
        target allows, or blocks/quarantines, this device (target_access says which).
    """

    device_id: str | None = None
    device_type: str | None = None
    model: str | None = None
    os: str | None = None
    eas_version: str | None = None
    max_eas_version: str | None = None
    client_type: str | None = None
    client_honours_451: bool | None = None
    supports_modern_auth: bool | None = None
    endpoint: EndpointFacts | None = None
    access_state: AccessLevel | None = None
    allowed_on_target: bool | None = None
    blocked_on_target: bool | None = None
    # What keeps it out on the target when blocked_on_target: BLOCK (a personal block or a
    # Block rule) or QUARANTINE (a Quarantine rule); None = not told.
    target_access: AccessLevel | None = None
    # When blocked_on_target: True if the user's own block list (ActiveSyncBlockedDeviceIDs)
    # blocks it there (it wins over their allow list, so pre-approval cannot undo it), False
    # if a Block rule does and the personal lists do not name it; None = not told.
    blocked_personally: bool | None = None
    can_comply_with_target_policy: bool | None = None


@dataclass(frozen=True)
class OrgFacts:
    """The organisation the mailbox lands in (the target org).

    servers: every on-premises Exchange server of the org; None = not inventoried. Used to
        bound which server can be answering a device when its endpoint is not recorded.
    namespaces: the EAS host names known in the source organisation; when nobody recorded
        which one a phone uses, the planner answers under each of them (a range).
    """

    name: str | None = None
    default_access_level: AccessLevel | None = None
    hybrid_configured: bool | None = None
    eas_max_devices: int | None = None
    allow_non_provisionable_devices: bool | None = None
    servers: tuple[ServerFacts, ...] | None = None
    namespaces: tuple[EndpointFacts, ...] | None = None


@dataclass(frozen=True)
class MoveFacts:
    """One planned mailbox move.

    kind: None = derive it from the two servers (see predict.derive_move_kind).
    move_date: planned move date; certificate expiry and the EXO EAS 16.1 floor are judged on it.
    target_endpoint: the namespace published for the target (the target site's ExternalUrl
        host), which a redirected device talks to after the move; None = none known.
    hybrid_configured: the source organisation has an organisation relationship to the
        Exchange Online tenant (HCW ran); None = not recorded.
    hybrid_server: the source organisation's hybrid server (the on-premises server HCW
        configured), where phones' host name moves before an on-boarding (M-2007-EXO-LEGACY);
        None = not recorded.
    target_partnership_count: partnerships the user already has on the target (X-DEVLIMIT).
    target_policy_differs: the target mobile device mailbox policy differs from the current.
    """

    source: ServerFacts
    target: ServerFacts
    kind: MoveKind | None = None
    move_date: date | None = None  # a datetime is read as its day
    target_endpoint: EndpointFacts | None = None
    target_partnership_count: int | None = None
    target_policy_differs: bool | None = None
    hybrid_configured: bool | None = None
    hybrid_server: ServerFacts | None = None
