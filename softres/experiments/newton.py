"""Chapter "Newton": Algorithm 1 (Theorem 9.1, Appendix A) against exact Newton, our extensions and baselines.

Data functions take a seeded ``numpy.random.Generator`` and return plain dicts (registered in
``figures.toml``); plot functions draw them. The seed sweep over regimes is computed once per
process and regime (:func:`_regime_runs`), so the chapter's figures that show it share one run.
:func:`ledger_rows` turns the registered data into the claims ledger's rows.
"""

from __future__ import annotations

import functools
import math
import time
from functools import cache
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator, NullFormatter
from scipy.stats import binom

from softres import bounds, sketch
from softres._linalg import single_blas_thread
from softres.examples import random_problem
from softres.experiments._common import figure, loglog_slope
from softres.experiments._style import legend_below
from softres.solvers import minimize

# ---------------------------------------------------------------------------- shared settings

#: Regimes of the seed sweep: keyword arguments of :func:`softres.random_problem` on top of ``BASE``.
REGIMES: dict[str, dict[str, Any]] = {
    "well conditioned": {},
    "col_range 100": {"col_range": 100.0},
    "col_range 1000": {"col_range": 1000.0},
    "sparse": {"density": 0.2},
    "noise 5": {"noise": 5.0},
    "noise 50": {"noise": 50.0},
    "w = 0": {"w": None},
}
#: The base instance: ``w_i = 5/n``, ``b`` perturbed by noise of size ``0.5/n``.
BASE: dict[str, Any] = {"w": 5.0, "noise": 0.5}
#: Methods of the sweep: (label, method, options). Algorithm 1 runs inside Lemma A.8's range ε₀ < 0.1.
EPS_IN = 0.09
EPS_OUT = 0.5
DELTA = 0.05
SWEEP_METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("newton", "newton", {}),
    ("Algorithm 1", "sketch-newton", {"eps0": EPS_IN, "delta": DELTA, "nonpositive": "exact"}),
    ("newton-cg", "newton-cg", {"eps0": 0.5}),
    ("sketch-lbfgs", "sketch-lbfgs", {"eps0": 0.3}),
    ("lbfgs", "lbfgs", {}),
    ("gd", "gd", {}),
]
#: Algorithm 1 outside the lemma's range, run on the well-conditioned regime only (Fig. of iterations vs ε).
OUT_OF_RANGE = ("Algorithm 1 (eps0 out of range)", "sketch-newton",
                {"eps0": EPS_OUT, "delta": DELTA, "nonpositive": "exact"})
#: Iteration limits per method (the rest: ``"second"``).
MAXITER = {"second": 60, "gd": 50, "lbfgs": 100}
#: Accuracies at which iterations are counted, relative to ``r₀ = ‖x₀ − x*‖``.
TOLS = (1e-6, 1e-9)
PAPER = ("newton", "Algorithm 1", "Algorithm 1 (eps0 out of range)")
OURS = ("newton-cg", "sketch-lbfgs")
BASELINES = ("lbfgs", "gd")


def _one_blas_thread(fn):
    """Run a data function with one BLAS thread (:func:`single_blas_thread`): its many small products
    and its timings then do not depend on how busy the machine's other cores are."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return fn(*args, **kwargs)

    return wrapper


def _optimum(P, x0: np.ndarray) -> np.ndarray:
    """``x*`` by exact Newton to the rounding level, then two undamped polishing steps."""
    res = minimize(P, x0, method="newton", tol=1e-14, maxiter=100)
    x = np.asarray(res.x, dtype=float)
    for _ in range(2):
        x = x - np.linalg.solve(P.hess(x), P.grad(x))
    return x


def _first_below(err: np.ndarray, level: float) -> int:
    """First iteration with ``err ≤ level`` (``-1`` if never)."""
    hit = np.flatnonzero(err <= level)
    return int(hit[0]) if hit.size else -1


def _steps(res) -> dict[str, Any]:
    """What the solver added to each iteration, from its history: the line search's step lengths
    ``t`` (1 for a full step), the iterations whose Hessian needed a shift, the rows kept exactly."""
    h = res.history
    return {"t": [float(t) for t in h["t"][1:]], "shifts": int(np.count_nonzero(np.asarray(h["shift"][1:]) > 0)),
            "kept": [int(k) for k in h["exact_rows"][1:]]}


def _run(P, xstar: np.ndarray, r0: float, method: str, opts: dict[str, Any], seed: int) -> dict[str, Any]:
    """One run from ``x₀ = 0``: errors, times, counts at ``TOLS`` and what the line search and shift did."""
    x0 = np.zeros(P.d)
    path = [x0.copy()]
    res = minimize(P, x0, method=method, tol=1e-12, maxiter=MAXITER.get(method, MAXITER["second"]),
                   seed=seed, callback=path.append, **opts)
    err = np.array([np.linalg.norm(x - xstar) for x in path]) / r0
    times = np.asarray(res.history["time"], dtype=float)
    k = min(err.size, times.size)
    err, times = err[:k], times[:k] - times[0]
    out: dict[str, Any] = {"err": err, "time": times, "status": int(res.status), "nit": int(res.nit),
                           "message": str(res.message), "passes": res.get("passes")}
    for tol in TOLS:
        it = _first_below(err, tol)
        out[f"it {tol:g}"] = it
        out[f"time {tol:g}"] = float(times[it]) if it >= 0 else math.nan
    if method in ("newton", "sketch-newton"):
        out["steps"] = _steps(res)
    if method == "sketch-newton":
        # rows where Lemma A.8's diagonal is negative at each iterate: Algorithm 1 to the letter stops
        # at the first such iterate; nonpositive="exact" keeps those rows exactly
        out["nonpos"] = [int(np.count_nonzero(P.hess_diag(x) < 0)) for x in path[:k - 1]]
    return out


@cache
def _regime_runs(seed: int, regime: str, n: int, d: int, seeds: int) -> dict[str, Any]:
    """Every method of ``SWEEP_METHODS`` on ``seeds`` instances of one regime (cached per process).

    Per instance: ``κ(∇²L(x*))``, the share of ``tr ∇²L(x*)`` due to ``AᵀW²A``, ``λ_min/λ_max`` of
    ``∇²L_exp(x*)``, ``‖x*‖``, the relative gradient at ``x*`` and the non-positive entries of
    ``B_diag(x*) + w²``; per run the output of :func:`_run`.
    """
    kw = BASE | REGIMES[regime]
    seq = np.random.SeedSequence([seed, n, d, seeds, sorted(REGIMES).index(regime)])
    methods = SWEEP_METHODS + ([OUT_OF_RANGE] if regime == "well conditioned" else [])
    out: dict[str, Any] = {"regime": regime, "kwargs": kw, "n": n, "d": d, "seeds": seeds,
                           "labels": [m[0] for m in methods], "runs": {m[0]: [] for m in methods}}
    inst = {k: [] for k in ("kappa", "w_share", "exp_ratio", "xstar_norm", "grad_rel", "nonpos", "r0",
                            "A_norm", "l")}
    for child in seq.spawn(seeds):
        s_problem, s_solver = (int(v) for v in child.generate_state(2))
        P = random_problem(n, d, seed=s_problem, **kw)
        xstar = _optimum(P, np.zeros(d))
        H = P.hess(xstar)
        lam = np.linalg.eigvalsh(H)
        lam_exp = np.linalg.eigvalsh(P.hess_exp(xstar))
        inst["kappa"].append(float(lam[-1] / lam[0]))
        inst["l"].append(float(lam[0]))
        inst["w_share"].append(float(np.trace(H - P.hess_exp(xstar)) / np.trace(H)))
        inst["exp_ratio"].append(float(lam_exp[0] / lam_exp[-1]))
        inst["xstar_norm"].append(float(np.linalg.norm(xstar)))
        inst["r0"].append(float(np.linalg.norm(xstar)))
        inst["grad_rel"].append(float(np.linalg.norm(P.grad(xstar)) / np.linalg.norm(P.grad(np.zeros(d)))))
        inst["nonpos"].append(int(np.count_nonzero(P.hess_diag(xstar) <= 0)))
        inst["A_norm"].append(bounds.singular_values_extreme(P.A)[0])
        for label, method, opts in methods:
            out["runs"][label].append(_run(P, xstar, inst["r0"][-1], method, opts, s_solver))
    out.update({k: np.array(v) for k, v in inst.items()})
    return out


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and ranges over seeds of the counts at ``TOLS``; failures = seeds that never got there."""
    out: dict[str, Any] = {}
    for tol in TOLS:
        its = np.array([r[f"it {tol:g}"] for r in runs])
        ok = its >= 0
        times = np.array([r[f"time {tol:g}"] for r in runs])
        out[f"fail {tol:g}"] = int(np.count_nonzero(~ok))
        out[f"med {tol:g}"] = float(np.median(its[ok])) if ok.any() else math.nan
        out[f"min {tol:g}"] = int(its[ok].min()) if ok.any() else -1
        out[f"max {tol:g}"] = int(its[ok].max()) if ok.any() else -1
        out[f"tmed {tol:g}"] = float(np.median(times[ok])) if ok.any() else math.nan
    steps = [r["steps"] for r in runs if "steps" in r]
    if steps:
        ts = [t for s in steps for t in s["t"]]
        out["steps total"] = len(ts)
        out["unit steps"] = sum(t == 1.0 for t in ts)
        out["shifts"] = sum(s["shifts"] for s in steps)
    nonpos = [r["nonpos"] for r in runs if "nonpos" in r]
    if nonpos:
        out["kept iterations"] = sum(sum(k > 0 for k in c) for c in nonpos)
        out["kept rows max"] = max((max(c, default=0) for c in nonpos), default=0)
        out["runs with kept rows"] = sum(any(k > 0 for k in c) for c in nonpos)
    out["runs"] = len(runs)
    return out


