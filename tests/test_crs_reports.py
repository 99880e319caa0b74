"""HTML reports of `crs fit` and `crs migrate-db`: parsed back with the stdlib's html.parser, the
numbers are checked against the fit and the migration, the residual plot against the residuals,
and the page against anything it could fetch."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from geo import migrate_db
from geo.crs import report
from geo.crs.fit import fit
from geo.crs.models import save_params
from geo.crs.report_html import fit_report_html
from tests.crs_synthetic import bursa_points, helmert_points, write_pairs_csv
from tests.test_crs_cli import ROOT, crs
from tests.test_crs_db import SCRATCH, URL, scratch_database

SCRATCH_REP = SCRATCH + "_rep"


class Page(HTMLParser):
    """Every element with its attributes and its text (the text of everything inside it)."""

    VOID = {"meta", "br", "hr", "img", "link", "input", "source", "base"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self._open: list[dict] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parent": self._open[-1] if self._open else None}
        self.elements.append(el)
        if tag not in self.VOID:
            self._open.append(el)

    def handle_startendtag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "", "parent": self._open[-1] if self._open else None})

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        while self._open and self._open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        for el in self._open:
            el["text"] += data

    def find(self, tag: str | None = None, **attrs: str | None) -> list[dict]:
        """attrs: name=value, or name=None for 'present'; data_id means data-id."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [el for el in self.elements if (tag is None or el["tag"] == tag)
                and all(k in el["attrs"] and (v is None or el["attrs"][k] == v) for k, v in want.items())]

    def inside(self, parent: dict, tag: str | None = None) -> list[dict]:
        """The elements within `parent`, in document order."""
        def within(el: dict) -> bool:
            while (el := el["parent"]) is not None:
                if el is parent:
                    return True
            return False
        return [el for el in self.elements if (tag is None or el["tag"] == tag) and within(el)]

    def text(self, id_: str) -> str:
        (el,) = self.find(id=id_)
        return el["text"].strip()


def assert_self_contained(text: str, page: Page) -> None:
    assert "http://" not in text and "https://" not in text
    assert not page.find("script") and not page.find("link") and not page.find("img") and not page.find("iframe")
    for el in page.elements:
        for name, value in el["attrs"].items():
            assert name not in ("src", "href", "xlink:href", "srcset", "action"), el
            if value and "url(" in value:
                assert re.fullmatch(r"url\(#[\w-]+\)", value), value
    assert "@import" not in text and "@font-face" not in text and re.findall(r"url\((?!#)", text) == []
    (csp,) = page.find("meta", http_equiv="Content-Security-Policy")
    assert "default-src 'none'" in csp["attrs"]["content"]


def _f(s: str) -> float:
    return float(s.replace(",", ""))


# --- the fit -----------------------------------------------------------------------------------

