"""open_export(): read one export file and hand out validated rows.

Two ways to read it:
- an import reads it once (``open_export(..., one_pass=True)`` looks at its head only, then
  :meth:`Export.checked_rows` yields typed rows while it checks them): a problem anywhere in
  the file is raised after the last row, as :class:`ExportRejected` with every problem, and the
  importer's transaction, which stored the rows meanwhile, is rolled back;
- a check before anything is written (the default): the first pass (in :func:`open_export`)
  checks the structure, parses every value, samples the date columns and collects every
  problem; :meth:`Export.rows` reads the file again and yields typed rows, and refuses a file
  with problems.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from .dates import Culture, DateColumn, DateOrder, culture_named
from .kinds import (
    KINDS,
    KINDS_BY_NAME,
    Kind,
    RowContext,
    RowParser,
    community,
    detect,
    missing_columns,
)
from .problems import MAX_REPORTED, Findings, Problem, ReportsFindings
from .reader import CsvFile, Source

PROGRESS_EVERY = 10_000
"""How many records pass between two calls of the ``progress`` hook."""

Progress = Callable[[int], None]


class ExportHasProblems(ValueError):
    """rows() was called on an export whose problems were not dealt with."""


class ExportChanged(RuntimeError):
    """The file read differently the second time (changed on disk while being imported)."""


class ExportRejected(ValueError):
    """checked_rows() found problems (``export.problems``): nothing of the file may be kept."""

    def __init__(self, export: Export) -> None:
        super().__init__(f"{export.filename} has {export.problem_count} problems")
        self.export = export


class _Raising(Findings):
    """The second pass expects no problems: the first one found them all."""

    def add(self, line: int | None, column: str | None, message: str) -> None:
        raise ExportChanged(str(Problem(self.file, line, column, message)))


def _columns_found(header: list[str]) -> str:
    return ", ".join(header) if header else "none"


class Export(ReportsFindings):
    """One export file after its first pass: kind, problems, warnings, counts, then rows()."""

    def __init__(
        self,
        csv_file: CsvFile,
        *,
        problems: Findings,
        warnings: Findings,
        progress: Progress | None = None,
    ) -> None:
        self._file = csv_file
        self._progress = progress
        self._problems = problems
        self._warnings = warnings
        self.filename = csv_file.filename
        self.kind: str | None = None
        self.row_count = 0
        self.session_computer: str | None = None  # PSComputerName: provenance only
        self.date_orders: dict[str, str] = {}  # date column -> "M/d/yyyy" / "d/M/yyyy"
        self._kind: Kind | None = None
        self._dates: dict[str, DateColumn] = {}
        self._one_pass = False  # opened for checked_rows(), which has not run yet

    # -- what the first pass found --------------------------------------------------------------

    @property
    def type_hint(self) -> str | None:
        """The type name of the ``#TYPE`` line, as written (None without one)."""
        return self._file.type_name

    @property
    def columns(self) -> list[str]:
        return list(self._file.header)

    @property
    def delimiter(self) -> str:
        return self._file.delimiter

    @property
    def encoding(self) -> str:
        return self._file.encoding

    def __repr__(self) -> str:
        return (
            f"<Export {self.filename!r} kind={self.kind} rows={self.row_count} "
            f"problems={self.problem_count} warnings={self.warning_count}>"
        )

    # -- the second pass --------------------------------------------------------------------------

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield (physical line, row) for every record; only for a file without problems."""
        if not self.ok or self._kind is None:
            raise ExportHasProblems(
                f"{self.filename} has {self.problem_count} problems; nothing may be imported"
            )
        raising = _Raising(file=self.filename)
        ctx = RowContext(raising.add)
        ctx.ascii_file = self._file.ascii
        parser = RowParser(
            self._kind,
            self._file.columns,
            self._file.header,
            ctx,
            {
                key: community.null_aware(self._kind, column.parse)
                for key, column in self._dates.items()
            },
            first_pass=False,
        )
        yield from self._parsed(self._file.records(raising), parser.parse)

    def _parsed(
        self,
        records: Iterable[tuple[int, list[str]]],
        parse: Callable[[int, list[str]], dict[str, Any]],
        seen: Callable[[list[str]], None] | None = None,
    ) -> Generator[tuple[int, dict[str, Any]], None, int]:
        """Parse every record, reporting progress; yield (line, row) while the file has no
        problem; return how many records there were."""
        progress = self._progress
        count = 0
        for line, fields in records:
            if seen is not None:
                seen(fields)
            row = parse(line, fields)
            if not self._problems.count:
                # After the first problem the rest is only checked: a writer saving rows one
                # by one must never meet a row whose values were found wrong.
                yield line, row
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
        if progress is not None:
            progress(count)
        return count

    # -- an import's one pass ---------------------------------------------------------------

    def checked_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield (physical line, row) for every record, checking as it goes; after the last
        row, raise ExportRejected if the file has any problem (all of them, line-precise).

        Date values whose day/month order the file decides come as wall-clock text (see
        dates.take()); :meth:`date_order` gives the order once the pass is over.
        """
        if self._kind is None or not self._one_pass:
            raise ExportHasProblems(f"{self.filename} was not opened for one pass")
        self._one_pass = False
        ctx = RowContext(self._problems.add)
        takers = {
            key: community.null_aware(
                self._kind, lambda value, column=column: column.take(ctx.line, value)
            )
            for key, column in self._dates.items()
        }
        parse = RowParser(
            self._kind,
            self._file.columns,
            self._file.header,
            ctx,
            takers,
            first_pass=False,
            one_pass=True,
        ).parse
        session_index = self._session_index()

        def seen(fields: list[str]) -> None:
            if session_index is not None and self.session_computer is None:
                self.session_computer = fields[session_index] or None

        count = yield from self._parsed(self._file.records(self._problems), parse, seen)
        self._finish_pass(count, ctx)
        if self._problems.count:
            raise ExportRejected(self)

    @property
    def reads_once(self) -> bool:
        """Opened for checked_rows(), which has not run yet."""
        return self._one_pass

    def date_order(self, key: str) -> DateOrder | None:
        """The day/month order the pass decided for date column ``key`` (None: none needed)."""
        column = self._dates.get(key)
        return column.order if column is not None else None

    def _session_index(self) -> int | None:
        header = self._file.header
        return next((i for i, name in enumerate(header) if name.lower() == "pscomputername"), None)

    def _prepare(self, kind: Kind, culture: Culture | None) -> None:
        csv_file = self._file
        self._kind = kind
        self.kind = kind.name
        columns = csv_file.columns
        for c in kind.columns:
            found = [columns[a.lower()] for a in c.names if a.lower() in columns]
            if c.date and found:
                self._dates[c.key] = DateColumn(
                    csv_file.header[found[0]], culture=culture, option=self._problems.option
                )

    def _finish_pass(self, count: int, ctx: RowContext) -> None:
        self.row_count = count
        if count == 0 and self._problems.count == 0:
            self._warnings.add(None, None, "has a header but no rows (0 rows)")
        if self._kind is not None:
            self._decide_dates()
            self._report_notes(ctx)

    # -- the first pass ---------------------------------------------------------------------------

    def _first_pass(self, kind: Kind | None, culture: Culture | None) -> None:
        csv_file = self._file
        problems = self._problems
        session_index = self._session_index()
        parse: Callable[..., Any] | None = None
        ctx = RowContext(problems.add)
        if kind is not None:
            self._prepare(kind, culture)
            observers = {
                key: community.null_aware(
                    kind, lambda value, column=column: column.observe(ctx.line, value)
                )
                for key, column in self._dates.items()
            }
            parse = RowParser(
                kind, csv_file.columns, csv_file.header, ctx, observers, first_pass=True
            ).parse
        progress = self._progress
        count = 0
        for line, fields in csv_file.records(problems):
            count += 1
            if session_index is not None and self.session_computer is None:
                self.session_computer = fields[session_index] or None
            if parse is not None:
                parse(line, fields)
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
        if progress is not None:
            progress(count)
        self._finish_pass(count, ctx)

    def _decide_dates(self) -> None:
        proven = {
            column.column: order
            for column in self._dates.values()
            if (order := column.evidence()) is not None
        }
        fallback = None
        if len(set(proven.values())) == 1:
            name, order = next(iter(proven.items()))
            fallback = (order, f"like column {name} of this file")
        for column in self._dates.values():
            used_fallback = (
                column.culture is None
                and column.year_last.count > 0
                and column.evidence() is None
                and fallback is not None
            )
            found = column.decide(fallback=fallback)
            for line, message in found:
                self._problems.add(line, column.column, message)
            self._problems.add_unshown(column.unlisted)
            if column.order is not None:
                self.date_orders[column.column] = str(column.order)
            if used_fallback and not found:
                self._warnings.add(
                    None,
                    column.column,
                    f"no value shows the day/month order; read as {column.order} "
                    f"{column.decided_by}",
                )

    def _report_notes(self, ctx: RowContext) -> None:
        warn = self._warnings.add
        if ctx.question_mark_count:
            if self._file.ascii:
                line, identity = ctx.question_marks[0]
                warn(
                    None,
                    ctx.names.get("identity"),
                    f"{ctx.question_mark_count} device identities have '?' where '§' belongs "
                    f"(line {line} {identity!r}): the file was exported as ASCII; '?' was read "
                    "as '§'. Export again with -Encoding UTF8 to keep names intact.",
                )
            else:
                for line, identity in ctx.question_marks:
                    self._problems.add(
                        line,
                        ctx.names.get("identity"),
                        f"{identity!r} has '?' where '§' belongs, but the file is not ASCII",
                    )
                self._problems.add_unshown(ctx.question_mark_count - len(ctx.question_marks))
        for topic, (count, line, column, value) in ctx.notes.items():
            if topic == "ascii":
                how = (
                    "was exported as ASCII"
                    if self._file.ascii
                    else "looks partly exported as ASCII"
                )
                warn(
                    None,
                    None,
                    f"{how}: {count} names contain '?' where letters were lost (line {line}, "
                    f"column {column}: {value!r}). Such rows are linked by GUID, alias or SMTP "
                    "address, never by name; export with -Encoding UTF8 to keep the names.",
                )
            elif topic == "version":
                warn(
                    None,
                    column,
                    f"{count} values are not a version exsync knows (line {line} {value!r}); "
                    "their version is unknown",
                )
            elif topic == "eas":
                warn(
                    None,
                    column,
                    f"{count} values are not an EAS version like 14.1 (line {line} {value!r}); "
                    "their EAS version is unknown",
                )


