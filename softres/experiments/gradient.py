"""Chapter "Gradient": Lemma 4.1 (all twelve parts) against complex-step derivatives, and the gradient's cost."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from softres import _kernels
from softres.examples import random_problem
from softres.experiments._common import figure, loglog_slope, plot_part_errors
from softres.figures import compute
from softres.problem import Problem
from softres.reference import complex_step_jacobian, naive_loss, naive_parts

#: Relative error below which a part counts as agreeing with the reference (rounding is ~1e-15).
TOL = 1e-10

#: The parts of Lemma 4.1 as the book reads them (see the chapter): name of the derivative checked.
PARTS = [
    "Part 1: d(Ax)/dx_i",
    "Part 2: d exp(Ax)/dx_i",
    "Part 3: du/dx_i",
    "Part 4: dalpha/dx_i",
    "Part 5: d(1/alpha)/dx_i",
    "Part 6: df/dx_i",
    "Part 7: dc/dx_i",
    "Part 8: dL_exp/dx_i",
    "Part 9: d<v, A_i>/dx_i",
    "Part 10: d<v, A_i>/dx_j (j != i)",
    "Part 11: d(v o A_i)/dx_i",
    "Part 12: d(v o A_i)/dx_j (j != i)",
    "gradient of L = L_exp + L_reg",
]


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours), np.asarray(ref)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300))


def _part_errors(A, b, w, x) -> list[float]:
    """Relative errors of the parts of Lemma 4.1 at one point, in the order of :data:`PARTS`.

    The closed forms use softres's basic functions (``v``, ``alpha``, ``f``, ``jac_u``, ``jac_f``,
    ``grad_exp``, ``grad``); the references are complex-step derivatives of the naive definitions in
    :mod:`softres.reference` (Parts 9–12: of the naive ``v = exp(Ax) + 1``).
    """
    P = Problem(A, b, w)
    zero = np.zeros_like(w)
    v, alpha = P.v(x), P.alpha(x)
    e = v - 1.0
    d = x.size
    cs = complex_step_jacobian

    def naive_v(t):
        return np.exp(A @ t) + 1.0

    J_v = cs(naive_v, x)  # J_v[:, j] = d v / d x_j
    part9 = np.array([e @ (A[:, i] * A[:, i]) for i in range(d)])
    part9_ref = np.array([A[:, i] @ J_v[:, i] for i in range(d)])
    off = [(i, j) for i in range(d) for j in range(d) if i != j]
    part10 = np.array([e @ (A[:, i] * A[:, j]) for i, j in off]) if off else np.zeros(0)
    part10_ref = np.array([A[:, i] @ J_v[:, j] for i, j in off]) if off else np.zeros(0)
    part11 = np.stack([e * A[:, i] * A[:, i] for i in range(d)])
    part11_ref = np.stack([J_v[:, i] * A[:, i] for i in range(d)])
    part12 = np.stack([e * A[:, i] * A[:, j] for i, j in off]) if off else np.zeros((1, 1))
    part12_ref = np.stack([J_v[:, j] * A[:, i] for i, j in off]) if off else np.zeros((1, 1))

    def c_naive(t):
        return naive_parts(A, b, w, t)[2] - b

    return [
        _rel(A, cs(lambda t: A @ t, x)),
        _rel(e[:, None] * A, cs(lambda t: np.exp(A @ t), x)),
        _rel(P.jac_u(x), cs(lambda t: naive_parts(A, b, w, t)[0], x)),
        _rel(P.grad_alpha(x), cs(lambda t: naive_parts(A, b, w, t)[1], x)),
        _rel(-(A.T @ v) / alpha**2, cs(lambda t: 1.0 / naive_parts(A, b, w, t)[1], x)),
        _rel(P.jac_f(x), cs(lambda t: naive_parts(A, b, w, t)[2], x)),
        _rel(P.jac_f(x), cs(c_naive, x)),
        _rel(P.grad_exp(x), cs(lambda t: naive_loss(A, b, zero, t), x)),
        _rel(part9, part9_ref),
        _rel(part10, part10_ref) if off else np.nan,  # no j != i when d = 1
        _rel(part11, part11_ref),
        _rel(part12, part12_ref) if off else np.nan,
        _rel(P.grad(x), cs(lambda t: naive_loss(A, b, w, t), x)),
    ]


def lemma_4_1_errors(rng: np.random.Generator, trials: int = 50) -> dict:
    """Relative error of every part of Lemma 4.1 over ``trials`` random problems and points.

    ``n`` is drawn from ``[n_min, n_max)`` and ``d`` from ``[d_min, d_max)`` (returned), ``A`` Gaussian,
    ``b`` uniform on ``[0, 1/n)``, ``w`` uniform, ``x ~ N(0, I/d)`` kept when ``α(x) > 0``.
    """
    n_min, n_max, d_min, d_max = 2, 40, 1, 8
    errors = []
    while len(errors) < trials:
        n, d = int(rng.integers(n_min, n_max)), int(rng.integers(d_min, d_max))
        A, b, w = rng.standard_normal((n, d)), rng.random(n) / n, rng.random(n)
        x = rng.standard_normal(d) / np.sqrt(d)
        if Problem(A, b, w).in_domain(x):
            errors.append(_part_errors(A, b, w, x))
    errors = np.array(errors)
    return {"parts": PARTS, "errors": errors, "max_error": np.nanmax(errors, axis=0),
            "median_error": np.nanmedian(errors, axis=0), "trials": trials, "tol": TOL,
            "applicable": np.sum(~np.isnan(errors), axis=0),
            "n_min": n_min, "n_max": n_max - 1, "d_min": d_min, "d_max": d_max - 1}


def plot_lemma_4_1(data: dict):
    """Relative error of each part over the draws (dots), with the tolerance."""
    return plot_part_errors(data, "relative error against complex step", height=3.8,
                            title="Parts 10 and 12 need d > 1: drawn for the problems with d > 1 only")


def cost_vs_nnz(rng: np.random.Generator, d: int = 50, repeat: int = 9) -> dict:
    """Passes over ``A`` and time of one ``grad`` as ``nnz(A)`` grows, dense and sparse.

    ``*_one_pass`` says for each problem whether its gradient at a new point is the compiled one pass
    (:attr:`softres.Problem.fused_loss_and_grad`) rather than two.

    Each call is at a fresh point (nothing cached). Passes are counted with ``P.op.passes``. Times
    are wall times, the median of ``repeat`` calls with their minimum and maximum; the sizes are
    timed round-robin, so a burst of load from other programs hits all sizes alike. The log–log
    slopes ``*_slope`` are fitted to the minima (such load can only lengthen a run), ``*_slope_median``
    to the medians.
    """
    out: dict = {"d": d, "repeat": repeat, "density": 0.05}
    sizes = {"dense": (None, [1_000, 4_000, 16_000, 64_000]), "sparse": (0.05, [4_000, 16_000, 64_000, 256_000])}
    problems = {k: [random_problem(n, d, seed=rng, density=dens) for n in ns] for k, (dens, ns) in sizes.items()}
    times = {k: [[] for _ in v] for k, v in problems.items()}
    passes = {k: [[] for _ in v] for k, v in problems.items()}
    for P in (P for v in problems.values() for P in v):
        P.grad(P.x_true)  # warm up (allocations)
    for _ in range(repeat):
        for kind, probs in problems.items():
            for j, P in enumerate(probs):
                x = P.x_true + 1e-3 * rng.standard_normal(d)
                before = P.op.passes
                t0 = time.perf_counter()
                P.grad(x)
                times[kind][j].append(time.perf_counter() - t0)
                passes[kind][j].append(P.op.passes - before)
    for kind, probs in problems.items():
        t = np.array(times[kind])
        nnz = np.array([P.A.nnz if sp.issparse(P.A) else P.n * P.d for P in probs])
        out[f"{kind}_n"] = np.array(sizes[kind][1])
        out[f"{kind}_nnz"] = nnz
        out[f"{kind}_time"] = np.median(t, axis=1)
        out[f"{kind}_time_min"] = t.min(axis=1)
        out[f"{kind}_time_max"] = t.max(axis=1)
        out[f"{kind}_passes"] = np.array(passes[kind])
        out[f"{kind}_one_pass"] = np.array([P.fused_loss_and_grad for P in probs])  # the compiled one-pass gradient
        out[f"{kind}_slope"] = loglog_slope(nnz, out[f"{kind}_time_min"])
        out[f"{kind}_slope_median"] = loglog_slope(nnz, out[f"{kind}_time"])
    out["kernel_rows"] = _kernels.MIN_ROWS  # fewest rows for which the compiled kernels serve
    out["passes_per_grad"] = sorted({int(p) for k in problems for p in out[f"{k}_passes"].ravel()})
    return out


#: Log–log slopes in this range are called "close to linear" by :func:`trend_word`.
LINEAR_RANGE = (0.8, 1.2)


def trend_word(slope: float, low: float = LINEAR_RANGE[0], high: float = LINEAR_RANGE[1]) -> str:
    """Word for a fitted log–log slope of time against size: the prose uses it instead of a fixed claim."""
    if slope < low:
        return "below linear"
    if slope > high:
        return "above linear"
    return "close to linear"


def plot_cost_vs_nnz(data: dict):
    fig, (ax,) = figure(width=4.8)
    for kind, marker in (("dense", "o"), ("sparse", "s")):
        t = 1e3 * data[f"{kind}_time"]
        err = [t - 1e3 * data[f"{kind}_time_min"], 1e3 * data[f"{kind}_time_max"] - t]
        ax.errorbar(data[f"{kind}_nnz"], t, yerr=err, marker=marker, capsize=3,
                    label=f"{kind} A (slope of minima {data[f'{kind}_slope']:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    nnz = np.geomspace(min(data["dense_nnz"].min(), data["sparse_nnz"].min()),
                       max(data["dense_nnz"].max(), data["sparse_nnz"].max()), 10)
    ref = 1e3 * data["dense_time"][-1] * nnz / data["dense_nnz"][-1]
    ax.loglog(nnz, ref, color="0.6", ls=":", label="slope one")
    ax.set_xlabel("nnz(A)")
    ax.set_ylabel("time of grad(x) [ms]\nmedian and range")
    ax.legend()
    return fig


def ledger_rows() -> list[dict]:
    """Ledger row for Lemma 4.1, from the chapter's registered data ("gradient-parts")."""
    g = compute("gradient-parts")
    worst = float(g["max_error"].max())
    passed = worst < g["tol"]
    return [{
        "item": "Lemma 4.1", "chapter": "gradient", "label": "lemma-4-1",
        "check": "each of the twelve parts (as the book reads them) and the full gradient against complex-step "
                 "derivatives of the naive definitions; fails if any formula were wrong",
        "evidence": f"max relative error {worst:.1e} over {g['trials']} random problems "
                    f"(n = {g['n_min']}..{g['n_max']}, d = {g['d_min']}..{g['d_max']}), {len(g['parts'])} quantities",
        "verdict": "holds" if passed else "does not hold as stated",
        "passed": bool(passed),
    }]
