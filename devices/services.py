"""Writes to the inventory: importing Exchange exports, recording facts no export carries.

The web upload (through a Celery task) and `manage.py import_inventory` share
`inventory_import_run`: each file's head is checked first (its kind, its columns), then each
file is read once, checked and written in one transaction, rolled back if any row is wrong;
so a file is imported whole or not at all, and every import is recorded.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist
from django.core.files import File
from django.db import models, transaction
from django.utils import timezone

from exchange.versions import parse_eas_version, parse_version

from .importers import (
    Export,
    ExportRejected,
    IisLog,
    Kind,
    open_export,
    open_iis_log,
    path_is_iis_log,
)
from .models import (
    AcceptedDomain,
    AccessLevel,
    ClientProfile,
    ExchangeServer,
    FactChange,
    ImportState,
    InventoryImport,
    Namespace,
    Organisation,
    OwaBackupConfirmation,
    exchange_online_server,
)
from .profiles import import_profile_kind
from .selectors import hybrid_server_choices, subject_of
from .signals import devices_observed, inventory_changed
from .timezones import zone_name
from .writers import (
    DATES_IN_SQL,
    KIND_ORDER,
    WRITERS,
    Context,
    ImportRejected,
    StaleConfirmationNeeded,
)

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
    full_export: bool = False,
    options: dict | None = None,
) -> InventoryImport:
    """Record one file to import (before it is read), with its SHA-256.

    Partial by default: only an admin who says a file lists everything (`full_export`) lets a
    device export mark partnerships stale, and then only within what the file covers."""
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


def import_file_path(record: InventoryImport) -> Path:
    """Where the file of an import is: the stored upload, or the command's own path."""
    return Path(record.upload.path) if record.upload else Path(record.options["path"])


# A running import's `started_at` is its heartbeat: the claim sets it and the import refreshes
# it as it checks its files (_beat); while it writes, the rows of its records stay locked by its
# transaction instead. A record running with neither (its process was killed) is stopped by
# the sweeper or by a redelivered task (_stop_if_lost). The value is also the claim's token:
# a process writes to a record only while `started_at` is still the value it wrote last, so
# one that lost its claim (taken over while it hung) writes nothing more.
#
# An upload whose worker was lost this many times fails instead of being sent again: a file
# that kills its worker (out of memory) would otherwise do so for ever.
IMPORT_MAX_ATTEMPTS = 3


def _claim(record: InventoryImport) -> bool:
    """Only one process runs a given import: the one whose conditional UPDATE wins. A record
    still running after its process died is stopped first (queued again), so a message
    redelivered after its worker was killed takes the import over; one running with a fresh
    heartbeat, or being written, is left alone."""

    def take() -> int:
        return InventoryImport.objects.filter(pk=record.pk, state=ImportState.QUEUED).update(
            state=ImportState.RUNNING, started_at=timezone.now(), rows_done=0
        )

    claimed = take()
    if not claimed and _stop_if_lost(pk=record.pk) is not None:
        claimed = take()
    record.refresh_from_db()
    return bool(claimed)


PROGRESS_SECONDS = 3600


def _progress_key(pk: int) -> str:
    return f"devices:import-rows:{pk}"


def import_progress(records: Sequence[InventoryImport]) -> None:
    """Set `rows_done` of running records to what their write's pass has read so far (kept
    in the cache: the write's transaction shows its own count only at commit)."""
    running = [r for r in records if r.state == ImportState.RUNNING]
    if not running:
        return
    counts = cache.get_many([_progress_key(r.pk) for r in running])
    for record in running:
        record.rows_done = max(record.rows_done, counts.get(_progress_key(record.pk), 0))


def _held(record: InventoryImport) -> models.QuerySet:
    """The record, as long as this process's claim on it holds (its token unchanged)."""
    return InventoryImport.objects.filter(
        pk=record.pk, state=ImportState.RUNNING, started_at=record.started_at
    )


def _beat(held: list[InventoryImport]) -> None:
    """The heartbeat of a running import: refresh `started_at` of the records it holds; a
    record another process took over is dropped from `held` (and is not written)."""
    now = timezone.now()
    for record in list(held):
        if _held(record).update(started_at=now):
            record.started_at = now
        else:
            held.remove(record)


