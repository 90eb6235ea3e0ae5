"""Problems and warnings about one export file, printed as FILE:LINE: column COLUMN: message."""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPORTED = 200
"""How many problems (and, separately, warnings) an export keeps; the rest are counted."""

CLI_OPTIONS = {"encoding": "--encoding", "culture": "--culture", "delimiter": "--delimiter"}
"""How import_inventory spells the options a message may point to."""

WEB_FIELDS = {
    "encoding": "the Encoding field",
    "culture": "the Culture field",
    "delimiter": "the Delimiter field",
}
"""How the Imports page names them (its form's labels; tests/test_bad_input.py checks)."""


def option_named(name: str, value: str | None = None, *, via: str = "cli") -> str:
    """An import option as the admin reading the message sets it: ``--encoding cp1252`` on the
    command line, ``the Encoding field set to cp1252`` on the Imports page (``via="web"``)."""
    if via == "web":
        label = WEB_FIELDS[name]
        return f"{label} set to {value}" if value else label
    option = CLI_OPTIONS[name]
    return f"{option} {value}" if value else option


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that stops the file from being imported.

    ``line`` is the physical line where the record starts (the ``#TYPE`` line is line 1);
    ``column`` is the header name as the file spells it. Either may be None.
    """

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.column is not None:
            return f"{where}: column {self.column}: {self.message}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ExportWarning(Problem):
    """Something the admin should know that does not stop the import."""


class Findings:
    """Collects problems or warnings of one file, keeping the first ``limit`` and counting all."""

    def __init__(
        self, *, file: str, warning: bool = False, limit: int = MAX_REPORTED, via: str = "cli"
    ) -> None:
        self.file = file
        self.limit = limit
        self.via = via  # "cli" or "web": where the messages are read (see option_named)
        self.count = 0
        self._kind = ExportWarning if warning else Problem
        self._items: list[Problem] = []

    def add(self, line: int | None, column: str | None, message: str) -> None:
        self.count += 1
        if len(self._items) < self.limit:
            self._items.append(self._kind(self.file, line, column, message))

    def option(self, name: str, value: str | None = None) -> str:
        """The option ``name`` (encoding, culture, delimiter) as this file's reader sets it."""
        return option_named(name, value, via=self.via)

    def add_unshown(self, count: int) -> None:
        """Count ``count`` more findings that were summarised rather than kept one by one."""
        self.count += max(count, 0)

    def __bool__(self) -> bool:
        return self.count > 0

    def __len__(self) -> int:
        return self.count

    def as_list(self) -> list[Problem]:
        """The kept items in line order (file-level ones first), plus an "and N more" note."""
        items = sorted(self._items, key=lambda p: -1 if p.line is None else p.line)
        hidden = self.count - len(items)
        if hidden > 0:
            noun = "warnings" if self._kind is ExportWarning else "problems"
            items.append(self._kind(self.file, None, None, f"and {hidden} more {noun} not shown"))
        return items


class ReportsFindings:
    """What an export or log being read tells about itself: its problems and warnings.

    Expects `_problems` and `_warnings` (Findings) on the instance."""

    _problems: Findings
    _warnings: Findings

    @property
    def problems(self) -> list[Problem]:
        """Every problem (the first MAX_REPORTED, then an "and N more" note), in line order."""
        return self._problems.as_list()

    @property
    def warnings(self) -> list[ExportWarning]:
        return self._warnings.as_list()  # type: ignore[return-value]

    @property
    def problem_count(self) -> int:
        return self._problems.count

    @property
    def warning_count(self) -> int:
        return self._warnings.count

    @property
    def ok(self) -> bool:
        return self._problems.count == 0
