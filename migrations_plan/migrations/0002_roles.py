"""Create the two roles as groups: Exchange admins (may schedule) and Helpdesk (read only)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from exsync.roles import ensure_roles

ADMINS = "Exchange admins"
HELPDESK = "Helpdesk"


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[ADMINS, HELPDESK]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("devices", "0001_initial"),
        ("exsync", "0001_initial"),
        ("migrations_plan", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
