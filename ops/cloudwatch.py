"""The one CloudWatch client: GetMetricData for every series, DescribeAlarms, and the shared result cache.

A refresh is ONE GetMetricData call for all series (split only past 500 queries) plus one DescribeAlarms.
Its result lives in the Django cache (Redis), shared by every gunicorn worker and every app instance;
`cache.add` is the lock, so one caller refreshes while the others keep serving the previous result.
When CloudWatch fails, the last good result stays, with the error and when the failures began.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("ops.cloudwatch")

DAY = 86400
MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
MAX_POINTS = 200  # per series and chart: about one point per 2-3 pixels
# Periods we ask for (all multiples of 60 s, which CloudWatch accepts for standard-resolution metrics).
PERIODS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, DAY)
# What CloudWatch keeps: 1-minute points for 15 days, 5-minute for 63 days, hourly for 455 days.
RETENTION = ((15 * DAY, 60), (63 * DAY, 300), (455 * DAY, 3600))
STANDARD_STATS = {"Average", "Sum", "Minimum", "Maximum", "SampleCount"}
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 2},
    user_agent_extra="signup-ops",
)
LOCK_SECONDS = 30  # longer than a refresh can take (2 attempts x (2 s connect + 5 s read) + back-off)
WAIT_SECONDS = 8.0  # with nothing cached yet, wait this long for the worker that holds the lock
KEEP_SECONDS = 7 * DAY  # the last good result outlives its freshness: it is what a stale page shows
RETRY_AFTER_FAILURE = 30  # seconds between attempts while CloudWatch fails (never more often than the TTL)

THROTTLED, UNREACHABLE, CREDENTIALS, FAILED = "throttled", "unreachable", "no credentials", "error"
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
_AUTH_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}

_COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "GreaterThanUpperThreshold": "> band",
    "LessThanLowerThreshold": "< band",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside band",
}

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()
_calls: ContextVar[Counter | None] = ContextVar("ops_cloudwatch_calls", default=None)


class CloudWatchError(Exception):
    """A failed AWS call, classified for the page: throttled, unreachable, no credentials or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the clients --------------------------------------------------------------------------------------
def client(service: str = "cloudwatch"):
    """Return the process's one boto3 client for `service` (cloudwatch, rds, ecs, elbv2), built on first use."""
    found = _clients.get(service)
    if found is None:
        with _clients_lock:
            found = _clients.get(service)
            if found is None:
                session = boto3.session.Session()  # sessions are not thread-safe: one per client, under the lock
                found = session.client(service, region_name=settings.AWS_REGION or None, config=CLIENT_CONFIG)
                found.meta.events.register("before-send", _count_request)
                _clients[service] = found
    return found


def reset_clients() -> None:
    """Forget the clients (tests change AWS_ENDPOINT_URL and credentials between cases)."""
    with _clients_lock:
        _clients.clear()


def _count_request(event_name: str = "", **kwargs) -> None:
    # Fired for every HTTP attempt, retries included: the honest "calls per refresh" figure.
    counter = _calls.get()
    if counter is not None:
        counter[event_name.rsplit(".", 1)[-1]] += 1


@contextmanager
def counting_calls() -> Iterator[Counter]:
    """Count the AWS requests (by operation) made inside the block, in this thread."""
    counter: Counter = Counter()
    token = _calls.set(counter)
    try:
        yield counter
    finally:
        _calls.reset(token)


