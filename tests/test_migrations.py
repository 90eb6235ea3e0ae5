"""Migrations that move data keep it: predictions survive their change of primary key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("migrations_plan", "0004_prediction_storage")]
AFTER = [("migrations_plan", "0005_prediction_composite_key")]


@pytest.fixture
def executor():
    executor = MigrationExecutor(connection)
    yield executor
    # Leave the database as the rest of the suite expects it: fully migrated.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_composite_key_migration_keeps_every_prediction(executor):
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("migrations_plan", "Prediction")
    now = timezone.now()
    # The prediction table checks none of its foreign keys, so bare ids are enough here.
    old.objects.bulk_create(
        [
            old(
                member_id=1,
                partnership_id=10,
                outcome="continues",
                explanation_id=5,
                computed_at=now,
            ),
            old(
                member_id=1, partnership_id=11, outcome="blocked", explanation_id=6, computed_at=now
            ),
            old(
                member_id=2, partnership_id=10, outcome="unknown", explanation_id=7, computed_at=now
            ),
        ]
    )

    executor.loader.build_graph()
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps.get_model("migrations_plan", "Prediction")
    assert sorted(new.objects.values_list("member_id", "partnership_id", "outcome")) == [
        (1, 10, "continues"),
        (1, 11, "blocked"),
        (2, 10, "unknown"),
    ]
    assert new.objects.get(pk=(1, 11)).explanation_id == 6
