"""What changed, per-target health, the error budget, one-click links and the honest verdict, against moto."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import pytest

from bench.ops import ALB, ECS_CLUSTER, ECS_SERVICE, RDS_PRIMARY, seed, seed_changes
from ops import cloudwatch
from tests.ops import test_cloudwatch
from tests.ops.test_dashboard import _panel, _user

aws = test_cloudwatch.aws  # boto3 on moto, every resource configured, nothing cached

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def oncall(client):
    client.force_login(_user("night-owl"))
    return client


@pytest.fixture
def seeded(aws, moto_server, settings):
    settings.OPS_ECS_CLUSTER, settings.OPS_ECS_SERVICE = ECS_CLUSTER, ECS_SERVICE
    settings.OPS_LOG_GROUP = "/ecs/signup-prod"
    seed(moto_server.url, minutes=10, step=5)  # RDS primary + replica (moto records their creation events)
    return aws


def _figure(html: str, key: str) -> str:
    part = html[html.index(f'id="panel-{key}"') :]
    return part[: part.index("</figure>")]


# --- what changed and targets -------------------------------------------------------------------------
def test_rds_events_and_the_ecs_deployment_are_in_the_timeline_and_marked_on_every_chart(oncall, seeded):
    response = oncall.get("/ops/", {"range": "1h"})
    assert response.status_code == 200
    changes = response.context["changes"]
    rds = [c for c in changes if c["source"] == "rds"]
    assert [c["what"] for c in rds] == [f"RDS {RDS_PRIMARY}"]  # moto records no event for a replica's creation
    assert all(c["title"] == "DB instance created" and c["kind"] == "creation" for c in rds)
    ecs = [c for c in changes if c["source"] == "ecs"]
    assert len(ecs) == 1 and ecs[0]["what"] == f"ECS {ECS_SERVICE}" and "signup-app:1" in ecs[0]["title"]
    html = response.content.decode()
    timeline = html[html.index('id="changes-h"') : html.index('id="live-h"')]
    assert timeline.count('<li class="change change-rds">') == 1 and "DB instance created" in timeline
    assert '<li class="change change-ecs">' in timeline and "deployment of signup-app:1" in timeline
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", html, flags=re.S)
    assert len(svgs) >= 20
    for svg in svgs:  # every chart: a marker per change, its tooltip naming it
        assert svg.count('<g class="marker marker-rds">') == 1 and svg.count('<g class="marker marker-ecs">') == 1
        assert f"RDS {RDS_PRIMARY}: DB instance created</title>" in svg
    start, end = response.context["cloudwatch"]["start"], response.context["cloudwatch"]["end"]
    x = float(re.search(r'marker-ecs"><title>[^<]*</title><line x1="([\d.]+)"', svgs[0]).group(1))
    share = (ecs[0]["t"] - start.timestamp()) / (end - start).total_seconds()
    assert x == pytest.approx(58 + share * (420 - 58 - 10), abs=0.2)  # at the deployment's time on the axis


def test_each_target_shows_its_state_and_aws_reason(oncall, aws, moto_server, settings):
    ids = seed_changes(moto_server.url)
    response = oncall.get("/ops/", {"range": "1h"})
    targets = {t["id"]: t for t in response.context["targets"]}
    assert targets[ids["healthy"]]["state"] == "healthy" and targets[ids["healthy"]]["reason"] == ""
    stopped = targets[ids["stopped"]]
    assert stopped["state"] == "unused" and stopped["reason"] == "Target.InvalidState"
    assert stopped["description"] == "Target is in the stopped state"
    html = response.content.decode()
    table = html[html.index('id="targets-h"') : html.index('id="live-h"')]
    assert f"{ids['stopped']}:8000" in table and "Target.InvalidState" in table and "stopped state" in table


def test_a_failing_event_source_is_named_unknown_and_the_rest_still_answers(oncall, seeded):
    def refuse(**kwargs):
        raise cloudwatch.client("rds").exceptions.ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed: rds:DescribeEvents"}}, "DescribeEvents"
        )

    cloudwatch.client("rds").meta.events.register("before-call.rds.DescribeEvents", refuse)
    response = oncall.get("/ops/", {"range": "1h"})
    assert response.status_code == 200 and response.context["cloudwatch"]["state"] == "fresh"
    assert [c["source"] for c in response.context["changes"]] == ["ecs"]  # the deployment is still there
    unknown = response.context["verdict"]["unknown"]
    assert any(u.startswith("RDS events: no credentials: AccessDenied") for u in unknown)
    assert "RDS events: no credentials: AccessDenied: not allowed" in response.content.decode()


# --- the error budget ---------------------------------------------------------------------------------
def _put_minutes(session, metric: str, values: dict[int, float], now: dt.datetime) -> None:
    """One datapoint per minute, keyed by minutes before the minute `now` (0 = that minute)."""
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "LoadBalancer", "Value": ALB}],
            "Value": float(v),
            "Timestamp": now - dt.timedelta(minutes=k),
        }
        for k, v in values.items()
    ]
    cw = session.client("cloudwatch")
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[i : i + 500])


def test_burn_rates_are_the_ones_computed_by_hand(oncall, aws, settings, monkeypatch):
    settings.SLO_AVAILABILITY = 99.9  # a 0.1 % error budget
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    monkeypatch.setattr(cloudwatch, "_now", lambda: now.timestamp() + 30)  # the page looks within that minute
    # minutes 0-4: 1000 requests, 30 target 5XX each (+5 from the ALB in minute 0); 5-59: 1000 and 15 5XX;
    # 60-359: 500 requests, no error. The window of N minutes holds minutes 0..N-1.
    _put_minutes(aws, "RequestCount", {k: 1000 if k < 60 else 500 for k in range(360)}, now)
    _put_minutes(aws, "HTTPCode_Target_5XX_Count", {k: 30 if k < 5 else 15 for k in range(60)}, now)
    _put_minutes(aws, "HTTPCode_ELB_5XX_Count", {0: 5}, now)
    response = oncall.get("/ops/", {"range": "1h"})
    windows = {w["label"]: w for w in response.context["slo"]["windows"]}
    by_hand = {  # (requests, 5XX) -> burn rate = 5XX / requests / 0.001
        "5 min": (5 * 1000, 5 * 30 + 5),
        "30 min": (30 * 1000, 155 + 25 * 15),
        "1 h": (60 * 1000, 155 + 55 * 15),
        "6 h": (60 * 1000 + 300 * 500, 155 + 55 * 15),
    }
    for label, (requests, errors) in by_hand.items():
        assert (windows[label]["requests"], windows[label]["errors"]) == (requests, errors), label
        assert windows[label]["burn"] == pytest.approx(errors / requests / 0.001, abs=0.01), label
    assert [windows[k]["burn"] for k in by_hand] == [31.0, 17.67, 16.33, 4.67]
    assert windows["5 min"]["availability"] == pytest.approx(96.9)
    rules = {r["name"]: r["firing"] for r in response.context["slo"]["rules"]}
    assert rules == {"fast burn": True, "slow burn": False}  # 1 h and 5 min over 14.4x; 6 h is under 6x
    verdict = response.context["verdict"]
    assert verdict["level"] == "alarm" and "error budget: fast burn (1 h and 5 min over 14.4x)" in verdict["reasons"]
    html = response.content.decode()
    assert '<tr id="slo-300">' in html and "31.0x" in html
    assert _panel(response, "alb_requests")["lines"][0]["t"][0] >= response.context["cloudwatch"]["start"].timestamp()


def test_no_requests_means_no_burn_rate_rather_than_zero(oncall, aws):
    response = oncall.get("/ops/", {"range": "1h"})
    assert all(w["burn"] is None and w["availability"] is None for w in response.context["slo"]["windows"])
    assert not any(r["firing"] for r in response.context["slo"]["rules"])


# --- one click to the evidence ------------------------------------------------------------------------
def test_panels_link_to_the_console_and_5xx_to_logs_insights(oncall, seeded):
    response = oncall.get("/ops/", {"range": "1h"})
    cpu = _panel(response, "rds_cpu")["console"]
    assert cpu.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#metricsV2:graph=")
    assert f"~(~'AWS*2fRDS~'CPUUtilization~'DBInstanceIdentifier~'{RDS_PRIMARY}~(stat~'Average" in cpu
    errors = _panel(response, "alb_5xx")["insights"]
    assert "#logsV2:logs-insights$3FqueryDetail$3D~(" in errors and "source~(~'*2fecs*2fsignup-prod)" in errors
    assert "filter*20status*20*3e*3d*20500" in errors
    slow = _panel(response, "alb_latency")["insights"]
    assert "filter*20duration_ms*20*3e*3d*20500" in slow
    assert _panel(response, "rds_cpu")["insights"] == ""  # only the request panels open the logs
    html = response.content.decode()
    assert _figure(html, "alb_5xx").count("requests in Logs Insights") == 1
    assert urllib.parse.urlsplit(cpu).fragment.startswith("metricsV2:graph=~(metrics~(")


# --- the honest verdict -------------------------------------------------------------------------------
def test_unconfigured_is_unknown_never_ok_and_says_what_is_missing(oncall, settings):
    for name in ("OPS_ALB", "OPS_TARGET_GROUP", "OPS_ASG", "OPS_ECS_CLUSTER", "OPS_ECS_SERVICE",
                 "OPS_CACHE_CLUSTER", "OPS_RDS_PROXY", "OPS_ALARM_PREFIX"):  # fmt: skip
        setattr(settings, name, "")
    settings.OPS_EC2_INSTANCES = settings.OPS_RDS_INSTANCES = []
    response = oncall.get("/ops/")
    verdict = response.context["verdict"]
    assert verdict["level"] == "unknown" and verdict["reasons"] == []
    assert "CloudWatch alarms, charts, SLO, what changed and target health: not configured" in verdict["unknown"][0]
    html = response.content.decode()
    assert '<header class="top level-unknown">' in html and "UNKNOWN" in html
    assert "no alarm is firing" not in html


def test_partly_configured_names_each_section_not_checked(oncall, aws, settings):
    settings.OPS_CACHE_CLUSTER, settings.OPS_TARGET_GROUP = "", ""
    verdict = oncall.get("/ops/", {"range": "1h"}).context["verdict"]
    assert "Cache (ElastiCache): not configured" in verdict["unknown"]
    assert "target health: not configured (set OPS_TARGET_GROUP)" in verdict["unknown"]
    assert "latency SLO: needs OPS_PERCENTILES=1 (a percentile rank)" in verdict["unknown"]
    assert verdict["level"] != "ok"
