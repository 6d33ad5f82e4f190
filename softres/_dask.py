"""Problems whose ``A`` is a row-chunked ``dask.array.Array``: the same loss, derivatives, sketch and solvers.

``softres.Problem(A, b, w)`` with a Dask ``A`` returns a :class:`DaskProblem`. ``A`` stays where Dask
keeps it (in worker memory, or on disk and read chunk by chunk): every product with ``A`` is one task
per block of rows whose result is either an ``n``-vector block that stays on its worker or a small
partial sum (a ``d``-vector, a ``d × d`` matrix, a few scalars) that the driver adds up. Nothing of size
``n × d`` or ``n × n`` is ever held in one place, and no ``n``-vector is gathered to the driver.

Each block has a home worker (where its persisted block lives, else a contiguous run of blocks per
worker), and every task of that block runs there (:meth:`DaskOperator.map`): a block of ``A`` that is
not in memory is read inside the task that computes with it (its own small task graph, run in the
task), and the ``n``-vector blocks kept by earlier tasks are already there, so no block of ``A`` or
``z`` moves between workers; only per-block scalars do. Work arrays are reused from task to task on
each worker thread.

What is kept between calls, distributed over the workers: ``b`` and ``w`` (when ``w`` is a vector; when
they are lazy Dask arrays, e.g. read from disk, their blocks are read with ``A``'s instead), and, for
the last point ``x``, the blocks of ``z = Ax`` (``n`` floats): in the workers' memory when ``A`` is held
there (persisted), else on the workers' local disk (:attr:`DaskOperator.z_on_disk`), so that with ``A``
read from storage a worker holds a few blocks per thread, whatever ``n``. Every other per-row quantity of
Definition 3.1 and Lemma 5.4 (``f``, ``v/α``, ``r``, ``B_diag + w²``, ``U``) is recomputed from the
block of ``z`` and the global scalars (the shift ``m``, ``α̃ = α e^{−m}``, ``<c, f>``, ``‖f‖²``) inside
the task that needs it, by :class:`softres._state.State` (the same code as for numpy).

Passes over ``A`` (``P.op.passes``) per call at a point already evaluated; at a new point the first
call adds the pass that computes ``z``. Construction reads ``A`` once, not counted (as numpy's finiteness
check is not): it checks that ``A`` is finite and computes ``‖A‖_F`` for :meth:`DaskProblem.grad_error`.

==========================  ======  ==================================================================
call                        passes  what one pass computes per block
==========================  ======  ==================================================================
``loss(x)`` (new ``x``)        1    ``z = A x`` (kept), then tasks over ``z`` only: ``m``, ``α̃``;
                                    ``<c, f>``, ``‖f‖²``, ``‖c‖²``, ``‖W z‖²`` (one round trip in all)
``grad(x)``                    1    ``Aᵀ(v/α ∘ r + w² z)``; 0 after ``loss_and_grad(x)``
``loss_and_grad(x)`` (new)     1    ``z = A x`` (kept), ``m``, ``α̃`` and the partial products
                                    ``A_kᵀ[v∘φ, v∘b, v, w² z]`` of every block; the sums of ``loss``
                                    (one round trip); the driver assembles ``∇L`` and ``AᵀU``
``hess(x)``                    1    ``Aᵀ diag(B_diag + w²) A`` and ``AᵀU`` together (Lemma 5.4)
``hessp(x, s)``                1    ``A s``, ``Aᵀ(D ∘ A s)``, ``Uᵀ A s`` (and ``AᵀU``, kept, the first time)
``hess_rank2(x)``              0    ``AᵀU`` kept from ``hess`` or ``hessp`` (else 1 pass)
sketched Hessian               2    CountSketch of ``D^{1/2}A``; then leverage scores, sampling and
                                    the sampled Gram (and ``AᵀU``) in one pass. 1 with ``score_reuse ≥ κ``
                                    (+1 once per problem for ``AᵀA``); 1 when ``s ≥ n`` (exact)
``grad_error(x)``              0    rounds over ``z`` only
==========================  ======  ==================================================================

The solvers' line search takes the loss and the gradient together (``fused_loss_and_grad``), so an exact
Newton iteration with a full step is 2 passes (the Hessian; the loss and gradient at the new point), as
numpy's :class:`~softres._linalg.MatrixOperator` makes for a dense ``A`` with the compiled one-pass
gradient (3 without it, 4 for a sparse ``A``), and an iteration of Algorithm 1 is 3 (numpy: 3 dense with
that gradient, 4 without, 5 sparse). Each rejected line-search trial adds one.

The sketch (Lemma A.8) differs from numpy's in how rows are drawn: the leverage-score estimates are
those of :func:`softres.sketch.leverage_scores` (a CountSketch, its QR factor, a Gaussian projection),
computed block by block, but each row ``i`` is then kept independently with probability
``q_i = min(1, s τ_i / d)`` and weight ``D_i / q_i`` (``s`` the sample size of Lemma A.8, ``d`` the sum of
exact leverage scores of a full-rank matrix), so that a block samples its own rows in the same pass
without knowing the others' scores. ``E[D̃] = D`` as before and about ``s`` rows are kept (i.i.d. draws
and independent draws with these ``q_i`` meet the same matrix Chernoff bound; the constant is ours, as
``C`` is). When ``s ≥ n`` the exact diagonal is used in one pass, as numpy does. The random
draws differ from numpy's, so a randomised solver converges to the same minimiser along another path.
``score_reuse`` has its own meaning here (:meth:`DaskProblem.sketched_hessian`): while the positive
diagonal's spread ``κ = max D₊ / min D₊`` is at most ``score_reuse``, the scores come from the exact
leverage scores of ``A`` (``AᵀA`` computed once) and the sketch costs one pass instead of two; the default
1 computes fresh scores at every point, as Algorithm 1 does.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import threading
import uuid
from typing import Any

import dask
import distributed
import numpy as np
import scipy.sparse as sp

from softres._linalg import blocked_gram, safe_norm, signed_gram
from softres._state import Buffers, DomainError, State, fused_gradient, unscale
from softres._validate import as_vector, check_real
from softres.problem import Problem
from softres.sketch import NonPositiveDiagonalError, jl_dimension, jl_projection, sample_size
from softres.units import as_unit

__all__ = ["DaskOperator", "DaskProblem", "dask_client"]

_LOCAL: dict[str, Any] = {}


def dask_client(address: str | None = None, **cluster_options: Any) -> distributed.Client:
    """The ``dask.distributed`` client softres computes with.

    With ``address`` (e.g. ``"tcp://scheduler:8786"``): a client of that scheduler (made the current one).
    Without: the current client if there is one (``distributed.Client(...)`` made earlier by the
    user), else a :class:`distributed.LocalCluster` started once for this process and closed at exit:
    two single-threaded worker processes by default (``cluster_options`` are passed to ``LocalCluster``,
    e.g. ``n_workers``, ``memory_limit``, ``processes=False``).
    """
    if address is not None:
        return distributed.Client(address, set_as_default=True)
    try:
        return distributed.default_client()
    except ValueError:
        pass
    # dashboard on a free port: a second cluster on the machine (another on 8787) starts without a warning
    options = {"n_workers": 2, "threads_per_worker": 1, "dashboard_address": ":0",
               "silence_logs": logging.ERROR} | cluster_options
    cluster = distributed.LocalCluster(**options)
    client = distributed.Client(cluster, set_as_default=True)
    _LOCAL["cluster"], _LOCAL["client"] = cluster, client
    atexit.register(_close_local)
    return client


def _close_local() -> None:
    for key in ("client", "cluster"):
        obj = _LOCAL.pop(key, None)
        if obj is not None:
            obj.close()


# ---------------------------------------------------------------------- per-block kernels (run on workers)
_WORKER = threading.local()  # per worker thread: work arrays reused from task to task


def _buffers(n: int) -> Buffers:
    """Work arrays of ``n`` rows for this worker thread, reused by the tasks that run on it.

    Fresh arrays would cost a page fault per page on first touch in every task (a State needs about
    ten ``n``-vectors); kept for the two block sizes last used, they cost ``O(chunk)`` memory per thread.
    """
    kept = getattr(_WORKER, "buffers", None)
    if kept is None:
        kept = _WORKER.buffers = {}
        _reuse_freed_memory()
    buf = kept.get(n)
    if buf is None:
        if len(kept) >= 2:
            kept.pop(next(iter(kept)))
        buf = kept[n] = Buffers(n)
    return buf


def _reuse_freed_memory() -> None:
    """Let this worker process's ``malloc`` reuse freed blocks of up to 64 MiB instead of unmapping them.

    ``distributed``'s nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which also freezes glibc's
    threshold for serving an allocation by ``mmap`` at 128 KiB: every temporary of a block (a megabyte
    of scaled rows in :func:`softres._linalg.blocked_gram`, ...) is then mapped afresh and page-faulted
    on first touch, which doubled the CPU time of a Hessian block here. Only on glibc; elsewhere nothing.
    """
    if getattr(_reuse_freed_memory, "done", False):
        return
    _reuse_freed_memory.done = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 2**20)  # M_TRIM_THRESHOLD: keep up to this much free memory at the heap's top
    except (OSError, AttributeError):
        pass


def _block_state(z: np.ndarray, b: np.ndarray, unit: Any, tot: tuple) -> State:
    return State(None, z, b, _buffers(z.size), unit, block=tot)


def _k_point(A: np.ndarray, b: np.ndarray, w: Any, x: np.ndarray, unit: Any, with_grad: bool, reg: bool,
             on_disk: bool) -> tuple[Any, tuple]:
    """``z_k = A_k x`` (kept: the array, or on disk a :class:`_Stored` handle) and :func:`_scale_of` of it.

    ``with_grad``: also the four products ``A_kᵀ[v∘φ, v∘b, v, w² z]`` (``v``, ``φ`` scaled by the block's
    own shift, ``w² z`` only for a regularised problem, ``reg``) from which
    :meth:`DaskProblem.loss_and_grad` assembles the gradient once ``α`` and ``<c, f>`` are known (the
    expansion of :meth:`softres.Problem.loss_and_grad`).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.asarray(A @ x, dtype=float)
    scale = _scale_of(z, unit)
    G = None
    if with_grad and scale[0]:
        buf = _buffers(z.size)
        k = 4 if reg else 3
        Y = np.empty((k, z.size))
        with np.errstate(over="ignore", invalid="ignore"):
            np.multiply(buf.v_hat, buf.f, out=Y[0])
            np.multiply(buf.v_hat, b, out=Y[1])
            np.copyto(Y[2], buf.v_hat)
            if k == 4:
                np.multiply(w, z, out=Y[3])
                Y[3] *= w
            G = Y @ A
    return _keep(z, on_disk), (*scale, G)


