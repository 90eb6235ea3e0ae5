"""Shared test set-up: service markers that skip on a laptop but fail loudly under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _redis_problem() -> str | None:
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        return "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {urlparse(url).netloc} does not answer: {exc}"
    return None


def _postgres_problem() -> str | None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        return f"DATABASE_URL does not point at PostgreSQL (engine {engine})"
    return None


def _browser_problem() -> str | None:
    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


CHECKS = {"postgres": _postgres_problem, "redis": _redis_problem, "browser": _browser_problem}


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker, check in CHECKS.items():
        if item.get_closest_marker(marker) is None:
            continue
        problem = check()
        if problem is None:
            continue
        if CI:
            pytest.fail(f"CI=true requires {marker}: {problem}", pytrace=False)
        pytest.skip(f"needs {marker}: {problem}")


@pytest.fixture
def admin_user(db):
    from tests.factories import UserFactory

    return UserFactory(role="admin")


@pytest.fixture
def helpdesk_user(db):
    from tests.factories import UserFactory

    return UserFactory(role="helpdesk")


ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def worker_queue(media_root):
    """A worker process on a queue of its own (and the default one), pointed at the test
    database and media folder, so tasks sent by views reach it too."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "worker-under-test",
        "EXSYNC_TESTING": "1",  # the same broker folder as the test process
        "DJANGO_SETTINGS_MODULE": "exsync.settings",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "exsync",
            "worker",
            "--pool=solo",
            "-Q",
            f"{queue},celery",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(output)


# A worker whose default queue is the test's own: a task it sends again itself (a notice's
# retry, `apply_async` without a queue) comes back to it, never to a worker of another test or
# of another run on the same Redis database.
_WORKER_MAIN = (
    "import sys\n"
    "from exsync.celery import app\n"
    "app.conf.task_default_queue = sys.argv[1]\n"
    "app.conf.worker_enable_remote_control = False\n"
    "app.worker_main(['worker', '-Q', sys.argv[1], *sys.argv[2:]])\n"
)


@pytest.fixture
def worker_start(media_root, tmp_path):
    """Start real `celery worker` processes (prefork unless `pool=` says otherwise) on a queue,
    with extra environment, pointed at the test database:
    `worker_start(queue=..., env={...}, concurrency=2)`.

    Each runs in a session of its own, so a test can SIGKILL a worker and its pool processes
    at once (`os.killpg(proc.pid, signal.SIGKILL)`); the rest are stopped at teardown.
    SHOW_WORKER_LOG=1 prints their output.
    """
    import signal

    started: list[tuple[subprocess.Popen, Path]] = []

    def start(
        *,
        queue: str,
        env: dict[str, str] | None = None,
        concurrency: int = 2,
        pool: str = "prefork",
    ) -> subprocess.Popen:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-c", _WORKER_MAIN, queue, f"--pool={pool}"),
                    *(f"--concurrency={concurrency}", "--without-mingle", "--without-gossip"),
                    *("--without-heartbeat", "--loglevel=WARNING"),
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    "DATABASE_URL": _database_url(),
                    "MEDIA_ROOT": str(media_root),
                    "SECRET_KEY": "worker-under-test",
                    "EXSYNC_TESTING": "1",
                    "DJANGO_SETTINGS_MODULE": "exsync.settings",
                    **(env or {}),
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if os.environ.get("SHOW_WORKER_LOG"):
            print(log.read_text())


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """A test's rollback sends no post_delete: start each test without the wordings and
    instructions an earlier one cached in this process (exsync/process_cache.py), and without
    what it kept in the (in-memory) cache: a comparison keyed by ids a rolled-back test used."""
    from django.core.cache import cache

    from helpdesk.selectors import INSTRUCTIONS
    from migrations_plan.notices.content import ORGANISATION_ZONES
    from migrations_plan.notices.wording import OVERRIDES

    INSTRUCTIONS.clear()
    OVERRIDES.clear()
    ORGANISATION_ZONES.clear()
    cache.clear()
