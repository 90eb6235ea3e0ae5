"""Dates as Export-Csv writes them: in the exporting session's culture, without a time zone.

The day/month order of a ``/`` date cannot be read from one value, so a column is decided
over the whole file: :meth:`DateColumn.observe` samples every value in a first pass,
:meth:`DateColumn.decide` picks the order (or reports why it cannot), and
:meth:`DateColumn.parse` turns values into naive datetimes in the second pass.

An import reads its file once (:meth:`DateColumn.take`): a value whose order is not decided
yet is handed on as *wall-clock text* (:data:`UNDECIDED` + ``yyyy-AA-BB HH:MM:SS`` with the two
numbers as written) and the database reads it in the order decided at the end of the pass
(``exsync.setsql.wallclock_sql``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .problems import option_named
from .values import BadValue


class DateOrder(StrEnum):
    """Where the day and month stand in a date whose year comes last (or first)."""

    MDY = "M/d/yyyy"
    DMY = "d/M/yyyy"
    YMD = "yyyy-MM-dd"


@dataclass(frozen=True, slots=True)
class Culture:
    name: str
    order: DateOrder
    pattern: str


def _cultures() -> dict[str, Culture]:
    table = {
        # formats.md §1.5; nl-NL and ja-JP from .NET defaults (Q-FMT-CULTURES)
        "en-US": (DateOrder.MDY, "M/d/yyyy h:mm:ss tt"),
        "en-GB": (DateOrder.DMY, "dd/MM/yyyy HH:mm:ss"),
        "fr-FR": (DateOrder.DMY, "dd/MM/yyyy HH:mm:ss"),
        "de-DE": (DateOrder.DMY, "dd.MM.yyyy HH:mm:ss"),
        "nl-NL": (DateOrder.DMY, "d-M-yyyy HH:mm:ss"),
        "ja-JP": (DateOrder.YMD, "yyyy/MM/dd H:mm:ss"),
    }
    # Other cultures admins are likely to run; only their day/month order matters here.
    day_first = "en-AU en-NZ en-IE en-IN en-ZA fr-BE fr-CH de-AT de-CH de-LU nl-BE it-IT it-CH"
    day_first += " es-ES es-MX pt-PT pt-BR pl-PL ru-RU da-DK nb-NO fi-FI cs-CZ sk-SK tr-TR el-GR"
    day_first += " ro-RO uk-UA"
    for name in day_first.split():
        table.setdefault(name, (DateOrder.DMY, "d/M/yyyy"))
    year_first = "zh-CN zh-TW ko-KR sv-SE hu-HU lt-LT"
    for name in year_first.split():
        table.setdefault(name, (DateOrder.YMD, "yyyy-MM-dd"))
    table["invariant"] = (DateOrder.MDY, "MM/dd/yyyy HH:mm:ss")
    return {name: Culture(name, order, pattern) for name, (order, pattern) in table.items()}


CULTURES: dict[str, Culture] = _cultures()
"""The cultures ``--culture`` accepts, by name as .NET spells it (``en-US``)."""
_BY_LOWER_NAME = {name.lower(): culture for name, culture in CULTURES.items()}


def culture_named(name: str) -> Culture:
    """The culture for ``--culture NAME`` (case-insensitive); ValueError naming the known ones."""
    try:
        return _BY_LOWER_NAME[name.strip().lower()]
    except KeyError:
        known = ", ".join(c.name for c in CULTURES.values())
        raise ValueError(f"unknown culture {name!r}; use one of {known}") from None


# Parsed shape of one value: (year_first, separator, p1, p2, p3, hour, minute, second,
# microsecond, pm) where pm is None without AM/PM, else False (AM) / True (PM).
_Parts = tuple[bool, str, int, int, int, int, int, int, int, bool | None]

_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EXAMPLE = "expected a date like 3/9/2019 4:05:07 PM, 09/03/2019 16:05:07 or 2019-03-09T16:05:07"


def _days_in(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS[month]


def _valid(year: int, month: int, day: int) -> bool:
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= _days_in(year, month)


# d/M/yyyy, M/d/yyyy, dd.MM.yyyy, d-M-yyyy, yyyy/MM/dd, yyyy-MM-dd; then H:mm[:ss[.fff]] [AM|PM]
_DATE = re.compile(
    r"\s*(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?)?\s*",
    re.ASCII,
)


def _split(value: str) -> _Parts | datetime:
    """Cut a value into numbers without deciding the day/month order; BadValue if no date."""
    match = _DATE.fullmatch(value)
    if match is None:
        if "T" in value:
            # ISO 8601 from a script (`.ToString('s')`, `-Format o`): unambiguous. An offset is
            # dropped: the other values of an export are the exporting machine's wall-clock time.
            try:
                return datetime.fromisoformat(value.strip()).replace(tzinfo=None)
            except ValueError:
                pass
        raise BadValue(f"{value!r} is not a date; {_EXAMPLE}")
    a, sep, b, c, hour_text, minute_text, second_text, fraction, marker = match.groups()
    if len(a) == 4:
        year_first = True
    elif len(c) == 4:
        year_first = False
    else:
        raise BadValue(f"{value!r} is not a date (no four-digit year); {_EXAMPLE}")
    p1, p2, p3 = int(a), int(b), int(c)
    hour = minute = second = micro = 0
    pm: bool | None = None
    if hour_text is not None:
        hour = int(hour_text)
        minute = int(minute_text)
        if second_text is not None:
            second = int(second_text)
            if fraction is not None:
                micro = int(fraction[:6].ljust(6, "0"))
        if marker is not None:
            pm = marker in "Pp"
    if pm is not None:
        if not 1 <= hour <= 12:
            raise BadValue(f"{value!r} is not a time: the hour of an AM/PM time must be 1 to 12")
        hour = hour % 12 + (12 if pm else 0)
    if hour > 23 or minute > 59 or second > 59:
        raise BadValue(f"{value!r} is not a time of day")
    return (year_first, sep, p1, p2, p3, hour, minute, second, micro, pm)


@dataclass(frozen=True, slots=True)
class _Day:
    """The date half of a value, as _split would read it, and what it proves."""

    year_first: bool
    sep: str
    numbers: tuple[int, int, int]  # year-first: year, month, day; else as written
    sample: str | None  # the DateColumn sample a year-last date goes to, if any
    text: str  # "~yyyy-AA-BB" (year last)


@dataclass(frozen=True, slots=True)
class _Clock:
    numbers: tuple[int, int, int, int]  # hour (24 h), minute, second, microsecond
    pm: bool | None
    text: str  # " HH:MM:SS[.ffffff]"


_DAY = re.compile(r"(\d{1,4})([/.\-])(\d{1,2})\2(\d{1,4})", re.ASCII)
_CLOCK = re.compile(
    r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?\s*", re.ASCII
)
_HALVES_LIMIT = 100_000  # distinct halves remembered per column (a day has 86,400 seconds)


class _Halves:
    """The date and time halves of one column's values, each parsed once. A half that is
    not the common shape (or is wrong) gives None: the whole value goes through _split,
    which reads it the same way or says what is wrong."""

    __slots__ = ("_clocks", "_days")

    def __init__(self) -> None:
        self._days: dict[str, _Day | None] = {}
        self._clocks: dict[str, _Clock | None] = {}

    def day(self, text: str) -> _Day | None:
        try:
            return self._days[text]
        except KeyError:
            pass
        day = _day_of(text)
        if len(self._days) < _HALVES_LIMIT:
            self._days[text] = day
        return day

    def clock(self, text: str) -> _Clock | None:
        try:
            return self._clocks[text]
        except KeyError:
            pass
        clock = _clock_of(text)
        if len(self._clocks) < _HALVES_LIMIT:
            self._clocks[text] = clock
        return clock


def _day_of(text: str) -> _Day | None:
    match = _DAY.fullmatch(text)
    if match is None:
        return None
    a, sep, b, c = match.groups()
    p1, p2, p3 = int(a), int(b), int(c)
    if len(a) == 4:
        if not _valid(p1, p2, p3):
            return None  # _split's reading reports it
        return _Day(True, sep, (p1, p2, p3), None, "")
    if len(c) != 4:
        return None
    sample = None
    if not (p1 <= 12 and p2 <= 12 and p1 and p2 and p3):
        month_first = _valid(p3, p1, p2)
        day_first = _valid(p3, p2, p1)
        if month_first and not day_first:
            sample = "mdy_only"
        elif day_first and not month_first:
            sample = "dmy_only"
        elif not day_first:
            sample = "neither"
    return _Day(False, sep, (p1, p2, p3), sample, f"~{p3:04d}-{p1:02d}-{p2:02d}")


def _clock_of(text: str) -> _Clock | None:
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hour_text, minute_text, second_text, fraction, marker = match.groups()
    hour, minute = int(hour_text), int(minute_text)
    second = int(second_text) if second_text is not None else 0
    micro = int(fraction[:6].ljust(6, "0")) if fraction is not None else 0
    pm = None if marker is None else marker in "Pp"
    if pm is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if pm else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    clock = f" {hour:02d}:{minute:02d}:{second:02d}"
    return _Clock((hour, minute, second, micro), pm, f"{clock}.{micro:06d}" if micro else clock)


class _Sample:
    """The first few (line, value) pairs of a sort, and how many there were."""

    __slots__ = ("count", "items", "limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.items: list[tuple[int, str]] = []
        self.limit = limit

    def add(self, line: int, value: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append((line, value))

    @property
    def first(self) -> tuple[int, str] | None:
        return self.items[0] if self.items else None


def _values(count: int) -> str:
    return "1 value" if count == 1 else f"{count} values"


def _at(example: tuple[int, str]) -> str:
    return f"line {example[0]} {example[1]!r}"


class DateColumn:
    """One date column of one file: samples it, decides its day/month order, parses it."""

    def __init__(
        self,
        column: str,
        *,
        culture: Culture | None = None,
        limit: int = 200,
        option: Callable[..., str] = option_named,
    ) -> None:
        self.column = column
        self._option = option  # names --culture where the message is read (problems.py)
        self.culture = culture
        self.order: DateOrder | None = culture.order if culture else None
        self.decided_by = culture.name if culture else ""
        self.year_last = _Sample(limit)  # year comes last: the day/month order needs deciding
        self.ampm: tuple[int, str] | None = None
        self.day_first_separator: tuple[int, str] | None = None  # '.' or '-' dates
        self.dmy_only = _Sample(limit)  # valid only day-first, like 13/03/2019
        self.mdy_only = _Sample(limit)  # valid only month-first, like 3/13/2019
        self.neither = _Sample(limit)  # valid in no order, like 2/30/2019
        self.unlisted = 0  # failing values decide() counted but did not list
        self._halves = _Halves()

    # -- first pass ---------------------------------------------------------------------------

    def observe(self, line: int, value: str) -> None:
        """Sample one value; BadValue when it is no date in any culture."""
        parts = _split(value)
        if not isinstance(parts, datetime):
            self._observe(line, value, parts)

    def _observe(self, line: int, value: str, parts: _Parts) -> None:
        year_first, sep, p1, p2, p3 = parts[:5]
        if year_first:
            if not _valid(p1, p2, p3):
                raise BadValue(f"{value!r} is not a valid date (read as year-month-day)")
            return
        year_last = self.year_last
        year_last.count += 1
        if year_last.count <= year_last.limit:
            year_last.items.append((line, value))
        if self.ampm is None and parts[9] is not None:
            self.ampm = (line, value)
        if sep != "/" and self.day_first_separator is None:
            self.day_first_separator = (line, value)
        if p1 <= 12 and p2 <= 12 and p1 and p2 and p3:
            return  # every month has at least 12 days: valid both ways, proves nothing
        month_first = _valid(p3, p1, p2)
        day_first = _valid(p3, p2, p1)
        if month_first and not day_first:
            sample = self.mdy_only
        elif day_first and not month_first:
            sample = self.dmy_only
        elif not day_first:
            sample = self.neither
        else:
            return
        sample.count += 1
        if sample.count <= sample.limit:
            sample.items.append((line, value))

    def evidence(self) -> DateOrder | None:
        """The order the values themselves prove (None when they prove none or conflict)."""
        day_first = self.dmy_only.first or self.day_first_separator
        month_first = self.mdy_only.first
        if day_first and not month_first:
            return DateOrder.DMY
        if month_first and not day_first:
            return DateOrder.MDY
        if not day_first and self.ampm:
            return DateOrder.MDY
        return None

    def decide(
        self, *, fallback: tuple[DateOrder, str] | None = None
    ) -> list[tuple[int | None, str]]:
        """Fix the column's order; return (line, message) problems (line None = whole column).

        ``fallback`` is the order another column of the same file proved, with how: used only
        when this column proves nothing by itself (one export has one culture).
        """
        if not self.year_last.count:
            return []
        if self.culture is None:
            day_first = self.dmy_only.first or self.day_first_separator
            month_first = self.mdy_only.first
            if day_first and month_first:
                return [
                    (
                        None,
                        f"some dates only make sense day-first ({_at(day_first)}) and others "
                        f"only month-first ({_at(month_first)}); check the file, or re-run with "
                        f"{self._option('culture')} to choose one reading",
                    )
                ]
            self.order = self.evidence()
            if self.order is DateOrder.DMY:
                self.decided_by = f"day first, as {_at(day_first)} shows"
            elif self.order is DateOrder.MDY and month_first:
                self.decided_by = f"month first, as {_at(month_first)} shows"
            elif self.order is DateOrder.MDY:
                self.decided_by = f"month first (en-US), as AM/PM on {_at(self.ampm)} shows"
            elif fallback is not None:
                self.order, self.decided_by = fallback
            else:
                problems: list[tuple[int | None, str]] = [
                    (
                        None,
                        "the dates could be day/month or month/day (no day above 12 and no "
                        f"AM/PM in {_values(self.year_last.count)}); re-run with "
                        f"{self._option('culture', 'en-GB')} (day first) or "
                        f"{self._option('culture', 'en-US')} (month first)",
                    )
                ]
                problems += [
                    (line, f"{value!r} is not a valid date in either day/month order")
                    for line, value in self.neither.items
                ]
                self.unlisted = self.neither.count - len(self.neither.items)
                return problems
        if self.order is DateOrder.YMD:
            samples = [self.year_last]
        elif self.order is DateOrder.DMY:
            samples = [self.mdy_only, self.neither]
        else:
            samples = [self.dmy_only, self.neither]
        wrong = sorted(item for sample in samples for item in sample.items)
        self.unlisted = sum(sample.count for sample in samples) - len(wrong)
        return [(line, self._wrong(value)) for line, value in wrong]

    def _wrong(self, value: str) -> str:
        if self.culture is not None:
            return f"{value!r} is not a date in {self.culture.name} ({self.culture.pattern})"
        return (
            f"{value!r} is not a valid {self.order} date, the reading of this column "
            f"({self.decided_by})"
        )

    # -- the one pass of an import ------------------------------------------------------------

    def take(self, line: int, value: str) -> datetime | str | None:
        """Sample one value and return it: a naive datetime where its reading is known now,
        wall-clock text (:func:`undecided_text`) where it waits for the column's order, None
        for a value wrong in the order a culture fixed (decide() reports it with its line).
        BadValue when it is no date in any culture."""
        if self.culture is None:
            # Most values are "date time" whose date (a few hundred days) and time of day
            # (at most 86,400) repeat over a file: each half is parsed once (_Halves).
            cut = value.find(" ")
            if cut > 0:
                day = self._halves.day(value[:cut])
                clock = self._halves.clock(value[cut + 1 :]) if day is not None else None
                if clock is not None:
                    return self._take_halves(line, value, day, clock)
        return self._take(line, value)

    def _take_halves(self, line: int, value: str, day: _Day, clock: _Clock) -> datetime | str:
        if day.year_first:
            year, month, date_of_month = day.numbers
            return datetime(year, month, date_of_month, *clock.numbers)
        year_last = self.year_last
        year_last.count += 1
        if year_last.count <= year_last.limit:
            year_last.items.append((line, value))
        if self.ampm is None and clock.pm is not None:
            self.ampm = (line, value)
        if day.sep != "/" and self.day_first_separator is None:
            self.day_first_separator = (line, value)
        sample = day.sample
        if sample is not None:
            sample = getattr(self, sample)
            sample.count += 1
            if sample.count <= sample.limit:
                sample.items.append((line, value))
        return day.text + clock.text

    def _take(self, line: int, value: str) -> datetime | str | None:
        parts = _split(value)
        if isinstance(parts, datetime):
            return parts
        self._observe(line, value, parts)
        year_first, _, p1, p2, p3, hour, minute, second, micro, _ = parts
        if year_first:
            return datetime(p1, p2, p3, hour, minute, second, micro)
        if self.culture is None:
            return undecided_text(parts)
        month, day = (p2, p1) if self.order is DateOrder.DMY else (p1, p2)
        if self.order is DateOrder.YMD or not _valid(p3, month, day):
            return None
        return datetime(p3, month, day, hour, minute, second, micro)

    # -- second pass --------------------------------------------------------------------------

    def parse(self, value: str) -> datetime:
        """The value as a naive datetime, read in the decided order."""
        parts = _split(value)
        if isinstance(parts, datetime):
            return parts
        year_first, _, p1, p2, p3, hour, minute, second, micro, _ = parts
        if year_first:
            return datetime(p1, p2, p3, hour, minute, second, micro)
        if self.order is DateOrder.DMY:
            return datetime(p3, p2, p1, hour, minute, second, micro)
        if self.order is DateOrder.MDY:
            return datetime(p3, p1, p2, hour, minute, second, micro)
        raise BadValue(f"{value!r}: the day/month order of column {self.column} is not decided")


UNDECIDED = "~"
"""Marks wall-clock text whose day/month order the database applies (see take())."""


def undecided_text(parts: _Parts) -> str:
    """``~yyyy-AA-BB HH:MM:SS[.ffffff]``: AA and BB are the first two numbers as written,
    month-day when the column is read month first, day-month when it is read day first."""
    _, _, p1, p2, p3, hour, minute, second, micro, _ = parts
    text = f"~{p3:04d}-{p1:02d}-{p2:02d} {hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{micro:06d}" if micro else text


def wallclock(text: str, order: DateOrder | str | None) -> datetime:
    """Wall-clock text (undecided or ISO) as a naive datetime read in ``order``; SQLite's
    reading of it (PostgreSQL's is SQL: exsync.setsql)."""
    if text.startswith(UNDECIDED):
        text = text[1:]
        if order == DateOrder.DMY or order == "DMY":
            text = f"{text[:5]}{text[8:10]}-{text[5:7]}{text[10:]}"
    return datetime.fromisoformat(text)


def parse_date(value: str, *, culture: str) -> datetime:
    """One value in a known culture (for single values outside a file, e.g. a form field)."""
    column = DateColumn("value", culture=culture_named(culture))
    column.observe(0, value)
    problems = column.decide()
    if problems:
        raise BadValue(problems[0][1])
    return column.parse(value)
