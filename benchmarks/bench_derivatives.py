"""Cost of softres' derivatives against their floors, measured side by side in one run.

For each shape the script times, interleaved and best-of-``repeat``:

* ``grad`` (state not cached: it pays for ``A @ x``) against the floor ``A @ x`` + ``A.T @ y`` with ``A``
  in the layout :class:`softres.Problem` stores (column-wise for sparse ``A`` with few nonzeros per
  row); for sparse ``A`` the same floor in the row-wise (CSR) layout is printed too;
* ``hessp`` at a point whose state is cached (as inside a CG loop) against ``A @ s`` + ``A.T @ y``;
* ``hess`` against one weighted Gram product ``A.T @ (D[:, None] * A)`` (sparse: ``A.T @ (D A)``);
* ``hess`` against the Hessian assembled from ``d`` Hessian-vector products (what autodiff's
  forward-over-reverse does).

A second table takes the sparse gradient apart: its two products, the one ``exp`` per row that no
gradient can skip (``np.exp`` over ``Ax``), and the gradient with softres' numpy code; with numba
installed also the compiled products, a compiled ``exp`` pass and the gradient through the compiled
kernels (:mod:`softres._kernels`), at every size, side by side in the same run. The first table
uses the kernels as softres does: with numba installed, for ``n >= 10⁵`` rows.

Usage::

    python benchmarks/bench_derivatives.py            # n in {1e4, 1e5, 1e6}, d = 100
    python benchmarks/bench_derivatives.py --quick    # n in {1e4, 1e5}
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

import softres
from softres import _kernels
from softres.experiments._common import best_of

COMPILED = _kernels.ENABLED  # numba installed and not switched off: softres' default path ...
MIN_ROWS = _kernels.MIN_ROWS  # ... for problems with at least this many rows


def measure(n: int, d: int, density: float | None, repeat: int, d_products: bool) -> dict:
    P = softres.random_problem(n, d, seed=0, density=density, w=1.0)
    rng = np.random.default_rng(1)
    A = P.A
    x = P.x_true
    y = rng.standard_normal(n)
    s = rng.standard_normal(d)
    D = P.hess_diag(x)

    points, turn = [x, x + 1e-12], [0]

    def grad_cold():  # alternate between two points, so every call pays for A @ x as a fresh point does
        turn[0] ^= 1
        P.grad(points[turn[0]])

    def floor_pair(A=A):
        np.asarray(A @ s)
        np.asarray(A.T @ y)

    A_csr = A.tocsr() if density is not None else A

    if density is None:
        def gram_floor():
            A.T @ (D[:, None] * A)
    else:
        def gram_floor():
            (A.T @ (sp.diags_array(D) @ A)).toarray()

    def hess_from_products():
        np.column_stack([P.hessp(x, e) for e in np.eye(d)])

    parts = floor_parts(P, x, y) if density is not None else {}
    P.hess(x)  # warm the state and BLAS
    row = {"grad": [], "floor": [], "floor_csr": [], "hessp": [], "hess": [], "gram": [], "dprod": []}
    row.update({k: [] for k in parts})
    for _ in range(repeat):  # interleave the contenders so machine noise hits all of them
        row["floor"].append(best_of(floor_pair, 1))
        if density is not None:
            row["floor_csr"].append(best_of(lambda: floor_pair(A_csr), 1))
        for key, fn in parts.items():
            row[key].append(best_of(fn, 1))
        row["grad"].append(best_of(grad_cold, 1))
        P.hessp(x, s)  # the state's B_diag + W² and rank-2 factors, computed once per point
        row["hessp"].append(best_of(lambda: P.hessp(x, s), 1))
        row["gram"].append(best_of(gram_floor, 1))
        row["hess"].append(best_of(lambda: P.hess(x), 1))
    if d_products:
        row["dprod"].append(best_of(hess_from_products, 1))
    return {k: (min(v) if v else float("nan")) for k, v in row.items()}


def floor_parts(P: softres.Problem, x: np.ndarray, y: np.ndarray) -> dict:
    """The sparse gradient's parts: each a function to time (``c_``: the compiled kernels)."""
    A, n = P.A, P.n
    z = np.asarray(A @ x)
    shifted = z - max(0.0, float(z.max()))  # the argument of exp in softres' scaled state
    out = np.empty(n)
    points, turn = [x + 2e-12, x + 3e-12], [0]  # not measure()'s points: every call is at a new point

    def grad_with(compiled: bool):
        def run():
            turn[0] ^= 1
            _kernels.ENABLED, _kernels.MIN_ROWS = compiled, 0
            try:
                P.grad(points[turn[0]])
            finally:
                _kernels.ENABLED, _kernels.MIN_ROWS = COMPILED, MIN_ROWS
        return run

    parts = {"Ax": lambda: A @ x, "ATy": lambda: A.T @ y, "exp": lambda: np.exp(shifted, out=out),
             "grad_numpy": grad_with(False)}
    if COMPILED:
        K, csc, g = _kernels.kernels(), P.op._csc_parts, np.empty(P.d)
        parts.update({"c_Ax": lambda: K.csc_matvec(*csc, x, out), "c_ATy": lambda: K.csc_rmatvec(*csc, y, g),
                      "c_exp": lambda: K.exp_array(shifted, out), "grad_compiled": grad_with(True)})
    for fn in parts.values():
        fn()  # compile, warm caches
    return parts


