"""Convert vector files between systems, keeping layers, attributes and encodings.

Shapefile (its .cpg is honoured on read and written back with the same encoding, plus a .prj),
GeoPackage (every layer), GeoJSON, KML (LIBKML: folders are layers; KML holds longitude/latitude
only), and CSV with x/y columns (read as text so every other column comes back byte for byte).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geo.crs.systems import CrsError, CrsSystem

DRIVERS = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".kml": "LIBKML", ".csv": "CSV"}


class FileError(CrsError):
    pass


@dataclass
class Layer:
    name: str
    frame: Any  # GeoDataFrame, or DataFrame for CSV
    crs: str | None


@dataclass
class Dataset:
    path: Path
    driver: str
    layers: list[Layer]
    encoding: str | None = None  # Shapefile .cpg or CSV text encoding


def driver_for(path: Path) -> str:
    try:
        return DRIVERS[path.suffix.lower()]
    except KeyError:
        raise FileError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
                        f"use one of {', '.join(sorted(set(DRIVERS)))}") from None


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def read_dataset(path: str | Path, x_col: str = "x", y_col: str = "y", encoding: str | None = None) -> Dataset:
    import pyogrio

    path = Path(path)
    driver = driver_for(path)
    if not path.exists():
        raise FileError(f"{path} does not exist")
    if driver == "CSV":
        return _read_csv(path, x_col, y_col, encoding)
    enc = encoding
    if driver == "ESRI Shapefile":
        cpg = path.with_suffix(".cpg")
        if enc is None and cpg.exists():
            enc = cpg.read_text(errors="replace").strip() or None
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        layers = []
        for name in names:
            info = pyogrio.read_info(path, layer=name, encoding=encoding)
            frame = pyogrio.read_dataframe(path, layer=name, encoding=encoding)
            layers.append(Layer(name, frame, info["crs"]))
    except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
        raise FileError(f"cannot read {path.name}: {_one_line(e)}") from None
    return Dataset(path, driver, layers, enc)


def _read_csv(path: Path, x_col: str, y_col: str, encoding: str | None) -> Dataset:
    import pandas as pd

    # keep a byte-order mark only if the input had one (Excel writes it; other tools choke on it)
    enc = encoding or ("utf-8-sig" if path.read_bytes()[:3] == b"\xef\xbb\xbf" else "utf-8")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError) as e:
        raise FileError(f"cannot read {path.name} as CSV ({enc}): {_one_line(e)}") from None
    for c in (x_col, y_col):
        if c not in frame.columns:
            raise FileError(f"{path.name}: no column {c!r} (columns: {', '.join(frame.columns)}); use --x-col/--y-col")
    frame.attrs["xy"] = (x_col, y_col)
    return Dataset(path, "CSV", [Layer(path.stem, frame, None)], enc)


def check_source_crs(ds: Dataset, system: CrsSystem) -> None:
    """Refuse a file whose layers disagree with each other (mixed SRIDs) or with --from."""
    from pyproj import CRS

    epsgs: dict[str, int | None] = {}
    for layer in ds.layers:
        if layer.crs:
            epsgs[layer.name] = CRS.from_user_input(layer.crs).to_epsg(min_confidence=70)
    if len(set(epsgs.values())) > 1:
        detail = ", ".join(f"{k} EPSG:{v}" for k, v in epsgs.items())
        raise FileError(f"mixed SRIDs in {ds.path.name}: {detail}; convert the layers separately")
    if system.kind != "epsg" or not epsgs:
        return  # web-map and local coordinates are stored without (or with a wrong WGS84) label
    found = next(iter(epsgs.values()))
    if found != system.epsg and not (system.modern and found in (4326, 4490) and not system.projected):
        raise FileError(f"{ds.path.name} is labelled EPSG:{found} but --from is {system.label()}")


XYFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def transform_geometries(geoms: np.ndarray, fn: XYFn) -> np.ndarray:
    """All vertices in one vectorised call (one per 2D/3D group); Z is kept as it is."""
    import shapely

    def apply(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0], out[:, 1] = fn(coords[:, 0], coords[:, 1])
        return out

    return shapely.transform(np.asarray(geoms, dtype=object), apply, include_z=None)


def transform_dataset(ds: Dataset, fn: XYFn, progress: Any = None) -> Dataset:
    out = []
    for layer in ds.layers:
        frame = layer.frame.copy()
        if ds.driver == "CSV":
            xc, yc = layer.frame.attrs["xy"]
            try:
                x = frame[xc].astype(float).to_numpy()
                y = frame[yc].astype(float).to_numpy()
            except ValueError as e:
                raise FileError(f"{ds.path.name}: a coordinate is not a number ({_one_line(e)})") from None
            nx, ny = fn(x, y)
            frame[xc] = [f"{v:.9f}" if abs(v) <= 360 else f"{v:.4f}" for v in nx]
            frame[yc] = [f"{v:.9f}" if abs(v) <= 360 else f"{v:.4f}" for v in ny]
            frame.attrs["xy"] = (xc, yc)
        elif len(frame):
            frame.geometry.values[:] = transform_geometries(frame.geometry.values, fn)
            frame = frame.set_geometry(frame.geometry.name)
        out.append(Layer(layer.name, frame, None))
        if progress:
            progress.update(1)
    return Dataset(ds.path, ds.driver, out, ds.encoding)


def output_crs(system: CrsSystem, driver: str) -> str | None:
    if driver == "LIBKML":
        if system.projected:
            raise FileError(f"KML holds longitude/latitude only; {system.alias} is projected")
        # KML is WGS84 by definition: CGCS2000 is written as WGS84 (identical to centimetres);
        # web-map coordinates go out unlabelled (GDAL would otherwise try to reproject them).
        return "EPSG:4326" if system.kind == "epsg" else None
    return f"EPSG:{system.epsg}" if system.epsg else None


def write_dataset(ds: Dataset, path: str | Path, system: CrsSystem, overwrite: bool = False) -> None:
    import pyogrio

    path = Path(path)
    driver = driver_for(path)
    if path.exists():
        if not overwrite:
            raise FileError(f"{path} exists; pass --overwrite to replace it")
        for p in path.parent.glob(path.stem + ".*") if driver == "ESRI Shapefile" else [path]:
            p.unlink()
    if driver == "CSV":
        if ds.driver != "CSV":
            raise FileError("CSV output needs CSV input (x/y columns); use GeoPackage or GeoJSON for geometries")
        ds.layers[0].frame.to_csv(path, index=False, encoding=ds.encoding or "utf-8", quoting=csv.QUOTE_MINIMAL)
        return
    if ds.driver == "CSV":
        raise FileError("CSV input converts to CSV output only")
    if driver in ("ESRI Shapefile", "GeoJSON") and len(ds.layers) > 1:
        raise FileError(f"{path.name}: {driver} holds one layer and the input has {len(ds.layers)}; use .gpkg")
    crs = output_crs(system, driver)
    # the same encoding as the input for Shapefiles (written to .cpg); UTF-8 elsewhere
    encoding = ds.encoding if driver == "ESRI Shapefile" and ds.driver == "ESRI Shapefile" else None
    try:
        for i, layer in enumerate(ds.layers):
            frame = layer.frame.set_crs(crs, allow_override=True) if crs else layer.frame.set_crs(None, allow_override=True)
            kwargs: dict[str, Any] = {"driver": driver, "layer": layer.name if driver != "ESRI Shapefile" else None}
            if encoding:
                kwargs["encoding"] = encoding
            if driver == "LIBKML" and i:
                kwargs["append"] = True
            with warnings.catch_warnings():  # "no crs": intended for web-map and local coordinates
                warnings.simplefilter("ignore", UserWarning)
                pyogrio.write_dataframe(frame, path, **kwargs)
    except Exception as e:  # pyogrio/GDAL errors of several kinds
        raise FileError(f"cannot write {path.name}: {_one_line(e)}") from None