def classify(exc: Exception) -> CloudWatchError:
    """Turn a botocore failure into the state the page shows."""
    if isinstance(exc, CloudWatchError):
        return exc
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if message.lstrip().startswith("<"):  # an HTML error page, not an AWS error
            message = f"HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', '?')} (not an AWS error)"
        kind = THROTTLED if code in _THROTTLE_CODES else CREDENTIALS if code in _AUTH_CODES else FAILED
        return CloudWatchError(kind, f"{code or 'error'}: {message.strip().splitlines()[0][:200]}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CloudWatchError(CREDENTIALS, "no AWS credentials found (task role, AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        return CloudWatchError(UNREACHABLE, f"{exc.__class__.__name__}: {str(exc)[:200]}")
    if isinstance(exc, NoRegionError):
        return CloudWatchError(FAILED, "no AWS region: set AWS_REGION")
    return CloudWatchError(FAILED, f"{exc.__class__.__name__}: {str(exc)[:200]}")


# --- time window --------------------------------------------------------------------------------------
def choose_period(range_seconds: int, max_points: int = MAX_POINTS) -> int:
    """Return the period for a range, like Grafana: range / points, rounded up to one CloudWatch keeps."""
    wanted = math.ceil(range_seconds / max_points)
    # The oldest point asked for is `range_seconds` old; past 15 (63, 455) days only coarser points exist.
    kept = next((period for age, period in RETENTION if range_seconds <= age), DAY)
    wanted = max(wanted, kept)
    return next((p for p in PERIODS if p >= wanted), math.ceil(wanted / DAY) * DAY)


def window(range_seconds: int, now: float) -> tuple[int, int, int]:
    """Return (start, end, period) in epoch seconds, aligned to the period so cached results line up."""
    period = choose_period(range_seconds)
    end = math.ceil(now / period) * period
    return end - math.ceil(range_seconds / period) * period, end, period


# --- GetMetricData ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """One line on a chart: a metric with a statistic, or metric math over other series written {key}."""

    key: str
    label: str
    namespace: str = ""
    metric: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"
    expression: str = ""
    period: int = 0  # 0: the chart's period; the SLO windows ask for their own (60 or 300 s)

    @property
    def risky(self) -> bool:
        """Percentiles and metric math: valid for CloudWatch, refused by stand-ins such as moto."""
        return bool(self.expression) or self.stat not in STANDARD_STATS


def build_queries(series: list[Series], period: int) -> tuple[list[dict], dict[str, str]]:
    """Return the MetricDataQueries for `series` and the map from query id (q0, q1, ...) to series key."""
    ids = {s.key: f"q{i}" for i, s in enumerate(series)}
    queries = []
    for s in series:
        query: dict = {"Id": ids[s.key], "Label": s.label, "ReturnData": True}
        if s.expression:
            query["Expression"] = re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], s.expression)
            query["Period"] = s.period or period
        else:
            metric = {
                "Namespace": s.namespace,
                "MetricName": s.metric,
                "Dimensions": [{"Name": n, "Value": v} for n, v in s.dimensions],
            }
            query["MetricStat"] = {"Metric": metric, "Period": s.period or period, "Stat": s.stat}
        queries.append(query)
    return queries, {query_id: key for key, query_id in ids.items()}


def split_queries(queries: list[dict], limit: int = MAX_QUERIES_PER_CALL) -> list[list[dict]]:
    """Split into calls of at most `limit` queries; metric math travels with the metrics it reads."""
    if len(queries) <= limit:
        return [queries]
    plain = [q for q in queries if "Expression" not in q]
    chunks = [plain[i : i + limit] for i in range(0, len(plain), limit)]
    by_id = {q["Id"]: q for q in plain}
    for query in (q for q in queries if "Expression" in q):
        refs = set(re.findall(r"\bq\d+\b", query["Expression"]))
        chunk = next((c for c in chunks if refs <= {q["Id"] for q in c} and len(c) < limit), None)
        if chunk is None:
            if len(chunks[-1]) + len(refs) + 1 > limit:
                chunks.append([])
            chunk = chunks[-1]
            present = {q["Id"] for q in chunk}
            chunk += [{**by_id[r], "ReturnData": False} for r in sorted(refs - present) if r in by_id]
        chunk.append(query)
    return chunks


def _get_metric_data(series: list[Series], start: int, end: int, period: int) -> dict[str, dict]:
    queries, keys = build_queries(series, period)
    out: dict[str, dict] = {s.key: {"t": [], "v": [], "error": ""} for s in series}
    for chunk in split_queries(queries):
        kwargs = {
            "MetricDataQueries": chunk,
            "ScanBy": "TimestampAscending",
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
        }
        for _page in range(10):  # NextToken only past 100,800 points per call; bounded anyway
            reply = client().get_metric_data(**kwargs)
            for result in reply.get("MetricDataResults", []):
                entry = out.get(keys.get(result["Id"], ""))
                if entry is None:
                    continue
                entry["t"] += [int(ts.timestamp()) for ts in result.get("Timestamps", [])]
                entry["v"] += [float(v) for v in result.get("Values", [])]
                if result.get("StatusCode") == "InternalError":
                    messages = "; ".join(m.get("Value", "") for m in result.get("Messages", []))
                    entry["error"] = f"CloudWatch could not answer this query ({messages or 'InternalError'})"
            if not reply.get("NextToken"):
                break
            kwargs["NextToken"] = reply["NextToken"]
    for entry in out.values():
        pairs = sorted(zip(entry["t"], entry["v"], strict=True))
        entry["t"], entry["v"] = [t for t, _ in pairs], [v for _, v in pairs]
    return out


