"""manage.py seed_demo_batches: the sample organisation's batches (run after seed_demo)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from migrations_plan.demo import seed_demo_batches


class Command(BaseCommand):
    help = "Create the sample batches (one scheduled, one draft); safe to run twice."

    def handle(self, *args, **options) -> None:
        created = seed_demo_batches()
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created {', '.join(created)}."))
        else:
            self.stdout.write("The sample batches exist already.")
