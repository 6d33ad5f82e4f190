"""Chapter "What the shortcut changes": the unified unit ``e^z + γz`` against its parts, on the same draws.

The paper's model (Definition 1.4) adds the identity shortcut ``z`` of a residual block to softmax
regression's unit ``e^z`` (Definition 1.1, :cite:`deng2023softmax`). Walking ``γ`` from 0 (softmax) to 1
(the paper's unit), and adding the shortcut alone (``φ(z) = z``), every measurement below is made on
the same ``(A, b, x)`` draws for every unit, so a difference between units is the shortcut's doing:

* :func:`unit_derivatives`: the unit-general gradient and Hessian (our lemma generalising Lemmas 4.1
  and 5.4) against complex-step and hyper-dual references, for every unit;
* :func:`domain`: how often ``α(x) ≤ 0`` and the lower bound ``β`` of ``α`` on balls (Lemma 7.1's ``β``);
* :func:`indefiniteness`: how often ``∇²L_exp`` is indefinite, and the PSD threshold ``w*`` per point
  against ``α/n`` (where the tail lives);
* :func:`lipschitz_ratio`: sampled Hessian Lipschitz ratios (lower bounds on Lemma 8.1's constant)
  against ``n`` and against the distance to the pole ``α = 0``;
* :func:`solvers`: the minimiser of ``L_exp`` per unit (``λ_min``, ``κ`` of the Hessian there), and
  Newton, Algorithm 1 and gradient descent from random starts (iterations, failures, basin);
* :func:`ledger_rows`: verdicts on which conclusions are the shortcut's, which are softmax's.

Data functions take a ``numpy.random.Generator`` and return plain dicts; ``plot_*`` draw them.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize as scipy_minimize

from softres import reference
from softres.experiments._common import figure
from softres.figures import compute
from softres.problem import Problem
from softres.solvers import minimize
from softres.units import SHORTCUT, SOFTMAX, UNIFIED, Unit, unified

#: The units compared, by key: softmax (γ = 0), two intermediate γ, the paper's unit (γ = 1), the shortcut alone.
UNITS: dict[str, Unit] = {
    "softmax": SOFTMAX,
    "gamma=0.25": unified(0.25),
    "gamma=0.5": unified(0.5),
    "unified": UNIFIED,
    "shortcut": SHORTCUT,
}
#: The percentile above which a PSD threshold w* counts as the tail ("the top 1%").
TOP_PERCENTILE = 99.0
#: Labels for figures and tables.
LABELS = {"softmax": r"softmax ($\gamma=0$)", "gamma=0.25": r"$\gamma=0.25$", "gamma=0.5": r"$\gamma=0.5$",
          "unified": r"unified ($\gamma=1$)", "shortcut": r"shortcut alone ($z$)"}
#: The ``γ`` of each key (``nan`` for the shortcut alone, which is not of the form ``e^z + γz``).
GAMMA = {"softmax": 0.0, "gamma=0.25": 0.25, "gamma=0.5": 0.5, "unified": 1.0, "shortcut": math.nan}
EXP_KEYS = ["softmax", "gamma=0.25", "gamma=0.5", "unified"]

#: Pairs with ``α/n`` at most this count as near the pole in the Lipschitz verdict (ours).
POLE_SPLIT = 1.0

#: ``∇²L_exp`` counts as indefinite when ``λ_min < −INDEF_TOL · max|λ|`` (rounding is far below this).
INDEF_TOL = 1e-10


def _draw(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``A ~ N(0, 1)^{n×d}``, ``b`` uniform on the simplex (a probability vector, like ``f``)."""
    return rng.standard_normal((n, d)), rng.dirichlet(np.ones(n))


