"""The CloudWatch client: periods, the requests it builds, one call per refresh, the shared cache, failures."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from django.core.cache import cache

from bench.ops import ALB, CACHE_CLUSTER, EC2_INSTANCES, RDS_PRIMARY, RDS_PROXY, RDS_REPLICA, TARGET_GROUP, ops_env
from ops import cloudwatch, dashboard, rds, slo
from ops.cloudwatch import Series

DAY = 86400
CPU0 = f"ec2.CPUUtilization.Average.{EC2_INSTANCES[0]}"


@pytest.fixture
def aws(moto_server, monkeypatch, settings):
    """boto3 pointed at the session's moto server, every resource configured, nothing cached; a seeding session."""
    moto_server.reset()
    for name, value in ops_env(moto_server.url).items():
        monkeypatch.setenv(name, value)
    settings.AWS_REGION = "us-east-1"
    settings.OPS_ALB, settings.OPS_TARGET_GROUP = ALB, TARGET_GROUP
    settings.OPS_EC2_INSTANCES, settings.OPS_ASG = list(EC2_INSTANCES), ""
    settings.OPS_RDS_INSTANCES = [RDS_PRIMARY]
    settings.OPS_CACHE_CLUSTER, settings.OPS_RDS_PROXY = CACHE_CLUSTER, RDS_PROXY
    settings.OPS_ALARM_PREFIX, settings.OPS_PERCENTILES, settings.OPS_CACHE_SECONDS = "", False, 60
    cloudwatch.reset_clients()
    cache.clear()
    yield boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    cloudwatch.reset_clients()
    cache.clear()


def captured_calls(operation: str) -> list[dict]:
    """Record the parameters of every `operation` call the shared client makes (a botocore event hook)."""
    calls: list[dict] = []
    cloudwatch.client().meta.events.register(
        f"before-parameter-build.cloudwatch.{operation}", lambda params, **kw: calls.append(params)
    )
    return calls


def put(session, namespace: str, metric: str, dims: dict, values: list[float], minutes_ago: int = 10) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    session.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": value,
                "Timestamp": now - dt.timedelta(minutes=minutes_ago - i),
            }
            for i, value in enumerate(values)
        ],
    )


# --- periods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("range_seconds", "period"),
    [(3600, 60), (3 * 3600, 60), (12 * 3600, 300), (DAY, 600), (7 * DAY, 3600), (30 * DAY, 21600)],
)
def test_period_is_range_over_points_rounded_up_to_an_accepted_period(range_seconds, period):
    assert cloudwatch.choose_period(range_seconds) == period
    assert period % 60 == 0


def test_period_respects_what_cloudwatch_still_keeps():
    many = 10**9  # so many points wanted that only retention decides
    assert cloudwatch.choose_period(15 * DAY, many) == 60  # 1-minute points are kept 15 days
    assert cloudwatch.choose_period(16 * DAY, many) == 300  # then 5-minute points for 63 days
    assert cloudwatch.choose_period(64 * DAY, many) == 3600  # then hourly for 455 days


def test_window_is_aligned_to_the_period_and_covers_the_range():
    start, end, period = cloudwatch.window(3 * 3600, now=1_700_000_123)
    assert period == 60 and start % 60 == 0 and end % 60 == 0
    assert end >= 1_700_000_123 and end - start >= 3 * 3600


# --- the requests it builds (moto cannot answer percentiles or metric math) ----------------------------
def test_percentile_and_metric_math_queries_are_built_as_cloudwatch_expects():
    series = [
        Series("req", "requests", "AWS/ApplicationELB", "RequestCount", (("LoadBalancer", ALB),), "Sum"),
        Series("t5xx", "5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", (("LoadBalancer", ALB),), "Sum"),
        Series("p99", "p99", "AWS/ApplicationELB", "TargetResponseTime", (("LoadBalancer", ALB),), "p99"),
        Series("rate", "5xx rate", expression="100 * FILL({t5xx}, 0) / {req}"),
    ]
    queries, keys = cloudwatch.build_queries(series, 300)
    assert [q["Id"] for q in queries] == ["q0", "q1", "q2", "q3"] and keys["q3"] == "rate"
    assert queries[2]["MetricStat"] == {
        "Metric": {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "TargetResponseTime",
            "Dimensions": [{"Name": "LoadBalancer", "Value": ALB}],
        },
        "Period": 300,
        "Stat": "p99",
    }
    assert queries[3] == {
        "Id": "q3",
        "Label": "5xx rate",
        "ReturnData": True,
        "Period": 300,
        "Expression": "100 * FILL(q1, 0) / q0",
    }
    assert [s.risky for s in series] == [False, False, True, True]


