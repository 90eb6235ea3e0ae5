"""Settings come from the environment, with safe defaults and clear errors."""

import json
import os
import secrets
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


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://cache:6379/2", "exsync.broker:Transport"),  # one client for its acks
        ("rediss://cache:6380/2", None),  # kombu's own: TLS, Sentinel, other brokers
        ("sentinel://cache:26379", None),
        ("redis://a:6379/2;redis://b:6379/2", None),  # failover: kombu re-parses each URL
        ("", None),  # the embedded folder
    ],
)
def test_only_a_plain_redis_broker_gets_exsyncs_transport(url, transport):
    assert config.celery_config({"REDIS_URL": url}, base_dir=BASE)["broker_transport"] == transport


def test_separate_read_and_write_brokers_keep_kombus_transport():
    env = {"REDIS_URL": "redis://cache:6379/2", "CELERY_BROKER_WRITE_URL": "rediss://w:6380/2"}
    assert config.celery_config(env, base_dir=BASE)["broker_transport"] is None


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


# -- HTTPS behind a TLS proxy, and the client address behind it ------------------------------------


def test_production_turns_every_https_setting_on_by_default():
    tls = config.tls_config({}, production=True)
    assert tls["SECURE_SSL_REDIRECT"] is True
    assert tls["SECURE_HSTS_SECONDS"] == 31_536_000
    assert tls["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is tls["SECURE_HSTS_PRELOAD"] is True
    assert tls["SESSION_COOKIE_SECURE"] is tls["CSRF_COOKIE_SECURE"] is True
    assert tls["SECURE_PROXY_SSL_HEADER"] is None, "trusted only when the operator says so"


def test_debug_keeps_plain_http_working():
    tls = config.tls_config({}, production=False)
    assert tls["SECURE_SSL_REDIRECT"] is False
    assert tls["SECURE_HSTS_SECONDS"] == 0
    assert tls["SESSION_COOKIE_SECURE"] is tls["CSRF_COOKIE_SECURE"] is False


def test_each_https_setting_can_be_turned_off_on_its_own():
    tls = config.tls_config(
        {
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "3600",
            "SECURE_HSTS_PRELOAD": "no",
        },
        production=True,
    )
    assert tls["SECURE_SSL_REDIRECT"] is False
    assert tls["SECURE_HSTS_SECONDS"] == 3600
    assert tls["SECURE_HSTS_PRELOAD"] is False
    assert tls["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert (
        config.tls_config({"SECURE_COOKIES": "false"}, production=True)["SESSION_COOKIE_SECURE"]
        is False
    ), "the older switch for both cookie flags still works"


@pytest.mark.parametrize(
    "raw",
    ["HTTP_X_FORWARDED_PROTO", "X-Forwarded-Proto", "http_x_forwarded_proto=https"],
)
def test_the_proxy_ssl_header_is_one_header_name(raw):
    assert config.proxy_ssl_header({"SECURE_PROXY_SSL_HEADER": raw}) == (
        "HTTP_X_FORWARDED_PROTO",
        "https",
    )


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
        ("SECURE_HSTS_SECONDS", "one year"),
        ("SECURE_HSTS_SECONDS", "-1"),
    ],
)
def test_malformed_https_settings_name_the_variable(name, raw):
    with pytest.raises(config.ConfigError, match=name):
        config.tls_config({name: raw}, production=True)


class _Request:
    def __init__(self, **meta: str) -> None:
        self.META = meta


def test_without_a_trusted_proxy_the_client_is_the_peer_address():
    forged = _Request(REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert config.client_ip(forged, trusted_proxies=0) == "192.0.2.10"


def test_behind_trusted_proxies_the_client_is_what_the_outermost_one_appended():
    one = _Request(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.99, 192.0.2.10")
    assert config.client_ip(one, trusted_proxies=1) == "192.0.2.10", "the left one is forgeable"
    two = _Request(REMOTE_ADDR="10.0.0.3", HTTP_X_FORWARDED_FOR="192.0.2.10, 10.0.0.2")
    assert config.client_ip(two, trusted_proxies=2) == "192.0.2.10"
    bypassed = _Request(REMOTE_ADDR="10.0.0.2")
    assert config.client_ip(bypassed, trusted_proxies=1) == "10.0.0.2"


ROOT = Path(__file__).resolve().parent.parent
# The production environment README "Configuration" documents; the rest are secure defaults.
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "exsync.corp.example",
    "CSRF_TRUSTED_ORIGINS": "https://exsync.corp.example",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}
# The same with every HTTPS setting spelt out, as docker-compose.yml passes them.
PRODUCTION_SPELT_OUT = {
    **PRODUCTION,
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
}


def _outside_the_test_suite(extra: dict[str, str]) -> dict[str, str]:
    """This environment without anything the suite or a developer's shell set for exsync."""
    ours = {"DEBUG", "EXSYNC_TESTING", "SECRET_KEY", "SECURE_COOKIES", "TRUSTED_PROXIES"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ours and not k.startswith(("SECURE_", "SESSION_", "CSRF_", "ALLOWED_"))
    }
    return {**env, "DJANGO_SETTINGS_MODULE": "exsync.settings", **extra}


@pytest.mark.parametrize(
    "production", [PRODUCTION, PRODUCTION_SPELT_OUT], ids=["defaults", "spelt"]
)
def test_check_deploy_is_clean_with_the_documented_production_settings(production):
    env = _outside_the_test_suite({**production, "SECRET_KEY": secrets.token_urlsafe(50)})
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues (0 silenced)." in proc.stdout
    assert "WARNING" not in proc.stdout + proc.stderr


def test_debug_defaults_stay_plain_http_for_make_run():
    env = _outside_the_test_suite({"DEBUG": "true"})
    names = [
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "TRUSTED_PROXIES",
    ]
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "TRUSTED_PROXIES": 0,
    }
