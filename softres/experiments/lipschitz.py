"""Chapter "Lipschitz": measured Lipschitz ratios of the Hessian against Lemma 8.1's bound."""

from __future__ import annotations

import numpy as np

from softres import bounds
from softres.experiments._common import figure
from softres.problem import Problem


def _case(rng: np.random.Generator, n: int, d: int, radius: float, w: float, pairs: int) -> tuple[float, ...]:
    """(empirical ratio, paper's M, R, β) for a random problem on the ball of ``radius`` around 0."""
    A = rng.standard_normal((n, d)) / np.sqrt(n)
    P = Problem(A, rng.dirichlet(np.ones(n)), w)
    R = max(bounds.singular_values_extreme(A)[0], radius)
    beta = bounds.beta(P, np.zeros(d), radius)
    emp = bounds.empirical_lipschitz(P, np.zeros(d), radius, pairs=pairs, rng=rng)
    return emp, bounds.lipschitz_bound_M(n, R, beta), R, beta


def ratio_vs_bound(rng: np.random.Generator, d: int = 3, pairs: int = 300) -> dict:
    """Largest ``‖∇²L(x) − ∇²L(y)‖/‖x − y‖`` over pairs in a ball, and Lemma 8.1's ``M``.

    Two sweeps: ``n`` at radius 1, and the radius (hence ``R`` and ``β``) at ``n = 20``.
    """
    out: dict = {}
    for key, values in (("n", [5, 10, 20, 40, 80]), ("radius", [0.25, 0.5, 1.0, 1.5, 2.0])):
        rows = [_case(rng, v if key == "n" else 20, d, 1.0 if key == "n" else v, 0.1, pairs) for v in values]
        emp, M, R, beta = (np.array(c) for c in zip(*rows, strict=True))
        out[key] = np.array(values, dtype=float)
        out[f"{key}_emp"], out[f"{key}_M"], out[f"{key}_R"], out[f"{key}_beta"] = emp, M, R, beta
    looseness = np.concatenate([out["n_M"] / out["n_emp"], out["radius_M"] / out["radius_emp"]])
    out["looseness_min"], out["looseness_max"] = float(looseness.min()), float(looseness.max())
    out["violations"] = int(np.sum(looseness < 1))
    return out


def plot_ratio_vs_bound(data: dict):
    fig, axes = figure(2, width=4.2)
    for ax, key, label in zip(axes, ("n", "radius"), ("n (radius 1)", r"radius $\rho$ (n = 20)"), strict=True):
        ax.semilogy(data[key], data[f"{key}_M"], "s--", label=r"Lemma 8.1: $M = 20\beta^{-5} n^{3.5} e^{8R^2}$")
        ax.semilogy(data[key], data[f"{key}_emp"], "o-", label="measured max ratio")
        ax.set_xlabel(label)
        if key == "n":
            ax.set_xscale("log")
    axes[0].set_ylabel(r"$\|\nabla^2 L(x) - \nabla^2 L(y)\| / \|x - y\|$")
    axes[0].legend(fontsize=7)
    return fig
