"""The images we ship, built and run as the task definitions run them (docs/image.md).

One stack for the module: the migrate one-off as the owner, then gunicorn in the app container, nginx in the
proxy container in front of it (the ports, commands, mounts and environment that Terraform plans), and the
worker, against the session's PostgreSQL primary + replica, Redis and moto. Requests go to the proxy's
port 8000 as the ALB sends them: Host, X-Forwarded-Proto: https, one X-Forwarded-For hop.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import secrets
import time
import urllib.parse

import pytest

from tests.conftest import SERVICES
from tests.deploy import tasks
from tests.deploy.containers import ROOT, Container, wait_until
from tests.users.mail import mail_to, text_of

pytestmark = pytest.mark.image

# Budgets, uncompressed as unpacked on a host (docs/image.md says why these numbers).
SIZE_BUDGET = {"app": 520 * 2**20, "proxy": 240 * 2**20}
LAYER_BUDGET = {"app": 20, "proxy": 12}
TOKEN = "ImageImageImageImageImageImage12"  # a CSRF secret: Django accepts it unmasked, matching the cookie
CLIENT = "203.0.113.9"
PERSON = "image-test@example.com"
DEV_ONLY = ("pytest", "moto", "playwright", "hypothesis", "ruff", "freezegun", "flask", "jsonschema")


def _port(url: str) -> int:
    return int(re.search(r":(\d+)/", url).group(1))


@pytest.fixture(scope="module")
def stack(images, planned, pg, redis_server, moto_server, django_db_setup, tmp_path_factory):
    import boto3

    work = tmp_path_factory.mktemp("containers")
    env = planned["task_environment"]["web"]
    moto_server.reset()  # what the plan left there (EC2's defaults) breaks moto's data.json
    ses = boto3.client("sesv2", endpoint_url=moto_server.url, region_name=env["AWS_REGION"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    ses.create_email_identity(EmailIdentity=env["EMAIL_FROM"].rpartition("<")[2].rstrip(">"))
    ses.create_configuration_set(ConfigurationSetName=env["SES_CONFIGURATION_SET"])
    if env.get("ERASURE_LEDGER_BUCKET"):  # the worker holds email until it has read the erasure ledger
        s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name=env["AWS_REGION"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=env["ERASURE_LEDGER_BUCKET"], ObjectLockEnabledForBucket=True,
                         CreateBucketConfiguration={"LocationConstraint": env["AWS_REGION"]})  # fmt: skip
    aws = {"AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    app_role = {"DATABASE_URL": pg.primary_url, "DATABASE_REPLICA_URLS": pg.replica_url, "DATABASE_IAM_AUTH": "0",
                "DATABASE_SECRET_ARN": "", "DATABASE_SSLMODE": "disable", "SECRET_KEY": SERVICES.secret_key,
                "ERASURE_LEDGER_KEY": secrets.token_urlsafe(32), "WEBHOOK_SECRET_KEYS": secrets.token_urlsafe(32),
                "REDIS_URL": redis_server.url, **aws}  # fmt: skip
    owner = app_role | {"DATABASE_URL": pg.owner_url, "DATABASE_REPLICA_URLS": "", "DATABASE_APP_PASSWORD": pg.password}
    specs = planned["containers"]
    found = {"uids": {}, "env": {}}

    def start(name: str, image: str, role: str | None, services: dict | None = None) -> Container:
        mounts = [m["containerPath"] for m in specs[name]["mountPoints"]]
        environ = tasks.local_environment(planned, role, services) if role else {}
        found["env"][name] = environ
        container = Container(images[image], f"signup-image-{name}", work, mounts, environ)
        container.run(specs[name].get("command") or images[image].command)
        return container

    running: list[Container] = []
    try:
        migrate = start("migrate", "app", "migrate", owner)
        running.append(migrate)
        while migrate.proc.poll() is None:  # a one-off: its processes' uids while it runs
            found["uids"] |= {f"migrate: {cmd[:60]}": uid for uid, cmd in migrate.processes().values()}
            time.sleep(0.05)
        assert migrate.proc.returncode == 0, migrate.tail()
        app = start("app", "app", "web", app_role)
        running.append(app)
        wait_until(lambda: app.exec(specs["app"]["healthCheck"]["command"][1:]).returncode == 0, 60,
                   "gunicorn's health check", app)  # fmt: skip
        proxy = start("proxy", "proxy", None)
        running.append(proxy)
        wait_until(lambda: _get("/proxy-health")[0] == 200, 30, "nginx", proxy)
        worker = start("worker", "app", "worker", app_role)
        running.append(worker)
        time.sleep(1)
        yield {"app": app, "proxy": proxy, "worker": worker, "migrate": migrate, "found": found, "ses": moto_server}
    finally:
        for container in reversed(running):
            container.stop("QUIT" if container.name.endswith("proxy") else "TERM")
        moto_server.reset()  # the Terraform tests apply a stack with the same identity and configuration set


def _request(method: str, path: str, body: str = "", cookie: str = "") -> tuple[int, dict, str]:
    """One request to the proxy container's port 8000, as the ALB forwards it."""
    conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=15)
    headers = {"Host": "signup.example.test", "X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}
    if body:
        headers |= {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://signup.example.test"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body.encode(), headers=headers)
    reply = conn.getresponse()
    text = reply.read().decode(errors="replace")
    conn.close()
    headers = dict(reply.getheaders())
    headers["Set-Cookie"] = reply.headers.get_all("Set-Cookie") or []  # every cookie, not the last one
    return reply.status, headers, text


def _get(path: str, cookie: str = "") -> tuple[int, dict, str]:
    return _request("GET", path, cookie=cookie)


def _post(path: str, fields: dict, cookie: str = "") -> tuple[int, dict, str]:
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": TOKEN, **fields})
    return _request("POST", path, body, cookie="; ".join(filter(None, [f"__Host-csrftoken={TOKEN}", cookie])))


# --- what the images are ---------------------------------------------------------------------------------
def test_each_image_is_within_its_size_and_layer_budget(images):
    for image in images.values():
        standin = image.config.get("Labels", {}).get("org.signup.standin", "the real base")
        print(f"image {image.name}: {image.size / 2**20:.0f} MiB, {image.layers} layers (base: {standin})")
    for name, image in images.items():
        assert image.size <= SIZE_BUDGET[name], f"{name}: {image.size / 2**20:.0f} MiB"
        assert image.layers <= LAYER_BUDGET[name], f"{name}: {image.layers} layers"


def test_the_app_image_holds_the_code_and_nothing_of_the_checkout_or_the_test_tools(stack):
    app = stack["app"]
    listing = app.exec(["ls", "-A", "/app"]).stdout.split()
    assert sorted(listing) == ["api", "certs", "formdef", "gunicorn.conf.py", "locale", "manage.py", "ops", "project",
                               "staff", "static", "staticfiles", "templates", "users"]  # fmt: skip
    strays = app.exec(["sh", "-c", "find / -xdev \\( -name .git -o -name .env -o -name '.env.*' -o -name .local "
                       "-o -name 'requirements*.txt' -o -name 'id_rsa*' -o -name '*.tfstate' -o -name tests "
                       "-path '/app/*' \\) -print 2>/dev/null"]).stdout.split()  # fmt: skip
    assert strays == [], strays
    assert not [k for k in app.image.config["Env"] if re.search(r"SECRET|PASSWORD|TOKEN|KEY", k.split("=")[0])]
    installed = app.exec(["pip", "list", "--format=freeze"]).stdout.lower()
    assert not [name for name in DEV_ONLY if f"\n{name}==" in f"\n{installed}"], installed
    check = app.exec(["pip", "check"])
    assert check.returncode == 0 and "No broken requirements" in check.stdout, check.stdout + check.stderr


def test_the_rds_bundle_is_where_the_task_definition_points_and_is_the_pinned_one(stack, planned):
    path = planned["task_environment"]["web"]["DATABASE_SSLROOTCERT"]
    digest = stack["app"].exec(["sha256sum", path]).stdout.split()[0]
    assert digest == hashlib.sha256((ROOT / "deploy" / "rds-global-bundle.pem").read_bytes()).hexdigest()
    assert f"ARG RDS_CA_SHA256={digest}" in (ROOT / "Dockerfile").read_text()


# --- how they run ----------------------------------------------------------------------------------------
def test_signup_through_the_proxy_mails_a_confirmation_whose_link_works(stack):
    assert _get("/health")[0] == 200
    status, _, page = _get("/signup/")
    assert status == 200 and "csrfmiddlewaretoken" in page
    fields = {"full_name": "Ada Image", "email": PERSON, "country": "GB", "consent": "on"}
    status, headers, _ = _post("/signup/", fields)
    assert status == 302, headers
    message = mail_to(stack["ses"], PERSON, "")  # sent by the worker container through moto's SES
    link = next(w for w in text_of(message).split() if "/signup/confirm/" in w)
    assert link.startswith("https://signup.example.test/signup/confirm/")
    path = urllib.parse.urlsplit(link).path
    # The emailed link is traded for a cookie and a clean URL (a mail scanner's GET changes nothing).
    status, headers, _ = _get(path)
    assert status == 302 and headers["Location"] == "/signup/confirm/", headers
    cookie = next(c.split(";")[0] for c in headers["Set-Cookie"] if "confirm" in c.split("=")[0])
    assert _get("/signup/confirm/", cookie)[0] == 200
    status, headers, _ = _post("/signup/confirm/", {}, cookie)
    assert status == 302 and "?confirmed=1" in headers["Location"], headers
    print(
        f"smoke through the proxy: /health 200, signup 302, link 302 to the clean URL, confirm GET 200, "
        f"POST 302; mail {message['Subject']!r}"
    )


def test_each_image_healthcheck_exits_zero(stack):
    for name in ("app", "proxy"):
        container = stack[name]
        result = container.exec(container.image.healthcheck)
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_every_process_of_every_container_runs_as_non_root(stack):
    uids = dict(stack["found"]["uids"])
    for name in ("app", "proxy", "worker"):
        processes = stack[name].processes()
        assert processes, f"{name} runs no process"
        uids |= {f"{name}: {cmd[:60]}": uid for uid, cmd in processes.values()}
    for what, uid in sorted(uids.items()):
        print(f"uid {uid:>4}  {what}")
    assert all(uid != 0 for uid in uids.values()), uids
    assert any(key.startswith("migrate:") for key in uids)
