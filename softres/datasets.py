"""Real data for the paper's model, read offline from the files that installed packages ship.

The model of Definition 1.4 fits a probability vector ``b`` over the ``n`` rows of ``A`` with
``f(x) = u(Ax) / <u(Ax), 1>``. Data for which that is natural:

* :func:`nevo`: the cereal product table of Nevo (2000) shipped by ``pyblp`` (``nevo_products.csv``);
* :func:`blp`: the automobile product table of Berry, Levinsohn and Pakes (1995) shipped by
  ``pyblp`` (``blp_products.csv``);
* :func:`randhie`: the RAND Health Insurance Experiment sample shipped by ``statsmodels``
  (``datasets/randhie/randhie.csv``).

The files are located with :func:`importlib.util.find_spec`, which does not import the package
(``pyblp`` and ``statsmodels`` are heavy), and parsed with the :mod:`csv` module. Install them with
the optional dependency group ``data`` (``pip install -e ".[data]"``). Nothing is downloaded.

Every loader standardises the continuous characteristics (mean 0, standard deviation 1): the loss
depends on ``x`` only through ``z = Ax``, so a rescaled column is a reparametrisation, and unit
scales keep ``‖A‖`` comparable across data sets.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softres._validate import check_choice

__all__ = ["DATASETS", "RealData", "blp", "data_file", "load", "nevo", "randhie"]

#: Names accepted by :func:`load`, in the order the book presents them.
DATASETS = ("nevo", "blp", "randhie")


@dataclass(frozen=True)
class RealData:
    """A real data set in the paper's form: ``A`` (``n × d``), ``b`` on the simplex over the rows.

    Attributes
    ----------
    name : str
        One of :data:`DATASETS`.
    A : (n, d) ndarray
        The design: ``n_features`` standardised characteristics, then one indicator column per
        group (market) when ``groups`` is given, or an intercept column otherwise.
    b : (n,) ndarray
        Nonnegative, sums to 1.
    columns : tuple of str
        A name per column of ``A``.
    groups : (n,) int ndarray or None
        The market of each row (``0 … G−1``), for the market data.
    group_names : tuple of str
        The market identifiers in the file, indexed by ``groups``.
    n_features : int
        Number of characteristic columns (the first columns of ``A``).
    source : str
        The file read.
    """

    name: str
    A: np.ndarray
    b: np.ndarray
    columns: tuple[str, ...]
    groups: np.ndarray | None
    group_names: tuple[str, ...]
    n_features: int
    source: str

    @property
    def n(self) -> int:
        return int(self.A.shape[0])

    @property
    def d(self) -> int:
        return int(self.A.shape[1])


def data_file(package: str, *parts: str) -> Path:
    """Path of a data file shipped inside ``package``, found without importing the package.

    Raises
    ------
    ModuleNotFoundError
        ``package`` is not installed (the message names the optional dependency group ``data``).
    FileNotFoundError
        The package is installed but does not ship the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed; the real data sets need the optional "
                                  "dependencies: pip install -e \".[data]\"", name=package)
    for root in spec.submodule_search_locations:
        path = Path(root, *parts)
        if path.is_file():
            return path
    raise FileNotFoundError(f"{package!r} does not ship {'/'.join(parts)}")


