"""A vanished database host (packets dropped: AZ loss, failover): keepalives and tcp_user_timeout end the wait.

PostgreSQL runs in its own network namespace behind a veth pair; `ip link set ... down` makes the host vanish
without refusing anything. Needs root and iproute2; skipped with the reason otherwise (fails under CI=true).
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from devenv.servers import PgCluster
from tests.conftest import CI

pytestmark = pytest.mark.slow

HOST_IP, SERVER_IP = "10.213.7.1", "10.213.7.2"
BOUNDS = {"keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1, "keepalives_count": 2,
          "tcp_user_timeout": 2000}  # fmt: skip


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def vanishing(pg):
    """A PostgreSQL server at SERVER_IP inside a network namespace; yields (cluster, namespace, ns-side link)."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("runuser"):
        reason = "needs root, iproute2 (ip) and runuser to make a network namespace"
        if CI:
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    tag = str(os.getpid() % 100000)
    ns, host_link, ns_link = f"sgdb{tag}", f"sgh{tag}", f"sgn{tag}"
    root = Path(tempfile.mkdtemp(prefix="signup-netns-"))
    root.chmod(0o755)
    cluster = PgCluster(root / "pg", replicas=0)
    cluster.create()
    cluster.primary.stop()
    with (cluster.primary.datadir / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {HOST_IP}/32 scram-sha-256\n")
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", ns_link)
        _ip("link", "set", ns_link, "netns", ns)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{SERVER_IP}/30", "dev", ns_link)
        _ip("netns", "exec", ns, "ip", "link", "set", ns_link, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        server = cluster.primary
        opts = f"-p 5432 -c listen_addresses={SERVER_IP} -c unix_socket_directories={server.datadir}"
        subprocess.run(["ip", "netns", "exec", ns, "runuser", "-u", "postgres", "--", str(server.bindir / "pg_ctl"),
                        "start", "-w", "-D", str(server.datadir), "-l", str(server.log), "-o", opts],
                       check=True, capture_output=True)  # fmt: skip
        yield cluster, ns, ns_link
    finally:
        subprocess.run(["ip", "netns", "exec", ns, "runuser", "-u", "postgres", "--",
                        str(cluster.primary.bindir / "pg_ctl"), "stop", "-D", str(cluster.primary.datadir),
                        "-m", "immediate"], capture_output=True)  # fmt: skip
        subprocess.run(["ip", "link", "del", host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _connect(cluster: PgCluster, **options) -> psycopg.Connection:
    url = f"postgresql://{cluster.owner}:{cluster.owner_password}@{SERVER_IP}:5432/{cluster.db}"
    return psycopg.connect(url, autocommit=True, connect_timeout=3, **options)


@pytest.fixture
def link_down(vanishing):
    _, ns, ns_link = vanishing
    yield lambda: _ip("netns", "exec", ns, "ip", "link", "set", ns_link, "down")
    _ip("netns", "exec", ns, "ip", "link", "set", ns_link, "up")


def test_tcp_user_timeout_ends_a_query_to_a_vanished_host(vanishing, link_down):
    cluster, _, _ = vanishing
    bounded = _connect(cluster, **BOUNDS)
    unbounded = _connect(cluster)  # libpq's defaults: the kernel retransmits for about 15 minutes
    assert bounded.execute("SELECT 1").fetchone() == (1,)
    assert unbounded.execute("SELECT 1").fetchone() == (1,)
    link_down()
    outcome: dict = {}

    def query(name: str, connection: psycopg.Connection) -> None:
        started = time.monotonic()
        try:
            connection.execute("SELECT 1")
            outcome[name] = ("answered", time.monotonic() - started)
        except psycopg.OperationalError as exc:
            outcome[name] = (str(exc).splitlines()[0], time.monotonic() - started)

    threads = {name: threading.Thread(target=query, args=(name, conn), daemon=True)
               for name, conn in (("bounded", bounded), ("unbounded", unbounded))}  # fmt: skip
    for t in threads.values():
        t.start()
    threads["bounded"].join(10)
    threads["unbounded"].join(max(0.0, 8 - outcome.get("bounded", ("", 0))[1]))
    print(
        f"vanished host: with tcp_user_timeout=2 s the query failed after {outcome['bounded'][1]:.2f} s "
        f"({outcome['bounded'][0]}); without it, still waiting after 8 s: {'unbounded' not in outcome}"
    )
    assert outcome["bounded"][0] != "answered" and outcome["bounded"][1] < 6
    assert "unbounded" not in outcome  # the control: nothing but these options would have ended it


def test_keepalives_end_an_idle_connection_to_a_vanished_host(vanishing, link_down):
    cluster, _, _ = vanishing
    idle = _connect(cluster, **BOUNDS)
    assert idle.execute("SELECT 1").fetchone() == (1,)
    link_down()
    time.sleep(5)  # idle: keepalive probes go unanswered (idle 1 s + 2 probes 1 s apart; capped at 2 s)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        idle.execute("SELECT 1")
    took = time.monotonic() - started
    print(f"idle connection to a vanished host: the kernel had closed it; the next query failed in {took:.3f} s")
    assert took < 0.5  # no waiting at all: the connection was already known dead