def _keep(z: np.ndarray, on_disk: bool) -> Any:
    """A block of ``z`` to keep on its worker: the array, or (``on_disk``) a file in the worker's local directory."""
    if not on_disk:
        return z
    folder = os.path.join(distributed.get_worker().local_directory, "softres-z")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.npy")
    np.save(path, z)
    return _Stored(path)


class _Stored:
    """A block of ``z`` kept in a file on its worker's local disk (:attr:`DaskOperator.z_on_disk`).

    Loaded by :func:`_call` in the tasks that use it."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return _Stored, (self.path,)

    def load(self) -> np.ndarray:
        return np.load(self.path)


def _k_unlink(blk: Any) -> None:
    if isinstance(blk, _Stored):
        with contextlib.suppress(OSError):
            os.remove(blk.path)


_k_unlink.raw = True  # type: ignore[attr-defined]  # _call passes the handle, not the loaded block


def _part(pair: tuple, i: int) -> Any:
    return pair[i]


def _k_frobenius(A: np.ndarray) -> tuple[bool, float]:
    A = np.asarray(A, dtype=float)
    return bool(np.isfinite(A).all()), safe_norm(A.ravel())


def _scale_of(z: np.ndarray, unit: Any) -> tuple[bool, float, float, float]:
    """The block's finiteness, own shift ``m_k``, ``Σ φ(z) e^{−m_k}`` and ``Σ |φ(z)| e^{−m_k}``.

    Leaves ``φ(z) e^{−m_k}`` and ``φ'(z) e^{−m_k}`` in this thread's work arrays ``f`` and ``v_hat``.
    """
    if not np.isfinite(z).all():
        return False, 0.0, 0.0, 0.0
    buf = _buffers(z.size)
    phi = buf.f
    m, _ = unit.evaluate(z, phi, buf.v_hat, buf.e)
    with np.errstate(over="ignore", invalid="ignore"):
        return True, m, float(phi.sum()), float(np.abs(phi).sum())


def _k_total(scales: list, n: int) -> tuple[bool, float, float, float]:
    """The blocks' :func:`_scale_of` combined: all finite, the shift ``m = max m_k``, ``α̃`` and ``Σ|φ(z)| e^{−m}``."""
    if not all(s[0] for s in scales):
        return False, 0.0, 0.0, 0.0
    m = max(s[1] for s in scales)
    with np.errstate(over="ignore", invalid="ignore"):
        alpha_scaled = sum(s[2] * math.exp(s[1] - m) for s in scales)
        abs_sum = sum(s[3] * math.exp(s[1] - m) for s in scales)
    return True, m, alpha_scaled, abs_sum


