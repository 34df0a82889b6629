"""/ops/: cold and warm render time through gunicorn, and CloudWatch calls per refresh, against moto.

Calls are counted at the boundary: the app talks to a counting reverse proxy in front of moto, so retries
and every operation (GetMetricData, DescribeAlarms, DescribeDBInstances) are seen as AWS would see them.
The same proxy and the same seeded metrics serve the tests (tests/ops/).
"""

from __future__ import annotations

import http.client
import http.cookiejar
import math
import re
import statistics
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.env import ROUNDS, BenchEnv
from devenv.servers import AppServer, MotoServer

ALB = "app/signups/50dc6c495c0c9188"
TARGET_GROUP = "targetgroup/signups/73e2d6bc24d8a067"
EC2_INSTANCES = ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"]
RDS_PRIMARY, RDS_REPLICA = "signups-db", "signups-db-replica-1"
CACHE_CLUSTER, RDS_PROXY = "signups-redis-001", "signups-proxy"
ECS_CLUSTER, ECS_SERVICE = "signup-prod", "signup-prod-app"
WARM_REQUESTS = 200
# A refresh when due: the metrics, the alarms and one call per event/target source (the RDS instances and
# the target group's ARN stay cached 15 minutes; a cold refresh adds DescribeDBInstances + DescribeTargetGroups).
DUE_REFRESH_CALLS = {"GetMetricData": 1, "DescribeAlarms": 1, "DescribeEvents": 1, "DescribeServices": 1,
                     "DescribeTargetHealth": 1}  # fmt: skip
COLD_REFRESH_CALLS = {**DUE_REFRESH_CALLS, "DescribeDBInstances": 1, "DescribeTargetGroups": 1}
USER, PASSWORD = "oncall-bench", "a-long-bench-password"


def ops_env(endpoint: str) -> dict:
    """The app's environment for the seeded resources, with boto3 pointed at `endpoint`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "OPS_ALB": ALB,
        "OPS_TARGET_GROUP": TARGET_GROUP,
        "OPS_EC2_INSTANCES": ",".join(EC2_INSTANCES),
        "OPS_RDS_INSTANCES": RDS_PRIMARY,
        "OPS_CACHE_CLUSTER": CACHE_CLUSTER,
        "OPS_RDS_PROXY": RDS_PROXY,
        "OPS_ECS_CLUSTER": ECS_CLUSTER,
        "OPS_ECS_SERVICE": ECS_SERVICE,
        "OPS_PERCENTILES": "0",
    }  # OPS_PERCENTILES=0: moto answers 500 to percentile statistics


# --- the counting proxy -------------------------------------------------------------------------------
def _operation(path: str, headers, body: bytes) -> str:
    if "/operation/" in path:  # smithy-rpc-v2-cbor (CloudWatch in current botocore)
        return path.rsplit("/operation/", 1)[1].split("?")[0]
    if headers.get("X-Amz-Target"):  # JSON protocols
        return headers["X-Amz-Target"].rsplit(".", 1)[-1]
    action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action")  # query protocol (RDS)
    return action[0] if action else "other"


class CountingProxy:
    """A reverse proxy in front of moto that counts AWS requests by operation."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_request(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/moto-api"):
                    with proxy.lock:
                        proxy.counts[_operation(self.path, self.headers, body)] += 1
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                conn.request(self.command, self.path, body, {k: v for k, v in self.headers.items()})
                reply = conn.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in {"transfer-encoding", "connection", "content-length", "server", "date"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_request

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> CountingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.counts)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- seeded metrics -----------------------------------------------------------------------------------
def _wave(i: int, base: float, amp: float, period: int = 20) -> float:
    return base + amp * math.sin(i / period * 2 * math.pi)


def aws_client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


