"""CSV downloads: one helper makes every cell safe to open in a spreadsheet, one streams rows.

Device-reported values (friendly names, models, user agents) and names typed into Active
Directory are untrusted. A spreadsheet runs a cell that starts with = + - or @ as a formula
(OWASP "CSV injection"), and a leading tab or carriage return can hide such a start; a
spreadsheet may also drop a leading invisible format character (U+202E RIGHT-TO-LEFT OVERRIDE,
U+200B, U+FEFF...), leaving the = first. Such a cell gets a single quote in front, which
spreadsheets show as text and which a reader of the file can tell from the data. Everything
else is kept as it was: quotes, commas and line breaks are quoted by the csv module, and a
U+202E inside a value stays there as data.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str | int:
    """A value as a CSV cell that no spreadsheet runs; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        value = timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value.tzinfo else value
    text = str(value)
    if text and (text.startswith(FORMULA_STARTS) or unicodedata.category(text[0]) == "Cf"):
        return "'" + text
    return text


class _Echo:
    """A file whose write() hands the line back, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterable[str]:
    """The file as lines: a UTF-8 byte order mark (so Excel reads the names right), the
    header, then one line per row, every cell through safe_cell()."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    yield "\ufeff"
    yield writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])


def csv_response(
    *, filename: str, header: Iterable[Any], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    """A download streamed as it is written: memory stays flat however many rows."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
