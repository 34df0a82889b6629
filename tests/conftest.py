"""Real services for the whole test session: PostgreSQL primary + streaming replica, Redis, moto.

They start in pytest_configure, before Django reads its settings from the environment (pytest-django
supports configuring Django from a conftest's pytest_configure). The test database is the throwaway
cluster's own database: migrated on the primary, it reaches the replica by real streaming replication.
When a binary is missing the tests that need it skip with the reason, or fail when CI=true.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from devenv.servers import AppServer, MissingBinary, MotoServer, PgCluster, RedisServer, local_app_env, local_owner_env

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"  # screenshots, kept after the run
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


class Services:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="signup-tests-"))
        os.chmod(self.root, 0o755)  # the postgres user must reach its data folder below
        self.pg: PgCluster | None = None
        self.redis: RedisServer | None = None
        self.missing: dict[str, str] = {}
        self.secret_key = secrets.token_urlsafe(50)

    def start(self) -> None:
        try:
            self.pg = PgCluster(self.root / "pg")
            self.pg.create()
        except MissingBinary as exc:
            self.missing["postgres"] = str(exc)
        try:
            self.redis = RedisServer(self.root / "redis")
            self.redis.start()
        except MissingBinary as exc:
            self.missing["redis"] = str(exc)
        if CI and self.missing:
            raise pytest.UsageError("CI=true but services are missing: " + "; ".join(self.missing.values()))

    def environ(self) -> dict[str, str]:
        """The app's environment (its own DML-only role): what the gunicorn servers of the tests get."""
        env = {"SECRET_KEY": self.secret_key, "STATIC_ROOT": str(self.root / "static"), "LOG_LEVEL": "INFO",
               "DATABASE_REPLICA_URLS": "", "REDIS_URL": "",
               "ERASURE_LEDGER_DIR": str(self.root / "erasure-ledger")}  # fmt: skip
        env |= local_app_env(self.pg, self.redis)
        if not self.pg:
            env["DATABASE_URL"] = f"sqlite:///{self.root / 'db.sqlite3'}"
        return env

    def test_process_environ(self) -> dict[str, str]:
        """This process migrates and empties tables between tests: it connects as the owner, to every server."""
        env = self.environ()
        return env | local_owner_env(self.pg, replicas=True) if self.pg else env

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)


SERVICES = Services()


def pytest_configure(config):
    SERVICES.start()
    os.environ.update(SERVICES.test_process_environ())
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from django.conf import settings

    # In this process replicas are sampled only when a test says so (monitor.refresh()): deterministic.
    # The gunicorn servers the tests start keep the background sampler, as in production.
    settings.REPLICA_MONITOR_THREAD = False


def pytest_unconfigure(config):
    SERVICES.stop()


# --- services ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg() -> PgCluster:
    if SERVICES.pg is None:
        pytest.skip(SERVICES.missing["postgres"])
    return SERVICES.pg


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    if SERVICES.redis is None:
        pytest.skip(SERVICES.missing["redis"])
    return SERVICES.redis


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker):
    """Migrate the throwaway primary once (as the owner), make the app's role, collect static files."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("migrate", verbosity=0)
        if SERVICES.pg:
            call_command("setup_db_roles", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if SERVICES.pg:
            SERVICES.pg.wait_for_replica()


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Real commits on the real primary (no wrapping transaction); tables emptied afterwards."""
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connections

    from project.cache import breaker
    from project.db import bounds
    from project.db.monitor import monitor

    with django_db_blocker.unblock():
        breaker.reset()  # a Redis stopped by an earlier test must not leave this one skipping the cache
        bounds.reset()  # nor a database frozen by an earlier test leave its breaker failing this one fast
        cache.clear()
        # The monitor's thread met pytest-django's database blocker between tests: start from a fresh sample.
        monitor.reset()
        if SERVICES.pg:
            SERVICES.pg.wait_for_replica()
            monitor.refresh()
        yield
        connections.close_all()
        call_command("flush", database="default", interactive=False, verbosity=0)
        # The erasure ledger goes with the database it belongs to (else the next test's worker sees a "restore").
        shutil.rmtree(SERVICES.root / "erasure-ledger", ignore_errors=True)
        from formdef import published
        from users import tombstones

        tombstones.restore_check.reset()
        published.forget()  # the flush restarts the ids: a version this process read belongs to the last test
        connections.close_all()
        breaker.reset()
        cache.clear()
        if SERVICES.pg:
            SERVICES.pg.wait_for_replica()


@pytest.fixture
def paused_replica(pg, live_db):
    """Freeze WAL replay on the replica: it keeps serving reads, but sees nothing new."""
    pg.wait_for_replica()
    pg.pause_replay()
    yield pg
    pg.resume_replay()


@pytest.fixture(scope="session")
def app_server(django_db_setup):
    """The real app under gunicorn, on the session's services."""
    server = AppServer(env=SERVICES.environ())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's), driven by Playwright."""
    executable = shutil.which("chromium")
    if not executable:
        if CI:
            pytest.fail("CI=true but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    # Playwright's sync API keeps an event loop in this thread; the tests' ORM checks are plain sync code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            instance = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
