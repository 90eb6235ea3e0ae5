"""Turning one exported cell into a typed value: booleans, GUIDs, lists, sizes, addresses."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

from ..timezones import zone_name


class BadValue(ValueError):
    """A cell that cannot be what its column holds; the message says what was expected."""


def boolean(value: str) -> bool:
    """``True``/``False`` in any case (PowerShell never localises them)."""
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise BadValue(f"{value!r} is not True or False")


def guid(value: str) -> uuid.UUID:
    """A GUID with or without braces (WMI writes ``{...}``)."""
    try:
        return uuid.UUID(value.strip().strip("{}"))
    except ValueError:
        example = "5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92"
        raise BadValue(f"{value!r} is not a GUID (like {example})") from None


_GUID = re.compile(r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?")


def check_guid(value: str) -> str:
    """Raise BadValue unless ``value`` is a GUID (cheaper than building the UUID). Returns the
    text, so a first-pass row still shows that the column has a value."""
    if _GUID.fullmatch(value.strip()) is None:
        guid(value)  # raises with the message
    return value.strip()


_TYPE_NAME = re.compile(r"(?:System|Microsoft)\.[\w.`\[\],+ ]+")


def is_type_name(value: str) -> bool:
    """True for a list's .NET type name, which Export-Csv writes instead of the list (§1.7)."""
    return value.startswith(("System.", "Microsoft.")) and _TYPE_NAME.fullmatch(value) is not None


def multi_valued(value: str) -> list[str] | None:
    """A list the admin joined (``;``, ``,`` or space separated); None for a type name."""
    value = value.strip()
    if is_type_name(value):
        return None
    for separator in (";", ","):
        if separator in value:
            return [part.strip() for part in value.split(separator) if part.strip()]
    return value.split()


