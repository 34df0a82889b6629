"""Start and stop throwaway local servers: a PostgreSQL primary, its streaming replica, Redis, moto.

One place for this, shared by `make run` (devenv/run.py), the test fixtures (tests/conftest.py) and the
benchmarks (bench/). Every server listens on 127.0.0.1 on a free port and lives in a folder we own.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PG_BINARIES = ("initdb", "pg_ctl", "postgres", "pg_basebackup")


class ServerCommandFailed(subprocess.CalledProcessError):
    """A server tool (initdb, pg_ctl, ...) failed: the message carries what it printed on stderr."""

    def __str__(self) -> str:
        said = (self.stderr or "").strip()[-800:]
        return f"{Path(self.cmd[0]).name} exited with {self.returncode}" + (f": {said}" if said else "")


class MissingBinary(RuntimeError):
    """A server binary this machine lacks (install it, or run without that server)."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def pg_bindir() -> Path | None:
    """Return the folder holding the PostgreSQL server binaries, or None."""
    initdb = shutil.which("initdb")
    candidates = [Path(initdb).resolve().parent] if initdb else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / b).exists() for b in PG_BINARIES):
            return folder
    return None


def _as_postgres() -> dict:
    """PostgreSQL refuses to run as root: run its binaries as the `postgres` user when we are root."""
    return {"user": "postgres"} if os.geteuid() == 0 else {}


def psycopg_errors() -> type[Exception]:
    import psycopg

    return psycopg.Error


def reachable_by_postgres(path: Path) -> bool:
    """Say whether the postgres user can pass through every existing folder above `path` (always, unless root)."""
    if os.geteuid() != 0:
        return True
    import pwd

    account = pwd.getpwnam("postgres")
    for folder in (p for p in path.parents if p.exists()):
        st = folder.stat()
        if st.st_uid == account.pw_uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid == account.pw_gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return False
    return True


def _own_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _signal(pid: int, signum: int) -> None:
    """Send a signal to one of a server's processes; a backend may have exited since it was listed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def process_state(pid: int) -> str:
    """Return the kernel's one-letter state of `pid` ("T": stopped), or "" when it does not exist."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]  # after "pid (comm)"
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """Return the pids whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def stopped(pid: int) -> bool:
    """Say whether `pid` can run no more: stopped, or exited (a zombie its frozen parent cannot reap)."""
    return process_state(pid) in {"T", "Z", ""}


def wait_stopped(pids: list[int], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(stopped(pid) for pid in pids):
        time.sleep(0.01)  # signals are delivered asynchronously: return once all have stopped


@dataclass
class PgServer:
    """One PostgreSQL server (primary or standby) with its data folder and port."""

    datadir: Path
    port: int
    bindir: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.datadir.parent / f"{self.datadir.name}.log"

    def _run(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            **_as_postgres(),
        )
        if check and result.returncode:
            raise ServerCommandFailed(result.returncode, result.args, result.stdout, result.stderr)
        return result

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.datadir), check=False).returncode == 0

    def start(self) -> None:
        if not self.log.exists():
            self.log.touch()
            _own_for_postgres(self.log)
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.datadir}"
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", str(self.datadir), "-l", str(self.log), "-o", opts)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" is a crash (no shutdown checkpoint)."""
        if self.datadir.exists():
            self._run("pg_ctl", "stop", "-w", "-D", str(self.datadir), "-m", mode, check=False)

    # --- faults for tests and drills ------------------------------------------------------------------
    def pids(self) -> list[int]:
        """Return the postmaster's pid followed by every process it started (backends, walsender, ...)."""
        postmaster = int((self.datadir / "postmaster.pid").read_text().split()[0])
        return [postmaster, *children(postmaster)]

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and its children: the kernel still accepts and ACKs TCP, nothing answers.

        The postmaster first, and its children listed only once it has stopped, so none is forked unseen.
        Returns the stopped pids, postmaster first.
        """
        postmaster = self.pids()[0]
        _signal(postmaster, signal.SIGSTOP)
        wait_stopped([postmaster])
        pids = self.pids()
        for pid in pids[1:]:
            _signal(pid, signal.SIGSTOP)
        wait_stopped(pids)
        return pids

    def thaw(self) -> None:
        """SIGCONT every process of a frozen server."""
        for pid in reversed(self.pids()):
            _signal(pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crashed host: its backends exit once they notice)."""
        os.kill(self.pids()[0], signal.SIGKILL)

    def promote(self) -> None:
        """Promote this standby to a primary on a new timeline (pg_ctl promote waits until it accepts writes)."""
        self._run("pg_ctl", "promote", "-w", "-t", "30", "-D", str(self.datadir))


