"""Cost of softres' derivatives against their floors, measured side by side in one run.

For each shape the script times, interleaved and best-of-``repeat``:

* ``grad`` (state not cached: it pays for ``A @ x``) against the floor ``A @ x`` + ``A.T @ y`` with ``A``
  in the layout :class:`softres.Problem` stores (column-wise for sparse ``A`` with few nonzeros per
  row); for sparse ``A`` the same floor in the row-wise (CSR) layout is printed too;
* ``hessp`` at a point whose state is cached (as inside a CG loop) against ``A @ s`` + ``A.T @ y``;
* ``hess`` against one weighted Gram product ``A.T @ (D[:, None] * A)`` (sparse: ``A.T @ (D A)``);
* ``hess`` against the Hessian assembled from ``d`` Hessian-vector products (what autodiff's
  forward-over-reverse does).

Usage::

    python benchmarks/bench_derivatives.py            # n in {1e4, 1e5, 1e6}, d = 100
    python benchmarks/bench_derivatives.py --quick    # n in {1e4, 1e5}
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

import softres
from softres.experiments._common import best_of


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

    P.hess(x)  # warm the state and BLAS
    row = {"grad": [], "floor": [], "floor_csr": [], "hessp": [], "hess": [], "gram": [], "dprod": []}
    for _ in range(repeat):  # interleave the contenders so machine noise hits all of them
        row["floor"].append(best_of(floor_pair, 1))
        if density is not None:
            row["floor_csr"].append(best_of(lambda: floor_pair(A_csr), 1))
        row["grad"].append(best_of(grad_cold, 1))
        P.hessp(x, s)  # the state's B_diag + W² and rank-2 factors, computed once per point
        row["hessp"].append(best_of(lambda: P.hessp(x, s), 1))
        row["gram"].append(best_of(gram_floor, 1))
        row["hess"].append(best_of(lambda: P.hess(x), 1))
    if d_products:
        row["dprod"].append(best_of(hess_from_products, 1))
    return {k: (min(v) if v else float("nan")) for k, v in row.items()}


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
    print(f"\nd = {args.d}; best of {args.repeat} interleaved runs (3 at n = 1e6)")
    print(header)
    print("-" * len(header))
    for n, dens, r in rows:
        kind = "dense" if dens is None else f"sparse {dens:.0%}"
        print(f"{n:>9} {kind:>10} | {r['grad'] / r['floor']:>10.2f} {r['hessp'] / r['floor']:>11.2f} "
              f"{r['hess'] / r['gram']:>9.2f} {r['dprod'] / r['hess']:>10.1f} | "
              f"{1e3 * r['floor']:>8.2f} {1e3 * r['grad']:>8.2f} {1e3 * r['gram']:>8.2f} {1e3 * r['hess']:>8.2f} | "
              + (f"{1e3 * r['floor_csr']:>9.2f}" if dens is not None else f"{'-':>9}"))  # dense: no CSR layout


if __name__ == "__main__":
    main()
