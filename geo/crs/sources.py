"""Checks on an input file before anything is converted: its text encoding and, for a Shapefile,
whether its parts are whole. Each problem is refused with a reason and the option that fixes it,
because GDAL itself would carry on and write wrong data (mojibake, null geometries, no attributes).

Encodings. Shapefile text is judged from the raw bytes of the .dbf (field names and character
values), a CSV from its raw bytes, never from GDAL's already-decoded strings:
- a declared encoding (`--encoding`, else the .cpg, else the .dbf's language driver byte) must
  decode every value; if it does not, the refusal names the encoding the bytes do decode as;
- with no declaration GDAL reads ISO-8859-1, which turns Chinese into `±àºÅ`: non-ASCII text that
  is valid UTF-8 is read as UTF-8 (said on stdout); anything else is refused with the likely
  encoding (GBK, GB18030, Big5) and `--encoding` to pass. We refuse rather than guess GB18030:
  a wrong guess is silent, a refusal costs one option.
- a misspelt `--encoding` (GBX) is refused with the nearest known name and the likely encoding.
"""

from __future__ import annotations

import codecs
import difflib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo.crs.systems import CrsError


class SourceError(CrsError):
    pass


# Tried in this order when the declared encoding fails or is missing: GBK before its superset
# GB18030 because it is what Chinese GIS software writes; Big5 for Hong Kong / Taiwan data.
CANDIDATES = ("UTF-8", "GBK", "GB18030", "BIG5")
KNOWN = ("UTF-8", "GBK", "GB18030", "GB2312", "CP936", "BIG5", "CP950", "ISO-8859-1", "CP1252", "UTF-16")
# .dbf language driver ids (byte 29) GDAL honours when there is no .cpg; 0 means "not given".
LDID = {0x4D: "CP936", 0x7A: "CP936", 0x78: "CP950", 0x01: "CP437", 0x02: "CP850", 0x03: "CP1252",
        0x57: "ISO-8859-1", 0x64: "CP852"}
SAMPLE_BYTES = 16 * 1024 * 1024  # enough evidence; keeps the check's memory bounded


@dataclass
class SourceInfo:
    encoding: str | None = None  # the encoding to read with (GDAL / Python name), None: ASCII only
    notes: list[str] = field(default_factory=list)  # said on stdout, exit 0


def codec_name(name: str) -> str | None:
    """A .cpg / --encoding value as a Python codec name, or None if unknown ('936' and 'ANSI 936'
    are code page 936, as ESRI writes them)."""
    text = name.strip()
    for cand in (text, "cp" + text, "cp" + text.upper().removeprefix("ANSI").strip()):
        try:
            return codecs.lookup(cand).name
        except LookupError:
            continue
    return None


def gdal_name(name: str) -> str:
    return {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030", "big5": "BIG5", "latin-1": "ISO-8859-1",
            "iso8859-1": "ISO-8859-1"}.get(codecs.lookup(name).name, codecs.lookup(name).name.upper())


def decodes(values: list[bytes], encoding: str) -> bool:
    try:
        for v in values:
            v.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def likely_encoding(values: list[bytes]) -> str | None:
    return next((c for c in CANDIDATES if decodes(values, c)), None)


def _sample(values: list[bytes], encoding: str) -> str:
    text = next((v.decode(encoding) for v in values if not v.isascii()), "")
    return text[:20]


def resolve(what: str, values: list[bytes], explicit: str | None, declared: str | None, declared_by: str) -> SourceInfo:
    """The encoding to read `values` (raw non-ASCII byte strings) with, or a refusal."""
    if explicit is not None:
        codec = codec_name(explicit)
        if codec is None:
            guess = likely_encoding(values)
            near = difflib.get_close_matches(explicit.upper(), KNOWN, n=1, cutoff=0.5)
            hint = f"the text decodes as {guess}: pass --encoding {guess}" if guess else (
                f"did you mean --encoding {near[0]}?" if near else f"known: {', '.join(KNOWN)}")
            raise SourceError(f"unknown encoding {explicit!r} (--encoding); {hint}")
        declared, declared_by = explicit, f"--encoding {explicit}"
    if not values:
        return SourceInfo(gdal_name(codec_name(declared) or "utf-8") if declared else None)
    if declared is not None:
        codec = codec_name(declared)
        if codec is None:
            raise SourceError(f"{what}: {declared_by} names an unknown encoding {declared!r}; pass --encoding "
                              f"({likely_encoding(values) or 'e.g. GBK'})")
        if decodes(values, codec):
            return SourceInfo(gdal_name(codec))
        guess = likely_encoding(values)
        hint = (f"it decodes as {guess} (e.g. {_sample(values, guess)!r}): pass --encoding {guess}" if guess
                else "pass --encoding with the right one")
        raise SourceError(f"{what}: the text is not valid {gdal_name(codec)} ({declared_by}); {hint}")
    if decodes(values, "utf-8"):
        return SourceInfo("UTF-8", [f"{what}: no encoding declared; the text is valid UTF-8 and was read as UTF-8"])
    guess = likely_encoding(values)
    if guess:
        raise SourceError(f"{what} declares no encoding and its text is not UTF-8; it decodes as {guess} "
                          f"(e.g. {_sample(values, guess)!r}): pass --encoding {guess}")
    raise SourceError(f"{what} declares no encoding and its text is neither UTF-8 nor {', '.join(CANDIDATES[1:])}: "
                      "pass --encoding")