def _log_ticks(ax, values) -> None:
    """A log x axis labelled at ``values`` only (no overlapping minor labels)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(list(values), [f"{v:g}" for v in values])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _color(key: str) -> str:
    return {"softmax": "C0", "gamma=0.25": "C2", "gamma=0.5": "C4", "unified": "C3", "shortcut": "C7"}[key]


# ---------------------------------------------------------------------------------------------- lemma
def _reference_unit(unit: Unit) -> tuple[str, float]:
    """The name and ``γ`` of ``unit`` for :func:`softres.reference.naive_loss`."""
    if unit.kind == "exp":
        return ("softmax", 0.0) if unit.gamma == 0 else ("unified", unit.gamma)
    return {"linear": "shortcut"}.get(unit.kind, unit.kind), 0.0


def unit_derivatives(rng: np.random.Generator, trials: int = 4, n: int = 12, d: int = 4) -> dict[str, Any]:
    """Gradient and Hessian of every unit against independent references (our lemma; Lemmas 4.1, 5.4).

    For each unit (the five of :data:`UNITS` plus ``cosh`` and ``sinh`` of Definition 1.3) and each
    trial: ``A ~ N(0, 1)``, ``b`` on the simplex, ``w ~ U(0, 1)``, ``x ~ N(0, I/d)`` (its sign flipped,
    or redrawn, until ``α(x) > 0``). Relative errors of ``grad`` against a complex-step gradient of
    :func:`softres.reference.naive_loss`, and of ``hess`` and ``hessp`` (both built from the
    diagonal-plus-rank-two form with ``v = φ'(z)``, ``φ''(z)``) against its hyper-dual Hessian.
    """
    from softres.units import COSH, SINH

    units = {**UNITS, "cosh": COSH, "sinh": SINH}
    grad_err = {k: [] for k in units}
    hess_err = {k: [] for k in units}
    for _ in range(trials):
        A, b = _draw(rng, n, d)
        w = rng.random(n)
        for key, unit in units.items():
            P = Problem(A, b, w, unit=unit)
            x = rng.standard_normal(d) / np.sqrt(d)
            while not P.in_domain(x):
                x = -x if P.in_domain(-x) else rng.standard_normal(d) / np.sqrt(d)
            name, gamma = _reference_unit(unit)

            def fun(t, A=A, b=b, w=w, name=name, gamma=gamma):
                return reference.naive_loss(A, b, w, t, name, gamma)

            g_ref = reference.complex_step_jacobian(fun, x)
            H_ref = reference.hyperdual_hessian(fun, x)
            s = rng.standard_normal(d)
            grad_err[key].append(float(np.linalg.norm(P.grad(x) - g_ref) / np.linalg.norm(g_ref)))
            scale = np.linalg.norm(H_ref, 2)
            hess_err[key].append(float(max(np.linalg.norm(P.hess(x) - H_ref, 2) / scale,
                                           np.linalg.norm(P.hessp(x, s) - H_ref @ s) / (scale * np.linalg.norm(s)))))
    return {"units": list(units), "grad": {k: np.array(v) for k, v in grad_err.items()},
            "hess": {k: np.array(v) for k, v in hess_err.items()}, "trials": trials, "n": n, "d": d,
            "tol": 1e-10}


def plot_unit_derivatives(data: dict):
    fig, (ax,) = figure(width=6.0)
    keys = data["units"]
    for j, (kind, marker) in enumerate((("grad", "o"), ("hess", "s"))):
        for i, k in enumerate(keys):
            y = np.maximum(data[kind][k], 1e-18)  # an exact zero error is drawn at 1e-18
            ax.semilogy(np.full(y.size, i + (j - 0.5) * 0.25), y, marker, ms=4, color=f"C{j}",
                        label=("gradient vs complex step" if kind == "grad" else "Hessian, hessp vs hyper-dual")
                        if i == 0 else None)
    ax.axhline(data["tol"], color="0.4", ls=":", lw=1, label="tolerance of the check")
    ax.set_xticks(range(len(keys)), [k.replace("gamma=", "γ=") for k in keys], rotation=20)
    ax.set_xlabel("unit φ")
    ax.set_ylabel("relative error (0 drawn at 1e-18)")
    ax.legend(loc="center right")
    return fig


# ---------------------------------------------------------------------------------------------- (i) domain
def beta_on_ball(A: np.ndarray, unit: Unit, radius: float) -> float:
    """``β = min{α(x) : ‖x‖₂ ≤ radius}`` with ``α(x) = Σ_i φ((Ax)_i)`` (the ``β`` of Lemma 7.1).

    ``α`` is convex for every unit of :data:`UNITS` (a sum of convex functions of ``Ax``), so the
    minimum is found by SLSQP with exact gradients from ``x = 0``. Same value as
    :func:`softres.bounds.beta` (``tests/test_shortcut.py``), about a hundred times faster at ``d = 4``.
    """
    def fun(x):
        z = A @ x
        return float(unit(z).sum()), A.T @ unit.derivative(z)

    cons = {"type": "ineq", "fun": lambda x: radius**2 - x @ x, "jac": lambda x: -2 * x}
    res = scipy_minimize(fun, np.zeros(A.shape[1]), jac=True, method="SLSQP", constraints=[cons],
                         options={"ftol": 1e-12, "maxiter": 200})
    x = res.x if res.x @ res.x <= radius**2 else res.x * (radius / np.linalg.norm(res.x))
    return float(unit(A @ x).sum())


def domain(rng: np.random.Generator, n: int = 10, d: int = 4, draws: int = 2000, beta_draws: int = 10,
           radii: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)) -> dict[str, Any]:
    """How often ``α(x) ≤ 0``, and ``β = min α`` on balls ``‖x‖ ≤ ρ`` (the ``β`` of Lemma 7.1), per unit.

    Each draw is ``(A, b)`` and, per radius ρ, one point uniform in the ball of radius ρ; every unit sees
    the same points. ``β`` is computed by :func:`beta_on_ball` on the first ``beta_draws`` draws.
    """
    radii = np.asarray(radii, float)
    outside = {k: np.zeros((draws, radii.size), bool) for k in UNITS}
    beta = {k: np.empty((beta_draws, radii.size)) for k in UNITS}
    for t in range(draws):
        A, _ = _draw(rng, n, d)
        u = rng.standard_normal((d, radii.size))
        X = u / np.linalg.norm(u, axis=0) * radii * rng.random(radii.size) ** (1 / d)
        Z = A @ X
        for k, unit in UNITS.items():
            outside[k][t] = unit(Z).sum(axis=0) <= 0
        if t < beta_draws:
            for k, unit in UNITS.items():
                beta[k][t] = [beta_on_ball(A, unit, r) for r in radii]
    return {"radii": radii, "outside": {k: v.mean(axis=0) for k, v in outside.items()},
            "outside_count": {k: v.sum(axis=0) for k, v in outside.items()},
            "beta_over_n": {k: v / n for k, v in beta.items()}, "n": n, "d": d, "draws": draws,
            "beta_draws": beta_draws}


def plot_domain(data: dict):
    fig, (ax1, ax2) = figure(2, width=4.3)
    r = data["radii"]
    for k in UNITS:
        ax1.plot(r, 100 * data["outside"][k], "o-", color=_color(k), label=LABELS[k])
        bb = data["beta_over_n"][k]
        med = np.median(bb, axis=0)
        ax2.plot(r, med, "o-", color=_color(k), label=LABELS[k])
        ax2.fill_between(r, bb.min(axis=0), bb.max(axis=0), color=_color(k), alpha=0.15)
    for ax in (ax1, ax2):
        _log_ticks(ax, r)
        ax.set_xlabel(r"radius $\rho$ of the ball $\|x\|_2 \leq \rho$")
    ax1.set_ylabel(r"% of points with $\alpha(x) \leq 0$")
    ax2.axhline(0, color="0.4", lw=0.8)
    ax2.set_yscale("symlog", linthresh=0.1)
    ax2.set_ylabel(r"$\beta / n$ (median, band: range over draws)")
    ax1.legend()
    return fig


# ---------------------------------------------------------------------------------------------- (ii) PSD
def hess_exp_small(P: Problem, x: np.ndarray) -> np.ndarray:
    """``∇²L_exp(x) = Aᵀ B(x) A`` (Lemma 5.2) from the ``n × n`` matrix ``P.B(x)``, for small dense ``A``.

    The same matrix as ``P.hess_exp(x)`` (``tests/test_shortcut.py`` checks it); at ``n ≤ 100`` the dense
    product is cheaper than the structured Gram product, which pays off only for large ``n``.
    """
    return P.A.T @ P.B(x) @ P.A


def psd_threshold(H: np.ndarray, inv_chol_gram: np.ndarray) -> tuple[float, float]:
    """``(μ_min/max|μ|, w*)`` for ``H = ∇²L_exp(x)``: the pencil's relative smallest eigenvalue and the PSD threshold.

    ``w*`` is the smallest uniform ``w`` with ``∇²L(x) = Aᵀ(B(x) + w²I)A ⪰ 0`` (Lemma 7.1's question
    at one point): ``w*² = −μ_min`` with ``μ`` the eigenvalues of the pencil ``(AᵀB(x)A, AᵀA)``, that is
    of ``L⁻¹ H L⁻ᵀ`` with ``AᵀA = LLᵀ`` (``inv_chol_gram`` is ``L⁻¹``). By Sylvester's law of inertia
    ``μ_min`` has the sign of ``λ_min(H)``; ``H`` counts as indefinite, and ``w* > 0``, when
    ``μ_min < −INDEF_TOL · max|μ|``.
    """
    mu = np.linalg.eigvalsh(inv_chol_gram @ H @ inv_chol_gram.T)
    rel = float(mu[0] / np.abs(mu).max())
    return rel, (float(math.sqrt(-mu[0])) if rel < -INDEF_TOL else 0.0)


def indefiniteness(rng: np.random.Generator, n: int = 10, d: int = 4, draws: int = 400, points: int = 4,
                   boot: int = 400) -> dict[str, Any]:
    """Indefiniteness of ``∇²L_exp`` and the PSD threshold ``w*`` at random points, per unit, same draws.

    Each of ``draws`` draws is ``A ~ N(0, 1)``, ``b`` on the simplex and ``points`` points
    ``x ~ N(0, I/d)`` (as in the PSD chapter); every unit sees the same points. Per unit and point:
    whether ``x`` is in the domain, ``μ_min/max|μ|`` and ``w*`` (:func:`psd_threshold`), ``α(x)/n``.
    Quantiles of ``w*`` (over in-domain points, ``w* = 0`` included) with bootstrap ranges (``boot``
    resamples, 5-95%), and the median ``α/n`` of the points in the top 1% of ``w*``. For the shortcut
    alone, also ``|xᵀ∇²L_exp(x) x| / (‖∇²L_exp(x)‖ ‖x‖²)`` (zero: ``L_exp`` is constant along rays, so its
    second derivative along the ray is zero and the Hessian cannot be positive definite).
    """
    keys = list(UNITS)
    total = draws * points
    rel = {k: np.full(total, np.nan) for k in keys}
    wstar = {k: np.full(total, np.nan) for k in keys}
    a_n = {k: np.full(total, np.nan) for k in keys}
    ray = []
    for t in range(draws):
        A, b = _draw(rng, n, d)
        X = rng.standard_normal((points, d)) / np.sqrt(d)
        inv_chol = np.linalg.inv(np.linalg.cholesky(A.T @ A))  # numpy's LAPACK: scipy's stalls when cores are busy
        for k in keys:
            P = Problem(A, b, unit=UNITS[k])
            a_n[k][t * points:(t + 1) * points] = UNITS[k](A @ X.T).sum(axis=0) / n
            for j, x in enumerate(X):
                i = t * points + j
                if P.in_domain(x):
                    H = hess_exp_small(P, x)
                    rel[k][i], wstar[k][i] = psd_threshold(H, inv_chol)
                    if k == "shortcut":
                        ray.append(abs(x @ H @ x) / (np.linalg.norm(H, 2) * (x @ x)))
    qs = np.array([50.0, 90.0, 99.0, 100.0])
    out: dict[str, Any] = {"n": n, "d": d, "draws": draws, "points": points, "total": total, "boot": boot,
                           "q": qs, "rel": rel, "wstar": wstar, "alpha_n": a_n, "summary": {},
                           "ray_max": float(np.max(ray))}
    for k in keys:
        ok = np.isfinite(wstar[k])
        w, al = wstar[k][ok], a_n[k][ok]
        indef = rel[k][ok] < -INDEF_TOL
        quant = np.percentile(w, qs)
        bs = np.percentile(w[rng.integers(0, w.size, (boot, w.size))], qs, axis=1)  # (4, boot)
        top = w >= np.percentile(w, TOP_PERCENTILE)
        frac = float(indef.mean())
        out["summary"][k] = {
            "in_domain": int(ok.sum()), "indefinite": frac,
            "indefinite_se": float(math.sqrt(frac * (1 - frac) / ok.sum())),
            "quantiles": quant, "q_lo": np.percentile(bs, 5, axis=1), "q_hi": np.percentile(bs, 95, axis=1),
            "alpha_n_median": float(np.median(al)), "alpha_n_top1": float(np.median(al[top])),
            "top1_count": int(top.sum()),
        }
    # paired: the same points for softmax and the unified unit (both in the domain)
    both = np.isfinite(rel["unified"]) & np.isfinite(rel["softmax"])
    iu, is_ = rel["unified"][both] < -INDEF_TOL, rel["softmax"][both] < -INDEF_TOL
    out["paired"] = {"points": int(both.sum()), "both": int(np.sum(iu & is_)), "unified_only": int(np.sum(iu & ~is_)),
                     "softmax_only": int(np.sum(~iu & is_)), "neither": int(np.sum(~iu & ~is_))}
    return out


def plot_wstar(data: dict):
    keys = ["softmax", "gamma=0.5", "unified", "shortcut"]
    fig, axes = figure(len(keys), width=3.0, height=3.2)
    lo = min(np.nanmin(np.where(data["wstar"][k] > 0, data["wstar"][k], np.nan)) for k in keys)
    hi = max(np.nanmax(data["wstar"][k]) for k in keys)
    floor = lo / 4  # w* = 0 (a PSD Hessian) is drawn on this line
    xmin = min(np.nanmin(np.where(data["alpha_n"][k] > 0, data["alpha_n"][k], np.nan)) for k in keys)
    xmax = max(np.nanmax(data["alpha_n"][k]) for k in keys)
    for ax, k in zip(axes, keys, strict=True):
        ok = np.isfinite(data["wstar"][k])
        w, al = data["wstar"][k][ok], data["alpha_n"][k][ok]
        pos = w > 0
        ax.loglog(al[pos], w[pos], ".", ms=2, color=_color(k), alpha=0.4, label=r"indefinite: $w^*$")
        ax.loglog(al[~pos], np.full((~pos).sum(), floor), "|", ms=5, color="0.3", alpha=0.4,
                  label=r"PSD ($w^* = 0$), on the bottom line")
        top = w >= np.percentile(w, TOP_PERCENTILE)
        ax.loglog(al[top], np.maximum(w[top], floor), "o", mfc="none", ms=5, color="k",
                  label=rf"top {100 - TOP_PERCENTILE:g}% of $w^*$")
        ax.set_title(LABELS[k])
        ax.set_xlabel(r"$\alpha(x)/n$ (distance to the pole)")
        ax.set_xlim(xmin / 1.5, xmax * 1.5)
        ax.set_ylim(floor / 2, hi * 2)
    axes[0].set_ylabel(r"PSD threshold $w^*$ at $x$")
    axes[0].legend(loc="upper right")
    return fig


# ---------------------------------------------------------------------------------------------- (iii) Lipschitz
def lipschitz_ratio(rng: np.random.Generator, ns: tuple[int, ...] = (5, 10, 20, 40, 80), d: int = 4,
                    pairs: int = 100, step: float = 1e-2) -> dict[str, Any]:
    """Sampled Hessian Lipschitz ratios ``‖∇²L(x) − ∇²L(y)‖₂ / ‖x − y‖₂`` (lower bounds on Lemma 8.1's constant).

    Per ``n`` and pair: ``A ~ N(0, 1)``, ``b`` on the simplex, ``x ~ N(0, I/d)``, ``y = x + step·u``
    with ``u`` a random unit vector (the regulariser's Hessian is constant, so ``L_exp`` suffices).
    Pairs with ``x`` or ``y`` outside the domain of a unit are counted, not used, for that unit.
    """
    keys = list(UNITS)
    ratio = {k: np.full((len(ns), pairs), np.nan) for k in keys}
    a_n = {k: np.full((len(ns), pairs), np.nan) for k in keys}
    for i, n in enumerate(ns):
        for t in range(pairs):
            A, b = _draw(rng, n, d)
            x = rng.standard_normal(d) / np.sqrt(d)
            u = rng.standard_normal(d)
            y = x + step * u / np.linalg.norm(u)
            for k in keys:
                P = Problem(A, b, unit=UNITS[k])
                if P.in_domain(x) and P.in_domain(y):
                    ratio[k][i, t] = np.linalg.norm(hess_exp_small(P, x) - hess_exp_small(P, y), 2) / step
                    a_n[k][i, t] = min(P.alpha(x), P.alpha(y)) / n
    summary = {k: {"median": np.nanmedian(ratio[k], axis=1), "max": np.nanmax(ratio[k], axis=1),
                   "used": np.isfinite(ratio[k]).sum(axis=1)} for k in keys}
    return {"ns": np.array(ns), "d": d, "pairs": pairs, "step": step, "ratio": ratio, "alpha_n": a_n,
            "summary": summary}


def pole_bins(data: dict, key: str, edges: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, np.inf)) -> dict[str, np.ndarray]:
    """Median and count of the Lipschitz ratios of ``key`` (all ``n``) by bins of ``α/n``, and the bins."""
    r, a = data["ratio"][key].ravel(), data["alpha_n"][key].ravel()
    ok = np.isfinite(r)
    r, a = r[ok], a[ok]
    med, cnt = [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (a > lo) & (a <= hi)
        cnt.append(int(sel.sum()))
        med.append(float(np.median(r[sel])) if sel.any() else math.nan)
    return {"edges": np.array(edges), "median": np.array(med), "count": np.array(cnt)}


def plot_lipschitz(data: dict):
    fig, (ax1, ax2) = figure(2, width=4.3)
    ns = data["ns"]
    for k in UNITS:
        s = data["summary"][k]
        ax1.loglog(ns, s["median"], "o-", color=_color(k))
        ax1.loglog(ns, s["max"], "^:", color=_color(k), ms=4)
        r, a = data["ratio"][k].ravel(), data["alpha_n"][k].ravel()
        ok = np.isfinite(r) & (r > 0)
        ax2.loglog(a[ok], r[ok], ".", ms=2, alpha=0.3, color=_color(k))
    _log_ticks(ax1, ns)
    ax1.set_xlabel("n (rows of A)")
    ax1.set_ylabel("Hessian Lipschitz ratio (o median, ^ max)")
    for k in UNITS:
        ax2.plot([], [], "o", color=_color(k), label=LABELS[k])
    ax2.legend(loc="upper right")
    ax2.set_xlabel(r"$\min(\alpha(x), \alpha(y))/n$ (distance to the pole)")
    ax2.set_ylabel("Hessian Lipschitz ratio (all n)")
    return fig


# ---------------------------------------------------------------------------------------------- (iv), (v) solvers
#: The methods compared in (v): exact Newton, the paper's Algorithm 1 to the letter, gradient descent.
SOLVERS = {"newton": {}, "sketch-newton": {"nonpositive": "raise"}, "gd": {}}


def solvers(rng: np.random.Generator, n: int = 10, d: int = 4, seeds: int = 30, starts: int = 4,
            radius: float = 2.0, tol: float = 1e-8, maxiter: dict[str, int] | None = None,
            gd_starts: int = 2) -> dict[str, Any]:
    """The minimiser of ``L_exp`` per unit (``λ_min``, ``κ`` of the Hessian there), and the solvers' basins.

    Per seed: ``A ~ N(0, 1)``, ``b`` on the simplex, ``w = 0``, and ``starts`` points uniform in the ball
    of radius ``radius`` (the same for every unit and method). For each ``e^z + γz`` unit, every method
    of :data:`SOLVERS` runs from every start (gradient descent, the slowest, from the first ``gd_starts``
    of them only; a start outside the unit's domain counts as a failure with status 3). The reference
    minimiser ``x*`` is the converged point of lowest loss over all runs and a Newton run from ``x = 0``,
    kept if ``∇²L_exp(x*)`` is positive definite. A run *reaches the minimiser* when it converges
    (status 0) within ``1e-4 max(1, ‖x*‖)`` of ``x*``; a run that converges elsewhere, to a point with a
    positive definite Hessian and a higher loss, found a spurious local minimum. The shortcut alone is
    left out: its ``L_exp`` is constant along rays, so it has no isolated minimiser.
    """
    maxiter = {"newton": 100, "sketch-newton": 100, "gd": 250, **(maxiter or {})}
    keys = EXP_KEYS
    n_starts = {m: (min(gd_starts, starts) if m == "gd" else starts) for m in SOLVERS}
    runs = {k: {m: {"status": np.zeros((seeds, n_starts[m]), int), "nit": np.zeros((seeds, n_starts[m]), int),
                    "reached": np.zeros((seeds, n_starts[m]), bool), "spurious": np.zeros((seeds, n_starts[m]), bool)}
                for m in SOLVERS} for k in keys}
    at_min = {k: {"lam_min_rel": np.full(seeds, np.nan), "lam_min": np.full(seeds, np.nan),
                  "kappa": np.full(seeds, np.nan),
                  "norm": np.full(seeds, np.nan), "loss": np.full(seeds, np.nan)} for k in keys}
    for s in range(seeds):
        A, b = _draw(rng, n, d)
        u = rng.standard_normal((starts, d))
        X0 = u / np.linalg.norm(u, axis=1, keepdims=True) * radius * rng.random((starts, 1)) ** (1 / d)
        for k in keys:
            P = Problem(A, b, unit=UNITS[k])
            results = {m: [minimize(P, x0, method=m, tol=tol, maxiter=maxiter[m], seed=s, **opts)
                           if P.in_domain(x0) else None for x0 in X0[:n_starts[m]]] for m, opts in SOLVERS.items()}
            cands = [r for rs in results.values() for r in rs if r is not None and r.status == 0]
            cands.append(minimize(P, np.zeros(d), method="newton", tol=tol))
            cands = sorted((r for r in cands if r.status == 0), key=lambda r: r.fun)
            xstar = None
            for r in cands:
                lam = np.linalg.eigvalsh(P.hess_exp(r.x))
                if lam[0] > 0:
                    xstar = r.x
                    at_min[k]["lam_min_rel"][s] = lam[0] / lam[-1]
                    at_min[k]["lam_min"][s] = lam[0]
                    at_min[k]["kappa"][s] = lam[-1] / lam[0]
                    at_min[k]["norm"][s] = np.linalg.norm(r.x)
                    at_min[k]["loss"][s] = r.fun
                    break
            for m, rs in results.items():
                rec = runs[k][m]
                for j, r in enumerate(rs):
                    if r is None:
                        rec["status"][s, j] = 3
                        continue
                    rec["status"][s, j], rec["nit"][s, j] = r.status, r.nit
                    if r.status != 0 or xstar is None:
                        continue
                    near = np.linalg.norm(r.x - xstar) <= 1e-4 * max(1.0, np.linalg.norm(xstar))
                    rec["reached"][s, j] = near
                    if not near and r.fun > at_min[k]["loss"][s] * (1 + 1e-6):
                        rec["spurious"][s, j] = np.linalg.eigvalsh(P.hess_exp(r.x))[0] > 0
    summary = {}
    for k in keys:
        summary[k] = {}
        for m in SOLVERS:
            rec = runs[k][m]
            conv = rec["status"] == 0
            summary[k][m] = {
                "basin": float(rec["reached"].mean()), "converged": float(conv.mean()),
                "failed": float((~conv).mean()), "spurious": float(rec["spurious"].mean()),
                "outside": float((rec["status"] == 3).mean()),
                "status_counts": {int(c): int((rec["status"] == c).sum()) for c in np.unique(rec["status"])},
                "nit_median": float(np.median(rec["nit"][rec["reached"]])) if rec["reached"].any() else math.nan,
                "nit_max": int(rec["nit"][rec["reached"]].max()) if rec["reached"].any() else -1,
                "nit_min": int(rec["nit"][rec["reached"]].min()) if rec["reached"].any() else -1,
            }
            # paired against softmax on the same starts: reached by softmax only / by this unit only
            ref = runs["softmax"][m]["reached"]
            summary[k][m]["softmax_only"] = int(np.sum(ref & ~rec["reached"]))
            summary[k][m]["unit_only"] = int(np.sum(~ref & rec["reached"]))
    return {"n": n, "d": d, "seeds": seeds, "starts": starts, "n_starts": n_starts, "radius": radius, "tol": tol,
            "maxiter": maxiter,
            "runs": runs, "at_min": at_min, "summary": summary, "gamma": [GAMMA[k] for k in keys], "keys": keys}


def plot_solvers(data: dict):
    fig, (ax1, ax2) = figure(2, width=4.3)
    keys = data["keys"]
    g = np.arange(len(keys))
    for i, k in enumerate(keys):
        kap = data["at_min"][k]["kappa"]
        kap = kap[np.isfinite(kap)]
        ax1.semilogy(np.full(kap.size, i) + np.linspace(-0.15, 0.15, kap.size), kap, ".", color=_color(k))
        ax1.semilogy([i - 0.25, i + 0.25], [np.median(kap)] * 2, "k-", lw=2)
    ax1.set_xticks(g, [k.replace("gamma=", "γ=") for k in keys], rotation=15)
    ax1.set_xlabel("unit")
    ax1.set_ylabel(r"$\kappa(\nabla^2 L_{\exp}(x^*))$ (dots: seeds, bar: median)")
    width = 0.26
    for j, m in enumerate(SOLVERS):
        vals = [100 * data["summary"][k][m]["basin"] for k in keys]
        ax2.bar(g + (j - 1) * width, vals, width, label="sketch-newton (Algorithm 1)" if m == "sketch-newton" else m,
                color=f"C{j}")
    ax2.set_xticks(g, [k.replace("gamma=", "γ=") for k in keys], rotation=15)
    ax2.set_xlabel("unit")
    ax2.set_ylabel("% of starts that reach the minimiser")
    ax2.set_ylim(0, 105)
    ax2.legend()
    return fig


# ---------------------------------------------------------------------------------------------- verdicts
def _mcnemar(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value for paired binary outcomes (discordant counts ``only_a``, ``only_b``)."""
    from scipy.stats import binomtest

    m = only_a + only_b
    return 1.0 if m == 0 else float(binomtest(min(only_a, only_b), m, 0.5).pvalue)


def findings(der: dict, dom: dict, ind: dict, lip: dict, sol: dict) -> dict[str, dict[str, Any]]:
    """The chapter's answers, from its five figures' data: numbers, a boolean and words chosen from them.

    One entry per question, each with ``passed`` (the hypothesis in ``check`` holds on the data),
    ``verdict`` (words chosen from the numbers) and the numbers the chapter glues. Thresholds are ours:
    "inherited" means softmax shows the effect at least 80% as often as the unified unit; a tail is
    "heavier" when the bootstrap ranges of the 99% quantiles do not overlap; "near the pole" means the
    top 1% has a median ``α/n`` below half the overall median.
    """
    out: dict[str, dict[str, Any]] = {}
    # the lemma
    worst = max(max(float(der["grad"][k].max()), float(der["hess"][k].max())) for k in der["units"])
    ok = worst < der["tol"]
    out["lemma"] = {"passed": ok, "worst": worst,
                    "verdict": "holds for every unit" if ok else "does not hold as stated"}
    # (i) domain
    so, uo = float(dom["outside"]["softmax"].max()), float(dom["outside"]["unified"].max())
    sbeta = float(dom["beta_over_n"]["softmax"].min())
    i_neg = np.flatnonzero(np.median(dom["beta_over_n"]["unified"], axis=0) <= 0)
    ok = so == 0 and sbeta > 0 and uo > 0
    out["domain"] = {"passed": ok, "softmax_out": so, "unified_out": uo, "softmax_beta_min": sbeta,
                     "shortcut_out": float(dom["outside"]["shortcut"].mean()),
                     "unified_beta_radius": float(dom["radii"][i_neg[0]]) if i_neg.size else math.nan,
                     "verdict": "due to the shortcut" if ok else
                     ("inherited from softmax regression" if so > 0 else "not observed")}
    # (ii) indefiniteness
    s, u, pr = ind["summary"]["softmax"], ind["summary"]["unified"], ind["paired"]
    ok = s["indefinite"] >= 0.5 and s["indefinite"] >= 0.8 * u["indefinite"]
    out["indefinite"] = {"passed": ok, "softmax": s["indefinite"], "unified": u["indefinite"],
                         "p": _mcnemar(pr["softmax_only"], pr["unified_only"]),
                         "gammas": {k: ind["summary"][k]["indefinite"] for k in UNITS},
                         "verdict": "inherited from softmax regression" if ok else "due to the shortcut"}
    # (ii) w* tail
    heavier = bool(u["q_lo"][2] > s["q_hi"][2])
    near = u["alpha_n_top1"] < 0.5 * u["alpha_n_median"]
    ok = heavier and near
    out["wstar"] = {"passed": ok, "heavier": heavier, "near_pole": near,
                    "q99_ratio": float(u["quantiles"][2] / s["quantiles"][2]),
                    "q50_ratio": float(u["quantiles"][0] / s["quantiles"][0]),
                    "verdict": "made harder by the shortcut (a heavy tail near the pole)" if ok else
                    ("made harder by the shortcut (a heavier tail, not at the pole)" if heavier else
                     "not made harder by the shortcut")}
    # (iii) Lipschitz
    su, ss = lip["summary"]["unified"]["median"], lip["summary"]["softmax"]["median"]
    r, a = lip["ratio"]["unified"].ravel(), lip["alpha_n"]["unified"].ravel()
    near_sel, far_sel = np.isfinite(r) & (a <= POLE_SPLIT), np.isfinite(r) & (a > POLE_SPLIT)
    near_med = float(np.median(r[near_sel])) if near_sel.any() else math.nan
    far_med = float(np.median(r[far_sel]))
    ok = bool(su[0] > ss[0] and near_med > 5 * far_med)
    out["lipschitz"] = {"passed": ok, "ratio_small_n": float(su[0] / ss[0]), "ratio_large_n": float(su[-1] / ss[-1]),
                        "near_median": near_med, "far_median": far_med, "near_count": int(near_sel.sum()),
                        "far_count": int(far_sel.sum()),
                        "closes": "closes" if su[-1] / ss[-1] < su[0] / ss[0] else "does not close",
                        "verdict": "made harder by the shortcut near the pole" if ok else
                        "not made harder by the shortcut"}
    # (iv) at the minimiser
    am = sol["at_min"]
    pd_all = all(bool(np.all(am[k]["lam_min_rel"] > 0)) for k in EXP_KEYS)
    found = {k: int(np.isfinite(am[k]["kappa"]).sum()) for k in EXP_KEYS}
    med = {k: float(np.nanmedian(am[k]["kappa"])) for k in EXP_KEYS}
    r = med["unified"] / med["softmax"]
    word = "lower" if r < 1 / 1.2 else ("higher" if r > 1.2 else "about the same")
    ok = pd_all and all(v == sol["seeds"] for v in found.values())
    out["kappa"] = {"passed": ok, "median": med, "ratio": r, "word": word, "found": found,
                    "max": {k: float(np.nanmax(am[k]["kappa"])) for k in EXP_KEYS},
                    "verdict": f"inherited from softmax regression (median kappa {word} with the shortcut)" if ok else
                    "not established: no positive definite minimiser for some seeds"}
    # (v) Algorithm 1 to the letter
    refuse = {k: sol["summary"][k]["sketch-newton"]["status_counts"].get(4, 0)
              / (sol["seeds"] * sol["n_starts"]["sketch-newton"])
              for k in EXP_KEYS}
    ok = refuse["softmax"] >= 0.5
    out["alg1"] = {"passed": ok, "refuse": refuse,
                   "verdict": ("inherited from softmax regression (B_diag is not positive at w = 0 for either unit)"
                               if ok else "due to the shortcut")}
    # (v) basin
    p = {m: _mcnemar(sol["summary"]["unified"][m]["softmax_only"], sol["summary"]["unified"][m]["unit_only"])
         for m in ("newton", "gd")}
    smaller = {m: sol["summary"]["unified"][m]["basin"] < sol["summary"]["softmax"][m]["basin"] for m in p}
    ok = any(smaller[m] and p[m] < 0.05 for m in p)
    out["basin"] = {"passed": ok, "p": p, "smaller": smaller,
                    "verdict": "made harder by the shortcut (smaller basin)" if ok else
                    "not shown to change (difference within sampling noise)"}
    return out


def ledger_rows() -> list[dict]:
    """Ledger rows of the chapter "shortcut": which conclusions are the shortcut's, which softmax regression's.

    Numbers come from the chapter's registered figures (``figures.compute``); words from :func:`findings`.
    """
    return rows_from(compute("shortcut-derivatives"), compute("shortcut-domain"), compute("shortcut-wstar"),
                     compute("shortcut-lipschitz"), compute("shortcut-solvers"))


def rows_from(der: dict, dom: dict, ind: dict, lip: dict, sol: dict) -> list[dict]:
    """The rows of :func:`ledger_rows` from the five figures' data (the chapter passes the data it holds)."""
    F = findings(der, dom, ind, lip, sol)
    s, u = ind["summary"]["softmax"], ind["summary"]["unified"]

    def row(item, label, key, check, evidence):
        return {"item": item, "chapter": "shortcut", "label": label, "check": check, "evidence": evidence,
                "verdict": F[key]["verdict"], "passed": bool(F[key]["passed"])}

    f = F
    return [
        row("Lemmas 4.1 and 5.4, any unit", "lemma-unit-general", "lemma",
            "gradient, Hessian and Hessian-vector products of every unit (softmax, gamma = 0.25, 0.5, 1, shortcut, "
            "cosh, sinh) against complex-step and hyper-dual derivatives of the naive loss; fails if phi', phi'' "
            "entered wrongly",
            f"max relative error {f['lemma']['worst']:.1e} over {der['trials']} problems per unit "
            f"(n = {der['n']}, d = {der['d']})"),
        row("Definition 1.4 (domain)", "obs-shortcut-domain", "domain",
            "share of random points with alpha <= 0 and beta = min alpha on balls, softmax against the unified unit "
            "on the same draws; the condition alpha >= beta > 0 is the shortcut's if softmax never needs it",
            f"alpha <= 0 at up to {100 * f['domain']['softmax_out']:.1f}% (softmax) vs "
            f"{100 * f['domain']['unified_out']:.1f}% (unified) of {dom['draws']} points per radius; softmax "
            f"beta/n >= {f['domain']['softmax_beta_min']:.2f} (n = {dom['n']}, d = {dom['d']})"),
        row("Lemma 7.1 (indefinite without w)", "obs-shortcut-indefinite", "indefinite",
            "share of random points where Hessian of L_exp is indefinite, same points for every unit; inherited if "
            "softmax shows it at least 80% as often as the unified unit",
            f"indefinite at {100 * s['indefinite']:.1f}% (softmax) vs {100 * u['indefinite']:.1f}% (unified) of "
            f"{ind['total']} points (paired McNemar p = {f['indefinite']['p']:.2f}; n = {ind['n']}, d = {ind['d']})"),
        row("Lemma 7.1 (size of w)", "obs-shortcut-wstar", "wstar",
            "quantiles of the PSD threshold w* with bootstrap ranges, and alpha/n of the top 1%; harder if the "
            "99% quantiles' ranges do not overlap and the top 1% sits below half the median alpha/n",
            f"w* 99% quantile {u['quantiles'][2]:.2g} [{u['q_lo'][2]:.2g}, {u['q_hi'][2]:.2g}] (unified) vs "
            f"{s['quantiles'][2]:.2g} [{s['q_lo'][2]:.2g}, {s['q_hi'][2]:.2g}] (softmax); max {u['quantiles'][3]:.3g} "
            f"vs {s['quantiles'][3]:.2g}; top 1% median alpha/n {u['alpha_n_top1']:.2f} vs {u['alpha_n_median']:.2f} "
            f"overall (unified)"),
        row("Lemma 8.1 (Hessian Lipschitz)", "obs-shortcut-lipschitz", "lipschitz",
            "sampled Lipschitz ratios (lower bounds on the constant) against n and alpha/n; harder if larger than "
            "softmax at the smallest n and over five times larger at alpha/n <= 1 than above",
            f"median ratio unified/softmax {f['lipschitz']['ratio_small_n']:.2g} at n = {lip['ns'][0]}, "
            f"{f['lipschitz']['ratio_large_n']:.2g} at n = {lip['ns'][-1]}; unified median "
            f"{f['lipschitz']['near_median']:.2g} at alpha/n <= 1 ({f['lipschitz']['near_count']} pairs) vs "
            f"{f['lipschitz']['far_median']:.2g} above 1 ({f['lipschitz']['far_count']} pairs)"),
        row("Lemma 7.1 at the minimiser", "obs-shortcut-kappa", "kappa",
            "positive definiteness and condition number of the Hessian of L_exp at the best minimiser found, per "
            "gamma; fails if some seed has no positive definite minimiser",
            f"PD minimiser in {min(f['kappa']['found'].values())}/{sol['seeds']} seeds for every gamma; median kappa "
            f"{f['kappa']['median']['softmax']:.3g} (softmax) vs {f['kappa']['median']['unified']:.3g} (unified), "
            f"max {f['kappa']['max']['softmax']:.2g} vs {f['kappa']['max']['unified']:.2g}"),
        row("Algorithm 1 (positive diagonal)", "obs-shortcut-alg1", "alg1",
            "share of starts where Algorithm 1 to the letter (nonpositive='raise') refuses because B_diag + W^2 has "
            "a non-positive entry, at w = 0; inherited if softmax refuses at half the starts or more",
            f"refuses at {100 * f['alg1']['refuse']['softmax']:.0f}% (softmax) vs "
            f"{100 * f['alg1']['refuse']['unified']:.0f}% (unified) of "
            f"{sol['seeds'] * sol['n_starts']['sketch-newton']} starts"),
        row("Theorem 9.1 (convergence from a start)", "obs-shortcut-basin", "basin",
            "share of the same random starts from which Newton and gradient descent reach the minimiser, softmax "
            "against unified (paired McNemar test); harder if smaller with p < 0.05",
            "; ".join(f"{m}: {100 * sol['summary']['unified'][m]['basin']:.0f}% (unified) vs "
                      f"{100 * sol['summary']['softmax'][m]['basin']:.0f}% (softmax), p = {f['basin']['p'][m]:.2g} "
                      f"({sol['seeds']} seeds x {sol['n_starts'][m]} starts)" for m in ("newton", "gd"))),
    ]