def test_queries_split_only_past_500_and_math_travels_with_its_metrics():
    plain = [Series(f"m{i}", f"m{i}", "NS", "M", (("Id", str(i)),), "Sum") for i in range(1200)]
    math_ = [Series("first_last", "x", expression="{m0} + {m1199}")]
    queries, _ = cloudwatch.build_queries(plain + math_, 60)
    assert len(cloudwatch.split_queries(queries[:500])) == 1
    chunks = cloudwatch.split_queries(queries)
    assert len(chunks) == 3 and all(len(c) <= 500 for c in chunks)
    home = next(c for c in chunks if any("Expression" in q for q in c))
    ids = {q["Id"]: q for q in home}
    assert {"q0", "q1199"} <= set(ids)  # the metrics it reads are in the same call (copied, not returned twice)
    assert sum(q.get("ReturnData", True) for c in chunks for q in c) == 1201


def test_one_get_metric_data_call_carries_every_series_including_percentiles_and_math(aws, settings):
    settings.OPS_PERCENTILES = True
    calls = captured_calls("GetMetricData")
    doc = dashboard.load("1h")
    assert doc["state"] == "fresh"
    assert len(calls) == 1
    sent = calls[0]["MetricDataQueries"]
    expected = dashboard.all_series(dashboard.sections(doc["rds"])) + slo.series(doc["period"])
    assert len(sent) == len(expected) == doc["queries"]
    stats = {q["MetricStat"]["Stat"] for q in sent if "MetricStat" in q}
    assert {"p95", "p99", "Sum", "Average", "Minimum", "Maximum", "PR(:0.5)"} <= stats  # PR: the latency SLO
    app = {q["MetricStat"]["Metric"]["MetricName"] for q in sent if "Signup/App" in str(q)}
    assert app == {"Signups", "SignupDuplicates", "EmailsSent", "EmailsFailed", "RouterReads", "RouterFallbacks",
                   "RouterPins", "RouterRetries", "RedisCircuitOpen"}  # fmt: skip
    expressions = [q["Expression"] for q in sent if "Expression" in q]
    assert len(expressions) == 2 and any("FILL(" in e for e in expressions)  # 5XX rate and cache hit rate
    assert {q["MetricStat"]["Period"] for q in sent if "MetricStat" in q} == {60}
    assert doc["calls"]["GetMetricData"] == 1 and doc["calls"]["DescribeAlarms"] == 1


def test_moto_refusing_percentiles_empties_only_the_percentile_panel(aws, settings):
    settings.OPS_PERCENTILES = True
    put(aws, "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": ALB}, [0.2, 0.3])
    put(aws, "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": ALB}, [120, 60])
    doc = dashboard.load("1h")
    assert doc["state"] == "fresh"
    assert "refused the percentile" in doc["series"]["alb.TargetResponseTime.p95"]["error"]
    assert (
        doc["series"]["alb.RequestCount.Sum"]["v"] == [120.0, 60.0]
        and not doc["series"]["alb.RequestCount.Sum"]["error"]
    )
    assert doc["series"]["alb.TargetResponseTime.Average"]["v"] == [0.2, 0.3]
    # the refused batch (botocore retries a 500 once) and the batch without percentile or math queries
    assert doc["calls"]["GetMetricData"] == 3


def test_a_query_cloudwatch_could_not_answer_empties_only_its_panel(aws):
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[0]}, [40])

    def fail_one(parsed, **kwargs):
        parsed["MetricDataResults"][0].update(StatusCode="InternalError", Messages=[{"Code": "x", "Value": "boom"}])

    cloudwatch.client().meta.events.register("after-call.cloudwatch.GetMetricData", fail_one)
    doc = dashboard.load("1h")
    failed = [k for k, v in doc["series"].items() if v["error"]]
    assert failed == ["alb.RequestCount.Sum"] and "boom" in doc["series"]["alb.RequestCount.Sum"]["error"]
    assert doc["series"][CPU0]["v"] == [40.0]


