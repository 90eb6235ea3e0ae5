"""App config for move planning: batches, predictions, notifications."""

from django.apps import AppConfig


class MigrationsPlanConfig(AppConfig):
    name = "migrations_plan"
    verbose_name = "Move planning"
