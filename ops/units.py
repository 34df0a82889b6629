"""Display helpers for /ops/: unit conversion and formatting, shared by the data side and the charts."""

from __future__ import annotations


def convert(value: float, how: str, period: int) -> float:
    """Return a CloudWatch value in the displayed unit (ms from seconds, per minute or second from a sum)."""
    return (
        value * 1000
        if how == "ms"
        else value * 60 / period
        if how == "/min"
        else value / period
        if how == "/s"
        else value
    )


def fmt(value: float | None, unit: str) -> str:
    """Format a value with its unit for a person: 37.2 %, 1.5 GiB, 230 ms, 1.2k /min."""
    if value is None:
        return "—"
    if unit in {"bytes", "bytes/s"}:
        size, suffix = float(value), ("B", "KiB", "MiB", "GiB", "TiB")
        i = 0
        while abs(size) >= 1024 and i < len(suffix) - 1:
            size, i = size / 1024, i + 1
        return f"{size:.3g} {suffix[i]}{'/s' if unit == 'bytes/s' else ''}"
    number = f"{value / 1000:.3g}k" if abs(value) >= 10000 else f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return {"percent": f"{number} %", "ms": f"{number} ms", "seconds": f"{number} s", "count": number}.get(
        unit, f"{number} {unit}"
    )
