"""The real-data chapter's measurements at a larger scale: more seeds, splits, pairs and sample sizes.

Runs the data functions of :mod:`softres.experiments.realdata` with larger arguments than the book
(which must build in its time budget) and prints the numbers the chapter's closing note refers to:
held-out error (median and range over splits), the sampled Hessian Lipschitz ratio, every solver's
iterations and seconds to ``1e-6 r₀`` and ``1e-9 r₀`` (median over seeds), and leverage-score against
uniform sampling at several sample sizes.

Usage::

    python benchmarks/bench_realdata.py            # splits 20, pairs 100, repeats 5, sampling 10 seeds at 10/20/40 %
    python benchmarks/bench_realdata.py --quick    # the book's sizes
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from softres.experiments import realdata as ex


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [headers, *[[str(c) for c in r] for r in rows]]
    width = [max(len(r[j]) for r in cells) for j in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the book's sizes")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    big = not args.quick
    t0 = time.perf_counter()
    fit = ex.fits(rng, splits=20 if big else 5, lipschitz_pairs=100 if big else 16)
    print(f"fits ({time.perf_counter() - t0:.1f} s)")
    print(_table(ex.FIT_HEADERS, ex.fit_rows(fit)))
    print(_table(ex.ASSUMPTION_HEADERS, ex.assumption_rows(fit)))
    t0 = time.perf_counter()
    sol = ex.solvers(rng, repeats=5 if big else 2, maxiter=400 if big else 100)
    print(f"\nsolvers ({time.perf_counter() - t0:.1f} s)")
    for level in sol["levels"]:
        print(f"to {level:g} r0")
        print(_table(*ex.solver_rows(sol, level)))
    for fraction in (0.1, 0.2, 0.4) if big else (0.2,):
        t0 = time.perf_counter()
        smp = ex.sampling(rng, repeats=10 if big else 4, fraction=fraction, maxiter=60 if big else 30)
        print(f"\nsampling, {fraction:.0%} of the rows ({time.perf_counter() - t0:.1f} s)")
        print(_table(ex.SAMPLING_HEADERS, ex.sampling_rows(smp)))


if __name__ == "__main__":
    main()
