import hmac
from datetime import UTC, datetime
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from ops import charts, connections, dashboard
from ops.health import is_draining, run_checks, status, summary
from staff import access
from users import tombstones

OPS_PERMISSION = "ops.view_ops_dashboard"


@never_cache
def health(request):
    """Liveness for the load balancer: the process answers and is not draining. Touches nothing outside it."""
    if is_draining():
        return HttpResponse("draining\n", content_type="text/plain", status=503)
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
def ready(request):
    """Readiness for on-call and alarms: 503 when the primary is unreachable; detail for staff or the token."""
    if not _spelled_plainly(request):
        return HttpResponse("Not Found", content_type="text/plain", status=404)  # what the ALB's rule answers
    checks = run_checks()
    doc = summary(checks) if _may_see_detail(request) else {"status": status(checks)}
    if "checks" in doc:  # after a database restore, until `manage.py reapply_erasures` (users/tombstones.py)
        doc["erasure_ledger"] = tombstones.restore_check.peek()
    return JsonResponse(doc, status=503 if doc["status"] == "unavailable" else 200)


def _spelled_plainly(request) -> bool:
    """Say whether the request line spelled the path as /ready or /ready/, the paths the ALB hides.

    The listener rule matches the path as sent; the server decodes it, so /%72eady passed the ALB and was
    answered here as /ready. The raw request line is gunicorn's RAW_URI (nginx passes it on unchanged);
    a server without one (the test client) cannot be asked.
    """
    raw = request.META.get("RAW_URI")
    if raw is None:
        return True
    return urlsplit(raw).path in ("/ready", "/ready/")


