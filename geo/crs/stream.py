"""`crs file`: convert a file in chunks, so memory stays bounded whatever its size.

Each layer is read CHUNK features at a time (pyogrio skip_features/max_features; CSV with pandas'
chunksize), its vertices transformed, and appended to the output. The output is written into a
temporary directory beside the target and moved into place only when every chunk has succeeded:
a refusal half-way (a point outside the system's range or the parameters' area) leaves no partial
file, and --overwrite replaces the old output only then.

Geometry types: one chunk is written exactly as a whole frame would be. With several chunks a
Shapefile's polygons and lines are written as multi-part types (a Shapefile does not tell Polygon
from MultiPolygon, and a chunk that happened to hold only single parts must not fix the layer's
type for the rest).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geo.crs import gpkg_rtree
from geo.crs.files import (
    FileError,
    _one_line,
    check_columns,
    check_labels,
    driver_for,
    inspect_source,
    layer_names,
    output_crs,
    transform_geometries,
)
from geo.crs.transform import Transform

CHUNK = 100_000


@dataclass
class Converted:
    features: int = 0
    layers: int = 0
    notes: list[str] = field(default_factory=list)


def count_features(src: str | Path, encoding: str | None = None) -> int | None:
    """Features to convert, for the progress bar (None for CSV: counting would read it twice)."""
    import pyogrio

    path = Path(src)
    if driver_for(path) == "CSV":
        return None
    try:
        return sum(max(int(pyogrio.read_info(path, layer=n, encoding=encoding)["features"]), 0)
                   for n in layer_names(path))
    except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
        raise FileError(f"cannot read {path.name}: {_one_line(e)}") from None


def convert_file(src: str | Path, dst: str | Path, t: Transform, *, x_col: str = "x", y_col: str = "y",
                 encoding: str | None = None, geometry_only: bool = False, overwrite: bool = False,
                 progress: Any = None, chunk: int = CHUNK) -> Converted:
    src, dst = Path(src), Path(dst)
    in_driver, out_driver = driver_for(src), driver_for(dst)
    if not src.exists():
        raise FileError(f"{src} does not exist")
    if dst.exists() and not overwrite:
        raise FileError(f"{dst} exists; pass --overwrite to replace it")
    if not dst.parent.is_dir():
        raise FileError(f"cannot write {dst.name}: the directory {dst.parent} does not exist")
    if dst.resolve() == src.resolve():
        raise FileError(f"{dst.name} is the input itself; write to another file")
    if (in_driver == "CSV") != (out_driver == "CSV"):
        raise FileError("CSV input converts to CSV output only (x/y columns); use GeoPackage or GeoJSON for geometries")
    info = inspect_source(src, in_driver, encoding, geometry_only)
    result = Converted(notes=list(info.notes))
    if progress is not None:  # counted once the input is known to be readable
        progress.total = count_features(src, info.encoding)
        progress.refresh()
    tmp = Path(tempfile.mkdtemp(prefix=".crs-", dir=dst.parent))  # same file system: the move is a rename
    try:
        out = tmp / dst.name
        if in_driver == "CSV":
            _convert_csv(src, out, t, x_col, y_col, info.encoding, chunk, progress, result)
        else:
            _convert_layers(src, out, t, info.encoding, in_driver, out_driver, chunk, progress, result)
        _move_into_place(tmp, dst, out_driver)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _move_into_place(tmp: Path, dst: Path, driver: str) -> None:
    if dst.exists():
        for p in dst.parent.glob(dst.stem + ".*") if driver == "ESRI Shapefile" else [dst]:
            p.unlink()
    for p in tmp.iterdir():
        shutil.move(str(p), dst.parent / p.name)


def _chunks(src: Path, layer: str, encoding: str | None, chunk: int) -> Iterator[Any]:
    import pyogrio

    start = 0
    while True:
        try:
            frame = pyogrio.read_dataframe(src, layer=layer, encoding=encoding, skip_features=start, max_features=chunk)
        except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
            raise FileError(f"cannot read {src.name}: {_one_line(e)}") from None
        if start and not len(frame):
            return
        yield frame
        if len(frame) < chunk:
            return
        start += chunk


def _convert_layers(src: Path, out: Path, t: Transform, encoding: str | None, in_driver: str, out_driver: str,
                    chunk: int, progress: Any, result: Converted) -> None:
    import pyogrio

    names = layer_names(src)
    labels = {}
    for n in names:
        try:
            labels[n] = pyogrio.read_info(src, layer=n, encoding=encoding)
        except Exception as e:  # pyogrio raises several types; all mean "cannot read this file"
            raise FileError(f"cannot read {src.name}: {_one_line(e)}") from None
    check_labels(src.name, {n: i["crs"] for n, i in labels.items()}, t.source)
    if out_driver in ("ESRI Shapefile", "GeoJSON") and len(names) > 1:
        raise FileError(f"{out.name}: {out_driver} holds one layer and the input has {len(names)}; use .gpkg")
    crs = output_crs(t.target, out_driver)
    # the same encoding as the input for Shapefiles (written to .cpg); UTF-8 elsewhere
    out_encoding = encoding if out_driver == "ESRI Shapefile" and in_driver == "ESRI Shapefile" else None
    for i, name in enumerate(names):
        many = labels[name]["features"] > chunk
        multi = many and in_driver == "ESRI Shapefile" and labels[name]["geometry_type"] in ("Polygon", "LineString")
        # GDAL updates a GeoPackage's R-tree row by row (triggers) on every append after the first
        # chunk: 5 s per 100,000 points. The index is built once at the end instead (gpkg_rtree).
        rtree = many and out_driver == "GPKG"
        for j, frame in enumerate(_chunks(src, name, encoding, chunk)):
            has_geom = frame.geometry.name in frame if hasattr(frame, "geometry") else False
            if len(frame) and has_geom:
                frame.geometry.values[:] = transform_geometries(frame.geometry.values, t)
            frame = frame.set_crs(crs, allow_override=True)
            kwargs: dict[str, Any] = {"driver": out_driver,
                                      "layer": name if out_driver != "ESRI Shapefile" else None,
                                      "append": bool(i or j)}
            if out_encoding:
                kwargs["encoding"] = out_encoding
            if multi:
                kwargs["promote_to_multi"] = True
            if rtree and j == 0:
                kwargs["layer_options"] = {"SPATIAL_INDEX": "NO"}
            try:
                with warnings.catch_warnings():  # "no crs": intended for web-map and local coordinates
                    warnings.simplefilter("ignore", UserWarning)
                    pyogrio.write_dataframe(frame, out, **kwargs)
            except Exception as e:  # pyogrio/GDAL errors of several kinds
                raise FileError(f"cannot write {out.name}: {_one_line(e)}") from None
            result.features += len(frame)
            if progress is not None:
                progress.update(len(frame))
        if rtree:
            _spatial_index(out, name, result)
        result.layers += 1


def _spatial_index(out: Path, layer: str, result: Converted) -> None:
    import pyogrio

    column = pyogrio.read_info(out, layer=layer)["geometry_name"] or "geom"
    if not (gpkg_rtree.create(out, layer, column) and gpkg_rtree.has_index(out, layer)):
        result.notes.append(f"{layer}: written without a spatial index (GDAL's C API was not reachable); add one with "
                            f"ogrinfo {out.name} -sql \"SELECT CreateSpatialIndex('{layer}', '{column}')\"")


def _convert_csv(src: Path, out: Path, t: Transform, x_col: str, y_col: str, encoding: str | None, chunk: int,
                 progress: Any, result: Converted) -> None:
    import pandas as pd

    enc = encoding or "utf-8"
    try:
        reader = pd.read_csv(src, dtype=str, keep_default_na=False, encoding=enc, chunksize=chunk)
        for j, frame in enumerate(reader):
            if j == 0:
                check_columns(src, frame.columns, x_col, y_col)
            try:
                x = frame[x_col].astype(float).to_numpy()
                y = frame[y_col].astype(float).to_numpy()
            except ValueError as e:
                raise FileError(f"{src.name}: a coordinate is not a number ({_one_line(e)})") from None
            nx, ny = t(x, y)
            frame[x_col] = [f"{v:.9f}" if abs(v) <= 360 else f"{v:.4f}" for v in nx]
            frame[y_col] = [f"{v:.9f}" if abs(v) <= 360 else f"{v:.4f}" for v in ny]
            # the byte-order mark once, at the top
            frame.to_csv(out, index=False, header=j == 0, mode="w" if j == 0 else "a",
                         encoding=enc if j == 0 or enc != "utf-8-sig" else "utf-8", quoting=csv.QUOTE_MINIMAL)
            result.features += len(frame)
            if progress is not None:
                progress.update(len(frame))
    except (UnicodeDecodeError, pd.errors.ParserError, OSError) as e:
        raise FileError(f"cannot read {src.name} as CSV ({enc}): {_one_line(e)}") from None
    result.layers = 1
