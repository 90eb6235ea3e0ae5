"""Turns environment variables into settings values; pure functions so tests can feed any env."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import environ

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r}: expected one of true/false/1/0/yes/no/on/off")


def env_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_config(env: Mapping[str, str], *, base_dir: Path) -> dict[str, Any]:
    """DATABASE_URL, or a SQLite file under var/ that needs no server."""
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(base_dir / "var" / "exsync.sqlite3"),
            # WAL + IMMEDIATE transactions let the web server and the Celery worker write the
            # same file without "database is locked" errors under normal demo load.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # environ raises bare exceptions for unknown schemes
        raise ConfigError(f"DATABASE_URL={url!r} is not a database URL: {exc}") from exc
    if "." not in config.get("ENGINE", ""):  # environ passes unknown schemes through as-is
        raise ConfigError(
            f"DATABASE_URL={url!r}: unknown scheme; use postgres://USER@HOST:PORT/NAME or sqlite:///PATH"
        )
    if config["ENGINE"] == "django.db.backends.postgresql":
        config.setdefault("CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    return config


def celery_config(env: Mapping[str, str], *, base_dir: Path) -> dict[str, Any]:
    """Redis when REDIS_URL (or CELERY_BROKER_URL) is set, else kombu's filesystem transport.

    The filesystem transport needs no server at all: web, worker and beat exchange messages
    through a folder, which is what the one-command demo runs on.
    """
    broker = env.get("CELERY_BROKER_URL", "").strip() or env.get("REDIS_URL", "").strip()
    if broker:
        backend = env.get("CELERY_RESULT_BACKEND", "").strip() or (
            broker if broker.startswith(("redis://", "rediss://")) else None
        )
        return {
            "broker_url": broker,
            "result_backend": backend,
            "broker_transport_options": {"visibility_timeout": 3600},
        }
    folder = Path(env.get("CELERY_BROKER_FOLDER", "") or base_dir / "var" / "broker")
    return {
        "broker_url": "filesystem://",
        "result_backend": None,
        "broker_transport_options": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        },
        "broker_folder": folder,
    }


def email_config(env: Mapping[str, str]) -> dict[str, Any]:
    """EMAIL_URL (smtp://user:pass@host:port, smtp+tls:// for STARTTLS) or the database outbox."""
    url = env.get("EMAIL_URL", "").strip()
    if not url:
        return {"EMAIL_BACKEND": "migrations_plan.outbox.DatabaseEmailBackend"}
    try:
        config = environ.Env.email_url_config(url)
    except Exception as exc:
        raise ConfigError(f"EMAIL_URL={url!r} is not an e-mail URL: {exc}") from exc
    return config


def secret_key(env: Mapping[str, str], *, debug: bool) -> str:
    key = env.get("SECRET_KEY", "").strip()
    if key:
        return key
    if debug:
        return "django-insecure-exsync-local-development-only"
    raise ConfigError(
        "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=true locally."
    )