def get_metric_data(series: list[Series], start: int, end: int, period: int) -> dict[str, dict]:
    """Fetch every series in one call; {key: {"t": [epoch...], "v": [...], "error": ""}}.

    Should CloudWatch refuse the whole batch while it holds percentile or metric-math queries, the batch
    is sent once more without them, and only their panels show the error.
    """
    try:
        return _get_metric_data(series, start, end, period)
    except (BotoCoreError, ClientError) as exc:
        error = classify(exc)
        risky = [s for s in series if s.risky]
        if error.kind != FAILED or not risky:
            raise error from exc
    logger.warning(
        "GetMetricData refused a batch with %d percentile/math queries (%s): retrying without them", len(risky), error
    )
    try:
        out = _get_metric_data([s for s in series if not s.risky], start, end, period)
    except (BotoCoreError, ClientError) as exc:
        raise classify(exc) from exc
    for s in risky:
        out[s.key] = {"t": [], "v": [], "error": f"CloudWatch refused the percentile/metric-math queries ({error})"}
    return out


# --- DescribeAlarms -----------------------------------------------------------------------------------
def describe_alarms(prefix: str = "") -> list[dict]:
    """Return every alarm (metric and composite): name, state, since (epoch), reason, what it watches."""
    kwargs: dict = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}
    if prefix:
        kwargs["AlarmNamePrefix"] = prefix
    alarms = []
    try:
        for _page in range(10):
            reply = client().describe_alarms(**kwargs)
            for alarm in [*reply.get("MetricAlarms", []), *reply.get("CompositeAlarms", [])]:
                since = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
                watches = " ".join(filter(None, [alarm.get("Namespace"), alarm.get("MetricName")]))
                if "Threshold" in alarm:
                    op = alarm.get("ComparisonOperator", "")
                    watches += f" {_COMPARISONS.get(op, op)} {alarm['Threshold']:g}"
                alarms.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm.get("StateValue", ""),
                        "since": since.timestamp() if since else None,
                        "reason": alarm.get("StateReason", "")[:300],
                        "watches": watches.strip(),
                    }
                )
            if not reply.get("NextToken"):
                break
            kwargs["NextToken"] = reply["NextToken"]
    except (BotoCoreError, ClientError) as exc:
        raise classify(exc) from exc
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    return sorted(alarms, key=lambda a: (order.get(a["state"], 3), -(a["since"] or 0), a["name"]))


# --- the shared cache -----------------------------------------------------------------------------------
def _now() -> float:
    return time.time()


def cached(key: str, fetch: Callable[[], dict], ttl: int) -> dict:
    """Return the document cached under `key`, refreshing it with `fetch()` when due (one caller at a time).

    The document carries `state` (fresh, stale, loading), `fetched_at`, `stale_since`, `error`, `calls`.
    """
    doc = cache.get(key)
    if doc is not None and _now() < doc["next_refresh"]:
        return doc
    lock, token = f"{key}:lock", uuid.uuid4().hex
    got = cache.add(lock, token, LOCK_SECONDS)
    if got is None:  # django-redis with IGNORE_EXCEPTIONS: Redis is down, so there is no shared lock either
        logger.warning("ops: cache unavailable, refreshing CloudWatch data without the shared lock")
    elif not got:
        return doc if doc is not None else _wait_for(key)
    try:
        doc = _refresh(doc, fetch, ttl)
        cache.set(key, doc, KEEP_SECONDS)
    finally:
        if cache.get(lock) == token:  # not ours any more if we outlived LOCK_SECONDS
            cache.delete(lock)
    return doc


def _wait_for(key: str) -> dict:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        doc = cache.get(key)
        if doc is not None:
            return doc
    return {"state": "loading", "fetched_at": None, "stale_since": None, "error": "", "kind": "", "calls": {}}


def _refresh(previous: dict | None, fetch: Callable[[], dict], ttl: int) -> dict:
    started, now = time.perf_counter(), _now()
    with counting_calls() as calls:
        try:
            doc = fetch()
        except Exception as exc:  # whatever failed, the page shows the last data and says why, never a 500
            if not isinstance(exc, CloudWatchError):
                logger.exception("ops: CloudWatch refresh failed")
            error = classify(exc)
            logger.warning("ops: CloudWatch %s: %s", error.kind, error)
            doc = dict(previous or {"fetched_at": None})
            doc.update(
                state="stale",
                error=str(error),
                kind=error.kind,
                failed_at=now,
                stale_since=(previous or {}).get("stale_since") or now,
                next_refresh=now + min(ttl, RETRY_AFTER_FAILURE),
            )
        else:
            doc.update(state="fresh", error="", kind="", fetched_at=now, stale_since=None, next_refresh=now + ttl)
    doc["calls"] = dict(calls)
    doc["refresh_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return doc