def _finish(record: InventoryImport, **fields) -> bool:
    """Record a file's outcome, if this process still holds it (False: it does not; nothing
    written, and `record` unchanged)."""
    fields.setdefault("finished_at", timezone.now())
    if not _held(record).update(**fields):
        return False
    for key, value in fields.items():
        setattr(record, key, value)
    return True


def _stop_if_lost(*, pk: int, now: datetime | None = None) -> InventoryImport | None:
    """Stop an import whose process died: running, its heartbeat older than
    IMPORT_STALE_SECONDS and its row locked by no live transaction. An upload is queued again
    (`started_at` then says when; the caller sends it), up to IMPORT_MAX_ATTEMPTS; a file of
    `import_inventory`, which nobody would run again, fails. Returns the stopped record, or
    None when the import is alive (or not running)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    with transaction.atomic():
        # SKIP LOCKED: a row locked by a live import's write (or by another sweeper) is alive.
        record = (
            InventoryImport.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, state=ImportState.RUNNING, started_at__lt=stale)
            .first()
        )
        if record is None:
            return None
        lost = int(record.options.get("workers_lost", 0)) + 1
        if record.source == "web" and lost < IMPORT_MAX_ATTEMPTS:
            record.options = {**record.options, "workers_lost": lost}
            record.state, record.started_at, record.rows_done = ImportState.QUEUED, now, 0
            record.save(update_fields=["options", "state", "started_at", "rows_done"])
            return record
        if record.source == "web":
            problem = (
                f"the worker importing it was lost {lost} times (killed, or out of memory?); "
                "nothing from it was written. Import it again, or with manage.py import_inventory."
            )
        else:
            problem = (
                f"the process importing it ({record.source}) stopped before it finished "
                "(killed?); nothing from it was written. Run the import again."
            )
        record.state, record.finished_at, record.problems = ImportState.FAILED, now, [problem]
        record.save(update_fields=["state", "finished_at", "problems"])
        return record


def inventory_imports_sweep(
    *, enqueue: Callable[[str], object], queued_minutes: int = 10, now: datetime | None = None
) -> int:
    """Beat's safety net for imports. An import whose process died (no heartbeat for
    IMPORT_STALE_SECONDS) is queued and sent again when it was uploaded, and failed when it
    was run by `import_inventory`; an upload still queued long after it was sent (its message
    was lost) is sent again, and a command's file never claimed (the command was killed
    before) fails. `enqueue(group)` sends an upload's task.

    Sending twice is harmless: a file is claimed with a conditional UPDATE, and one that is
    running or finished is left alone. Returns how many uploads were sent.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    running = InventoryImport.objects.filter(state=ImportState.RUNNING, started_at__lt=stale)
    groups = set()
    for pk in list(running.values_list("pk", flat=True)):
        record = _stop_if_lost(pk=pk, now=now)
        if record is not None and record.state == ImportState.QUEUED:
            groups.add(record.group)
    cutoff = now - timedelta(minutes=queued_minutes)
    waiting = InventoryImport.objects.filter(state=ImportState.QUEUED).filter(
        # `started_at` of a queued file: when it was sent again after its worker was lost.
        models.Q(started_at__lt=cutoff) | models.Q(started_at__isnull=True, created_at__lt=cutoff)
    )
    groups.update(waiting.filter(source="web").values_list("group", flat=True))
    waiting.exclude(source="web").update(
        state=ImportState.FAILED,
        finished_at=now,
        problems=["the process importing it stopped before it began; run the import again"],
    )
    for group in sorted(groups, key=str):
        enqueue(str(group))
    return len(groups)


def inventory_import_run(
    *, records: Sequence[InventoryImport], on_progress: ProgressHook | None = None
) -> list[InventoryImport]:
    """Check, order and import the given files; each file in one transaction. Idempotent:
    files already finished (or running elsewhere) are left alone, and files whose process
    died are taken over. A process killed at any point leaves nothing of a file written (the
    write is one transaction) and its records running, without a heartbeat, for the sweeper."""
    held = [r for r in records if _claim(r)]  # shrinks if another process takes one over
    try:
        exports = [
            pair for record in list(held) if record in held and (pair := _check(record, held))
        ]
        exports.sort(key=lambda pair: KIND_ORDER.index(pair[0].kind))
        exports = _one_full_device_export(exports)
        _write_all(exports, on_progress)
    except Exception as exc:
        # Never leave a record "running" forever: whatever failed, the database says so
        # (in-memory states may be stale after a rolled-back dry run), then the error surfaces.
        for record in held:
            _held(record).update(
                state=ImportState.FAILED,
                finished_at=timezone.now(),
                problems=[f"import failed: {exc!r}; nothing from the unfinished files was written"],
            )
        raise
    return list(records)


