"""Plausible patrol movement for the simulator and the benchmarks: each unit walks (or drives) a
loop of waypoints inside its own street (or district), at a speed that suits it, and reports a
fix every few seconds. Pure functions; no I/O."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

METRES_PER_DEGREE_LAT = 111_320.0
SPEEDS = {"officer": (1.0, 1.6), "vehicle": (5.0, 12.0)}  # m/s: walking pace; urban traffic


@dataclass
class Patrol:
    device_id: str
    kind: str
    waypoints: list[tuple[float, float]]
    speed: float
    leg: int = 0
    progress: float = 0.0  # metres along the current leg
    position: tuple[float, float] = field(default=(0.0, 0.0))
    heading: float = 0.0

    def __post_init__(self) -> None:
        self.position = self.waypoints[0]

    def advance(self, seconds: float, rng: random.Random) -> None:
        """Move along the loop; corners are rounded off by simply turning at the waypoint."""
        remaining = seconds * self.speed * rng.uniform(0.8, 1.2)
        while remaining > 0:
            (x0, y0), (x1, y1) = self.waypoints[self.leg], self.waypoints[(self.leg + 1) % len(self.waypoints)]
            dx = (x1 - x0) * METRES_PER_DEGREE_LAT * math.cos(math.radians(y0))
            dy = (y1 - y0) * METRES_PER_DEGREE_LAT
            length = math.hypot(dx, dy) or 1.0
            step = min(remaining, length - self.progress)
            self.progress += step
            remaining -= step
            share = self.progress / length
            self.position = (x0 + (x1 - x0) * share, y0 + (y1 - y0) * share)
            self.heading = math.degrees(math.atan2(dx, dy)) % 360
            if self.progress >= length - 1e-6:
                self.leg, self.progress = (self.leg + 1) % len(self.waypoints), 0.0

    def fix(self, at_iso: str, rng: random.Random) -> dict[str, object]:
        # GPS noise of a few metres, as phones report it
        jitter = 4.0 / METRES_PER_DEGREE_LAT
        lon = self.position[0] + rng.gauss(0, jitter)
        lat = self.position[1] + rng.gauss(0, jitter)
        return {"device_id": self.device_id, "time": at_iso, "lon": round(lon, 7), "lat": round(lat, 7),
                "speed": round(self.speed, 2), "heading": round(self.heading, 1),
                "accuracy": round(rng.uniform(3, 15), 1), "battery": round(rng.uniform(20, 100), 0)}


def manhattan_loop(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Visit the points in angular order around their centre with right-angle corners, the way
    streets run in Beijing's grid."""
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    ordered = sorted(points, key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
    loop: list[tuple[float, float]] = []
    for (x0, y0), (x1, _y1) in zip(ordered, ordered[1:] + ordered[:1], strict=True):
        loop += [(x0, y0), (x1, y0)]
    return loop


def make_patrol(device_id: str, kind: str, points: list[tuple[float, float]], rng: random.Random) -> Patrol:
    low, high = SPEEDS[kind]
    patrol = Patrol(device_id, kind, manhattan_loop(points), rng.uniform(low, high))
    patrol.advance(rng.uniform(0, 600), rng)  # start somewhere along the loop
    return patrol