def _k_sums(z: np.ndarray, b: np.ndarray, w: Any, total: tuple, unit: Any) -> np.ndarray:
    """Partial ``<c, f>``, ``‖f‖²``, ``‖c‖²``, ``‖W z‖²`` of one block (zeros outside the domain)."""
    ok, m, alpha_scaled, abs_sum = total
    if not (ok and alpha_scaled > 4.0 * np.finfo(float).eps * abs_sum):  # the driver raises
        return np.zeros(4)
    st = _block_state(z, b, unit, (m, alpha_scaled, None, None))
    with np.errstate(over="ignore", invalid="ignore"):
        wz = np.multiply(w, z, out=st.buf.tmp)
        return np.array([st.cf, st.ff, st.cc, float(wz @ wz)])


def _w2z(st: State, z: np.ndarray, w: Any, absolute: bool = False) -> np.ndarray:
    """``w² ∘ z`` (or ``w² ∘ |z|``) in the state's spare work array."""
    out = st.buf.tmp
    with np.errstate(over="ignore", invalid="ignore"):
        if absolute:
            np.abs(z, out=out)
        else:
            np.copyto(out, z)
        out *= w
        out *= w
    return out


def _rhs(st: State, z: np.ndarray, w: Any) -> np.ndarray:
    """``y = v/α ∘ r + w² z``, the gradient's ``Aᵀy`` (Lemma 4.1), in the state's work array ``y``."""
    y = np.multiply(st.v_hat, st.r, out=st.buf.y)
    with np.errstate(over="ignore", invalid="ignore"):
        y += _w2z(st, z, w)
    return y


def _k_grad(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple) -> tuple[np.ndarray, float]:
    """``A_kᵀ y_k`` and, from the same state, ``‖t_k‖²`` of :meth:`softres.Problem.grad_error`."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        g = _rhs(st, z, w) @ A
    return g, _grad_error_terms(st, z, b, w)


def _k_grad_error(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple) -> float:
    return _grad_error_terms(_block_state(z, b, unit, tot), z, b, w)


def _grad_error_terms(st: State, z: np.ndarray, b: np.ndarray, w: Any) -> float:
    """``‖t‖²`` of :meth:`softres.Problem.grad_error` on one block (overwrites the work array ``y``)."""
    t = np.abs(st.f, out=st.buf.y)
    t += np.abs(b, out=st.buf.tmp)
    t += abs(st.cf)
    t *= st.v_hat
    with np.errstate(over="ignore", invalid="ignore"):
        t += _w2z(st, z, w, absolute=True)
        return float(t @ t)


def _k_hess(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple,
            exp_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """``Aᵀ diag(D) A`` (``D = B_diag + w²``, or ``B_diag`` alone) and ``UᵀA`` of one block."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        D = st.B_diag if exp_only else st.D(w * w)
        AtU = np.zeros((A.shape[1], 2))
        return blocked_gram(np.asarray(A, dtype=float), D, st.U, AtU), AtU.T


