"""People search (helpdesk/search.py): a device's phone number, and trigram indexes.

The search matches with Django's case-insensitive lookups, which PostgreSQL runs as
`UPPER(column::text) LIKE UPPER('%...%')`; a GIN index of `UPPER(column)` with pg_trgm's
gin_trgm_ops serves that expression, partial matches included. SQLite has neither pg_trgm nor
GIN: there the same lookups scan, and these operations do nothing. The indexes are kept out of
the models' state (no Meta.indexes entry): a GIN index cannot be declared for one database only.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.models.functions import Upper
from django.db.migrations.operations.base import Operation


class PostgreSQLOnly(Operation):
    """Run `operation` on PostgreSQL only, without changing the project state."""

    reversible = True

    def __init__(self, operation):
        self.operation = operation

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"{self.operation.describe()} (PostgreSQL only)"


SEARCHED = {
    "mailbox": ["display_name", "primary_smtp_address", "alias"],
    "mobiledevice": ["device_id", "imei", "phone_number", "model", "friendly_name"],
}


def trigram_index(model_name, column):
    return PostgreSQLOnly(
        migrations.AddIndex(
            model_name=model_name,
            index=GinIndex(
                OpClass(Upper(column), name="gin_trgm_ops"),
                name=f"{model_name[:6]}_{column[:14]}_trgm",
            ),
        )
    )


class Migration(migrations.Migration):

    dependencies = [
        ("devices", "0006_device_access"),
    ]

    operations = [
        migrations.AddField(
            model_name="mobiledevice",
            name="phone_number",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        PostgreSQLOnly(TrigramExtension()),
        *(
            trigram_index(model_name, column)
            for model_name, columns in SEARCHED.items()
            for column in columns
        ),
    ]
