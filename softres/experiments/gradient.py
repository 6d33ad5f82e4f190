"""Chapter "Gradient": Lemma 4.1 against complex-step derivatives, and the gradient's cost."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from softres.examples import random_problem
from softres.experiments._common import best_of, figure, loglog_slope
from softres.problem import Problem
from softres.reference import complex_step_jacobian, naive_loss, naive_parts


def _rel(ours, ref) -> float:
    ours, ref = np.asarray(ours), np.asarray(ref)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300))


def _part_errors(A, b, w, x) -> list[float]:
    """Relative errors of Lemma 4.1's parts at one point, in the order of :data:`PARTS`."""
    P = Problem(A, b, w)
    zero = np.zeros_like(w)
    return [
        _rel(P.jac_u(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[0], x)),
        _rel(P.grad_alpha(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[1], x)),
        _rel(P.jac_f(x), complex_step_jacobian(lambda t: naive_parts(A, b, w, t)[2], x)),
        _rel(P.grad_exp(x), complex_step_jacobian(lambda t: naive_loss(A, b, zero, t), x)),
        _rel(P.grad(x), complex_step_jacobian(lambda t: naive_loss(A, b, w, t), x)),
    ]


#: The derivatives checked, labelled with the part of Lemma 4.1 they come from.
PARTS = ["du/dx (Part 3)", "dalpha/dx (Part 4)", "df/dx (Part 6)", "dL_exp/dx (Part 8)", "dL/dx, L = L_exp + L_reg"]


def lemma_4_1_errors(rng: np.random.Generator, trials: int = 50) -> dict:
    """Largest relative error of each part of Lemma 4.1 over random problems and points.

    softres' closed forms (``jac_u``, ``grad_alpha``, ``jac_f``, ``grad_exp``, ``grad``) against
    complex-step derivatives of the naive definitions in :mod:`softres.reference`.
    """
    errors = []
    while len(errors) < trials:
        n, d = int(rng.integers(2, 40)), int(rng.integers(1, 8))
        A, b, w = rng.standard_normal((n, d)), rng.random(n) / n, rng.random(n)
        x = rng.standard_normal(d) / np.sqrt(d)
        if Problem(A, b, w).in_domain(x):
            errors.append(_part_errors(A, b, w, x))
    errors = np.array(errors)
    return {"parts": PARTS, "max_error": errors.max(axis=0), "median_error": np.median(errors, axis=0),
            "trials": trials}


def cost_vs_nnz(rng: np.random.Generator, d: int = 50, repeat: int = 5) -> dict:
    """Wall time of ``grad`` (a fresh point each call) as ``nnz(A)`` grows, dense and sparse."""
    rows = {"dense": [], "sparse": []}
    for kind, density, ns in (("dense", None, [2_000, 8_000, 32_000, 128_000]),
                              ("sparse", 0.05, [8_000, 32_000, 128_000, 512_000])):
        for n in ns:
            P = random_problem(n, d, seed=rng, density=density)
            nnz = P.A.nnz if sp.issparse(P.A) else n * d
            xs = [P.x_true + 1e-3 * rng.standard_normal(d) for _ in range(repeat)]
            it = iter(xs)
            t = best_of(lambda it=it, P=P: P.grad(next(it)), repeat)
            rows[kind].append((nnz, t))
    out = {f"{k}_{i}": np.array([r[j] for r in v]) for k, v in rows.items() for j, i in enumerate(("nnz", "time"))}
    out["dense_slope"] = loglog_slope(out["dense_nnz"], out["dense_time"])
    out["sparse_slope"] = loglog_slope(out["sparse_nnz"], out["sparse_time"])
    return out


def plot_cost_vs_nnz(data: dict):
    fig, (ax,) = figure()
    for kind, marker in (("dense", "o"), ("sparse", "s")):
        ax.loglog(data[f"{kind}_nnz"], 1e3 * data[f"{kind}_time"], marker=marker,
                  label=f"{kind} A (slope {data[f'{kind}_slope']:.2f})")
    nnz = np.geomspace(min(data["dense_nnz"].min(), data["sparse_nnz"].min()),
                       max(data["dense_nnz"].max(), data["sparse_nnz"].max()), 10)
    ref = 1e3 * data["dense_time"][-1] * nnz / data["dense_nnz"][-1]
    ax.loglog(nnz, ref, color="0.6", ls=":", label="linear in nnz(A)")
    ax.set_xlabel("nnz(A)")
    ax.set_ylabel("time of grad(x) [ms]")
    ax.legend(fontsize=8)
    return fig
