"""Time zone names: IANA names, and the Windows names Exchange prints, turned into IANA names.

Pure Python (no Django), so notices, importers and forms share one answer. Exchange stores a
mailbox's zone as a Windows time zone id (Get-MailboxRegionalConfiguration TimeZone, e.g.
"W. Europe Standard Time"); exsync stores IANA names ("Europe/Berlin"), which zoneinfo reads.
"""

from __future__ import annotations

from functools import cache, lru_cache
from zoneinfo import available_timezones

# The Windows -> IANA map of Unicode CLDR (windowsZones.xml, territory "001"), as the tzlocal
# package ships it: kept up to date with each CLDR release, and already installed (Celery needs
# tzlocal), so exsync carries no copy of its own to go stale.
from tzlocal.windows_tz import win_tz

# In the system's zone folder but not zones anyone lives in: "localtime" is whatever the
# machine is set to, "Factory" a placeholder for unconfigured machines.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def _iana_names() -> dict[str, str]:
    """Lower-cased IANA name -> the name as the tz database spells it."""
    return {name.lower(): name for name in available_timezones() - _NOT_ZONES}


@cache
def _windows_names() -> dict[str, str]:
    """Lower-cased Windows time zone id -> IANA name, only for zones this machine can load."""
    iana = _iana_names()
    return {
        windows.lower(): iana[name.lower()]
        for windows, name in win_tz.items()
        if name.lower() in iana
    }


@lru_cache(maxsize=1024)  # an export repeats a few dozen values over every mailbox
def zone_name(value: str) -> str | None:
    """The IANA name of an IANA or Windows time zone name (any case), else None.

    >>> zone_name("W. Europe Standard Time"), zone_name("europe/berlin"), zone_name("Mars")
    ('Europe/Berlin', 'Europe/Berlin', None)
    """
    key = (value or "").strip().lower()
    if not key:
        return None
    return _iana_names().get(key) or _windows_names().get(key)


def iana_names() -> list[str]:
    """Every IANA zone name this machine knows, sorted (for a form's suggestions)."""
    return sorted(_iana_names().values())


def resolve(mailbox_tz: str, organisation_tz: str, default: str) -> str:
    """The zone to tell a person times in: the mailbox's own, else its organisation's, else
    `default` (settings.TIME_ZONE); "UTC" only when none of the three is a zone."""
    for candidate in (mailbox_tz, organisation_tz, default):
        name = zone_name(candidate)
        if name is not None:
            return name
    return "UTC"
