"""App config for move planning: batches, predictions, notifications."""

from django.apps import AppConfig


class MigrationsPlanConfig(AppConfig):
    name = "migrations_plan"
    verbose_name = "Move planning"

    def ready(self) -> None:
        from devices.signals import devices_observed, inventory_changed

        from .services import continuity_after_import, moves_after_import, replan_after_import

        inventory_changed.connect(replan_after_import, dispatch_uid="replan_after_import")
        inventory_changed.connect(moves_after_import, dispatch_uid="moves_after_import")
        devices_observed.connect(continuity_after_import, dispatch_uid="continuity_after_import")

        from django.db.models.signals import post_delete, post_save

        from devices.models import Organisation

        from .models import NoticeTemplate
        from .notices.content import ORGANISATION_ZONES
        from .notices.wording import OVERRIDES

        for signal in (post_save, post_delete):
            signal.connect(OVERRIDES.clear, sender=NoticeTemplate, dispatch_uid=f"wording-{signal}")
            signal.connect(
                ORGANISATION_ZONES.clear, sender=Organisation, dispatch_uid=f"zones-{signal}"
            )
