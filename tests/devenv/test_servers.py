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
