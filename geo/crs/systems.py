"""The registry of named coordinate systems the migration tool knows.

A system is an EPSG CRS, a web-map system (GCJ-02, BD-09: obfuscations of WGS84, not PROJ CRSs),
or the local system whose only definition is a fitted parameter file. The datum family decides
what may be converted without parameters: inside one family it is a projection change (exact);
between families it is a datum shift, which PROJ cannot do for Beijing 1954 or Xian 1980 without
falling back to a silent "ballpark" null shift, so we demand a parameter file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


class CrsError(Exception):
    """Bad input or an unsafe request. The message is one line, fit for a command's stderr."""


class UnknownSystem(CrsError):
    pass


@dataclass(frozen=True)
class CrsSystem:
    alias: str
    epsg: int | None
    kind: str  # 'epsg' | 'webmap' | 'local'
    datum: str  # 'cgcs2000' | 'wgs84' | 'bj54' | 'xian80' | 'local'
    projected: bool
    name: str
    axis_note: str = ""
    # The geographic system of the same datum: where a projection is undone (None: not a PROJ CRS).
    geographic: str | None = None

    @property
    def is_epsg(self) -> bool:
        return self.epsg is not None

    @property
    def modern(self) -> bool:
        """CGCS2000 and WGS84 agree to centimetres at epoch 2000; the platform treats them as one
        datum (GPS fixes are taken as CGCS2000), and so do the web maps, which obfuscate WGS84."""
        return self.datum in {"cgcs2000", "wgs84"}

    def label(self) -> str:
        return f"{self.alias} (EPSG:{self.epsg})" if self.epsg else f"{self.alias} ({self.kind})"


_GK_AXES = "EPSG axis order is northing, easting; we always use x=easting, y=northing"
_GEO_AXES = "EPSG axis order is latitude, longitude; we always use x=longitude, y=latitude"

SYSTEMS: dict[str, CrsSystem] = {
    s.alias: s
    for s in [
        CrsSystem("cgcs2000", 4490, "epsg", "cgcs2000", False, "China Geodetic Coordinate System 2000",
                  _GEO_AXES, "cgcs2000"),
        CrsSystem("cgcs2000-gk39", 4527, "epsg", "cgcs2000", True,
                  "CGCS2000 / 3-degree Gauss-Kruger zone 39 (easting with zone prefix 39)", _GK_AXES, "cgcs2000"),
        CrsSystem("cgcs2000-gk117", 4548, "epsg", "cgcs2000", True,
                  "CGCS2000 / 3-degree Gauss-Kruger CM 117E (no zone prefix)", _GK_AXES, "cgcs2000"),
        CrsSystem("bj54", 4214, "epsg", "bj54", False, "Beijing 1954 (Krassowsky 1940)", _GEO_AXES, "bj54"),
        CrsSystem("bj54-gk39", 2415, "epsg", "bj54", True, "Beijing 1954 / 3-degree Gauss-Kruger zone 39",
                  _GK_AXES, "bj54"),
        CrsSystem("bj54-gk117", 2436, "epsg", "bj54", True, "Beijing 1954 / 3-degree Gauss-Kruger CM 117E",
                  _GK_AXES, "bj54"),
        CrsSystem("xian80", 4610, "epsg", "xian80", False, "Xian 1980 (IAG 1975)", _GEO_AXES, "xian80"),
        CrsSystem("xian80-gk39", 2363, "epsg", "xian80", True, "Xian 1980 / 3-degree Gauss-Kruger zone 39",
                  _GK_AXES, "xian80"),
        CrsSystem("xian80-gk117", 2384, "epsg", "xian80", True, "Xian 1980 / 3-degree Gauss-Kruger CM 117E",
                  _GK_AXES, "xian80"),
        CrsSystem("wgs84", 4326, "epsg", "wgs84", False, "WGS 84 (GPS)", _GEO_AXES, "wgs84"),
        CrsSystem("webmerc", 3857, "epsg", "wgs84", True, "WGS 84 / Pseudo-Mercator (web tiles)", "", "wgs84"),
        CrsSystem("gcj02", None, "webmap", "wgs84", False,
                  "GCJ-02 (Amap, Tencent): WGS84 longitude/latitude with the public obfuscation offset"),
        CrsSystem("bd09", None, "webmap", "wgs84", False, "BD-09 (Baidu): GCJ-02 with a further offset"),
        CrsSystem("local", None, "local", "local", True,
                  "Beijing local system: defined only by a fitted parameter file (--params)"),
    ]
}

