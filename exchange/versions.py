"""Exchange build numbers and EAS protocol versions: parsing, generations and labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BUILD_2007_SP1",
    "BUILD_2010_SP2_RU6",
    "BUILD_2010_SP3",
    "BUILD_2010_SP3_RU9",
    "BUILD_2013_CU8",
    "BUILD_SE_MIN",
    "EAS_EXO_MIN",
    "EAS_MIN_451",
    "EAS_NO_451_MAX",
    "EAS_OLDEST_SUPPORTED",
    "ExchangeVersion",
    "Generation",
    "describe",
    "generation_of",
    "parse_eas_version",
    "parse_version",
]


@dataclass(frozen=True, order=True)
class ExchangeVersion:
    """A 4-part Exchange build (major.minor.build.revision), compared as a tuple."""

    major: int
    minor: int
    build: int = 0
    revision: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}.{self.revision}"


class Generation(StrEnum):
    EX2003 = "2003"
    EX2007 = "2007"
    EX2010 = "2010"
    EX2013 = "2013"
    EX2016 = "2016"
    EX2019 = "2019"
    SE = "SE"
    EXO = "EXO"


# Thresholds named in eas-moves.md §5. Always compared as 4-part versions, never as floats.
BUILD_2007_SP1 = ExchangeVersion(8, 1, 240, 6)
BUILD_2010_SP2_RU6 = ExchangeVersion(14, 2, 342, 3)
BUILD_2010_SP3 = ExchangeVersion(14, 3, 123, 4)
BUILD_2010_SP3_RU9 = ExchangeVersion(14, 3, 235, 1)
BUILD_2013_CU8 = ExchangeVersion(15, 0, 1076, 9)
BUILD_SE_MIN = ExchangeVersion(15, 2, 2562, 0)

# EAS protocol versions the rules compare against (eas-moves.md §6), as (major, minor).
EAS_OLDEST_SUPPORTED = (2, 0)  # 1.0 was "AirSync" against Exchange 2000: treat as unsupported
EAS_NO_451_MAX = (12, 1)  # KB 2751417: clients at or below 12.1 do not follow HTTP 451
EAS_MIN_451 = (14, 0)  # lowest version treated as 451-capable
EAS_EXO_MIN = (16, 1)  # Exchange Online refuses lower versions from 2026-03-01

# "Version 15.1 (Build 2507.6)" and "Version 6.5 (Build 7638.2: Service Pack 2)". Q-2003-STRINGS:
# the suffix text after the colon varies and is not trusted, only the numbers are.
_ADMIN_DISPLAY = re.compile(
    r"version\s*(\d{1,3})\.(\d{1,3})\s*\(\s*build\s*(\d{1,5})\.(\d{1,5})\s*(?::[^()]*)?\)",
    re.IGNORECASE,
)
# "15.2.1748.10", "v15.1.2507.6", and ExSetup.exe file versions such as "15.01.2507.035".
# Exactly four parts: a 3-part "14.2.342" would compare below 14.2.342.3 and fake a missing
# rollup, so it is refused rather than padded.
_DOTTED = re.compile(r"v?\s*(\d{1,3})\.(\d{1,3})\.(\d{1,5})\.(\d{1,5})", re.IGNORECASE)
_EAS = re.compile(r"(\d{1,2})(?:\.(\d{1,2}))?")


def parse_version(text: str | None) -> ExchangeVersion | None:
    """Parse an AdminDisplayVersion or dotted build; None for anything not recognised.

    The AD schema version ("0.1 (14.0.100.0)", the ExchangeVersion attribute) is not a product
    build and is refused on purpose.
    """
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    for pattern in (_ADMIN_DISPLAY, _DOTTED):
        match = pattern.fullmatch(text)
        if match:
            version = ExchangeVersion(*(int(part) for part in match.groups()))
            # Major 0 is what the schema version prints; no Exchange product has it.
            return version if version.major > 0 else None
    return None


def generation_of(v: ExchangeVersion | None) -> Generation | None:
    """Map a build to its Exchange generation; None when it is not one we know."""
    if v is None:
        return None
    if (v.major, v.minor) == (6, 5):
        return Generation.EX2003
    if v.major == 8:
        return Generation.EX2007
    if v.major == 14:
        return Generation.EX2010
    if v.major == 15:
        if v.minor == 0:
            return Generation.EX2013
        if v.minor == 1:
            return Generation.EX2016
        if v.minor == 2:
            # 2019 CU15 and its SUs stay on 1748.x; SE RTM starts at 2562 (eas-moves.md §5).
            return Generation.SE if v >= BUILD_SE_MIN else Generation.EX2019
    return None


_GENERATION_LABEL = {
    Generation.EX2003: "Exchange 2003",
    Generation.EX2007: "Exchange 2007",
    Generation.EX2010: "Exchange 2010",
    Generation.EX2013: "Exchange 2013",
    Generation.EX2016: "Exchange 2016",
    Generation.EX2019: "Exchange 2019",
    Generation.SE: "Exchange SE",
    Generation.EXO: "Exchange Online",
}

# Releases listed in eas-moves.md §5, keyed on (major, minor, build); the revision is an SU or
# hotfix and does not change the release name. Only builds from that file are named here.
_RELEASES: dict[tuple[int, int, int], str] = {
    (6, 5, 6944): "RTM",
    (6, 5, 7226): "SP1",
    (6, 5, 7638): "SP2",
    (6, 5, 7653): "SP2 (2008-03 hotfix roll-up)",
    (6, 5, 7654): "SP2 (2008-08 hotfix roll-up)",
    (6, 5, 7683): "SP2",  # Q-2003-SP2: Microsoft's table prints 7683 for SP2 (digit swap)
    (8, 0, 685): "RTM",
    (8, 1, 240): "SP1",
    (8, 2, 176): "SP2",
    (8, 3, 83): "SP3",
    (8, 3, 517): "SP3 RU23",
    (14, 0, 639): "RTM",
    (14, 1, 218): "SP1",
    (14, 2, 247): "SP2",
    (14, 2, 342): "SP2 RU6",
    (14, 3, 123): "SP3",
    (14, 3, 235): "SP3 RU9",
    (14, 3, 513): "SP3 RU32",
    (15, 0, 516): "RTM",
    (15, 0, 847): "SP1 (CU4)",
    (15, 0, 1076): "CU8",
    (15, 0, 1497): "CU23",
    (15, 1, 225): "RTM",
    (15, 1, 2507): "CU23",
    (15, 2, 221): "RTM",  # Q-2019-RTM: not re-verified
    (15, 2, 1748): "CU15",
    (15, 2, 2562): "RTM",
}


def describe(v: ExchangeVersion | None) -> str:
    """Human label such as "Exchange 2010 SP3" or "Exchange 2013 CU8 or later (15.0.1156.6)"."""
    generation = generation_of(v)
    if v is None:
        return "unknown version"
    if generation is None:
        return f"unknown version ({v})"
    name = _GENERATION_LABEL[generation]
    key = (v.major, v.minor, v.build)
    if key in _RELEASES:
        return f"{name} {_RELEASES[key]}"
    # Builds between two listed releases (later CUs, rollups via ExSetup) are named after the
    # nearest listed release below them rather than guessed.
    below = [k for k in _RELEASES if k < key and generation_of(ExchangeVersion(*k)) == generation]
    if not below:
        return f"{name} ({v})"
    return f"{name} {_RELEASES[max(below)]} or later ({v})"


def parse_eas_version(text: str | None) -> tuple[int, int] | None:
    """Parse an EAS protocol version ("12.1", "16.1", "14") to (major, minor); None for junk.

    Floats are refused: 12.10 and 12.1 are different versions, which a float cannot tell apart.
    """
    if not isinstance(text, str):
        return None
    match = _EAS.fullmatch(text.strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)