def seed(endpoint: str, minutes: int = 60, step: int = 2) -> None:
    """Write `minutes` of every charted metric, an RDS primary + replica, and alarms (one firing) into moto."""
    rds = aws_client("rds", endpoint)
    rds.create_db_instance(
        DBInstanceIdentifier=RDS_PRIMARY,
        Engine="postgres",
        DBInstanceClass="db.t3.medium",
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=100,
    )
    rds.create_db_instance_read_replica(DBInstanceIdentifier=RDS_REPLICA, SourceDBInstanceIdentifier=RDS_PRIMARY)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lb, tg = {"LoadBalancer": ALB}, {"TargetGroup": TARGET_GROUP, "LoadBalancer": ALB}
    series: list[tuple[str, str, dict, callable]] = [
        ("AWS/ApplicationELB", "RequestCount", lb, lambda i: _wave(i, 1800, 400)),
        ("AWS/ApplicationELB", "TargetResponseTime", lb, lambda i: _wave(i, 0.045, 0.015)),
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, lambda i: 3 if i % 7 == 0 else 0),
        ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, lambda i: 0),
        ("AWS/ApplicationELB", "HealthyHostCount", tg, lambda i: 2),
        ("AWS/ApplicationELB", "UnHealthyHostCount", tg, lambda i: 0),
        ("AWS/ApplicationELB", "RejectedConnectionCount", lb, lambda i: 0),
        ("AWS/ApplicationELB", "TargetConnectionErrorCount", lb, lambda i: 0),
        ("AWS/ElastiCache", "CPUUtilization", {"CacheClusterId": CACHE_CLUSTER}, lambda i: _wave(i, 6, 2)),
        ("AWS/ElastiCache", "EngineCPUUtilization", {"CacheClusterId": CACHE_CLUSTER}, lambda i: _wave(i, 3, 1)),
        ("AWS/ElastiCache", "CurrConnections", {"CacheClusterId": CACHE_CLUSTER}, lambda i: 26),
        ("AWS/ElastiCache", "CacheHits", {"CacheClusterId": CACHE_CLUSTER}, lambda i: _wave(i, 5200, 900)),
        ("AWS/ElastiCache", "CacheMisses", {"CacheClusterId": CACHE_CLUSTER}, lambda i: _wave(i, 300, 80)),
        ("AWS/ElastiCache", "Evictions", {"CacheClusterId": CACHE_CLUSTER}, lambda i: 0),
        ("AWS/RDS", "ClientConnections", {"ProxyName": RDS_PROXY}, lambda i: _wave(i, 24, 4)),
        ("AWS/RDS", "DatabaseConnections", {"ProxyName": RDS_PROXY}, lambda i: 12),
    ]
    for n, instance in enumerate(EC2_INSTANCES):
        dims = {"InstanceId": instance}
        # the second host is running hot for the last 10 minutes: its CPU alarm fires
        series += [
            ("AWS/EC2", "CPUUtilization", dims, lambda i, n=n: 92 if n and i >= minutes - 10 else _wave(i, 35, 8)),
            ("AWS/EC2", "NetworkIn", dims, lambda i: _wave(i, 9e6, 2e6)),
            ("AWS/EC2", "NetworkOut", dims, lambda i: _wave(i, 2.4e7, 5e6)),
            ("AWS/EC2", "StatusCheckFailed", dims, lambda i: 0),
            ("AWS/EC2", "CPUCreditBalance", dims, lambda i: 288 - i / 2),
        ]
    for n, instance in enumerate([RDS_PRIMARY, RDS_REPLICA]):
        dims = {"DBInstanceIdentifier": instance}
        series += [
            ("AWS/RDS", "CPUUtilization", dims, lambda i, n=n: _wave(i, 22 - 10 * n, 6)),
            ("AWS/RDS", "DatabaseConnections", dims, lambda i, n=n: 24 - 12 * n),
            ("AWS/RDS", "FreeStorageSpace", dims, lambda i, n=n: 71.5e9 - n * 4e9 - i * 2e7),
            ("AWS/RDS", "FreeableMemory", dims, lambda i, n=n: _wave(i, 1.6e9 - n * 3e8, 1e8)),
            ("AWS/RDS", "ReadLatency", dims, lambda i, n=n: _wave(i, 0.0011 + n * 0.0008, 0.0003)),
            ("AWS/RDS", "WriteLatency", dims, lambda i, n=n: _wave(i, 0.0024 - n * 0.0012, 0.0005)),
            ("AWS/RDS", "ReadIOPS", dims, lambda i, n=n: _wave(i, 120 + n * 90, 30)),
            ("AWS/RDS", "WriteIOPS", dims, lambda i, n=n: _wave(i, 210 - n * 60, 40)),
            ("AWS/RDS", "DiskQueueDepth", dims, lambda i, n=n: _wave(i, 0.4 + n * 0.3, 0.2)),
        ]
        if n:
            series.append(("AWS/RDS", "ReplicaLag", dims, lambda i: max(_wave(i, 0.6, 0.5), 0)))
    cw = aws_client("cloudwatch", endpoint)
    put_series(cw, series, now, minutes, step)
    seed_changes(endpoint)
    cw.put_metric_alarm(
        AlarmName="signups-ec2-cpu-high",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "InstanceId", "Value": EC2_INSTANCES[1]}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(
        AlarmName="signups-ec2-cpu-high",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 3 datapoints [92.0, 92.0, 92.0] were greater than 80.0",
    )
    cw.put_metric_alarm(
        AlarmName="signups-rds-cpu-high",
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": RDS_PRIMARY}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )


def seed_changes(endpoint: str) -> dict:
    """An ECS service with its deployment, and a target group with a healthy and a stopped target.

    (Creating the RDS instances above is what gives moto's DescribeEvents its events: "DB instance created".)
    Returns the target ids: {"healthy": id, "stopped": id}.
    """
    ecs = aws_client("ecs", endpoint)
    ecs.create_cluster(clusterName=ECS_CLUSTER)
    task = ecs.register_task_definition(
        family="signup-app", containerDefinitions=[{"name": "app", "image": "signup:1", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=ECS_CLUSTER, serviceName=ECS_SERVICE, taskDefinition=task, desiredCount=2)
    ec2, elbv2 = aws_client("ec2", endpoint), aws_client("elbv2", endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]]
    group = elbv2.create_target_group(Name=TARGET_GROUP.split("/")[1], Protocol="HTTP", Port=8000, VpcId=vpc,
                                      TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i, "Port": 8000} for i in ids])
    ec2.stop_instances(InstanceIds=[ids[1]])  # after registering: AWS refuses to register a stopped instance
    return {"healthy": ids[0], "stopped": ids[1]}


