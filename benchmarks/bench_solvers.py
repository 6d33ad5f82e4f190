"""Time to ‖x − x*‖ ≤ 1e-8 for softres' solvers and scipy's, side by side in one run.

For each shape, one seeded problem (``softres.random_problem``, ``w = 5``) is solved from ``x0 = 0``
by every softres method and by scipy.optimize's trust-exact, Newton-CG, trust-krylov and L-BFGS-B,
all given the same ``loss``/``grad``/``hess``/``hessp`` (L-BFGS-B: ``loss_and_grad``). ``x*`` comes
from exact Newton polished to rounding level. A callback timestamps every iterate; the reported time
is the first moment an iterate is within ``1e-8`` of ``x*`` (``-`` if never, within the iteration cap).

Also reports the mean time per iteration of sketch-newton and exact Newton, and the log–log slope
of each against ``n``.

Usage::

    python benchmarks/bench_solvers.py                   # n in {1e4, 1e5, 1e6}, d in {50, 200}, dense and sparse 1%
    python benchmarks/bench_solvers.py --col-range 100   # the same with column scales spanning 100x (ill-conditioned)
    python benchmarks/bench_solvers.py --quick           # n in {1e4, 1e5}, d = 50, dense only
    python benchmarks/bench_solvers.py --sizes 1000000 --repeat 3   # n = 1e6 only; contenders best of 3
    python benchmarks/bench_solvers.py --per-iteration   # only the per-iteration costs at n = 1e6, d = 200,
                                                         # interleaved and best of 3 (the noisy machine's fair test)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

import softres
from softres.experiments import autodiff
from softres.experiments._common import loglog_slope, speed_words
from softres.experiments.autodiff import optimum

TARGET = 1e-8
# (label, method, options); "sketch-newton+" rescales earlier leverage scores while the diagonal moves by
# at most 2x and keeps rows with B_diag + w² <= 0 exactly (both beyond the paper's Algorithm 1).
SOFTRES = [("newton", "newton", {}), ("sketch-newton", "sketch-newton", {"eps0": 0.5}),
           ("sketch-newton+", "sketch-newton", {"eps0": 0.5, "score_reuse": 2.0, "nonpositive": "exact"}),
           ("newton-cg", "newton-cg", {"eps0": 0.5, "score_reuse": 2.0}),
           ("sketch-lbfgs", "sketch-lbfgs", {"eps0": 0.3}), ("newton-lbfgs", "newton-lbfgs", {}),
           ("lbfgs", "lbfgs", {})]
SCIPY = ["trust-exact", "Newton-CG", "trust-krylov", "L-BFGS-B"]


class Clock:
    """Callback recording when the iterates first come within TARGET of x*."""

    def __init__(self, xstar):
        self.xstar, self.t0, self.hit, self.iters = xstar, time.perf_counter(), None, 0

    def __call__(self, x, *args):
        x = getattr(x, "x", x)  # trust-* callbacks may pass an OptimizeResult
        self.iters += 1
        if self.hit is None and np.linalg.norm(x - self.xstar) <= TARGET:
            self.hit = (time.perf_counter() - self.t0, self.iters)


def run_softres(P, xstar, method, opts):
    clock = Clock(xstar)
    res = softres.minimize(P, np.zeros(P.d), method=method, tol=1e-13, maxiter=300, seed=0, callback=clock, **opts)
    per_iter = (res.history["time"][-1] / max(res.nit, 1)) if res.nit else float("nan")
    return clock.hit, per_iter


def run_scipy(P, xstar, method):
    """One scipy method given softres' ``loss``, ``grad`` (``loss_and_grad`` for L-BFGS-B), ``hess``, ``hessp``.

    Run by :func:`softres.experiments.autodiff.run_scipy` (on ``c·L`` with ``c = n²``, as explained
    there), which stops at the first hit; ``(seconds, iterations)`` or ``None``.
    """
    oracles = autodiff.JaxOracles(fun=P.loss, jac=P.grad, fun_and_jac=P.loss_and_grad, hessp=P.hessp, hess=P.hess,
                                  peer="softres")
    hit = autodiff.run_scipy(P, oracles, xstar, method)
    return (hit["seconds"], hit["iterations"]) if hit else None


def per_iteration(n: int = 1_000_000, d: int = 200, repeat: int = 3) -> None:
    """Seconds per iteration of exact Newton and both sketch variants, interleaved, best of ``repeat``.

    Algorithm 1 runs with ``nonpositive="exact"`` here so that a few rows with ``B_diag + w² ≤ 0``
    (kept exactly, at negligible cost) do not end the run before its iterations can be timed.
    """
    labels = ["newton", "sketch-newton", "sketch-newton+"]
    for dens in (None, 0.01):
        P = softres.random_problem(n, d, seed=0, density=dens, w=5.0)
        runs = {lab: (m, o) for lab, m, o in SOFTRES if lab in labels}
        best = dict.fromkeys(labels, np.inf)
        for _ in tqdm(range(repeat), desc=f"per-iteration, {'dense' if dens is None else 'sparse'}"):
            for lab in labels:
                method, opts = runs[lab]
                opts = opts | ({"nonpositive": "exact"} if method == "sketch-newton" else {})
                res = softres.minimize(P, np.zeros(d), method=method, tol=1e-13, maxiter=4, seed=0, **opts)
                t = res.history["time"]
                best[lab] = min(best[lab], (t[-1] - t[0]) / (len(t) - 1))
        kind = "dense" if dens is None else "sparse 1%"
        print(f"n={n} d={d} {kind}: " + "  ".join(f"{lab} {best[lab]:.3f} s/it" for lab in labels)
              + f"  exact/sketch {best['newton'] / best['sketch-newton']:.2f}"
              + f"  exact/sketch+ {best['newton'] / best['sketch-newton+']:.2f}")
        del P


def _faster(a, b):
    """The faster of two (seconds, iterations) hits; ``None`` means the target was not reached."""
    return min((h for h in (a, b) if h is not None), default=None)


def _contender(times: dict, key: str) -> bool:
    """Whether ``key`` reached the target within 2x of the best time on its side (softres or scipy)."""
    side = key.split()[0]
    best = min((t[0] for k, t in times.items() if k.startswith(side) and t), default=np.inf)
    return times.get(key) is not None and times[key][0] <= 2 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--col-range", type=float, default=1.0,
                        help="ratio of the largest to the smallest column scale of A (conditioning)")
    parser.add_argument("--dense-only", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="values of n")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds; after the first, only methods within 2x of their side's best run again "
                             "(the contenders for 'best'), and each keeps its fastest round")
    parser.add_argument("--per-iteration", action="store_true",
                        help="only seconds per iteration at n = 1e6, d = 200 (interleaved, best of 3)")
    args = parser.parse_args()
    if args.per_iteration:
        per_iteration()
        return
    if args.quick:
        cases = [(n, 50, None) for n in (10_000, 100_000)]
    else:
        densities = (None,) if args.dense_only else (None, 0.01)
        cases = [(n, d, dens) for dens in densities for d in (50, 200) for n in args.sizes]
    rows, per_iter = [], {}
    bar = tqdm(total=len(cases) * (len(SOFTRES) + len(SCIPY)) * args.repeat, desc="solver runs")
    for n, d, dens in cases:
        P = softres.random_problem(n, d, seed=0, density=dens, w=5.0, col_range=args.col_range)
        xstar = optimum(P)
        times: dict = {}
        for rnd in range(args.repeat):
            for label, method, opts in SOFTRES:
                if rnd == 0 or _contender(times, "softres " + label):
                    hit, per = run_softres(P, xstar, method, opts)
                    times["softres " + label] = _faster(times.get("softres " + label), hit)
                    per_iter[(n, d, dens, label)] = min(per, per_iter.get((n, d, dens, label), np.inf))
                bar.update()
            for method in SCIPY:
                if rnd == 0 or _contender(times, "scipy " + method):
                    times["scipy " + method] = _faster(times.get("scipy " + method), run_scipy(P, xstar, method))
                bar.update()
        rows.append((n, d, dens, times))
        del P
    bar.close()
    names = list(rows[0][3])
    print(f"\ncol_range = {args.col_range:g}; seconds (iterations) until ||x - x*|| <= {TARGET:g}; "
          "'-' = not reached within 300 iterations")
    print(f"{'n':>8} {'d':>4} {'A':>7} | " + " | ".join(f"{m:>22}" for m in names) + " | best softres vs best scipy")
    for n, d, dens, times in rows:
        cells = [f"{t[0]:>13.3f} ({t[1]:>4d})" if t else f"{'-':>20}" for t in times.values()]
        best = {side: min([t[0] for k, t in times.items() if k.startswith(side) and t], default=np.inf)
                for side in ("softres", "scipy")}
        kind = "dense" if dens is None else "sparse"
        print(f"{n:>8} {d:>4} {kind:>7} | " + " | ".join(f"{c:>22}" for c in cells)
              + f" | softres {speed_words(best['scipy'], best['softres'])}")
    print("\nmean seconds per iteration, sketch-newton (Algorithm 1) and sketch-newton+ vs exact newton "
          "(exact/sketch > 1: the sketch's iteration is cheaper; < 1: it is dearer)")
    for d in sorted({k[1] for k in per_iter}):
        for dens in sorted({k[2] for k in per_iter if k[1] == d}, key=lambda v: v or 0):
            ns = sorted({k[0] for k in per_iter if k[1] == d and k[2] == dens})
            sk, skp, ex = ([per_iter[(n, d, dens, lab)] for n in ns]
                           for lab in ("sketch-newton", "sketch-newton+", "newton"))
            kind = "dense" if dens is None else "sparse"
            for n, a, a2, b in zip(ns, sk, skp, ex, strict=True):
                print(f"  d={d:>3} {kind:>6} n={n:>8}: sketch {a:.4f}  sketch+ {a2:.4f}  exact {b:.4f}  "
                      f"exact/sketch {b / a:.2f}  exact/sketch+ {b / a2:.2f}")
            if len(ns) > 1:
                print(f"  d={d:>3} {kind:>6} log-log slope in n: sketch {loglog_slope(ns, sk):.2f}, "
                      f"sketch+ {loglog_slope(ns, skp):.2f}, exact {loglog_slope(ns, ex):.2f}")

if __name__ == "__main__":
    main()
