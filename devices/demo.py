"""A realistic sample organisation (Northwind Traders) for demos and benchmarks.

Deterministic: the same --mailboxes and --seed give the same rows, so running it twice updates
in place instead of duplicating. Writes in bulk, chunk by chunk, each chunk one transaction.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import (
    EXCHANGE_ONLINE_FOREST,
    AcceptedDomain,
    AccessLevel,
    Certificate,
    ClientProfile,
    ExchangeServer,
    Generation,
    Mailbox,
    MailboxDatabase,
    MobileDevice,
    Namespace,
    Organisation,
    Partnership,
)

DOMAIN = "northwind.example"
AD_DOMAIN = "northwind.local"
ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
HEX = "0123456789abcdef"
LEGACY_DN_SERVERS = "/o=Northwind/ou=Exchange Administrative Group/cn=Configuration/cn=Servers"

CERT_HQ = (
    "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C",
    "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US",
)
CERT_EU = ("51A7C0E2D9B84F6A3C2E1D0F9B8A7C6D5E4F3A2B", "CN=R11, O=Let's Encrypt, C=US")
CERT_BRANCH = (
    "0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E",
    "CN=northwind-EX2010-BR-CA, DC=northwind, DC=local",
)


@dataclass(frozen=True)
class ServerSpec:
    name: str
    generation: str
    build: str
    display: str
    site: str
    roles: str
    weight: int  # share of mailboxes
    databases: tuple[str, ...]
    url: str = ""
    cert: tuple[str, str] | None = None
    cert_days_left: int = 400
    iwa: bool | None = None


SITE_HQ = f"{AD_DOMAIN}/Configuration/Sites/HQ"
SITE_EU = f"{AD_DOMAIN}/Configuration/Sites/Munich"
SITE_BR = f"{AD_DOMAIN}/Configuration/Sites/Leeds"
MB_CAS_HUB = "Mailbox, ClientAccess, HubTransport"

SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "EX2003-01",
        Generation.EX2003,
        "6.5.7638.2",
        "Version 6.5 (Build 7638.2: Service Pack 2)",
        "",
        "None",
        10,
        (
            "First Storage Group\\Mailbox Store (EX2003-01)",
            "Second Storage Group\\Executives (EX2003-01)",
        ),
    ),
    ServerSpec(
        "EX2007-RTM",
        Generation.EX2007,
        "8.0.685.25",
        "Version 8.0 (Build 685.25)",
        SITE_HQ,
        MB_CAS_HUB,
        5,
        ("First Storage Group\\Mailbox Database",),
    ),
    ServerSpec(
        "EX2007-01",
        Generation.EX2007,
        "8.1.240.6",
        "Version 8.1 (Build 240.6)",
        SITE_HQ,
        MB_CAS_HUB,
        15,
        ("First Storage Group\\Mailbox Database", "SG2\\Sales"),
        url="https://legacy.northwind.example/Microsoft-Server-ActiveSync",
        cert=CERT_HQ,
    ),
    ServerSpec(
        "EX2010-01",
        Generation.EX2010,
        "14.3.123.4",
        "Version 14.3 (Build 123.4)",
        SITE_HQ,
        MB_CAS_HUB,
        30,
        ("MDB2010-01", "MDB2010-02", "MDB2010-03"),
        # No ExternalUrl: the HQ namespace (mail.) already moved to the 2016/2019 front ends,
        # which proxy EAS for 2010 mailboxes; legacy.* stays on 2007 for its own users.
    ),
    ServerSpec(
        "EX2010-BR",
        Generation.EX2010,
        "14.3.123.4",
        "Version 14.3 (Build 123.4)",
        SITE_BR,
        MB_CAS_HUB,
        3,
        ("MDB-LEEDS",),
        url="https://leeds.northwind.example/Microsoft-Server-ActiveSync",
        cert=CERT_BRANCH,
        cert_days_left=-20,
    ),
    ServerSpec(
        "EX2016-01",
        Generation.EX2016,
        "15.1.2507.6",
        "Version 15.1 (Build 2507.6)",
        SITE_HQ,
        "Mailbox",
        20,
        ("DB2016-01", "DB2016-02"),
        url="https://mail.northwind.example/Microsoft-Server-ActiveSync",
        cert=CERT_HQ,
    ),
    ServerSpec(
        "EX2019-01",
        Generation.EX2019,
        "15.2.1748.10",
        "Version 15.2 (Build 1748.10)",
        SITE_HQ,
        "Mailbox",
        12,
        ("DB2019-01", "DB2019-02"),
        url="https://mail.northwind.example/Microsoft-Server-ActiveSync",
        cert=CERT_HQ,
    ),
    ServerSpec(
        "EX2019-EU",
        Generation.EX2019,
        "15.2.1748.10",
        "Version 15.2 (Build 1748.10)",
        SITE_EU,
        "Mailbox",
        5,
        ("DB-MUC-01",),
        url="https://mail-eu.northwind.example/Microsoft-Server-ActiveSync",
        cert=CERT_EU,
    ),
)

FIRST = (
    "Anna",
    "Björn",
    "Chloé",
    "Dmitri",
    "Emma",
    "Farid",
    "Grace",
    "Hiroshi",
    "Ingrid",
    "José",
    "Kim",
    "Lars",
    "Mária",
    "Noah",
    "Olga",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
    "Uma",
    "Viktor",
    "Wen",
    "Xavier",
    "Yara",
    "Zoë",
    "花子",
    "Łukasz",
    "Renée",
    "Ahmed",
)
LAST = (
    "Akers",
    "Größer",
    "Müller",
    "O'Neill",
    "Smith",
    "García",
    "Nakamura",
    "Kowalski",
    "Dubois",
    "Jensen",
    "Rossi",
    "Novák",
    "Chen",
    "Okafor",
    "Silva",
    "Hansen",
    "Yılmaz",
    "佐々木",
    "Brown",
    "Van der Berg",
    "Ivanova",
    "Kaur",
    "Lee",
    "Murphy",
    "Nguyen",
    "Petrov",
    "Schmidt",
    "Taylor",
)
DEPARTMENTS = (
    "Sales",
    "Finance",
    "Engineering",
    "Operations",
    "Legal",
    "Support",
    "Marketing",
    "HR",
)

ASCII_FOLD = str.maketrans(
    {
        "ö": "oe",
        "ü": "ue",
        "ä": "ae",
        "ß": "ss",
        "é": "e",
        "è": "e",
        "ø": "o",
        "á": "a",
        "ó": "o",
        "ł": "l",
        "Ł": "L",
        "ë": "e",
        "ı": "i",
        "'": "",
        " ": "",
    }
)


@dataclass(frozen=True)
class DeviceProfile:
    device_type: str
    model: str
    os: str
    user_agent: str
    eas_version: str
    prefix: str
    client_type: str = "EAS"
    weight: int = 10


# Profiles by the era of the mailbox's server: old servers carry old phones.
PROFILES_OLD = (
    DeviceProfile(
        "PocketPC",
        "HTC Touch Pro2",
        "Windows CE 5.2.21869",
        "MSFT-PPC/5.2.5082",
        "12.1",
        "",
        weight=30,
    ),
    DeviceProfile("NokiaE72", "E72-1", "S60 3.2", "NokiaE72-1/3.00(0)", "12.1", "NOKIA", weight=15),
    DeviceProfile(
        "iPhone", "iPhone2C1", "iOS 3.1.3 7E18", "Apple-iPhone2C1/705.18", "12.1", "Appl", weight=25
    ),
    DeviceProfile(
        "iPhone",
        "iPhone9C1",
        "iOS 12.1 16B92",
        "Apple-iPhone9C1/1602.92",
        "16.1",
        "Appl",
        weight=15,
    ),
    DeviceProfile(
        "SAMSUNGSMG991B",
        "SM-G991B",
        "Android 13.0.0",
        "Android-SAMSUNG-SM-G991B/101.10.1",
        "14.1",
        "SEC",
        weight=15,
    ),
)
PROFILES_NEW = (
    DeviceProfile(
        "iPhone",
        "iPhone15C2",
        "iOS 17.5.1 21F90",
        "Apple-iPhone15C2/2106.90",
        "16.1",
        "Appl",
        weight=35,
    ),
    DeviceProfile(
        "iPad", "iPad13C1", "iOS 16.7.2 20H115", "Apple-iPad13C1/2008.115", "16.1", "Appl", weight=8
    ),
    DeviceProfile(
        "SAMSUNGSMS911B",
        "SM-S911B",
        "Android 14.0.0",
        "Android-SAMSUNG-SM-S911B/101.10.1",
        "16.1",
        "SEC",
        weight=15,
    ),
    DeviceProfile(
        "Android", "Pixel 7", "Android 14", "Android-Mail/2023.10.01", "14.1", "android", weight=8
    ),
    DeviceProfile(
        "Outlook",
        "Outlook for iOS and Android",
        "iOS 17.4",
        "Outlook-iOS-Android/1.0",
        "16.1",
        "",
        client_type="Outlook",
        weight=25,
    ),
    DeviceProfile(
        "iPhone", "iPhone9C1", "iOS 12.1 16B92", "Apple-iPhone9C1/1602.92", "16.1", "Appl", weight=5
    ),
    DeviceProfile(
        "WP8", "Lumia 950", "Windows Phone 10.0.14393", "MSFT-WP/10.0.14393", "14.0", "", weight=4
    ),
)
DEVICES_PER_MAILBOX = (0, 1, 2, 3)
DEVICES_PER_MAILBOX_WEIGHTS = (5, 25, 35, 35)  # mean 2.0 partnerships a mailbox


@dataclass
class SeedResult:
    servers: int = 0
    mailboxes: int = 0
    devices: int = 0
    partnerships: int = 0
    seconds: float = 0.0


def seed_servers(*, now: datetime) -> dict[str, ExchangeServer]:
    servers: dict[str, ExchangeServer] = {}
    for spec in SERVERS:
        thumb, issuer = spec.cert or ("", "")
        server, _ = ExchangeServer.objects.update_or_create(
            name=spec.name,
            defaults={
                "fqdn": f"{spec.name.lower()}.{AD_DOMAIN}",
                "roles": spec.roles,
                "site": spec.site,
                "edition": "Enterprise",
                "admin_display_version": spec.display,
                "generation": spec.generation,
                "build": spec.build,
                "legacy_dn": f"{LEGACY_DN_SERVERS}/cn={spec.name}",
                "eas_external_url": spec.url,
                "eas_internal_url": spec.url.replace("https://", "https://int-")
                if spec.url
                else "",
                "cert_thumbprint": thumb,
                "cert_subject": f"CN={spec.url.split('/')[2]}" if spec.url else "",
                "cert_issuer": issuer,
                "cert_not_after": now + timedelta(days=spec.cert_days_left) if spec.cert else None,
                "iwa_enabled": spec.iwa,
            },
        )
        servers[spec.name] = server
    seed_organisation(servers=servers, now=now)
    return servers


# Host names phones use (Organisation -> Namespaces): mail.* is answered by the 2016/2019 front
# ends, which proxy for older mailboxes; legacy.* stays on the 2007 CAS for its own users; the
# Leeds branch publishes its own name; mail-eu.* is published for Munich but phones were never
# configured with it. Which name the 2003 and 2007 RTM users' phones use is left unrecorded, so
# the demo shows open questions and ranges.
NAMESPACES = (
    ("mail.northwind.example", ("EX2016-01", "EX2019-01"), False, True, ""),
    ("legacy.northwind.example", ("EX2007-01",), True, False, ""),
    ("leeds.northwind.example", ("EX2010-BR",), False, True, SITE_BR),
    ("mail-eu.northwind.example", ("EX2019-EU",), False, False, ""),
)


def seed_organisation(*, servers: dict[str, ExchangeServer], now: datetime) -> None:
    """The organisation's facts: forest, DefaultAccessLevel, namespaces, certificates as
    Get-ExchangeCertificate would list them, a few client profiles, and Exchange Online as a
    target. Hybrid is left unrecorded (a question on every Exchange Online batch)."""
    Organisation.objects.update_or_create(
        forest=AD_DOMAIN,
        defaults={"name": "Northwind Traders", "default_access_level": AccessLevel.ALLOW},
    )
    Organisation.objects.update_or_create(
        forest=EXCHANGE_ONLINE_FOREST,
        defaults={
            "name": "Exchange Online (northwind.onmicrosoft.com)",
            "is_exchange_online": True,
        },
    )
    ExchangeServer.objects.update_or_create(
        name="Exchange Online", defaults={"generation": Generation.EXO, "roles": ""}
    )
    for server in servers.values():
        server.forest, server.forest_source = AD_DOMAIN, "Site" if server.site else "Fqdn"
        # Every 2007+ ActiveSync directory was imported (2003 has none to export).
        server.eas_vdir_imported = server.generation != Generation.EX2003
        server.save(update_fields=["forest", "forest_source", "eas_vdir_imported"])
        if server.cert_thumbprint:
            host = server.eas_external_url.split("/")[2]
            Certificate.objects.update_or_create(
                thumbprint=server.cert_thumbprint,
                defaults={
                    "server": server,
                    "subject": f"CN={host}",
                    "issuer": server.cert_issuer,
                    "not_after": server.cert_not_after,
                    "services": "IIS, SMTP",
                    "domains": "\n".join(
                        sorted({host, f"autodiscover.{DOMAIN}", f"mail.{DOMAIN}"})
                        if "EX2010-BR" not in server.name
                        else {host}
                    ),
                    "is_self_signed": "EX2010-BR" in server.name,
                },
            )
    for host, answering, legacy, phones_use, sites in NAMESPACES:
        namespace, _ = Namespace.objects.update_or_create(
            host=host,
            defaults={
                "is_legacy": legacy,
                "devices_use": phones_use,
                "sites": sites,
                "imported": True,
            },
        )
        namespace.servers.set([servers[name] for name in answering])
    for name, defaults in CLIENT_PROFILES:
        ClientProfile.objects.update_or_create(name=name, defaults=defaults)
    seed_readiness_facts(servers=servers, now=now)


# Readiness facts (issue 15), as Get-AcceptedDomain and Get-StorageGroup / Get-MailboxDatabase
# -Status would list them: one shared domain still Authoritative (a blocking O-SAS finding the
# sample batches show), one shared domain nobody recorded, and 2007 storage groups with
# circular logging on where nobody recorded the backup product.
ACCEPTED_DOMAINS = (
    (DOMAIN, "Authoritative", True, False),
    ("northwind-traders.example", "Authoritative", False, True),
    ("nwt-partners.example", "InternalRelay", False, None),
)


def seed_readiness_facts(*, servers: dict[str, ExchangeServer], now: datetime) -> None:
    organisation = Organisation.objects.get(forest=AD_DOMAIN)
    for domain, domain_type, default, shared in ACCEPTED_DOMAINS:
        AcceptedDomain.objects.update_or_create(
            organisation=organisation,
            domain_name=domain,
            defaults={
                "domain_type": domain_type,
                "is_default": default,
                "shared_with_other_system": shared,
            },
        )
    for spec in SERVERS:
        if spec.generation in (Generation.EX2003, Generation.EXO):
            continue
        server = servers[spec.name]
        for store in spec.databases:
            group, _, name = store.rpartition("\\")
            MailboxDatabase.objects.update_or_create(
                server=server,
                storage_group=group,
                name=name,
                defaults={
                    # 2007 storage groups as SBS-era defaults left them; later ones turned off.
                    "circular_logging_enabled": spec.generation == Generation.EX2007,
                    "last_full_backup": now - timedelta(days=1),
                    "imported_at": now,
                },
            )


CLIENT_PROFILES = (
    (
        "Outlook for iOS and Android",
        {"device_type": "Outlook", "supports_modern_auth": True, "honours_451": True},
    ),
    (
        "iOS Mail on iOS 10 and later",
        {
            "device_type": "iPhone",
            "os_prefix": "iOS 1",
            "max_eas_version": "16.1",
            "supports_modern_auth": True,
            "honours_451": True,
            "can_comply_with_policy": True,
        },
    ),
)


def _pick_device_profile(rng: random.Random, generation: str) -> DeviceProfile:
    pool = PROFILES_OLD if generation in (Generation.EX2003, Generation.EX2007) else PROFILES_NEW
    return rng.choices(pool, weights=[p.weight for p in pool])[0]


def _device_id(rng: random.Random, profile: DeviceProfile) -> str:
    if profile.device_type == "Outlook" or not profile.prefix:
        return "".join(rng.choices(HEX, k=32))
    return profile.prefix + "".join(rng.choices(ALNUM, k=16 - len(profile.prefix)))


def _mailbox_rows(index: int, seed: int, servers: dict[str, ExchangeServer], now: datetime):
    """Rows for one mailbox: (Mailbox, [(MobileDevice, Partnership-fields)])."""
    rng = random.Random(seed * 1_000_003 + index)
    spec = rng.choices(SERVERS, weights=[s.weight for s in SERVERS])[0]
    server = servers[spec.name]
    first, last = rng.choice(FIRST), rng.choice(LAST)
    alias = f"{first[0]}{last}".translate(ASCII_FOLD).lower()
    alias = "".join(ch for ch in alias if ch.isascii() and ch.isalnum()) or "user"
    alias = f"{alias}{index}"
    dept = rng.choice(DEPARTMENTS)
    ou = f"{AD_DOMAIN}/{'Europe/Munich' if spec.name == 'EX2019-EU' else 'Users'}/{dept}"
    cn = f"{first} {last} ({alias})"
    database = rng.choice(spec.databases)
    if spec.generation in (Generation.EX2003, Generation.EX2007):
        database = f"{spec.name}\\{database}"  # 2003/2007 database names carry the server
    mailbox = Mailbox(
        identity=f"{ou}/{cn}",
        identity_key=f"{ou}/{cn}".lower(),
        name=cn,
        display_name=f"{last}, {first}",
        alias=alias,
        primary_smtp_address=f"{alias}@{DOMAIN}",
        user_principal_name=f"{alias}@{AD_DOMAIN}",
        sam_account_name=alias[:20],
        exchange_guid=uuid.UUID(int=rng.getrandbits(128), version=4),
        database=database,
        server=server,
        organizational_unit=ou,
        recipient_type="LegacyMailbox" if spec.generation == Generation.EX2003 else "UserMailbox",
        legacy_dn=f"/o=Northwind/ou=First Administrative Group/cn=Recipients/cn={alias}",
    )
    devices = []
    count = rng.choices(DEVICES_PER_MAILBOX, weights=DEVICES_PER_MAILBOX_WEIGHTS)[0]
    for _ in range(count):
        profile = _pick_device_profile(rng, spec.generation)
        device_id = _device_id(rng, profile)
        stale = rng.random() < 0.08
        last_sync = now - timedelta(
            days=rng.uniform(30, 400) if stale else rng.uniform(0, 3), minutes=rng.randint(0, 600)
        )
        access = rng.choices(("Allowed", "Quarantined", "Blocked"), weights=(96, 3, 1))[0]
        device = MobileDevice(
            device_id=device_id,
            device_type=profile.device_type,
            model=profile.model,
            os=profile.os,
            user_agent=profile.user_agent,
            friendly_name=f"{first}'s {profile.model}" if rng.random() < 0.6 else "",
            imei="".join(rng.choices("0123456789", k=15))
            if profile.device_type != "Outlook"
            else "",
        )
        leaf = (
            f"REST§Outlook§{device_id}"
            if profile.client_type == "Outlook"
            else f"{profile.device_type}§{device_id}"
        )
        partnership = {
            "identity": f"{mailbox.identity}/ExchangeActiveSyncDevices/{leaf}",
            "client_type": profile.client_type,
            # Exchange 2003 keeps no per-device statistics: the protocol version is not known.
            "eas_version": "" if spec.generation == Generation.EX2003 else profile.eas_version,
            "first_sync_at": last_sync - timedelta(days=rng.uniform(20, 1500)),
            "last_success_sync_at": last_sync,
            "last_sync_attempt_at": last_sync + timedelta(minutes=rng.choice((0, 0, 0, 5, 90))),
            "access_state": access,
            "access_state_reason": {
                "Allowed": "Global",
                "Quarantined": "Global",
                "Blocked": "Individual",
            }[access],
            "policy_applied": "Default",
            "policy_status": "AppliedInFull",
        }
        devices.append((device, partnership))
    return mailbox, devices


def _chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(total, start + size))


MAILBOX_FIELDS = [
    f.name
    for f in Mailbox._meta.concrete_fields
    if f.name not in ("id", "created_at", "primary_smtp_address")
]
DEVICE_FIELDS = [
    f.name
    for f in MobileDevice._meta.concrete_fields
    if f.name not in ("id", "created_at", "device_id")
]
PARTNERSHIP_FIELDS = [
    f.name
    for f in Partnership._meta.concrete_fields
    if f.name not in ("id", "created_at", "device", "mailbox")
]


def seed_demo(
    *,
    mailboxes: int,
    seed: int = 2009,
    chunk_size: int = 5000,
    progress: Callable[[SeedResult, int], None] | None = None,
) -> SeedResult:
    """Create or refresh the sample organisation with `mailboxes` mailboxes."""
    started = time.perf_counter()
    now = timezone.now().replace(microsecond=0)
    result = SeedResult()
    servers = seed_servers(now=now)
    result.servers = len(servers)

    for chunk in _chunks(mailboxes, chunk_size):
        rows = [_mailbox_rows(i, seed, servers, now) for i in chunk]
        with transaction.atomic():
            boxes = Mailbox.objects.bulk_create(
                [mb for mb, _ in rows],
                update_conflicts=True,
                unique_fields=["primary_smtp_address"],
                update_fields=MAILBOX_FIELDS,
            )
            devices = {}
            for _, pairs in rows:
                for device, _fields in pairs:
                    devices[device.device_id] = device
            created = MobileDevice.objects.bulk_create(
                list(devices.values()),
                update_conflicts=True,
                unique_fields=["device_id"],
                update_fields=DEVICE_FIELDS,
            )
            by_id = {d.device_id: d for d in created}
            partnerships = []
            for box, (_, pairs) in zip(boxes, rows, strict=True):
                for device, fields in pairs:
                    partnerships.append(
                        Partnership(device=by_id[device.device_id], mailbox=box, **fields)
                    )
            # A few people read a second mailbox (a team mailbox) on the same phone:
            # one device, two partnerships.
            for n, (box, (_, pairs)) in enumerate(zip(boxes, rows, strict=True)):
                if n and pairs and n % 97 == 0:
                    device, fields = pairs[0]
                    neighbour = boxes[n - 1]
                    identity = fields["identity"].replace(box.identity, neighbour.identity)
                    partnerships.append(
                        Partnership(
                            device=by_id[device.device_id],
                            mailbox=neighbour,
                            **{**fields, "identity": identity},
                        )
                    )
            Partnership.objects.bulk_create(
                partnerships,
                update_conflicts=True,
                unique_fields=["device", "mailbox"],
                update_fields=PARTNERSHIP_FIELDS,
            )
        result.mailboxes += len(boxes)
        result.devices += len(created)
        result.partnerships += len(partnerships)
        if progress:
            progress(result, mailboxes)
    result.seconds = time.perf_counter() - started
    return result