def _read(path: Path) -> dict[str, list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        cols: list[list[str]] = [[] for _ in header]
        for row in reader:
            for col, value in zip(cols, row, strict=True):
                col.append(value)
    return dict(zip(header, cols, strict=True))


def _standardise(X: np.ndarray) -> np.ndarray:
    sd = X.std(axis=0)
    if not (sd > 0).all():
        raise ValueError("a characteristic column is constant")
    return (X - X.mean(axis=0)) / sd


def _market_data(name: str, path: Path, market: str, features: tuple[str, ...]) -> RealData:
    table = _read(path)
    ids = table[market]
    group_names = tuple(dict.fromkeys(ids))          # first-appearance order, as in the file
    index = {g: k for k, g in enumerate(group_names)}
    groups = np.array([index[g] for g in ids], dtype=np.intp)
    shares = np.array(table["shares"], dtype=float)
    X = _standardise(np.column_stack([np.array(table[c], dtype=float) for c in features]))
    dummies = np.zeros((groups.size, len(group_names)))
    dummies[np.arange(groups.size), groups] = 1.0
    A = np.hstack([X, dummies])
    return RealData(name, A, shares / shares.sum(), (*features, *(f"market {g}" for g in group_names)),
                    groups, group_names, len(features), str(path))


def nevo() -> RealData:
    """Nevo's (2000) cereal data (``pyblp/data/nevo_products.csv``): 94 city–quarter markets.

    Rows are product–markets; ``A`` holds the standardised ``prices``, ``sugar`` and ``mushy`` and one
    indicator per market; ``b`` is ``shares`` divided by its total over all rows.

    Why ``b`` is a distribution over rows: in the logit share model the share of product ``j`` among
    the inside goods of market ``m`` is ``e^{δ_j} / Σ_{k ∈ m} e^{δ_k}`` with ``δ = Xθ``. With a market
    indicator ``η_m`` in ``A``, the pooled softmax over all rows is
    ``e^{η_m} Σ_{k∈m} e^{δ_k} / Σ_rows ⋯ × e^{δ_j} / Σ_{k∈m} e^{δ_k}``: a free distribution over
    markets times the per-market logit, which is exactly how ``b_j = s_j / Σ s`` factorises
    (market mass times within-market share). Softmax regression on these rows is therefore the
    logit share model with market fixed effects, fitted by least squares on shares.
    """
    path = data_file("pyblp", "data", "nevo_products.csv")
    return _market_data("nevo", path, "market_ids", ("prices", "sugar", "mushy"))


def blp() -> RealData:
    """Berry, Levinsohn and Pakes' (1995) automobile data (``pyblp/data/blp_products.csv``): 20 years.

    Rows are model–years; ``A`` holds the standardised ``prices``, ``hpwt`` (horsepower per weight),
    ``air`` (air conditioning), ``mpd`` (miles per dollar) and ``space`` (size) and one indicator per
    year (market); ``b`` is ``shares`` divided by its total. ``b`` is a distribution over rows for
    the reason given in :func:`nevo` (logit share model with market fixed effects).
    """
    path = data_file("pyblp", "data", "blp_products.csv")
    return _market_data("blp", path, "market_ids", ("prices", "hpwt", "air", "mpd", "space"))


def randhie() -> RealData:
    """The RAND Health Insurance Experiment sample shipped by ``statsmodels`` (20,190 people).

    ``A`` holds the nine standardised covariates (``lncoins``, ``idp``, ``lpi``, ``fmde``, ``physlm``,
    ``disea``, ``hlthg``, ``hlthf``, ``hlthp``) and an intercept; ``b`` is ``mdvis`` (outpatient visits)
    divided by the total number of visits.

    Why ``b`` is a distribution over rows: if person ``i`` makes ``y_i ~ Poisson(μ_i)`` visits with
    the log link ``μ_i = e^{a_iᵀθ}``, then given the total ``Σ y`` the counts are multinomial with
    probabilities ``μ_i / Σ μ = softmax(Aθ)_i``; ``b = y / Σ y`` is the empirical version, and softmax
    regression with the paper's squared loss is the least-squares cousin of that Poisson model (the
    intercept cancels in the softmax, not in the unified unit).
    """
    path = data_file("statsmodels", "datasets", "randhie", "randhie.csv")
    table = _read(path)
    features = ("lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp")
    X = _standardise(np.column_stack([np.array(table[c], dtype=float) for c in features]))
    y = np.array(table["mdvis"], dtype=float)
    A = np.hstack([X, np.ones((y.size, 1))])
    return RealData("randhie", A, y / y.sum(), (*features, "intercept"), None, (), len(features), str(path))


def load(name: str) -> RealData:
    """The data set ``name`` (one of :data:`DATASETS`); see :func:`nevo`, :func:`blp`, :func:`randhie`."""
    check_choice(name, "name", DATASETS)
    return {"nevo": nevo, "blp": blp, "randhie": randhie}[name]()
