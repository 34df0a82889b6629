"""Serving: gunicorn sized from the CPUs the container may use; the image's two targets."""

import re
import runpy
from pathlib import Path

import pytest

BASE = Path(__file__).resolve().parents[2]
CONF = runpy.run_path(str(BASE / "gunicorn.conf.py"))


@pytest.mark.parametrize(
    ("cpu_max", "cpus", "workers"),
    [
        ("50000 100000\n", 0.5, 2),  # a 0.5 vCPU Fargate task on a 2-vCPU host: not 3 workers
        ("100000 100000\n", 1.0, 2),
        ("200000 100000\n", 2.0, 3),
        ("400000 100000\n", None, None),  # a quota above the CPUs this process may run on: the CPUs win
        ("max 100000\n", None, None),  # no quota
    ],
)
def test_workers_follow_the_cgroup_cpu_quota(tmp_path, cpu_max, cpus, workers):
    (tmp_path / "cpu.max").write_text(cpu_max)
    affinity = CONF["available_cpus"](str(tmp_path / "nowhere"))  # no cgroup files: the affinity
    measured = CONF["available_cpus"](str(tmp_path))
    assert measured == (cpus if cpus is not None else affinity)
    if workers is not None:
        assert CONF["default_workers"](measured) == workers


def test_cgroup_v1_quota_is_read_too(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert CONF["available_cpus"](str(tmp_path)) == 0.5


def test_the_image_has_an_app_target_and_a_non_root_proxy_target_with_our_config():
    dockerfile = (BASE / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", dockerfile, flags=re.M | re.S))
    assert {"build", "app", "proxy"} <= set(stages)
    proxy = stages["proxy"]
    assert "COPY deploy/nginx.conf /etc/nginx/nginx.conf" in proxy and "USER nginx" in proxy
    assert "HEALTHCHECK" in proxy and "/proxy-health" in proxy and "EXPOSE 8000" in proxy
    assert dockerfile.rstrip().endswith("FROM app")  # a plain `docker build` still gives the app
    assert "deploy" not in (BASE / ".dockerignore").read_text().split()
    nginx_conf = (BASE / "deploy" / "nginx.conf").read_text()
    assert "listen 8000 " in nginx_conf and "server 127.0.0.1:8001" in nginx_conf
    assert re.search(r"^\s*user\s", nginx_conf, flags=re.M) is None  # runs as whoever starts it (non-root)
