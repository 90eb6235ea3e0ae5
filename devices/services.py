"""Writes to the inventory: importing Exchange exports, recording facts no export carries.

The web upload (through a Celery task) and `manage.py import_inventory` share
`inventory_import_run`: each file is checked in full first, then written in one transaction,
so a file is imported whole or not at all, and every import is recorded.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from .importers import Export, open_export
from .models import ExchangeServer, ImportState, InventoryImport
from .signals import inventory_changed
from .writers import KIND_ORDER, WRITERS, Context, ImportRejected

ProgressHook = Callable[[InventoryImport], None]

NOT_INVENTORY = {
    "migration_batch": (
        "is a New-MigrationBatch CSV (one EmailAddress column): it chooses the mailboxes of a move "
        "batch, it is not inventory. Use it with create_batch --mailboxes-csv or on the batch page."
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_record_create(
    *,
    path: Path | None = None,
    upload: File | None = None,
    filename: str,
    group: uuid.UUID,
    actor: AbstractBaseUser | None,
    source: str,
    dry_run: bool = False,
    full_export: bool = True,
    options: dict | None = None,
) -> InventoryImport:
    """Record one file to import (before it is read), with its SHA-256."""
    record = InventoryImport(
        group=group,
        created_by=actor,
        source=source,
        filename=filename,
        dry_run=dry_run,
        full_export=full_export,
        options={k: v for k, v in (options or {}).items() if v},
    )
    if upload is not None:
        record.upload.save(Path(filename).name, upload, save=False)
        path = Path(record.upload.path)
    assert path is not None
    record.sha256 = sha256_of(path)
    record.size_bytes = path.stat().st_size
    if upload is None:
        record.options["path"] = str(path)
    record.save()
    return record


def _path_of(record: InventoryImport) -> Path:
    return Path(record.upload.path) if record.upload else Path(record.options["path"])


def _claim(record: InventoryImport) -> bool:
    """Only one worker runs a given import: the one whose conditional UPDATE wins."""
    claimed = InventoryImport.objects.filter(pk=record.pk, state=ImportState.QUEUED).update(
        state=ImportState.RUNNING, started_at=timezone.now()
    )
    record.refresh_from_db()
    return bool(claimed)


def _finish(record: InventoryImport, **fields) -> None:
    fields.setdefault("finished_at", timezone.now())
    for key, value in fields.items():
        setattr(record, key, value)
    record.save(update_fields=[*fields.keys()])


def inventory_import_run(
    *, records: Sequence[InventoryImport], on_progress: ProgressHook | None = None
) -> list[InventoryImport]:
    """Check, order and import the given files; each file in one transaction. Idempotent:
    files already finished (or running elsewhere) are left alone."""
    claimed = [r for r in records if _claim(r)]
    try:
        exports = [pair for record in claimed if (pair := _check(record)) is not None]
        exports.sort(key=lambda pair: KIND_ORDER.index(pair[0].kind))
        _write_all(exports, on_progress)
    except Exception as exc:
        # Never leave a record "running" forever: whatever failed, the database says so
        # (in-memory states may be stale after a rolled-back dry run), then the error surfaces.
        InventoryImport.objects.filter(
            pk__in=[r.pk for r in claimed], state=ImportState.RUNNING
        ).update(
            state=ImportState.FAILED,
            finished_at=timezone.now(),
            problems=[f"import failed: {exc!r}; nothing from the unfinished files was written"],
        )
        raise
    return list(records)


def _check(record: InventoryImport) -> tuple[InventoryImport, Export] | None:
    """The first pass over one file: its kind and every problem. Rejected files end here."""
    options = record.options

    def progress(rows: int) -> None:
        InventoryImport.objects.filter(pk=record.pk).update(rows_done=rows)

    export = open_export(
        _path_of(record),
        filename=record.filename,
        delimiter=options.get("delimiter"),
        culture=options.get("culture"),
        encoding=options.get("encoding"),
        progress=progress,
    )
    record.kind = export.kind or ""
    record.rows_total = export.row_count
    problems = [str(p) for p in export.problems]
    if export.kind in NOT_INVENTORY:
        problems.append(f"{record.filename}: {NOT_INVENTORY[export.kind]}")
    if problems or export.kind is None:
        _finish(
            record,
            kind=record.kind,
            rows_total=record.rows_total,
            state=ImportState.REJECTED,
            problems=problems or [f"{record.filename}: not an export exsync knows"],
            warnings=[str(w) for w in export.warnings],
        )
        return None
    record.save(update_fields=["kind", "rows_total"])
    return record, export


def _write_all(
    exports: list[tuple[InventoryImport, Export]], on_progress: ProgressHook | None
) -> None:
    dry_run = any(record.dry_run for record, _ in exports)
    results: list[tuple[InventoryImport, dict]] = []
    # A dry run imports every file inside one outer transaction that is rolled back at the
    # end, so later files see what earlier ones would have written (devices find the mailboxes
    # of the same run); the import records are written after the rollback.
    with transaction.atomic():
        for record, export in exports:
            outcome = _import_one(record, export)
            if dry_run:
                results.append((record, outcome))
            else:
                _finish(record, **outcome)
                if on_progress:
                    on_progress(record)
        if dry_run:
            transaction.set_rollback(True)
    for record, outcome in results:
        _finish(record, **outcome)
    changed = {
        record.kind
        for record, _ in exports
        if not record.dry_run
        and record.state == ImportState.SUCCEEDED
        and _changed_anything(record.counts)
    }
    if changed:
        transaction.on_commit(lambda: inventory_changed.send(sender=InventoryImport, kinds=changed))


def _changed_anything(counts: dict) -> bool:
    for key, value in counts.items():
        if isinstance(value, dict) and (value.get("created") or value.get("updated")):
            return True
        if key == "stale" and value:
            return True
    return False


def _import_one(record: InventoryImport, export: Export) -> dict:
    """Write one checked export in its own (sub)transaction; the fields to record."""
    options = record.options
    ctx = Context(
        filename=record.filename,
        tz=ZoneInfo(options.get("timezone") or settings.TIME_ZONE),
        full_export=record.full_export,
        server=options.get("server"),
    )
    try:
        with transaction.atomic():
            counts = WRITERS[record.kind](export.rows(), ctx)
    except ImportRejected as rejected:
        return {
            "state": ImportState.REJECTED,
            "problems": [str(p) for p in rejected.problems],
            "warnings": [str(w) for w in [*export.warnings, *ctx.warnings]],
        }
    return {
        "state": ImportState.SUCCEEDED,
        "rows_done": record.rows_total,
        "counts": counts,
        "warnings": [str(w) for w in [*export.warnings, *ctx.warnings]],
    }


@transaction.atomic
def server_record_facts(
    *,
    server: ExchangeServer,
    iwa_enabled: bool | None,
    exsetup_version: str,
) -> ExchangeServer:
    """Record what no export tells: IWA on a 2003 EAS directory, the ExSetup.exe version."""
    server.iwa_enabled = iwa_enabled
    server.exsetup_version = exsetup_version.strip()
    server.save(update_fields=["iwa_enabled", "exsetup_version", "updated_at"])
    # Predictions read these facts: batches are re-planned once this is committed.
    transaction.on_commit(
        lambda: inventory_changed.send(sender=ExchangeServer, kinds={"server_facts"})
    )
    return server
