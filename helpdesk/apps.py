"""App config of the helpdesk pages."""

from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    verbose_name = "Helpdesk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import Instruction
        from .selectors import INSTRUCTIONS

        for signal in (post_save, post_delete):
            signal.connect(INSTRUCTIONS.clear, sender=Instruction, dispatch_uid=f"steps-{signal}")
