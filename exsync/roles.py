"""The two roles of exsync, as Django groups created by a data migration."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ADMINS = "Exchange admins"
HELPDESK = "Helpdesk"

# Exchange admins may schedule and change batches; helpdesk reads everything, changes nothing.
SCHEDULE_PERMISSION = "migrations_plan.schedule_movebatch"


def can_schedule(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm(SCHEDULE_PERMISSION))
