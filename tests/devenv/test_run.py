"""`make run`'s hints work when pasted: manage.py in a plain shell talks to make run's PostgreSQL."""

import json
import os
import secrets
import subprocess
import sys

import pytest

from devenv import run
from tests.staff.conftest import make_staff

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def local_dir(pg, tmp_path):
    """A .local/ as `make run` leaves it, pointing at the test session's cluster."""
    state = {"pg": {"app_password": pg.password, "owner": pg.owner_password, "admin": pg.admin_password,
                    "ports": list(pg.ports)}}  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "pg").symlink_to(pg.root)
    (tmp_path / "secret_key").write_text(secrets.token_urlsafe(50))
    return tmp_path


def test_the_printed_reset_hint_is_a_make_target_that_runs_manage_py():
    assert run.RESET_HINT == 'make manage ARGS="changepassword admin"'
    makefile = (run.BASE_DIR / "Makefile").read_text()
    assert "\nmanage: $(RUN_STAMP)\n\t$(PY) manage.py $(ARGS)\n" in makefile


def test_local_environment_is_the_owner_on_make_runs_cluster(local_dir, pg, monkeypatch):
    monkeypatch.setattr(run, "LOCAL", local_dir)
    monkeypatch.setattr(run, "STATE", local_dir / "state.json")
    env, started = run.local_environment()
    assert env["DATABASE_URL"] == pg.owner_url and started == []  # running already: nothing to start or stop


def test_manage_py_without_database_url_changes_make_runs_database(local_dir, pg):
    user = make_staff("admin")
    code = (
        "import sys, devenv.run as r, manage; from pathlib import Path\n"
        f"r.LOCAL = Path({str(local_dir)!r}); r.STATE = r.LOCAL / 'state.json'; manage.LOCAL_STATE = r.STATE\n"
        "sys.argv = ['manage.py', 'shell', '-c', \"from django.contrib.auth.models import User; "
        "u = User.objects.get(username='admin'); u.set_password('a-new-long-password'); u.save()\"]\n"
        "manage.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_URL", "SECRET_KEY"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=run.BASE_DIR, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"using make run's PostgreSQL in .local/ (port {pg.ports[0]})" in out.stderr
    user.refresh_from_db()
    assert user.check_password("a-new-long-password")
    assert not (run.BASE_DIR / "db.sqlite3").exists()


def test_staff_otp_required_set_in_the_shell_is_honoured(monkeypatch):
    monkeypatch.setenv("STAFF_OTP_REQUIRED", "1")
    assert run._environment(None, None)["STAFF_OTP_REQUIRED"] == "1"
    monkeypatch.delenv("STAFF_OTP_REQUIRED")
    assert run._environment(None, None)["STAFF_OTP_REQUIRED"] == "0"  # make run's local default


# A gunicorn master whose just-forked worker missed the stop signal: the master waits for it, the worker
# never stops. stop_children must end both within its deadline, silently.
STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    while True:
        time.sleep(1)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_stopping_ends_children_that_ignore_their_signal_and_their_own_children_within_five_seconds():
    import time

    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, start_new_session=True)
    assert stubborn.stdout.readline() == b"ready\n"
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    started = time.monotonic()
    run.stop_children([(stubborn, run.signal.SIGINT), (polite, run.signal.SIGTERM)])
    assert time.monotonic() - started < 5
    assert stubborn.returncode == -run.signal.SIGKILL and polite.returncode == -run.signal.SIGTERM
    group = subprocess.run(["ps", "-o", "stat=", "-g", str(stubborn.pid)], capture_output=True, text=True)
    assert all(state.startswith("Z") for state in group.stdout.split())  # the forked grandchild died too
