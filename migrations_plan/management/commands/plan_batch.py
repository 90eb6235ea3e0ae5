"""manage.py plan_batch NAME [--json] [--compare-targets [--target T]]: (re)compute a batch's
predictions and print them, or compare every possible target without writing any."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from migrations_plan.compare import batch_target_plan
from migrations_plan.models import MoveBatch
from migrations_plan.selectors import batch_plan_document
from migrations_plan.services import batch_plan


class Command(BaseCommand):
    help = "Predict what the batch's move does to every device, with reasons."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--compare-targets",
            action="store_true",
            help="Compare every server that can hold mailboxes, and Exchange Online, for this "
            "batch's pending mailboxes, with the prerequisites of the batch's target (or of "
            "--target). Writes no prediction.",
        )
        parser.add_argument(
            "--target",
            default="",
            help="With --compare-targets: list the prerequisites of this target (a server "
            "name, or 'Exchange Online') instead of the batch's own.",
        )

    def handle(self, *args, name: str, json: bool, compare_targets: bool, target: str, **options):
        batch = MoveBatch.objects.select_related("target_server").filter(name__iexact=name).first()
        if batch is None:
            known = ", ".join(MoveBatch.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no batch named '{name}' (batches: {known})")
        if compare_targets:
            self._compare(batch, target=target, as_json=json)
            return
        if target:
            raise CommandError("--target goes with --compare-targets")
        if batch.is_active:
            batch_plan(batch=batch)  # a finished batch keeps the plan it was moved with
        document = batch_plan_document(batch=batch)
        if json:
            self.stdout.write(_dumps(document))
            return
        self.stdout.write(
            f"{document['batch']} -> {document['target_server']}  {document['start']}"
        )
        for outcome, n in document["summary"].items():
            self.stdout.write(f"  {outcome:<12} {n}")

    def _compare(self, batch: MoveBatch, *, target: str, as_json: bool) -> None:
        plan = batch_target_plan(batch=batch)
        if target:
            wanted = next(
                (t for t in plan.comparison.targets if t.name.lower() == target.strip().lower()),
                None,
            )
            if wanted is None:
                names = ", ".join(t.name for t in plan.comparison.targets)
                raise CommandError(f"'{target}' is not a possible target (targets: {names})")
            plan = batch_target_plan(batch=batch, chosen=wanted.choice)
        if as_json:
            self.stdout.write(_dumps({"batch": batch.name, **plan.as_dict()}))
            return
        c = plan.comparison
        self.stdout.write(
            f"{batch.name}: {c.mailboxes} mailboxes, {c.people_with_phones} with phones, "
            f"{c.devices} devices; people needing action per target (fewest first):"
        )
        for t in c.targets:
            span = (
                f" (between {t.needing_action_min} and {t.needing_action_max})"
                if t.is_range
                else ""
            )
            flags = [f for f, on in (("current", t.current), ("UNSUPPORTED", t.unsupported)) if on]
            devices = ", ".join(f"{o} {n}" for o, n in t.devices.items() if n)
            self.stdout.write(
                f"  {t.name:<24} {t.needing_action:>7}{span}"
                f"{'  [' + ', '.join(flags) + ']' if flags else ''}  devices: {devices or 'none'}"
            )
        if plan.chosen is None:
            return
        self.stdout.write(f"Prerequisites on {plan.chosen.name}:")
        if not plan.prerequisites:
            self.stdout.write("  none found that would move a device to a better outcome")
        for row in plan.prerequisites:
            moves = ", ".join(f"{m['devices']} {m['from']} -> {m['to']}" for m in row.from_to)
            self.stdout.write(f"  {row.title} — {row.subject}: {moves or 'no device credited'}")
            if row.uncredited:
                facts = "; ".join(m["fact"] for m in row.missing_facts) or "other rules"
                self.stdout.write(f"    {row.uncredited} more only if known: {facts}")


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