def _k_hessp(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, s: np.ndarray,
             with_rank2: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``Aᵀ(D ∘ As)``, ``Uᵀ(As)`` and (``with_rank2``) ``UᵀA`` of one block."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        U, D = st.U, st.D(w * w)  # before t: they use the work array tmp
        t = np.matmul(A, s, out=st.buf.tmp)
        return np.multiply(D, t, out=st.buf.y) @ A, t @ U, (U.T @ A if with_rank2 else None)


def _k_countsketch(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, seed: int, unit: Any, tot: tuple,
                   rows: int) -> np.ndarray:
    """``S_k D₊^{1/2} A_k``: a CountSketch with ``rows`` buckets of one block (as :func:`leverage_scores`)."""
    st = _block_state(z, b, unit, tot)
    D = st.D(w * w)
    rng = np.random.default_rng(seed)
    n_k = z.size
    signs = rng.choice([-1.0, 1.0], size=n_k) * np.sqrt(np.where(D > 0, D, 0.0))
    S = sp.csc_array((signs, rng.integers(0, rows, size=n_k), np.arange(n_k + 1)), shape=(rows, n_k))
    return np.asarray(S @ A)


def _k_dstats(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple) -> tuple[int, float, float, float]:
    """Of ``D = B_diag + w²`` on one block: the count of ``D ≤ 0``, ``min D``, ``min D₊`` and ``max D₊``."""
    D = _block_state(z, b, unit, tot).D(w * w)
    pos = D[D > 0]
    return (int(D.size - pos.size), float(D.min()), float(pos.min()) if pos.size else math.inf,
            float(pos.max()) if pos.size else 0.0)


def _k_gram(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=float)
    return blocked_gram(A, np.ones(A.shape[0]))


def _k_sample(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, seed: int, unit: Any, tot: tuple,
              proj: np.ndarray | None, scale: float, s: int, d: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Lemma A.8 on one block: leverage scores, independent sampling, the sampled Gram, and ``UᵀA``.

    ``proj`` is ``R⁻¹G`` of :func:`softres.sketch.jl_projection`, or ``L⁻ᵀ`` of ``AᵀA = LLᵀ`` (with
    ``scale = 1 / min D₊``), or ``None``: keep every row exactly. The scores are
    ``τ_i = min(1, scale · D_i ‖(A proj)_i‖²)``; row ``i`` with ``D_i > 0`` is kept with probability
    ``q_i = min(1, s τ_i / d)`` and weight ``D_i / q_i``;
    rows with ``D_i < 0`` and a nonzero row of ``A`` are kept exactly (``nonpositive="exact"``).
    Returns the Gram, ``UᵀA``, the rows sampled and the rows kept exactly.
    """
    A = np.asarray(A, dtype=float)
    st = _block_state(z, b, unit, tot)
    D = st.D(w * w)
    q = np.maximum(D, 0.0, out=st.buf.y)
    if proj is None:
        q[q > 0] = 1.0
    else:
        # ‖(A proj)_i‖² over row slices of about a megabyte of A: never the n_k × k product at once
        step = max(1, 2**20 // (8 * A.shape[1]))
        for lo in range(0, z.size, step):
            Z = A[lo:lo + step] @ proj
            q[lo:lo + step] *= np.einsum("ij,ij->i", Z, Z)
        q *= scale
        # A leverage score is at most 1; an estimate above 1 comes from rows that collided in the sketch.
        np.minimum(q, 1.0, out=q)
        q *= s / d
        np.minimum(q, 1.0, out=q)
    picked = np.flatnonzero(np.random.default_rng(seed).random(z.size) < q)
    negative = np.flatnonzero(D < 0)
    exact = negative[(A[negative] != 0).any(axis=1)]
    keep = np.concatenate([picked, exact])
    weights = np.concatenate([D[picked] / q[picked], D[exact]])
    return signed_gram(A[keep], weights), st.U.T @ A, int(picked.size), int(exact.size)


# ---------------------------------------------------------------------- the operator
class DaskOperator:
    """``A`` as a row-chunked Dask array: products block by block, counted as passes over ``A``.

    The counterpart of :class:`softres._linalg.MatrixOperator` (``n``, ``d``, ``passes``, ``frobenius``,
    ``matvec``, ``rmatvec``, ``gram``), and the one home of every product with a Dask ``A``:
    :meth:`run_pass` runs one task per block of rows on the cluster, and counts one pass.
    """

    distributed = True
    is_sparse = False

    def __init__(self, A: Any, name: str = "A", client: distributed.Client | None = None) -> None:
        if getattr(A, "ndim", None) != 2:
            raise ValueError(f"{name} must be a 2-D dask array of shape (n, d), got ndim={getattr(A, 'ndim', None)}")
        if np.dtype(A.dtype).kind not in "iuf":
            raise TypeError(f"{name} must hold real numbers (int or float), got dtype {A.dtype}")
        if any(math.isnan(c) for c in A.chunks[0]):
            raise ValueError(f"{name} must have known chunk sizes (call {name}.compute_chunk_sizes())")
        n, d = A.shape
        if n < 1 or d < 1:
            raise ValueError(f"{name} must have n >= 1 rows and d >= 1 columns, got shape {A.shape}")
        if len(A.chunks[1]) > 1:  # row blocks must hold whole rows
            A = A.rechunk({1: -1})
        self.A = A.astype(np.float64) if A.dtype != np.float64 else A
        self.n, self.d = int(n), int(d)
        self.row_chunks = tuple(int(c) for c in A.chunks[0])
        self.client = client if client is not None else dask_client()
        self._local = threading.local()
        self.blocks = _sources(self.A, self.client)
        self.homes = self._homes(self.blocks)
        #: Blocks of ``A`` not held in memory (read or computed by each task that uses them): the kept blocks
        #: of ``z = Ax`` then go to the workers' local disk too, so that a worker's memory is bounded by a few
        #: blocks per thread whatever ``n``.
        self.z_on_disk = not all(isinstance(blk, distributed.Future) for blk in self.blocks)
        # One read of A on construction (not counted, as numpy's finiteness check is not): finite, and ‖A‖_F.
        finite, norms = zip(*self.client.gather(self.map(_k_frobenius, self.blocks)), strict=True)
        if not all(finite):
            raise ValueError(f"{name} must contain only finite values (no nan or inf)")
        self.frobenius = safe_norm(np.array(norms))  #: ``‖A‖_F``, for rounding-error estimates

    def _homes(self, blocks: list) -> list[str]:
        """The worker of each block: where a persisted block is, else contiguous runs of blocks per worker."""
        workers = sorted(self.client.nthreads())  # asks the scheduler (scheduler_info() may lag)
        if not workers:
            self.client.wait_for_workers(1, timeout=60)
            workers = sorted(self.client.nthreads())
        homes = [workers[k * len(workers) // len(blocks)] for k in range(len(blocks))]
        held = [blk for blk in blocks if isinstance(blk, distributed.Future)]
        if held:
            who = self.client.who_has(held)
            for k, blk in enumerate(blocks):
                if isinstance(blk, distributed.Future) and who.get(blk.key):
                    homes[k] = sorted(who[blk.key])[0]
        return homes

    def __repr__(self) -> str:
        return f"DaskOperator(n={self.n}, d={self.d}, blocks={len(self.blocks)})"

    # ------------------------------------------------------------------ the counter
    @property
    def passes(self) -> int:
        """Passes over ``A`` made by this thread so far."""
        return getattr(self._local, "passes", 0)

    def _count(self) -> None:
        self._local.passes = self.passes + 1

    # ------------------------------------------------------------------ running tasks
    def map(self, fn: Any, *per_block: list, **constants: Any) -> list:
        """``fn(*args_k, **constants)`` for every block ``k``, as one task on the block's home worker.

        Futures, and blocks of Dask arrays from :func:`_sources`, among the arguments are resolved on that
        worker: a block of ``A`` is loaded (read from disk, or found in memory) inside the task itself, and
        ``n``-vector blocks kept by earlier tasks (``z``, ``b``) are already there, so nothing moves
        between workers. Returns the futures (results stay on the workers until gathered).
        """
        alive = self.client.scheduler_info().get("workers") or {}  # as last reported: no round trip
        if not set(self.homes) <= set(alive) and not set(self.homes) <= set(self.client.nthreads()):
            raise RuntimeError("a worker holding blocks of this problem left the Dask cluster (its tasks are "
                               "bound to it): make the Problem again")
        name, out = getattr(fn, "__name__", "block"), [None] * len(self.homes)
        for home in dict.fromkeys(self.homes):  # one message per worker, not one per block
            ks = [k for k, h in enumerate(self.homes) if h == home]
            futures = self.client.map(_call, [fn] * len(ks), *([args[k] for k in ks] for args in per_block),
                                      key=[f"{name}-{uuid.uuid4().hex}" for _ in ks], workers=[home],
                                      allow_other_workers=False, **constants)
            for k, fut in zip(ks, futures, strict=True):
                out[k] = fut
        return out

    def run_pass(self, fn: Any, *per_block: list, count: bool = True, keep: bool = False, **constants: Any) -> Any:
        """One pass over ``A``: ``fn(A_k, *args_k, **constants)`` for every block ``k`` (see :meth:`map`).

        ``per_block`` are lists (one entry per block: futures, arrays or numbers). The results are gathered
        (``keep=False``; each must be small) and summed when they are arrays or numbers, or returned as
        futures that stay on the workers (``keep=True``).
        """
        if count:
            self._count()
        futures = self.map(fn, self.blocks, *per_block, **constants)
        return futures if keep else _sum(self.client.gather(futures))

    def run_rows(self, fn: Any, *per_block: list, **constants: Any) -> list:
        """``fn(*args_k, **constants)`` for every block, on the kept ``n``-vector blocks (not a pass over ``A``)."""
        return self.client.gather(self.map(fn, *per_block, **constants))

    def to_blocks(self, v: Any, name: str, lazy: bool = False) -> list:
        """An ``n``-vector (numpy or Dask) as blocks aligned with ``A``'s rows: futures kept on their workers.

        ``lazy=True``: a lazy Dask ``v`` (e.g. read from disk) stays lazy instead, each block loaded by the
        tasks that use it as ``A``'s blocks are (memory for a block at a time, not ``n/workers`` floats).
        """
        from softres._validate import is_dask_array

        if is_dask_array(v):
            if v.ndim != 1 or v.shape[0] != self.n:
                raise ValueError(f"{name} must be a 1-D array of length {self.n}, got shape {v.shape}")
            blocks = _sources(v.astype(np.float64).rechunk((self.row_chunks,)), self.client)
            if not (lazy and all(isinstance(blk, _Graph) for blk in blocks)):
                blocks = self.map(_as_float, blocks)
            if not all(self.run_rows(_finite, blocks)):
                raise ValueError(f"{name} must contain only finite values (no nan or inf)")
            return blocks
        v = as_vector(v, self.n, name, copy=True)
        bounds = np.cumsum((0, *self.row_chunks))
        return [self.client.scatter(v[lo:hi], workers=[home], hash=False)
                for (lo, hi), home in zip(itertools.pairwise(bounds), self.homes, strict=True)]

    # ------------------------------------------------------------------ the MatrixOperator interface
    def matvec(self, x: Any, name: str = "x") -> Any:
        """``A @ x`` as a Dask array (lazy; blocks computed where ``A``'s are)."""
        x = as_vector(x, self.d, name)
        self._count()
        return self.A @ x

    def rmatvec(self, y: Any) -> np.ndarray:
        """``A.T @ y`` (a ``d``-vector) for an ``n``-vector ``y`` (numpy or Dask): one pass, per-block partial sums."""
        out = self.run_pass(_k_rmatvec, self.to_blocks(y, "y"))
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

    def gram(self, D: Any) -> np.ndarray:
        """``Aᵀ diag(D) A`` (``d × d``) as a sum of per-block ``d × d`` Gram matrices: one pass."""
        return self.run_pass(blocked_gram, self.to_blocks(D, "D"))

    def countsketch(self, buckets: Any, weights: Any, m: int) -> np.ndarray:
        raise NotImplementedError("a Dask A is sketched block by block: use softres.sketch.SketchedHessian(problem) "
                                  "with problem = softres.Problem(A, b, w) (see softres._dask)")

    projected_row_norms = rows = countsketch


def _finite(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).all())


def _as_float(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=float)


class _Graph:
    """One block of a lazy Dask array: its own (culled, optimised) task graph, run inside the task that uses it."""

    __slots__ = ("graph", "key")

    def __init__(self, graph: dict, key: Any) -> None:
        self.graph, self.key = graph, key

    def __reduce__(self) -> tuple:
        return _Graph, (self.graph, self.key)

    def load(self) -> np.ndarray:
        # One block read at a time per worker process (the other threads compute meanwhile): np.load parses
        # each file's header with ast.literal_eval, which CPython 3.11 does not make safe across threads
        # ("SystemError: AST constructor recursion depth mismatch" with two threads per worker).
        with _READ_LOCK:
            return dask.get(self.graph, self.key)


_READ_LOCK = threading.Lock()


def _sources(X: Any, client: distributed.Client) -> list:
    """The row blocks of a Dask array as task arguments: futures where it is persisted, else :class:`_Graph` objects.

    A lazy block (e.g. ``from_npy_stack``) is thus read by the task that computes with it, on that task's
    worker, and dropped when the task ends: a pass holds one block of ``A`` per running task. An array built
    on results held by the cluster (its graph alone cannot compute it), or whose graph carries its data
    (``da.from_array`` of an array in this process: more than a megabyte per block), is persisted first.
    """
    from dask._task_spec import convert_legacy_graph

    graph = X.__dask_graph__()
    keys = [k[0] if isinstance(k, list) else k for k in X.__dask_keys__()]
    held = [graph.get(key) for key in keys]
    if all(isinstance(f, distributed.Future) for f in held):
        return held
    out, converted = [], {}
    for blk in X.to_delayed(optimize_graph=True).ravel():
        if id(blk.dask) not in converted:  # the blocks usually share one graph
            converted[id(blk.dask)] = convert_legacy_graph(dict(blk.dask))
        full = converted[id(blk.dask)]
        own, todo = {}, [blk.key]
        while todo:  # the tasks this block needs (to_delayed's graphs hold every block)
            key = todo.pop()
            if key in own:
                continue
            if key not in full:  # a result held by the cluster
                return _sources(client.persist(X), client)
            own[key] = full[key]
            todo.extend(full[key].dependencies)
        if _nbytes(own) > _SHIP_BYTES:  # the graph carries its data (da.from_array): send it once, not per task
            return _sources(client.persist(X), client)
        out.append(_Graph(own, blk.key))
    return out


_SHIP_BYTES = 2**20


def _nbytes(graph: dict) -> int:
    """Size of a block's graph as sent with a task."""
    import cloudpickle

    return len(cloudpickle.dumps(graph, protocol=5))


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on a worker with every :class:`_Graph` and :class:`_Stored` argument loaded."""
    if getattr(fn, "raw", False):
        return fn(*args, **kwargs)
    return fn(*(a.load() if isinstance(a, _Graph | _Stored) else a for a in args), **kwargs)


def _k_rmatvec(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return y @ A


def _sum(parts: list) -> Any:
    """Add per-block results elementwise (tuples position by position; ``None`` stays ``None``)."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_sum([p[i] for p in parts]) for i in range(len(first)))
    if first is None:
        return None
    total = first.copy() if isinstance(first, np.ndarray) else first
    with np.errstate(over="ignore", invalid="ignore"):
        for p in parts[1:]:
            total = total + p
    return total


# ---------------------------------------------------------------------- the problem
class _Point:
    """The state at one ``x``: the blocks of ``z = Ax`` (futures on the workers) and the global scalars."""

    __slots__ = ("alpha_scaled", "cc", "cf", "ff", "grad", "m", "rank2", "reg", "tt", "x", "z")

    @property
    def tot(self) -> tuple[float, float, float, float]:
        return self.m, self.alpha_scaled, self.cf, self.ff


class DaskProblem(Problem):
    """The soft-residual problem of :class:`softres.Problem` with ``A`` a row-chunked Dask array.

    Made by ``softres.Problem(A, b, w, unit)`` when ``A`` is a ``dask.array.Array`` (``b`` and ``w``
    may be numpy or Dask arrays, ``w`` a scalar or ``None``); it computes with :func:`dask_client`
    (the current ``dask.distributed`` client, else a local cluster of two workers). Values equal
    numpy's to rounding (sums are taken block by block); ``n``-vectors (``f``, ``c``, ``hess_diag``, ...)
    are returned as Dask arrays. See :mod:`softres._dask` for the passes over ``A`` each call makes.
    """

    distributed = True
    is_sparse = False

    def __new__(cls, *args: Any, **kwargs: Any) -> DaskProblem:
        return object.__new__(cls)

    def __init__(self, A: Any, b: Any, w: Any = None, unit: Any = None) -> None:
        self.unit = as_unit(unit)
        self.op = DaskOperator(A, "A")
        self.A = self.op.A
        self.n, self.d = self.op.n, self.op.d
        self._b = self.op.to_blocks(b, "b", lazy=True)
        if w is None or np.ndim(w) == 0:
            w = 0.0 if w is None else check_real(w, "w")
            if not math.isfinite(w * w):
                raise ValueError("w is too large: w**2 overflows float64")
            self._w: list = [w] * len(self.op.blocks)
            self._regularised = w != 0.0
        else:
            self._w = self.op.to_blocks(w, "w", lazy=True)
            self._regularised = True
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Problem(n={self.n}, d={self.d}, dask, {len(self.op.blocks)} blocks)"

    @property
    def b(self) -> Any:
        """The target ``b``, a Dask array (of the blocks kept on the workers, or read as ``A``'s are)."""
        return self._kept(self._b)

    @property
    def w(self) -> Any:
        """The regulariser weights ``w``: a float, or a Dask array (as :attr:`b`)."""
        return self._w[0] if not self._w or isinstance(self._w[0], float) else self._kept(self._w)

    def _kept(self, blocks: list) -> Any:
        import dask.array as da

        return da.concatenate([da.from_delayed(dask.delayed(_call)(_as_float, blk), (rows,), dtype=float)
                               for blk, rows in zip(blocks, self.op.row_chunks, strict=True)])

    # ------------------------------------------------------------------ the state at x
    def _at(self, x: Any, with_grad: bool = False) -> _Point:
        x = as_vector(x, self.d, "x")
        pt = getattr(self._local, "point", None)
        if pt is not None and np.array_equal(pt.x, x):
            return pt
        self._local.point = None
        if pt is not None and self.op.z_on_disk:
            distributed.fire_and_forget(self.op.map(_k_unlink, pt.z))
        op = self.op
        # One pass and one round trip: every block computes z_k = A_k x (kept on its worker), its own shift
        # and partial sum of φ(z) (and with_grad, the four partial products of loss_and_grad); one task
        # combines the shifts into m and α̃; every block then adds up its <c, f>, ‖f‖², ‖c‖², ‖W z‖² with
        # them. The driver waits once, for the scalars.
        op._count()
        first = op.run_pass(_k_point, self._b, self._w, keep=True, count=False, x=x, unit=self.unit,
                            with_grad=with_grad, reg=self._regularised, on_disk=op.z_on_disk)
        z, scales = op.map(_part, first, i=0), op.map(_part, first, i=1)
        total = op.client.submit(_k_total, scales, n=self.n, key=f"_k_total-{uuid.uuid4().hex}")
        sums = op.map(_k_sums, z, self._b, self._w, [total] * len(z), unit=self.unit)
        try:
            pt = self._point(x, z, op.client.gather([total, *sums, *(scales if with_grad else ())]), with_grad)
        except BaseException:
            if op.z_on_disk:
                distributed.fire_and_forget(op.map(_k_unlink, z))
            raise
        self._local.point = pt
        return pt

    def _point(self, x: np.ndarray, z: list, out: list, with_grad: bool) -> _Point:
        """The :class:`_Point` from the gathered results of :meth:`_at`'s pass; raises outside the domain."""
        nz = len(z)
        (ok, m, alpha_scaled, abs_sum), sums, parts = out[0], out[1:nz + 1], out[nz + 1:]
        if not ok:
            raise ValueError("x is too large: A @ x is not finite in float64")
        tol = 4.0 * self.n * np.finfo(float).eps
        if not alpha_scaled > tol * abs_sum:
            raise DomainError(unscale(alpha_scaled, m))
        cf, ff, cc, wz2 = np.sum(sums, axis=0)
        pt = _Point()
        pt.x, pt.z, pt.m, pt.alpha_scaled = x.copy(), z, m, alpha_scaled
        pt.cf, pt.ff, pt.cc, pt.reg = float(cf), float(ff), float(cc), 0.5 * float(wz2)
        pt.rank2 = pt.tt = pt.grad = None
        if not math.isfinite(pt.reg):
            raise ValueError("x is too large: the regulariser ½‖W A x‖² overflows float64")
        if with_grad:
            self._assemble_grad(pt, parts)
        return pt

    @staticmethod
    def _assemble_grad(pt: _Point, parts: list) -> None:
        """``∇L`` and ``AᵀU`` from the blocks' shifted partial products (as :meth:`softres.Problem._fused_state`).

        Block ``k``'s products ``A_kᵀ[v∘φ, v∘b, v, w² z]`` carry ``e^{−2m_k}``, ``e^{−m_k}``, ``e^{−m_k}``
        and no shift: brought to the common shift ``m``, they are ``α̃²``, ``α̃``, ``α̃`` times
        ``Aᵀ(v/α ∘ f)``, ``Aᵀ(v/α ∘ b)``, ``Aᵀ(v/α)`` (Lemma 4.1's terms). Left unset when not finite
        (:meth:`DaskProblem.grad` then recomputes and reports the overflow).
        """
        G = None
        with np.errstate(over="ignore", invalid="ignore"):
            for _, mk, _, _, Gk in parts:
                s = math.exp(mk - pt.m)
                Gk[0] *= s * s
                Gk[1:3] *= s
                G = Gk if G is None else G + Gk
        fused = fused_gradient(G, pt.alpha_scaled, pt.cf)
        if fused is not None:
            pt.grad, pt.rank2 = fused[0], fused[1].T

    def _args(self, pt: _Point) -> tuple[list, list, list]:
        return pt.z, self._b, self._w

    # ------------------------------------------------------------------ values
    def alpha(self, x: Any) -> float:
        """``α(x) = <u(x), 1>`` (Definition 3.1); raises :class:`DomainError` where ``α(x) ≤ 0``."""
        pt = self._at(x)
        return unscale(pt.alpha_scaled, pt.m)

    def loss_exp(self, x: Any) -> float:
        """``L_exp(x) = ½‖c(x)‖²`` (Definition 1.4)."""
        return 0.5 * self._at(x).cc

    def loss_reg(self, x: Any) -> float:
        """``L_reg(x) = ½‖W A x‖²``."""
        return self._at(x).reg

    def loss(self, x: Any) -> float:
        """``L(x) = L_exp(x) + L_reg(x)``: one pass over ``A`` at a new ``x``, none at the cached one."""
        pt = self._at(x)
        return 0.5 * pt.cc + pt.reg

    fused_loss_and_grad = True  #: :meth:`loss_and_grad` at a new point is one pass over ``A``

    def loss_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """``(L(x), ∇L(x))`` in one pass over ``A`` at a new ``x`` (none at the cached one).

        The expansion of :meth:`softres.Problem.loss_and_grad`: each block returns its four partial
        products ``A_kᵀ[v∘φ, v∘b, v, w² z]`` with the pass that computes ``z_k``, and the driver combines
        them once ``α`` and ``<c, f>`` are known. The same sums give ``AᵀU`` (Lemma 5.4), so a following
        :meth:`hess` or :meth:`hessp` needs no extra pass for it.
        """
        pt = self._at(x, with_grad=True)
        return 0.5 * pt.cc + pt.reg, self.grad(x)

    def grad(self, x: Any) -> np.ndarray:
        """``∇L(x) = Aᵀ(v/α ∘ r + w² Ax)`` (Lemma 4.1): one pass (plus one at a new ``x``); none after
        :meth:`loss_and_grad` at ``x``."""
        pt = self._at(x)
        if pt.grad is not None:
            return pt.grad.copy()
        unit, tot = self.unit, pt.tot
        g, pt.tt = self.op.run_pass(_k_grad, *self._args(pt), unit=unit, tot=tot)
        if not np.isfinite(g).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return g

    def grad_error(self, x: Any) -> float:
        """``ε_mach ‖A‖_F ‖t‖`` as :meth:`softres.Problem.grad_error` (no pass over ``A``)."""
        pt = self._at(x)
        if pt.tt is None:  # else kept from grad's pass
            pt.tt = sum(self.op.run_rows(_k_grad_error, *self._args(pt), unit=self.unit, tot=pt.tot))
        tt = pt.tt
        return float(np.finfo(float).eps * self.op.frobenius * math.sqrt(tt))

    # ------------------------------------------------------------------ Hessian
    def _rank2_of(self, pt: _Point, AtU: np.ndarray) -> np.ndarray:
        pt.rank2 = AtU
        a, q = AtU
        with np.errstate(over="ignore", invalid="ignore"):
            return pt.ff * np.outer(a, a) - np.outer(a, q) - np.outer(q, a)

    def _hessian(self, x: Any, exp_only: bool) -> np.ndarray:
        pt = self._at(x)
        unit, tot = self.unit, pt.tot
        G, AtU = self.op.run_pass(_k_hess, *self._args(pt), unit=unit, tot=tot, exp_only=exp_only)
        with np.errstate(over="ignore", invalid="ignore"):
            G = G + self._rank2_of(pt, AtU)
        if not np.isfinite(G).all():
            raise ValueError("the Hessian overflows float64 at this x (entries of A or w too large)")
        return G

    def hess(self, x: Any) -> np.ndarray:
        """``∇²L(x) = Aᵀ(B_diag + W²)A + Aᵀ B_rank A`` (Lemmas 5.2, 5.4), ``d × d``: one pass for both parts."""
        return self._hessian(x, False)

    def hess_exp(self, x: Any) -> np.ndarray:
        """Hessian of ``L_exp`` alone, ``Aᵀ B(x) A`` (Lemma 5.2): one pass."""
        return self._hessian(x, True)

    def hess_rank2(self, x: Any) -> np.ndarray:
        """``Aᵀ B_rank(x) A`` (Lemma 5.4): one pass the first time at ``x`` (``AᵀU`` is kept)."""
        pt = self._at(x)
        if pt.rank2 is None:
            pt.rank2 = self._AtU(pt)
        return self._rank2_of(pt, pt.rank2)

    def _AtU(self, pt: _Point) -> np.ndarray:
        unit, tot = self.unit, pt.tot
        _, _, AtU = self.op.run_pass(_k_hessp, *self._args(pt), unit=unit, tot=tot, s=np.zeros(self.d),
                                     with_rank2=True)
        return AtU

    def hessp(self, x: Any, s: Any) -> np.ndarray:
        """``∇²L(x) s`` (Lemmas 5.2, 5.4) in one pass: ``Aᵀ(D ∘ As) + α⁻²(...)`` with ``AᵀU`` kept per point."""
        pt = self._at(x)
        s = as_vector(s, self.d, "s")
        unit, tot, first = self.unit, pt.tot, pt.rank2 is None
        Dt, tU, AtU = self.op.run_pass(_k_hessp, *self._args(pt), unit=unit, tot=tot, s=s, with_rank2=first)
        if first:
            pt.rank2 = AtU
        a, q = pt.rank2
        vt, pt_ = tU
        with np.errstate(over="ignore", invalid="ignore"):
            out = Dt + (pt.ff * vt - pt_) * a - vt * q
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

    def curvature(self, x: Any, s: Any, rows: int | None = None) -> float:
        """``sᵀ∇²L(x)s`` (as :meth:`softres.Problem.curvature`): ``s`` times :meth:`hessp`, one pass (exact:
        ``rows`` is ignored)."""
        s = as_vector(s, self.d, "s")
        return float(s @ self.hessp(x, s))

    def sketched_hessian(self, x: Any, sketch: Any) -> tuple[np.ndarray, dict]:
        """Algorithm 1's ``H̃(x)`` for :class:`softres.sketch.SketchedHessian` (see the module for the passes).

        Fresh scores: a CountSketch pass, then one pass that scores, samples and forms the sampled Gram.
        With ``score_reuse ≥ κ = max D₊ / min D₊`` (the spread of the positive diagonal), the scores are
        instead ``D_i ℓ_i(A) / min D₊`` with ``ℓ_i(A)`` the exact leverage scores of ``A`` itself, from
        ``AᵀA`` (one pass, once per problem): upper bounds within ``κ`` of the scores of ``D^{1/2}A``
        (``min D₊ AᵀA ⪯ AᵀD₊A ⪯ max D₊ AᵀA``), so the sample grows by ``κ`` and the sketch costs one pass.
        """
        pt = self._at(x)
        unit, tot, n, d = self.unit, pt.tot, self.n, self.d
        nblocks = len(self.op.blocks)
        s = sample_size(d, sketch.eps0, sketch.delta, sketch.C)
        rng = sketch.rng
        stats = self.op.run_rows(_k_dstats, *self._args(pt), unit=unit, tot=tot)
        nonpos = sum(st[0] for st in stats)
        if sketch.nonpositive == "raise" and nonpos:
            raise NonPositiveDiagonalError(int(nonpos), float(min(st[1] for st in stats)), n)
        lo, hi = min(st[2] for st in stats), max(st[3] for st in stats)
        kappa = hi / lo if hi > 0 else 1.0
        proj, scale, draws, fresh = None, 1.0, s, False
        if s < n and kappa <= sketch.score_reuse and math.ceil(s * kappa) < n and self._gram_factor() is not None:
            proj, scale, draws = self._gram_factor(), 1.0 / lo, math.ceil(s * kappa)
        elif s < n:
            rows = min(n, 8 * d)
            seeds = list(rng.integers(0, 2**63, size=nblocks))
            SM = self.op.run_pass(_k_countsketch, *self._args(pt), seeds, unit=unit, tot=tot, rows=rows)
            proj, fresh = jl_projection(SM, jl_dimension(n), rng), True
        seeds = list(rng.integers(0, 2**63, size=nblocks))
        G, AtU, picked, exact = self.op.run_pass(_k_sample, *self._args(pt), seeds, unit=unit, tot=tot, proj=proj,
                                                 scale=scale, s=s, d=d)
        with np.errstate(over="ignore", invalid="ignore"):
            H = G + self._rank2_of(pt, AtU)
        if not np.isfinite(H).all():
            raise ValueError("the Hessian overflows float64 at this x (entries of A or w too large)")
        return H, {"rows": int(picked + exact), "exact_rows": int(exact), "draws": int(min(draws, n)),
                   "fresh": fresh}

    def _gram_factor(self) -> np.ndarray | None:
        """``L⁻ᵀ`` for ``AᵀA = L Lᵀ`` (rows of ``A L⁻ᵀ`` have squared norms ``ℓ_i(A)``): one pass, once.

        ``None`` when ``AᵀA`` is singular to working precision (the CountSketch serves then).
        """
        op = self.op
        if not hasattr(op, "_gram_inv"):
            G0 = op.run_pass(_k_gram)
            try:
                op._gram_inv = np.linalg.inv(np.linalg.cholesky(G0)).T
            except np.linalg.LinAlgError:
                op._gram_inv = None
            if op._gram_inv is not None and not np.isfinite(op._gram_inv).all():
                op._gram_inv = None
        return op._gram_inv

    # ------------------------------------------------------------------ n-vectors, as Dask arrays
    def _vector(self, x: Any, what: str) -> Any:
        import dask.array as da

        pt = self._at(x)
        # On disk, a block of z is removed when the point changes: the (lazy) result recomputes it from A's block.
        zs = [(blk, pt.x) for blk in self.op.blocks] if self.op.z_on_disk else [(z, None) for z in pt.z]
        parts = [da.from_delayed(dask.delayed(_call)(_k_vector, z, b, w, self.unit, pt.tot, what, x_), (rows,),
                                 dtype=float)
                 for (z, x_), b, w, rows in zip(zs, self._b, self._w, self.op.row_chunks, strict=True)]
        return da.concatenate(parts)

    def f(self, x: Any) -> Any:
        """``f(x) = α(x)⁻¹ u(x)`` (Definition 3.1), a Dask array."""
        return self._vector(x, "f")

    def c(self, x: Any) -> Any:
        """``c(x) = f(x) − b`` (Definition 3.1), a Dask array."""
        return self._vector(x, "c")

    def B_diag(self, x: Any) -> Any:
        """``α⁻² v∘v + α⁻¹ φ''(Ax)∘r`` (Lemma 5.4), a Dask array."""
        return self._vector(x, "B_diag")

    def hess_diag(self, x: Any) -> Any:
        """``B_diag(x) + w²`` (the diagonal Algorithm 1 sparsifies), a Dask array."""
        return self._vector(x, "D")

    def gram(self, D: Any) -> np.ndarray:
        """``Aᵀ diag(D) A`` for an ``n``-vector ``D`` (numpy or Dask): one pass."""
        return self.op.gram(D)


def _not_distributed(name: str) -> Any:
    def method(self: DaskProblem, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"Problem.{name} is not available for a Dask A (it needs an n × d or n × n "
                                  "array, or an unscaled n-vector, in one place)")
    method.__name__ = name
    return method


for _name in ("u", "v", "jac_u", "jac_f", "B", "B_rank", "grad_exp", "grad_alpha", "_Ax", "_dense_A"):
    setattr(DaskProblem, _name, _not_distributed(_name))


def _k_vector(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, what: str,
              x: np.ndarray | None) -> np.ndarray:
    """``what`` (``f``, ``c``, ``B_diag``, or ``D``) on one block, of the kept ``z`` or (``x`` given) ``z = A_k x``."""
    if x is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.asarray(z @ x, dtype=float)
    st = _block_state(z, b, unit, tot)
    if what == "D":
        return np.array(st.D(np.broadcast_to(w * w, z.shape)))
    return np.array(getattr(st, what))