def _one_full_device_export(
    exports: list[tuple[InventoryImport, Export | IisLog]],
) -> list[tuple[InventoryImport, Export | IisLog]]:
    """Several full device files in one import would each mark the others' phones stale (each
    sees only its own rows): they are refused together, with what to do instead."""
    full = [r for r, _ in exports if r.kind == "devices" and r.full_export]
    if len(full) < 2:
        return exports
    names = ", ".join(r.filename for r in full)
    for record in full:
        _finish(
            record,
            state=ImportState.REJECTED,
            problems=[
                f"{record.filename}: {len(full)} device files given as full exports together "
                f"({names}): each would mark the phones the others list stale. Join them into "
                "one file for a full export, or import them as partial exports."
            ],
        )
    return [(r, e) for r, e in exports if r not in full]


def reads_once(kind: Kind) -> bool:
    """Whether an import reads a file of `kind` once, checking its rows as it stores them.
    Kinds whose writers use dates in Python (certificates, databases: a few rows each) are
    checked first and read again once the day/month order of their dates is known."""
    return kind.name in DATES_IN_SQL or not any(c.date for c in kind.columns)


def _check(
    record: InventoryImport, held: list[InventoryImport]
) -> tuple[InventoryImport, Export | IisLog] | None:
    """The first pass over one file: its kind and every problem. Rejected files end here.
    Its progress is the heartbeat of every file the run holds (`held`)."""
    options = record.options
    checking = True

    def progress(rows: int) -> None:
        if checking:
            _held(record).update(rows_done=rows)
            _beat(held)
        else:
            # The write's one pass: inside its transaction a count would show only at
            # commit (and the row lock the write holds tells the sweeper it is alive), so the
            # page reads it from the cache (import_progress).
            cache.set(_progress_key(record.pk), rows, PROGRESS_SECONDS)

    path = import_file_path(record)
    export: Export | IisLog
    try:
        profile = import_profile_kind(options.get("profile"))  # an admin's column mapping
        if not path.is_file():
            raise FileNotFoundError(f"the file is no longer at {path}")
    except (ValueError, OSError) as exc:  # a profile deleted since, a file moved away
        _finish(
            record,
            state=ImportState.REJECTED,
            problems=[f"{record.filename}: {exc}; nothing from this file was written"],
        )
        return None
    if path_is_iis_log(path):
        # Exchange 2003's devices: the front end's IIS log, recognised by its #-directives.
        export = open_iis_log(
            path, filename=record.filename, encoding=options.get("encoding"), progress=progress
        )
    else:
        export = open_export(
            path,
            filename=record.filename,
            delimiter=options.get("delimiter"),
            culture=options.get("culture"),
            encoding=options.get("encoding"),
            progress=progress,
            via=record.source,  # messages name the Imports page's fields or the CLI's options
            kind=profile,
            # Only the head now: the write reads the file once, checking it.
            one_pass=reads_once,
        )
    checking = False
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
    if not _held(record).update(kind=record.kind, rows_total=record.rows_total):
        return None  # taken over by another process meanwhile: it imports the file
    return record, export


def _write_all(
    exports: list[tuple[InventoryImport, Export | IisLog]], on_progress: ProgressHook | None
) -> None:
    dry_run = any(record.dry_run for record, _ in exports)
    results: list[tuple[InventoryImport, dict]] = []
    # A dry run imports every file inside one outer transaction that is rolled back at the
    # end, so later files see what earlier ones would have written (devices find the mailboxes
    # of the same run); the import records are written after the rollback.
    with transaction.atomic():
        # The records' rows stay locked until the commit: the sweeper and a redelivered task
        # skip locked rows, so an import being written is left alone however long that takes.
        # A file taken over since its check (this process hung) is not written here.
        exports = [
            (record, export)
            for record, export in exports
            if _held(record).select_for_update().values_list("pk", flat=True)
        ]
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
    observed = [
        record.pk
        for record, _ in exports
        if not record.dry_run
        and record.state == ImportState.SUCCEEDED
        and record.kind in OBSERVING_KINDS
    ]
    if observed:
        transaction.on_commit(
            lambda: devices_observed.send(sender=InventoryImport, import_ids=observed)
        )


