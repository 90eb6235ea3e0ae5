"""manage.py seed_demo: build (or refresh) the sample organisation Northwind Traders."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser

from devices.demo import SeedResult, seed_demo


class Command(BaseCommand):
    help = "Create a realistic sample organisation; safe to run twice (updates in place)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mailboxes", type=int, default=2000, help="How many mailboxes (default 2000)."
        )
        parser.add_argument(
            "--seed", type=int, default=2009, help="Random seed; same seed, same org."
        )
        parser.add_argument("--chunk-size", type=int, default=5000)

    def handle(self, *args, mailboxes: int, seed: int, chunk_size: int, **options) -> None:
        if mailboxes < 0:
            self.stderr.write("--mailboxes must be 0 or more")
            raise SystemExit(2)
        started = time.perf_counter()

        def progress(result: SeedResult, total: int) -> None:
            elapsed = time.perf_counter() - started
            self.stdout.write(
                f"  mailboxes {result.mailboxes:>7}/{total}  devices {result.devices:>7}  "
                f"partnerships {result.partnerships:>7}  {elapsed:6.1f}s",
            )
            self.stdout.flush()

        result = seed_demo(mailboxes=mailboxes, seed=seed, chunk_size=chunk_size, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.servers} servers, {result.mailboxes} mailboxes, "
                f"{result.devices} devices, "
                f"{result.partnerships} partnerships in {result.seconds:.1f}s"
            )
        )
