"""What a readiness check says: one finding per check and subject."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

VOLATILE_FACTS = {"probed at"}


class Result(StrEnum):
    BLOCKING = "blocking"
    WARNING = "warning"
    UNKNOWN = "unknown"
    OK = "ok"

    @property
    def rank(self) -> int:
        """Blocking first, then warnings, unknowns, and what is fine."""
        return list(Result).index(self)


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one subject (a server, a host name, a domain, a database...).

    facts: the facts it used, as the admin would read them ("IWA on EX2003A": "off").
    missing: for `unknown`, which fact is missing and where to provide it.
    servers / hosts: what the finding is about, so a batch can tell whether it concerns it
    (a finding with neither concerns every batch of the organisation).
    link: a page (URL name and args are the adapter's business: a plain path here).
    """

    check: str
    title: str
    subject: str
    result: Result
    message: str
    admin_action: str = ""
    missing: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    servers: frozenset[int] = field(default_factory=frozenset)
    hosts: frozenset[str] = field(default_factory=frozenset)
    link: str = ""
    confidence: str = ""  # the domain file's [S]/[V]/[I] marks, where the check rests on them

    @property
    def digest(self) -> str:
        """What the finding says, as a hash: an acknowledgement holds while this holds."""
        # When a probe ran is not what the finding says: a new probe of an unchanged
        # certificate keeps its acknowledgement.
        facts = [list(f) for f in self.facts if f[0] not in VOLATILE_FACTS]
        said = [self.check, self.subject, self.result.value, self.message, facts]
        return hashlib.sha256(json.dumps(said).encode()).hexdigest()

    @property
    def is_blocking(self) -> bool:
        return self.result is Result.BLOCKING


def ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.result.rank, f.check, f.subject))
