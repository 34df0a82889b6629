"""collectstatic to S3 (moto in server mode) and pages that point at the bucket."""

import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devenv.servers import AppServer
from tests.conftest import SERVICES
from tests.helpers import Browser

pytestmark = pytest.mark.slow
BASE = Path(__file__).resolve().parents[2]
BUCKET = "signup-static-test"


@pytest.fixture
def s3_env(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    env = {**SERVICES.environ(), "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_ENDPOINT_URL": moto_server.url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
    yield s3, env
    moto_server.reset()


def test_collectstatic_uploads_private_long_cached_files_and_pages_use_the_bucket(s3_env, moto_server):
    s3, env = s3_env
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=BASE,
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    keys = {obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for obj in page.get("Contents", [])}  # fmt: skip
    assert "static/staticfiles.json" in keys
    hashed_css = next(k for k in keys if re.fullmatch(r"static/css/site\.[0-9a-f]{12}\.css", k))
    assert any(k.startswith("static/admin/css/base.") for k in keys)
    head = s3.head_object(Bucket=BUCKET, Key=hashed_css)
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    grants = s3.get_object_acl(Bucket=BUCKET, Key=hashed_css)["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee", {})) for g in grants)  # no public ACL

    app = AppServer(env=env, workers=1, threads=2)
    app.start()
    try:
        reply = Browser(app.url).get("/signup/")
    finally:
        app.stop()
    assert reply.status == 200
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', reply.body).group(1)
    assert stylesheet.startswith(moto_server.url) and stylesheet.endswith(hashed_css)
    assert "?" not in stylesheet  # no signature in static URLs: they stay cacheable
    assert moto_server.url in reply.headers["Content-Security-Policy"]