# --- Shapefile ---------------------------------------------------------------------------------

def sidecar(shp: Path, ext: str) -> Path | None:
    """The .dbf / .shx / .cpg next to a .shp, whatever the case of its extension."""
    for cand in (shp.with_suffix(ext), shp.with_suffix(ext.upper())):
        if cand.exists():
            return cand
    return None


def _dbf_text(dbf: Path) -> tuple[int, int, list[bytes]]:
    """(language driver id, record count, the non-ASCII field names and character values), read
    record block by record block and capped at SAMPLE_BYTES of non-ASCII text."""
    with dbf.open("rb") as f:
        head = f.read(32)
        if len(head) < 32:
            raise SourceError(f"{dbf.name} is not a dBASE file (too short); restore it from the source")
        n_rec, head_len, rec_len = struct.unpack("<IHH", head[4:12])
        ldid = head[29]
        desc = f.read(max(head_len - 32, 0))
        fields, pos, offset = [], 0, 1  # offset 1: the deletion flag
        while pos + 32 <= len(desc) and desc[pos] != 0x0D:
            d = desc[pos:pos + 32]
            fields.append((d[:11].split(b"\0")[0], chr(d[11]), offset, d[16]))
            offset += d[16]
            pos += 32
        values = [name for name, *_ in fields if not name.isascii()]
        text_fields = [(o, n) for _, t, o, n in fields if t == "C"]
        seen, budget = set(), SAMPLE_BYTES
        f.seek(head_len)
        block = max(1, (1 << 20) // max(rec_len, 1))
        while budget > 0 and text_fields and rec_len:
            data = f.read(block * rec_len)
            if len(data) < rec_len:
                break
            recs = np.frombuffer(data[:len(data) - len(data) % rec_len], dtype=np.uint8).reshape(-1, rec_len)
            for o, n in text_fields:
                cells = recs[:, o:o + n]
                # only the records with a byte >= 0x80 in this field go through Python
                for row in np.flatnonzero((cells >= 0x80).any(axis=1)):
                    v = cells[row].tobytes().rstrip(b" \0")
                    if v not in seen:
                        seen.add(v)
                        values.append(v)
                        budget -= len(v)
    return ldid, n_rec, values


def check_shapefile(shp: Path, encoding: str | None, geometry_only: bool = False) -> SourceInfo:
    """Refuse a Shapefile whose parts are missing or cut short, or whose text would be misread."""
    shp_size = shp.stat().st_size
    if shp_size < 100:
        raise SourceError(f"{shp.name} is truncated ({shp_size} bytes, less than its 100-byte header)")
    with shp.open("rb") as f:
        declared_len = struct.unpack(">i", f.read(28)[24:28])[0] * 2
    shx = sidecar(shp, ".shx")
    n_shx = None
    if shx is not None:
        idx = shx.read_bytes()[100:]
        n_shx = len(idx) // 8
        ends = (2 * (off + length) + 8 for off, length in struct.iter_unpack(">ii", idx[:8 * n_shx]))
        beyond = sum(1 for end in ends if end > shp_size)
        if beyond:
            raise SourceError(f"{shp.name} is truncated: {beyond} of {n_shx} records lie beyond its end "
                              f"({shp_size} of {declared_len} bytes); GDAL would write them with no geometry. "
                              "Copy the file again from its source")
    if shp_size < declared_len:
        raise SourceError(f"{shp.name} is truncated ({shp_size} of the {declared_len} bytes its header declares); "
                          "copy the file again from its source")
    dbf = sidecar(shp, ".dbf")
    if dbf is None:
        if geometry_only:
            return SourceInfo(None, [f"{shp.name}: no .dbf, converting the geometries alone (--geometry-only)"])
        raise SourceError(f"{shp.with_suffix('.dbf').name} is missing: every attribute would be lost; restore it, "
                          "or pass --geometry-only to convert the geometries alone")
    ldid, n_dbf, values = _dbf_text(dbf)
    if n_shx is not None and n_dbf != n_shx:
        raise SourceError(f"{dbf.name} has {n_dbf} records and {shp.name} {n_shx}: attributes and geometries "
                          "would be paired wrongly; copy both files again from their source")
    cpg = sidecar(shp, ".cpg")
    if cpg is not None and cpg.read_bytes().strip():
        declared = cpg.read_bytes().decode("ascii", "replace").strip()
        by = f"{cpg.name} says {declared}"
    elif ldid in LDID:
        declared, by = LDID[ldid], f"the .dbf language driver byte 0x{ldid:02X} says {LDID[ldid]}"
    else:
        declared, by = None, ""
    return resolve(shp.name, values, encoding, declared, by)


# --- CSV ---------------------------------------------------------------------------------------

def check_csv(path: Path, encoding: str | None) -> SourceInfo:
    """The CSV's encoding: --encoding, else UTF-8 (with its BOM kept if there is one)."""
    with path.open("rb") as f:
        raw = f.read(SAMPLE_BYTES)
        if f.read(1):
            raw = raw[:raw.rfind(b"\n") + 1]  # whole lines only: no character cut in two
    bom = raw.startswith(codecs.BOM_UTF8)
    values = [line for line in raw.splitlines() if not line.isascii()]
    info = resolve(path.name, values, encoding, None if encoding else "utf-8", "UTF-8 is the default for CSV")
    if encoding is None and bom:
        info.encoding = "utf-8-sig"  # kept on output: Excel writes it, and other tools choke without it
    return info
