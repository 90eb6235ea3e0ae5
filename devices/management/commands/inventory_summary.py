"""manage.py inventory_summary --json: counts of the inventory, for scripts and checks."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from devices.selectors import inventory_summary


class Command(BaseCommand):
    help = (
        "Print what the inventory holds: servers, mailboxes, devices, partnerships, move requests."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print JSON (the default prints a table)."
        )

    def handle(self, *args, json: bool, **options) -> None:
        summary = inventory_summary()
        if json:
            self.stdout.write(_dumps(summary))
            return
        for key, value in summary.items():
            if isinstance(value, dict):
                self.stdout.write(f"{key}:")
                for name, n in value.items():
                    self.stdout.write(f"  {name:<24} {n}")
            else:
                self.stdout.write(f"{key:<30} {value}")


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
