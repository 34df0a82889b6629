"""/ops/ and /ops/data.json: who may see them, seeded CloudWatch data on the right chart, failure as a state."""

from __future__ import annotations

import importlib
import re
import threading
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission, User

from bench.ops import (
    ALB,
    COLD_REFRESH_CALLS,
    EC2_INSTANCES,
    RDS_PRIMARY,
    RDS_REPLICA,
    CountingProxy,
    ops_env,
    seed,
)
from devenv.servers import AppServer, free_port
from ops import cloudwatch
from tests.helpers import Browser
from tests.ops import test_cloudwatch
from tests.ops.test_cloudwatch import put

aws = test_cloudwatch.aws  # the same fixture: boto3 on moto, every resource configured

pytestmark = pytest.mark.usefixtures("live_db")
PASSWORD = "a-long-test-password"


def _on_call_group() -> Group:
    """Return the group the data migration creates (run again: live_db's flush empties auth tables)."""
    migration = importlib.import_module("ops.migrations.0002_on_call_group")
    migration.create_group(django_apps, SimpleNamespace(connection=SimpleNamespace(alias="default")))
    return Group.objects.get(name="on-call")


def _user(name: str, *, staff: bool = True, on_call: bool = True) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=staff)
    if on_call:
        user.groups.add(_on_call_group())
    return user


@pytest.fixture
def oncall(client):
    client.force_login(_user("night-owl"))
    return client


def _panel(response, key: str) -> dict:
    return next(p for s in response.context["sections"] for p in s["panels"] if p["key"] == key)


# --- access -------------------------------------------------------------------------------------------
def test_the_on_call_group_holds_the_ops_permission():
    group = _on_call_group()
    assert list(group.permissions.values_list("content_type__app_label", "codename")) == [("ops", "view_ops_dashboard")]
    assert Permission.objects.filter(codename="view_ops_dashboard").count() == 1


@pytest.mark.parametrize("path", ["/ops/", "/ops/data.json"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", ["/ops/", "/ops/data.json"])
def test_a_non_staff_user_is_refused_even_in_the_group(client, path):
    client.force_login(_user("visitor", staff=False))
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", ["/ops/", "/ops/data.json"])
def test_staff_without_the_ops_permission_get_403(client, path):
    client.force_login(_user("clerk", on_call=False))
    assert client.get(path).status_code == 403


# --- CloudWatch data on the page ----------------------------------------------------------------------
def test_seeded_datapoints_show_on_the_right_chart_with_the_right_values(oncall, aws):
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[0]}, [35, 41])
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[1]}, [70, 93])
    put(aws, "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": ALB}, [600, 1200])
    put(aws, "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": ALB}, [0.25])
    response = oncall.get("/ops/", {"range": "1h"})
    assert response.status_code == 200
    cpu = _panel(response, "ec2_cpu")
    assert [line["v"] for line in cpu["lines"]] == [[35.0, 41.0], [70.0, 93.0]]
    assert [line["current_text"] for line in cpu["lines"]] == ["41 %", "93 %"]
    assert cpu["breach"] and cpu["threshold"] == 80  # the second instance is over EC2's 80 % line
    assert _panel(response, "alb_requests")["lines"][0]["v"] == [600.0, 1200.0]  # a Sum per minute at 60 s
    assert _panel(response, "alb_latency")["lines"][0]["current_text"] == "250 ms"
    assert _panel(response, "rds_cpu")["lines"][0]["v"] == []  # nothing seeded there: an empty chart
    html = response.content.decode()
    ec2 = html[html.index('id="panel-ec2_cpu"') :]
    ec2 = ec2[: ec2.index("</figure>")]
    assert '<b class="current">93 %</b>' in ec2 and 'class="threshold"' in ec2 and "alarm &gt; 80 %" in ec2
    assert len(re.findall(r'<path class="line s[01]"', ec2)) == 2
    assert "over threshold: App hosts (EC2): CPU" in html


