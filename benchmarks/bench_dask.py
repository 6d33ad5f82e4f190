"""Out of core: Newton and Algorithm 1 on a Dask ``A`` stored on disk, larger than the workers' memory.

Not run in CI. In one run:

1. writes a seeded problem of ``n × d`` (``random_problem``'s distribution: Gaussian rows of size
   ``1.5/√d``, ``b = f(x_true) + 0.5 N(0, 1)/n``, ``w = 5/n``) to ``--dir`` as one ``.npy`` file per
   block of ``--chunk`` rows (``dask.array.to_npy_stack``), generated block by block;
2. restarts the workers (``--workers`` processes of ``--threads`` threads, ``--memory-limit`` each, no
   spilling to disk) and reads ``A`` and ``b`` back lazily, without memory-mapping: every pass reads each
   block from the file system, inside the task that uses it, on the block's own worker;
3. times one read of ``A`` and ``b`` (the I/O floor of a pass: each block loaded as a pass loads it, and
   summed; best of ``--floor-repeat``) and solves from ``x0 = 0`` with exact Newton and with Algorithm 1
   (``sketch-newton``, ``eps0 = 0.5``), reporting the median time per iteration against the floor times
   the passes per iteration, and the peak resident memory of each worker process (``ru_maxrss``, from
   the restart on);
4. does the same on a problem that fits in memory (``--numpy-n``; the whole problem when it is
   ``--n``), then loads it into this process's memory and solves it with numpy, printing the ratio of
   the times per iteration.

A problem written with ``--keep`` (or ``--generate-only``) to ``--dir`` is reused by a later run of the
same sizes and seed.

Usage::

    # larger than this machine's memory (23.8 GiB on disk), as measured for the README:
    nice python benchmarks/bench_dask.py --n 160000000 --d 20 --chunk 1000000 --workers 2 --threads 2 \
        --memory-limit 2.5GiB --numpy-n 10000000 --maxiter 50 --floor-repeat 2 --dir DIR --keep
    python benchmarks/bench_dask.py --n 1000000 --chunk 100000   # a quick look
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per single-threaded worker (inherited)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import distributed
import numpy as np

import softres

NOISE, SCALE, W = 0.5, 1.5, 5.0
METHODS = [("newton", {}), ("sketch-newton", {"eps0": 0.5})]


def peak_rss() -> int:
    """Peak resident memory of the calling process in bytes (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(path: Path, n: int, d: int, chunk: int, seed: int) -> None:
    """Write ``A`` and ``b`` block by block (never whole in one place) to ``path/A`` and ``path/b``."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x_true = rng.standard_normal(d)
    x_true /= np.linalg.norm(x_true)
    A = da.random.default_rng(seed + 1).standard_normal((n, d), chunks=(chunk, d)) * (SCALE / np.sqrt(d))
    da.to_npy_stack(path / "A", A)
    A = da.from_npy_stack(path / "A", mmap_mode=None)
    f = softres.Problem(A, da.zeros(n, chunks=chunk)).f(x_true)
    b = f + da.random.default_rng(seed + 2).standard_normal(n, chunks=chunk) * (NOISE / n)
    da.to_npy_stack(path / "b", b)
    (path / "complete").write_text(f"{n} {d} {chunk} {seed}\n")


def load(path: Path, shape: tuple) -> np.ndarray:
    """An array written by ``to_npy_stack``, read block by block into one preallocated array."""
    out = np.empty(shape)
    start = 0
    for p in sorted(path.glob("*.npy"), key=lambda p: int(p.stem)):
        blk = np.load(p)
        out[start:start + blk.shape[0]] = blk
        start += blk.shape[0]
    return out


def stored(path: Path, n: int, d: int, chunk: int, seed: int) -> bool:
    """Whether ``path`` holds a problem of these sizes and seed written to the end by :func:`generate`."""
    marker = path / "complete"
    return marker.exists() and marker.read_text().split() == [str(n), str(d), str(chunk), str(seed)]


def _read(A_k: np.ndarray, b_k: np.ndarray) -> float:
    return float(A_k.sum() + b_k.sum())


def read_floor(Q, repeat: int = 2) -> float:
    """Seconds for one read of ``A`` and ``b`` by the workers, as a pass reads them (each block loaded inside a
    task on its worker) but only summed: best of ``repeat``."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        Q.op.run_pass(_read, Q._b, count=False)
        best = min(best, time.perf_counter() - t0)
    return best


def per_iteration(res) -> float:
    """Median seconds per iteration of a result's history (iteration 0 is ``x0``)."""
    return float(np.median(np.diff(res.history["time"])))


def solve_all(P, label: str, maxiter: dict) -> dict:
    out = {}
    for method, options in METHODS:
        res = softres.minimize(P, np.zeros(P.d), method=method, seed=0, maxiter=maxiter[method], **options)
        steps = np.diff(res.history["passes"])
        out[method] = {"per_iter": per_iteration(res), "nit": res.nit, "success": res.success,
                       "passes_per_iter": float(np.median(steps)) if steps.size else 0.0,
                       "loss": res.fun, "x": res.x}
        print(f"  {label:>6} {method:>14}: {res.nit} iterations ({res.message}), median "
              f"{out[method]['per_iter']:.2f} s per iteration, {out[method]['passes_per_iter']:.0f} passes "
              f"per iteration, L = {res.fun:.6e}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30_000_000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (one reads while one computes)")
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--numpy-n", type=int, default=None,
                        help="size of the numpy comparison (default: --n itself, loaded into this process's memory)")
    parser.add_argument("--maxiter", type=int, default=5)
    parser.add_argument("--sketch-maxiter", type=int, default=None, help="Algorithm 1's (default: --maxiter)")
    parser.add_argument("--floor-repeat", type=int, default=2, help="the floor is the best of this many reads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where to write the problem (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the problem in --dir after the run (a later run with the same sizes reuses it)")
    parser.add_argument("--generate-only", action="store_true", help="write the problem to --dir and stop")
    args = parser.parse_args()
    if args.floor_repeat < 1:
        parser.error("--floor-repeat must be at least 1")
    if (args.keep or args.generate_only) and args.dir is None:
        parser.error("--keep and --generate-only need --dir")
    args.keep = args.keep or args.generate_only
    maxiter = {"newton": args.maxiter, "sketch-newton": args.sketch_maxiter or args.maxiter}
    if args.numpy_n is None:
        args.numpy_n = args.n
    root = Path(args.dir or tempfile.mkdtemp(prefix="softres-dask-"))
    root.mkdir(parents=True, exist_ok=True)
    gib = 2.0**30
    # Nothing to spill: A and b are read by the tasks, the kept blocks of z = Ax go to the workers' disk.
    dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False})
    try:
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=args.threads,
                                      memory_limit=args.memory_limit,
                                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            limit = sum(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
            sizes = [("big", args.n)] if args.numpy_n in (0, args.n) else [("big", args.n), ("numpy", args.numpy_n)]
            for label, n in sizes:
                path = root / label
                t0 = time.perf_counter()
                reused = stored(path, n, args.d, args.chunk, args.seed)
                if not reused:
                    generate(path, n, args.d, args.chunk, args.seed)
                size = n * args.d * 8
                print(f"[{label}] n = {n:.3g}, d = {args.d}: A is {size / gib:.2f} GiB on disk in blocks of "
                      f"{args.chunk} rows ({args.chunk * args.d * 8 / 2**20:.0f} MiB); "
                      + ("reused from an earlier run" if reused else f"written in {time.perf_counter() - t0:.0f} s")
                      + f". Workers: {args.workers} x {args.memory_limit} "
                      f"({limit / gib:.2f} GiB together: A is {size / limit:.1f}x that)", flush=True)
                if args.generate_only:
                    continue
                client.restart()
                A = da.from_npy_stack(path / "A", mmap_mode=None)
                b = da.from_npy_stack(path / "b", mmap_mode=None)
                Q = softres.Problem(A, b, W / n)  # reads A (finite, ‖A‖_F) and b (finite) once, not timed
                floor = read_floor(Q, args.floor_repeat)
                rate = size * (args.d + 1) / args.d / floor / 2**20
                print(f"  I/O floor: one read of A and b takes {floor:.2f} s ({rate:.0f} MiB/s)", flush=True)
                dask_res = solve_all(Q, "dask", maxiter)
                for method, r in dask_res.items():
                    print(f"  {method}: {r['per_iter']:.2f} s per iteration = {r['per_iter'] / floor:.2f} reads of A "
                          f"({r['passes_per_iter']:.0f} passes per iteration: floor "
                          f"{r['passes_per_iter'] * floor:.2f} s)", flush=True)
                peaks = client.run(peak_rss)
                print("  peak resident memory per worker: "
                      + ", ".join(f"{v / gib:.2f} GiB" for v in peaks.values()), flush=True)
                if label == "numpy" or args.numpy_n == args.n:
                    del Q
                    A_np, b_np = load(path / "A", (n, args.d)), load(path / "b", (n,))
                    A_np.flags.writeable = False  # a read-only float64 A is used without a copy
                    P = softres.Problem(A_np, b_np, W / n)
                    del A_np
                    numpy_res = solve_all(P, "numpy", maxiter)
                    for method, r in numpy_res.items():
                        dx = np.max(np.abs(r["x"] - dask_res[method]["x"])) / np.max(np.abs(r["x"]))
                        print(f"  {method}: Dask/numpy time per iteration = "
                              f"{dask_res[method]['per_iter'] / r['per_iter']:.2f} "
                              f"(numpy {r['per_iter']:.2f} s, A in this process's memory); "
                              f"max relative difference of x: {dx:.1e}", flush=True)
                    del P
                if not args.keep:
                    shutil.rmtree(path)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
