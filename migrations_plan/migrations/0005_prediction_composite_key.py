"""Predictions keyed by (member, partnership): one index to maintain instead of three.

Django cannot turn an `id` primary key into a composite one in place, so the rows move to a
new table, the old one goes and the new one takes its name. Predictions of moved members are
kept as they were (they are not recomputed: they record what was predicted before the move).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

COPY = (
    "INSERT INTO migrations_plan_predictionrow "
    "(member_id, partnership_id, outcome, explanation_id, computed_at) "
    "SELECT member_id, partnership_id, outcome, explanation_id, computed_at "
    "FROM migrations_plan_prediction"
)
COPY_BACK = (
    "INSERT INTO migrations_plan_prediction "
    "(member_id, partnership_id, outcome, explanation_id, computed_at) "
    "SELECT member_id, partnership_id, outcome, explanation_id, computed_at "
    "FROM migrations_plan_predictionrow"
)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0002_import_records"),
        ("migrations_plan", "0004_prediction_storage"),
    ]

    operations = [
        migrations.CreateModel(
            name="PredictionRow",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "member",
                        "partnership",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("blocked", "Blocked"),
                            ("repartner", "Re-partner"),
                            ("unknown", "Unknown"),
                            ("redirect", "Redirect"),
                            ("full_resync", "Full resync"),
                            ("continues", "Continues"),
                        ],
                        max_length=16,
                    ),
                ),
                ("computed_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "explanation",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="migrations_plan.explanation",
                    ),
                ),
                (
                    "member",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="migrations_plan.batchmailbox",
                    ),
                ),
                (
                    "partnership",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="devices.partnership",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(COPY, COPY_BACK),
        migrations.DeleteModel(name="Prediction"),
        migrations.RenameModel("PredictionRow", "Prediction"),
        migrations.AlterField(
            model_name="prediction",
            name="member",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="predictions",
                to="migrations_plan.batchmailbox",
            ),
        ),
        migrations.AlterField(
            model_name="prediction",
            name="partnership",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="predictions",
                to="devices.partnership",
            ),
        ),
    ]