def test_fargate_tasks_are_charted_instead_of_ec2_hosts(oncall, aws, settings):
    settings.OPS_EC2_INSTANCES, settings.OPS_ASG = [], ""
    settings.OPS_ECS_CLUSTER, settings.OPS_ECS_SERVICE = "signup-prod", "signup-prod-app"
    dims = {"ClusterName": "signup-prod", "ServiceName": "signup-prod-app"}
    put(aws, "AWS/ECS", "CPUUtilization", dims, [30, 88])
    put(aws, "AWS/ECS", "MemoryUtilization", dims, [40, 42])
    response = oncall.get("/ops/", {"range": "1h"})
    assert [s["key"] for s in response.context["sections"]][:3] == ["alb", "app", "ecs"]  # no "EC2 not configured"
    cpu, memory = _panel(response, "ecs_cpu"), _panel(response, "ecs_memory")
    assert cpu["lines"][0]["v"] == [30.0, 88.0] and cpu["threshold"] == 85 and cpu["breach"]
    assert memory["lines"][0]["v"] == [40.0, 42.0] and not memory["breach"]
    assert "over threshold: App tasks (ECS): CPU" in response.content.decode()


def test_data_json_has_the_same_series(oncall, aws):
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[1]}, [12.5])
    doc = oncall.get("/ops/data.json", {"range": "1h"}).json()
    panels = {p["key"]: p for s in doc["sections"] for p in s["panels"]}
    assert panels["ec2_cpu"]["series"][1]["v"] == [12.5] and panels["ec2_cpu"]["series"][1]["current"] == 12.5
    assert doc["cloudwatch"]["state"] == "fresh" and doc["cloudwatch"]["calls"]["GetMetricData"] == 1
    assert set(doc["live"]) >= {"ready", "databases", "redis", "router"}


def test_rds_panels_chart_the_primary_and_its_discovered_replica_with_thresholds(oncall, aws, moto_server):
    seed(moto_server.url, minutes=10, step=5)
    response = oncall.get("/ops/", {"range": "1h"})
    cpu = _panel(response, "rds_cpu")
    assert [line["label"] for line in cpu["lines"]] == [f"{RDS_PRIMARY} (primary)", f"{RDS_REPLICA} (replica)"]
    assert _panel(response, "rds_storage")["threshold"] == 0.1 * 100 * 1024**3  # 10 % of 100 GiB allocated
    assert _panel(response, "rds_memory")["threshold"] == 0.25 * 4 * 1024**3  # 25 % of a db.t3.medium
    conns = _panel(response, "rds_conns")
    assert conns["threshold"] == pytest.approx(0.9 * 200) and "(live)" in conns["threshold_text"]
    firing = response.context["firing"]
    assert [a["name"] for a in firing] == ["signups-ec2-cpu-high"]
    html = response.content.decode()
    assert html.index("signups-ec2-cpu-high") < html.index('id="live-h"')  # alarms first, before anything else
    assert response.context["verdict"]["level"] == "alarm"


def test_unconfigured_resources_say_which_variable_to_set(oncall, aws, settings):
    settings.OPS_ALB = settings.OPS_CACHE_CLUSTER = settings.OPS_RDS_PROXY = settings.OPS_ASG = ""
    settings.OPS_EC2_INSTANCES = settings.OPS_RDS_INSTANCES = []
    settings.OPS_ECS_CLUSTER = settings.OPS_ECS_SERVICE = ""
    html = oncall.get("/ops/").content.decode()
    for variable in (
        "OPS_ALB",
        "OPS_EC2_INSTANCES",
        "OPS_ASG",
        "OPS_ECS_CLUSTER",
        "OPS_RDS_INSTANCES",
        "OPS_CACHE_CLUSTER",
        "OPS_RDS_PROXY",
    ):
        assert f"Set {variable}" in html or f"or {variable}" in html


def test_percentiles_off_says_how_to_turn_them_on(oncall, aws):
    assert "set OPS_PERCENTILES=1" in _panel(oncall.get("/ops/"), "alb_p")["unconfigured"]


# --- failure is a state -------------------------------------------------------------------------------
def _expire(monkeypatch, seconds: float) -> None:
    real = cloudwatch._now
    monkeypatch.setattr(cloudwatch, "_now", lambda: real() + seconds)