def _filename_of(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.path.basename(os.fspath(source))
    name = getattr(source, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else "export.csv"


def _delimiter_of(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    if delimiter.lower() in ("tab", "\\t"):
        return "\t"
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError(f"a delimiter is one character such as ',' ';' or tab, not {delimiter!r}")
    return delimiter


def open_export(
    source: Source,
    *,
    filename: str | None = None,
    kind: str | Kind | None = None,
    delimiter: str | None = None,
    culture: str | None = None,
    encoding: str | None = None,
    max_problems: int = MAX_REPORTED,
    progress: Progress | None = None,
    via: str = "cli",
    one_pass: bool | Callable[[Kind], bool] = False,
) -> Export:
    """Read an Exchange Management Shell export once and report what it is and what is wrong.

    ``source`` is a path, a seekable binary stream or a function returning a fresh binary
    stream (the file is read twice). ``filename`` names the file in messages (default: the
    path's name). ``kind`` forces one of :data:`KINDS` instead of detecting it; ``delimiter``,
    ``culture`` (e.g. ``en-GB``) and ``encoding`` (e.g. ``cp1252``) override what is detected.
    ``progress(records)`` is called every PROGRESS_EVERY records and at the end of each pass:
    first while this function checks the file, then again from 0 while rows() hands them out.
    ``via`` is where the messages are read: ``"cli"`` names options as import_inventory spells
    them (``--encoding``), ``"web"`` as the Imports page's form labels them.
    ``one_pass`` (or ``one_pass(kind)`` true): read only the head now; an import reads the
    file once, in checked_rows() (``export.reads_once``).
    """
    filename = filename or _filename_of(source)
    problems = Findings(file=filename, limit=max_problems, via=via)
    warnings = Findings(file=filename, warning=True, limit=max_problems, via=via)
    chosen_culture = None
    if culture:
        try:
            chosen_culture = culture_named(culture)
        except ValueError as error:
            problems.add(None, None, f"{error} ({problems.option('culture')})")
    try:
        delimiter = _delimiter_of(delimiter)
    except ValueError as error:
        problems.add(None, None, f"{error} ({problems.option('delimiter')})")
        delimiter = None
    csv_file = CsvFile(source, filename=filename, delimiter=delimiter, encoding=encoding)
    export = Export(csv_file, problems=problems, warnings=warnings, progress=progress)
    if not csv_file.open(problems, warnings):
        return export

    chosen: Kind | None = None
    if isinstance(kind, Kind):
        chosen = kind  # an import profile's mapping
    elif kind is not None:
        chosen = KINDS_BY_NAME.get(kind)
        if chosen is None:
            problems.add(
                None, None, f"unknown kind {kind!r}; use one of {', '.join(KINDS_BY_NAME)}"
            )
    else:
        detected, hinted = detect(csv_file.header, csv_file.type_name)
        detected = community.report_kind_of(csv_file.header) or detected
        chosen = detected or hinted
        if detected is None and hinted is None:
            expected = "; ".join(k.cmdlets for k in KINDS)
            problems.add(
                None,
                None,
                "cannot tell which export this is from its columns "
                f"(columns found: {_columns_found(csv_file.header)}); expected an export of "
                f"{expected}",
            )
        elif detected is not None and hinted is not None and detected is not hinted:
            warnings.add(
                None,
                None,
                f"the #TYPE line names {csv_file.type_name}, but the columns are those of "
                f"{detected.cmdlets}; read as {detected.name}",
            )
    if chosen is not None:
        for group in missing_columns(chosen, csv_file.header):
            alternatives = "".join(f" or {name!r}" for name in group[1:])
            problems.add(
                None,
                None,
                f"has no column {group[0]!r}{alternatives} (columns found: "
                f"{_columns_found(csv_file.header)})",
            )
    if isinstance(chosen, community.ReportKind):
        for message in chosen.header_warnings(csv_file.header):
            warnings.add(None, None, message)
    if (
        chosen is not None
        and not problems.count
        and (one_pass is True or (callable(one_pass) and one_pass(chosen)))
    ):
        export._prepare(chosen, chosen_culture)
        export._one_pass = True
        return export
    # With problems already, still read the file once for its structural problems.
    export._first_pass(None if problems.count else chosen, chosen_culture)
    if chosen is not None:
        export.kind = chosen.name
    return export
