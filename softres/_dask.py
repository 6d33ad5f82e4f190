"""Problems whose ``A`` is a row-chunked ``dask.array.Array``: the same loss, derivatives, sketch and solvers.

``softres.Problem(A, b, w)`` with a Dask ``A`` returns a :class:`DaskProblem`. ``A`` stays where Dask
keeps it (in worker memory, or on disk and read chunk by chunk): every product with ``A`` is a task
per block of rows whose result is either an ``n``-vector block that stays on its worker or a small
partial sum (a ``d``-vector, a ``d × d`` matrix, a few scalars) that the driver adds up. Nothing of size
``n × d`` or ``n × n`` is ever held in one place, and no ``n``-vector is gathered to the driver.

What is kept between calls, distributed over the workers: ``b`` and ``w`` (when ``w`` is a vector),
and, for the last point ``x``, the blocks of ``z = Ax`` (``n`` floats). Every other per-row quantity
of Definition 3.1 and Lemma 5.4 (``f``, ``v/α``, ``r``, ``B_diag + w²``, ``U``) is recomputed from the
block of ``z`` and the global scalars (the shift ``m``, ``α̃ = α e^{−m}``, ``<c, f>``, ``‖f‖²``) inside
the task that needs it, by :class:`softres._state.State` (the same code as for numpy).

Passes over ``A`` (``P.op.passes``) per call at a point already evaluated; at a new point the first
call adds the pass that computes ``z``. Construction reads ``A`` once, not counted (as numpy's finiteness
check is not): it checks that ``A`` is finite and computes ``‖A‖_F`` for :meth:`DaskProblem.grad_error`.

==========================  ======  ==================================================================
call                        passes  what one pass computes per block
==========================  ======  ==================================================================
``loss(x)`` (new ``x``)        1    ``z = A x`` (kept), then two rounds over ``z`` only: ``m``, ``α̃``;
                                    ``<c, f>``, ``‖f‖²``, ``‖c‖²``, ``‖W z‖²``
``grad(x)``                    1    ``Aᵀ(v/α ∘ r + w² z)``
``hess(x)``                    1    ``Aᵀ diag(B_diag + w²) A`` and ``AᵀU`` together (Lemma 5.4)
``hessp(x, s)``                1    ``A s``, ``Aᵀ(D ∘ A s)``, ``Uᵀ A s`` (and ``AᵀU``, kept, the first time)
``hess_rank2(x)``              0    ``AᵀU`` kept from ``hess`` or ``hessp`` (else 1 pass)
sketched Hessian               2    CountSketch of ``D^{1/2}A``; then leverage scores, sampling and
                                    the sampled Gram (and ``AᵀU``) in one pass. 1 with ``score_reuse ≥ κ``
                                    (+1 once per problem for ``AᵀA``); 1 when ``s ≥ n`` (exact)
``grad_error(x)``              0    rounds over ``z`` only
==========================  ======  ==================================================================

An exact Newton iteration with a full step is therefore 3 passes (Hessian, the line search's loss at
the new point, the gradient there; numpy's :class:`~softres._linalg.MatrixOperator` makes 2 for a dense
``A``, whose loss and gradient share one pass, and 4 for a sparse one), and an iteration of Algorithm 1
is 4 (numpy: 3 dense, 5 sparse). Each rejected line-search trial adds one.

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
import itertools
import logging
import math
import threading
from typing import Any

import dask
import distributed
import numpy as np
import scipy.sparse as sp

from softres._linalg import blocked_gram, safe_norm, signed_gram
from softres._state import Buffers, DomainError, State, unscale
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
def _block_state(z: np.ndarray, b: np.ndarray, unit: Any, tot: tuple) -> State:
    return State(None, z, b, Buffers(z.size), unit, block=tot)


def _k_matvec(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(A @ x, dtype=float)


def _k_frobenius(A: np.ndarray) -> tuple[bool, float]:
    A = np.asarray(A, dtype=float)
    return bool(np.isfinite(A).all()), safe_norm(A.ravel())


def _k_scale(z: np.ndarray, unit: Any) -> tuple[bool, float, float, float]:
    """The block's finiteness, own shift ``m_k``, ``Σ φ(z) e^{−m_k}`` and ``Σ |φ(z)| e^{−m_k}``."""
    if not np.isfinite(z).all():
        return False, 0.0, 0.0, 0.0
    phi, dphi, ddphi = np.empty(z.size), np.empty(z.size), np.empty(z.size)
    m, _ = unit.evaluate(z, phi, dphi, ddphi)
    with np.errstate(over="ignore", invalid="ignore"):
        return True, m, float(phi.sum()), float(np.abs(phi).sum())


