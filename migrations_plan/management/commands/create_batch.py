"""manage.py create_batch NAME --target-server S --start ISO8601 --mailboxes-csv FILE."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models.functions import Lower
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox
from migrations_plan.mailbox_csv import CsvProblem, mailboxes_from_path
from migrations_plan.services import BatchError, batch_create


def parse_start(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"{option} '{value}' is not an ISO 8601 date and time; expected e.g. 2026-12-05T22:00 "
            "or 2026-12-05T22:00:00+01:00"
        ) from exc
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Create a move batch from the CSV New-MigrationBatch takes (header EmailAddress), and plan it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--target-server", required=True)
        parser.add_argument("--target-database", default="")
        parser.add_argument(
            "--start",
            required=True,
            help="ISO 8601, e.g. 2026-12-05T22:00 (TIME_ZONE if no offset).",
        )
        parser.add_argument("--complete-by", help="ISO 8601 completion time (optional).")
        parser.add_argument("--mailboxes-csv", required=True, type=Path)
        parser.add_argument("--notify", default="", help="Report recipients, comma separated.")

    def handle(
        self,
        *args,
        name: str,
        target_server: str,
        target_database: str,
        start: str,
        complete_by: str | None,
        mailboxes_csv: Path,
        notify: str,
        **options,
    ) -> None:
        start_at = parse_start(start, "--start")
        complete_at = parse_start(complete_by, "--complete-by") if complete_by else None
        server = (
            ExchangeServer.objects.annotate(lname=Lower("name"))
            .filter(lname=target_server.lower())
            .first()
        )
        if server is None:
            known = ", ".join(ExchangeServer.objects.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"--target-server '{target_server}' is not in the inventory (servers: {known})"
            )
        mailboxes = self._mailboxes(mailboxes_csv)
        try:
            batch = batch_create(
                name=name,
                target_server=server,
                target_database=target_database,
                start_at=start_at,
                complete_by=complete_at,
                notification_emails=notify,
                mailboxes=mailboxes,
                actor=None,
                via="cli",
            )
        except BatchError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created batch '{batch.name}' ({len(mailboxes)} mailboxes) to {server.name}, "
                f"starting {batch.start_at.isoformat()}; planned."
            )
        )

    def _mailboxes(self, path: Path) -> list[Mailbox]:
        if not path.is_file():
            raise CommandError(f"--mailboxes-csv {path}: no such file")
        try:
            return mailboxes_from_path(path)
        except CsvProblem as problem:
            raise CommandError("\n".join(problem.lines)) from problem
