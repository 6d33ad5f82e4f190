"""Chapter "Newton": Algorithm 1 against exact Newton, Newton-CG and first-order baselines."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from softres import bounds, sketch
from softres.examples import random_problem
from softres.experiments._common import best_of, figure, loglog_slope
from softres.solvers import minimize


def _optimum(P, x0):
    """x* by exact Newton to the rounding level (checked by the gradient)."""
    res = minimize(P, x0, method="newton", tol=1e-14, maxiter=100)
    for _ in range(2):  # undamped polishing steps
        res.x = res.x - np.linalg.solve(P.hess(res.x), P.grad(res.x))
    return res.x


def _errors(P, x0, xstar, method, **kw):
    xs = [x0.copy()]
    res = minimize(P, x0, method=method, callback=xs.append, **kw)
    return np.array([np.linalg.norm(x - xstar) for x in xs]), res


RUNS = [("newton", {}), ("sketch-newton", {"eps0": 0.1}), ("sketch-newton", {"eps0": 0.3}),
        ("sketch-newton", {"eps0": 0.5}), ("newton-cg", {"eps0": 0.5}),
        ("sketch-lbfgs", {"eps0": 0.3}), ("lbfgs", {}), ("gd", {})]


def convergence(rng: np.random.Generator, n: int = 50_000, d: int = 20) -> dict:
    """``‖x_t − x*‖`` per iteration for every method from ``x₀ = 0`` on one seeded problem."""
    P = random_problem(n, d, seed=rng, w=5.0)
    x0 = np.zeros(d)
    xstar = _optimum(P, x0)
    out = {"labels": [], "n": n, "d": d, "r0": float(np.linalg.norm(xstar))}
    for method, opts in RUNS:
        label = method + (f" (eps0={opts['eps0']})" if method == "sketch-newton" else "")
        err, res = _errors(P, x0, xstar, method, tol=1e-13, maxiter=60 if method != "gd" else 400,
                           seed=rng, **opts)
        times = np.array([0.0, *res.history["time"][1:]])
        k = min(err.size, times.size)  # L-BFGS-B may call back once more than it records
        out["labels"].append(label)
        out[label], out[label + " time"] = err[:k], times[:k]
        out[label + " rows"] = np.array(res.history["hess_rows"])[:k]
    return out


def plot_convergence(data: dict):
    fig, axes = figure(2, width=4.4)
    for label in data["labels"]:
        err = np.maximum(data[label], 1e-17)
        ls = "--" if label in ("gd", "lbfgs") else "-"
        axes[0].semilogy(np.arange(err.size), err, ls, marker=".", label=label)
        axes[1].semilogy(data[label + " time"] * 1e3, err, ls, marker=".")
    axes[0].set_xlim(0, 40)
    axes[0].set_xlabel("iteration t")
    axes[0].set_ylabel(r"$\|x_t - x^*\|_2$")
    axes[1].set_xlabel("wall time [ms]")
    axes[0].legend(fontsize=7)
    return fig


def iterations_vs_eps(rng: np.random.Generator, n: int = 50_000, d: int = 20) -> dict:
    """Iterations to reach ``‖x_t − x*‖ ≤ ε`` against ``log(1/ε)``, with Theorem 9.1's count."""
    P = random_problem(n, d, seed=rng, w=5.0)
    x0 = np.zeros(d)
    xstar = _optimum(P, x0)
    r0 = float(np.linalg.norm(xstar))
    eps = np.logspace(-1, -10, 10) * r0
    out = {"eps": eps, "r0": r0, "predicted": np.array([bounds.predicted_iterations(r0, e) for e in eps])}
    for method, opts in (("newton", {}), ("sketch-newton", {"eps0": 0.1}), ("sketch-newton", {"eps0": 0.5})):
        err, _ = _errors(P, x0, xstar, method, tol=1e-14, maxiter=80, seed=rng, **opts)
        key = method + (f" (eps0={opts['eps0']})" if opts else "")
        out[key] = np.array([int(np.argmax(err <= e)) if np.any(err <= e) else -1 for e in eps])
    out["labels"] = [k for k in out if k.startswith(("newton", "sketch"))]
    return out


def plot_iterations_vs_eps(data: dict):
    fig, (ax,) = figure(width=4.8)
    x = np.log10(data["r0"] / data["eps"])
    ax.plot(x, data["predicted"], "k--", label=r"Theorem 9.1: $\lceil \log(r_0/\varepsilon)/\log 2.5\rceil$")
    for label in data["labels"]:
        ax.plot(x, data[label], "o-", label=label)
    ax.set_xlabel(r"$\log_{10}(r_0/\varepsilon)$")
    ax.set_ylabel("iterations")
    ax.legend(fontsize=7)
    return fig