def _k_sums(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, m: float, alpha_scaled: float) -> np.ndarray:
    """Partial ``<c, f>``, ``‖f‖²``, ``‖c‖²``, ``‖W z‖²`` of one block."""
    st = _block_state(z, b, unit, (m, alpha_scaled, None, None))
    with np.errstate(over="ignore", invalid="ignore"):
        wz = w * z
        return np.array([st.cf, st.ff, float(st.c @ st.c), float(np.sum(wz * wz))])


def _rhs(st: State, z: np.ndarray, w: Any) -> np.ndarray:
    """``y = v/α ∘ r + w² z``, the gradient's ``Aᵀy`` (Lemma 4.1)."""
    y = st.v_hat * st.r
    with np.errstate(over="ignore", invalid="ignore"):
        y += (w * w) * z
    return y


def _k_grad(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple) -> tuple[np.ndarray, float]:
    """``A_kᵀ y_k`` and, from the same state, ``‖t_k‖²`` of :meth:`softres.Problem.grad_error`."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        return _rhs(st, z, w) @ A, _grad_error_terms(st, z, b, w)


def _k_grad_error(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple) -> float:
    return _grad_error_terms(_block_state(z, b, unit, tot), z, b, w)


def _grad_error_terms(st: State, z: np.ndarray, b: np.ndarray, w: Any) -> float:
    """``‖t‖²`` of :meth:`softres.Problem.grad_error` on one block."""
    t = np.abs(st.f) + np.abs(b)
    t += abs(st.cf)
    t *= st.v_hat
    with np.errstate(over="ignore", invalid="ignore"):
        t += (w * w) * np.abs(z)
        return float(t @ t)


def _k_hess(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple,
            exp_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """``Aᵀ diag(D) A`` (``D = B_diag + w²``, or ``B_diag`` alone) and ``UᵀA`` of one block."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        D = st.B_diag if exp_only else st.D(w * w)
        return blocked_gram(np.asarray(A, dtype=float), D), st.U.T @ A


