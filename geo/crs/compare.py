"""`crs verify A B`: two datasets hold the same features, attributes and (within a tolerance)
geometries. Used to prove a conversion: convert, convert back, verify against the original."""

from __future__ import annotations

import numpy as np

from geo.crs.files import Dataset

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
