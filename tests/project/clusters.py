"""Throwaway clusters for tests that freeze, kill or promote servers (the session's cluster stays untouched)."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devenv.servers import BASE_DIR, PgCluster, local_app_env, local_owner_env
from tests.conftest import SERVICES


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**os.environ, **env}, check=True,
                   capture_output=True)  # fmt: skip


def make_cluster(replicas: int = 1) -> tuple[PgCluster, dict]:
    """A migrated cluster with the app's role; return it and the app's environment for it."""
    root = Path(tempfile.mkdtemp(prefix="signup-bounds-"))
    root.chmod(0o755)
    pg = PgCluster(root / "pg", replicas=replicas)
    pg.create()
    # The session's Redis counts signups per IP for every test: these tests are not about the rate limit.
    env = {**SERVICES.environ(), **local_app_env(pg, SERVICES.redis), "SIGNUP_RATE_LIMIT": "10000/600"}
    manage({**env, **local_owner_env(pg)}, "migrate", "--noinput")
    manage({**env, **local_owner_env(pg)}, "setup_db_roles")
    pg.wait_for_replica()
    return pg, env


def destroy_cluster(pg: PgCluster) -> None:
    for server in (pg.primary, *pg.standbys):
        if server.running:
            server.thaw()  # a frozen server cannot stop
    pg.destroy()
    shutil.rmtree(pg.root.parent, ignore_errors=True)