_ALIASES = {"epsg:" + str(s.epsg): s.alias for s in SYSTEMS.values() if s.epsg} | {
    str(s.epsg): s.alias for s in SYSTEMS.values() if s.epsg
} | {"gcj-02": "gcj02", "bd-09": "bd09", "mercator": "webmerc"}


@lru_cache(maxsize=64)
def get_system(name: str) -> CrsSystem:
    """Look a system up by alias, 'EPSG:n' or n. Unknown names are refused, listing the known ones."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return SYSTEMS[key]
    except KeyError:
        raise UnknownSystem(f"unknown coordinate system {name!r}; known: {', '.join(SYSTEMS)}") from None


def system_for_srid(srid: int) -> CrsSystem:
    for s in SYSTEMS.values():
        if s.epsg == srid:
            return s
    raise UnknownSystem(f"SRID {srid} is not a system the migration tool knows; known: {', '.join(SYSTEMS)}")


def ellipsoid_proj_args(system: CrsSystem) -> str:
    """'+a=... +rf=...' of the system's ellipsoid, read from PROJ's database (exact, no names that
    differ between PROJ versions, e.g. Xian 1980's IAG 1975)."""
    from pyproj import CRS

    if system.epsg is None:
        raise CrsError(f"{system.alias} has no ellipsoid")
    ell = CRS.from_epsg(system.epsg).ellipsoid
    if ell is None:
        raise CrsError(f"{system.alias} has no ellipsoid")
    return f"+a={ell.semi_major_metre!r} +rf={ell.inverse_flattening!r}"


class OutsideSystem(CrsError):
    pass


@lru_cache(maxsize=64)
def valid_bounds(system: CrsSystem) -> tuple[float, float, float, float] | None:
    """The box (in the system's own x, y) coordinates of this system can plausibly have: EPSG's
    area of use widened by 1.5 degrees (Beijing's west edge lies beyond zone 39's strip), or for a
    projected system that box projected; for GCJ-02 / BD-09 the box the obfuscation is defined in.
    None for the local system, which has no definition but its parameter file (whose area rules)."""
    if system.kind == "webmap":
        from geo.crs.webmaps import CHINA_LAT, CHINA_LON

        return CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1]
    if system.epsg is None:
        return None
    import numpy as np
    from pyproj import CRS, Transformer

    area = CRS.from_epsg(system.epsg).area_of_use
    w, s, e, n = (area.west, area.south, area.east, area.north) if area else (-180.0, -90.0, 180.0, 90.0)
    w, s, e, n = max(w - 1.5, -180.0), max(s - 1.5, -90.0), min(e + 1.5, 180.0), min(n + 1.5, 90.0)
    if not system.projected:
        return w, s, e, n
    geo = get_system(system.geographic or "wgs84")
    t = np.linspace(0.0, 1.0, 41)
    lon = np.concatenate([w + t * (e - w), np.full(41, e), w + t * (e - w), np.full(41, w)])
    lat = np.concatenate([np.full(41, s), s + t * (n - s), np.full(41, n), s + t * (n - s)])
    x, y = Transformer.from_crs(geo.epsg, system.epsg, always_xy=True).transform(lon, lat)
    ok = np.isfinite(x) & np.isfinite(y)
    return float(x[ok].min()), float(y[ok].min()), float(x[ok].max()), float(y[ok].max())


def check_range(system: CrsSystem, x, y) -> None:  # type: ignore[no-untyped-def]
    """Refuse coordinates that cannot be in `system` (e.g. Gauss-Kruger eastings of 39,366,165
    given as GCJ-02 degrees): converting them would write nonsense with a valid label."""
    import numpy as np

    box = valid_bounds(system)
    if box is None or not np.size(x):
        return
    x0, y0, x1, y1 = box
    out = (x < x0) | (x > x1) | (y < y0) | (y > y1)  # NaN compares false: empty points pass
    if n := int(np.count_nonzero(out)):
        i = int(np.argmax(out))
        raise OutsideSystem(
            f"{n} point(s) lie outside the range of {system.label()} (x {x0:.6g}..{x1:.6g}, y {y0:.6g}..{y1:.6g}); "
            f"first: {float(np.ravel(x)[i])!r} {float(np.ravel(y)[i])!r}: check --from (projected numbers given as degrees, "
            "swapped axes, another zone?)")
