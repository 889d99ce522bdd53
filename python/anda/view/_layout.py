"""Where the nodes of a neighbourhood go: a force-directed layout
(Fruchterman and Reingold, 1991), computed here so that the page and a
notebook draw the same picture as plain SVG, with no script.

Deterministic: the same graph always gets the same layout (the nodes start
on a circle in the order given, the focus in the middle, and the focus stays
there), so a screenshot or a test sees the same picture every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["layout"]

Point = tuple[float, float]


def layout(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    *,
    focus: str | None = None,
    width: float = 640.0,
    height: float = 360.0,
    margin: float = 48.0,
    iterations: int = 120,
) -> dict[str, Point]:
    """Positions in a ``width`` x ``height`` box for ``nodes`` joined by ``edges``.

    >>> spots = layout(["a", "b", "c"], [("a", "b"), ("a", "c")], focus="a")
    >>> spots["a"]
    (320.0, 180.0)
    >>> all(48 <= x <= 592 and 48 <= y <= 312 for x, y in spots.values())
    True
    """
    names = list(dict.fromkeys(nodes))
    if not names:
        return {}
    count = len(names)
    ideal = math.sqrt(4.0 / count)  # in a unit square: the spacing each node gets
    positions: dict[str, list[float]] = {}
    others = [name for name in names if name != focus]
    for index, name in enumerate(others):
        angle = 2 * math.pi * index / max(1, len(others)) + 0.3
        ring = 0.6 if index % 2 == 0 else 0.8  # two rings: labels overlap less
        positions[name] = [ring * math.cos(angle), ring * math.sin(angle)]
    if focus is not None and focus in names:
        positions[focus] = [0.0, 0.0]
    links = [(a, b) for a, b in edges if a in positions and b in positions and a != b]
    temperature = 0.2
    for _ in range(iterations):
        moves = {name: [0.0, 0.0] for name in names}
        for i, a in enumerate(names):  # every pair repels
            for b in names[i + 1 :]:
                dx = positions[a][0] - positions[b][0]
                dy = positions[a][1] - positions[b][1]
                distance = max(math.hypot(dx, dy), 1e-3)
                force = ideal * ideal / distance
                moves[a][0] += dx / distance * force
                moves[a][1] += dy / distance * force
                moves[b][0] -= dx / distance * force
                moves[b][1] -= dy / distance * force
        for a, b in links:  # each edge attracts its ends
            dx = positions[a][0] - positions[b][0]
            dy = positions[a][1] - positions[b][1]
            distance = max(math.hypot(dx, dy), 1e-3)
            force = distance * distance / ideal
            moves[a][0] -= dx / distance * force
            moves[a][1] -= dy / distance * force
            moves[b][0] += dx / distance * force
            moves[b][1] += dy / distance * force
        for name in names:
            if name == focus:
                continue
            dx, dy = moves[name]
            length = max(math.hypot(dx, dy), 1e-9)
            step = min(length, temperature)
            positions[name][0] += dx / length * step
            positions[name][1] += dy / length * step
        temperature *= 0.97
    return _fitted(positions, focus, width, height, margin)


def _fitted(
    positions: dict[str, list[float]],
    focus: str | None,
    width: float,
    height: float,
    margin: float,
) -> dict[str, Point]:
    """The positions scaled into the box, the focus (if any) at its centre."""
    cx, cy = positions.get(focus or "", (0.0, 0.0))
    reach_x = max((abs(x - cx) for x, _ in positions.values()), default=0.0) or 1.0
    reach_y = max((abs(y - cy) for _, y in positions.values()), default=0.0) or 1.0
    half_w, half_h = width / 2 - margin, height / 2 - margin
    return {
        name: (
            round(width / 2 + (x - cx) / reach_x * half_w, 1),
            round(height / 2 + (y - cy) / reach_y * half_h, 1),
        )
        for name, (x, y) in positions.items()
    }
