"""Bar charts as inline SVG: the geometry is computed here, the markup is in templates/bars.html (autoescaped).

No script and no front-end build: a chart is a few rectangles with their labels, readable without CSS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ROW_HEIGHT: Final = 22
LABEL_WIDTH: Final = 150
BAR_WIDTH: Final = 260
MAX_ROWS: Final = 12


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int  # pixels, 0..BAR_WIDTH
    blocked: int = 0
    blocked_width: int = 0


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    height: int
    label_width: int = LABEL_WIDTH
    bar_width: int = BAR_WIDTH


def bar_chart(totals: Mapping[str, int], blocked: Mapping[str, int] | None = None) -> Chart:
    """Bars for the largest `MAX_ROWS` of `totals`, each with its blocked part drawn over it."""
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[:MAX_ROWS]
    top = max((v for _, v in rows), default=0) or 1
    blocked = blocked or {}
    bars = tuple(Bar(label, value, i * ROW_HEIGHT, round(BAR_WIDTH * value / top),
                     blocked.get(label, 0), round(BAR_WIDTH * min(blocked.get(label, 0), value) / top))
                 for i, (label, value) in enumerate(rows))
    return Chart(bars, max(len(bars), 1) * ROW_HEIGHT)