def test_fit_html_report_matches_the_fit_and_plots_every_residual(tmp_path):
    pts = helmert_points()
    write_pairs_csv(pts, tmp_path / "pairs.csv")
    r = crs("fit", tmp_path / "pairs.csv", "--model", "helmert4", "--from", "bj54-gk39", "--to", "cgcs2000-gk39",
            "--out", tmp_path / "p.json", "--report", tmp_path / "p.html")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    st = doc["statistics"]
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)

    # the figures a surveyor signs, as the fit computed them
    norms = np.array([x["norm_m"] for x in st["residuals"]])
    assert page.text("sigma0_m") == f"{st['sigma0_m']:.4f}"
    assert page.text("control_rmse_m") == f"{np.sqrt(np.mean(norms**2)):.4f}"
    assert page.text("control_max_m") == f"{norms.max():.4f}"
    assert page.text("check_rmse_m") == f"{st['check']['rmse_m']:.4f}"
    assert page.text("check_max_m") == f"{st['check']['max_m']:.4f}"
    assert (page.text("n_control"), page.text("n_used"), page.text("n_check"), page.text("n_rejected")) == (
        "32", "30", "8", "2")
    assert "arc-second" in text and "x = easting" in page.text("convention")
    for k, v in doc["parameters"].items():
        (cell,) = page.find("td", data_param=k)
        assert float(cell["text"]) == pytest.approx(v, rel=1e-9, abs=1e-9), k
    (ppm,) = page.find("td", data_param="scale_ppm")
    assert float(ppm["text"]) == pytest.approx((doc["parameters"]["scale"] - 1) * 1e6, abs=1e-4)

    # rejected points with their residuals; every point once in the residual table
    rejected = {el["attrs"]["data-id"]: el for el in page.find("tr", data_id=None) if "data-role" not in el["attrs"]}
    assert sorted(rejected) == sorted(st["rejected"]) == ["Q05", "Q11"]
    for k, v in st["rejected_residuals"].items():
        assert f"{v:.4f}" in rejected[k]["text"]
    rows = {el["attrs"]["data-id"]: el for el in page.find("tr", data_role=None)}
    assert sorted(rows) == sorted(pts.ids)
    roles = {x["id"]: "control" for x in st["residuals"]} | {k: "rejected" for k in st["rejected"]}
    roles |= {c["id"]: "check" for c in st["check"]["points"]}
    assert {k: el["attrs"]["data-role"] for k, el in rows.items()} == roles
    fit_norm = {x["id"]: x["norm_m"] for x in st["residuals"]} | st["rejected_residuals"]
    fit_norm |= {c["id"]: c["norm_m"] for c in st["check"]["points"]}
    enn = {}
    for k, el in rows.items():
        (norm_cell,) = [c for c in page.inside(el, "td") if "data-norm" in c["attrs"]]
        assert float(norm_cell["attrs"]["data-norm"]) == fit_norm[k]
        east, north = (float(c["text"]) for c in page.inside(el, "td")[2:4])
        assert math.hypot(east, north) == pytest.approx(fit_norm[k], abs=1.5e-4), k
        enn[k] = (east, north, fit_norm[k])

    # the plot: one arrow per point, in the residual's direction, one exaggeration for all
    arrows = page.find("line", **{"class": "residual"})
    assert len(arrows) == len(pts.ids) and sorted(a["attrs"]["data-id"] for a in arrows) == sorted(pts.ids)
    (svg,) = page.find("svg")
    exag = float(svg["attrs"]["data-exaggeration"])
    drawn = []
    for a in arrows:
        at = a["attrs"]
        dx, dy = float(at["x2"]) - float(at["x1"]), float(at["y2"]) - float(at["y1"])
        if "stroke-dasharray" in at:  # shortened: only the rejected gross errors
            assert at["data-role"] == "rejected" and enn[at["data-id"]][2] > 0.3
        else:
            drawn.append((at["data-id"], dx, dy))
    assert len(drawn) == len(pts.ids) - 2
    k = float(np.median([math.hypot(dx, dy) / enn[i][2] for i, dx, dy in drawn if enn[i][2] > 0.003]))
    for i, dx, dy in drawn:  # SVG y points down; the table rounds to 0.1 mm, the SVG to 0.1 px
        east, north, norm = enn[i]
        assert abs(dx / k - east) < 6e-5 + 0.1 / k and abs(-dy / k - north) < 6e-5 + 0.1 / k, i
        assert abs(math.hypot(dx, dy) - norm * k) < 0.15, i
    # the scale bars say the same: map bar -> px per map metre; residual bar at the exaggeration
    (map_bar,) = [g for g in page.find("g") if g["attrs"].get("class") == "scalebar map"]
    (res_bar,) = [g for g in page.find("g") if g["attrs"].get("class") == "scalebar residual"]
    (map_line,), (res_line,) = page.inside(map_bar, "line"), page.inside(res_bar, "line")
    map_m = _length_m(re.search(r"map: ([\d.]+ k?m)", map_bar["text"]).group(1))
    res_m = _length_m(re.search(r"residual: ([\d.]+ mm)", res_bar["text"]).group(1))
    assert f"exaggerated ×{exag:,.0f}" in res_bar["text"]
    s = (float(map_line["attrs"]["x2"]) - float(map_line["attrs"]["x1"])) / map_m
    assert (float(res_line["attrs"]["x2"]) - float(res_line["attrs"]["x1"])) / res_m == pytest.approx(exag * s, rel=0.01)
    assert k == pytest.approx(exag * s, rel=0.01)
    # the area of validity is drawn, and every control point used lies inside it
    (area,) = page.find("rect", **{"class": "area"})
    ax, ay = float(area["attrs"]["x"]), float(area["attrs"]["y"])
    aw, ah = float(area["attrs"]["width"]), float(area["attrs"]["height"])
    for a in arrows:
        if a["attrs"]["data-role"] == "control":
            assert ax <= float(a["attrs"]["x1"]) <= ax + aw and ay <= float(a["attrs"]["y1"]) <= ay + ah
    assert aw / ah == pytest.approx((doc["area"]["source"][2] - doc["area"]["source"][0])
                                    / (doc["area"]["source"][3] - doc["area"]["source"][1]), rel=0.01)


def _length_m(s: str) -> float:
    v, unit = s.split()
    return float(v) * {"km": 1000.0, "m": 1.0, "mm": 0.001}[unit]


