"""Mailboxes from a New-MigrationBatch CSV (header EmailAddress) or a list of addresses."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile

from devices.importers import open_export
from devices.models import Mailbox


class CsvProblem(ValueError):
    """The addresses cannot all be used; `lines` says which and why, one message a line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _resolve(wanted: dict[str, int], filename: str) -> list[Mailbox]:
    found = {
        m.primary_smtp_address: m
        for m in Mailbox.objects.filter(primary_smtp_address__in=list(wanted))
    }
    unknown = [
        f"{filename}:{line}: column EmailAddress: no mailbox with primary address {address}"
        for address, line in wanted.items()
        if address not in found
    ]
    if unknown:
        raise CsvProblem(unknown)
    if not found:
        raise CsvProblem([f"{filename}: no addresses; a batch needs at least one mailbox"])
    return [found[a] for a in wanted]


def mailboxes_from_path(path: Path, filename: str | None = None) -> list[Mailbox]:
    """Every address must name a mailbox; duplicates and unknown ones are listed with lines."""
    filename = filename or path.name
    export = open_export(path, filename=filename, kind="migration_batch")
    if export.problems:
        raise CsvProblem([str(p) for p in export.problems])
    wanted: dict[str, int] = {}
    duplicates = []
    for line, row in export.rows():
        address = row["email_address"]
        if address in wanted:
            duplicates.append(
                f"{filename}:{line}: column EmailAddress: {address} is also on line {wanted[address]}"
            )
        wanted.setdefault(address, line)
    if duplicates:
        raise CsvProblem(duplicates)
    return _resolve(wanted, filename)


def mailboxes_from_csv(upload: UploadedFile) -> list[Mailbox]:
    with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        return mailboxes_from_path(Path(handle.name), filename=upload.name)


def mailboxes_from_lines(text: str) -> list[Mailbox]:
    wanted: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        address = line.strip().strip(",;").lower()
        if address:
            wanted.setdefault(address, number)
    if not wanted:
        raise CsvProblem(["Give a CSV file or at least one address."])
    return _resolve(wanted, "addresses")
