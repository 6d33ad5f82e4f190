"""Chapter "Hessian": Lemma 5.2 against hyper-dual derivatives, Lemma 5.4's structure, and cost."""

from __future__ import annotations

import numpy as np

from softres.examples import random_problem
from softres.experiments._common import best_of, figure, loglog_slope
from softres.problem import Problem
from softres.reference import hyperdual_hessian, naive_loss


def _rel(ours, ref) -> float:
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-300))


def lemma_5_2_errors(rng: np.random.Generator, trials: int = 30) -> dict:
    """Relative errors of ``hess``, ``hessp`` and ``B`` against exact hyper-dual second derivatives.

    ``B(x)`` is checked as the Hessian of ``½‖f(z) − b‖²`` in ``z = Ax`` (Lemma 5.2 with ``A = I``).
    """
    rows = []
    while len(rows) < trials:
        n, d = int(rng.integers(2, 30)), int(rng.integers(1, 6))
        A, b, w = rng.standard_normal((n, d)), rng.random(n) / n, rng.random(n)
        x = rng.standard_normal(d) / np.sqrt(d)
        P = Problem(A, b, w)
        if not P.in_domain(x):
            continue
        H = hyperdual_hessian(lambda t, A=A, b=b, w=w: naive_loss(A, b, w, t), x)
        s = rng.standard_normal(d)
        z = A @ x
        Bref = hyperdual_hessian(lambda t, n=n, b=b: naive_loss(np.eye(n), b, np.zeros(n), t), z)
        rows.append([_rel(P.hess(x), H), _rel(P.hessp(x, s), H @ s), _rel(P.B(x), Bref)])
    rows = np.array(rows)
    return {"parts": ["Hessian of L (Lemma 5.2)", "Hessian-vector product", "B(x) (Definition 5.1, Lemma 5.4)"],
            "max_error": rows.max(axis=0), "median_error": np.median(rows, axis=0), "trials": trials}


def structure(rng: np.random.Generator, n: int = 30, d: int = 4) -> dict:
    """``B(x)``, its diagonal part and its rank-two part (Lemma 5.4) at a random point."""
    P = random_problem(n, d, seed=rng, w=None)
    x = P.x_true
    U, C = P.B_rank(x)
    B_rank = U @ C @ U.T
    B_diag = np.diag(P.B_diag(x))
    # Independent B: the exact Hessian of ½‖f(z) − b‖² in z = Ax, by hyper-dual numbers.
    B = hyperdual_hessian(lambda t: naive_loss(np.eye(n), P.b, np.zeros(n), t), np.asarray(P.A @ x))
    eig = np.linalg.eigvalsh(B_rank)
    return {"B": B, "B_diag": B_diag, "B_rank": B_rank, "rank_eigs": eig,
            "rank": int(np.sum(np.abs(eig) > 1e-10 * np.abs(eig).max())),
            "reconstruction": _rel(B_diag + B_rank, B)}


def plot_structure(data: dict):
    fig, axes = figure(4, width=3.0, height=2.9)
    lim = np.abs(data["B"]).max()
    for ax, key, title in zip(axes, ("B", "B_diag", "B_rank"),
                              (r"$B(x)$", r"$B_{\mathrm{diag}}(x)$", r"$B_{\mathrm{rank}}(x)$"), strict=False):
        ax.imshow(data[key], cmap="RdBu", vmin=-lim, vmax=lim)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    eig = np.sort(np.abs(data["rank_eigs"]))[::-1]
    axes[3].semilogy(np.arange(1, eig.size + 1), np.maximum(eig, 1e-300), "o", ms=3)
    axes[3].set_title(r"$|\lambda_i(B_{\mathrm{rank}})|$")
    axes[3].set_xlabel("i")
    axes[3].set_ylim(max(eig.min(), 1e-40) / 10, eig.max() * 10)
    return fig


def cost_vs_n(rng: np.random.Generator, d: int = 50, repeat: int = 3) -> dict:
    """Time of ``hess`` (Gram product + rank-two update) against ``d`` calls of ``hessp``."""
    ns = np.array([2_000, 8_000, 32_000, 128_000])
    t_hess, t_prod = [], []
    for n in ns:
        P = random_problem(int(n), d, seed=rng, w=3.0)
        x = P.x_true
        P.hessp(x, np.ones(d))  # state and its lazy parts computed once, as inside a solver
        eye = np.eye(d)
        t_hess.append(best_of(lambda P=P, x=x: P.hess(x), repeat))
        t_prod.append(best_of(lambda P=P, x=x, eye=eye: np.column_stack([P.hessp(x, e) for e in eye]), repeat))
    t_hess, t_prod = np.array(t_hess), np.array(t_prod)
    return {"n": ns, "d": d, "hess": t_hess, "products": t_prod, "speedup": t_prod / t_hess,
            "slope_hess": loglog_slope(ns, t_hess), "slope_products": loglog_slope(ns, t_prod)}


def plot_cost_vs_n(data: dict):
    fig, (ax,) = figure()
    ax.loglog(data["n"], 1e3 * data["hess"], "o-", label=r"hess: $A^\top D A$ + rank 2")
    ax.loglog(data["n"], 1e3 * data["products"], "s-", label=f"{data['d']} Hessian-vector products")
    ax.set_xlabel("n")
    ax.set_ylabel("time [ms]")
    ax.legend(fontsize=8)
    return fig
