"""Build a vectorised transform from one named system to another.

A transform is a chain of steps, each (x, y) arrays -> (x, y) arrays:
- PROJ conversions inside one datum (projection changes: exact), transformers cached, built with
  allow_ballpark=False and always_xy=True, run on all cores for large arrays;
- the web-map obfuscations (geo.crs.webmaps: exact inverses);
- a fitted parameter file, the only way across from an old datum (Beijing 1954, Xian 1980, local).
CGCS2000 and WGS84 are taken as one datum (they agree to centimetres at epoch 2000; PROJ has only
a ballpark between them): the step is an explicit, named identity.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geo.crs import webmaps
from geo.crs.models import ParamsError, apply_params
from geo.crs.systems import CrsError, CrsSystem, check_range, get_system

XY = tuple[np.ndarray, np.ndarray]
StepFn = Callable[[np.ndarray, np.ndarray], XY]


class DatumShiftRefused(CrsError):
    pass


_DATUM_NAMES = {"bj54": "Beijing 1954", "xian80": "Xian 1980", "local": "the local system",
                "cgcs2000": "CGCS2000", "wgs84": "WGS84"}


def _group(s: CrsSystem) -> str:
    return "modern" if s.modern else s.datum


# --- PROJ --------------------------------------------------------------------------------------

_local = threading.local()
_CHUNK = 250_000  # below this, one thread: the pool costs more than it saves
_POOL: ThreadPoolExecutor | None = None


def _transformer(a: int, b: int) -> Any:
    """One Transformer per (a, b) per thread: PROJ objects are not shared between threads."""
    from pyproj import Transformer
    from pyproj.exceptions import ProjError

    cache = _local.__dict__.setdefault("cache", {})
    key = (a, b)
    if key not in cache:
        try:
            cache[key] = Transformer.from_crs(a, b, always_xy=True, allow_ballpark=False)
        except ProjError:
            raise DatumShiftRefused(f"PROJ has no exact operation EPSG:{a} -> EPSG:{b} (ballpark refused)") from None
    return cache[key]


def proj_transform(a: int, b: int, x, y) -> XY:
    """EPSG a -> EPSG b, x = easting/longitude. Large arrays are split over the cores (pyproj
    releases the GIL inside PROJ). Points PROJ cannot convert come back as inf and are refused."""
    global _POOL
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = x.size
    workers = min(os.cpu_count() or 1, max(1, n // _CHUNK))
    if workers == 1:
        ox, oy = _transformer(a, b).transform(x, y, errcheck=False)
        ox, oy = np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)
    else:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="proj")
        ox, oy = np.empty_like(x), np.empty_like(y)
        bounds = np.linspace(0, n, workers + 1).astype(int)

        def run(i: int) -> None:
            s = slice(bounds[i], bounds[i + 1])
            ox[s], oy[s] = _transformer(a, b).transform(x[s], y[s], errcheck=False)

        list(_POOL.map(run, range(workers)))
    bad = ~np.isfinite(ox) & np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise CrsError(f"{int(bad.sum())} point(s) cannot be converted EPSG:{a} -> EPSG:{b}; first: {x.flat[i]} {y.flat[i]}")
    return ox, oy


# --- the chain --------------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    fn: StepFn


@dataclass
class Transform:
    source: CrsSystem
    target: CrsSystem
    steps: list[Step] = field(default_factory=list)
    params: dict[str, Any] | None = None

    def __call__(self, x, y) -> XY:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            raise CrsError(f"x and y differ in shape: {x.shape} != {y.shape}")
        check_range(self.source, x, y)
        for step in self.steps:
            x, y = step.fn(x, y)
        return x, y

    def describe(self) -> str:
        return " -> ".join(s.name for s in self.steps) or "identity"


def _proj_step(a: int, b: int) -> Step:
    return Step(f"PROJ EPSG:{a}->EPSG:{b}", lambda x, y: proj_transform(a, b, x, y))


def _same_datum(a: CrsSystem, b: CrsSystem) -> list[Step]:
    """Steps between two systems of one datum group (no parameters needed)."""
    if a.alias == b.alias:
        return []
    pair = (a.alias, b.alias)
    if pair == ("gcj02", "bd09"):
        return [Step("GCJ-02->BD-09", webmaps.gcj02_to_bd09)]
    if pair == ("bd09", "gcj02"):
        return [Step("BD-09->GCJ-02 (exact inverse)", webmaps.bd09_to_gcj02)]
    if a.kind == "webmap":
        inv = webmaps.gcj02_to_wgs84 if a.alias == "gcj02" else webmaps.bd09_to_wgs84
        return [Step(f"{a.alias}->WGS84 (exact inverse)", inv), *_same_datum(get_system("wgs84"), b)]
    if b.kind == "webmap":
        fwd = webmaps.wgs84_to_gcj02 if b.alias == "gcj02" else webmaps.wgs84_to_bd09
        return [*_same_datum(a, get_system("wgs84")), Step(f"WGS84->{b.alias}", fwd)]
    if a.kind == "local" or b.kind == "local":
        raise DatumShiftRefused(f"{a.alias} -> {b.alias}: the local system is reached only through a parameter file")
    if a.datum != b.datum:  # CGCS2000 <-> WGS84: explicit identity between the geographic systems
        ga, gb = get_system(a.geographic), get_system(b.geographic)
        ident = Step("CGCS2000=WGS84 (identity, cm-level)", lambda x, y: (x, y))
        return [*_same_datum(a, ga), ident, *_same_datum(gb, b)]
    # Web-map and local systems were handled above: both are EPSG systems here.
    assert a.epsg is not None and b.epsg is not None, (a.alias, b.alias)
    return [_proj_step(a.epsg, b.epsg)]


def _params_step(doc: dict[str, Any], inverse: bool) -> Step:
    arrow = f"{doc['target']}->{doc['source']}" if inverse else f"{doc['source']}->{doc['target']}"
    return Step(f"{doc['model']} {arrow}{' (inverse)' if inverse else ''}",
                lambda x, y: apply_params(doc, x, y, inverse=inverse))


def refusal(a: CrsSystem, b: CrsSystem) -> DatumShiftRefused:
    return DatumShiftRefused(
        f"{a.alias} -> {b.alias} is a datum shift ({_DATUM_NAMES[a.datum]} -> {_DATUM_NAMES[b.datum]}) and PROJ has "
        "no real one for Beijing (its ballpark fallback would move the data by tens of metres without a word): "
        "give a parameter file with --params (fit one with `crs fit`)")


def build_transform(source: str | CrsSystem, target: str | CrsSystem, params: dict[str, Any] | None = None) -> Transform:
    a = source if isinstance(source, CrsSystem) else get_system(source)
    b = target if isinstance(target, CrsSystem) else get_system(target)
    if params is None:
        if _group(a) != _group(b) or "local" in (a.kind, b.kind) and a.alias != b.alias:
            raise refusal(a, b)
        return Transform(a, b, _same_datum(a, b))
    ps, pt = get_system(params["source"]), get_system(params["target"])
    if _group(a) == _group(ps) and _group(b) == _group(pt):
        steps = [*_same_datum(a, ps), _params_step(params, False), *_same_datum(pt, b)]
    elif _group(a) == _group(pt) and _group(b) == _group(ps):
        steps = [*_same_datum(a, pt), _params_step(params, True), *_same_datum(ps, b)]
    else:
        raise ParamsError(f"the parameter file converts {ps.alias} -> {pt.alias}, not {a.alias} -> {b.alias}")
    return Transform(a, b, steps, params)