def print_sparse_table(rows: list) -> None:
    """The sparse gradient against its floors (milliseconds and ratios)."""
    cols = [("Ax", "Ax"), ("ATy", "ATy"), ("exp", "exp"), ("grad_numpy", "grad np")]
    if COMPILED:
        cols += [("c_Ax", "c Ax"), ("c_ATy", "c ATy"), ("c_exp", "c exp"), ("grad_compiled", "grad c")]
    header = (f"{'n':>9} | " + " ".join(f"{label:>8}" for _, label in cols)
              + f" | {'np/prod':>7} {'np/floor':>8}" + (f" {'c/floor':>7} {'np/c':>5}" if COMPILED else ""))
    print("\nSparse gradient (1% density) against its floor, milliseconds; floor = the two products + one exp pass")
    print(header)
    print("-" * len(header))
    for n, dens, r in rows:
        if dens is None:
            continue
        line = f"{n:>9} | " + " ".join(f"{1e3 * r[key]:>8.3f}" for key, _ in cols)
        products = r["Ax"] + r["ATy"]
        line += f" | {r['grad_numpy'] / products:>7.2f} {r['grad_numpy'] / (products + r['exp']):>8.2f}"
        if COMPILED:
            floor = min(r["Ax"], r["c_Ax"]) + min(r["ATy"], r["c_ATy"]) + r["c_exp"]
            line += f" {r['grad_compiled'] / floor:>7.2f} {r['grad_numpy'] / r['grad_compiled']:>5.2f}"
        print(line)
    if not COMPILED:
        print("(numba not installed or SOFTRES_NUMBA=0: no compiled columns; pip install -e '.[fast]')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n in {1e4, 1e5} only")
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    cases = [(n, dens) for n in sizes for dens in (None, 0.01)]
    rows = []
    for n, dens in tqdm(cases, desc="shapes"):
        res = measure(n, args.d, dens, args.repeat if n < 1_000_000 else 3, d_products=True)
        rows.append((n, dens, res))
    header = (f"{'n':>9} {'A':>10} | {'grad/floor':>10} {'hessp/floor':>11} {'hess/gram':>9} "
              f"{'dprod/hess':>10} | {'floor ms':>8} {'grad ms':>8} {'gram ms':>8} {'hess ms':>8} | {'CSR floor':>9}")
    kernels = f"with the compiled kernels for n >= {MIN_ROWS:.0e}" if COMPILED else "numpy only (no numba)"
    print(f"\nd = {args.d}; best of {args.repeat} interleaved runs (3 at n = 1e6); grad, hessp, hess {kernels}")
    print(header)
    print("-" * len(header))
    for n, dens, r in rows:
        kind = "dense" if dens is None else f"sparse {dens:.0%}"
        print(f"{n:>9} {kind:>10} | {r['grad'] / r['floor']:>10.2f} {r['hessp'] / r['floor']:>11.2f} "
              f"{r['hess'] / r['gram']:>9.2f} {r['dprod'] / r['hess']:>10.1f} | "
              f"{1e3 * r['floor']:>8.2f} {1e3 * r['grad']:>8.2f} {1e3 * r['gram']:>8.2f} {1e3 * r['hess']:>8.2f} | "
              + (f"{1e3 * r['floor_csr']:>9.2f}" if dens is not None else f"{'-':>9}"))  # dense: no CSR layout
    print_sparse_table(rows)
    print("load average (1, 5, 15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
