"""What a worker sending hundreds of notices a second does with its database connection:
statements planned once per connection (exsync.setsql.planned) and connections checked once a
second rather than before every task (exsync/celery.py)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exsync import celery as exsync_celery
from exsync.setsql import planned

pytestmark = pytest.mark.django_db

SQL = "SELECT %(a)s::int + %(b)s::int, %(a)s::int"
SQLITE_SQL = "SELECT %(a)s + %(b)s, %(a)s"


def run(name: str) -> tuple[int, int]:
    sql = SQL if connection.vendor == "postgresql" else SQLITE_SQL
    with connection.cursor() as cursor:
        planned(cursor, name, sql, {"a": 2, "b": 3})
        return cursor.fetchone()


def test_a_planned_statement_gives_the_rows_its_sql_gives():
    assert run("exsync_test_sum") == (5, 2)
    assert run("exsync_test_sum") == (5, 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # it closes the connection
def test_a_statement_is_prepared_once_per_connection_and_again_after_a_reconnect():
    with CaptureQueriesContext(connection) as queries:
        run("exsync_test_once")
        run("exsync_test_once")
    said = [q["sql"].split()[0] for q in queries]
    assert said in (["PREPARE", "EXECUTE", "EXECUTE"], ["EXECUTE", "EXECUTE"])

    # A new session knows none of them (a reconnect after CONN_MAX_AGE, a worker's fork).
    connection.close()
    with CaptureQueriesContext(connection) as queries:
        assert run("exsync_test_once") == (5, 2)
    assert [q["sql"].split()[0] for q in queries] == ["PREPARE", "EXECUTE"]


class _Task:
    class request:  # as Celery names it: task.request
        is_eager = False


def checked_since(mark: object) -> bool:
    """Whether Django's end-of-task rules ran on the connection since `mark` was set: they
    close it, or leave it to be checked again before its next use."""
    return connection.connection is not mark or not connection.health_check_done


def mark_connection() -> object:
    connection.ensure_connection()
    connection.health_check_done = True
    return connection.connection


@pytest.mark.django_db(transaction=True)  # Django's rules close a connection left in a transaction
def test_a_worker_checks_its_connections_once_a_second_not_after_every_task(monkeypatch):
    monkeypatch.setattr(exsync_celery._checked, "at", time.monotonic(), raising=False)
    mark = mark_connection()
    for _ in range(50):
        exsync_celery._close_old_connections(task=_Task)
    assert not checked_since(mark), "checked a moment ago: the next tasks go without"

    exsync_celery._checked.at = time.monotonic() - exsync_celery.CHECK_AFTER_SECONDS
    exsync_celery._close_old_connections(task=_Task)
    assert checked_since(mark), "a second later: checked again"


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_had_an_error_is_checked_after_the_very_next_task(monkeypatch):
    monkeypatch.setattr(exsync_celery._checked, "at", time.monotonic(), raising=False)
    mark = mark_connection()
    connection.errors_occurred = True
    exsync_celery._close_old_connections(task=_Task)
    # Checked at once: found usable, so kept, its error forgotten.
    assert connection.errors_occurred is False and connection.connection is mark
