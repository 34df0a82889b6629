"""Database credentials from Secrets Manager (on moto) with rotation, and verified TLS to PostgreSQL."""

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import psycopg
import pytest
from django.db import connections

from devenv.servers import AppServer, PgCluster
from project.aws import credentials
from project.env import database_config
from tests.conftest import SERVICES
from tests.helpers import Browser
from users.models import Signup

pytestmark = pytest.mark.slow

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def _url_without_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':')[0]}@{host}"


@pytest.fixture
def secret(moto_server, pg, live_db):
    client = boto3.client("secretsmanager", endpoint_url=moto_server.url, **_boto_kwargs())
    value = json.dumps({"username": pg.user, "password": pg.password})
    arn = client.create_secret(Name=f"rds-app-{time.time_ns()}", SecretString=value)["ARN"]
    yield client, arn
    # Put the session's password back, whatever the test did to it.
    pg.admin_sql(f"ALTER ROLE {pg.user} PASSWORD '{pg.password}'")
    connections.close_all()


def _boto_kwargs() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def test_app_connects_with_the_secret_and_survives_a_rotation(secret, moto_server, pg, tmp_path):
    client, arn = secret
    env = {**SERVICES.environ(), **AWS_ENV, "AWS_ENDPOINT_URL": moto_server.url, "DATABASE_SECRET_ARN": arn,
           "DATABASE_URL": _url_without_password(pg.primary_url),
           "DATABASE_REPLICA_URLS": _url_without_password(pg.replica_url)}  # fmt: skip
    log = tmp_path / "app.log"
    app = AppServer(env=env, workers=1, threads=4)
    app.start(log=log)
    try:
        first = Browser(app.url).post_form(
            "/signup/", {"consent": "on", "full_name": "Before Rotation", "email": "b@example.com"}
        )
        assert first.status == 200 and "Thank you, Before Rotation" in first.body
        # Rotate: new password in PostgreSQL and in the secret; every open connection is dropped.
        new_password = "rotated-" + str(time.time_ns())
        pg.admin_sql(f"ALTER ROLE {pg.user} PASSWORD '{new_password}'")
        client.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": pg.user,
                                                                        "password": new_password}))  # fmt: skip
        pg.admin_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{pg.user}'")
        connections.close_all()  # this test process's own connections were among those dropped
        replies = [Browser(app.url).post_form("/signup/", {"consent": "on", "full_name": f"After {i}",
                                                            "email": f"a{i}@example.com"})
                   for i in range(5)]  # fmt: skip
        assert [r.status for r in replies] == [200] * 5
    finally:
        app.stop()
        pg.admin_sql(f"ALTER ROLE {pg.user} PASSWORD '{pg.password}'")  # this process's own password again
    assert Signup.objects.using("default").filter(email__in=[f"a{i}@example.com" for i in range(5)]).count() == 5
    text = log.read_text()
    retries = text.count("newer secret found, retrying once")
    assert 1 <= retries <= 4  # once per thread's connection that reconnected (1 worker x 4 threads), not per request
    assert new_password not in text and pg.password not in text


def test_a_password_rejected_without_a_new_secret_is_not_retried_in_a_loop(secret, moto_server, pg, monkeypatch):
    _, arn = secret
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": moto_server.url}.items():
        monkeypatch.setenv(key, value)
    from project.aws import client as aws_client

    aws_client.cache_clear()
    credentials.clear()
    config = database_config("DATABASE_URL", _url_without_password(pg.primary_url), conn_max_age=0,
                             connect_timeout=3, tls={"sslmode": "disable"}, secret_arn=arn)  # fmt: skip
    wrapper = _wrapper(config)
    wrapper.ensure_connection()  # the secret's password works
    wrapper.close()
    pg.admin_sql(f"ALTER ROLE {pg.user} PASSWORD 'not-in-the-secret-123'")
    calls = []
    real_fetch = credentials._fetch
    monkeypatch.setattr(credentials, "_fetch", lambda a: calls.append(a) or real_fetch(a))
    with pytest.raises(Exception, match="password authentication failed"):
        _wrapper(config).ensure_connection()
    assert len(calls) <= 1  # fetched again at most once, then the error is reported
    aws_client.cache_clear()
    credentials.clear()


