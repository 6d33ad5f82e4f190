"""softres against scipy.optimize with JAX derivatives (jit, float64), side by side in one run (issue 14).

For each cell (``n`` × conditioning × dense or sparse 1% ``A``, ``d = 100``), one seeded problem
(``softres.random_problem``, ``w = 5``) is solved from ``x0 = 0`` by every softres method and by
scipy's L-BFGS-B (JAX's fused ``value_and_grad``), trust-exact (``jax.hessian``), Newton-CG and
trust-krylov (a jvp of ``jax.grad``), each timed until its first iterate within ``1e-8`` of ``x*``
(polished exact Newton). The derivatives are timed too (JAX ÷ softres; above 1, softres is faster).
JAX's functions are compiled before any timing. For sparse ``A``, JAX gets a BCOO matrix or a dense
copy, whichever computes its gradient faster (named in the table). Everything is computed by
:mod:`softres.experiments.autodiff`; this script prints its tables. Needs the ``bench`` group
(``pip install -e ".[bench]"``; the Makefile installs it).

Usage::

    python benchmarks/bench_autodiff.py                      # n in {1e4, 1e5, 1e6}, col_range 1 and 100, dense, sparse
    python benchmarks/bench_autodiff.py --repeat 3           # contenders best of 3 (the README's run)
    python benchmarks/bench_autodiff.py --quick              # n = 1e4 only, one round
    python benchmarks/bench_autodiff.py --sizes 100000 --col-range 100 --dense-only
    python benchmarks/bench_autodiff.py --breakdown lbfgs --sizes 10000 --col-range 1 --dense-only
                                                             # where one solve's time goes (no JAX)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from softres.experiments import autodiff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="values of n")
    parser.add_argument("--col-range", type=float, nargs="+", default=[1.0, 100.0],
                        help="ratios of the largest to the smallest column scale of A (1: well-conditioned)")
    parser.add_argument("--dense-only", action="store_true")
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds; after the first, only methods within 2x of their side's best run again")
    parser.add_argument("--quick", action="store_true", help="n = 1e4 only, one round")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit numpy's BLAS to this many threads (JAX's pool is not limited)")
    parser.add_argument("--json", help="also write the rows (autodiff.grid's output) to this JSON file")
    parser.add_argument("--breakdown", metavar="METHOD",
                        help="instead of the grid: split METHOD's solve time into products with A, the rest of "
                             "the evaluations and the solver's own work, per cell (autodiff.breakdown)")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args)
        return
    sizes, repeat = ([10_000], 1) if args.quick else (args.sizes, args.repeat)
    densities = (None,) if args.dense_only else (None, 0.01)
    t0 = time.perf_counter()
    rows = autodiff.grid(sizes=sizes, col_ranges=args.col_range, densities=densities, d=args.d, repeat=repeat,
                         blas_threads=args.blas_threads, progress=True)
    wall = time.perf_counter() - t0
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)
    print(f"\nd = {args.d}, seed 0, w = 5; best of {repeat} round(s); time until ||x - x*|| <= {autodiff.TARGET:g}; "
          f"wall time {wall:.0f} s; load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(autodiff.table(rows, by_column=0).data)
    print("\nEvery method: time to 1e-8 (iterations); '-' = not reached (stopped after 30x the cell's best so far)\n")
    print(autodiff.runs_table(rows).data)
    print("\nDerivatives, milliseconds per call (softres grad at a new point, hessp at a cached one)\n")
    keys = ["softres grad", "jax grad", "jax fun_and_grad", "softres hessp", "jax hessp", "softres hess", "jax hess",
            "one pass"]
    print("| n | col_range | A | JAX's A | " + " | ".join(keys) + " |")
    print("|" + " --- |" * (4 + len(keys)))
    for r in rows:
        cells = [f"{1e3 * r[k + ' seconds']:.3g}" for k in keys]
        kind = "dense" if r["density"] is None else "sparse"
        peer = r["peer"] + (" (grad " + ", ".join(f"{k} {1e3 * v:.3g} ms" for k, v in r["peer_grad"].items()) + ")"
                            if r["peer_grad"] else "")
        print(f"| {r['n']:,} | {r['col_range']:g} | {kind} | {peer} | " + " | ".join(cells) + " |")
    print("\nJAX setup (building A and compiling, excluded from every timing): "
          + ", ".join(f"{r['jax_setup_seconds']:.1f} s" for r in rows))
    speedups = np.array([r["speedup"] for r in rows])
    print(f"speedup best softres / best scipy+JAX: min {speedups.min():.2f}, max {speedups.max():.2f}")


def breakdown(args: argparse.Namespace) -> None:
    """Print :func:`autodiff.breakdown` for each cell of the arguments' grid (medians, milliseconds)."""
    import softres

    densities = (None,) if args.dense_only else (None, 0.01)
    print(f"d = {args.d}, seed 0, w = 5; method {args.breakdown}; medians of {args.repeat * 10} interleaved runs, "
          "each after a pause and untimed runs\n")
    print("| n | col_range | A | iterations | passes | solve | products | evaluation work | solver "
          "| replayed exactly |")
    print("|" + " --- |" * 10)
    for n in args.sizes:
        for cr in args.col_range:
            for dens in densities:
                P = softres.random_problem(n, args.d, seed=0, density=dens, w=5.0, col_range=cr)
                b = autodiff.breakdown(P, autodiff.optimum(P), args.breakdown, repeat=args.repeat * 10)
                ms = [f"{1e3 * b[k]:.3g} ms" for k in ("solve", "products", "evaluation work", "solver")]
                print(f"| {n:,} | {cr:g} | {'dense' if dens is None else 'sparse'} | {b['iterations']} | "
                      f"{b['passes']} | " + " | ".join(ms) + f" | {b['replayed exactly']} |")


if __name__ == "__main__":
    main()
