"""App config for the project-wide pieces: roles, heartbeat, dashboard."""

from django.apps import AppConfig


class ExsyncConfig(AppConfig):
    name = "exsync"
    verbose_name = "exsync"
