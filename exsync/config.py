"""Turns environment variables into settings values; pure functions so tests can feed any env."""

from __future__ import annotations

import ipaddress
import re
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
        # exsync's page queries are short; PostgreSQL's JIT only adds compile time to them
        # (measured: 450 ms of compiling for a 91 ms query on the affected-people list).
        config.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
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
            # kombu's Redis transport keeping one client for its acks (exsync/broker.py); other
            # schemes (rediss://, sentinel://, another broker, failover lists) are left to kombu
            # as they are, and so are separate read/write URLs, which Celery takes from the
            # environment itself (the transport named here would apply to both).
            "broker_transport": "exsync.broker:Transport" if _plain_redis(broker, env) else None,
            "result_backend": backend,
            "broker_transport_options": {"visibility_timeout": 3600},
        }
    folder = Path(env.get("CELERY_BROKER_FOLDER", "") or base_dir / "var" / "broker")
    return {
        "broker_url": "filesystem://",
        "broker_transport": None,
        "result_backend": None,
        "broker_transport_options": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        },
        "broker_folder": folder,
    }


def _plain_redis(broker: str, env: Mapping[str, str]) -> bool:
    separate = any(env.get(f"CELERY_BROKER_{way}_URL", "").strip() for way in ("READ", "WRITE"))
    return broker.startswith("redis://") and ";" not in broker and not separate


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


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: expected {minimum} or more")
    return value


def proxy_ssl_header(env: Mapping[str, str]) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (or X-Forwarded-Proto, or NAME=value).

    None unless set: trusting the header is only safe when a proxy in front of exsync always
    sets it (overwriting what the client sent); without one, any client could claim HTTPS.
    """
    raw = env.get("SECURE_PROXY_SSL_HEADER", "").strip()
    if not raw:
        return None
    name, _, value = raw.partition("=")
    name = name.strip().upper().replace("-", "_")
    if not name.startswith("HTTP_"):
        name = f"HTTP_{name}"
    value = value.strip() or "https"
    if not re.fullmatch(r"HTTP_[A-Z0-9_]+", name) or not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise ConfigError(
            f"SECURE_PROXY_SSL_HEADER={raw!r}: expected a header name such as "
            "HTTP_X_FORWARDED_PROTO, optionally followed by =VALUE (default https)"
        )
    return name, value


def tls_config(env: Mapping[str, str], *, production: bool) -> dict[str, Any]:
    """HTTPS settings for running behind a TLS proxy: on by default in production (DEBUG off).

    Each can be turned off on its own; SECURE_COOKIES is an older switch for both cookie flags.
    """
    hsts_seconds = env_int(env, "SECURE_HSTS_SECONDS", 31_536_000 if production else 0)
    cookies = env_bool(env, "SECURE_COOKIES", production)
    return {
        "SECURE_SSL_REDIRECT": env_bool(env, "SECURE_SSL_REDIRECT", production),
        "SECURE_HSTS_SECONDS": hsts_seconds,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": env_bool(
            env, "SECURE_HSTS_INCLUDE_SUBDOMAINS", production
        ),
        "SECURE_HSTS_PRELOAD": env_bool(env, "SECURE_HSTS_PRELOAD", production),
        "SESSION_COOKIE_SECURE": env_bool(env, "SESSION_COOKIE_SECURE", cookies),
        "CSRF_COOKIE_SECURE": env_bool(env, "CSRF_COOKIE_SECURE", cookies),
        "SECURE_PROXY_SSL_HEADER": proxy_ssl_header(env),
    }


def client_ip(request: Any, *, trusted_proxies: int) -> str | None:
    """The address a request came from, for django-axes' failed-login counts.

    With no trusted proxy that is REMOTE_ADDR. Behind `trusted_proxies` proxies that each append
    the address they were connected from to X-Forwarded-For, the client is the entry that many
    places from the right; anything further left was written by the client and may be forged.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    if trusted_proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if len(forwarded) < trusted_proxies:
        return remote  # not through the proxies we were told about
    candidate = forwarded[-trusted_proxies]
    try:
        # A proxy may write "address:port" or "[v6]:port"; anything else is not an address.
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        host = candidate.rsplit(":", 1)[0].strip("[]") if ":" in candidate else candidate
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return remote
