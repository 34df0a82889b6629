"""What /ops/ shows from CloudWatch: the panels (metrics, statistics, units, thresholds) and their data.

Thresholds follow AWS's recommended alarms: EC2 CPU > 80 %, RDS CPU > 90 %, connections near
max_connections, FreeStorageSpace < 10 % of the allocated storage, FreeableMemory < 25 % of the class's
memory. The data comes from ops/cloudwatch.py's shared cache; ops/charts.py draws it.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from ops import cloudwatch, events, rds, slo
from ops.cloudwatch import CloudWatchError, Series
from ops.panels import Panel, Section
from ops.units import fmt

RANGES = {"1h": 3600, "3h": 3 * 3600, "12h": 12 * 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_RANGE = "3h"
RDS_CACHE_SECONDS = 900  # instances, classes and storage change rarely: DescribeDBInstances every 15 min

# Panels in page order: key -> (title, unit, conversion). Conversions: ms (seconds -> ms); /min and /s
# (a Sum per period -> a rate, so values do not change with the period).
PANELS = {
    "alb_requests": ("Requests", "/min", "/min"),
    "alb_latency": ("Response time (average)", "ms", "ms"),
    "alb_p": ("Response time p95 / p99", "ms", "ms"),
    "alb_5xx": ("5XX responses", "/min", "/min"),
    "alb_5xx_rate": ("5XX rate (metric math)", "percent", ""),
    "alb_healthy": ("Healthy targets", "count", ""),
    "alb_unhealthy": ("Unhealthy targets", "count", ""),
    "alb_conn_errors": ("Rejected / target connection errors", "/min", "/min"),
    "app_signups": ("Signups / duplicates", "/min", "/min"),
    "app_emails": ("Emails sent / failed", "/min", "/min"),
    "app_reads": ("Router reads by database", "/min", "/min"),
    "app_router": ("Router fallbacks / pins / retries", "/min", "/min"),
    "app_redis": ("Cache calls skipped (Redis circuit open)", "/min", "/min"),
    "ec2_cpu": ("CPU", "percent", ""),
    "ec2_net": ("Network in / out", "bytes/s", "/s"),
    "ec2_status": ("Status check failed", "count", ""),
    "ec2_credits": ("CPU credit balance", "count", ""),
    "ecs_cpu": ("CPU", "percent", ""),
    "ecs_memory": ("Memory", "percent", ""),
    "rds_cpu": ("CPU", "percent", ""),
    "rds_conns": ("Connections", "count", ""),
    "rds_storage": ("Free storage", "bytes", ""),
    "rds_memory": ("Freeable memory", "bytes", ""),
    "rds_lag": ("Replica lag", "seconds", ""),
    "rds_read_latency": ("Read latency", "ms", "ms"),
    "rds_write_latency": ("Write latency", "ms", "ms"),
    "rds_read_iops": ("Read IOPS", "IOPS", ""),
    "rds_write_iops": ("Write IOPS", "IOPS", ""),
    "rds_queue": ("Disk queue depth", "count", ""),
    "cache_cpu": ("CPU", "percent", ""),
    "cache_conns": ("Connections", "count", ""),
    "cache_hits": ("Hits / misses", "/min", "/min"),
    "cache_hit_rate": ("Hit rate (metric math)", "percent", ""),
    "cache_evictions": ("Evictions", "/min", "/min"),
    "proxy_conns": ("Connections", "count", ""),
}
# Static thresholds from AWS's recommended alarms; RDS connections, storage and memory depend on the instance.
THRESHOLDS = {"alb_5xx_rate": (">", 5), "alb_healthy": ("<", 1), "alb_unhealthy": (">", 0), "alb_conn_errors": (">", 0),
              "ec2_cpu": (">", 80), "ec2_status": (">", 0), "ecs_cpu": (">", 85), "ecs_memory": (">", 85),
              "rds_cpu": (">", 90), "rds_lag": (">", 60),
              "cache_cpu": (">", 90)}  # fmt: skip
NOTES = {"ec2_credits": "Burstable (T) instances only; empty for the others."}
# Series: (panel, metric, statistic, label), drawn once per resource (each EC2 or RDS instance).
ALB_SERIES = [
    ("alb_requests", "RequestCount", "Sum", "requests"),
    ("alb_latency", "TargetResponseTime", "Average", "average"),
    ("alb_p", "TargetResponseTime", "p95", "p95"),
    ("alb_p", "TargetResponseTime", "p99", "p99"),
    ("alb_5xx", "HTTPCode_Target_5XX_Count", "Sum", "from targets"),
    ("alb_5xx", "HTTPCode_ELB_5XX_Count", "Sum", "from the ALB"),
    ("alb_conn_errors", "RejectedConnectionCount", "Sum", "rejected"),
    ("alb_conn_errors", "TargetConnectionErrorCount", "Sum", "target connection errors"),
]
TARGET_GROUP_SERIES = [
    ("alb_healthy", "HealthyHostCount", "Minimum", "healthy"),
    ("alb_unhealthy", "UnHealthyHostCount", "Maximum", "unhealthy"),
]
EC2_SERIES = [
    ("ec2_cpu", "CPUUtilization", "Average", ""),
    ("ec2_net", "NetworkIn", "Sum", "in"),
    ("ec2_net", "NetworkOut", "Sum", "out"),
    ("ec2_status", "StatusCheckFailed", "Maximum", ""),
    ("ec2_credits", "CPUCreditBalance", "Minimum", ""),
]
ECS_SERIES = [  # the service's tasks (Fargate): averaged and the busiest
    ("ecs_cpu", "CPUUtilization", "Average", "average"),
    ("ecs_cpu", "CPUUtilization", "Maximum", "busiest task"),
    ("ecs_memory", "MemoryUtilization", "Average", "average"),
    ("ecs_memory", "MemoryUtilization", "Maximum", "busiest task"),
]
RDS_SERIES = [
    ("rds_cpu", "CPUUtilization", "Average", ""),
    ("rds_conns", "DatabaseConnections", "Maximum", ""),
    ("rds_storage", "FreeStorageSpace", "Minimum", ""),
    ("rds_memory", "FreeableMemory", "Minimum", ""),
    ("rds_lag", "ReplicaLag", "Maximum", ""),  # replicas only
    ("rds_read_latency", "ReadLatency", "Average", ""),
    ("rds_write_latency", "WriteLatency", "Average", ""),
    ("rds_read_iops", "ReadIOPS", "Average", ""),
    ("rds_write_iops", "WriteIOPS", "Average", ""),
    ("rds_queue", "DiskQueueDepth", "Average", ""),
]
CACHE_SERIES = [
    ("cache_cpu", "CPUUtilization", "Average", "host"),
    ("cache_cpu", "EngineCPUUtilization", "Average", "engine"),
    ("cache_conns", "CurrConnections", "Maximum", "current"),
    ("cache_hits", "CacheHits", "Sum", "hits"),
    ("cache_hits", "CacheMisses", "Sum", "misses"),
    ("cache_evictions", "Evictions", "Sum", "evictions"),
]
APP_SERIES = [  # the app's own metrics, every task together (EMF in the JSON logs: project/metrics.py)
    ("app_signups", "Signups", "Sum", "signups"),
    ("app_signups", "SignupDuplicates", "Sum", "duplicates"),
    ("app_emails", "EmailsSent", "Sum", "sent"),
    ("app_emails", "EmailsFailed", "Sum", "failed"),
    ("app_router", "RouterFallbacks", "Sum", "fallbacks"),
    ("app_router", "RouterPins", "Sum", "pins"),
    ("app_router", "RouterRetries", "Sum", "retries"),
    ("app_redis", "RedisCircuitOpen", "Sum", "skipped"),
]
PROXY_SERIES = [
    ("proxy_conns", "ClientConnections", "Sum", "client"),
    ("proxy_conns", "DatabaseConnections", "Sum", "to the database"),
]


def _key(section: str, metric: str, stat: str, resource: str = "") -> str:
    """A series' stable name, as in data.json: rds.CPUUtilization.Average.signups-db."""
    return ".".join(filter(None, [section, metric, stat, resource]))


