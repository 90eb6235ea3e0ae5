"""Small builders for importer tests: CSV text as Export-Csv writes it, and how to read it."""

from __future__ import annotations

import io
from typing import Any

from devices.importers import Export, open_export


def quoted(*cells: str | None) -> str:
    """One CSV line as Windows PowerShell 5.1 writes it: every value quoted, None as nothing."""
    return ",".join("" if cell is None else '"' + cell.replace('"', '""') + '"' for cell in cells)


def crlf(*lines: str) -> str:
    return "".join(line + "\r\n" for line in lines)


def read(data: str | bytes, name: str = "export.csv", **options: Any) -> Export:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return open_export(io.BytesIO(data), filename=name, **options)


def messages(export: Export) -> list[str]:
    return [str(problem) for problem in export.problems]


def warnings(export: Export) -> list[str]:
    return [str(warning) for warning in export.warnings]


def rows(export: Export) -> list[tuple[int, dict[str, Any]]]:
    assert export.ok, messages(export)
    return list(export.rows())


def only_row(export: Export) -> dict[str, Any]:
    [(_, row)] = rows(export)
    return row
