"""Shared set-up for benchmarks: a PostgreSQL database of their own, migrated, Django ready."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_database() -> None:
    """Create the benchmark database if it does not exist (benchmarks never touch exsync's own)."""
    import psycopg2

    url = urlparse(os.environ["DATABASE_URL"])
    if url.scheme not in ("postgres", "postgresql"):
        sys.exit("benchmarks run against PostgreSQL: set DATABASE_URL=postgres://...")
    name = url.path.lstrip("/")
    conn = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")
    conn.close()


def django_ready() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exsync.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def result_line(name: str, **figures: object) -> None:
    print(f"bench-{name}: " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
