"""manage.py demo_users: one Exchange admin and one helpdesk login for trying exsync out."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser

from exsync.roles import ADMINS, HELPDESK


class Command(BaseCommand):
    help = "Create or reset the demo users 'admin' (Exchange admins) and 'helpdesk' (Helpdesk)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=os.environ.get("DEMO_PASSWORD", "exsync-demo"),
            help="Password for both users (default: $DEMO_PASSWORD or 'exsync-demo').",
        )

    def handle(self, *args, password: str, **options) -> None:
        User = get_user_model()
        for username, group, staff in (("admin", ADMINS, True), ("helpdesk", HELPDESK, False)):
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@localhost"}
            )
            user.is_staff = staff
            user.is_superuser = staff
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=group)])
            self.stdout.write(f"{username} / {password}  ({group})")
