"""App config for the inventory: Exchange servers, mailboxes, mobile devices, partnerships."""

from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Exchange inventory"
