"""manage.py import_inventory FILE [FILE ...]: import Exchange Management Shell CSV exports."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.models import ImportProfile, ImportState
from devices.services import STALE_CONFIRM, import_record_create, inventory_import_run


class Command(BaseCommand):
    help = (
        "Import Get-ExchangeServer, Get-Mailbox, Get-ActiveSyncDeviceStatistics / "
        "Get-MobileDeviceStatistics, Get-ActiveSyncVirtualDirectory, Get-ExchangeCertificate and "
        "Get-MoveRequestStatistics exports, and for Exchange 2003 the Exchange_Mailbox WMI export "
        "and the front end's IIS logs. Each file is imported whole or not at all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; write nothing."
        )
        parser.add_argument(
            "--delimiter", help="Field delimiter (',' ';' or 'tab'); detected by default."
        )
        parser.add_argument("--culture", help="Culture of the dates, e.g. en-US, en-GB, de-DE.")
        parser.add_argument(
            "--encoding", help="e.g. cp1252 for an export made with -Encoding Default."
        )
        parser.add_argument(
            "--timezone", help="Time zone the export's dates are in (default: TIME_ZONE)."
        )
        parser.add_argument(
            "--server", help="Server of a Get-ExchangeCertificate export without a Server column."
        )
        parser.add_argument(
            "--organisation",
            metavar="FOREST",
            help="Organisation (forest, e.g. contoso.local, or 'exchange online') of an "
            "organisation-level export without a DistinguishedName column.",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="The device files list everything they cover: a device export marks stale the "
            "partnerships it does not list, of mailboxes on the servers its rows name. Device "
            "files are partial by default; organisation-wide exports (device access rules, "
            "organisation relationships, accepted domains) are whole unless --partial.",
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="The default for device files (a device export marks nothing stale). For "
            "organisation-wide exports: only add and change, delete nothing. For an IIS log: "
            "skip (with a warning) users that match no mailbox.",
        )
        parser.add_argument(
            "--confirm-stale",
            action="store_true",
            help="With --full: mark partnerships stale even when that is more than "
            "STALE_CONFIRM_SHARE (default 20%%) of those the export covers.",
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
        parser.add_argument(
            "--profile",
            metavar="NAME",
            help="Read the files through a saved import profile (a column mapping made on the "
            "Imports page for an export exsync does not recognise).",
        )

    def handle(
        self,
        *args,
        files: list[Path],
        dry_run: bool,
        full: bool,
        partial: bool,
        confirm_stale: bool,
        json: bool,
        **options,
    ) -> None:
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CommandError(f"no such file: {', '.join(missing)}")
        if full and partial:
            raise CommandError("--full and --partial contradict each other; give one")
        group = uuid.uuid4()
        wanted = {
            k: options.get(k)
            for k in ("delimiter", "culture", "encoding", "timezone", "server", "organisation")
        }
        wanted["partial"] = partial  # said explicitly: IIS logs skip unknown users
        if options.get("profile"):
            if not ImportProfile.objects.filter(name=options["profile"]).exists():
                raise CommandError(f"no import profile named {options['profile']!r}")
            wanted["profile"] = options["profile"]
        wanted["confirm_stale"] = confirm_stale
        records = [
            import_record_create(
                path=path.resolve(),
                filename=path.name,
                group=group,
                actor=None,
                source="cli",
                dry_run=dry_run,
                full_export=full,
                options=wanted,
            )
            for path in files
        ]
        inventory_import_run(records=records)
        rejected = 0
        for record in records:
            record.refresh_from_db()
            if record.state != ImportState.SUCCEEDED:
                rejected += 1
            if json:
                continue
            for problem in record.problems:
                self.stderr.write(problem)
            for warning in record.warnings:
                self.stderr.write(f"warning: {warning}")
            verb = "would import" if dry_run else "imported"
            if record.state == ImportState.SUCCEEDED:
                self.stdout.write(
                    f"{record.filename}: {verb} {record.kind}: {_summary(record.counts)}"
                )
            elif STALE_CONFIRM in record.counts:
                held = record.counts[STALE_CONFIRM]
                self.stdout.write(
                    f"{record.filename}: NOT IMPORTED: would mark {held['would_mark_stale']} of "
                    f"{held['covered']} covered partnerships stale "
                    f"({held['percent']:g}%), more than "
                    f"{settings.STALE_CONFIRM_SHARE:.0%}; nothing from it was written. Re-run "
                    "with --confirm-stale to import it and mark them stale"
                )
            else:
                self.stdout.write(
                    f"{record.filename}: REJECTED ({len(record.problems)} problems); nothing from it was written"
                )
        if json:
            self.stdout.write(_json_dump([_as_dict(r) for r in records]))
        if rejected:
            raise SystemExit(1)


def _summary(counts: dict) -> str:
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict):
            parts.append(f"{key} " + ", ".join(f"{n} {what}" for what, n in value.items()))
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def _as_dict(record) -> dict:
    return {
        "file": record.filename,
        "kind": record.kind,
        "state": record.state,
        "sha256": record.sha256,
        "dry_run": record.dry_run,
        "counts": record.counts,
        "problems": record.problems,
        "warnings": record.warnings,
    }


def _json_dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