def _k_hessp(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, s: np.ndarray,
             with_rank2: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``Aᵀ(D ∘ As)``, ``Uᵀ(As)`` and (``with_rank2``) ``UᵀA`` of one block."""
    st = _block_state(z, b, unit, tot)
    with np.errstate(over="ignore", invalid="ignore"):
        t = A @ s
        U = st.U
        return (st.D(w * w) * t) @ A, t @ U, (U.T @ A if with_rank2 else None)


def _k_countsketch(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, rows: int,
                   seed: int) -> np.ndarray:
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


def _k_sample(A: np.ndarray, z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, proj: np.ndarray | None,
              scale: float, s: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, int, int]:
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
    positive = D > 0
    if proj is None:
        q = positive.astype(float)
    else:
        Z = A @ proj
        # A leverage score is at most 1; an estimate above 1 comes from rows that collided in the sketch.
        tau = np.minimum(np.where(positive, D, 0.0) * np.einsum("ij,ij->i", Z, Z) * scale, 1.0)
        q = np.minimum(1.0, s * tau / d)
    picked = np.random.default_rng(seed).random(z.size) < q
    exact = (D < 0) & (A != 0).any(axis=1)
    keep = picked | exact
    weights = np.where(picked, D / np.where(picked, q, 1.0), D)[keep]
    return signed_gram(A[keep], weights), st.U.T @ A, int(np.count_nonzero(picked)), int(np.count_nonzero(exact))


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
        self.blocks = list(self.A.to_delayed().ravel())
        self.client = client if client is not None else dask_client()
        self._local = threading.local()
        # One read of A on construction (not counted, as numpy's finiteness check is not): finite, and ‖A‖_F.
        finite, norms = zip(*self.client.gather(self.client.compute(
            [dask.delayed(_k_frobenius, nout=2)(A_k) for A_k in self.blocks])), strict=True)
        if not all(finite):
            raise ValueError(f"{name} must contain only finite values (no nan or inf)")
        self.frobenius = safe_norm(np.array(norms))  #: ``‖A‖_F``, for rounding-error estimates

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
    def run_pass(self, task: Any, *per_block: list, count: bool = True, keep: bool = False) -> Any:
        """One pass over ``A``: ``task(A_k, *args_k)`` (a ``dask.delayed`` result) for every block ``k``.

        ``per_block`` are lists (one entry per block: futures or arrays). The results are gathered
        (``keep=False``; each must be small) and summed when they are arrays or numbers, or returned as
        futures that stay on the workers (``keep=True``).
        """
        if count:
            self._count()
        tasks = [task(A_k, *args) for A_k, *args in zip(self.blocks, *per_block, strict=True)]
        futures = self.client.compute(tasks)
        return futures if keep else _sum(self.client.gather(futures))

    def run_rows(self, fn: Any, *per_block: list, **constants: Any) -> list:
        """``fn(*args_k, **constants)`` for every block, on the kept ``n``-vector blocks (not a pass over ``A``)."""
        futures = self.client.map(fn, *per_block, **constants, pure=False)
        return self.client.gather(futures)

    def to_blocks(self, v: Any, name: str) -> list:
        """An ``n``-vector (numpy or Dask) as futures of blocks aligned with ``A``'s rows, kept on the workers."""
        from softres._validate import is_dask_array

        if is_dask_array(v):
            if v.ndim != 1 or v.shape[0] != self.n:
                raise ValueError(f"{name} must be a 1-D array of length {self.n}, got shape {v.shape}")
            parts = list(v.astype(np.float64).rechunk((self.row_chunks,)).to_delayed().ravel())
            futures = self.client.compute(parts)
            if not all(self.client.gather(self.client.map(_finite, futures, pure=False))):
                raise ValueError(f"{name} must contain only finite values (no nan or inf)")
            return futures
        v = as_vector(v, self.n, name, copy=True)
        bounds = np.cumsum((0, *self.row_chunks))
        return self.client.scatter([v[lo:hi] for lo, hi in itertools.pairwise(bounds)])

    # ------------------------------------------------------------------ the MatrixOperator interface
    def matvec(self, x: Any, name: str = "x") -> Any:
        """``A @ x`` as a Dask array (lazy; blocks computed where ``A``'s are)."""
        x = as_vector(x, self.d, name)
        self._count()
        return self.A @ x

    def rmatvec(self, y: Any) -> np.ndarray:
        """``A.T @ y`` (a ``d``-vector) for an ``n``-vector ``y`` (numpy or Dask): one pass, per-block partial sums."""
        blocks = self.to_blocks(y, "y")
        out = self.run_pass(lambda A_k, y_k: dask.delayed(_k_rmatvec)(A_k, y_k), blocks)
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

    def gram(self, D: Any) -> np.ndarray:
        """``Aᵀ diag(D) A`` (``d × d``) as a sum of per-block ``d × d`` Gram matrices: one pass."""
        blocks = self.to_blocks(D, "D")
        return self.run_pass(lambda A_k, D_k: dask.delayed(blocked_gram)(A_k, D_k), blocks)

    def sketch(self, S: Any) -> np.ndarray:
        raise NotImplementedError("a Dask A is sketched block by block: use softres.sketch.SketchedHessian(problem) "
                                  "with problem = softres.Problem(A, b, w) (see softres._dask)")

    times_transpose = rows = sketch


def _finite(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).all())


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

    __slots__ = ("alpha_scaled", "cc", "cf", "ff", "m", "rank2", "reg", "tt", "x", "z")

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
        self._b = self.op.to_blocks(b, "b")
        if w is None or np.ndim(w) == 0:
            w = 0.0 if w is None else check_real(w, "w")
            if not math.isfinite(w * w):
                raise ValueError("w is too large: w**2 overflows float64")
            self._w: list = [w] * len(self.op.blocks)
            self._regularised = w != 0.0
        else:
            self._w = self.op.to_blocks(w, "w")
            self._regularised = True
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Problem(n={self.n}, d={self.d}, dask, {len(self.op.blocks)} blocks)"

    @property
    def b(self) -> Any:
        """The target ``b``, a Dask array of the blocks kept on the workers."""
        return self._kept(self._b)

    @property
    def w(self) -> Any:
        """The regulariser weights ``w``: a float, or a Dask array of the blocks kept on the workers."""
        return self._w[0] if not self._w or isinstance(self._w[0], float) else self._kept(self._w)

    def _kept(self, blocks: list) -> Any:
        import dask.array as da

        return da.concatenate([da.from_delayed(dask.delayed(blk), (rows,), dtype=float)
                               for blk, rows in zip(blocks, self.op.row_chunks, strict=True)])

    # ------------------------------------------------------------------ the state at x
    def _at(self, x: Any) -> _Point:
        x = as_vector(x, self.d, "x")
        pt = getattr(self._local, "point", None)
        if pt is not None and np.array_equal(pt.x, x):
            return pt
        self._local.point = None
        op = self.op
        # One pass: the blocks of z = Ax stay on the workers; each block's shift and sums come back with them.
        op._count()
        zs = [dask.delayed(_k_matvec)(A_k, x) for A_k in op.blocks]
        futures = op.client.compute(zs + [dask.delayed(_k_scale)(z_k, self.unit) for z_k in zs])
        z, scales = futures[:len(zs)], op.client.gather(futures[len(zs):])
        if not all(s[0] for s in scales):
            raise ValueError("x is too large: A @ x is not finite in float64")
        m = max(s[1] for s in scales)
        with np.errstate(over="ignore", invalid="ignore"):
            alpha_scaled = sum(s[2] * math.exp(s[1] - m) for s in scales)
            abs_sum = sum(s[3] * math.exp(s[1] - m) for s in scales)
        tol = 4.0 * self.n * np.finfo(float).eps
        if not alpha_scaled > tol * abs_sum:
            raise DomainError(unscale(alpha_scaled, m))
        cf, ff, cc, wz2 = np.sum(op.run_rows(_k_sums, z, self._b, self._w, unit=self.unit, m=m,
                                             alpha_scaled=alpha_scaled), axis=0)
        pt = _Point()
        pt.x, pt.z, pt.m, pt.alpha_scaled = x.copy(), z, m, alpha_scaled
        pt.cf, pt.ff, pt.cc, pt.reg = float(cf), float(ff), float(cc), 0.5 * float(wz2)
        pt.rank2 = pt.tt = None
        if not math.isfinite(pt.reg):
            raise ValueError("x is too large: the regulariser ½‖W A x‖² overflows float64")
        self._local.point = pt
        return pt

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

    def grad(self, x: Any) -> np.ndarray:
        """``∇L(x) = Aᵀ(v/α ∘ r + w² Ax)`` (Lemma 4.1): one pass (plus one at a new ``x``)."""
        pt = self._at(x)
        unit, tot = self.unit, pt.tot
        g, pt.tt = self.op.run_pass(lambda A_k, z, b, w: dask.delayed(_k_grad, nout=2)(A_k, z, b, w, unit, tot),
                                    *self._args(pt))
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
        G, AtU = self.op.run_pass(lambda A_k, z, b, w: dask.delayed(_k_hess, nout=2)(A_k, z, b, w, unit, tot, exp_only),
                                  *self._args(pt))
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
        _, _, AtU = self.op.run_pass(
            lambda A_k, z, b, w: dask.delayed(_k_hessp, nout=3)(A_k, z, b, w, unit, tot, np.zeros(self.d), True),
            *self._args(pt))
        return AtU

    def hessp(self, x: Any, s: Any) -> np.ndarray:
        """``∇²L(x) s`` (Lemmas 5.2, 5.4) in one pass: ``Aᵀ(D ∘ As) + α⁻²(...)`` with ``AᵀU`` kept per point."""
        pt = self._at(x)
        s = as_vector(s, self.d, "s")
        unit, tot, first = self.unit, pt.tot, pt.rank2 is None
        Dt, tU, AtU = self.op.run_pass(
            lambda A_k, z, b, w: dask.delayed(_k_hessp, nout=3)(A_k, z, b, w, unit, tot, s, first), *self._args(pt))
        if first:
            pt.rank2 = AtU
        a, q = pt.rank2
        vt, pt_ = tU
        with np.errstate(over="ignore", invalid="ignore"):
            out = Dt + (pt.ff * vt - pt_) * a - vt * q
        if not np.isfinite(out).all():
            raise ValueError("the result overflows float64 (A.T @ y is not finite)")
        return out

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
            SM = self.op.run_pass(
                lambda A_k, z, b, w, seed: dask.delayed(_k_countsketch)(A_k, z, b, w, unit, tot, rows, seed),
                *self._args(pt), seeds)
            proj, fresh = jl_projection(SM, jl_dimension(n), rng), True
        seeds = list(rng.integers(0, 2**63, size=nblocks))
        G, AtU, picked, exact = self.op.run_pass(
            lambda A_k, z, b, w, seed: dask.delayed(_k_sample, nout=4)(A_k, z, b, w, unit, tot, proj, scale, s, d,
                                                                        seed),
            *self._args(pt), seeds)
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
            G0 = op.run_pass(lambda A_k: dask.delayed(_k_gram)(A_k))
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
        parts = [da.from_delayed(dask.delayed(_k_vector)(z, b, w, self.unit, pt.tot, what), (rows,), dtype=float)
                 for z, b, w, rows in zip(*self._args(pt), self.op.row_chunks, strict=True)]
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


def _k_vector(z: np.ndarray, b: np.ndarray, w: Any, unit: Any, tot: tuple, what: str) -> np.ndarray:
    st = _block_state(z, b, unit, tot)
    if what == "D":
        return np.array(st.D(np.broadcast_to(w * w, z.shape)))
    return np.array(getattr(st, what))
