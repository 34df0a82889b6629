"""S3 for media always, for static files only behind a CDN (moto in server mode stands in for S3)."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from devenv.servers import AppServer
from tests.conftest import SERVICES
from tests.helpers import Browser

pytestmark = pytest.mark.slow
BASE = Path(__file__).resolve().parents[2]
BUCKET = "signup-static-test"
CDN = "d111111abcdef8.cloudfront.net"


@pytest.fixture
def s3_env(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    env = {**SERVICES.environ(), "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_ENDPOINT_URL": moto_server.url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
    yield s3, env
    moto_server.reset()


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _signup_page(env: dict):
    app = AppServer(env=env, workers=1, threads=2)
    app.start()
    try:
        page = Browser(app.url).get("/signup/")
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.body).group(1)
        css = Browser(app.url).get(stylesheet) if stylesheet.startswith("/") else None
    finally:
        app.stop()
    assert page.status == 200
    return page, stylesheet, css


def test_behind_a_cdn_collectstatic_uploads_private_long_cached_files_and_pages_use_the_cdn(s3_env):
    s3, env = s3_env
    env = {**env, "AWS_S3_CUSTOM_DOMAIN": CDN}
    _manage(env, "collectstatic", "--noinput")
    keys = {obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for obj in page.get("Contents", [])}  # fmt: skip
    assert "static/staticfiles.json" in keys
    hashed_css = next(k for k in keys if re.fullmatch(r"static/css/site\.[0-9a-f]{12}\.css", k))
    assert any(k.startswith("static/admin/css/base.") for k in keys)
    head = s3.head_object(Bucket=BUCKET, Key=hashed_css)
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    grants = s3.get_object_acl(Bucket=BUCKET, Key=hashed_css)["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee", {})) for g in grants)  # no public ACL

    page, stylesheet, _ = _signup_page(env)
    assert stylesheet == f"https://{CDN}/{hashed_css}"  # unsigned: it stays cacheable
    assert f"https://{CDN}" in page.headers["Content-Security-Policy"]


def test_a_private_bucket_without_a_cdn_holds_media_behind_signed_urls_and_static_stays_in_the_app(s3_env):
    s3, env = s3_env
    _manage(env, "collectstatic", "--noinput")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)  # static files were not uploaded

    page, stylesheet, css = _signup_page(env)
    assert stylesheet.startswith("/static/css/site.") and css.status == 200 and "body" in css.body
    assert "cloudfront" not in page.headers["Content-Security-Policy"]

    url = _manage(
        env, "shell", "-c",
        "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; "
        "name = default_storage.save('exports/report.txt', ContentFile(b'media bytes')); "
        "print(default_storage.url(name))",
    ).strip().splitlines()[-1]  # fmt: skip
    key = next(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert key.startswith("media/exports/report")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url  # a short-lived signed URL
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.read() == b"media bytes"