def _series(section: str, namespace: str, rows: list, resources: list[tuple[str, str, dict]]) -> dict:
    """Return panel key -> series for each row and each resource (label, name in the key, dimensions)."""
    out: dict[str, list[Series]] = {}
    for panel, metric, stat, label in rows:
        for name, key_part, dims in resources:
            text = " ".join(filter(None, [name, label]))
            out.setdefault(panel, []).append(
                Series(_key(section, metric, stat, key_part), text, namespace, metric, tuple(dims.items()), stat)
            )
    return out


def _panels(section: str, series: dict[str, list[Series]]) -> list[Panel]:
    panels = []
    for key, (title, unit, conversion) in PANELS.items():
        if key.startswith(section + "_"):
            op, value = THRESHOLDS.get(key, ("", None))
            label = f"alarm {op} {fmt(value, unit)}" if value is not None else ""
            panels.append(Panel(key, title, unit, series.get(key, []), conversion, value, op == "<", label,
                                NOTES.get(key, "")))  # fmt: skip
    return panels


def _by_key(panels: list[Panel]) -> dict[str, Panel]:
    return {p.key: p for p in panels}


# --- sections -----------------------------------------------------------------------------------------
def _alb() -> Section:
    section = Section("alb", "Load balancer (ALB)")
    if not settings.OPS_ALB:
        section.unconfigured = "Set OPS_ALB to the LoadBalancer dimension (app/<name>/<id>)."
        return section
    lb = {"LoadBalancer": settings.OPS_ALB}
    rows = [r for r in ALB_SERIES if settings.OPS_PERCENTILES or r[2] in cloudwatch.STANDARD_STATS]
    series = _series("alb", "AWS/ApplicationELB", rows, [("", "", lb)])
    if settings.OPS_TARGET_GROUP:
        tg = {"TargetGroup": settings.OPS_TARGET_GROUP, **lb}
        series |= _series("alb", "AWS/ApplicationELB", TARGET_GROUP_SERIES, [("", "", tg)])
    refs = {
        m: "{" + _key("alb", m, "Sum") + "}"
        for m in ("RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count")
    }
    t5xx, e5xx = refs["HTTPCode_Target_5XX_Count"], refs["HTTPCode_ELB_5XX_Count"]
    rate = f"100 * (FILL({t5xx}, 0) + FILL({e5xx}, 0)) / {refs['RequestCount']}"
    series["alb_5xx_rate"] = [Series("alb.5XX_rate", "5XX / requests", expression=rate)]
    section.panels = _panels("alb", series)
    panels = _by_key(section.panels)
    if not settings.OPS_PERCENTILES:
        panels["alb_p"].unconfigured = "Percentiles are off: set OPS_PERCENTILES=1."
    if not settings.OPS_TARGET_GROUP:
        for key in ("alb_healthy", "alb_unhealthy"):
            panels[key].unconfigured = "Set OPS_TARGET_GROUP (targetgroup/<name>/<id>)."
    return section


