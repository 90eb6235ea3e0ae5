"""The two roles of exsync, as Django groups created by a data migration."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ADMINS = "Exchange admins"
HELPDESK = "Helpdesk"

# Exchange admins may schedule and change batches; helpdesk reads everything, changes nothing.
SCHEDULE_PERMISSION = "migrations_plan.schedule_movebatch"
# Both roles hold it: reading batches is what every exsync user does.
ROLE_PERMISSION = "migrations_plan.view_movebatch"


def can_schedule(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm(SCHEDULE_PERMISSION))


APPS = ("devices", "migrations_plan", "helpdesk", "exsync")


def ensure_roles(group_model=None, permission_model=None) -> None:
    """Create both groups with their permissions; the data migration and tests call this.

    Takes the model classes so a migration can pass its historical models.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    ours = permission_model.objects.filter(content_type__app_label__in=APPS)
    admins, _ = group_model.objects.get_or_create(name=ADMINS)
    admins.permissions.set(ours)
    helpdesk, _ = group_model.objects.get_or_create(name=HELPDESK)
    # Helpdesk reads everything a caller needs, but not the e-mail outbox or the notice log
    # as a whole (one person's notices are on that person's page).
    helpdesk.permissions.set(
        ours.filter(codename__startswith="view_").exclude(
            codename__in=["view_outboxmessage", "view_notice"]
        )
    )
