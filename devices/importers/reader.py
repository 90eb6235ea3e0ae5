"""Reading an Export-Csv file as a stream: encoding, #TYPE line, delimiter, physical line numbers.

Nothing here knows what the columns mean; see kinds.py for that. A :class:`CsvFile` can be read
any number of times (each :meth:`CsvFile.records` call opens the source anew), which is what
deciding a date column over the whole file needs, and memory stays flat however long the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from .problems import Findings

Source = str | os.PathLike[str] | IO[bytes] | Callable[[], IO[bytes]]
"""A path, a seekable binary stream (rewound for each pass, never closed), or a function that
opens the file anew and returns a binary stream (closed after each pass)."""

HEAD_SIZE = 1 << 16  # bytes looked at before reading: BOM, #TYPE, header, not-CSV shapes
_BUFFER = 1 << 20

FIELD_SIZE_LIMIT = 1 << 24
"""Characters one value may have. The csv module's default (131,072) refused a properly closed
1 MB DeviceFriendlyName; the limit only stops a runaway quote from reading the whole file into
one value. The setting is process-wide, so it is only ever raised here, never lowered."""
if csv.field_size_limit() < FIELD_SIZE_LIMIT:
    csv.field_size_limit(FIELD_SIZE_LIMIT)

# Files admins upload by mistake, by their first bytes.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive, such as an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office 97-2003 file, such as an Excel .xls workbook"),
    (b"\x1f\x8b", "a gzip archive"),
)
# Control characters no Export-Csv text holds (tab, CR and LF are text).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Longest first, so UTF-32LE's FF FE 00 00 is not taken for UTF-16LE's FF FE.
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

REMOTE_SESSION_COLUMNS = frozenset({"pscomputername", "runspaceid", "psshowcomputername"})
"""Added by PowerShell remoting (formats.md §1.6): never data about the object."""

FORMAT_CLASS_ID = "ClassId2e4f51ef21dd47e99d3c952918aff9cd"
_FORMAT_LIST_LINE = re.compile(r"([A-Za-z_][\w.\-]*)\s+: ")
_FORMAT_TABLE_RULE = re.compile(r"\s*-+(?:\s+-+)*\s*")


class _Opener:
    """Opens the source anew for every pass, whatever form the caller gave it in."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._start = 0
        if isinstance(source, str | os.PathLike):
            self._kind = "path"
        elif callable(source) and not hasattr(source, "read"):
            self._kind = "opener"
        else:
            if not source.seekable():  # type: ignore[union-attr]
                raise TypeError(
                    "a stream must be seekable to be read twice; pass a path or a function "
                    "that opens the file instead"
                )
            self._kind = "stream"
            self._start = source.tell()  # type: ignore[union-attr]

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        if self._kind == "path":
            with open(self._source, "rb") as stream:  # type: ignore[arg-type]
                yield stream
        elif self._kind == "opener":
            with self._source() as stream:  # type: ignore[operator]
                yield stream
        else:
            stream = self._source
            stream.seek(self._start)  # type: ignore[union-attr]
            yield stream  # type: ignore[misc]