def _app() -> Section:
    section = Section("app", "App, fleet-wide (its own metrics)")
    if not configured():
        section.unconfigured = "Name an AWS resource (OPS_ALB, ...) so the page reads CloudWatch."
        return section
    namespace = settings.METRICS_NAMESPACE
    series = _series("app", namespace, APP_SERIES, [("", "", {})])
    reads = [("app_reads", "RouterReads", "Sum", "")]
    series |= _series("app", namespace, reads, [(alias, alias, {"Alias": alias}) for alias in settings.DATABASES])
    section.panels = _panels("app", series)
    section.note = (
        f"Every task and worker together: namespace {namespace}, from the Embedded Metric Format in the logs."
    )
    return section


def _ec2() -> Section:
    section = Section("ec2", "App hosts (EC2)")
    if settings.OPS_EC2_INSTANCES:
        resources = [(i, i, {"InstanceId": i}) for i in settings.OPS_EC2_INSTANCES]
    elif settings.OPS_ASG:
        resources = [(settings.OPS_ASG, settings.OPS_ASG, {"AutoScalingGroupName": settings.OPS_ASG})]
        section.note = f"Auto Scaling group {settings.OPS_ASG}: averages over its instances."
    else:
        section.unconfigured = "Set OPS_EC2_INSTANCES (i-…,i-…) or OPS_ASG (the Auto Scaling group name)."
        return section
    section.panels = _panels("ec2", _series("ec2", "AWS/EC2", EC2_SERIES, resources))
    return section


