"""Service level: availability and latency against their objective, and multi-window burn rates.

1. Availability is the share of ALB requests not answered with a 5XX (the targets' and the ALB's own).
   Latency is the share answered within SLO_LATENCY_MS (TargetResponseTime's percentile rank,
   PR(:seconds)). Both are held to the same objective, SLO_AVAILABILITY (99.9 %: a 0.1 % error budget).
2. A burn rate is the bad share over a window divided by the budget: 1x spends the budget exactly over the
   SLO period, 14.4x spends 2 % of a 30-day budget in an hour.
3. The SRE workbook's multi-window rules: page when the 1 h AND 5 min windows both burn over 14.4x, or the
   6 h AND 30 min windows both over 6x (the short window says it is still happening).
4. The raw counts travel in the dashboard's one GetMetricData call: 60-s points (300-s when the charts'
   period is 300 s or more) reaching back 6 h whatever the range; the rates are computed here. The
   Terraform alarms (infra/terraform/monitoring.tf) compute the same with metric math.
5. A window without requests has no rate (None, shown as "—"), never 0.
"""

from __future__ import annotations

from django.conf import settings

from ops.cloudwatch import Series

NAMESPACE = "AWS/ApplicationELB"
REQUESTS, TARGET_5XX, ELB_5XX = "RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"
LATENCY_KEY = "slo.latency_rank"
WINDOWS = (300, 1800, 3600, 21600)
LONGEST = max(WINDOWS)
RULES = (("fast burn", 3600, 300, 14.4), ("slow burn", 21600, 1800, 6.0))


def period_for(chart_period: int) -> int:
    """Return the period of the SLO series: fine enough for the 5-minute window, aligned with the charts'."""
    return 60 if chart_period < 300 else 300


def series(chart_period: int) -> list[Series]:
    """Return the SLO queries for the dashboard's GetMetricData call (none without OPS_ALB)."""
    if not settings.OPS_ALB:
        return []
    lb, period = (("LoadBalancer", settings.OPS_ALB),), period_for(chart_period)
    out = [Series(f"slo.{m}", m, NAMESPACE, m, lb, "Sum", period=period) for m in (REQUESTS, TARGET_5XX, ELB_5XX)]
    if settings.OPS_PERCENTILES:  # a percentile rank: CloudWatch answers it, moto does not
        rank = f"PR(:{settings.SLO_LATENCY_MS / 1000:g})"
        out.append(Series(LATENCY_KEY, "within objective", NAMESPACE, "TargetResponseTime", lb, rank, period=period))
    return out


def _points(entry: dict | None, since: int) -> dict[int, float]:
    if not entry:
        return {}
    return {t: v for t, v in zip(entry["t"], entry["v"], strict=True) if t >= since}


def _burn(bad: float, total: float, budget: float) -> float | None:
    return round(bad / total / budget, 2) if total else None


def compute(data: dict[str, dict], end: int) -> dict:
    """Return the objective, each window's counts, availability and burn rates, and each rule's state."""
    if not settings.OPS_ALB:
        return {"unconfigured": "Set OPS_ALB: the SLO is measured on the load balancer's requests."}
    budget = 1 - settings.SLO_AVAILABILITY / 100
    latency = data.get(LATENCY_KEY)
    latency_error = (latency or {}).get("error", "") if latency else "needs OPS_PERCENTILES=1 (a percentile rank)"
    windows = []
    for seconds in WINDOWS:
        since = end - seconds
        requests = _points(data.get(f"slo.{REQUESTS}"), since)
        total = sum(requests.values())
        bad = sum(_points(data.get(f"slo.{TARGET_5XX}"), since).values())
        bad += sum(_points(data.get(f"slo.{ELB_5XX}"), since).values())
        # the percentile rank is per period: weight each period's slow share by its requests
        ranks = _points(latency, since) if latency and not latency_error else {}
        slow = sum((100 - rank) / 100 * requests.get(t, 0) for t, rank in ranks.items())
        windows.append({
            "seconds": seconds, "label": _label(seconds), "requests": total, "errors": bad,
            "availability": round(100 * (1 - bad / total), 4) if total else None,
            "burn": _burn(bad, total, budget),
            "latency_burn": _burn(slow, total, budget) if ranks else None,
        })  # fmt: skip
    by_seconds = {w["seconds"]: w for w in windows}
    rules = []
    for name, long, short, factor in RULES:
        pair = (by_seconds[long], by_seconds[short])
        rules.append({
            "name": name, "windows": f"{_label(long)} and {_label(short)}", "factor": factor,
            "firing": all(w["burn"] is not None and w["burn"] > factor for w in pair),
            "latency_firing": all(w["latency_burn"] is not None and w["latency_burn"] > factor for w in pair),
        })  # fmt: skip
    return {"objective": settings.SLO_AVAILABILITY, "latency_ms": settings.SLO_LATENCY_MS, "windows": windows,
            "rules": rules, "latency_error": latency_error, "unconfigured": ""}  # fmt: skip


def _label(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"
