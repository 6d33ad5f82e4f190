"""The real data loaders (softres.datasets), on the files that pyblp and statsmodels ship."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from softres import datasets

if importlib.util.find_spec("pyblp") is None or importlib.util.find_spec("statsmodels") is None:
    pytest.skip("the optional dependency group 'data' is not installed", allow_module_level=True)


def _rows(package: str, *parts: str) -> list[dict[str, str]]:
    """The file read independently of the loader: csv.DictReader on the path importlib finds."""
    root = Path(importlib.util.find_spec(package).origin).parent
    with (root.joinpath(*parts)).open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sets():
    return {name: datasets.load(name) for name in datasets.DATASETS}


@pytest.mark.parametrize(("name", "n", "features", "markets"),
                         [("nevo", 2256, 3, 94), ("blp", 2217, 5, 20), ("randhie", 20190, 9, 0)])
def test_shapes_and_simplex(sets, name, n, features, markets):
    D = sets[name]
    # Sizes as documented by the data's sources (Nevo 2000: 24 brands x 94 markets; BLP: 2,217 model-years;
    # the RAND HIE sample in statsmodels: 20,190 observations).
    assert D.A.shape == (n, features + max(markets, 1)) == (D.n, D.d)
    assert D.n_features == features and len(D.columns) == D.d
    assert np.isfinite(D.A).all() and np.isfinite(D.b).all()
    assert (D.b >= 0).all() and abs(D.b.sum() - 1.0) < 1e-12
    X = D.A[:, :features]
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1.0, rtol=1e-12)
    if markets:
        assert len(D.group_names) == markets and D.groups.shape == (n,)
        np.testing.assert_array_equal(D.A[:, features:].sum(axis=1), 1.0)  # one market per row
        np.testing.assert_array_equal(D.A[np.arange(n), features + D.groups], 1.0)
        mass = np.bincount(D.groups, weights=D.b)
        assert (mass > 0).all() and abs(mass.sum() - 1.0) < 1e-12
    else:
        assert D.groups is None
        np.testing.assert_array_equal(D.A[:, -1], 1.0)


@pytest.mark.parametrize(("name", "package", "parts", "market"), [
    ("nevo", "pyblp", ("data", "nevo_products.csv"), "market_ids"),
    ("blp", "pyblp", ("data", "blp_products.csv"), "market_ids")])
def test_market_values_match_the_file(sets, name, package, parts, market):
    rows = _rows(package, *parts)
    D = sets[name]
    shares = [float(r["shares"]) for r in rows]
    total = sum(shares)
    assert len(rows) == D.n
    for i in (0, 1, len(rows) // 2, len(rows) - 1):
        assert D.b[i] == pytest.approx(shares[i] / total, rel=1e-12)
        assert D.group_names[D.groups[i]] == rows[i][market]
    # the first row's price, standardised by hand
    prices = np.array([float(r["prices"]) for r in rows])
    assert D.A[0, 0] == pytest.approx((prices[0] - prices.mean()) / prices.std(), rel=1e-12)
    if name == "nevo":
        assert rows[0]["shares"] == "0.012417212" and rows[0]["product_ids"] == "F1B04"


def test_randhie_values_match_the_file(sets):
    rows = _rows("statsmodels", "datasets", "randhie", "randhie.csv")
    D = sets["randhie"]
    visits = [int(r["mdvis"]) for r in rows]
    assert len(rows) == D.n
    assert D.b[1] == pytest.approx(visits[1] / sum(visits), rel=1e-12)
    assert np.count_nonzero(D.b == 0) == visits.count(0)
    assert D.columns[:2] == ("lncoins", "idp")
    idp = np.array([float(r["idp"]) for r in rows])
    assert D.A[5, 1] == pytest.approx((idp[5] - idp.mean()) / idp.std(), rel=1e-12)


def test_missing_package_and_bad_names(monkeypatch):
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.load("iris")
    with pytest.raises(FileNotFoundError, match="does not ship"):
        datasets.data_file("pyblp", "data", "no_such_file.csv")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"\[data\]"):
        datasets.nevo()


def test_loading_does_not_import_the_packages():
    import subprocess
    import sys

    code = ("import sys; from softres import datasets as d; [d.load(n) for n in d.DATASETS]; "
            "print(any(m.split('.')[0] in ('pyblp', 'statsmodels', 'pandas') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