class _Tap(io.RawIOBase):
    """Replays the already-read head, then the rest of the stream; notes non-ASCII bytes."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._stream = stream
        self.ascii = head.isascii()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        else:
            data = self._stream.read(len(buffer))
            if self.ascii and not data.isascii():
                self.ascii = False
        size = len(data)
        buffer[:size] = data
        return size


def _read_head(stream: IO[bytes]) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < HEAD_SIZE:
        chunk = stream.read(HEAD_SIZE - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _bom_of(head: bytes) -> tuple[bytes, str | None]:
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return bom, encoding
    return b"", None


def utf16_without_bom(head: bytes) -> str | None:
    """The codec (utf-16-le or utf-16-be) of UTF-16 text without a byte order mark, else None.

    Export-Csv text is mostly ASCII, which UTF-16 writes with a NUL in every other byte: the odd
    (little-endian) or even (big-endian) bytes are largely NUL and the others almost never. A
    file with a stray NUL here and there is not UTF-16; it is a text file with a damaged line.
    """
    sample = head[:4096]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul >= 0.3 and even_nul <= 0.05:
        return "utf-16-le"
    if even_nul >= 0.3 and odd_nul <= 0.05:
        return "utf-16-be"
    return None


def binary_reason(head: bytes, text: str) -> str | None:
    """What a file that is no text at all seems to be (its first bytes, decoded as ``text``)."""
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return what
    controls = len(_CONTROL.findall(text))
    # Real exports hold none; a few stray ones are reported line by line instead.
    if controls > max(8, len(text) // 100):
        return f"{controls} control characters in its first {len(head)} bytes: binary data"
    return None


def _count_outside_quotes(line: str, chars: str) -> dict[str, int]:
    counts = dict.fromkeys(chars, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return counts


def detect_delimiter(header_line: str) -> str:
    """The most frequent of ``,`` ``;`` tab outside quotes on the header line.

    ``,`` when there is none: a file of one column (a New-MigrationBatch CSV) needs none.
    """
    counts = _count_outside_quotes(header_line, ",;\t")
    best = max(counts, key=lambda ch: counts[ch])
    return best if counts[best] else ","


def _describe_delimiter(delimiter: str) -> str:
    return {",": "','", ";": "';'", "\t": "tab"}.get(delimiter, repr(delimiter))


def not_csv_reason(head: str, filename: str) -> str | None:
    """Why the decoded start of a file is not an Export-Csv file (formats.md §1.9), or None."""
    start = head.lstrip("\ufeff \t\r\n")
    if start.startswith("<Objs") or (start.startswith("<?xml") and "<Objs" in start[:400]):
        return (
            "is a PowerShell CLIXML file (Export-Clixml), not CSV. Run the command again ending "
            f"in `| Export-Csv -Path {filename} -NoTypeInformation -Encoding UTF8` instead of "
            "`| Export-Clixml`."
        )
    first_lines = start.splitlines()[:2]
    if start.startswith("#TYPE Microsoft.PowerShell.Commands.Internal.Format") or any(
        FORMAT_CLASS_ID in line for line in first_lines
    ):
        return (
            "holds PowerShell formatting objects, not data: Format-Table (or Format-List) ran "
            "before Export-Csv. Replace `Format-Table` with `Select-Object` (or drop it) and "
            f"export again with `| Export-Csv -Path {filename} -NoTypeInformation -Encoding UTF8`."
        )
    lines = [line for line in head.splitlines()[:80] if line.strip()]
    for above, below in itertools.pairwise(lines[:7]):
        if _FORMAT_TABLE_RULE.fullmatch(below) and not _FORMAT_TABLE_RULE.fullmatch(above):
            return (
                "is Format-Table output (a '----' rule under the column names, values cut off), "
                "not CSV. Run the command again ending in "
                f"`| Export-Csv -Path {filename} -NoTypeInformation -Encoding UTF8` instead of "
                "`| Format-Table`."
            )
    listed = [m for m in map(_FORMAT_LIST_LINE.match, lines[:20]) if m]
    if lines and _FORMAT_LIST_LINE.match(lines[0]) and len(listed) >= 2:
        name = listed[0].group(1)
        return (
            f"is Format-List output (lines like '{name} : …'), not CSV. Run the command again "
            f"ending in `| Export-Csv -Path {filename} -NoTypeInformation -Encoding UTF8` instead "
            "of `| Format-List`."
        )
    return None


def _noting_nuls(lines: Iterator[str], base: int, nuls: list[tuple[int, int]]) -> Iterator[str]:
    """The lines as they are, noting (physical line, position) of each one holding a NUL."""
    number = base
    for line in lines:
        number += 1
        if "\x00" in line:
            nuls.append((number, line.index("\x00") + 1))
        yield line


class CsvFile:
    """One Export-Csv file: call :meth:`open` once, then :meth:`records` for each pass."""

    def __init__(
        self,
        source: Source,
        *,
        filename: str,
        delimiter: str | None = None,
        encoding: str | None = None,
    ) -> None:
        self.filename = filename
        self._opener = _Opener(source)
        self._given_delimiter = delimiter
        self._given_encoding = encoding
        self.encoding = "utf-8"
        self.bom = b""
        self.delimiter = delimiter or ","
        self.type_name: str | None = None  # from the #TYPE line, as written
        self.header: list[str] = []
        self.header_line = 0  # physical line of the header (2 after a #TYPE line)
        self.ascii = False  # every byte was ASCII (known after a full pass)
        self.usable = False

    # -- the head -----------------------------------------------------------------------------

    def open(self, problems: Findings, warnings: Findings) -> bool:
        """Look at the head: encoding, not-CSV shapes, #TYPE, header, delimiter.

        Returns False (with the reason in ``problems``) when the file cannot be read as CSV.
        """
        with self._opener.open() as stream:
            head = _read_head(stream)
        self.bom, bom_encoding = _bom_of(head)
        given = self._given_encoding
        if given:
            try:
                given = codecs.lookup(given).name
            except LookupError:
                problems.add(
                    None,
                    None,
                    f"unknown encoding {self._given_encoding!r} ({problems.option('encoding')})",
                )
                return False
        if bom_encoding:
            self.encoding = bom_encoding
            if given and not given.startswith("utf"):
                warnings.add(
                    None,
                    None,
                    f"starts with a {bom_encoding.upper()} byte order mark; read as "
                    f"{bom_encoding}, not as {warnings.option('encoding', self._given_encoding)}",
                )
        else:
            self.encoding = given or "utf-8"
        if not head:
            problems.add(
                None, None, "the file is empty; expected an Export-Csv file with a header line"
            )
            return False
        if not bom_encoding and not (given and given.startswith(("utf-16", "utf-32"))):
            signature = next((what for sig, what in _SIGNATURES if head.startswith(sig)), None)
            utf16 = None if signature else utf16_without_bom(head)
            if utf16:
                problems.add(
                    None,
                    None,
                    f"looks like {utf16.upper()} without a byte order mark (every other byte "
                    f"is NUL). Re-run with {problems.option('encoding', utf16)}, or export "
                    "again with -Encoding UTF8.",
                )
                return False
        text = codecs.decode(head[len(self.bom) :], self.encoding, "replace")
        binary = binary_reason(head[len(self.bom) :], text)
        if binary:
            problems.add(
                None,
                None,
                f"not a text export ({binary}); expected a CSV file written by Export-Csv",
            )
            return False
        reason = not_csv_reason(text, self.filename)
        if reason:
            problems.add(None, None, reason)
            return False
        # Split lines the way the records pass will (universal newlines, nothing else).
        head_lines = io.StringIO(text, newline="")
        header_text = head_lines.readline()
        number = 1
        if header_text.startswith("#TYPE"):
            self.type_name = header_text[5:].strip() or None
            header_text = head_lines.readline()
            number = 2
        if not header_text.endswith(("\n", "\r")) and len(head) >= HEAD_SIZE:
            problems.add(number, None, "the header line is implausibly long; is this a CSV file?")
            return False
        if "\x00" in header_text:
            problems.add(
                number,
                None,
                f"a NUL character (byte 0) at position {header_text.index(chr(0)) + 1} of the "
                "header line; an Export-Csv file has none (a damaged file?)",
            )
            return False
        if not header_text.strip():
            problems.add(
                number if header_text else None,
                None,
                "has no header line; expected the column names "
                + ("after the #TYPE line" if number == 2 else "on the first line"),
            )
            return False
        self.header_line = number
        self.delimiter = self._given_delimiter or detect_delimiter(header_text)
        header = self._parse_header(header_text, problems)
        if header is None:
            return False
        self.header = header
        self.usable = True
        return True

    def _parse_header(self, line: str, problems: Findings) -> list[str] | None:
        try:
            cells = next(csv.reader([line], delimiter=self.delimiter, strict=True))
        except (csv.Error, StopIteration) as error:
            problems.add(self.header_line, None, f"the header line is not valid CSV ({error})")
            return None
        ok = True
        seen: dict[str, int] = {}
        for number, cell in enumerate(cells, 1):
            name = cell.strip()
            if not name:
                problems.add(
                    self.header_line,
                    None,
                    f"column {number} of the header is empty; every column needs a name",
                )
                ok = False
            elif name.lower() in seen:
                problems.add(
                    self.header_line,
                    None,
                    f"column {number} of the header repeats {name!r} "
                    f"(already column {seen[name.lower()]}); column names must be unique",
                )
                ok = False
            else:
                seen[name.lower()] = number
        return [cell.strip() for cell in cells] if ok else None

    @property
    def columns(self) -> dict[str, int]:
        """Lower-cased header name -> index, without the remote-session columns."""
        return {
            name.lower(): index
            for index, name in enumerate(self.header)
            if name.lower() not in REMOTE_SESSION_COLUMNS
        }

    # -- the records --------------------------------------------------------------------------

    def records(self, problems: Findings) -> Iterator[tuple[int, list[str]]]:
        """Yield (physical start line, fields) for every data record with the header's width.

        Records of another width, text after a closing quote, a runaway quote or a decoding
        error go to ``problems``; the last two end the pass (raising nothing).
        """
        width = len(self.header)
        with self._opener.open() as stream:
            tap = _Tap(_read_head(stream)[len(self.bom) :], stream)
            text = io.TextIOWrapper(
                io.BufferedReader(tap, buffer_size=_BUFFER),
                encoding=self.encoding,
                errors="strict",
                newline="",
            )
            try:
                base = 0
                for _ in range(self.header_line):
                    text.readline()
                    base += 1
                nuls: list[tuple[int, int]] = []  # (line, position) of NULs in this record
                reader = csv.reader(
                    _noting_nuls(text, base, nuls), delimiter=self.delimiter, strict=True
                )
                done = 0  # lines the reader had consumed after the last complete record
                while True:
                    try:
                        for fields in reader:
                            start = base + done + 1
                            done = reader.line_num
                            if nuls:
                                self._report_nuls(start, fields, nuls, problems)
                                nuls.clear()
                            elif len(fields) == width:
                                yield start, fields
                            elif fields:  # an empty line is no record
                                problems.add(
                                    start,
                                    None,
                                    f"{len(fields)} values, but the header has {width} columns",
                                )
                        break
                    except csv.Error as error:
                        nuls.clear()
                        start = base + done + 1
                        done = reader.line_num
                        message = str(error)
                        if message.startswith(("unexpected end of data", "field larger")):
                            self._runaway_quote(start, problems, at_end=message[0] == "u")
                            return
                        where = base + done
                        on = f" (on line {where})" if where != start else ""
                        problems.add(
                            start,
                            None,
                            "a closing quote is followed by other text instead of "
                            f"{_describe_delimiter(self.delimiter)} or the end of the line{on}"
                            if "expected after" in message
                            else f"not valid CSV ({message}){on}",
                        )
            except UnicodeDecodeError:
                self._bad_encoding(problems)
                return
            self.ascii = tap.ascii and not self.bom

    def _report_nuls(
        self, start: int, fields: list[str], nuls: list[tuple[int, int]], problems: Findings
    ) -> None:
        # PostgreSQL cannot store a NUL in text (COPY fails far from the line), SQLite would keep
        # it: either way it is damage, reported where the admin can see it.
        line, position = nuls[0]
        where = f"position {position} of line {line}" if line != start else f"position {position}"
        message = (
            f"a NUL character (byte 0) at {where}; an Export-Csv file has none (a damaged file?)"
        )
        columns = [i for i, value in enumerate(fields) if "\x00" in value]
        for i in columns or [None]:
            column = self.header[i] if i is not None and i < len(self.header) else None
            problems.add(start, column, message)

    def _bad_encoding(self, problems: Findings) -> None:
        line, byte = self._find_bad_byte()
        if self._given_encoding:
            how = (
                f"{problems.option('encoding')} set to the encoding"
                if problems.via == "web"
                else "the --encoding"
            )
            message = (
                f"is not valid {self.encoding} (byte 0x{byte:02X}); re-run with {how} it was "
                "written in"
            )
        else:
            message = (
                f"is not UTF-8 (byte 0x{byte:02X} on line {line}). It was probably exported "
                f"with -Encoding Default or OEM; re-import with "
                f"{problems.option('encoding', 'cp1252')} (or the code page it was written "
                "in), or export again with -Encoding UTF8."
            )
        problems.add(line, None, message)

    def _find_bad_byte(self) -> tuple[int, int]:
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        newlines = 0
        with self._opener.open() as stream:
            stream.read(len(self.bom))
            while chunk := stream.read(_BUFFER):
                try:
                    newlines += decoder.decode(chunk).count("\n")
                except UnicodeDecodeError as error:
                    good = error.object[: error.start]
                    newlines += codecs.decode(good, self.encoding, "replace").count("\n")
                    return newlines + 1, error.object[error.start]
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:
                return newlines + 1, error.object[error.start]
        return newlines + 1, 0

    def _runaway_quote(self, start: int, problems: Findings, *, at_end: bool) -> None:
        """Report a quote that never closes at the line where it opened (and its column), or a
        value longer than the csv module reads (csv.field_size_limit) at the line it starts."""
        limit = csv.field_size_limit()
        budget = 4 * limit
        delimiter = self.delimiter
        opened_line, opened_field = start, 0
        field, field_line, length = 0, start, 0
        too_long: tuple[int, int, int] | None = None  # (line, field, length)
        quoted = False
        at_field_start = True
        with self._opener.open() as stream:
            stream.read(len(self.bom))
            text = io.TextIOWrapper(stream, encoding=self.encoding, errors="replace", newline="")
            for number, line in enumerate(text, 1):
                if number < start:
                    continue
                if budget < 0 or too_long:
                    break
                budget -= len(line)
                if not quoted:  # a new record begins
                    field, field_line, length = 0, number, 0
                    at_field_start = True
                stop = len(line.rstrip("\r\n"))
                i = 0
                end = len(line)
                while i < end:
                    if quoted:
                        j = line.find('"', i)
                        if j < 0:
                            length += end - i
                            break
                        if line.startswith('"', j + 1):
                            length += j + 1 - i  # a doubled quote is one character
                            i = j + 2
                        else:
                            length += j - i
                            quoted = False
                            at_field_start = False
                            i = j + 1
                    elif at_field_start and i < stop and line[i] == '"':
                        quoted = True
                        opened_line, opened_field = number, field
                        at_field_start = False
                        i += 1
                    else:  # unquoted text up to the next delimiter or the end of the record
                        j = line.find(delimiter, i, stop)
                        length += (stop if j < 0 else j) - i
                        if length > limit and too_long is None:
                            too_long = (field_line, field, length)
                        if j < 0:
                            i = end
                        else:
                            field, field_line, length = field + 1, number, 0
                            at_field_start = True
                            i = j + 1
            text.detach()
        if too_long is not None and not quoted:
            line_number, index, size = too_long
            problems.add(
                line_number,
                self.header[index] if index < len(self.header) else None,
                f"a value of {size} characters; exsync reads at most {limit} in one value",
            )
            return
        column = self.header[opened_field] if opened_field < len(self.header) else None
        problems.add(
            opened_line,
            column,
            "quoted value never closed before the end of the file (file cut off?)"
            if at_end
            else f"quoted value never closed: more than {limit} characters "
            "follow the opening quote (a missing closing quote?)",
        )