# The imports that report partnerships' syncs after a move (Get-MobileDeviceStatistics and
# its kin; the targets of a move are never Exchange 2003, whose IIS logs say less).
OBSERVING_KINDS = ("devices",)


def _changed_anything(counts: dict) -> bool:
    for key, value in counts.items():
        if isinstance(value, dict) and (
            value.get("created") or value.get("updated") or value.get("deleted")
        ):
            return True
        if key == "stale" and value:
            return True
    return False


# The counts key of a file refused because, as a full export, it would mark more than
# settings.STALE_CONFIRM_SHARE of the partnerships it covers stale: it waits for a confirmation.
STALE_CONFIRM = "stale_confirm"


def import_awaits_stale_confirmation(record: InventoryImport) -> bool:
    return record.state == ImportState.REJECTED and STALE_CONFIRM in (record.counts or {})


def inventory_import_confirm_stale(
    *, group: uuid.UUID, actor: AbstractBaseUser | None
) -> tuple[uuid.UUID | None, bool]:
    """Queue again, with confirm_stale, the files of `group` whose stale marking waits for a
    confirmation: (the new group, whether this call made it). In a dry run every file of the
    group is queued again, because its devices find their mailboxes in the same run.

    Only one confirmation wins (a double click, two admins): the first file's record is
    claimed with a conditional UPDATE; a later call gets the group the first one made and
    queues nothing. (None, False): nothing in `group` waits for a confirmation.
    """
    records = list(InventoryImport.objects.filter(group=group).order_by("id"))
    # Only stored uploads: a command's file is read from its path again, which may hold
    # another file by now; the command is re-run with --confirm-stale instead.
    waiting = [r for r in records if import_awaits_stale_confirmation(r) and r.upload]
    if not waiting:
        return None, False
    first = waiting[0]
    new_group = uuid.uuid4()
    with transaction.atomic():
        claimed = InventoryImport.objects.filter(
            pk=first.pk, options__confirmed_in__isnull=True
        ).update(options={**first.options, "confirmed_in": str(new_group)})
        if not claimed:
            first.refresh_from_db()
            return uuid.UUID(first.options["confirmed_in"]), False
        again = records if any(r.dry_run for r in records) else waiting
        for record in again:
            options = {k: v for k, v in record.options.items() if k != "confirmed_in"}
            InventoryImport.objects.create(
                group=new_group,
                created_by=actor,
                source=record.source,
                filename=record.filename,
                upload=record.upload.name,  # the stored file, not a copy: same SHA-256
                sha256=record.sha256,
                size_bytes=record.size_bytes,
                dry_run=record.dry_run,
                full_export=record.full_export,
                # What the admin was shown and confirmed, and no more: a file that would now
                # mark more stale (the inventory changed since) asks again.
                options={
                    **options,
                    "confirm_stale": (record.counts or {})
                    .get(STALE_CONFIRM, {})
                    .get("would_mark_stale", 0),
                },
            )
    return new_group, True


WHOLE_BY_DEFAULT = {"iis_log", "device_access_rules", "org_relationships", "accepted_domains"}


