"""manage.py plan_batch NAME [--json]: (re)compute a batch's predictions and print them."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from migrations_plan.models import MoveBatch
from migrations_plan.selectors import batch_plan_document
from migrations_plan.services import batch_plan


class Command(BaseCommand):
    help = "Predict what the batch's move does to every device, with reasons."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, name: str, json: bool, **options) -> None:
        batch = MoveBatch.objects.select_related("target_server").filter(name__iexact=name).first()
        if batch is None:
            known = ", ".join(MoveBatch.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no batch named '{name}' (batches: {known})")
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


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
