"""Settings come from the environment, with safe defaults and clear errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exsync import config

BASE = Path("/srv/exsync")


def test_no_database_url_means_a_sqlite_file_under_var():
    db = config.database_config({}, base_dir=BASE)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(BASE / "var" / "exsync.sqlite3")


def test_database_url_selects_postgresql_with_health_checks():
    db = config.database_config(
        {"DATABASE_URL": "postgres://exsync:s3cret@db.internal:5433/exsync"}, base_dir=BASE
    )
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "db.internal",
        5433,
        "exsync",
        "exsync",
    )
    assert db["CONN_HEALTH_CHECKS"] is True


def test_a_malformed_database_url_names_the_variable():
    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        config.database_config({"DATABASE_URL": "nonsense://x"}, base_dir=BASE)


def test_without_redis_the_broker_is_an_embedded_folder():
    celery = config.celery_config({}, base_dir=BASE)
    assert celery["broker_url"] == "filesystem://"
    assert celery["broker_transport_options"]["data_folder_in"] == str(BASE / "var/broker/queue")


def test_redis_url_becomes_broker_and_result_backend():
    celery = config.celery_config({"REDIS_URL": "redis://cache:6379/2"}, base_dir=BASE)
    assert celery["broker_url"] == "redis://cache:6379/2"
    assert celery["result_backend"] == "redis://cache:6379/2"


def test_email_defaults_to_the_database_outbox_and_smtp_when_configured():
    assert config.email_config({})["EMAIL_BACKEND"] == "migrations_plan.outbox.DatabaseEmailBackend"
    smtp = config.email_config({"EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587"})
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_USE_TLS"]) == (
        "smtp.example.com",
        587,
        True,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("off", False), ("", False)]
)
def test_booleans_accept_the_usual_words(raw, expected):
    assert config.env_bool({"DEBUG": raw}, "DEBUG", not expected) is expected


def test_a_misspelt_boolean_is_an_error_not_false():
    with pytest.raises(config.ConfigError, match="DEBUG='ture'"):
        config.env_bool({"DEBUG": "ture"}, "DEBUG", False)


def test_allowed_hosts_is_a_comma_separated_list():
    assert config.env_list({"ALLOWED_HOSTS": "exsync.corp, localhost"}, "ALLOWED_HOSTS", []) == [
        "exsync.corp",
        "localhost",
    ]


def test_secret_key_is_required_when_debug_is_off():
    env = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "EXSYNC_TESTING"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "exsync.settings"
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in proc.stderr