def _wrapper(config: dict):
    from project.db.postgresql.base import DatabaseWrapper

    settings_dict = connections.configure_settings({"default": config})["default"]
    return DatabaseWrapper(settings_dict, alias="probe")


# --- TLS ---------------------------------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_cluster(django_db_blocker):
    """A PostgreSQL server with ssl on, its certificate (for DNS:localhost) from a throwaway CA."""
    root = Path(tempfile.mkdtemp(prefix="signup-tls-"))  # pytest's own tmp folder is closed to the postgres user
    root.chmod(0o755)
    certs = root / "certs"
    certs.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Throwaway Test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=certs)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
             "-out", "server.csr", cwd=certs)  # fmt: skip
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=certs)  # fmt: skip
    cluster = PgCluster(root / "pg")
    cluster.create()
    datadir = cluster.primary.datadir
    for name in ("server.crt", "server.key"):
        target = datadir / name
        target.write_bytes((certs / name).read_bytes())
        target.chmod(0o600)
        subprocess.run(["chown", "postgres:postgres", str(target)], check=True)
    with (datadir / "postgresql.conf").open("a") as f:
        f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    cluster.primary.stop()
    cluster.primary.start()
    with django_db_blocker.unblock():  # connections to this cluster are made by hand, outside Django's test DB
        yield cluster, certs / "ca.crt"
    cluster.destroy()
    shutil.rmtree(root, ignore_errors=True)


def _connect(cluster: PgCluster, host: str, ca: Path, mode: str = "verify-full") -> psycopg.Connection:
    url = cluster.owner_url.replace("127.0.0.1", host)
    config = database_config("DATABASE_URL", url, conn_max_age=0, connect_timeout=3,
                             tls={"sslmode": mode, "sslrootcert": str(ca)})  # fmt: skip
    wrapper = _wrapper(config)
    wrapper.ensure_connection()
    return wrapper


def test_verify_full_connects_to_the_right_host_name_over_tls(tls_cluster):
    cluster, ca = tls_cluster
    wrapper = _connect(cluster, "localhost", ca)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cursor.fetchone()[0] is True
    wrapper.close()


def test_verify_full_refuses_a_host_name_the_certificate_does_not_name(tls_cluster):
    cluster, ca = tls_cluster
    with pytest.raises(Exception, match="does not match host name"):
        _connect(cluster, "127.0.0.1", ca)


def test_verify_full_refuses_a_server_signed_by_another_ca(tls_cluster, tmp_path):
    cluster, _ = tls_cluster
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Other CA",
             "-keyout", "other.key", "-out", "other.crt", cwd=tmp_path)  # fmt: skip
    with pytest.raises(Exception, match="certificate verify failed"):
        _connect(cluster, "localhost", tmp_path / "other.crt")


def test_iam_auth_uses_a_signed_token_and_renews_it_before_it_expires(monkeypatch):
    from project import aws

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    aws.client.cache_clear()
    credentials.clear()
    config = database_config("DATABASE_URL", "postgres://app@db.internal.example:5432/app", conn_max_age=0,
                             connect_timeout=3, tls={"sslmode": "verify-full"}, iam_auth=True)  # fmt: skip
    clock = [1000.0]
    monkeypatch.setattr(aws.time, "monotonic", lambda: clock[0])
    calls = []
    real = aws.client("rds").generate_db_auth_token
    monkeypatch.setattr(aws.client("rds"), "generate_db_auth_token", lambda **kw: calls.append(kw) or real(**kw))
    first = _wrapper(config).get_connection_params()["password"]
    assert first.startswith("db.internal.example:5432/?Action=connect&DBUser=app") and "X-Amz-Signature=" in first
    clock[0] += 9 * 60
    assert _wrapper(config).get_connection_params()["password"] == first and len(calls) == 1
    clock[0] += 2 * 60  # 11 minutes after the first: renewed before the 15-minute expiry
    _wrapper(config).get_connection_params()
    assert len(calls) == 2
    aws.client.cache_clear()
    credentials.clear()