def test_throttled_cloudwatch_answers_200_with_the_last_data_and_a_stale_banner(oncall, aws, monkeypatch):
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[0]}, [64])
    assert oncall.get("/ops/", {"range": "1h"}).status_code == 200
    _expire(monkeypatch, 120)

    def throttle(**kwargs):
        raise cloudwatch.client().exceptions.ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetMetricData"
        )

    cloudwatch.client().meta.events.register("before-call.cloudwatch.GetMetricData", throttle)
    response = oncall.get("/ops/", {"range": "1h"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "CloudWatch throttled since" in html and "ThrottlingException: Rate exceeded" in html
    assert _panel(response, "ec2_cpu")["lines"][0]["v"] == [64.0]  # the last good data is still charted


def test_unreachable_cloudwatch_answers_200_with_a_banner(oncall, aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    cloudwatch.reset_clients()
    response = oncall.get("/ops/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "CloudWatch unreachable since" in html and "no CloudWatch data yet" in html
    assert response.context["live"]["ready"]["status"] == "ok"  # the live panels do not depend on AWS


def test_missing_credentials_answer_200_with_a_banner(oncall, aws, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    cloudwatch.reset_clients()
    response = oncall.get("/ops/")
    assert response.status_code == 200 and "CloudWatch no credentials since" in response.content.decode()


# --- one fetch for every worker and every instance ----------------------------------------------------
@pytest.mark.slow
def test_one_get_metric_data_per_cold_refresh_across_two_app_processes(moto_server, live_db):
    from tests.conftest import SERVICES

    moto_server.reset()
    seed(moto_server.url, minutes=10, step=5)
    proxy = CountingProxy(moto_server.url).start()
    env = {**SERVICES.environ(), **ops_env(proxy.url)}
    apps = [AppServer(env=env), AppServer(env=env)]
    _user("oncall-a")
    try:
        for app in apps:
            app.start()
        browsers = [_login(app.url, "oncall-a") for app in apps for _ in range(3)]  # 6 clients on 2 processes
        proxy.reset()
        replies: list = []
        threads = [threading.Thread(target=lambda b=b: replies.append(b.get("/ops/?range=1h"))) for b in browsers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status for r in replies] == [200] * 6
        assert all("signups-ec2-cpu-high" in r.body for r in replies)
        cold = proxy.snapshot()
        # 1 GetMetricData + 1 DescribeAlarms + 3 event/target calls (DescribeEvents, DescribeServices,
        # DescribeTargetHealth) + 2 look-ups cached 15 min (DescribeDBInstances, DescribeTargetGroups)
        assert cold == COLD_REFRESH_CALLS
        for b in browsers:
            assert b.get("/ops/?range=1h").status == 200 and b.get("/ops/data.json?range=1h").status == 200
        assert proxy.snapshot() == cold  # while cached: no call at all, from either process
    finally:
        for app in apps:
            app.stop()
        proxy.stop()


def _login(base_url: str, username: str) -> Browser:
    browser = Browser(base_url)
    # land on the home page, not /ops/: the login itself must not make the cold refresh
    reply = browser.post_form(
        "/admin/login/?next=/", {"username": username, "password": PASSWORD}, token=browser.csrf_token("/admin/login/")
    )
    assert reply.status == 200 and reply.url == base_url + "/", reply.url
    return browser


def test_unconfigured_sources_fold_into_one_line_and_router_counters_are_words(oncall, aws, settings):
    settings.OPS_ALB = settings.OPS_CACHE_CLUSTER = settings.OPS_RDS_PROXY = settings.OPS_ASG = ""
    settings.OPS_EC2_INSTANCES = []
    settings.OPS_ECS_CLUSTER = settings.OPS_ECS_SERVICE = ""
    response = oncall.get("/ops/")
    html = response.content.decode()
    folded = [s["title"] for s in response.context["not_configured"]]
    assert len(folded) >= 4 and html.count('<section class="not-configured"') == 1
    shown = {s["key"] for s in response.context["shown_sections"]}
    assert "rds" in shown and not shown & {"alb", "ec2", "ecs", "cache"}  # configured sections still drawn
    for title in folded:
        assert f'id="h-{title}"' not in html  # no empty "Not configured." panel per source
    router = response.context["router_words"]
    assert router and all(" " in words for words, _n in router)  # sentences, not pins/caught_up/marked_down
    assert "Reads kept on the primary because the replicas had not yet replayed" in html
    assert ">pins<" not in html and ">caught_up<" not in html and ">marked_down<" not in html
