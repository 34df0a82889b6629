"""Server-side SVG charts for /ops/: time axis, unit axis, threshold line, current values; no JavaScript.

What changed (RDS events, ECS deployments) is drawn on every chart as a vertical marker whose <title> is
its tooltip; each panel links to its metrics in the CloudWatch console (and, for 5XX and latency, to a Logs
Insights query of the app's requests in the same window).

Geometry is computed here and drawn by templates/ops/dashboard.html with classes only (nothing inline for
a Content-Security-Policy to refuse); each chart reads without hovering.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.utils.html import escape
from django.utils.safestring import mark_safe

from ops import links
from ops.panels import Panel, Section
from ops.units import convert, fmt


def _nice_ceiling(x: float) -> float:
    if x <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(x))
    return next(m * exp for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * exp >= x * 0.999)


W, H, LEFT, RIGHT, TOP, BOTTOM = 420, 150, 58, 10, 10, 22
TIME_STEPS = (300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)


def chart(panel: Panel, doc: dict) -> dict:
    """Return a panel's lines with current values, and its SVG (time axis, unit axis, threshold line)."""
    start, end, period = doc.get("start", 0), doc.get("end", 1), doc.get("period", 60)
    data = doc.get("series", {})
    lines, peak = [], panel.threshold or 0
    for i, s in enumerate(panel.series):
        raw = data.get(s.key) or {"t": [], "v": [], "error": "" if data else "no data yet"}
        values = [convert(v, panel.convert, period) for v in raw["v"]]
        current = values[-1] if values else None
        breach = (
            current is not None
            and panel.threshold is not None
            and (current < panel.threshold if panel.below else current > panel.threshold)
        )
        lines.append(
            {
                "key": s.key,
                "label": s.label,
                "cls": f"s{i % 8}",
                "t": raw["t"],
                "v": values,
                "error": raw["error"],
                "current": current,
                "current_text": fmt(current, panel.unit),
                "latest": raw["t"][-1] if raw["t"] else None,
                "breach": breach,
            }
        )
        peak = max([peak, *values])
    top = _nice_ceiling(peak * 1.05)
    errors = sorted({line["error"] for line in lines if line["error"]})
    empty = not any(line["v"] for line in lines)
    events = doc.get("events") or []
    svg = _svg(panel, lines, start, end, period, top, empty, events) if not (panel.unconfigured or errors) else ""
    configured = bool(panel.series) and not panel.unconfigured and bool(data)
    return {
        "key": panel.key, "title": panel.title, "unit": panel.unit, "note": panel.note,
        "unconfigured": panel.unconfigured, "lines": lines, "errors": errors, "empty": empty,
        "breach": any(line["breach"] for line in lines), "threshold": panel.threshold,
        "threshold_text": panel.threshold_label or fmt(panel.threshold, panel.unit), "svg": svg,
        "console": links.metrics_url(panel.series, start, end, period) if configured else "",
        "insights": links.insights_for(panel.key, start, end) if configured else "",
    }  # fmt: skip


def _svg(panel: Panel, lines: list[dict], start: int, end: int, period: int, top: float, empty: bool,
         events: list[dict]) -> str:  # fmt: skip
    """Draw the chart as one SVG string (much faster than a template loop over every point and tick)."""
    plot_w, plot_h, right, bottom = W - LEFT - RIGHT, H - TOP - BOTTOM, W - RIGHT, H - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + (t - start) / max(end - start, 1) * plot_w, 1)

    def y(v: float) -> float:
        return round(TOP + plot_h - max(min(v / top, 1.05), 0) * plot_h, 1)

    title = escape(f"{panel.title} over {_duration(end - start)}, in {panel.unit}")
    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{title}">']
    for f in (0, 0.5, 1):
        ty = y(top * f)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{right}" y1="{ty}" y2="{ty}"/>'
                   f'<text class="ylab" x="{LEFT - 5}" y="{ty}">{escape(fmt(top * f, panel.unit))}</text>')  # fmt: skip
    step = next((s for s in TIME_STEPS if (end - start) / s <= 6), TIME_STEPS[-1])
    label = "%a %d" if step >= 86400 else "%H:%M"
    for t in range(math.ceil(start / step) * step, end + 1, step):
        out.append(f'<line class="tick" x1="{x(t)}" x2="{x(t)}" y1="{TOP}" y2="{bottom}"/><text class="xlab" '
                   f'x="{x(t)}" y="{H - 6}">{datetime.fromtimestamp(t, UTC).strftime(label)}</text>')  # fmt: skip
    if panel.threshold is not None:
        ty = y(panel.threshold)
        text_y = ty + 12 if ty < TOP + 14 else ty - 4  # at the left: the newest points are on the right
        text = escape(panel.threshold_label or fmt(panel.threshold, panel.unit))
        out.append(f'<line class="threshold" x1="{LEFT}" x2="{right}" y1="{ty}" y2="{ty}"/>'
                   f'<text class="thlab" x="{LEFT + 4}" y="{text_y}">{text}</text>')  # fmt: skip
    for line in lines:
        for seg in _segments(line["t"], line["v"], period):
            if len(seg) > 1:
                points = " L".join(f"{x(t)},{y(v)}" for t, v in seg)
                out.append(f'<path class="line {line["cls"]}" d="M{points}"/>')
            else:
                out.append(f'<circle class="dot {line["cls"]}" cx="{x(seg[0][0])}" cy="{y(seg[0][1])}" r="2.5"/>')
    for event in events:
        if start <= event["t"] <= end:
            when = datetime.fromtimestamp(event["t"], UTC).strftime("%H:%M UTC")
            tip = escape(f"{when} {event['what']}: {event['title']}")
            out.append(f'<g class="marker marker-{event["source"]}"><title>{tip}</title><line x1="{x(event["t"])}" '
                       f'x2="{x(event["t"])}" y1="{TOP}" y2="{bottom}"/></g>')  # fmt: skip
    if empty:
        out.append(
            f'<text class="nodata" x="{(LEFT + right) // 2}" y="{(TOP + bottom) // 2}">no data in this range</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - built here; every text in it is escaped


def _duration(seconds: int) -> str:
    return f"{seconds // 86400} days" if seconds >= 2 * 86400 else f"{seconds // 3600} hours"


def _segments(ts: list[int], vs: list[float], period: int) -> list[list[tuple[int, float]]]:
    """Split a line where points are missing: gaps stay gaps (a lone point becomes a dot)."""
    segments: list[list[tuple[int, float]]] = []
    for t, v in zip(ts, vs, strict=True):
        if segments and t - segments[-1][-1][0] <= 2 * period:
            segments[-1].append((t, v))
        else:
            segments.append([(t, v)])
    return segments


def section_view(section: Section, doc: dict) -> dict:
    """Return a section with its panels drawn."""
    fields = {k: getattr(section, k) for k in ("key", "title", "unconfigured", "note")}
    return {**fields, "panels": [chart(p, doc) for p in section.panels]}
