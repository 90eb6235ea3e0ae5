"""IIS W3C logs of an Exchange 2003 front end: the ActiveSync devices they show.

Exchange 2003 keeps no device objects a cmdlet could export (formats.md §3); its front end's
IIS log has one line per ActiveSync request with User, DeviceId and DeviceType in the query
string. :func:`open_iis_log` reads the log once as a stream of lines, reports every problem as
FILE:LINE, and groups the requests per (user, DeviceId); :meth:`IisLog.rows` hands out one row
per device. Only the groups are kept, never the lines, so memory grows with the number of
devices, not with the size of the log.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import unquote, unquote_plus

from .export import ExportHasProblems
from .problems import MAX_REPORTED, Findings, ReportsFindings
from .reader import _Opener, _read_head

KIND = "iis_log"
EAS_PATH = "/microsoft-server-activesync"
PROGRESS_EVERY = 10_000

Progress = Callable[[int], None]

# The fields exsync reads; a #Fields line without the first four cannot show a device.
DATE, TIME, STEM, QUERY = "date", "time", "cs-uri-stem", "cs-uri-query"
AGENT, STATUS = "cs(user-agent)", "sc-status"

# MS-ASHTTP lets newer clients send the whole query string base64-encoded (no name=value).
_BASE64 = re.compile(r"[A-Za-z0-9+/]+=*")
_BASE64_MIN = 12  # version, command, locale, DeviceId and DeviceType take at least 9 bytes
_MAX_LINE = 1 << 20  # IIS lines are a few KB; a longer one is not a log line
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def is_iis_log(head: bytes) -> bool:
    """True when a file starts like a W3C extended log IIS wrote: ``#Software: Microsoft
    Internet Information Services`` or a ``#Fields:`` line among its leading directives."""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    lines = head[:4096].decode("latin-1").splitlines()
    for line in lines[:10]:
        if not line.strip():
            continue
        if not line.startswith("#"):
            return False
        lowered = line.lower()
        if lowered.startswith(("#software: microsoft internet information services", "#fields:")):
            return True
    return False


def path_is_iis_log(path: Any) -> bool:
    """:func:`is_iis_log` of the first bytes of the file at ``path``."""
    with open(path, "rb") as stream:
        return is_iis_log(stream.read(4096))


class _Device:
    """The requests of one (user, DeviceId) seen so far."""

    __slots__ = (
        "device_id",
        "device_type",
        "first",
        "last_attempt",
        "last_success",
        "line",
        "seen_at",
        "user",
        "user_agent",
        "user_key",
    )

    def __init__(self, line: int, user: str, user_key: str, device_id: str, at: datetime) -> None:
        self.line = line  # the first line the pair appears on
        self.user = user
        self.user_key = user_key
        self.device_id = device_id
        self.device_type = ""
        self.user_agent = ""
        self.seen_at = at  # time of the request device_type and user_agent come from
        self.first = at
        self.last_attempt = at
        self.last_success: datetime | None = None


