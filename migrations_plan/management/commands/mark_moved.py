"""manage.py mark_moved NAME [--mailboxes-csv FILE] [--at ISO8601]: moves done by hand."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from migrations_plan.mailbox_csv import CsvProblem, mailboxes_from_path
from migrations_plan.models import BatchState, MemberState, MoveBatch
from migrations_plan.services import BatchError, batch_mark_moves, batch_transition

from .create_batch import parse_start


class Command(BaseCommand):
    help = (
        "Record mailboxes of a batch as moved (all of its waiting mailboxes, or those of a CSV "
        "with header EmailAddress), at a time (default now; a past time records a move done "
        "before exsync knew). A draft batch is scheduled first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--mailboxes-csv", type=Path, help="Only these mailboxes.")
        parser.add_argument("--at", help="ISO 8601 time the moves completed (default now).")
        parser.add_argument("--failed", action="store_true", help="Record them as failed.")

    def handle(
        self, *args, name: str, mailboxes_csv: Path | None, at: str | None, failed: bool, **options
    ) -> None:
        batch = MoveBatch.objects.filter(name__iexact=name).first()
        if batch is None:
            raise CommandError(f"There is no batch named '{name}'.")
        moved_at = parse_start(at, "--at") if at else timezone.now()
        if mailboxes_csv is not None:
            if not mailboxes_csv.is_file():
                raise CommandError(f"--mailboxes-csv {mailboxes_csv}: no such file")
            try:
                ids = [m.pk for m in mailboxes_from_path(mailboxes_csv)]
            except CsvProblem as problem:
                raise CommandError("\n".join(problem.lines)) from problem
            outside = set(ids) - set(
                batch.members.filter(is_active=True).values_list("mailbox_id", flat=True)
            )
            if outside:
                raise CommandError(
                    f"{len(outside)} mailbox(es) of {mailboxes_csv} are not waiting in batch "
                    f"'{batch.name}'; nothing was recorded."
                )
        else:
            ids = list(
                batch.members.filter(is_active=True, state=MemberState.PENDING).values_list(
                    "mailbox_id", flat=True
                )
            )
        state = MemberState.FAILED if failed else MemberState.MOVED
        if moved_at > timezone.now():
            raise CommandError(f"--at {moved_at.isoformat()} is in the future.")
        try:
            # Scheduling a draft and recording its moves stand or fall together.
            with transaction.atomic():
                if batch.state == BatchState.DRAFT:
                    # The moves happened already: there is nothing left to get ready for.
                    batch = batch_transition(
                        batch=batch, action="schedule", actor=None, check_readiness=False
                    )
                counts = batch_mark_moves(
                    batch=batch,
                    outcomes=dict.fromkeys(ids, state),
                    actor=None,
                    via="mark_moved",
                    at=moved_at,
                )
        except BatchError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Batch '{batch.name}': {counts['moved']} moved, {counts['failed']} failed, "
                f"{counts['unchanged']} unchanged (at {moved_at.isoformat()})."
            )
        )