def _import_one(record: InventoryImport, export: Export | IisLog) -> dict:
    """Write one checked export in its own (sub)transaction; the fields to record."""
    options = record.options
    full_export = record.full_export
    if record.kind in WHOLE_BY_DEFAULT and not options.get("partial"):
        # Partial is the default for device files (a few rows must not make the rest stale).
        # These kinds list the whole organisation whenever they are exported (its rules, its
        # relationships, its domains), and for a log "partial" means skipping users that
        # match no mailbox: they stay whole unless an admin says --partial.
        full_export = True
    ctx = Context(
        filename=record.filename,
        tz=ZoneInfo(options.get("timezone") or settings.TIME_ZONE),
        full_export=full_export,
        stale_share=settings.STALE_CONFIRM_SHARE,
        confirm_stale=options.get("confirm_stale") or False,
        server=options.get("server"),
        organisation=options.get("organisation"),
        actor_id=record.created_by_id,
        import_id=record.pk,
    )
    if isinstance(export, Export) and export.reads_once:
        ctx.date_order = export.date_order
        rows = export.checked_rows()
    else:
        rows = export.rows()
    try:
        with transaction.atomic():
            counts = WRITERS[record.kind](rows, ctx)
            if isinstance(export, IisLog):
                counts["requests"] = export.requests  # rows are devices; these the log lines
    except ExportRejected:
        # A wrong row anywhere in the file: everything the pass stored is rolled back.
        return {
            "state": ImportState.REJECTED,
            "rows_total": export.row_count,
            "problems": [str(p) for p in export.problems],
            "warnings": [str(w) for w in export.warnings],
        }
    except ImportRejected as rejected:
        refused = {
            "state": ImportState.REJECTED,
            "rows_total": export.row_count,
            "problems": [str(p) for p in rejected.problems],
            "warnings": [str(w) for w in [*export.warnings, *ctx.warnings]],
        }
        if isinstance(rejected, StaleConfirmationNeeded):
            # Refused whole (nothing written) until confirmed: the numbers for the page / CLI.
            refused["counts"] = {
                STALE_CONFIRM: {
                    "would_mark_stale": rejected.stale,
                    "covered": rejected.covered,
                    "percent": rejected.percent,
                    "servers": rejected.servers,
                }
            }
        return refused
    return {
        "state": ImportState.SUCCEEDED,
        "rows_total": export.row_count,
        "rows_done": export.row_count,
        "counts": counts,
        "warnings": [str(w) for w in [*export.warnings, *ctx.warnings]],
    }


# --- Facts no export carries, recorded by people ---------------------------------------------
#
# Every service below writes only the facts whose value changed, one FactChange row per
# changed fact (who, when, before and after), and re-plans active batches once it commits.

RECORDED_FACTS = "recorded_facts"  # the kind inventory_changed carries for these

# Facts whose empty value means something other than "unknown".
EMPTY_MEANS = {
    "forest_recorded": "not declared",
    "servers": "none recorded",
    "sites": "every site",
    "device_type": "any",
    "model_prefix": "any",
    "os_prefix": "any",
}


def fact_text(value: object, *, field: str = "") -> str:
    """A fact as the history shows it: "unknown" for None or empty, yes/no for booleans."""
    if value is None or value == "" or value == []:
        return EMPTY_MEANS.get(field, "unknown")
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, ExchangeServer):
        return value.name
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _fact_label(model: type[models.Model], field: str) -> str:
    try:
        return str(model._meta.get_field(field).verbose_name)
    except FieldDoesNotExist:
        return field