def _may_see_detail(request) -> bool:
    """Say whether the caller holds READY_TOKEN (constant-time compare) or a staff session."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if settings.READY_TOKEN and scheme.lower() == "bearer":
        return hmac.compare_digest(token.strip().encode(), settings.READY_TOKEN.encode())
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False  # the usual anonymous probe: no session look-up at all
    # Answered before the session and auth middleware (ops.middleware): load the session the same way.
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES[settings.SESSION_COOKIE_NAME])
    try:
        user = get_user(request)
    except Exception:  # a database or cache failure: no detail, but never a 500 from the health check
        return False
    return access.is_verified_staff_session(request.session, user)


@never_cache
@access.staff_required
@permission_required(OPS_PERMISSION, raise_exception=True)
def ops_dashboard(request):
    """The on-call page: alarms, live health and connections, then CloudWatch charts for the range."""
    ctx = _context(_range(request))
    return render(request, "ops/dashboard.html", ctx)


@never_cache
@access.staff_required
@permission_required(OPS_PERMISSION, raise_exception=True)
def ops_data(request):
    """The same data as /ops/, for scripts."""
    ctx = _context(_range(request))
    return JsonResponse(_as_json(ctx), json_dumps_params={"indent": 1})


def _range(request) -> str:
    key = request.GET.get("range", dashboard.DEFAULT_RANGE)
    return key if key in dashboard.RANGES else dashboard.DEFAULT_RANGE


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _context(range_key: str) -> dict:
    probes = connections.start_probes()  # they take a few connections' time: draw the charts meanwhile
    live = connections.snapshot()
    doc = dashboard.load(range_key)
    primary = next((db for db in live["databases"] if db["alias"] == "default"), {})
    views = _drawn(range_key, doc, primary.get("max_connections"))
    alarms = [{**a, "since_dt": _when(a["since"])} for a in doc.get("alarms") or []]
    cw = {k: doc.get(k) for k in ("state", "error", "kind", "calls", "refresh_ms", "period", "queries", "rds_error",
                                  "source_errors")}  # fmt: skip
    cw |= {k: _when(doc.get(k)) for k in ("fetched_at", "stale_since", "start", "end")}
    ctx = {
        "range": range_key,
        "ranges": list(dashboard.RANGES),
        "now": datetime.now(UTC),
        "live": connections.add_readiness(live, probes),
        "cloudwatch": cw,
        "alarms": alarms,
        "firing": [a for a in alarms if a["state"] == "ALARM"],
        "sections": views,
        "refresh_seconds": settings.OPS_CACHE_SECONDS,
        "slo": doc.get("slo") or {},
        "changes": [{**e, "when": _when(e["t"])} for e in doc.get("events") or []],
        "targets": doc.get("targets"),
    }
    ctx["erasure_ledger"] = tombstones.restore_check.peek()
    ctx["verdict"] = _verdict(ctx)
    ctx["shown_sections"] = [s for s in views if not _unconfigured(s)]
    ctx["not_configured"] = [{"title": s["title"], "how": s["unconfigured"]} for s in views if _unconfigured(s)]
    if ctx["slo"].get("unconfigured"):
        ctx["not_configured"].insert(0, {"title": "Error budget", "how": ctx["slo"]["unconfigured"]})
    ctx["router_words"] = _router_words(ctx["live"].get("router"))
    return ctx


def _unconfigured(section: dict) -> bool:
    """Say whether a section has nothing to draw for want of configuration (folded into one line on the page)."""
    return bool(section["unconfigured"]) and all(p["unconfigured"] for p in section["panels"])


# The router's counters (project/db/counters.py, as text from ops/connections.py) as sentences an on-call
# engineer reads without the code.
ROUTER_WORDS = {
    "reads": "Reads served, per database",
    "fallbacks": "Reads sent to the primary because no replica was usable, per reason",
    "pins": "Reads kept on the primary because the replicas had not yet replayed that visitor's own write",
    "caught_up": "Reads that waited for a replica to replay the visitor's write, then used it",
    "marked_down": "Times a replica was marked unreachable, per replica",
    "retries": "Requests run again on the primary after a replica failed mid-request",
    "error": "The counters could not be read",
}
REASON_WORDS = {"behind_client": "behind the visitor's write", "lagging": "lagging", "down": "down",
                "unknown": "state unknown", "timeline": "on an old timeline"}  # fmt: skip


def _router_words(counters: dict | None) -> list[tuple[str, str]] | None:
    """Return the router's counters as (sentence, value) rows, in ROUTER_WORDS' order."""
    if counters is None:
        return None
    rows = []
    for kind, words in ROUTER_WORDS.items():
        if kind in counters:
            value = str(counters[kind])
            for code, said in REASON_WORDS.items():
                value = value.replace(f"{code} ", f"{said}: ")
            rows.append((words, value))
    return rows


_DRAWN: dict[tuple, list] = {}  # the last drawing per range, in this process: it changes once per fetch


def _drawn(range_key: str, doc: dict, max_connections: int | None) -> list[dict]:
    key = (doc.get("fetched_at"), doc.get("failed_at"), max_connections, dashboard.config_key())
    cached = _DRAWN.get(range_key)
    if cached is None or cached[0] != key:
        secs = dashboard.sections(doc.get("rds") or dashboard.listed_instances(), max_connections)
        cached = _DRAWN[range_key] = (key, [charts.section_view(s, doc) for s in secs])
    return cached[1]


def _verdict(ctx: dict) -> dict:
    """Return the one-line answer: ok, unknown, degraded, alarm or down, with the reasons and what is unknown."""
    live, reasons = ctx["live"], []
    if live["ready"]["status"] == "unknown":
        reasons.append("readiness probes timed out")
    for name, check in live["ready"]["checks"].items():
        if check["status"] not in {"up", "not configured"}:
            reasons.append(f"{name} {check['status']}{': ' + check['error'] if check['error'] else ''}")
    if ctx["firing"]:
        reasons.append(f"{len(ctx['firing'])} alarm{'s' * (len(ctx['firing']) > 1)} in ALARM")
    breaching = [f"{s['title']}: {p['title']}" for s in ctx["sections"] for p in s["panels"] if p["breach"]]
    reasons += [f"over threshold: {b}" for b in breaching]
    burning = [r for r in ctx["slo"].get("rules", []) if r["firing"] or r["latency_firing"]]
    reasons += [f"error budget: {r['name']} ({r['windows']} over {r['factor']:g}x)" for r in burning]
    bad_targets = [t for t in ctx["targets"] or [] if t["state"] not in {"healthy", "unused"}]
    reasons += [f"target {t['id']} {t['state']} ({t['reason'] or 'no reason given'})" for t in bad_targets]
    if ctx["cloudwatch"]["state"] not in {"fresh", "unconfigured"}:
        reasons.append(f"CloudWatch {ctx['cloudwatch']['kind'] or ctx['cloudwatch']['state']}")
    unknown = _unknown(ctx)
    level = (
        "down"
        if live["ready"]["status"] == "unavailable"
        else "alarm"
        if ctx["firing"] or breaching or burning
        else "degraded"
        if reasons
        else "unknown"
        if unknown
        else "ok"
    )
    return {"level": level, "reasons": reasons, "unknown": unknown}


ESSENTIAL = {"alb", "ec2", "ecs", "rds", "cache"}  # RDS Proxy is optional: no proxy is not an unknown


def _unknown(ctx: dict) -> list[str]:
    """Name every source the page could not check: never configured, not answered, or failed."""
    cw = ctx["cloudwatch"]
    if cw["state"] == "unconfigured":
        return ["CloudWatch alarms, charts, SLO, what changed and target health: not configured (set OPS_ALB, "
                "OPS_RDS_INSTANCES, ... and AWS credentials)"]  # fmt: skip
    out = []
    if not cw["fetched_at"]:
        out.append(f"CloudWatch alarms and charts: no answer yet ({cw['kind'] or cw['state']})")
    out += [f"{s['title']}: not configured" for s in ctx["sections"] if s["unconfigured"] and s["key"] in ESSENTIAL]
    if not settings.OPS_TARGET_GROUP:
        out.append("target health: not configured (set OPS_TARGET_GROUP)")
    out += [f"{source}: {error}" for source, error in (cw.get("source_errors") or {}).items()]
    if ctx["slo"].get("latency_error") and cw["fetched_at"]:
        out.append(f"latency SLO: {ctx['slo']['latency_error']}")
    return out


PANEL_FIELDS = ("key", "title", "unit", "threshold", "breach", "errors", "unconfigured", "console", "insights")


def _as_json(ctx: dict) -> dict:
    sections = [
        {
            **{k: s[k] for k in ("key", "title", "unconfigured", "note")},
            "panels": [
                {
                    **{k: p[k] for k in PANEL_FIELDS},
                    "series": [
                        {k: line[k] for k in ("key", "label", "current", "latest", "error", "t", "v")}
                        for line in p["lines"]
                    ],
                }
                for p in s["panels"]
            ],
        }
        for s in ctx["sections"]
    ]
    alarms = [{k: v for k, v in a.items() if k != "since_dt"} for a in ctx["alarms"]]
    return {
        "range": ctx["range"],
        "generated_at": ctx["now"],
        "verdict": ctx["verdict"],
        "cloudwatch": ctx["cloudwatch"],
        "alarms": alarms,
        "slo": ctx["slo"],
        "changes": [{k: v for k, v in e.items() if k != "when"} for e in ctx["changes"]],
        "targets": ctx["targets"],
        "sections": sections,
        "live": ctx["live"],
    }
