"""App config for the project-wide pieces: roles, heartbeat, dashboard."""

from django.apps import AppConfig


class ExsyncConfig(AppConfig):
    name = "exsync"
    verbose_name = "exsync"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_sync_roles, dispatch_uid="exsync_sync_roles")


def _sync_roles(sender, app_config=None, **kwargs) -> None:
    """Give the roles the permissions of models added after the roles migration."""
    if app_config is not None and app_config.label == "migrations_plan":
        from .roles import ensure_roles

        ensure_roles()
