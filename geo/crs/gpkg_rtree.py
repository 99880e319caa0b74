"""A GeoPackage layer's spatial index, built once after a chunked write instead of row by row.

GDAL builds the R-tree in bulk for a layer written in one go, but on every later append it
updates the index through triggers, row by row: 5 s per 100,000 points, five times the write. GDAL's
own advice for bulk loads is to write with SPATIAL_INDEX=NO and then run
`SELECT CreateSpatialIndex(layer, column)` on the dataset opened for update. pyogrio does not
expose update-mode SQL, so the statement is run through the C API of the very GDAL library pyogrio
loaded (same version, same driver), by ctypes. If that library cannot be found, `create` returns
False and the caller writes the index the slow way instead: the result is the same file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

_OF_VECTOR, _OF_UPDATE = 0x04, 0x01


@lru_cache(maxsize=1)
def _gdal() -> Any:
    import pyogrio

    base = os.path.dirname(pyogrio.__file__)
    found = sorted(glob.glob(base + ".libs/libgdal*.so*")) or [ctypes.util.find_library("gdal") or ""]
    try:
        lib = ctypes.CDLL(found[0])
    except OSError:
        return None
    lib.GDALOpenEx.restype = ctypes.c_void_p
    lib.GDALOpenEx.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.GDALDatasetExecuteSQL.restype = ctypes.c_void_p
    lib.GDALDatasetExecuteSQL.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p]
    lib.GDALDatasetReleaseResultSet.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.GDALClose.argtypes = [ctypes.c_void_p]
    lib.GDALClose.restype = ctypes.c_int
    return lib


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create(path: Path, layer: str, column: str) -> bool:
    """Build the layer's R-tree in one statement; False if GDAL's C API is not reachable."""
    lib = _gdal()
    if lib is None:
        return False
    ds = lib.GDALOpenEx(str(path).encode(), _OF_VECTOR | _OF_UPDATE, None, None, None)
    if not ds:
        return False
    try:
        sql = f"SELECT CreateSpatialIndex({_quote(layer)}, {_quote(column)})".encode()
        rs = lib.GDALDatasetExecuteSQL(ds, sql, None, None)
        if rs:
            lib.GDALDatasetReleaseResultSet(ds, rs)
    finally:
        lib.GDALClose(ds)
    return True


def has_index(path: Path, layer: str) -> bool:
    import pyogrio

    return bool(pyogrio.read_info(path, layer=layer)["capabilities"]["fast_spatial_filter"])
