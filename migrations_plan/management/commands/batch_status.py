"""manage.py batch_status NAME [--json]: each device's prediction and whether it synced again."""

from __future__ import annotations

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError, CommandParser

from migrations_plan.models import MoveBatch
from migrations_plan.selectors import batch_status_document


class Command(BaseCommand):
    help = "Per mailbox of a batch: each device's predicted outcome and its continuity state."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def handle(self, *args, name: str, json: bool = False, **options) -> None:
        batch = MoveBatch.objects.filter(name__iexact=name).first()
        if batch is None:
            raise CommandError(f"There is no batch named '{name}'.")
        document = batch_status_document(batch=batch)
        if json:
            self.stdout.write(_dumps(document))
            return
        self.stdout.write(f"{document['batch']} ({document['state']})")
        for mailbox in document["mailboxes"]:
            self.stdout.write(f"  {mailbox['address']}: {mailbox['move']}")
            for device in mailbox["devices"]:
                self.stdout.write(
                    f"    {device['device_id']}: predicted {device['predicted']}, "
                    f"{device['continuity']} (last sync {device['last_success_sync_at'] or '-'})"
                )


def _dumps(document: dict) -> str:
    return jsonlib.dumps(document, indent=2, sort_keys=False, default=str)