class IisLog(ReportsFindings):
    """One log after its pass: problems, warnings, request counts, then rows()."""

    kind = KIND
    type_hint = None

    def __init__(self, *, filename: str, problems: Findings, warnings: Findings) -> None:
        self.filename = filename
        self._problems = problems
        self._warnings = warnings
        self._devices: dict[tuple[str, str], _Device] = {}
        self.row_count = 0  # log records (request lines) read
        self.requests = {"eas": 0, "other": 0, "without_device": 0, "base64": 0}

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def __repr__(self) -> str:
        return (
            f"<IisLog {self.filename!r} records={self.row_count} devices={self.device_count} "
            f"problems={self.problem_count} warnings={self.warning_count}>"
        )

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield (first line, row) per (user, DeviceId), in line order; only without problems.

        A row has ``user`` (as the log wrote it), ``user_key`` (the account name without its
        domain, lower case), ``device_id``, ``device_type``, ``user_agent``, ``first_seen``,
        ``last_success`` (last request answered 200, or None) and ``last_attempt`` (UTC).
        """
        if not self.ok:
            raise ExportHasProblems(
                f"{self.filename} has {self.problem_count} problems; nothing may be imported"
            )
        for device in sorted(self._devices.values(), key=lambda d: d.line):
            yield (
                device.line,
                {
                    "user": device.user,
                    "user_key": device.user_key,
                    "device_id": device.device_id,
                    "device_type": device.device_type,
                    "user_agent": device.user_agent,
                    "first_seen": device.first,
                    "last_success": device.last_success,
                    "last_attempt": device.last_attempt,
                },
            )

    # -- the pass -----------------------------------------------------------------------------

    def _read(self, stream: IO[bytes], encoding: str | None, progress: Progress | None) -> None:
        problem = self._problems.add
        fields: dict[str, int] | None = None
        width = 0
        fields_line = 0
        log_date: str | None = None  # from #Date:, for a #Fields line without "date"
        bad_bytes = 0
        first_base64 = 0
        warned_status = False
        number = 0
        for raw in _lines(stream):
            number += 1
            if raw is None:
                problem(number, None, f"is longer than {_MAX_LINE} bytes: not a log line")
                continue
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            # Only the last line of a file can end without a line break.
            cut = not raw.endswith(b"\n")
            data = raw.rstrip(b"\r\n")
            if not data.strip():
                continue
            if b"\x00" in data:
                problem(
                    number,
                    None,
                    "contains NUL bytes: the log was cut off or not completely written "
                    "(copied while IIS was writing, or after a crash)",
                )
                continue
            try:
                text = data.decode(encoding or "utf-8")
            except UnicodeDecodeError as error:
                bad_bytes += 1
                if bad_bytes == 1:
                    problem(number, None, _bad_byte(encoding, error.object[error.start]))
                else:
                    self._problems.add_unshown(1)
                continue
            if text.startswith("#"):
                directive, _, value = text.partition(":")
                directive = directive.lower()
                if directive == "#fields":
                    names = value.split()
                    fields = {name.lower(): i for i, name in enumerate(names)}
                    width = len(names)
                    fields_line = number
                    missing = [name for name in (TIME, STEM, QUERY) if name not in fields]
                    if DATE not in fields and log_date is None:
                        missing.insert(0, DATE)
                    if missing:
                        problem(
                            number,
                            None,
                            f"the #Fields line has no {', '.join(missing)}: exsync cannot tell "
                            "ActiveSync requests and their devices without them; turn on "
                            "Date, Time, URI Stem and URI Query in the web site's logging "
                            "properties (W3C extended log file format)",
                        )
                        fields = {}  # its records are not read, and not reported one by one
                    elif STATUS not in fields and not warned_status:
                        warned_status = True
                        self._warnings.add(
                            number,
                            None,
                            "the #Fields line has no sc-status: the last successful sync of "
                            "the devices below it is unknown (only the last attempt is known)",
                        )
                elif directive == "#date":
                    log_date = value.strip().split(" ", 1)[0] or None
                continue
            self.row_count += 1
            if progress is not None and self.row_count % PROGRESS_EVERY == 0:
                progress(self.row_count)
            if fields is None:
                problem(
                    number,
                    None,
                    "a log record before any #Fields line; expected the IIS header "
                    "(#Software, #Version, #Date, #Fields) first",
                )
                fields = {}
                continue
            if not fields:
                continue
            values = text.split(" ")
            if len(values) != width:
                problem(
                    number,
                    None,
                    f"{len(values)} values, but the #Fields line (line {fields_line}) names "
                    f"{width} fields"
                    + (
                        "; the last line ends without a line break: the log was cut off "
                        "(copied while IIS was still writing it?)"
                        if cut
                        else ""
                    ),
                )
                continue
            stem = values[fields[STEM]].lower()
            if stem != EAS_PATH and not stem.startswith(EAS_PATH + "/"):
                self.requests["other"] += 1
                continue
            self.requests["eas"] += 1
            at = self._time(number, values, fields, log_date)
            if at is None:
                continue
            params = _query(values[fields[QUERY]])
            if params is None:
                self.requests["base64"] += 1
                first_base64 = first_base64 or number
                continue
            user = params.get("user", "").strip()
            device_id = params.get("deviceid", "").strip()
            user_key = user.rsplit("\\", 1)[-1].strip().lower()
            if not user_key or not device_id:
                # OPTIONS probes and requests without a device: nothing to group.
                self.requests["without_device"] += 1
                continue
            status = values[fields[STATUS]] if STATUS in fields else ""
            agent = values[fields[AGENT]] if AGENT in fields else "-"
            self._add(number, user, user_key, device_id, at, status, params, agent)
        if progress is not None:
            progress(self.row_count)
        if self.requests["base64"]:
            self._warnings.add(
                None,
                QUERY,
                f"{self.requests['base64']} ActiveSync requests have a base64-encoded query "
                f"string (newer clients, MS-ASHTTP; first on line {first_base64}): exsync does "
                "not decode those, so they were skipped",
            )
        if self._problems.count:
            return
        if self.row_count == 0:
            self._warnings.add(None, None, "has the IIS header but no requests (0 records)")
        elif not self.requests["eas"]:
            self._warnings.add(
                None,
                None,
                "has no requests to /Microsoft-Server-ActiveSync: is it the log of the web site "
                "the phones connect to (the front end's Default Web Site, usually W3SVC1)?",
            )

    def _add(
        self,
        line: int,
        user: str,
        user_key: str,
        device_id: str,
        at: datetime,
        status: str,
        params: dict[str, str],
        agent: str,
    ) -> None:
        key = (user_key, device_id)
        device = self._devices.get(key)
        if device is None:
            device = self._devices[key] = _Device(line, user, user_key, device_id, at)
        if at < device.first:
            device.first = at
        if at > device.last_attempt:
            device.last_attempt = at
        if status == "200" and (device.last_success is None or at > device.last_success):
            device.last_success = at
        # DeviceType and user agent of the latest request that has them (a log may be out of
        # order when several files were joined).
        newer = at >= device.seen_at
        device_type = params.get("devicetype", "").strip()
        if device_type and (newer or not device.device_type):
            device.device_type = device_type
        if agent != "-" and (newer or not device.user_agent):
            device.user_agent = agent.replace("+", " ")  # IIS writes a user agent's spaces as +
        if newer:
            device.seen_at = at

    def _time(
        self, number: int, values: list[str], fields: dict[str, int], log_date: str | None
    ) -> datetime | None:
        date = values[fields[DATE]] if DATE in fields else log_date
        time = values[fields[TIME]]
        try:
            # W3C extended logs are written in UTC.
            return datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC)
        except ValueError:
            column = DATE if DATE in fields and not _is_date(date) else TIME
            self._problems.add(
                number,
                column,
                f"'{date} {time}' is not a time like 2009-04-17 07:14:03 (date and time in UTC)",
            )
            return None


def _lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """The physical lines of ``stream`` (with their line break), each at most _MAX_LINE bytes;
    a longer one is skipped and stands as None, so line numbers stay right."""
    while line := stream.readline(_MAX_LINE):
        if len(line) == _MAX_LINE and not line.endswith(b"\n"):
            while (rest := stream.readline(_MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def _bad_byte(encoding: str | None, byte: int) -> str:
    if encoding:
        return (
            f"is not valid {encoding} (byte 0x{byte:02X}); re-run with the --encoding the log "
            "was written in"
        )
    return (
        f"is not UTF-8 (byte 0x{byte:02X}). IIS writes logs in the server's ANSI code page "
        "unless UTF-8 logging is on: re-import with --encoding cp1252 (or that code page)"
    )


def _is_date(value: str | None) -> bool:
    try:
        datetime.strptime(value or "", "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _query(query: str) -> dict[str, str] | None:
    """The name=value pairs of a query string (names lower case, values URL-decoded, the first
    of a repeated name wins); None when it is the base64 form of MS-ASHTTP."""
    if query == "-":
        return {}
    first = unquote(query.split("&", 1)[0])
    if len(first) >= _BASE64_MIN and "=" not in first.rstrip("=") and _BASE64.fullmatch(first):
        return None
    params: dict[str, str] = {}
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if sep:
            params.setdefault(name.lower(), unquote_plus(value))
    return params


def open_iis_log(
    source: Any,
    *,
    filename: str,
    encoding: str | None = None,
    max_problems: int = MAX_REPORTED,
    progress: Progress | None = None,
) -> IisLog:
    """Read an IIS W3C log once (as a stream) and group its ActiveSync requests per device.

    ``source`` is a path, a seekable binary stream or a function returning a fresh one.
    ``encoding`` is for logs not written in UTF-8 (or ASCII), e.g. ``cp1252``.
    """
    problems = Findings(file=filename, limit=max_problems)
    warnings = Findings(file=filename, warning=True, limit=max_problems)
    log = IisLog(filename=filename, problems=problems, warnings=warnings)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            problems.add(None, None, f"unknown encoding {encoding!r} (--encoding)")
            return log
    opener = _Opener(source)
    with opener.open() as stream:
        head = _read_head(stream)
    if head.startswith(_WIDE_BOMS):
        problems.add(
            None,
            None,
            "is UTF-16 or UTF-32 text, which IIS never writes: import the log file as IIS "
            "wrote it (exYYMMDD.log), not a copy saved from an editor",
        )
        return log
    if not is_iis_log(head):
        problems.add(
            None,
            None,
            "is not an IIS W3C log: expected '#Software: Microsoft Internet Information "
            "Services' and '#Fields:' lines first",
        )
        return log
    with opener.open() as stream:
        log._read(stream, encoding, progress)
    return log