def _tri_state(field: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{field} is True, False or None (unknown), not {value!r}.")
    return value


def _only(facts: dict[str, object], allowed: Iterable[str], what: str) -> None:
    unknown = set(facts) - set(allowed)
    if unknown:
        raise TypeError(f"{what} has no recordable fact named {', '.join(sorted(unknown))}.")


def _apply(instance: models.Model, facts: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Set the facts whose value differs from the stored one: {field: (before, after)}."""
    changed = {}
    for field, new in facts.items():
        old = getattr(instance, field)
        if old != new:
            setattr(instance, field, new)
            changed[field] = (old, new)
    return changed


def _summary(instance: models.Model, fields: Iterable[str]) -> str:
    """The facts of a row about to be deleted, so the history keeps what it said."""
    return "; ".join(
        f"{_fact_label(type(instance), f)}: {fact_text(getattr(instance, f), field=f)}"
        for f in fields
    )


def _record_history(
    *,
    model: type[models.Model],
    subject: str,
    changed: dict[str, tuple[object, object]],
    actor: AbstractBaseUser | None,
    via: str,
) -> list[FactChange]:
    """One FactChange per changed fact; active batches are re-planned after the commit."""
    now = timezone.now()
    rows = [
        FactChange(
            subject=subject[:255],
            fact=_fact_label(model, field),
            old_value=fact_text(old, field=field),
            new_value=fact_text(new, field=field),
            actor=actor,
            via=via,
            at=now,
        )
        for field, (old, new) in changed.items()
    ]
    if rows:
        FactChange.objects.bulk_create(rows)
        # Predictions read these facts: batches are re-planned once this is committed.
        transaction.on_commit(lambda: inventory_changed.send(sender=model, kinds={RECORDED_FACTS}))
    return rows


SERVER_FACTS = (
    "forest_recorded",
    "iwa_enabled",
    "exsetup_version",
    "block_legacy_mailboxes",
    "is_sbs",
    "third_party_backup",
)
# Yes / no / unknown facts of a server (None records "unknown").
SERVER_TRI_STATE = ("iwa_enabled", "block_legacy_mailboxes", "is_sbs", "third_party_backup")


@transaction.atomic
def server_record_facts(
    *,
    server: ExchangeServer,
    actor: AbstractBaseUser | None = None,
    via: str = "web",
    **facts: object,
) -> ExchangeServer:
    """Record what no export tells of one server: the forest an admin declares, IWA on a 2003
    EAS directory, the ExSetup.exe version, BlockLegacyMailboxes of a 2007 CAS, whether it is
    a Small Business Server and whether a third-party backup is in use (check O-SBS-CIRC).

    Only the facts passed are touched (`iwa_enabled=None` records "unknown"; leaving it out
    keeps what is recorded), and only those whose value changed are written. Returns `server`
    with the new values.
    """
    _only(facts, SERVER_FACTS, "A server")
    clean: dict[str, object] = {}
    for field, value in facts.items():
        if field in SERVER_TRI_STATE:
            clean[field] = _tri_state(field, value)
        elif field == "forest_recorded":
            clean[field] = str(value or "").strip().lower().rstrip(".")
        else:
            exsetup = str(value or "").strip()
            if exsetup and parse_version(exsetup) is None:
                raise ValueError(f"'{exsetup}' is not a build like 14.3.235.1.")
            clean[field] = exsetup
    _write_changed(server, clean, actor=actor, via=via)
    return server


def _write_changed(
    instance: models.Model, clean: dict[str, object], *, actor: object, via: str
) -> None:
    """Write the facts whose value differs from the row as stored (not from an instance a
    form may already have changed), one history row each; `instance` gets the stored values."""
    model = type(instance)
    current = model.objects.select_for_update().get(pk=instance.pk)
    changed = _apply(current, clean)
    if changed:
        current.save(update_fields=[*changed, "updated_at"])
        _record_history(
            model=model, subject=subject_of(current), changed=changed, actor=actor, via=via
        )
    for field in [*clean, "updated_at"]:
        setattr(instance, field, getattr(current, field))


ORGANISATION_FACTS = (
    "name",
    "default_access_level",
    "eas_max_devices",
    "hybrid_configured",
    "hybrid_server",
    "time_zone",
)


@transaction.atomic
def organisation_record_facts(
    *,
    organisation: Organisation,
    actor: AbstractBaseUser | None,
    via: str = "web",
    **facts: object,
) -> Organisation:
    """Record an organisation's DefaultAccessLevel, EasMaxDevices, hybrid state, hybrid server
    (one of its own on-premises servers), name or time zone (an IANA or Windows name, stored
    as the IANA name).

    `default_access_level=""`, `eas_max_devices=None`, `hybrid_server=None` and `time_zone=""`
    record "unknown"; facts left out keep what is recorded. Returns `organisation` with the new
    values.
    """
    _only(facts, ORGANISATION_FACTS, "An organisation")
    clean: dict[str, object] = {}
    for field, value in facts.items():
        if field == "name":
            clean[field] = str(value or "").strip()
        elif field == "default_access_level":
            level = value or ""
            if level not in AccessLevel.values:
                raise ValueError(
                    f"DefaultAccessLevel is one of Allow, Quarantine, Block: {level!r}."
                )
            clean[field] = level
        elif field == "eas_max_devices":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValueError(f"EasMaxDevices is a whole number or None, not {value!r}.")
            if value is not None and value < 0:
                raise ValueError("EasMaxDevices cannot be negative.")
            clean[field] = value
        elif field == "hybrid_server":
            clean[field] = _hybrid_server(organisation, value)
        elif field == "time_zone":
            given = str(value or "").strip()
            zone = zone_name(given) if given else ""
            if zone is None:
                raise ValueError(f"'{given}' is not an IANA or Windows time zone name.")
            clean[field] = zone
        else:
            clean[field] = _tri_state(field, value)
    _write_changed(organisation, clean, actor=actor, via=via)
    return organisation


def _hybrid_server(organisation: Organisation, value: object) -> ExchangeServer | None:
    if value is None:
        return None
    if not isinstance(value, ExchangeServer):
        raise ValueError(f"The hybrid server is an ExchangeServer or None, not {value!r}.")
    if not hybrid_server_choices(organisation=organisation).filter(pk=value.pk).exists():
        raise ValueError(
            f"{value.name} is not an on-premises server of {organisation.forest}: the hybrid "
            "server is one of the organisation's own servers."
        )
    return value


NAMESPACE_FACTS = ("host", "servers", "is_legacy", "devices_use", "sites", "retired")


def _by_name(servers: Iterable[ExchangeServer]) -> list[ExchangeServer]:
    return sorted({s.pk: s for s in servers}.values(), key=lambda s: s.name.lower())


@transaction.atomic
def namespace_save(
    *,
    namespace: Namespace | None = None,
    actor: AbstractBaseUser | None,
    host: str,
    servers: Iterable[ExchangeServer] = (),
    is_legacy: bool = False,
    devices_use: bool = False,
    sites: str = "",
    retired: bool = False,
    via: str = "web",
) -> Namespace:
    """Add a namespace (namespace=None) or change one; only changed facts are written.

    The host is stored lower case without a trailing dot; sites one per line.
    """
    host = host.strip().lower().rstrip(".")
    if not host:
        raise ValueError("A namespace needs a host name.")
    creating = namespace is None or namespace.pk is None
    current = (
        Namespace() if creating else Namespace.objects.select_for_update().get(pk=namespace.pk)
    )
    changed = _apply(
        current,
        {
            "host": host,
            "is_legacy": bool(is_legacy),
            "devices_use": bool(devices_use),
            "sites": "\n".join(s.strip() for s in sites.splitlines() if s.strip()),
            "retired": bool(retired),
        },
    )
    new_servers = _by_name(servers)
    old_servers = [] if creating else _by_name(current.servers.all())
    if [s.pk for s in old_servers] != [s.pk for s in new_servers]:
        changed["servers"] = ([s.name for s in old_servers], [s.name for s in new_servers])
    if not changed:
        return current
    if creating:
        current.save()
        # Last, so it is listed first among the rows of this change (newest first).
        changed["record"] = ("none", "added")
    else:
        current.save(update_fields=[f for f in changed if f != "servers"] + ["updated_at"])
    if "servers" in changed:
        current.servers.set(new_servers)
    _record_history(
        model=Namespace, subject=subject_of(current), changed=changed, actor=actor, via=via
    )
    return current


@transaction.atomic
def namespace_delete(
    *, namespace: Namespace, actor: AbstractBaseUser | None, via: str = "web"
) -> None:
    """Delete a namespace; the history keeps the facts it held."""
    current = Namespace.objects.select_for_update().get(pk=namespace.pk)
    servers = fact_text([s.name for s in _by_name(current.servers.all())], field="servers")
    before = f"servers: {servers}; {_summary(current, NAMESPACE_FACTS[2:])}"
    current.delete()
    _record_history(
        model=Namespace,
        subject=subject_of(current),
        changed={"record": (before, "deleted")},
        actor=actor,
        via=via,
    )


CLIENT_PROFILE_FACTS = (
    "name",
    "device_type",
    "model_prefix",
    "os_prefix",
    "max_eas_version",
    "honours_451",
    "supports_modern_auth",
    "can_comply_with_policy",
)


@transaction.atomic
def client_profile_save(
    *,
    profile: ClientProfile | None = None,
    actor: AbstractBaseUser | None,
    name: str,
    device_type: str = "",
    model_prefix: str = "",
    os_prefix: str = "",
    max_eas_version: str = "",
    honours_451: bool | None = None,
    supports_modern_auth: bool | None = None,
    can_comply_with_policy: bool | None = None,
    via: str = "web",
) -> ClientProfile:
    """Add a client profile (profile=None) or change one; only changed facts are written.

    Raises ValueError for an empty name or an EAS version exchange.versions cannot read.
    """
    name = name.strip()
    if not name:
        raise ValueError("A client profile needs a name.")
    eas = max_eas_version.strip()
    if eas:
        parsed = parse_eas_version(eas)
        if parsed is None:
            raise ValueError(f"'{eas}' is not an EAS protocol version such as 16.1.")
        eas = f"{parsed[0]}.{parsed[1]}"
    creating = profile is None or profile.pk is None
    current = (
        ClientProfile()
        if creating
        else ClientProfile.objects.select_for_update().get(pk=profile.pk)
    )
    changed = _apply(
        current,
        {
            "name": name,
            "device_type": device_type.strip(),
            "model_prefix": model_prefix.strip(),
            "os_prefix": os_prefix.strip(),
            "max_eas_version": eas,
            "honours_451": _tri_state("honours_451", honours_451),
            "supports_modern_auth": _tri_state("supports_modern_auth", supports_modern_auth),
            "can_comply_with_policy": _tri_state("can_comply_with_policy", can_comply_with_policy),
        },
    )
    if not changed:
        return current
    if creating:
        current.save()
        changed["record"] = ("none", "added")
    else:
        current.save(update_fields=[*changed, "updated_at"])
    _record_history(
        model=ClientProfile,
        subject=subject_of(current),
        changed=changed,
        actor=actor,
        via=via,
    )
    return current


@transaction.atomic
def client_profile_delete(
    *, profile: ClientProfile, actor: AbstractBaseUser | None, via: str = "web"
) -> None:
    """Delete a client profile; the history keeps the facts it held."""
    current = ClientProfile.objects.select_for_update().get(pk=profile.pk)
    before = _summary(current, CLIENT_PROFILE_FACTS[1:])
    current.delete()
    _record_history(
        model=ClientProfile,
        subject=subject_of(current),
        changed={"record": (before, "deleted")},
        actor=actor,
        via=via,
    )


@transaction.atomic
def exchange_online_ensure() -> ExchangeServer:
    """Exchange Online as a server row (a batch target, or the home of mailboxes already in
    the cloud) with its organisation; created the first time an admin picks it."""
    return exchange_online_server()


# --- Readiness facts (issue 15): OWA backups before an update, shared accepted domains ----------

# A second identical confirmation (same admin, server and update) this soon after the first is
# the same click twice, not a new backup.
OWA_CONFIRM_DOUBLE_CLICK = timedelta(minutes=1)


@transaction.atomic
def owa_backup_confirm(
    *,
    server: ExchangeServer,
    update: str,
    note: str = "",
    actor: AbstractBaseUser | None,
) -> OwaBackupConfirmation:
    """Record that `actor` backed up the OWA customisations of `server` (the ClientAccess\\OWA
    folder) before the Update Rollup or CU `update` (check O-UR-OWA).

    Idempotent against a double click: when the same admin confirmed the same server and update
    within OWA_CONFIRM_DOUBLE_CLICK, that confirmation is returned and nothing is written (the
    server row is locked first, so two requests at once also make one row).
    """
    update = update.strip()
    note = note.strip()
    if not update:
        raise ValueError("Name the Update Rollup or CU the backup was made before.")
    ExchangeServer.objects.select_for_update().filter(pk=server.pk).first()
    now = timezone.now()
    earlier = (
        OwaBackupConfirmation.objects.filter(
            server=server,
            update__iexact=update,
            confirmed_by=actor if actor is not None and actor.pk else None,
            confirmed_at__gte=now - OWA_CONFIRM_DOUBLE_CLICK,
        )
        .order_by("-confirmed_at", "-id")
        .first()
    )
    if earlier is not None:
        return earlier
    return OwaBackupConfirmation.objects.create(
        server=server,
        update=update[:128],
        note=note[:255],
        confirmed_by=actor if actor is not None and actor.pk else None,
        confirmed_at=now,
    )


def accepted_domain_subject(domain: AcceptedDomain) -> str:
    """How the fact history names an accepted domain."""
    return f"Accepted domain {domain.domain_name} of {domain.organisation.forest}"[:255]


@transaction.atomic
def accepted_domain_record_shared(
    *,
    domain: AcceptedDomain,
    shared: bool | None,
    actor: AbstractBaseUser | None,
    via: str = "web",
) -> AcceptedDomain:
    """Record whether another mail system also receives mail for `domain` (None: unknown), for
    check O-SAS; a FactChange when it changed. Imports never overwrite it."""
    shared = _tri_state("shared_with_other_system", shared)
    current = (
        AcceptedDomain.objects.select_for_update().select_related("organisation").get(pk=domain.pk)
    )
    changed = _apply(current, {"shared_with_other_system": shared})
    if changed:
        current.save(update_fields=["shared_with_other_system", "updated_at"])
        _record_history(
            model=AcceptedDomain,
            subject=accepted_domain_subject(current),
            changed=changed,
            actor=actor,
            via=via,
        )
    domain.shared_with_other_system = current.shared_with_other_system
    return current
