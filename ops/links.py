"""One click to the evidence: CloudWatch console links for a panel's metrics, Logs Insights for its requests.

The console keeps its state in the URL fragment as "jsurl" (~(key~value), ~'string, * escapes), which
`jsurl` writes. Logs Insights' queryDetail is the same, behind `$3F`/`$3D` (its escaped ? and =).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.conf import settings

from ops.cloudwatch import Series

_PLAIN = re.compile(r"[\w\-.]")


def jsurl(value) -> str:
    """Encode `value` (dict, list, str, number, bool) as jsurl."""
    if isinstance(value, bool):
        return "~true" if value else "~false"
    if isinstance(value, int | float):
        return f"~{value:g}" if isinstance(value, float) else f"~{value}"
    if isinstance(value, str):
        return "~'" + _escape(value)
    if isinstance(value, dict):
        return "~(" + "~".join(_escape(k) + jsurl(v) for k, v in value.items()) + ")"
    return "~(" + "".join(jsurl(v) for v in value) + ")"


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if _PLAIN.match(ch) and ch.isascii():
            out.append(ch)
        elif ch == "$":
            out.append("!")
        else:
            code = ord(ch)
            out.append(f"*{code:02x}" if code < 0x100 else f"**{code:04x}")
    return "".join(out)


def _console() -> str:
    region = settings.AWS_REGION
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"


def metrics_url(series: list[Series], start: int, end: int, period: int) -> str:
    """Return the console's graph of these metrics over the same window (metric math is left out)."""
    metrics = [
        [s.namespace, s.metric, *[part for pair in s.dimensions for part in pair], {"stat": s.stat, "label": s.label}]
        for s in series
        if not s.expression
    ]
    if not metrics:
        return ""
    graph = {"metrics": metrics, "view": "timeSeries", "stacked": False, "region": settings.AWS_REGION,
             "period": period, "start": _iso(start), "end": _iso(end)}  # fmt: skip
    return f"{_console()}#metricsV2:graph={jsurl(graph)}"


def insights_url(query: str, start: int, end: int) -> str:
    """Return a Logs Insights query of the app's log group (OPS_LOG_GROUP) for the window, or "" without one."""
    if not settings.OPS_LOG_GROUP:
        return ""
    detail = {"end": _iso(end), "start": _iso(start), "timeType": "ABSOLUTE", "tz": "UTC",
              "editorString": query, "source": [settings.OPS_LOG_GROUP]}  # fmt: skip
    return f"{_console()}#logsV2:logs-insights$3FqueryDetail$3D{jsurl(detail)}"


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


ERRORS_QUERY = (
    "fields @timestamp, status, method, path, request_id, duration_ms\n"
    "| filter status >= 500\n| sort @timestamp desc\n| limit 200"
)


def slow_query() -> str:
    return (
        "fields @timestamp, duration_ms, status, method, path, request_id\n"
        f"| filter duration_ms >= {settings.SLO_LATENCY_MS}\n| sort duration_ms desc\n| limit 200"
    )


# Which panels open which query: the 5XX panels the failed requests, the latency panels the slow ones.
INSIGHTS = {"alb_5xx": ERRORS_QUERY, "alb_5xx_rate": ERRORS_QUERY, "alb_latency": None, "alb_p": None}


def insights_for(panel_key: str, start: int, end: int) -> str:
    if panel_key not in INSIGHTS:
        return ""
    return insights_url(INSIGHTS[panel_key] or slow_query(), start, end)