def put_series(cw, series: list, now: datetime, minutes: int, step: int) -> None:
    """put_metric_data for (namespace, metric, dimensions, value_of_minute_index) series, in batches."""
    by_namespace: dict[str, list] = {}
    for namespace, metric, dims, value in series:
        dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
        by_namespace.setdefault(namespace, []).extend(
            {
                "MetricName": metric,
                "Dimensions": dimensions,
                "Value": float(value(i)),
                "Timestamp": now - timedelta(minutes=minutes - i),
            }
            for i in range(0, minutes, step)
        )
    for namespace, data in by_namespace.items():
        for i in range(0, len(data), 500):
            cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


# --- the benchmark ------------------------------------------------------------------------------------
def login(base_url: str) -> urllib.request.OpenerDirector:
    """Log in through the admin login form; return a cookie-keeping opener."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base_url}/admin/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": USER, "password": PASSWORD, "next": "/ops/"}
    ).encode()
    opener.open(f"{base_url}/admin/login/", data=form, timeout=30).read()
    return opener


def _get_ms(opener, url: str, expect: bytes = b"Signups on-call") -> float:
    started = time.perf_counter()
    with opener.open(url, timeout=60) as reply:
        body = reply.read()
        assert reply.status == 200 and expect in body, f"{url} answered {reply.status}"
    return (time.perf_counter() - started) * 1000


def run(bench: BenchEnv) -> dict:
    import redis

    moto = MotoServer()
    moto.start()
    proxy = CountingProxy(moto.url).start()
    ttl = 30  # longer than the warm run, so no refresh lands inside it
    env = {**bench.env, **ops_env(proxy.url), "OPS_CACHE_SECONDS": str(ttl)}
    app = AppServer(env, workers=3, threads=4)
    try:
        # a point every 5 minutes: moto scans every stored point for each query and each period of the 6 h
        # the SLO windows need (O(queries x periods x points)), which real CloudWatch does not
        seed(moto.url, minutes=60, step=5)
        bench.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User; "
            f"u = User.objects.create_user('{USER}', password='{PASSWORD}', is_staff=True); "
            "u.groups.add(Group.objects.get(name='on-call'))",
        )
        app.start(log=bench.root / "app-ops.log")
        opener, url = login(app.url), f"{app.url}/ops/?range=1h"
        store = redis.Redis.from_url(bench.redis.url)
        cold, cold_calls = [], []
        for _ in range(max(ROUNDS, 3)):
            for key in store.scan_iter("*ops:*"):
                store.delete(key)
            proxy.reset()
            cold.append(_get_ms(opener, url))
            cold_calls.append(proxy.snapshot())
        proxy.reset()
        # Side by side with the cheapest page the same staff session can get (the admin index), request by
        # request, so the ratio holds whatever else the shared machine is doing.
        warm, reference = [], []
        for _ in range(WARM_REQUESTS):
            warm.append(_get_ms(opener, url))
            reference.append(_get_ms(opener, f"{app.url}/admin/", b"Site administration"))
        warm_calls = proxy.snapshot()
        time.sleep(ttl + 1)  # the cached result is due: the next request refreshes it (RDS stays cached)
        proxy.reset()
        _get_ms(opener, url)
        refresh_calls = proxy.snapshot()
    finally:
        app.stop()
        proxy.stop()
        moto.stop()
    warm_p95 = statistics.quantiles(warm, n=20)[18]
    ref_p95 = statistics.quantiles(reference, n=20)[18]
    print(f"/ops/ cold render (CloudWatch fetch included), {len(cold)} rounds: median {statistics.median(cold):.0f} ms")
    print(
        f"/ops/ warm render, {WARM_REQUESTS} requests: p50 {statistics.median(warm):.1f} ms   "
        f"p95 {warm_p95:.1f} ms   (goal <= 50 ms)"
    )
    print(
        f"  beside the admin index of the same session: p50 {statistics.median(reference):.1f} ms   "
        f"p95 {ref_p95:.1f} ms   -> /ops/ costs x{warm_p95 / ref_p95:.1f} a bare staff page at p95"
    )
    print(
        f"AWS calls, cold refresh: {cold_calls[-1]}   refresh when due: {refresh_calls}   "
        f"while cached ({WARM_REQUESTS} renders, up to one refresh due): {warm_calls or 'none'}"
    )
    return {
        "cold_ms": {"median": round(statistics.median(cold), 1), "all": [round(c, 1) for c in cold]},
        "warm_ms": {"p50": round(statistics.median(warm), 1), "p95": round(warm_p95, 1), "requests": WARM_REQUESTS},
        "aws_calls": {"cold_refresh": cold_calls[-1], "due_refresh": refresh_calls, "while_cached": warm_calls},
        "admin_index_ms": {"p50": round(statistics.median(reference), 1), "p95": round(ref_p95, 1)},
        "warm_p95_ratio_to_admin_index": round(warm_p95 / ref_p95, 2),
        "warm_p95_goal_met": warm_p95 <= 50,
        # a wrong call count is a bug; a slow render on a noisy shared machine is a figure, not a failure
        "failed": refresh_calls != DUE_REFRESH_CALLS or cold_calls[-1] != COLD_REFRESH_CALLS,
    }