@_one_blas_thread
def regimes(rng: np.random.Generator, n: int = 10_000, d: int = 10, seeds: int = 30,
            names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The seed sweep: every method of the chapter on ``seeds`` instances of each regime of ``REGIMES``.

    Returns, per regime, the instance statistics (medians and ranges of ``κ(∇²L(x*))``, the share of
    the curvature due to ``W²``, ...) and, per method, medians and ranges over seeds of the
    iterations to ``1e-6 r₀`` and ``1e-9 r₀``, the failures, and how often Algorithm 1's line search,
    shift and exact rows were used.
    """
    seed = int(rng.integers(2**31))
    names = tuple(REGIMES) if names is None else names
    out: dict[str, Any] = {"n": n, "d": d, "seeds": seeds, "regimes": list(names), "tols": TOLS,
                           "eps_in": EPS_IN, "eps_out": EPS_OUT, "delta": DELTA, "maxiter": dict(MAXITER),
                           "base": dict(BASE), "regime_kwargs": {k: REGIMES[k] for k in names}}
    for name in names:
        data = _regime_runs(seed, name, n, d, seeds)
        entry: dict[str, Any] = {"labels": data["labels"]}
        for key in ("kappa", "w_share", "exp_ratio", "xstar_norm", "grad_rel", "nonpos", "r0", "A_norm", "l"):
            entry[key] = data[key]
        entry["methods"] = {lab: _summarise(data["runs"][lab]) for lab in data["labels"]}
        # Newton's quadratic rate: slope of log r_{t+1} against log r_t over the steps inside
        # (1e-12, 1e-1) r0 (above rounding, below the damped phase), pooled over seeds.
        lo, hi = [], []
        for r in data["runs"]["newton"]:
            e = r["err"]
            keep = (e[:-1] < 1e-1) & (e[:-1] > 1e-12) & (e[1:] > 1e-14)
            lo += list(np.log10(e[:-1][keep]))
            hi += list(np.log10(e[1:][keep]))
        entry["newton_rate_points"] = len(lo)
        entry["newton_rate_slope"] = float(np.polyfit(lo, hi, 1)[0]) if len(lo) >= 3 else math.nan
        out[name] = entry
    return out


@_one_blas_thread
def convergence(rng: np.random.Generator, n: int = 10_000, d: int = 10, seeds: int = 30,
                names: tuple[str, ...] = ("well conditioned", "col_range 1000")) -> dict[str, Any]:
    """``‖x_t − x*‖/r₀`` per iteration and per second, every method, ``seeds`` instances of two regimes."""
    seed = int(rng.integers(2**31))
    out: dict[str, Any] = {"n": n, "d": d, "seeds": seeds, "regimes": list(names)}
    for name in names:
        data = _regime_runs(seed, name, n, d, seeds)
        out[name] = {"labels": data["labels"], "kappa": data["kappa"],
                     "err": {lab: [r["err"] for r in data["runs"][lab]] for lab in data["labels"]},
                     "time": {lab: [r["time"] for r in data["runs"][lab]] for lab in data["labels"]}}
    return out


def _band(traces: list[np.ndarray], floor: float = 1e-17) -> tuple[np.ndarray, ...]:
    """Median, min and max over runs per iteration; a finished run holds its last value."""
    k = max(t.size for t in traces)
    M = np.array([np.concatenate([t, np.full(k - t.size, t[-1])]) for t in traces])
    M = np.maximum(M, floor)
    return np.arange(k), np.median(M, axis=0), M.min(axis=0), M.max(axis=0)


def _style(label: str) -> dict[str, Any]:
    return {"ls": "--" if label in BASELINES else (":" if label in OURS else "-")}


def plot_convergence(data: dict[str, Any]):
    names = data["regimes"]
    fig, flat = figure(2, width=3.4, height=2.6, nrows=len(names))
    grid = [flat[2 * i:2 * i + 2] for i in range(len(names))]
    for i, name in enumerate(names):
        entry = data[name]
        ax_it, ax_t = grid[i]
        for j, label in enumerate(entry["labels"]):
            color = f"C{j}"
            t, med, lo, hi = _band(entry["err"][label])
            ax_it.semilogy(t, med, color=color, label=label, **_style(label))
            ax_it.fill_between(t, lo, hi, color=color, alpha=0.15)
            # wall time: median time per iteration index over seeds, error median there
            times = _band([np.maximum(x, 1e-6) for x in entry["time"][label]], floor=1e-6)[1]
            ax_t.loglog(times[1:], med[1:], color=color, **_style(label))
        kap = np.median(entry["kappa"])
        ax_it.set_title(f"{name}: median κ(∇²L(x*)) = {kap:.3g}")
        ax_it.set_xlabel("iteration t")
        ax_it.set_ylabel(r"$\|x_t - x^*\|_2 / r_0$")
        ax_t.set_xlabel("wall time since start [s] (log)")
        ax_t.set_ylabel(r"$\|x_t - x^*\|_2 / r_0$ (median)")
    grid[0][1].legend(*grid[0][0].get_legend_handles_labels(), loc="upper left",
                      bbox_to_anchor=(1.02, 1.0))
    return fig


@_one_blas_thread
def iterations_vs_eps(rng: np.random.Generator, n: int = 10_000, d: int = 10, seeds: int = 30) -> dict[str, Any]:
    """Iterations until ``‖x_t − x*‖ ≤ ε`` against ``log(r₀/ε)``, medians and ranges over seeds.

    Well-conditioned regime; exact Newton, Algorithm 1 inside (ε₀ = ``EPS_IN``) and outside
    (``EPS_OUT``) Lemma A.8's range, and Lemma A.11's count ``⌈log(r₀/ε)/log 2.5⌉``. Distances are
    in units of ``r₀`` (so ``r0`` is 1).
    """
    seed = int(rng.integers(2**31))
    data = _regime_runs(seed, "well conditioned", n, d, seeds)
    rel = np.logspace(-1, -10, 10)
    out: dict[str, Any] = {"eps": rel, "r0": 1.0, "n": n, "d": d, "seeds": seeds, "eps_in": EPS_IN, "eps_out": EPS_OUT,
                           "predicted": np.array([bounds.predicted_iterations(1.0, e) for e in rel]),
                           "theorem_natural_log": np.log(1.0 / rel), "labels": []}
    for label in ("newton", "Algorithm 1", OUT_OF_RANGE[0]):
        counts = np.array([[_first_below(r["err"], e) for e in rel] for r in data["runs"][label]], dtype=float)
        counts[counts < 0] = np.nan
        out["labels"].append(label)
        out[label + " all"] = counts
        out[label] = np.nanmedian(counts, axis=0)
        out[label + " min"], out[label + " max"] = np.nanmin(counts, axis=0), np.nanmax(counts, axis=0)
        out[label + " missing"] = int(np.isnan(counts).sum())
    # the ledger's earlier key for the out-of-range run
    out["sketch-newton (eps0=0.5)"] = out[OUT_OF_RANGE[0]]
    return out


def plot_iterations_vs_eps(data: dict[str, Any]):
    fig, (ax,) = figure(width=5.2)
    x = np.log10(data["r0"] / data["eps"])
    ax.plot(x, data["predicted"], "k--", label=r"Lemma A.11's count $\lceil \log(r_0/\varepsilon)/\log 2.5\rceil$")
    names = {"Algorithm 1": f"Algorithm 1, ε₀ = {data['eps_in']:g}",
             OUT_OF_RANGE[0]: f"Algorithm 1, ε₀ = {data['eps_out']:g} (outside Lemma A.8's range)"}
    for j, label in enumerate(data["labels"]):
        ax.plot(x, data[label], "o-", color=f"C{j}", label=f"{names.get(label, label)} (median, range)")
        ax.fill_between(x, data[label + " min"], data[label + " max"], color=f"C{j}", alpha=0.2)
    ax.set_xlabel(r"$\log_{10}(r_0/\varepsilon)$")
    ax.set_ylabel("iterations")
    ax.legend(loc="upper left")
    return fig


def plot_regimes(data: dict[str, Any]):
    """Iterations to ``1e-6 r₀`` per method and regime: median (marker) and range over seeds (bar)."""
    names = data["regimes"]
    labels = data[names[0]]["labels"][:len(SWEEP_METHODS)]
    fig, axes = figure(2, width=3.4, height=3.2)
    for ax, tol in zip(axes, TOLS, strict=True):
        width = 0.8 / len(labels)
        for j, label in enumerate(labels):
            xs = np.arange(len(names)) + (j - (len(labels) - 1) / 2) * width
            meds, los, his, fails = [], [], [], []
            for name in names:
                s = data[name]["methods"][label]
                meds.append(s[f"med {tol:g}"])
                los.append(s[f"min {tol:g}"])
                his.append(s[f"max {tol:g}"])
                fails.append(s[f"fail {tol:g}"])
            meds, los, his = np.array(meds), np.array(los, float), np.array(his, float)
            ok = np.isfinite(meds)
            ax.errorbar(xs[ok], meds[ok], yerr=[meds[ok] - los[ok], his[ok] - meds[ok]], fmt="o", ms=3,
                        color=f"C{j}", label=label, capsize=2)
            cap = data["maxiter"].get(SWEEP_METHODS[j][1], data["maxiter"]["second"])
            for x, f in zip(xs, fails, strict=True):
                if f:
                    ax.plot([x], [cap], "x", color=f"C{j}", ms=5)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(names)), names, rotation=35, ha="right")
        ax.set_ylabel(f"iterations to {tol:g} r0")
        ax.set_title(f"to {tol:g} $r_0$")
    fig.suptitle("x: some seeds failed, drawn at the iteration cap", fontsize="medium")
    legend_below(fig, ncols=3)
    return fig


# ---------------------------------------------------------------------------- Lemma A.10, literally


def _summary_log10_radius(n: int, R: float, beta: float, l: float) -> float:
    """``log₁₀(0.1 l / M)`` with ``M`` as a third-party summary reads Lemma 8.1 (``bounds.lipschitz_bound_M``)."""
    return float(np.log10(0.1 * l) - bounds.lipschitz_bound_M(n, R, beta, log10=True))


@_one_blas_thread
def shrinking(rng: np.random.Generator, n: int = 10_000, d: int = 10, eps0: float = EPS_IN, runs: int = 8,
              steps: int = 14) -> dict[str, Any]:
    """Definition A.9 to the letter (no line search, no shift) on ``runs`` instances: Lemma A.10 measured.

    Per run and step: the observed ``r_{t+1}/r_t``, the achieved ε₀ of ``H̃`` (Definition A.7,
    :func:`bounds.spectral_error` against ``∇²L(x_t)``) and Lemma A.10's factor with that ε₀,
    ``l = λ_min(∇²L(x*))`` and ``M`` the largest *measured* Lipschitz ratio on the ball of radius
    ``1.05 r₀`` around ``x*`` (a lower bound on the true ``M``, so the factor is not a rigorous bound).
    ``R = max(4, ‖A‖, ‖x*‖)`` (Theorem 9.1 assumes ``R ≥ 4``) for the summary's reading of ``M``.
    """
    out: dict[str, Any] = {"n": n, "d": d, "eps0": eps0, "runs": runs, "r": [], "observed_runs": [],
                           "bound_runs": [], "achieved_runs": [], "l": [], "M_measured": [], "r0_runs": [],
                           "init_radius_measured_runs": [], "log10_init_radius_summary_runs": [], "R": [],
                           "stopped": [], "beta": []}
    for _ in range(runs):
        P = random_problem(n, d, seed=rng, **BASE)
        x0 = np.zeros(d)
        xstar = _optimum(P, x0)
        l = bounds.hessian_min_eig(P, xstar)
        r0 = float(np.linalg.norm(xstar))
        M = bounds.empirical_lipschitz(P, xstar, 1.05 * r0, pairs=60, rng=rng)
        H_tilde = sketch.SketchedHessian(P, eps0=eps0, delta=DELTA, nonpositive="raise", seed=rng)
        x, r, achieved, bound, stopped = x0.copy(), [r0], [], [], ""
        for _ in range(steps):
            try:
                Ht = H_tilde(x)
            except sketch.NonPositiveDiagonalError as exc:
                stopped = str(exc)
                break
            e = bounds.spectral_error(P.hess(x), Ht)
            x = x - np.linalg.solve(Ht, P.grad(x))  # Definition A.9
            achieved.append(e)
            bound.append(bounds.shrinking_bound(r[-1], e, l, M) / r[-1])
            r.append(float(np.linalg.norm(x - xstar)))
            if r[-1] < 1e-12 * r0:
                break
        r = np.array(r)
        R = max(4.0, bounds.singular_values_extreme(P.A)[0], r0)
        beta = bounds.beta(P, xstar, 1.05 * r0)
        out["r"].append(r)
        out["observed_runs"].append(r[1:] / r[:-1])
        out["bound_runs"].append(np.array(bound))
        out["achieved_runs"].append(np.array(achieved))
        out["l"].append(l)
        out["M_measured"].append(M)
        out["r0_runs"].append(r0)
        out["R"].append(R)
        out["beta"].append(beta)
        out["init_radius_measured_runs"].append(bounds.good_init_radius(l, M))
        out["log10_init_radius_summary_runs"].append(_summary_log10_radius(n, R, beta, l))
        out["stopped"].append(stopped)
    for key in ("l", "M_measured", "r0_runs", "R", "beta", "init_radius_measured_runs",
                "log10_init_radius_summary_runs"):
        out[key] = np.array(out[key])
    out["observed"] = np.concatenate(out["observed_runs"])
    out["bound"] = np.concatenate(out["bound_runs"])
    out["achieved_eps"] = np.concatenate(out["achieved_runs"])
    out["violations"] = int(np.count_nonzero(out["observed"] > out["bound"]))
    out["inside_measured"] = int(np.count_nonzero(out["r0_runs"] <= out["init_radius_measured_runs"]))
    out["inside_summary"] = int(np.count_nonzero(np.log10(out["r0_runs"]) <= out["log10_init_radius_summary_runs"]))
    out["eps_in_range"] = float(np.mean(out["achieved_eps"] < 0.1))
    # A.11: r_t ≤ 0.4^t r0 at every step of every run
    out["a11_steps"] = int(sum(r.size - 1 for r in out["r"]))
    out["a11_violations"] = int(sum(np.count_nonzero(r[1:] > 0.4 ** np.arange(1, r.size) * r[0] * (1 + 1e-12))
                                    for r in out["r"]))
    out["reached_1e-9"] = int(sum(np.any(r <= 1e-9 * r[0]) for r in out["r"]))
    # earlier keys (single-run names) kept for the ledger chapter
    out["r0"] = float(out["r0_runs"][0])
    out["init_radius_measured"] = float(out["init_radius_measured_runs"].min())
    out["log10_init_radius_paper"] = float(out["log10_init_radius_summary_runs"].max())
    return out


def plot_shrinking(data: dict[str, Any]):
    fig, (ax,) = figure(width=8.4, height=3.8)
    for j, (obs, bnd, ach) in enumerate(zip(data["observed_runs"], data["bound_runs"], data["achieved_runs"],
                                            strict=True)):
        t = np.arange(1, obs.size + 1)
        first = j == 0
        ax.semilogy(t, obs, "o-", color="C0", ms=3, alpha=0.6, label=r"observed $r_{t+1}/r_t$" if first else None)
        ax.semilogy(t, bnd, "s--", color="C1", ms=3, alpha=0.6,
                    label=r"Lemma A.10: $2(\varepsilon_0 + M r_t/(l - M r_t))$, measured $M$" if first else None)
        ax.semilogy(t, ach, ":", color="C2", alpha=0.8,
                    label=r"achieved $\varepsilon_0$ of $\tilde H$" if first else None)
    ax.axhline(0.4, color="k", lw=0.8, label="Lemma A.11's rate 0.4")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration t")
    ax.set_ylabel("contraction factor / achieved ε₀")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


# ---------------------------------------------------------------------------- Lemma A.8


def draws_for_power(delta: float = DELTA, alternative: float | None = None, level: float = 0.05,
                    power: float = 0.8, grid: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 400, 600)) -> dict:
    """Smallest number of draws in ``grid`` whose one-sided binomial test tells a miss rate ``alternative``
    (default ``2δ``) from ``δ`` at ``level`` with at least ``power``.

    Returns ``draws``, ``critical`` (reject ``miss rate ≤ δ`` at this many misses or more), ``size`` (the
    test's actual level) and ``power``.
    """
    alternative = 2 * delta if alternative is None else alternative
    for N in grid:
        k = next(k for k in range(N + 2) if binom.sf(k - 1, N, delta) <= level)
        pw = float(binom.sf(k - 1, N, alternative))
        if pw >= power or N == grid[-1]:
            return {"draws": N, "critical": k, "size": float(binom.sf(k - 1, N, delta)), "power": pw,
                    "alternative": alternative}
    raise AssertionError("unreachable")


@_one_blas_thread
def sketch_error_vs_s(rng: np.random.Generator, n: int = 50_000, d: int = 10, seeds: int = 10,
                      eps_test: float = EPS_IN) -> dict[str, Any]:
    """Lemma A.8 measured: achieved ε₀ of ``AᵀD̃A`` (against ``AᵀDA``) and of ``H̃`` (against ``∇²L``).

    At ``x*`` of one instance (``D = B_diag(x*) + w² > 0``): ``seeds`` draws per target ε₀ on a grid
    reaching inside the lemma's range ``(0, 0.1)``; then, at ``eps_test``, as many draws as
    :func:`draws_for_power` needs to tell a miss rate of ``2δ`` from ``δ``, for both ``AᵀD̃A`` and
    Algorithm 1's ``H̃`` (:class:`softres.sketch.SketchedHessian`).
    """
    P = random_problem(n, d, seed=rng, **BASE)
    x = _optimum(P, np.zeros(d))
    D = P.hess_diag(x)
    exact, H = P.gram(D), P.hess(x)
    eps0s = np.array([0.5, 0.3, 0.2, 0.1, 0.09, 0.05])
    s = np.array([sketch.sample_size(d, e, DELTA) for e in eps0s])
    errs = np.array([[bounds.spectral_error(exact, sketch.sampled_gram(P.A, sketch.sparsify_diagonal(
        P.A, D, eps0=e, delta=DELTA, rng=rng))) for _ in range(seeds)] for e in eps0s])
    H_errs = []
    for e in eps0s:
        H_tilde = sketch.SketchedHessian(P, eps0=e, delta=DELTA, nonpositive="raise", seed=rng)
        H_errs.append([bounds.spectral_error(H, H_tilde(x)) for _ in range(seeds)])
    H_errs = np.array(H_errs)
    plan = draws_for_power(DELTA)
    N = plan["draws"]
    test_gram = np.array([bounds.spectral_error(exact, sketch.sampled_gram(P.A, sketch.sparsify_diagonal(
        P.A, D, eps0=eps_test, delta=DELTA, rng=rng))) for _ in range(N)])
    H_tilde = sketch.SketchedHessian(P, eps0=eps_test, delta=DELTA, nonpositive="raise", seed=rng)
    test_H = np.array([bounds.spectral_error(H, H_tilde(x)) for _ in range(N)])
    miss_gram = int(np.count_nonzero(test_gram > eps_test))
    miss_H = int(np.count_nonzero(test_H > eps_test))
    # union bound over T iterations: per-iteration failure δ/T, and what that does to s
    T = bounds.predicted_iterations(1.0, TOLS[-1])
    s_union = sketch.sample_size(d, eps_test, DELTA / T)
    in_range = eps0s < 0.1
    fails = int(np.sum(errs > eps0s[:, None]))
    return {"eps0": eps0s, "s": s, "errors": errs, "H_errors": H_errs, "n": n, "d": d, "delta": DELTA,
            "seeds": seeds, "slope": loglog_slope(s, np.median(errs, axis=1)),
            "eps_test": eps_test, "s_test": sketch.sample_size(d, eps_test, DELTA), "plan": plan,
            "test_gram": test_gram, "test_H": test_H, "miss_gram": miss_gram, "miss_H": miss_H,
            "p_gram": float(binom.sf(miss_gram - 1, N, DELTA)), "p_H": float(binom.sf(miss_H - 1, N, DELTA)),
            "union_T": T, "s_union": s_union, "s_union_ratio": s_union / sketch.sample_size(d, eps_test, DELTA),
            "in_range_fails": int(np.sum(errs[in_range] > eps0s[in_range, None])),
            "in_range_draws": int(errs[in_range].size),
            # earlier keys: misses over the ε₀ grid (all targets)
            "fails": fails, "draws": int(errs.size), "met": 1 - fails / errs.size,
            "binom_p": float(binom.sf(fails - 1, errs.size, DELTA))}


def plot_sketch_error_vs_s(data: dict[str, Any]):
    fig, (ax,) = figure(width=8.4, height=3.8)
    s = data["s"]
    for j in range(data["errors"].shape[1]):
        ax.loglog(s * 0.97, data["errors"][:, j], ".", color="C0", alpha=0.4)
        ax.loglog(s * 1.03, data["H_errors"][:, j], ".", color="C1", alpha=0.4)
    ax.loglog(s, np.median(data["errors"], axis=1), "o-", color="C0",
              label=r"$A^\top\tilde D A$ vs $A^\top D A$ (Lemma A.8; draws, median)")
    ax.loglog(s, np.median(data["H_errors"], axis=1), "s-", color="C1",
              label=r"$\tilde H$ vs $\nabla^2 L$ (Definition A.7; draws, median)")
    ax.loglog(s, data["eps0"], "k--",
              label=r"target $\varepsilon_0$, $s = \lceil\varepsilon_0^{-2} d \log(d/\delta)\rceil$")
    ax.axhspan(1e-3, 0.1, color="0.9", zorder=0, label=r"Lemma A.8's range $\varepsilon_0 < 0.1$")
    ax.set_ylim(min(1e-2, float(data["errors"].min()) * 0.8), 1.0)
    ax.set_xlabel("sampled rows s")
    ax.set_ylabel(r"achieved $\varepsilon_0$: $\max_i |\lambda_i(G^{-1/2}\tilde G G^{-1/2}) - 1|$")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


# ---------------------------------------------------------------------------- cost per iteration


@_one_blas_thread
def cost_per_iteration(rng: np.random.Generator, n: int = 50_000, ds: tuple[int, ...] = (10, 20, 40, 80, 160, 320),
                       ns: tuple[int, ...] = (12_500, 25_000, 50_000, 100_000), d_n: int = 40,
                       repeat: int = 3) -> dict[str, Any]:
    """Hessian work of one iteration, exact (``∇²L``) against Algorithm 1's ``H̃``, with passes over ``A``.

    (a) at fixed ``n`` for each ``d`` of ``ds``: wall time (best of ``repeat`` distinct points) of
    ``P.hess`` and of :class:`~softres.sketch.SketchedHessian` at ε₀ = ``EPS_OUT`` and ``EPS_IN``,
    and ``P.op.passes`` per call; (b) at fixed ``d = d_n`` for each ``n`` of ``ns``: the same at
    ``EPS_OUT``, for the log–log slope in ``n`` (Theorem 9.1: ``O(nnz(A) + d^ω)`` up to logs).
    """
    seed = int(rng.integers(2**31))

    def measure(P, eps_list):
        pts = [P.x_true + 1e-9 * k * np.ones(P.d) for k in range(1, 2 * repeat + 2)]
        res = {}
        before = P.op.passes
        P.hess(pts[0])
        res["exact passes"] = P.op.passes - before
        res["exact"] = min(_time1(P.hess, x) for x in pts[1:repeat + 1])
        for j, e in enumerate(eps_list):
            H_tilde = sketch.SketchedHessian(P, eps0=e, delta=DELTA, nonpositive="exact", seed=seed)
            before = P.op.passes
            H_tilde(P.x_true - 1e-9 * (j + 1))
            res[f"passes {e:g}"] = P.op.passes - before
            res[f"rows {e:g}"] = H_tilde.last["rows"]
            res[f"draws {e:g}"] = H_tilde.last["draws"]
            res[f"sketch {e:g}"] = min(_time1(H_tilde, x - 1e-7 * (j + 1)) for x in pts[repeat + 1:])
        return res

    by_d = [measure(random_problem(n, int(d), seed=seed, **BASE), (EPS_OUT, EPS_IN)) for d in ds]
    by_n = [measure(random_problem(int(m), d_n, seed=seed, **BASE), (EPS_OUT,)) for m in ns]
    out: dict[str, Any] = {"n": n, "ds": np.array(ds), "ns": np.array(ns), "d_n": d_n, "repeat": repeat,
                           "eps_out": EPS_OUT, "eps_in": EPS_IN, "delta": DELTA}
    for key in by_d[0]:
        out["d " + key] = np.array([r[key] for r in by_d])
    for key in by_n[0]:
        out["n " + key] = np.array([r[key] for r in by_n])
    for e in (EPS_OUT, EPS_IN):
        ratio = out["d exact"] / out[f"d sketch {e:g}"]
        out[f"ratio {e:g}"] = ratio
        # where s reaches n the sketch returns the exact diagonal (no sampling): not a sketch's timing
        full = out[f"d draws {e:g}"] >= n
        out[f"full sample {e:g}"] = full
        pays = np.flatnonzero((ratio > 1) & ~full)
        out[f"crossover {e:g}"] = int(out["ds"][pays[0]]) if pays.size else -1
        out[f"pays at all larger d {e:g}"] = bool(pays.size and np.all(ratio[pays[0]:][~full[pays[0]:]] > 1))
    out["slope exact"] = loglog_slope(out["ns"], out["n exact"])
    out["slope sketched"] = loglog_slope(out["ns"], out[f"n sketch {EPS_OUT:g}"])
    return out


def _time1(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return time.perf_counter() - t0


def plot_cost_per_iteration(data: dict[str, Any]):
    fig, (ax1, ax2) = figure(2, width=4.6, height=3.6)
    ds = data["ds"]
    for j, e in enumerate((data["eps_out"], data["eps_in"])):
        ax1.semilogx(ds, data[f"ratio {e:g}"], "o-", color=f"C{j}", label=f"exact / sketched, ε₀ = {e:g}")
        full = data[f"full sample {e:g}"]
        if full.any():
            ax1.semilogx(ds[full], data[f"ratio {e:g}"][full], "x", color="k", ms=8,
                         label="s ≥ n: no sampling" if j == 1 else None)
    ax1.axhline(1.0, color="0.5", lw=0.8)
    ax1.set_xlabel(f"d (n = {data['n']})")
    ax1.set_ylabel("time ratio exact / sketched Hessian")
    ax1.legend()
    ns = data["ns"]
    ax2.loglog(ns, 1e3 * data["n exact"], "o-", label=f"exact (slope {data['slope exact']:.2f})")
    ax2.loglog(ns, 1e3 * data[f"n sketch {data['eps_out']:g}"], "s-",
               label=f"sketched, ε₀ = {data['eps_out']:g} (slope {data['slope sketched']:.2f})")
    ax2.set_xticks(ns, [f"{int(v):,}" for v in ns])
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ax2.set_xlabel(f"n (d = {data['d_n']})")
    ax2.set_ylabel("time of one iteration's Hessian [ms]")
    ax2.legend()
    return fig


# ---------------------------------------------------------------------------- tables and facts for the chapter


def _fmt_range(values: np.ndarray, fmt: str = "{:.3g}") -> str:
    values = np.asarray(values, dtype=float)
    return f"{fmt.format(np.median(values))} [{fmt.format(values.min())}, {fmt.format(values.max())}]"


def regime_rows(data: dict[str, Any]) -> list[list[Any]]:
    """One row per regime: its settings and, over seeds, median [min, max] of the instance statistics."""
    rows = []
    for name in data["regimes"]:
        e = data[name]
        kw = ", ".join(f"{k}={v}" for k, v in data["regime_kwargs"][name].items()) or "base"
        rows.append([name, kw, _fmt_range(e["kappa"]), _fmt_range(100 * e["w_share"], "{:.0f}"),
                     _fmt_range(e["xstar_norm"]), _fmt_range(e["exp_ratio"]),
                     f"{int(np.count_nonzero(e['nonpos']))}/{e['nonpos'].size}"])
    return rows


REGIME_HEADERS = ["regime", "setting", "κ(∇²L(x*))", "% of tr ∇²L(x*) from AᵀW²A", "‖x*‖",
                  "λmin/λmax of ∇²L_exp(x*)", "seeds with B_diag + w² ≤ 0 at x*"]


def method_rows(data: dict[str, Any], tol: float) -> list[list[Any]]:
    """One row per method: per regime ``median [min–max]`` iterations to ``tol·r₀`` and the failures."""
    labels = data[data["regimes"][0]]["labels"][:len(SWEEP_METHODS)]
    rows = []
    for label in labels:
        row = [label]
        for name in data["regimes"]:
            s = data[name]["methods"][label]
            if s[f"fail {tol:g}"] == s["runs"]:
                row.append(f"— ({s['runs']} fail)")
                continue
            cell = f"{s[f'med {tol:g}']:.0f} [{s[f'min {tol:g}']}–{s[f'max {tol:g}']}]"
            if s[f"fail {tol:g}"]:
                cell += f" ({s[f'fail {tol:g}']} fail)"
            row.append(cell)
        rows.append(row)
    return rows


def additions_rows(data: dict[str, Any]) -> list[list[Any]]:
    """What ``minimize`` added to Algorithm 1 (and to exact Newton), per regime, over all runs."""
    rows = []
    for name in data["regimes"]:
        for label in ("newton", "Algorithm 1"):
            s = data[name]["methods"][label]
            unit = s["unit steps"] / s["steps total"] if s["steps total"] else math.nan
            kept = (f"{s['runs with kept rows']}/{s['runs']} (max {s['kept rows max']} rows)"
                    if "runs with kept rows" in s else "—")
            rows.append([name, label, f"{s['unit steps']}/{s['steps total']} ({100 * unit:.0f}%)", s["shifts"], kept])
    return rows


ADDITIONS_HEADERS = ["regime", "method", "unit steps (t = 1)", "shifted iterations",
                     "runs with B_diag + w² < 0 at an iterate (rows kept exactly)"]


def sweep_facts(data: dict[str, Any]) -> dict[str, Any]:
    """Numbers and words the chapter and the ledger state about the sweep (one home for both)."""
    names = data["regimes"]
    seeds = data["seeds"]
    f: dict[str, Any] = {"seeds": seeds, "n": data["n"], "d": data["d"], "regimes": len(names)}
    alg = [data[k]["methods"]["Algorithm 1"] for k in names]
    newt = [data[k]["methods"]["newton"] for k in names]
    f["alg_unit"] = sum(s["unit steps"] for s in alg)
    f["alg_steps"] = sum(s["steps total"] for s in alg)
    f["alg_runs"] = sum(s["runs"] for s in alg)
    f["alg_shifts"] = sum(s["shifts"] for s in alg)
    f["alg_kept_runs"] = sum(s.get("runs with kept rows", 0) for s in alg)
    f["alg_kept_regimes"] = [k for k, s in zip(names, alg, strict=True) if s.get("runs with kept rows", 0)]
    f["newton_unit"] = sum(s["unit steps"] for s in newt)
    f["newton_steps"] = sum(s["steps total"] for s in newt)
    f["newton_shifts"] = sum(s["shifts"] for s in newt)
    f["runs_per_method"] = seeds * len(names)
    for tol in TOLS:
        for label in data[names[0]]["labels"]:
            fails = sum(data[k]["methods"][label][f"fail {tol:g}"] for k in names if label in data[k]["methods"])
            f[f"fail {label} {tol:g}"] = fails
    # Is the instance locally PD at x* without the regulariser (w = 0 regime)?
    if "w = 0" in names:
        f["w0_pd"] = int(np.count_nonzero(data["w = 0"]["exp_ratio"] > 0))
        f["w0_ratio_min"] = float(data["w = 0"]["exp_ratio"].min())
    f["pd_all"] = int(sum(np.count_nonzero(data[k]["l"] > 0) for k in names))
    f["grad_rel_max"] = float(max(data[k]["grad_rel"].max() for k in names))
    # medians of Newton-CG vs exact Newton at 1e-9 r0, per regime
    f["cg_vs_newton"] = [(k, data[k]["methods"]["newton-cg"]["med 1e-09"], data[k]["methods"]["newton"]["med 1e-09"])
                         for k in names]
    f["cg_same_as_newton"] = all(c == n for _, c, n in f["cg_vs_newton"])
    f["cg_extra_max"] = max(c - n for _, c, n in f["cg_vs_newton"])
    slopes = np.array([data[k]["newton_rate_slope"] for k in names])
    f["newton_slope_median"] = float(np.nanmedian(slopes))
    f["newton_slope_min"], f["newton_slope_max"] = float(np.nanmin(slopes)), float(np.nanmax(slopes))
    f["newton_slope_points"] = int(sum(data[k]["newton_rate_points"] for k in names))
    kap = {k: float(np.median(data[k]["kappa"])) for k in names}
    f["kappa"] = kap
    f["kappa_max_regime"] = max(kap, key=kap.get)
    return f


def fmt_tol(tol: float) -> str:
    """``1e-6`` for ``1e-06``: how the chapter writes an accuracy relative to ``r₀``."""
    return f"{tol:.0e}".replace("e-0", "e-")


def _reach(s: dict[str, Any], tol: float) -> str:
    ok = s["runs"] - s[f"fail {tol:g}"]
    med = f" (median {s[f'med {tol:g}']:.0f} iterations)" if ok else ""
    return f"{fmt_tol(tol)} r₀ in {ok} of {s['runs']} runs{med}"


def baseline_text(rg: dict[str, Any], well: str = "well conditioned", ill: str = "col_range 1000") -> str:
    """What the baselines did on a well- and an ill-conditioned regime, in words chosen from the counts."""
    kap = float(np.median(rg[ill]["kappa"]))
    out = []
    for label, name in (("gd", "Gradient descent"), ("lbfgs", "L-BFGS")):
        a, b = rg[well]["methods"][label], rg[ill]["methods"][label]
        cap = rg["maxiter"].get(label, rg["maxiter"]["second"])
        out.append(f"{name} reached {_reach(a, 1e-6)} and {_reach(a, 1e-9)} on the well-conditioned regime; at "
                   f"κ ≈ {kap:.1e} it reached {_reach(b, 1e-6)} and {_reach(b, 1e-9)} (limit {cap} iterations).")
    return " ".join(out)


def _median_range(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):.3g} (range {v.min():.3g}–{v.max():.3g})"


def closing_bullets(sk: dict[str, Any], rg: dict[str, Any], it: dict[str, Any], shr: dict[str, Any],
                    cost: dict[str, Any]) -> list[str]:
    """The chapter's closing bullets, each sentence and each qualitative word chosen from the numbers."""
    f = sweep_facts(rg)
    plan = sk["plan"]
    N = plan["draws"]
    bullets = []
    rejected = sk["miss_gram"] >= plan["critical"]
    bullets.append(
        f"- **Lemma A.8 inside its range.** At ε₀ = {sk['eps_test']:g}, AᵀD̃A missed the target in "
        f"{sk['miss_gram']} of {N} draws and Algorithm 1's H̃ in {sk['miss_H']}; a binomial test with power "
        f"{plan['power']:.2f} against a miss rate of {plan['alternative']:.0%} "
        + ("rejects" if rejected else "does not reject") + f" the lemma's δ = {sk['delta']:g} "
        "(with C = 1 in the sample size, our constant).")
    names = rg["regimes"]
    alg9 = [rg[k]["methods"]["Algorithm 1"]["med 1e-09"] for k in names]
    kap = [float(np.median(rg[k]["kappa"])) for k in names]
    bullets.append(
        f"- **The paper's algorithm.** Algorithm 1 at ε₀ = {rg['eps_in']:g} reached 1e-9 r₀ in "
        f"{f['runs_per_method'] - f['fail Algorithm 1 1e-09']} of {f['runs_per_method']} runs "
        f"({rg['seeds']} seeds × {len(names)} regimes, κ(∇²L(x*)) medians from {min(kap):.3g} to {max(kap):.3g}), "
        f"in a median of {min(alg9):.0f}–{max(alg9):.0f} iterations per regime; its count was within Lemma A.11's "
        f"in {100 * float(np.nanmean(it['Algorithm 1 all'] <= it['predicted'])):.0f}% of (seed, ε) pairs.")
    unit_pct = 100 * f["alg_unit"] / f["alg_steps"] if f["alg_steps"] else math.nan
    kept = (f"rows with B_diag + w² < 0 appeared in {f['alg_kept_runs']} runs "
            f"({', '.join(f['alg_kept_regimes'])}), where the algorithm to the letter stops"
            if f["alg_kept_runs"] else "no run met a non-positive diagonal")
    bullets.append(
        f"- **What the solver added.** {unit_pct:.0f}% of Algorithm 1's steps were unit steps, "
        f"{f['alg_shifts']} iterations needed a shift; {kept}.")
    inside = shr["inside_measured"] == shr["runs"]
    bullets.append(
        f"- **Hypotheses.** x₀ = 0 lies inside the good-initialisation radius with the measured M in "
        f"{shr['inside_measured']} of {shr['runs']} runs and with the summary's reading of M in "
        f"{shr['inside_summary']}; " + ("so Lemma A.10 was tested where its hypothesis holds for the measured M"
                                         if inside else "so the measured-M test is partly outside Lemma A.10")
        + f". The regulariser supplied {100 * float(np.median(rg[names[0]]['w_share'])):.0f}% of the curvature at "
        f"x* in the base regime; without it x* was locally positive definite in {f.get('w0_pd', 0)} of "
        f"{rg['seeds']} seeds.")
    e_out = f"{cost['eps_out']:g}"
    cross = cost[f"crossover {e_out}"]
    bullets.append(
        f"- **Cost.** At n = {cost['n']} the sketched Hessian (ε₀ = {e_out}, outside the lemma's range) was "
        + ((f"faster than the exact one from d = {cross} on" if cost[f"pays at all larger d {e_out}"] else
            f"faster than the exact one first at d = {cross}, not at every larger d") if cross > 0 else
           f"slower than the exact one at every d up to {int(cost['ds'].max())}")
        + f"; inside the range (ε₀ = {cost['eps_in']:g}) it was "
        + ("faster first at d = " + str(cost[f"crossover {cost['eps_in']:g}"])
           if cost[f"crossover {cost['eps_in']:g}"] > 0 else "never faster where it samples")
        + f". It makes {int(np.median(cost[f'd passes {e_out}']))} passes over A per iteration against "
        f"{int(np.median(cost['d exact passes']))} for the exact Hessian: "
        + ("it saves passes as well as flops per row." if np.median(cost[f"d passes {e_out}"]) <
           np.median(cost["d exact passes"]) else "the saving is in flops per row, not passes."))
    ill_names = [k for k in names if np.median(rg[k]["kappa"]) > 100]
    gd_ill = sum(rg["seeds"] - rg[k]["methods"]["gd"]["fail 1e-06"] for k in ill_names)
    gd_rest = sum(rg["seeds"] - rg[k]["methods"]["gd"]["fail 1e-06"] for k in names if k not in ill_names)
    lb_ill = sum(rg["seeds"] - rg[k]["methods"]["lbfgs"]["fail 1e-06"] for k in ill_names)
    n_ill = rg["seeds"] * len(ill_names)
    bullets.append(
        f"- **Baselines.** Gradient descent (first step from a Lipschitz estimate) reached 1e-6 r₀ in {gd_rest} of "
        f"{f['runs_per_method'] - n_ill} runs of the regimes with κ(∇²L(x*)) ≤ 100 and in {gd_ill} of {n_ill} of "
        f"the ill-conditioned ones (κ > 100) within {rg['maxiter']['gd']} iterations; L-BFGS reached 1e-6 r₀ in "
        f"{lb_ill} of {n_ill} ill-conditioned runs, and 1e-9 r₀ in "
        f"{f['runs_per_method'] - f['fail lbfgs 1e-09']} of all {f['runs_per_method']}.")
    sl = [rg[k]["methods"]["sketch-lbfgs"]["med 1e-06"] for k in names]
    cg_word = "kept" if f["cg_same_as_newton"] else "did not keep"
    bullets.append(
        f"- **Our extensions.** Newton-CG {cg_word} exact Newton's iteration count (up to "
        f"{f['cg_extra_max']:.1f} more iterations in median); sketch-L-BFGS needed a median of "
        f"{min(sl):.0f}–{max(sl):.0f} iterations to 1e-6 r₀ across regimes, including κ ≈ {max(kap):.1e}.")
    return bullets


# ---------------------------------------------------------------------------- the claims ledger


def _ledger_data() -> dict[str, Any]:
    from softres.figures import compute

    return {"sk": compute("newton-sketch-error"), "rg": compute("newton-regimes"), "it": compute("newton-iterations"),
            "shr": compute("newton-shrinking"), "cost": compute("newton-cost")}


def ledger_rows(data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The claims ledger's rows for Appendix A and Section 9 (Definitions A.1–A.7, A.9; Lemmas A.8, A.10,
    A.11; Theorem 9.1; Algorithm 1), from the chapter's registered figure data.

    ``data`` (keys ``sk``, ``rg``, ``it``, ``shr``, ``cost``: the data of ``newton-sketch-error``,
    ``newton-regimes``, ``newton-iterations``, ``newton-shrinking``, ``newton-cost``) defaults to
    :func:`softres.figures.compute` of those figures, which reuses the chapter's data during a build.
    """
    d = _ledger_data() if data is None else data
    sk, rg, it, shr, cost = d["sk"], d["rg"], d["it"], d["shr"], d["cost"]
    f = sweep_facts(rg)
    names = rg["regimes"]
    runs = f["runs_per_method"]
    rows: list[dict[str, Any]] = []

    def row(item, label, check, evidence, verdict, passed):
        rows.append({"item": item, "chapter": "newton", "label": label, "check": check, "evidence": evidence,
                     "verdict": verdict, "passed": None if passed is None else bool(passed)})

    pd_ok = f["pd_all"] == runs and f["grad_rel_max"] < 1e-8
    row("Definition A.1", "def-a-1",
        "λ_min(∇²L(x*)) and ‖∇L(x*)‖/‖∇L(x₀)‖ at the computed minimiser of every instance of the sweep; fails if "
        "some x* is not an l-local minimum.",
        f"λ_min > 0 in {f['pd_all']} of {runs} instances ({len(names)} regimes); max relative gradient "
        f"{f['grad_rel_max']:.1e}; at w = 0, λ_min/λ_max of ∇²L_exp(x*) ≥ {f.get('w0_ratio_min', math.nan):.2f} "
        f"in {f.get('w0_pd', 0)} of {rg['seeds']} seeds",
        "holds on these instances" if pd_ok else "does not hold on some instances", pd_ok)
    M = shr["M_measured"]
    row("Definition A.2", "def-a-2",
        "largest ‖∇²L(x) − ∇²L(y)‖/‖x − y‖ over sampled pairs near x* (a lower bound on M, not a test of a bound).",
        f"measured M {_median_range(M)} over {shr['runs']} instances (n = {shr['n']}, d = {shr['d']})",
        "measured (lower bound on M)", None)
    inside = shr["inside_measured"] == shr["runs"]
    row("Definition A.3", "def-a-3",
        "r₀ = ‖x₀ − x*‖ against 0.1 l/M with the measured M and with the summary's reading of Lemma 8.1's M "
        "(R = max(4, ‖A‖, ‖x*‖)); fails if x₀ = 0 is outside the radius with the measured M.",
        f"x₀ inside with measured M in {shr['inside_measured']}/{shr['runs']} runs (radius ≥ "
        f"{shr['init_radius_measured_runs'].min():.3g} vs r₀ ≤ {shr['r0_runs'].max():.3g}); with the summary's M in "
        f"{shr['inside_summary']}/{shr['runs']} (radius ≤ 1e{shr['log10_init_radius_summary_runs'].max():.0f})",
        "x₀ good with the measured M, not with the summary's M" if inside else "x₀ not good with the measured M",
        inside)
    row("Definition A.4", "def-a-4",
        "combination of A.1–A.3 on the instances of the shrinking runs.",
        f"A.1 holds on all instances: {pd_ok}; x₀ good (measured M): {shr['inside_measured']}/{shr['runs']}",
        "holds with the measured M (a lower bound), unverified with the true M", pd_ok and inside)
    row("Definition A.5", "def-a-5", "statement only (gradient and Hessian are checked in the gradient and "
        "Hessian chapters).", "—", "not checked here", None)
    slope = f["newton_slope_median"]
    quad = 1.8 <= slope <= 2.5
    row("Definition A.6", "def-a-5",
        "exact Newton's rate: slope of log r_{t+1} against log r_t between the damped start and rounding, per "
        "regime; fails if the median slope is outside [1.8, 2.5].",
        f"median slope {slope:.2f} (range {f['newton_slope_min']:.2f}–{f['newton_slope_max']:.2f}) over "
        f"{f['newton_slope_points']} steps; unit steps {f['newton_unit']}/{f['newton_steps']}",
        "quadratic convergence observed" if quad else "quadratic convergence not observed", quad)
    ratio_med = float(np.median(sk["test_H"]) / np.median(sk["test_gram"]))
    row("Definition A.7", "def-a-7",
        "achieved ε₀ of Algorithm 1's H̃ against ∇²L (bounds.spectral_error), next to AᵀD̃A's against AᵀDA.",
        f"at ε₀ = {sk['eps_test']:g}: median achieved {np.median(sk['test_H']):.3f} for H̃ vs "
        f"{np.median(sk['test_gram']):.3f} for AᵀD̃A (ratio {ratio_med:.2f}); {sk['plan']['draws']} draws each",
        "measured", None)
    literal_ok = shr["reached_1e-9"] == shr["runs"]
    row("Definition A.9", "def-a-9",
        "the update run to the letter (no line search, no shift, nonpositive='raise') from x₀ = 0; fails if a "
        "run does not reach 1e-9 r₀ or stops on a non-positive diagonal.",
        f"{shr['reached_1e-9']}/{shr['runs']} runs reached 1e-9 r₀ at ε₀ = {shr['eps0']:g}; "
        f"{sum(bool(x) for x in shr['stopped'])} stopped on B_diag + w² ≤ 0",
        "converges on these instances" if literal_ok else "does not converge on some instances", literal_ok)
    plan = sk["plan"]
    not_rejected = sk["miss_gram"] < plan["critical"]
    row("Lemma A.8", "lemma-a-8",
        f"misses of ε₀ = {sk['eps_test']:g} (inside (0, 0.1)) by AᵀD̃A in {plan['draws']} independent draws; "
        f"one-sided binomial test of miss rate ≤ δ at level {plan['size']:.3f}, power {plan['power']:.2f} "
        f"against {plan['alternative']:.0%}; fails if it rejects.",
        f"{sk['miss_gram']}/{plan['draws']} misses (p = {sk['p_gram']:.2f}); H̃: {sk['miss_H']}/{plan['draws']} "
        f"(p = {sk['p_H']:.2f}); δ = {sk['delta']:g}, C = 1 (ours); n = {sk['n']}, d = {sk['d']}; "
        f"per-iteration δ/T with T = {sk['union_T']} needs s × {sk['s_union_ratio']:.2f}",
        "not rejected (consistent with δ)" if not_rejected else "miss rate above δ (with C = 1)", not_rejected)
    a10_ok = shr["violations"] == 0
    row("Lemma A.10", "lemma-a-10",
        "observed r_{t+1}/r_t of Definition A.9 run literally against 2(ε₀ + M r_t/(l − M r_t)) with the achieved "
        "ε₀ and the measured M (a lower bound on M, so the factor is not rigorous); fails on any step above it.",
        f"{shr['violations']} of {shr['observed'].size} steps above the factor over {shr['runs']} runs; largest "
        f"contraction {shr['observed'].max():.3f}, smallest factor {shr['bound'].min():.3f}; x₀ inside the "
        f"measured-M radius in {shr['inside_measured']}/{shr['runs']}",
        "not falsified (measured M)" if a10_ok else "violated with the measured M", a10_ok)
    a11_ok = shr["a11_violations"] == 0
    row("Lemma A.11", "lemma-a-11",
        "r_t ≤ 0.4^t r₀ at every step of the literal runs; fails on any step above.",
        f"{shr['a11_violations']} of {shr['a11_steps']} steps above 0.4^t r₀ ({shr['runs']} runs, achieved ε₀ median "
        f"{np.median(shr['achieved_eps']):.3f}, not the lemma's 0.01)",
        "not falsified" if a11_ok else "violated", a11_ok)
    within = float(np.nanmean(it["Algorithm 1 all"] <= it["predicted"]))
    conv = runs - f["fail Algorithm 1 1e-09"]
    t_ok = conv == runs and within >= 0.95
    row("Theorem 9.1 (iterations)", "theorem-9-1",
        "Algorithm 1 (ε₀ inside the range) reaches 1e-9 r₀ in every run of the sweep, and its iterations to each ε "
        "stay within Lemma A.11's count in ≥ 95% of (seed, ε) pairs; the hypotheses on w and R are not met "
        "(w far below Lemma 7.1's), x₀ is good only for the measured M.",
        f"{conv}/{runs} runs reached 1e-9 r₀ ({rg['seeds']} seeds × {len(names)} regimes); within A.11's count in "
        f"{100 * within:.0f}% of {it['Algorithm 1 all'].size} pairs",
        "consistent, outside the theorem's hypotheses on w" if t_ok else "not supported", t_ok)
    e_out = f"{cost['eps_out']:g}"
    passes_const = bool(np.all(cost[f"n passes {e_out}"] == cost[f"n passes {e_out}"][0]))
    rows_const = bool(np.ptp(cost[f"n draws {e_out}"]) == 0)
    c_ok = passes_const and rows_const and cost["slope sketched"] < 1.3
    row("Theorem 9.1 (cost per iteration)", "theorem-9-1",
        "passes over A (P.op.passes) and sampled rows of one sketched Hessian as n grows at fixed d, and the "
        "log-log slope of its time in n; fails if passes or s grow with n or the slope exceeds 1.3.",
        f"passes {cost[f'n passes {e_out}'].tolist()} and s {cost[f'n draws {e_out}'].tolist()} for n = "
        f"{cost['ns'].tolist()} (d = {cost['d_n']}); time slope {cost['slope sketched']:.2f} (exact "
        f"{cost['slope exact']:.2f}); faster than exact from d = {cost[f'crossover {e_out}']} at n = {cost['n']}",
        "consistent (linear in nnz(A) plus an n-free term)" if c_ok else "not supported", c_ok)
    unit_all = f["alg_steps"] > 0 and f["alg_unit"] == f["alg_steps"] and f["alg_shifts"] == 0
    row("Algorithm 1", "algorithm-1",
        "the solver's history (line-search step lengths t, Cholesky shifts): share of unit steps and shifts "
        "(the solver's additions); runs meeting B_diag + w² < 0 (where the algorithm to the letter stops).",
        f"unit steps {f['alg_unit']}/{f['alg_steps']} in {f['alg_runs']} runs; shifts "
        f"{f['alg_shifts']}; non-positive diagonal in {f['alg_kept_runs']}/{runs} runs "
        f"({', '.join(f['alg_kept_regimes']) or 'none'})",
        ("runs as stated where B_diag + w² > 0; needs nonpositive='exact' elsewhere" if f["alg_kept_runs"]
         else "runs as stated") if unit_all else "the solver's additions changed the iterates",
        unit_all)
    return rows
