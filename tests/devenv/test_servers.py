"""The local-server tools shared by `make run`, the tests and the benchmarks."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devenv.servers import PgCluster, ServerCommandFailed, reachable_by_postgres


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the servers to the postgres user")
def test_a_folder_the_postgres_user_cannot_enter_is_detected():
    root = Path(tempfile.mkdtemp(prefix="signup-devenv-"))  # pytest's own tmp_path sits below a 700 folder
    try:
        closed = root / "closed"
        (closed / "checkout").mkdir(parents=True)
        os.chmod(root, 0o755)
        os.chmod(closed, 0o700)  # like /root, or a mktemp -d folder
        assert not reachable_by_postgres(closed / "checkout" / ".local" / "pg")
        os.chmod(closed, 0o755)
        assert reachable_by_postgres(closed / "checkout" / ".local" / "pg")
    finally:
        shutil.rmtree(root)


def test_a_failing_server_tool_says_what_it_printed(tmp_path):
    os.chmod(tmp_path, 0o755)
    cluster = PgCluster(tmp_path / "pg")
    with pytest.raises(ServerCommandFailed) as failure:
        cluster.primary._run("pg_ctl", "start", "-D", str(tmp_path / "no-such-cluster"))
    assert "pg_ctl exited with" in str(failure.value)
    assert "no-such-cluster" in str(failure.value)  # pg_ctl's own complaint, not just an exit code


@pytest.fixture
def lone_primary():
    root = Path(tempfile.mkdtemp(prefix="signup-devenv-"))
    root.chmod(0o755)
    cluster = PgCluster(root / "pg", replicas=0)
    cluster.create()
    yield cluster
    cluster.destroy()
    shutil.rmtree(root, ignore_errors=True)


def test_a_cluster_its_app_role_owned_is_handed_to_the_owner_role(lone_primary):
    pg = lone_primary  # made before the owner/app split: role "app" owned the database and its tables
    pg.admin_sql("CREATE ROLE app LOGIN", f"ALTER DATABASE {pg.db} OWNER TO app")
    pg.admin_sql("SET ROLE app", "CREATE TABLE users_signup (id int)", dbname=pg.db)
    pg.ensure_owner()
    pg.ensure_owner()  # idempotent
    assert pg.admin_sql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{pg.db}'") == [(pg.owner,)]
    assert pg.admin_sql("SELECT tableowner FROM pg_tables WHERE tablename = 'users_signup'", dbname=pg.db) == [
        (pg.owner,)
    ]


def test_freeze_stops_every_process_of_the_server_and_thaw_resumes_them(lone_primary):
    pids = lone_primary.primary.pids()
    assert len(pids) >= 4  # postmaster, checkpointer, background writer, walwriter, ...
    lone_primary.primary.freeze()
    try:
        alive = [pid for pid in pids if Path(f"/proc/{pid}/stat").exists()]  # a worker may have ended before
        states = {Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] for pid in alive}
        assert len(alive) >= 4 and states == {"T"}  # stopped
    finally:
        lone_primary.primary.thaw()
    assert lone_primary.admin_sql("SELECT 1") == [(1,)]
