"""`crs verify A B`: two datasets hold the same features, attributes and (within a tolerance)
geometries. Used to prove a conversion: convert, convert back, verify against the original.
`compare_keyed` does the same for a file against a table's rows (`crs verify A --table`): matched
by key, distances in metres (geo/verify_db.py reads the table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geo.crs.files import Dataset
from geo.crs.systems import CrsError

M_PER_DEG = 111_320.0  # metres per degree of latitude; longitude scaled by cos(latitude)


def _deviation_m(ca: np.ndarray, cb: np.ndarray, geographic: bool) -> np.ndarray:
    d = cb[:, :2] - ca[:, :2]
    if geographic:
        d = d * M_PER_DEG
        d[:, 0] *= np.cos(np.radians(ca[:, 1]))
    return np.hypot(d[:, 0], d[:, 1])


def compare_datasets(a: Dataset, b: Dataset, tol_m: float) -> tuple[list[str], float]:
    import shapely

    problems: list[str] = []
    worst = 0.0
    names_a, names_b = [x.name for x in a.layers], [x.name for x in b.layers]
    if len(names_a) != len(names_b):
        return [f"{len(names_a)} layer(s) against {len(names_b)}"], worst
    for la, lb in zip(a.layers, b.layers, strict=True):
        fa, fb = la.frame, lb.frame
        if len(fa) != len(fb):
            problems.append(f"layer {la.name}: {len(fa)} features against {len(fb)}")
            continue
        if a.driver == "CSV":
            xc, yc = fa.attrs["xy"]
            ca = fa[[xc, yc]].astype(float).to_numpy()
            cb = fb[[xc, yc]].astype(float).to_numpy()
            attrs_a, attrs_b = fa.drop(columns=[xc, yc]), fb.drop(columns=[xc, yc])
        else:
            ga, gb = fa.geometry.values, fb.geometry.values
            if list(shapely.get_num_coordinates(ga)) != list(shapely.get_num_coordinates(gb)):
                problems.append(f"layer {la.name}: vertex counts differ")
                continue
            ca, cb = shapely.get_coordinates(ga), shapely.get_coordinates(gb)
            attrs_a, attrs_b = fa.drop(columns=fa.geometry.name), fb.drop(columns=fb.geometry.name)
        if list(attrs_a.columns) != list(attrs_b.columns):
            problems.append(f"layer {la.name}: attribute columns differ")
        else:
            unequal = ~((attrs_a.values == attrs_b.values) | (attrs_a.isna().values & attrs_b.isna().values))
            if unequal.any():
                row, colno = map(int, np.argwhere(unequal)[0])
                problems.append(f"layer {la.name}: feature {row} attribute {attrs_a.columns[colno]} differs")
        if len(ca):
            geographic = bool(np.all(np.abs(ca[:, :2]) <= 360.0))
            dev = _deviation_m(ca, cb, geographic)
            i = int(np.argmax(dev))
            worst = max(worst, float(dev[i]))
            if dev[i] > tol_m:
                problems.append(f"layer {la.name}: vertex {i} is {dev[i]:.4f} m from its counterpart (> {tol_m} m)")
    return problems, worst


# --- `crs verify FILE --table ...`: features matched by key (the database side is geo/verify_db.py) ---

@dataclass
class KeyedResult:
    """A file's features against a table's rows, matched by key. `missing`: keys in the file only;
    `extra`: keys in the table only; `offsets`: (key, metres) of every matched pair, worst first."""

    source: str
    target: str
    metric: str
    tol_m: float
    n_file: int
    n_table: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    offsets: list[tuple[str, float]] = field(default_factory=list)
    null_mismatch: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def over(self) -> list[tuple[str, float]]:
        return [o for o in self.offsets if not o[1] <= self.tol_m]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.over or self.null_mismatch)

    @property
    def worst_m(self) -> float:
        return self.offsets[0][1] if self.offsets else 0.0

    def summary(self) -> str:
        matched = len(self.offsets) + len(self.null_mismatch)
        text = (f"{len(self.over)} of {matched} matched features off by more than {self.tol_m} m"
                + (f" (worst {self.offsets[0][0]}: {self.worst_m:.4f} m)" if self.offsets else "")
                + f"; {len(self.missing)} key(s) missing from the table, {len(self.extra)} extra in the table")
        if self.null_mismatch:
            text += f"; {len(self.null_mismatch)} with a geometry on one side only"
        return text

    def lines(self, worst: int = 10) -> list[str]:
        def keys(ks: list[str]) -> str:
            return "none" if not ks else ", ".join(ks[:20]) + (f" … ({len(ks)} in all)" if len(ks) > 20 else "")

        out = [f"{self.source} against {self.target}",
               f"  {self.n_file} features in the file, {self.n_table} rows in the table, "
               f"{len(self.offsets) + len(self.null_mismatch)} matched by key",
               f"  distance: {self.metric}",
               f"  tolerance {self.tol_m} m: {len(self.over)} over; worst offset {self.worst_m:.6f} m",
               f"  missing from the table (in the file only): {keys(self.missing)}",
               f"  extra in the table (not in the file): {keys(self.extra)}"]
        if self.null_mismatch:
            out.append(f"  geometry on one side only: {keys(self.null_mismatch)}")
        if self.offsets:
            out.append("  worst offsets: " + "; ".join(f"{k} {v:.6f} m" for k, v in self.offsets[:worst]))
        out += [f"  note: {n}" for n in self.notes]
        out.append(("ok: " if self.ok else "FAILED: ") + self.summary())
        return out


def metric_frame(srid: int, lon: float) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """How to measure metres for geometries of `srid`: projected systems as they are (grid metres);
    geographic ones in a transverse Mercator on the same ellipsoid whose central meridian is the
    data's longitude (to 0.5 degree), where the scale error is below 0.01% within 1 degree of it:
    5 micrometres on a 5 cm offset. Returns (coordinate function or None, description)."""
    from pyproj import CRS, Transformer
    from pyproj.crs import ProjectedCRS
    from pyproj.crs.coordinate_operation import TransverseMercatorConversion

    crs = CRS.from_epsg(srid)
    if crs.is_projected:
        units = {a.unit_name for a in crs.axis_info}
        if units != {"metre"}:
            raise CrsError(f"EPSG:{srid} is in {', '.join(sorted(units))}, not metres")
        return None, f"discrete Hausdorff (every vertex of each geometry to the other), grid metres of EPSG:{srid}"
    lon0 = round(lon * 2) / 2
    tm = ProjectedCRS(TransverseMercatorConversion(latitude_natural_origin=0.0, longitude_natural_origin=lon0, false_easting=500_000.0, false_northing=0.0, scale_factor_natural_origin=1.0), geodetic_crs=crs)
    t = Transformer.from_crs(crs, tm, always_xy=True, allow_ballpark=False)

    def fn(c: np.ndarray) -> np.ndarray:
        return np.column_stack(t.transform(c[:, 0], c[:, 1]))

    return fn, (f"discrete Hausdorff (every vertex of each geometry to the other), metres in a transverse Mercator "
                f"on the ellipsoid of EPSG:{srid}, central meridian {lon0:g}°E (scale error < 0.01% within 1°)")


def compare_keyed(file_geoms: dict[str, Any], table_geoms: dict[str, Any], srid: int, tol_m: float,
                  source: str, target: str) -> KeyedResult:
    """Shapely geometries (or None) by key, both in EPSG:`srid`."""
    import shapely

    common = sorted(set(file_geoms) & set(table_geoms))
    r = KeyedResult(source, target, "", tol_m, len(file_geoms), len(table_geoms),
                    missing=sorted(set(file_geoms) - set(table_geoms)), extra=sorted(set(table_geoms) - set(file_geoms)))
    a = np.array([file_geoms[k] for k in common] + [None], dtype=object)[:-1]  # (the None keeps a 1-D object array)
    b = np.array([table_geoms[k] for k in common] + [None], dtype=object)[:-1]
    absent_a = shapely.is_missing(a) | shapely.is_empty(a)
    absent_b = shapely.is_missing(b) | shapely.is_empty(b)
    r.null_mismatch = [k for k, x, y in zip(common, absent_a, absent_b, strict=True) if x != y]
    both = ~absent_a & ~absent_b
    keys = [k for k, ok in zip(common, both, strict=True) if ok]
    a, b = a[both], b[both]
    coords = shapely.get_coordinates(b if len(b) else np.array(list(table_geoms.values()), dtype=object))
    fn, r.metric = metric_frame(srid, float(np.median(coords[:, 0])) if len(coords) else 0.0)
    if fn is not None and len(keys):
        a, b = shapely.transform(a, fn), shapely.transform(b, fn)
    dist = shapely.hausdorff_distance(a, b) if len(keys) else np.zeros(0)
    r.offsets = sorted(zip(keys, map(float, dist), strict=True), key=lambda kv: (-kv[1], kv[0]))
    r.offsets += [(k, 0.0) for k, x, y in zip(common, absent_a, absent_b, strict=True) if x and y]
    if len(keys) and (n := int(np.sum(shapely.get_type_id(a) != shapely.get_type_id(b)))):
        r.notes.append(f"{n} matched feature(s) differ in geometry type (e.g. Polygon and MultiPolygon); compared by shape")
    return r