# --- alarms and RDS -----------------------------------------------------------------------------------
def test_alarms_in_alarm_come_first_with_since_when(aws):
    cw = aws.client("cloudwatch")
    for name in ("a-ok", "b-firing", "c-firing"):
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/EC2",
            MetricName="CPUUtilization",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80,
            ComparisonOperator="GreaterThanThreshold",
        )
    cw.set_alarm_state(AlarmName="a-ok", StateValue="OK", StateReason="fine")
    for name in ("b-firing", "c-firing"):
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="Threshold Crossed")
    alarms = cloudwatch.describe_alarms()
    assert [a["state"] for a in alarms] == ["ALARM", "ALARM", "OK"]
    assert {a["name"] for a in alarms[:2]} == {"b-firing", "c-firing"}
    assert alarms[0]["since"] > 0 and "CPUUtilization > 80" in alarms[0]["watches"]


def test_replicas_are_discovered_from_the_primary(aws):
    client = aws.client("rds")
    client.create_db_instance(
        DBInstanceIdentifier=RDS_PRIMARY,
        Engine="postgres",
        DBInstanceClass="db.r6g.large",
        MasterUsername="app",
        MasterUserPassword="password-123",
        AllocatedStorage=200,
    )
    client.create_db_instance_read_replica(DBInstanceIdentifier=RDS_REPLICA, SourceDBInstanceIdentifier=RDS_PRIMARY)
    instances = rds.describe_instances([RDS_PRIMARY])
    assert [(i["id"], i["role"]) for i in instances] == [(RDS_PRIMARY, "primary"), (RDS_REPLICA, "replica")]
    assert instances[0]["allocated_bytes"] == 200 * 1024**3
    assert instances[0]["memory_bytes"] == 16 * 1024**3


@pytest.mark.parametrize(
    ("instance_class", "gib"),
    [
        ("db.t3.micro", 1),
        ("db.t4g.medium", 4),
        ("db.m6g.large", 8),
        ("db.r6g.2xlarge", 64),
        ("db.r7g.16xlarge", 512),
        ("db.serverless", None),
    ],
)
def test_instance_class_memory(instance_class, gib):
    memory = rds.class_memory_bytes(instance_class)
    assert memory == (gib * 1024**3 if gib else None)


# --- the shared cache and failures --------------------------------------------------------------------
def test_a_cached_result_makes_no_call_until_it_is_due(aws, monkeypatch):
    calls = captured_calls("GetMetricData")
    first = dashboard.load("1h")
    for _ in range(5):
        assert dashboard.load("1h")["fetched_at"] == first["fetched_at"]
    assert len(calls) == 1
    later = first["fetched_at"] + 61
    monkeypatch.setattr(cloudwatch, "_now", lambda: later)
    assert dashboard.load("1h")["fetched_at"] == later
    assert len(calls) == 2


def test_throttling_keeps_the_last_data_and_says_since_when(aws, monkeypatch):
    put(aws, "AWS/EC2", "CPUUtilization", {"InstanceId": EC2_INSTANCES[0]}, [55])
    good = dashboard.load("1h")
    first_failure = good["fetched_at"] + 61
    monkeypatch.setattr(cloudwatch, "_now", lambda: first_failure)

    def throttle(**kwargs):
        raise cloudwatch.client().exceptions.ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetMetricData"
        )

    cloudwatch.client().meta.events.register("before-call.cloudwatch.GetMetricData", throttle)
    stale = dashboard.load("1h")
    assert stale["state"] == "stale" and stale["kind"] == "throttled" and "Rate exceeded" in stale["error"]
    assert stale["stale_since"] == first_failure and stale["fetched_at"] == good["fetched_at"]
    assert stale["series"][CPU0]["v"] == [55.0]
    monkeypatch.setattr(cloudwatch, "_now", lambda: first_failure + 120)
    assert dashboard.load("1h")["stale_since"] == first_failure  # still failing: still stale since the first


def test_the_lock_lets_one_caller_refresh_while_others_serve_the_previous_result(aws, monkeypatch):
    calls = captured_calls("GetMetricData")
    first = dashboard.load("1h")
    monkeypatch.setattr(cloudwatch, "_now", lambda: first["fetched_at"] + 61)
    key = f"ops:cw:v1:1h:{dashboard.config_key()}"
    cache.add(f"{key}:lock", "someone-else", 30)  # another worker is refreshing right now
    assert dashboard.load("1h")["fetched_at"] == first["fetched_at"]
    assert len(calls) == 1