@dataclass
class PgCluster:
    """A primary and streaming replicas made with `pg_basebackup -R`, and an owner role that owns the database.

    The owner runs migrations and `manage.py setup_db_roles`, which creates the app's own role (`user`,
    DML only) with `password`: urls() and primary_url/replica_url are the app role's, owner_url the owner's.
    """

    root: Path
    db: str = "app"
    user: str = "signup_app"
    password: str = ""
    owner: str = "signup_owner"
    owner_password: str = ""
    admin_password: str = ""
    ports: tuple[int, ...] = ()
    replicas: int = 1
    primary: PgServer = field(init=False)
    standbys: list[PgServer] = field(init=False)

    def __post_init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise MissingBinary("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are not installed")
        self.root = Path(self.root)
        wanted = 1 + self.replicas
        ports = tuple(self.ports) if len(self.ports) == wanted and all(self.ports) else ()
        self.ports = ports or tuple(free_port() for _ in range(wanted))
        self.password = self.password or secrets.token_urlsafe(18)
        self.owner_password = self.owner_password or secrets.token_urlsafe(18)
        self.admin_password = self.admin_password or secrets.token_urlsafe(18)
        self.primary = PgServer(self.root / "primary", self.ports[0], bindir)
        names = ["replica", *(f"replica{i}" for i in range(2, wanted))][: self.replicas]
        self.standbys = [
            PgServer(self.root / name, port, bindir) for name, port in zip(names, self.ports[1:], strict=True)
        ]

    @property
    def replica(self) -> PgServer:
        return self.standbys[0]

    # --- URLs ---------------------------------------------------------------------------------------
    def url(self, server: PgServer | None = None, *, admin: bool = False, owner: bool = False) -> str:
        server = server or self.primary
        user, pw = (("postgres", self.admin_password) if admin else (self.owner, self.owner_password) if owner
                    else (self.user, self.password))  # fmt: skip
        dbname = "postgres" if admin else self.db
        return f"postgres://{user}:{pw}@127.0.0.1:{server.port}/{dbname}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica)

    @property
    def owner_url(self) -> str:
        return self.url(self.primary, owner=True)

    # --- life cycle ---------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return all((server.datadir / "PG_VERSION").exists() for server in (self.primary, *self.standbys))

    def create(self) -> None:
        """Initialise the primary, create the owner role and the database, clone the replicas from it."""
        self.root.mkdir(parents=True, exist_ok=True)
        _own_for_postgres(self.root)
        pwfile = self.root / ".pgpass-init"
        pwfile.write_text(self.admin_password + "\n")
        pwfile.chmod(0o600)
        _own_for_postgres(pwfile)
        try:
            self.primary._run(
                "initdb", "-D", str(self.primary.datadir), "-U", "postgres", "--auth=scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
            )  # fmt: skip
        finally:
            pwfile.unlink()
        conf = self.primary.datadir / "postgresql.conf"
        with conf.open("a") as f:
            # Streaming replication on; synchronous_commit stays on (off delays replica visibility).
            f.write("\nwal_level = replica\nmax_wal_senders = 8\nhot_standby = on\nmax_connections = 200\n")
            f.write("hot_standby_feedback = on\nwal_keep_size = 256MB\nfsync = off\nfull_page_writes = off\n")
            f.write("track_commit_timestamp = on\nshared_preload_libraries = 'pg_stat_statements'\n")
        hba = self.primary.datadir / "pg_hba.conf"
        with hba.open("a") as f:
            f.write("host replication postgres 127.0.0.1/32 scram-sha-256\n")
        self.primary.start()
        self.ensure_owner()
        for standby in self.standbys:
            self.add_standby(standby)
        self.wait_for_replica()

    def ensure_owner(self) -> None:
        """Create the owner role and give it the database (idempotent; upgrades a cluster its app role owned)."""
        if self.admin_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.owner}'"):  # noqa: S608 - our names
            self.admin_sql(f"ALTER ROLE {self.owner} LOGIN CREATEROLE PASSWORD '{self.owner_password}'")
        else:
            self.admin_sql(f"CREATE ROLE {self.owner} LOGIN CREATEROLE PASSWORD '{self.owner_password}'")
        self.admin_sql(f"GRANT pg_monitor TO {self.owner}")  # like RDS's master user (rds_superuser)
        sql = f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{self.db}'"  # noqa: S608
        found = self.admin_sql(sql)
        if not found:
            self.admin_sql(f"CREATE DATABASE {self.db} OWNER {self.owner}")
        elif found[0][0] != self.owner:
            self.admin_sql(f"ALTER DATABASE {self.db} OWNER TO {self.owner}")
            self.admin_sql(f"REASSIGN OWNED BY {found[0][0]} TO {self.owner}", dbname=self.db)

    def add_standby(self, standby: PgServer, source: PgServer | None = None) -> None:
        """Clone a streaming standby of `source` (the primary) with pg_basebackup -R and start it."""
        source = source or self.primary
        self.primary._run(
            "pg_basebackup", "-D", str(standby.datadir), "-h", "127.0.0.1", "-p", str(source.port),
            "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
            env={"PGPASSWORD": self.admin_password},
        )  # fmt: skip
        standby.datadir.chmod(0o700)
        standby.start()

    def start(self) -> None:
        for server in (self.primary, *self.standbys):
            if not server.running:
                server.start()

    def stop(self) -> None:
        for server in (*self.standbys, self.primary):
            server.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- SQL helpers for tests and tools ------------------------------------------------------------
    def admin_sql(self, *statements: str, server: PgServer | None = None, dbname: str = "postgres") -> list:
        """Run statements as the superuser (autocommit) and return the last result's rows."""
        import psycopg

        url = self.url(server or self.primary, admin=True).rpartition("/")[0] + f"/{dbname}"
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as c:
            rows: list = []
            for sql in statements:
                cur = c.execute(sql)
                rows = cur.fetchall() if cur.description else []
            return rows

    def pause_replay(self) -> None:
        self.admin_sql("SELECT pg_wal_replay_pause()", server=self.replica)

    def resume_replay(self) -> None:
        self.admin_sql("SELECT pg_wal_replay_resume()", server=self.replica)

    def wait_for_replica(self, timeout: float = 10.0, standbys: list[PgServer] | None = None) -> None:
        """Block until the replicas have replayed everything the primary has written so far."""
        target = self.admin_sql("SELECT pg_current_wal_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        for standby in self.standbys if standbys is None else standbys:
            while True:
                try:
                    rows = self.admin_sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn", server=standby)
                    if rows and rows[0][0]:
                        break
                except psycopg_errors():  # the replica may still be starting
                    time.sleep(0.1)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{standby.datadir.name} did not reach {target} within {timeout}s")
                time.sleep(0.02)


class _ChildServer:
    """What every server we run as a child process on a loopback port shares (needs .port and .proc)."""

    port: int
    proc: subprocess.Popen | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_for_http(self, path: str, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}{path}", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{what} did not answer {path} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


@dataclass
class RedisServer(_ChildServer):
    """A redis-server on a free port with no persistence."""

    root: Path
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not shutil.which("redis-server"):
            raise MissingBinary("redis-server is not installed (apt-get install redis-server)")
        self.root = Path(self.root)
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "redis.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root), "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for_port(self.port)


@dataclass
class MotoServer(_ChildServer):
    """moto in server mode: a local stand-in for the AWS APIs (boto3 honours AWS_ENDPOINT_URL)."""

    port: int = 0
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    def start(self) -> None:
        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self.proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_for_http("/moto-api/", "moto server")

    def reset(self) -> None:
        """Forget every resource moto holds (between tests)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=5)


# One per process: the tests, benchmarks and drills read /ready's detail with it (Authorization: Bearer).
LOCAL_READY_TOKEN = secrets.token_urlsafe(24)


def local_app_env(pg: PgCluster | None, redis: RedisServer | None) -> dict:
    """The app's environment for local servers: its own role, plain HTTP, no TLS to PostgreSQL (loopback)."""
    # No second factor for local staff (make run, bench); the tests that check it turn it on.
    env = {"HTTPS": "0", "DATABASE_SSLMODE": "disable", "READY_TOKEN": LOCAL_READY_TOKEN, "STAFF_OTP_REQUIRED": "0"}
    if pg:
        replicas = ",".join(pg.url(standby) for standby in pg.standbys)
        env |= {"DATABASE_URL": pg.primary_url, "DATABASE_REPLICA_URLS": replicas, "DATABASE_APP_ROLE": pg.user}
    if redis:
        env["REDIS_URL"] = redis.url
    return env


def local_owner_env(pg: PgCluster, *, replicas: bool = False) -> dict:
    """What the one-off tasks (migrate, setup_db_roles) change in that environment: the owner's connection.

    With `replicas`, the owner reads the replicas too (a test or bench harness running Django in-process).
    """
    replica_urls = ",".join(pg.url(standby, owner=True) for standby in pg.standbys) if replicas else ""
    return {"DATABASE_URL": pg.owner_url, "DATABASE_REPLICA_URLS": replica_urls, "DATABASE_APP_ROLE": pg.user,
            "DATABASE_APP_PASSWORD": pg.password}  # fmt: skip


@dataclass
class AppServer(_ChildServer):
    """A WSGI app (ours by default) under gunicorn with the project's gunicorn.conf.py."""

    env: dict
    app: str = "project.wsgi:application"
    port: int = 0
    workers: int = 2
    threads: int = 4
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    def start(self, log: Path | None = None) -> None:
        env = {**os.environ, **self.env, "HOST": "127.0.0.1", "PORT": str(self.port),
               "WEB_CONCURRENCY": str(self.workers), "GUNICORN_THREADS": str(self.threads)}  # fmt: skip
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "gunicorn.conf.py"), self.app],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_for_http("/health", f"gunicorn (log: {log or 'not kept'})")

    def connections_per_worker(self) -> list[int]:
        """Established connections to the app's port held by each of its workers (`ss -p`), fewest first.

        gunicorn's workers share one listening socket and whichever is awake takes a burst of new connections,
        so a burst can land on one worker (gunicorn issues #2817, #3433): benchmarks and tests check the split.
        """
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"sport = :{self.port}"],
                             capture_output=True, text=True, check=False).stdout  # fmt: skip
        held = re.findall(r"pid=(\d+)", out)
        return sorted(held.count(str(pid)) for pid in children(self.proc.pid))


