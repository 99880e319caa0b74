"""Convert vector files between systems, keeping layers, attributes and encodings.

Shapefile (its .cpg is honoured on read and written back with the same encoding, plus a .prj),
GeoPackage (every layer), GeoJSON, KML (LIBKML: folders are layers; KML holds longitude/latitude
only), and CSV with x/y columns (read as text so every other column comes back byte for byte).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geo.crs.sources import SourceInfo, check_csv, check_shapefile
from geo.crs.systems import CrsError, CrsSystem, system_for_srid

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
    notes: list[str] = field(default_factory=list)  # said to the user (e.g. an encoding detected)


def driver_for(path: Path) -> str:
    try:
        return DRIVERS[path.suffix.lower()]
    except KeyError:
        raise FileError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
                        f"use one of {', '.join(sorted(set(DRIVERS)))}") from None


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def read_dataset(path: str | Path, x_col: str = "x", y_col: str = "y", encoding: str | None = None,
                 geometry_only: bool = False) -> Dataset:
    """The whole file in memory (for `verify`; `crs file` streams through geo.crs.stream). The
    checks of geo.crs.sources run first: a damaged or misread input is refused, not converted."""
    import pyogrio

    path = Path(path)
    driver = driver_for(path)
    if not path.exists():
        raise FileError(f"{path} does not exist")
    info = inspect_source(path, driver, encoding, geometry_only)
    if driver == "CSV":
        ds = _read_csv(path, x_col, y_col, info.encoding)
        ds.notes = info.notes
        return ds
    try:
        layers = []
        for name in layer_names(path):
            meta = pyogrio.read_info(path, layer=name, encoding=info.encoding)
            frame = pyogrio.read_dataframe(path, layer=name, encoding=info.encoding)
            layers.append(Layer(name, frame, meta["crs"]))
    except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
        raise FileError(f"cannot read {path.name}: {_one_line(e)}") from None
    return Dataset(path, driver, layers, info.encoding if driver == "ESRI Shapefile" else None, info.notes)


def inspect_source(path: Path, driver: str, encoding: str | None, geometry_only: bool = False) -> SourceInfo:
    if driver == "ESRI Shapefile":
        return check_shapefile(path, encoding, geometry_only)
    if driver == "CSV":
        return check_csv(path, encoding)
    if encoding is not None:
        raise FileError(f"--encoding applies to Shapefiles and CSV; {driver} text is UTF-8 by definition")
    return SourceInfo()


def text_encoding(path: str | Path, encoding: str | None) -> str | None:
    """`--encoding` as it applies to this file: Shapefile and CSV only (`verify` may compare a GBK
    Shapefile with a GeoPackage, whose text is UTF-8 by definition)."""
    return encoding if driver_for(Path(path)) in ("ESRI Shapefile", "CSV") else None


def layer_names(path: Path) -> list[str]:
    import pyogrio

    try:
        return [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
        raise FileError(f"cannot read {path.name}: {_one_line(e)}") from None


def _read_csv(path: Path, x_col: str, y_col: str, encoding: str | None) -> Dataset:
    import pandas as pd

    enc = encoding or "utf-8"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError) as e:
        raise FileError(f"cannot read {path.name} as CSV ({enc}): {_one_line(e)}") from None
    check_columns(path, frame.columns, x_col, y_col)
    frame.attrs["xy"] = (x_col, y_col)
    return Dataset(path, "CSV", [Layer(path.stem, frame, None)], enc)


def check_columns(path: Path, columns, x_col: str, y_col: str) -> None:  # type: ignore[no-untyped-def]
    for c in (x_col, y_col):
        if c not in columns:
            raise FileError(f"{path.name}: no column {c!r} (columns: {', '.join(columns)}); use --x-col/--y-col")


def check_source_crs(ds: Dataset, system: CrsSystem) -> None:
    check_labels(ds.path.name, {layer.name: layer.crs for layer in ds.layers}, system)


def check_labels(file_name: str, labels: dict[str, str | None], system: CrsSystem) -> None:
    """Refuse a file whose layers disagree with each other (mixed SRIDs) or whose label (.prj,
    GeoPackage SRS) contradicts --from. Web-map coordinates are stored unlabelled or labelled as
    WGS84 / CGCS2000 longitude/latitude; a projected label under --from gcj02 means the numbers
    are metres, not degrees. The local system is projected: a longitude/latitude label contradicts it."""
    from pyproj import CRS

    epsgs: dict[str, int | None] = {}
    crss = {}
    for name, label in labels.items():
        if label:
            crss[name] = CRS.from_user_input(label)
            epsgs[name] = crss[name].to_epsg(min_confidence=70)
    if len(set(epsgs.values())) > 1:
        detail = ", ".join(f"{k} EPSG:{v}" for k, v in epsgs.items())
        raise FileError(f"mixed SRIDs in {file_name}: {detail}; convert the layers separately")
    if not epsgs:
        return
    found = next(iter(epsgs.values()))
    crs = next(iter(crss.values()))
    if system.kind == "epsg":
        if found == system.epsg or (system.modern and found in (4326, 4490) and not system.projected):
            return
    elif system.kind == "webmap":
        if found in (4326, 4490):
            return
    elif not crs.is_geographic:  # local: any projected label (often a stale one) is tolerated
        return
    what = f"EPSG:{found}" if found else repr(crs.name)
    try:
        alias = system_for_srid(found).alias if found else None
    except CrsError:
        alias = None
    kind = "projected" if crs.is_projected else "longitude/latitude"
    fix = f"use --from {alias}" if alias else "check --from"
    raise FileError(f"{file_name} is labelled {what} ({kind}) but --from is {system.label()}; {fix} "
                    "(or fix the file's .prj if the label is wrong)")


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