def shrinking(rng: np.random.Generator, n: int = 50_000, d: int = 20, eps0: float = 0.3) -> dict:
    """Observed ``r_{t+1}/r_t`` of Algorithm 1 against Lemma A.10's factor for the achieved ε₀.

    ``l`` is ``λ_min(∇²L(x*))``; ``M`` is the largest measured Lipschitz ratio on the ball that
    holds the iterates (the paper's own ``M`` makes the bound vacuous: :func:`bounds.good_init_radius`).
    """
    P = random_problem(n, d, seed=rng, w=5.0)
    x0 = np.zeros(d)
    xstar = _optimum(P, x0)
    l = bounds.hessian_min_eig(P, xstar)
    r0 = float(np.linalg.norm(xstar))
    M = bounds.empirical_lipschitz(P, xstar, 1.05 * r0, pairs=100, rng=rng)
    x = x0.copy()
    r, achieved, bound = [r0], [], []
    H_tilde = sketch.SketchedHessian(P, eps0=eps0, delta=0.05, nonpositive="raise", seed=rng)
    for _ in range(14):
        Ht = H_tilde(x)
        e = bounds.spectral_error(P.hess(x), Ht)
        x = x - np.linalg.solve(Ht, P.grad(x))  # Definition A.9
        achieved.append(e)
        bound.append(bounds.shrinking_bound(r[-1], e, l, M) / r[-1])
        r.append(float(np.linalg.norm(x - xstar)))
        if r[-1] < 1e-12 * r0:
            break
    r = np.array(r)
    R = max(bounds.singular_values_extreme(P.A)[0], float(np.linalg.norm(xstar)))
    log10_M_paper = bounds.lipschitz_bound_M(n, R, bounds.beta(P, xstar, 1.05 * r0), log10=True)
    return {"r": r, "observed": r[1:] / r[:-1], "bound": np.array(bound), "achieved_eps": np.array(achieved),
            "l": l, "M_measured": M, "eps0": eps0, "init_radius_measured": bounds.good_init_radius(l, M), "r0": r0,
            "log10_M_paper": log10_M_paper,
            "log10_init_radius_paper": float(np.log10(0.1 * l) - log10_M_paper)}


def plot_shrinking(data: dict):
    fig, (ax,) = figure(width=4.8)
    t = np.arange(1, data["observed"].size + 1)
    ax.semilogy(t, data["observed"], "o-", label=r"observed $r_{t+1}/r_t$")
    ax.semilogy(t, data["bound"], "s--", label=r"Lemma A.10: $2(\varepsilon_0 + M r_t/(l - M r_t))$")
    ax.semilogy(t, data["achieved_eps"], ":", label=r"achieved $\varepsilon_0$ of $\tilde H$")
    ax.set_xlabel("iteration t")
    ax.legend(fontsize=7)
    return fig


def sketch_error_vs_s(rng: np.random.Generator, n: int = 100_000, d: int = 20, seeds: int = 10) -> dict:
    """Achieved spectral error of ``AᵀD̃A`` (Definition A.7) against the sample size ``s``."""
    P = random_problem(n, d, seed=rng, w=5.0)
    x = P.x_true
    D = P.hess_diag(x)
    exact = P.gram(D)
    eps0s = np.array([0.8, 0.5, 0.3, 0.2, 0.14, 0.1])
    s = np.array([sketch.sample_size(d, e, 0.05) for e in eps0s])
    errs = np.array([[bounds.spectral_error(exact, sketch.sampled_gram(P.A, sketch.sparsify_diagonal(
        P.A, D, eps0=e, delta=0.05, rng=rng))) for _ in range(seeds)] for e in eps0s])
    fails = int(np.sum(errs > eps0s[:, None]))
    return {"eps0": eps0s, "s": s, "errors": errs, "n": n, "d": d, "slope": loglog_slope(s, errs.mean(axis=1)),
            "met": 1 - fails / errs.size, "fails": fails, "draws": int(errs.size),
            # chance of at least this many failures if each draw failed with probability exactly δ
            "binom_p": float(binom.sf(fails - 1, errs.size, 0.05))}


def plot_sketch_error_vs_s(data: dict):
    fig, (ax,) = figure(width=4.8)
    for j in range(data["errors"].shape[1]):
        ax.loglog(data["s"], data["errors"][:, j], ".", color="C0", alpha=0.5)
    ax.loglog(data["s"], data["errors"].mean(axis=1), "o-", color="C0", label="achieved (each seed, mean)")
    ax.loglog(data["s"], data["eps0"], "k--",
              label=r"target $\varepsilon_0$, $s = \lceil\varepsilon_0^{-2} d \log(d/\delta)\rceil$")
    ax.set_xlabel("sampled rows s")
    ax.set_ylabel(r"$\max_i |\lambda_i(H^{-1/2}\tilde H H^{-1/2}) - 1|$")
    ax.legend(fontsize=7)
    return fig


def cost_per_iteration(rng: np.random.Generator, d: int = 100, repeat: int = 2) -> dict:
    """Wall time of one iteration's Hessian work, exact against sketched, as ``n`` grows."""
    ns = np.array([20_000, 60_000, 200_000])
    exact, sketched = [], []
    for n in ns:
        P = random_problem(int(n), d, seed=rng, w=5.0)
        x = P.x_true
        H_tilde = sketch.SketchedHessian(P, eps0=0.5, delta=0.05, nonpositive="raise", seed=rng)
        exact.append(best_of(lambda P=P, x=x: P.hess(x), repeat))
        sketched.append(best_of(lambda H_tilde=H_tilde, x=x: H_tilde(x), repeat))
    exact, sketched = np.array(exact), np.array(sketched)
    return {"n": ns, "d": d, "exact": exact, "sketched": sketched, "ratio": exact / sketched,
            "slope_exact": loglog_slope(ns, exact), "slope_sketched": loglog_slope(ns, sketched)}


def plot_cost_per_iteration(data: dict):
    fig, (ax,) = figure(width=4.8)
    ax.loglog(data["n"], 1e3 * data["exact"], "o-", label=f"exact Hessian (slope {data['slope_exact']:.2f})")
    ax.loglog(data["n"], 1e3 * data["sketched"], "s-", label=f"sketched Hessian (slope {data['slope_sketched']:.2f})")
    ax.set_xlabel("n")
    ax.set_ylabel(f"time per iteration's Hessian [ms], d = {data['d']}")
    ax.legend(fontsize=7)
    return fig