@dataclass
class ProxyServer(_ChildServer):
    """nginx from Debian running deploy/nginx.conf (the ECS sidecar) in front of a local gunicorn.

    The same file as production, with three things substituted: the listen port (8000), gunicorn's
    address (127.0.0.1:8001) and the folder for the pid and temporary files (/tmp/nginx).
    """

    upstream_port: int
    port: int = 0
    root: Path | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
            raise MissingBinary("nginx is not installed (apt-get install nginx)")
        self.port = self.port or free_port()

    def config(self) -> str:
        text = (BASE_DIR / "deploy" / "nginx.conf").read_text()
        for production, local in (("listen 8000 ", f"listen 127.0.0.1:{self.port} "),
                                  ("127.0.0.1:8001", f"127.0.0.1:{self.upstream_port}"),
                                  ("/tmp/nginx/", f"{self.root}/"),  # noqa: S108 - the production path being replaced
                                  ("access_log /dev/stdout", f"access_log {self.root}/access.log")):  # fmt: skip
            if production not in text:
                raise RuntimeError(f"deploy/nginx.conf no longer contains {production!r}")
            text = text.replace(production, local)
        return text

    def start(self) -> None:
        import tempfile

        # nginx's workers run as `nobody` when started as root: a folder they can enter and write.
        self.root = Path(self.root or tempfile.mkdtemp(prefix="signup-nginx-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o777)
        conf = self.root / "nginx.conf"
        conf.write_text(self.config())
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        log = open(self.root / "error.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.root), "-e", "stderr", "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_for_http("/proxy-health", "nginx")
