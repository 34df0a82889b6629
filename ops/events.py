"""What changed, and which target is failing: RDS events, ECS deployments, the target group's targets.

1. One call per source per refresh, made inside the dashboard's refresh (ops/cloudwatch.py caches it with
   the metrics): RDS DescribeEvents, ECS DescribeServices, ELBv2 DescribeTargetHealth.
2. A source that fails does not fail the others or the charts: its error is kept beside its data, and the
   verdict names it as unknown. A source not configured is skipped (no call).
3. RDS events: every category but the daily backups (noise at 3 a.m.), for the instances the page charts,
   newest first. ECS: each deployment of the service (created, state, task definition).
4. Targets: each with its state and AWS's reason code and description (Target.ResponseCodeMismatch, ...).
   OPS_TARGET_GROUP is the CloudWatch dimension (targetgroup/<name>/<id>); its ARN is looked up once
   (DescribeTargetGroups, cached like the RDS instances) unless an ARN is given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.cache import cache

from ops.cloudwatch import CloudWatchError, classify, client

NOISE = {"backup"}
MAX_EVENTS = 100
ARN_CACHE_SECONDS = 900


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise classify(exc) from exc


def _epoch(value) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def rds_events(instance_ids: list[str], start: int, end: int) -> list[dict]:
    """Return the RDS events of `instance_ids` between start and end (one DescribeEvents call)."""
    reply = _call(
        client("rds").describe_events,
        SourceType="db-instance",
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end, UTC),
        MaxRecords=MAX_EVENTS,
    )
    wanted = set(instance_ids)
    out = []
    for event in reply.get("Events", []):
        when, categories = _epoch(event.get("Date")), event.get("EventCategories") or []
        if event.get("SourceIdentifier") not in wanted or not when or not start <= when <= end:
            continue
        if categories and set(categories) <= NOISE:
            continue
        out.append({"t": when, "source": "rds", "what": f"RDS {event['SourceIdentifier']}",
                    "title": event.get("Message", "")[:200], "kind": ", ".join(categories)})  # fmt: skip
    return out


def ecs_deployments(start: int, end: int) -> list[dict]:
    """Return the ECS service's deployments created between start and end (one DescribeServices call)."""
    reply = _call(
        client("ecs").describe_services, cluster=settings.OPS_ECS_CLUSTER, services=[settings.OPS_ECS_SERVICE]
    )
    if reply.get("failures"):
        failure = reply["failures"][0]
        raise CloudWatchError("error", f"DescribeServices: {failure.get('reason', '')} {failure.get('detail', '')}")
    out = []
    for service in reply.get("services", []):
        for deployment in service.get("deployments", []):
            when = _epoch(deployment.get("createdAt"))
            if not when or not start <= when <= end:
                continue
            task = deployment.get("taskDefinition", "").rsplit("/", 1)[-1]
            state = deployment.get("rolloutState") or deployment.get("status", "")
            counts = f"{deployment.get('runningCount', 0)}/{deployment.get('desiredCount', 0)} running"
            out.append({"t": when, "source": "ecs", "what": f"ECS {service.get('serviceName', '')}",
                        "title": f"deployment of {task}: {state.lower()}, {counts}",
                        "kind": "deployment"})  # fmt: skip
    return out


def target_group_arn() -> str:
    """Return the ARN of OPS_TARGET_GROUP (looked up by name, cached 15 minutes)."""
    name = settings.OPS_TARGET_GROUP
    if name.startswith("arn:"):
        return name
    key = f"ops:tg-arn:v1:{name}"
    found = cache.get(key)
    if found is None:
        reply = _call(client("elbv2").describe_target_groups, Names=[name.split("/")[1]])
        found = reply["TargetGroups"][0]["TargetGroupArn"]
        cache.set(key, found, ARN_CACHE_SECONDS)
    return found


def targets() -> list[dict]:
    """Return every target of the target group: id, port, AZ, state, reason code and description."""
    reply = _call(client("elbv2").describe_target_health, TargetGroupArn=target_group_arn())
    order = {"unhealthy": 0, "unavailable": 1, "draining": 2, "initial": 3, "unused": 4, "healthy": 5}
    out = []
    for entry in reply.get("TargetHealthDescriptions", []):
        target, health = entry.get("Target", {}), entry.get("TargetHealth", {})
        out.append({"id": target.get("Id", ""), "port": target.get("Port"), "az": target.get("AvailabilityZone", ""),
                    "state": health.get("State", ""), "reason": health.get("Reason", ""),
                    "description": health.get("Description", "")})  # fmt: skip
    return sorted(out, key=lambda t: (order.get(t["state"], 9), t["id"]))


def collect(instance_ids: list[str], start: int, end: int) -> dict:
    """Return {"events": [...], "targets": [...] or None, "errors": {source: message}}; skip what is unset."""
    events: list[dict] = []
    result: dict = {"events": events, "targets": None, "errors": {}}
    sources = []
    if instance_ids:
        sources.append(("RDS events", lambda: events.extend(rds_events(instance_ids, start, end))))
    if settings.OPS_ECS_CLUSTER and settings.OPS_ECS_SERVICE:
        sources.append(("ECS deployments", lambda: events.extend(ecs_deployments(start, end))))
    if settings.OPS_TARGET_GROUP:
        sources.append(("target health", lambda: result.update(targets=targets())))
    for name, run in sources:
        try:
            run()
        except (CloudWatchError, KeyError, IndexError) as exc:  # IndexError: no such target group
            error = exc if isinstance(exc, CloudWatchError) else CloudWatchError("error", f"not found: {exc}")
            result["errors"][name] = f"{error.kind}: {error}"
    events.sort(key=lambda e: -e["t"])
    return result