def _rds(instances: list[dict], live_max_connections: int | None) -> Section:
    section = Section("rds", "Database (RDS)")
    if not instances:
        section.unconfigured = "Set OPS_RDS_INSTANCES to the primary's identifier (replicas are discovered)."
        return section
    resources = [(f"{db['id']} ({db['role']})", db["id"], {"DBInstanceIdentifier": db["id"]}) for db in instances]
    series = _series("rds", "AWS/RDS", RDS_SERIES, resources)
    series["rds_lag"] = series["rds_lag"][1:]  # the primary reports no ReplicaLag
    section.panels = _panels("rds", series)
    panels, primary = _by_key(section.panels), instances[0]
    if len(instances) == 1:
        panels["rds_lag"].note = "No replicas."
    max_conn, source = live_max_connections, "live"
    if not max_conn:
        max_conn, source = primary.get("default_max_connections"), "class default"
    # Thresholds from the primary's size (replicas are usually the same class and storage).
    limits = [
        ("rds_conns", max_conn, 0.9, f"90 % of max_connections {max_conn} ({source})"),
        ("rds_storage", primary.get("allocated_bytes"), 0.1, "alarm < 10 % of allocated"),
        ("rds_memory", primary.get("memory_bytes"), 0.25, f"alarm < 25 % of {primary.get('instance_class')}"),
    ]
    for key, total, share, label in limits:
        if total:
            panels[key].threshold, panels[key].threshold_label = total * share, label
            panels[key].below = key != "rds_conns"
    return section


def _elasticache() -> Section:
    section = Section("cache", "Cache (ElastiCache)")
    if not settings.OPS_CACHE_CLUSTER:
        section.unconfigured = "Set OPS_CACHE_CLUSTER to the CacheClusterId (e.g. signups-redis-001)."
        return section
    series = _series(
        "cache", "AWS/ElastiCache", CACHE_SERIES, [("", "", {"CacheClusterId": settings.OPS_CACHE_CLUSTER})]
    )
    hits, misses = "{" + _key("cache", "CacheHits", "Sum") + "}", "{" + _key("cache", "CacheMisses", "Sum") + "}"
    series["cache_hit_rate"] = [
        Series("cache.hit_rate", "hits / lookups", expression=f"100 * {hits} / ({hits} + {misses})")
    ]
    section.panels = _panels("cache", series)
    return section


def _proxy() -> Section:
    section = Section("proxy", "RDS Proxy")
    if not settings.OPS_RDS_PROXY:
        section.unconfigured = "Set OPS_RDS_PROXY to the proxy's name."
        return section
    section.panels = _panels(
        "proxy", _series("proxy", "AWS/RDS", PROXY_SERIES, [("", "", {"ProxyName": settings.OPS_RDS_PROXY})])
    )
    return section


def _ecs() -> Section:
    section = Section("ecs", "App tasks (ECS)")
    if not (settings.OPS_ECS_CLUSTER and settings.OPS_ECS_SERVICE):
        section.unconfigured = "Set OPS_ECS_CLUSTER and OPS_ECS_SERVICE (the app's ECS cluster and service)."
        return section
    dims = {"ClusterName": settings.OPS_ECS_CLUSTER, "ServiceName": settings.OPS_ECS_SERVICE}
    section.note = f"Service {settings.OPS_ECS_SERVICE} in cluster {settings.OPS_ECS_CLUSTER}."
    section.panels = _panels("ecs", _series("ecs", "AWS/ECS", ECS_SERIES, [("", "", dims)]))
    return section


def sections(instances: list[dict], live_max_connections: int | None = None) -> list[Section]:
    """Return every section in page order, configured or saying how to configure it."""
    hosts = [_ec2(), _ecs()]
    app_hosts = [h for h in hosts if not h.unconfigured] or hosts  # EC2 or ECS: only the "not configured" of both
    return [_alb(), _app(), *app_hosts, _rds(instances, live_max_connections), _elasticache(), _proxy()]


def all_series(secs: list[Section]) -> list[Series]:
    return [s for section in secs for panel in section.panels for s in panel.series]


