"""Control-point fitting: parameters recovered, gross errors rejected at 3 sigma, the PROJ
pipeline equal to the numpy model, and a coordinate-frame / position-vector mix-up caught."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from geo.crs.fit import FitError, fit, read_pairs
from geo.crs.models import ARCSEC, apply_params, bursa_pipeline, to_position_vector
from geo.crs.report import fit_report
from geo.crs.report_html import fit_report_html
from tests.crs_synthetic import BURSA, HELMERT, bursa_points, helmert_apply, helmert_points, write_pairs_csv


def test_bursa7_recovers_parameters_and_rejects_gross_errors():
    doc = fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc
    p, st = doc["parameters"], doc["statistics"]
    assert sorted(st["rejected"]) == ["P03", "P07"]
    assert doc["convention"] == "coordinate_frame"
    for k in ("tx_m", "ty_m", "tz_m"):
        assert p[k] == pytest.approx(BURSA[k], abs=0.5)
    for k in ("rx_arcsec", "ry_arcsec", "rz_arcsec"):
        assert p[k] == pytest.approx(BURSA[k], abs=0.02)
    assert p["s_ppm"] == pytest.approx(BURSA["s_ppm"], abs=0.05)
    assert st["sigma0_m"] < 0.005 and st["check"]["rmse_m"] < 0.01 and st["check"]["n"] == 8


def test_bursa7_without_noise_is_exact():
    p = fit(bursa_points(noise_m=0.0, outliers=False), "bursa7", "bj54", "cgcs2000").doc["parameters"]
    for k, v in BURSA.items():
        assert p[k] == pytest.approx(v, abs=1e-5)


def test_helmert4_recovers_parameters_and_rejects_gross_errors():
    doc = fit(helmert_points(), "helmert4", "bj54-gk39", "cgcs2000-gk39").doc
    p, st = doc["parameters"], doc["statistics"]
    assert sorted(st["rejected"]) == ["Q05", "Q11"]
    assert (p["scale"] - 1) * 1e6 == pytest.approx((HELMERT["scale"] - 1) * 1e6, abs=0.05)
    assert p["theta_arcsec"] == pytest.approx(HELMERT["theta_arcsec"], abs=0.01)
    # the translations about the far-away origin trade against rotation: judge them where the data is
    x, y = np.array([39_440_000.0]), np.array([4_420_000.0])
    assert np.hypot(*(np.subtract(apply_params(doc, x, y), helmert_apply(x, y)))) < 0.005
    assert st["check"]["rmse_m"] < 0.01
    exact = fit(helmert_points(noise_m=0, outliers=False), "helmert4", "bj54-gk39", "cgcs2000-gk39").doc["parameters"]
    for k, v in HELMERT.items():
        assert exact[k] == pytest.approx(v, abs=1e-6)


@pytest.mark.parametrize("model", ["affine", "poly2"])
def test_other_plane_models_fit_and_invert(model):
    doc = fit(helmert_points(), model, "bj54-gk39", "cgcs2000-gk39").doc
    assert sorted(doc["statistics"]["rejected"]) == ["Q05", "Q11"]
    assert doc["statistics"]["check"]["rmse_m"] < 0.01
    x, y = np.array([39_440_000.0, 39_460_000.0]), np.array([4_420_000.0, 4_430_000.0])
    back = apply_params(doc, *apply_params(doc, x, y), inverse=True)
    assert np.allclose(back, (x, y), atol=1e-6, rtol=0)


@pytest.mark.parametrize("model", ["helmert4", "affine", "bursa7"])
def test_proj_pipeline_equals_numpy_model(model):
    pts = bursa_points() if model == "bursa7" else helmert_points()
    src = ("bj54", "cgcs2000") if model == "bursa7" else ("bj54-gk39", "cgcs2000-gk39")
    doc = fit(pts, model, *src).doc
    x, y = pts.src[:, 0], pts.src[:, 1]
    px, py = Transformer.from_pipeline(doc["proj_pipeline"]).transform(x, y)
    nx, ny = apply_params(doc, x, y)
    scale = (111_320.0 * np.cos(np.radians(y)), 111_320.0) if model == "bursa7" else (1.0, 1.0)
    assert np.max(np.hypot((px - nx) * scale[0], (py - ny) * scale[1])) < 1e-3


def test_coordinate_frame_and_position_vector_mix_up_is_caught():
    pts = bursa_points(outliers=False)
    doc = fit(pts, "bursa7", "bj54", "cgcs2000").doc
    ells = [f"+a={a!r} +rf={rf!r}" for a, rf in doc["ellipsoids"].values()]
    x, y = pts.src[:, 0], pts.src[:, 1]
    right = Transformer.from_pipeline(bursa_pipeline(doc["parameters"], *ells)).transform(x, y)
    # the classic mistake: coordinate-frame numbers used as position-vector ones (e.g. in +towgs84)
    mixed = Transformer.from_pipeline(
        bursa_pipeline(to_position_vector(doc["parameters"]), *ells, convention="position_vector")).transform(x, y)
    dev = np.hypot((mixed[0] - right[0]) * 111_320 * np.cos(np.radians(y)), (mixed[1] - right[1]) * 111_320)
    assert dev.min() > 20.0  # metres: unmistakable
    # the fit's own check points expose it too: their RMSE jumps from millimetres to tens of metres
    chk = pts.check
    gx, gy = pts.dst[chk, 0], pts.dst[chk, 1]
    mx, my = mixed[0][chk], mixed[1][chk]
    assert np.sqrt(np.mean(((mx - gx) * 85_000) ** 2 + ((my - gy) * 111_320) ** 2)) > 20.0
    # and the proper conversion reproduces the coordinate-frame result exactly
    pv = Transformer.from_pipeline(bursa_pipeline(doc["parameters"], *ells, convention="position_vector")).transform(x, y)
    assert np.allclose(pv, right, atol=1e-12, rtol=0)
    assert doc["position_vector"]["rz_arcsec"] == pytest.approx(-doc["parameters"]["rz_arcsec"])


def test_too_few_control_points_is_refused():
    pts = helmert_points(n=3, outliers=False)
    pts.check[:] = False
    fit(pts, "helmert4", "bj54-gk39", "cgcs2000-gk39")
    with pytest.raises(FitError, match="poly2 needs at least 7 control points"):
        fit(pts, "poly2", "bj54-gk39", "cgcs2000-gk39")
    with pytest.raises(FitError, match="plane coordinates"):
        fit(pts, "helmert4", "bj54", "cgcs2000")


def test_pairs_csv_and_report(tmp_path):
    write_pairs_csv(helmert_points(), tmp_path / "pairs.csv")
    pts = read_pairs(tmp_path / "pairs.csv")
    assert pts.check.sum() == 8 and len(pts.ids) == 40
    doc = fit(pts, "helmert4", "bj54-gk39", "cgcs2000-gk39").doc
    text = fit_report(doc)
    assert "Q05" in text and "check RMSE" in text and "+proj=helmert" in text
    (tmp_path / "bad.csv").write_text("id,x,y\n1,2,3\n")
    with pytest.raises(FitError, match="need columns"):
        read_pairs(tmp_path / "bad.csv")


def test_bursa7_report_speaks_of_missing_heights_only_when_they_are_missing():
    with_h = fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc
    assert with_h["statistics"]["heights"] is True and with_h["statistics"]["dof"] % 3  # the old test's trap
    assert "No ellipsoidal heights" not in fit_report(with_h)
    without = fit(bursa_points(heights=False), "bursa7", "bj54", "cgcs2000").doc
    assert without["statistics"]["heights"] is False and "No ellipsoidal heights" in fit_report(without)


def test_helmert4_standard_errors_match_the_closed_form():
    pts = helmert_points(outliers=False)
    doc = fit(pts, "helmert4", "bj54-gk39", "cgcs2000-gk39").doc
    st, pr = doc["statistics"], doc["statistics"]["precision"]
    used = ~pts.check
    u = pts.src[used, 0] - pts.src[used, 0].mean()
    v = pts.src[used, 1] - pts.src[used, 1].mean()
    # similarity about the centroid: var(a) = var(b) = s0^2 / sum(u^2 + v^2), var(shift) = s0^2 / n
    s0, m = st["sigma0_m"], doc["parameters"]["scale"]
    se_theta = s0 / (m * np.sqrt(np.sum(u**2 + v**2))) / ARCSEC
    assert pr["std_error"]["theta_arcsec"] == pytest.approx(se_theta, rel=1e-3)
    assert pr["std_error"]["scale"] == pytest.approx(s0 / np.sqrt(np.sum(u**2 + v**2)), rel=1e-3)
    assert pr["centred"]["std_error"]["tx_m@centroid"] == pytest.approx(s0 / np.sqrt(used.sum()), rel=1e-3)
    # the stored translation sits 4,400 km from the points: its error is the rotation's lever arm
    assert pr["std_error"]["tx_m"] > 100 * pr["centred"]["std_error"]["tx_m@centroid"]
    names = pr["correlation"]["names"]
    r = np.array(pr["correlation"]["matrix"])
    assert abs(r[names.index("tx_m"), names.index("scale")]) > 0.9  # lever arm ...
    assert np.all(np.abs(np.array(pr["centred"]["correlation"]["matrix"]) - np.eye(4)) < 0.9)  # ... gone about the centroid
    assert pr["warnings"] == [] and "only because the origin" in pr["notes"][0]
    text = fit_report(doc)
    assert "## Precision of the parameters" in text and "tx_m@centroid" in text


def test_bursa7_without_heights_warns_that_parameters_are_too_correlated():
    h = fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc["statistics"]["precision"]
    assert h["warnings"] == [] and all(v is not None and v < 0.1 for v in h["std_error"].values())
    doc = fit(bursa_points(heights=False), "bursa7", "bj54", "cgcs2000").doc
    p = doc["statistics"]["precision"]
    page = fit_report_html(doc)
    assert 'class="note warning">Warning: bursa7: parameters too correlated' in page and 'data-se="s_ppm"' in page
    assert len(p["warnings"]) == 1 and "too correlated to be meaningful" in p["warnings"][0]
    assert "s_ppm" in p["warnings"][0] and "give ellipsoidal heights" in p["warnings"][0]
    assert p["std_error"]["s_ppm"] > 100 * h["std_error"]["s_ppm"]


def test_cli_fit_prints_the_correlation_warning_and_still_writes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    write_pairs_csv(bursa_points(heights=False), tmp_path / "pairs.csv")  # no height columns
    r = subprocess.run([sys.executable, "manage.py", "crs", "fit", tmp_path / "pairs.csv", "--model", "bursa7", "--from",
                        "bj54", "--to", "cgcs2000", "--out", tmp_path / "p.json"], cwd=Path(__file__).parent.parent,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("bursa7 bj54 -> cgcs2000"), r.stderr
    assert r.stderr.startswith("WARNING: bursa7: parameters too correlated to be meaningful")
    assert "**Warning:**" in (tmp_path / "p.md").read_text()
