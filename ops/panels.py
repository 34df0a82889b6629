"""What /ops/ draws: a section of panels, each a set of CloudWatch series with a unit and a threshold.

The data side (ops/dashboard.py) fills them; the drawing side (ops/charts.py) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.cloudwatch import Series


@dataclass
class Panel:
    key: str
    title: str
    unit: str  # percent, ms, seconds, bytes, bytes/s, /min, count, IOPS
    series: list[Series] = field(default_factory=list)
    convert: str = ""
    threshold: float | None = None  # in the displayed unit
    below: bool = False  # breached under the threshold (free storage, healthy targets)
    threshold_label: str = ""
    note: str = ""
    unconfigured: str = ""  # how to turn it on


@dataclass
class Section:
    key: str
    title: str
    panels: list[Panel] = field(default_factory=list)
    unconfigured: str = ""
    note: str = ""