# --- fetching -----------------------------------------------------------------------------------------
def config_key() -> str:
    names = (
        "AWS_REGION",
        "OPS_ALB",
        "OPS_TARGET_GROUP",
        "OPS_ASG",
        "OPS_EC2_INSTANCES",
        "OPS_ECS_CLUSTER",
        "OPS_ECS_SERVICE",
        "OPS_RDS_INSTANCES",
        "OPS_CACHE_CLUSTER",
        "OPS_RDS_PROXY",
        "OPS_ALARM_PREFIX",
        "OPS_PERCENTILES",
        "SLO_AVAILABILITY",
        "SLO_LATENCY_MS",
        "METRICS_NAMESPACE",
    )
    return hashlib.sha256(repr([getattr(settings, n) for n in names]).encode()).hexdigest()[:12]


def listed_instances() -> list[dict]:
    """Return OPS_RDS_INSTANCES as instances of unknown size (before or without DescribeDBInstances)."""
    return [
        {"id": i, "role": "replica" if n else "primary", "described": False}
        for n, i in enumerate(settings.OPS_RDS_INSTANCES)
    ]


def rds_instances() -> tuple[list[dict], str]:
    """Return the RDS instances (cached 15 min; a failure falls back to the listed ones) and any error."""
    listed = settings.OPS_RDS_INSTANCES
    if not listed:
        return [], ""
    key = f"ops:rds:v1:{config_key()}"
    found = cache.get(key)
    if found is None:
        try:
            found = {"instances": rds.describe_instances(listed), "error": ""}
        except CloudWatchError as exc:  # e.g. the role lacks rds:DescribeDBInstances: chart what is listed
            found = {"instances": listed_instances(), "error": f"DescribeDBInstances: {exc}"}
        cache.set(key, found, RDS_CACHE_SECONDS if not found["error"] else cloudwatch.RETRY_AFTER_FAILURE * 10)
    return found["instances"], found["error"]


def _fetch(range_seconds: int) -> dict:
    """One refresh: GetMetricData (charts and SLO), DescribeAlarms, then the event and target calls."""
    start, end, period = cloudwatch.window(range_seconds, cloudwatch._now())
    instances, rds_error = rds_instances()
    series, extra = all_series(sections(instances)), slo.series(period)
    # one call: the SLO windows reach 6 h back whatever the range; the charts keep only their range
    data = cloudwatch.get_metric_data(series + extra, min(start, end - slo.LONGEST) if extra else start, end, period)
    measured = {s.key: data.pop(s.key) for s in extra}
    for entry in data.values():
        first = next((i for i, t in enumerate(entry["t"]) if t >= start), len(entry["t"]))
        entry["t"], entry["v"] = entry["t"][first:], entry["v"][first:]
    alarms = cloudwatch.describe_alarms(settings.OPS_ALARM_PREFIX)
    changes = events.collect([db["id"] for db in instances], start, end)
    return {
        "start": start,
        "end": end,
        "period": period,
        "series": data,
        "slo": slo.compute(measured, end),
        "alarms": alarms,
        "events": changes["events"],
        "targets": changes["targets"],
        "source_errors": changes["errors"],
        "rds": instances,
        "rds_error": rds_error,
        "queries": len(series) + len(extra),
    }


def configured() -> bool:
    """Whether any AWS resource is named; with none (local runs, tests) the page never calls AWS."""
    return any(
        getattr(settings, name)
        for name in (
            "OPS_ALB",
            "OPS_ASG",
            "OPS_EC2_INSTANCES",
            "OPS_ECS_CLUSTER",
            "OPS_RDS_INSTANCES",
            "OPS_CACHE_CLUSTER",
            "OPS_RDS_PROXY",
            "OPS_ALARM_PREFIX",
        )
    )


def load(range_key: str) -> dict:
    """Return the CloudWatch document for a range: from the shared cache, refreshed when due."""
    if not configured():
        return {"state": "unconfigured", "fetched_at": None, "stale_since": None, "error": "", "kind": "", "calls": {}}
    seconds = RANGES[range_key]
    key = f"ops:cw:v1:{range_key}:{config_key()}"
    return cloudwatch.cached(key, lambda: _fetch(seconds), settings.OPS_CACHE_SECONDS)
