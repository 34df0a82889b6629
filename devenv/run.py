"""`make run`: start local PostgreSQL (primary + streaming replica) and Redis when installed, then serve.

Beside gunicorn it runs the queue worker (`manage.py worker`) with the console email backend, so every email
(the signup's confirmation, with its working link to this local server) is printed in this output.

State lives in .local/ (git-ignored) so signups survive restarts. Without PostgreSQL or Redis it runs on
SQLite and the local-memory cache, and says so. Ctrl-C stops everything it started.

`manage.py` run in a plain shell (no DATABASE_URL) uses the same local PostgreSQL through
`local_environment()`, so `make manage ARGS="changepassword admin"` (or `.venv/bin/python manage.py ...`)
changes what `make run` serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devenv.servers import (
    BASE_DIR,
    MissingBinary,
    PgCluster,
    RedisServer,
    ServerCommandFailed,
    local_app_env,
    local_owner_env,
    reachable_by_postgres,
)

LOCAL = BASE_DIR / ".local"
STATE = LOCAL / "state.json"
STAFF_USER = "admin"
RESET_HINT = f'make manage ARGS="changepassword {STAFF_USER}"'


STARTED = time.monotonic()
# Ctrl-C stops everything within 5 s: the children get this long to stop by themselves, then their whole
# process group is killed (a gunicorn worker forked just before the signal can miss it and would be waited
# for gunicorn's graceful_timeout, 25 s, then killed with "Worker was sent SIGKILL! Perhaps out of memory?").
STOP_SECONDS = 3.0
# What a person sets in their shell wins over make run's local defaults (local_app_env) for these.
YOURS = ("STAFF_OTP_REQUIRED",)


def _say(msg: str) -> None:
    print(f"==> [{time.monotonic() - STARTED:4.1f} s] {msg}", flush=True)


def _load_state() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def _save_state(state: dict) -> None:
    LOCAL.mkdir(exist_ok=True)
    STATE.write_text(json.dumps(state))
    STATE.chmod(0o600)


def _pg_folder() -> Path:
    """Return where the local cluster lives: .local/pg, or a folder the postgres user can reach, linked from it."""
    link = LOCAL / "pg"
    if link.is_symlink():
        return link.resolve()
    if link.exists() or reachable_by_postgres(link):
        return link
    # As root, PostgreSQL runs as the postgres user, who cannot enter a checkout under /root or a mktemp folder.
    # A fresh, unguessable folder (the link remembers it), in the temp area that survives reboots.
    outside = Path(tempfile.mkdtemp(prefix="signup-pg-", dir="/var/tmp"))
    outside.chmod(0o755)  # the postgres user passes through to the data folders it owns
    LOCAL.mkdir(exist_ok=True)
    link.symlink_to(outside)  # `make clean` removes both
    return outside


def _start_postgres(state: dict) -> PgCluster | None:
    saved = state.get("pg", {})
    sqlite = f"using SQLite in {BASE_DIR / 'db.sqlite3'}"
    try:
        folder = _pg_folder()
        pg = PgCluster(folder, password=saved.get("app_password", ""), owner_password=saved.get("owner", ""),
                       admin_password=saved.get("admin", ""), ports=tuple(saved.get("ports", ())))  # fmt: skip
    except MissingBinary as exc:
        _say(f"{exc}: {sqlite}")
        return None
    try:
        if pg.exists:
            _say(f"starting PostgreSQL primary :{pg.ports[0]} and replica :{pg.ports[1]} in {folder}")
            pg.start()
            pg.ensure_owner()  # a cluster made before the owner/app split: its old role hands the database over
        else:
            _say(f"creating PostgreSQL primary :{pg.ports[0]} and streaming replica :{pg.ports[1]} in {folder}")
            pg.create()
    except (ServerCommandFailed, TimeoutError) as exc:
        _say(f"PostgreSQL did not start ({exc}); {sqlite}. Logs: {folder}/*.log; `make clean` starts afresh.")
        pg.stop()
        return None
    state["pg"] = {"app_password": pg.password, "owner": pg.owner_password, "admin": pg.admin_password,
                   "ports": list(pg.ports)}  # fmt: skip
    _save_state(state)
    return pg


def _start_redis() -> RedisServer | None:
    try:
        redis = RedisServer(LOCAL / "redis")
    except MissingBinary as exc:
        _say(f"{exc}: using the local-memory cache")
        return None
    redis.start()
    _say(f"Redis on :{redis.port}")
    return redis


def _environment(pg: PgCluster | None, redis: RedisServer | None) -> dict:
    env = {**os.environ, **local_app_env(pg, redis), "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text")}
    env |= {name: os.environ[name] for name in YOURS if name in os.environ}  # STAFF_OTP_REQUIRED=1 make run
    if pg:
        key_file = LOCAL / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        env.setdefault("SECRET_KEY", key_file.read_text().strip())
    return env


def _manage(env: dict, *args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    out = subprocess.DEVNULL if quiet else None
    cmd = [sys.executable, "manage.py", *args]
    return subprocess.run(cmd, cwd=BASE_DIR, env=env, check=check, stdout=out, stderr=out)


def _background(env: dict, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "manage.py", *args]
    return subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ensure_staff_user(env: dict) -> None:
    password = secrets.token_urlsafe(12)
    created = _manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        "createsuperuser", "--noinput", "--username", STAFF_USER, "--email", "admin@localhost",
        check=False, quiet=True,
    )  # fmt: skip
    if created.returncode == 0:
        _say(f"created staff user '{STAFF_USER}' with password: {password}   (shown once; it is not stored)")
    else:
        _say(f"staff user '{STAFF_USER}' exists (new password: {RESET_HINT}, in another terminal)")


def _wait_for_health(base: str, gunicorn: subprocess.Popen, timeout: float = 60) -> bool:
    """Wait until gunicorn answers /health (or exits); say whether it answered."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and gunicorn.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _child(cmd: list[str], env: dict, stop_with: int, started: list) -> subprocess.Popen:
    """Start a child in its own process group (Ctrl-C reaches only this script, which stops the children) and
    add it to `started` before a Ctrl-C can interrupt: one landing between the fork and the bookkeeping would
    leave the child running after this script exits."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        child = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, start_new_session=True, preexec_fn=_unblock)
        started.append((child, stop_with))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a Ctrl-C held meanwhile is raised here
    return child


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # in the child: it must hear its stop signal


def stop_children(children: list[tuple[subprocess.Popen, int]], seconds: float = STOP_SECONDS) -> None:
    """Send each child its stop signal, wait up to `seconds` for all, then kill what is left, group and all."""
    running = [(child, sig) for child, sig in children if child is not None and child.poll() is None]
    for child, sig in running:
        child.send_signal(sig)
    deadline = time.monotonic() + seconds
    for child, _sig in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):  # the group: a gunicorn master's workers go with it
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def local_environment() -> tuple[dict, list] | None:
    """Return manage.py's environment for `make run`'s PostgreSQL (as its owner), or None without one.

    Starts the servers `make run` is not running; returns them too, for the caller to stop afterwards.
    """
    saved = _load_state().get("pg")
    link = LOCAL / "pg"
    if not saved or not link.exists():
        return None
    pg = PgCluster(link.resolve(), password=saved["app_password"], owner_password=saved["owner"],
                   admin_password=saved["admin"], ports=tuple(saved["ports"]))  # fmt: skip
    if not pg.exists:
        return None
    started = [server for server in (pg.primary, *pg.standbys) if not server.running]
    for server in started:
        server.start()
    env = {**local_app_env(pg, None), **local_owner_env(pg), "LOG_FORMAT": "text"}
    if (LOCAL / "secret_key").exists():
        env["SECRET_KEY"] = (LOCAL / "secret_key").read_text().strip()
    return env, started


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    state = _load_state()
    pg = _start_postgres(state)
    redis = _start_redis()
    children: list = []
    try:
        env = _environment(pg, redis)
        # One-off tasks as the database owner; the app itself (gunicorn) as its own DML-only role.
        owner_env = {**env, **local_owner_env(pg)} if pg else env
        # collectstatic needs no database: it runs beside the migrations (a few seconds off the first run).
        static = _background(env, "collectstatic", "--noinput") if pg else None
        _say("applying database migrations" + (", collecting static files" if static else ""))
        _manage(owner_env, "migrate", "--noinput", quiet=True)
        if pg:
            _say("granting the app's role its rights")
            _manage(owner_env, "setup_db_roles", quiet=True)
        if static and static.wait():
            raise subprocess.CalledProcessError(static.returncode, static.args)
        _ensure_staff_user(env)
        port = env.get("PORT", "8000")
        env |= {"HOST": "127.0.0.1", "PORT": port}
        admin = env.get("ADMIN_URL", "admin/").strip("/")
        base = f"http://127.0.0.1:{port}"
        _say(f"serving on {base}/  signup: {base}/signup/  admin: {base}/{admin}/  ops: {base}/ops/  "
             f"health: {base}/health  ready: {base}/ready   (Ctrl-C stops everything)")  # fmt: skip
        # Emails print here (console backend), their links pointing at this server.
        env.setdefault("EMAIL_PROVIDER", "console")
        env.setdefault("PUBLIC_BASE_URL", base)
        # The queue worker stops on SIGTERM: it finishes the email it is sending (one cut short stays queued).
        _child([sys.executable, "manage.py", "worker"], env, signal.SIGTERM, children)
        _say("queue worker started: emails are printed below")
        # gunicorn stops on SIGINT, its quick shutdown: a local server has no requests worth draining.
        gunicorn = _child([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "project.wsgi"], env,
                          signal.SIGINT, children)  # fmt: skip
        if _wait_for_health(base, gunicorn):
            _say(f"answering on {base}/")
        return gunicorn.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_children(children)
        if redis:
            redis.stop()
        if pg:
            pg.stop()
        _say("stopped")


if __name__ == "__main__":
    sys.exit(main())