def test_bursa7_html_gives_both_conventions_and_escapes_ids():
    pts = bursa_points(heights=False)
    pts.ids[0] = '<script>alert("x")</script>'
    pts.ids[1] = 'P&"01\'<b>'
    doc = save_params(fit(pts, "bursa7", "bj54", "cgcs2000").doc, "/dev/null")
    text = fit_report_html(doc, pts)
    page = Page(text)
    assert_self_contained(text, page)
    assert "<script" not in text and "<b>" not in text and "&lt;script&gt;" in text
    ids = {el["attrs"]["data-id"] for el in page.find("line", data_id=None)}
    assert ids == set(pts.ids)  # the parser gives the original strings back: escaped, not mangled
    assert "coordinate frame" in page.text("convention") and "position-vector" in page.text("convention")
    for k in ("rx_arcsec", "ry_arcsec", "rz_arcsec"):
        (cf,), (pv,) = page.find("td", data_param=k), page.find("td", data_pv=k)
        assert float(pv["text"]) == pytest.approx(-float(cf["text"]), abs=1e-6)
        assert float(cf["text"]) == pytest.approx(doc["parameters"][k], abs=1e-9)
    assert "No ellipsoidal heights" in text
    # the plotted east/north residuals are the fit's (horizontal: no heights were given)
    for el in page.find("tr", data_role=None):
        cells = page.inside(el, "td")
        east, north, norm = float(cells[2]["text"]), float(cells[3]["text"]), float(cells[4]["attrs"]["data-norm"])
        assert math.hypot(east, north) == pytest.approx(norm, abs=2e-4), el["attrs"]["data-id"]


def test_html_without_points_has_no_plot_but_every_table():
    pts = helmert_points()
    doc = save_params(fit(pts, "poly2", "bj54-gk39", "cgcs2000-gk39").doc, "/dev/null")
    page = Page(report.fit_report_for("x.html", doc))
    assert not page.find("svg") and len(page.find("tr", data_role=None)) == len(pts.ids)
    assert report.fit_report_for("x.md", doc).startswith("# Coordinate transformation fit")


# --- the migration -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch():
    with scratch_database(SCRATCH_REP) as conn:
        conn.execute("CREATE TABLE geo_crsr_sites (code text PRIMARY KEY, geom geometry(Point, 4490) NOT NULL, "
                     "geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED)")
        conn.execute("INSERT INTO geo_crsr_sites SELECT 'S' || i, ST_SetSRID(ST_MakePoint(116 + i * 0.001, 39.9), 4490) "
                     "FROM generate_series(1, 300) i")
        yield conn


def test_migration_html_report_from_the_cli(scratch, tmp_path):
    env = {**os.environ, "DATABASE_URL": URL.replace("/onemap?", f"/{SCRATCH_REP}?")}
    if "/onemap?" not in URL:
        pytest.skip("cannot point DATABASE_URL at the scratch database")
    r = subprocess.run([sys.executable, "manage.py", "crs", "migrate-db", "--to", "cgcs2000-gk39", "--execute",
                        "--tables", "geo_crsr_sites", "--tol", "0.002", "--report", tmp_path / "r.html"],
                       cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Database coordinate migration")  # stdout stays Markdown
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(text, page)
    assert page.text("outcome").startswith("applied and verified") and page.text("tol_m") == "0.002000"
    assert float(page.text("elapsed_s")) > 0
    row, *checks = page.find("tr", data_column="geo_crsr_sites.geom")  # the columns table, then the checks
    cells = [c["text"] for c in page.inside(row, "td")]
    assert cells[1] == "code" and cells[2] == "300" and cells[3] == "4490 → 4527" and float(cells[8]) > 0
    assert float(cells[5]) < 0.002
    results = [[c["text"] for c in page.inside(el, "td")] for el in checks]
    assert len(results) == 3 and all(x[-1] == "pass" for x in results)
    assert results[0][2] == "300 / 300" and results[2][3] == "<= 0.002"
    assert "geom_3857" in text  # the generated column PostgreSQL recomputed
    # verify and rollback give reports too; a failed check is shown as FAIL
    v = migrate_db.run(scratch, "verify", "cgcs2000-gk39", None, tol_m=1e-12)
    page = Page(report.migration_report_for("v.html", v))
    assert page.text("outcome").startswith("FAILED") and "fail" in page.find(id="outcome")[0]["attrs"]["class"]
    fails = [el for el in page.find("td") if el["text"] == "FAIL"]
    assert len(fails) == 1
    md = report.migration_report_for("v.md", v)
    assert "**FAIL**" in md and "Round-trip tolerance: 0.000000 m" in md
    b = migrate_db.run(scratch, "rollback", "cgcs2000-gk39", None)
    page = Page(report.migration_report_for("b.HTML", b))
    assert page.text("outcome").startswith("rolled back")
    assert scratch.execute("SELECT DISTINCT ST_SRID(geom) FROM geo_crsr_sites").fetchall() == [(4490,)]