def flags(value: str) -> list[str]:
    """An enum of flags as .NET prints it, ``Mailbox, ClientAccess``; ``None`` is the empty set."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return [] if parts == ["None"] else parts


_SIZE = re.compile(r"\(([\d.,\u00a0\u202f' ]+) bytes\)")


def byte_size(value: str) -> int | None:
    """``1.237 GB (1,328,218,112 bytes)`` in any culture's grouping -> 1328218112.

    ``Unlimited`` (a quota without limit) -> None.
    """
    value = value.strip()
    if value.isdigit():
        return int(value)
    if value.lower() == "unlimited":
        return None
    match = _SIZE.search(value)
    digits = "".join(ch for ch in match.group(1) if ch.isdigit()) if match else ""
    if not digits:
        raise BadValue(f"{value!r} is not a size like '1.237 GB (1,328,218,112 bytes)'")
    return int(digits)


def integer(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise BadValue(f"{value!r} is not a whole number") from None


_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+")
_DOMAIN = re.compile(r"[A-Za-z0-9\-\u0080-\U0010ffff]+(?:\.[A-Za-z0-9\-\u0080-\U0010ffff]+)*")


def smtp_address(value: str) -> str:
    """An SMTP address, lower-cased (Exchange compares them case-insensitively)."""
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if not (at and _LOCAL.fullmatch(local) and _DOMAIN.fullmatch(domain)):
        raise BadValue(f"{value!r} is not an e-mail address like anna@contoso.com")
    return address.lower()


_HEX = frozenset("0123456789ABCDEF")


def thumbprint(value: str) -> str:
    """A certificate thumbprint: 40 hex digits, returned upper-case (spaces dropped)."""
    digits = value.replace(" ", "").upper()
    if len(digits) != 40 or not _HEX.issuperset(digits):
        raise BadValue(f"{value!r} is not a certificate thumbprint (40 hex digits)")
    return digits


# '?' inside a word (Bj?rn, Gr??er), opening one (?rjan) or making one up (??? ??); not the
# question mark that ends a sentence ("Who? Me").
_DAMAGE = re.compile(r"[^\W\d_]\?+[^\W\d_]|(?:^|\s)\?+(?:[^\W\d_]|\s|$)")


def looks_ascii_damaged(value: str) -> bool:
    """True for ``Bj?rn Gr??er`` or ``??? ??``: an ASCII export replaced letters by '?'."""
    return "?" in value and _DAMAGE.search(value) is not None


def time_zone(value: str) -> str:
    """Get-MailboxRegionalConfiguration TimeZone (a Windows time zone id, as Exchange keeps it)
    or an IANA name -> the IANA name, e.g. ``W. Europe Standard Time`` -> ``Europe/Berlin``."""
    name = zone_name(value)
    if name is None:
        raise BadValue(
            f"{value!r} is not a time zone exsync knows; expected a Windows time zone name as "
            "Exchange prints it (e.g. 'W. Europe Standard Time') or an IANA name "
            "(e.g. 'Europe/Berlin')"
        )
    return name


# -- organisation-level values ------------------------------------------------------------------


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """One of ``allowed`` in any case, returned as Exchange spells it (enums are never localised)."""
    lowered = value.strip().lower()
    for option in allowed:
        if option.lower() == lowered:
            return option
    raise BadValue(f"{value!r} is not {what} ({', '.join(allowed)})")


ACCESS_LEVELS = ("Allow", "Quarantine", "Block")
DOMAIN_TYPES = ("Authoritative", "InternalRelay", "ExternalRelay")
THROTTLING_SCOPES = ("Global", "Organization", "Regular")


def access_level(value: str) -> str:
    """DefaultAccessLevel of Get-ActiveSyncOrganizationSettings."""
    return _choice(value, ACCESS_LEVELS, "an access level")


# XMSWLHeader is a 2013+ characteristic (the X-MS-WL header); exsync stores it, matches it never.
DEVICE_CHARACTERISTICS = ("DeviceType", "DeviceModel", "DeviceOS", "UserAgent", "XMSWLHeader")


def device_characteristic(value: str) -> str:
    """Characteristic of Get-ActiveSyncDeviceAccessRule."""
    return _choice(value, DEVICE_CHARACTERISTICS, "a device access rule characteristic")


def domain_type(value: str) -> str:
    """DomainType of Get-AcceptedDomain."""
    return _choice(value, DOMAIN_TYPES, "a domain type")


def throttling_scope(value: str) -> str:
    """ThrottlingPolicyScope of Get-ThrottlingPolicy (2013+)."""
    return _choice(value, THROTTLING_SCOPES, "a throttling policy scope")


UNLIMITED = "Unlimited"


def integer_or_unlimited(value: str) -> int | str:
    """A limit as Exchange prints it: a whole number, or ``Unlimited`` (returned as UNLIMITED)."""
    if value.strip().lower() == "unlimited":
        return UNLIMITED
    try:
        number = int(value.strip())
    except ValueError:
        raise BadValue(f"{value!r} is not a whole number or Unlimited") from None
    if number < 0:
        raise BadValue(f"{value!r} is not a whole number or Unlimited")
    return number


_LABEL = re.compile(r"(?!-)[a-z0-9\-\u0080-\U0010ffff_]{1,63}(?<!-)")


def _is_domain(name: str) -> bool:
    labels = name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and len(name) <= 253


def domain_name(value: str) -> str:
    """An SMTP domain (``contoso.com``, ``*.contoso.com``), lower-cased."""
    name = value.strip().lower().rstrip(".")
    bare = name.removeprefix("*.")
    if not bare or not _is_domain(bare):
        raise BadValue(f"{value!r} is not a domain name like contoso.com")
    return name


def url_host(value: str) -> str:
    """The host of a URL (``https://mail.contoso.com/Microsoft-Server-ActiveSync``), lower-cased."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme.lower() not in ("http", "https") or not _is_domain(host):
        raise BadValue(
            f"{value!r} is not a URL like https://mail.contoso.com/Microsoft-Server-ActiveSync"
        )
    return host


# -- which forest an object belongs to --------------------------------------------------------


def forest_from_site(site: str) -> str | None:
    """``tailspin.local/Configuration/Sites/HQ`` -> ``tailspin.local``.

    Site is the canonical name of an object in the configuration naming context, whose first
    part is the DNS name of the forest root domain.
    """
    head, slash, _ = site.strip().partition("/")
    head = head.strip().lower().rstrip(".")
    if not slash or not head or not _is_domain(head):
        return None
    return head


def _dn_parts(dn: str) -> list[tuple[str, str]]:
    """(attribute lower-cased, value) of each RDN; honours ``\\,`` escapes."""
    parts: list[tuple[str, str]] = []
    current: list[str] = []
    escaped = False
    for ch in dn:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    result = []
    for part in parts:
        attribute, equals, text = part.partition("=")
        if equals:
            result.append((attribute.strip().lower(), text.strip()))
    return result


def forest_from_dn(dn: str) -> tuple[str | None, bool]:
    """(forest root domain, is Exchange Online) of a DistinguishedName.

    Exchange servers and organisation settings live in the configuration naming context
    (``…,CN=Configuration,DC=contoso,DC=local``), whose DC= parts are the forest root:
    ``contoso.local``. Exchange Online objects sit under ``DC=…,DC=prod,DC=outlook,DC=com``
    with the tenant as ``OU=contoso.onmicrosoft.com`` -> (None, True). A DN without DC= parts
    -> (None, False).
    """
    parts = _dn_parts(dn)
    labels = [value.lower() for attribute, value in parts if attribute == "dc" and value]
    domain = ".".join(labels)
    tenant = any(
        attribute == "ou" and (".onmicrosoft." in value.lower() or ".onmschina." in value.lower())
        for attribute, value in parts
    )
    cloud = domain == "outlook.com" or domain.endswith((".outlook.com", ".outlook.cn"))
    if tenant or cloud:
        return None, True
    if not domain or not _is_domain(domain):
        return None, False
    return domain, False


def forest_from_fqdn(fqdn: str) -> str | None:
    """``ex1.contoso.local`` -> ``contoso.local``: the server's AD domain, which is the forest
    root only in a single-domain forest (a server in ``emea.contoso.local`` gives the child)."""
    _, dot, domain = fqdn.strip().lower().rstrip(".").partition(".")
    if not dot or not domain or not _is_domain(domain):
        return None
    return domain
