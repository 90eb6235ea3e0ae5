"""Turning one exported cell into a typed value: booleans, GUIDs, lists, sizes, addresses."""

from __future__ import annotations

import re
import uuid


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


def check_guid(value: str) -> None:
    """Raise BadValue unless ``value`` is a GUID (cheaper than building the UUID)."""
    if _GUID.fullmatch(value.strip()) is None:
        guid(value)  # raises with the message


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
