"""manage.py create_batch NAME --target-server S --start ISO8601 --mailboxes-csv FILE."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models.functions import Lower
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox, MobileDevicePolicy
from devices.services import exchange_online_ensure
from migrations_plan.mailbox_csv import CsvProblem, mailboxes_from_path
from migrations_plan.models import MoveBatch
from migrations_plan.services import BatchError, UnsupportedPath, batch_create, unsupported_paths


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


def parse_hours(value: str) -> list[int]:
    """'72,2' -> [4320, 120] minutes; CommandError naming the part that is not a number."""
    minutes = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            hours = float(part)
        except ValueError:
            raise CommandError(
                f"--notice-hours: '{part}' is not a number of hours (e.g. 72,24,2)"
            ) from None
        minutes.append(round(hours * 60))
    return minutes


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
        parser.add_argument(
            "--notice-hours",
            default="72,2",
            help="When people get their notice: hours before the start, comma separated "
            "(default 72,2).",
        )
        parser.add_argument(
            "--no-short-notice",
            action="store_true",
            help="People whose phones all keep syncing get no notice (default: one short one).",
        )
        parser.add_argument(
            "--move-kind",
            default="",
            choices=["", *(value for value, _ in MoveBatch._meta.get_field("move_kind").choices)],
            help="When the servers cannot tell: hybrid_onboard (the default to Exchange Online), "
            "staged_or_cutover_or_imap, hybrid_offboard, cross_forest.",
        )
        parser.add_argument(
            "--target-policy", default="", help="Mobile device mailbox policy on the target."
        )
        parser.add_argument(
            "--allow-unsupported",
            action="store_true",
            help="Create the batch even if a source server cannot coexist with the target "
            "(eas-moves.md M-UNSUPPORTED-PATH); it is flagged and planned as unknown.",
        )

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
        move_kind: str = "",
        target_policy: str = "",
        allow_unsupported: bool = False,
        notice_hours: str = "72,2",
        no_short_notice: bool = False,
        **options,
    ) -> None:
        start_at = parse_start(start, "--start")
        if start_at <= timezone.now():
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: --start {start_at.isoformat()} is in the past: the batch records "
                    "moves already done (mark_moved --at); nobody gets a notice before the move."
                )
            )
        leads = parse_hours(notice_hours)
        complete_at = parse_start(complete_by, "--complete-by") if complete_by else None
        server = (
            ExchangeServer.objects.annotate(lname=Lower("name"))
            .filter(lname=target_server.lower())
            .first()
        )
        if server is None and target_server.strip().lower() in ("exchange online", "exo"):
            server = exchange_online_ensure()
        if server is None:
            known = ", ".join(ExchangeServer.objects.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"--target-server '{target_server}' is not in the inventory (servers: {known})"
            )
        policy = None
        if target_policy:
            policy = MobileDevicePolicy.objects.filter(name__iexact=target_policy).first()
            if policy is None:
                raise CommandError(f"--target-policy '{target_policy}': no such policy imported")
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
                move_kind=move_kind,
                target_policy=policy,
                allow_unsupported=allow_unsupported,
                notice_leads_minutes=leads,
                notify_unaffected=not no_short_notice,
            )
        except UnsupportedPath as exc:
            raise CommandError(f"{exc} (--allow-unsupported creates it anyway)") from exc
        except BatchError as exc:
            raise CommandError(str(exc)) from exc
        for problem in unsupported_paths(
            source_ids=[m.server_id for m in mailboxes], target=server
        ):
            self.stderr.write(self.style.WARNING(f"Warning: {problem.text}; planned as unknown."))
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
