"""The facts readiness checks read: plain values, filled from the database by the adapter
(migrations_plan/readiness_inventory.py). None means "nobody recorded it", never "no"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class OwaBackup:
    by: str
    at: datetime
    update: str = ""


@dataclass(frozen=True)
class Server:
    id: int
    name: str
    generation: str  # "2003", "2007", "2010", "2013", "2016", "2019", "SE", "EXO" or ""
    forest: str = ""
    serves_client_access: bool = False
    has_mailboxes: bool = False
    iwa_enabled: bool | None = None
    basic_auth_enabled: bool | None = None
    block_legacy_mailboxes: bool | None = None
    eas_vdir_imported: bool = False
    is_sbs: bool | None = None
    third_party_backup: bool | None = None
    owa_backup: OwaBackup | None = None
    page: str = ""  # where its recorded facts are edited


@dataclass(frozen=True)
class Probe:
    """The newest probe of a host: what it was served, or why nothing."""

    outcome: str  # devices.models.ProbeOutcome values
    probed_at: datetime
    error: str = ""
    thumbprint: str = ""
    issuer: str = ""
    subject: str = ""
    not_after: datetime | None = None
    names: tuple[str, ...] = ()
    self_signed: bool | None = None
    trusted: bool | None = None
    covers_host: bool | None = None


@dataclass(frozen=True)
class Endpoint:
    """A published EAS URL exsync knows (a vdir's ExternalUrl or InternalUrl, a namespace, an
    admin's addition), with its newest probe, the newest one that read a certificate, and the
    certificate before that one (to tell a renewal from a change, as long as it is served)."""

    url: str
    host: str
    source: str
    servers: frozenset[int] = field(default_factory=frozenset)
    probe: Probe | None = None  # the newest
    last_read: Probe | None = None  # the newest that read a certificate (may be `probe`)
    previous: Probe | None = None  # the newest before it with another certificate
    devices_use: bool = False  # a namespace phones are recorded to use


@dataclass(frozen=True)
class AcceptedDomain:
    organisation: str
    domain: str
    domain_type: str  # Authoritative, InternalRelay, ExternalRelay
    shared: bool | None = None


@dataclass(frozen=True)
class Database:
    server_id: int | None
    server_name: str
    name: str
    storage_group: str = ""
    circular_logging: bool | None = None
    last_full_backup: datetime | None = None


@dataclass(frozen=True)
class VdirChange:
    """A re-import of an ActiveSync directory changed a setting (a re-created directory loses
    its URLs and authentication): old and new value as the exports printed them."""

    server_id: int | None
    server_name: str
    setting: str  # "ExternalUrl", "InternalUrl", "IWA", "Basic authentication"
    old: str
    new: str
    at: datetime


@dataclass(frozen=True)
class Hygiene:
    """One partnership hygiene list, counted (HYG-STALE, HYG-DUP, HYG-LIMIT, HYG-EASVER)."""

    check: str
    count: int
    mailboxes: int
    detail: str
    link: str = ""
    servers: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Inventory:
    today: date
    servers: tuple[Server, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    domains: tuple[AcceptedDomain, ...] = ()
    domains_imported: bool = False
    databases: tuple[Database, ...] = ()
    databases_imported: bool = False
    vdir_changes: tuple[VdirChange, ...] = ()
    hygiene: tuple[Hygiene, ...] = ()
    expiry_warning_days: int = 30
    links: dict[str, str] = field(default_factory=dict)  # where facts are recorded, by topic
