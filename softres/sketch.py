"""Hessian sparsification by leverage-score sampling (Lemma A.8 of Song, Wang, Yin 2023).

For a positive diagonal ``D`` the paper's Lemma A.8 (citing its references [89] and [29]) provides
a sparse nonnegative diagonal ``D̃`` with ``(1 − ε₀) AᵀDA ⪯ AᵀD̃A ⪯ (1 + ε₀) AᵀDA`` with
probability ``1 − δ``. The standard construction, implemented here:

1. approximate the leverage scores of the rows of ``M = D^{1/2} A`` without factoring ``M``:
   a sparse embedding (CountSketch, Clarkson–Woodruff) ``S`` with ``m = O(d)`` rows, the QR
   factor ``R`` of ``SM`` (``m × d``), and a Gaussian JL matrix ``G`` (``d × k``, ``k = O(log n)``):
   ``τ_i ≈ ‖e_iᵀ M R⁻¹ G‖² / k``;
2. sample ``s = ⌈C ε₀⁻² d log(d/δ)⌉`` rows i.i.d. with probabilities ``p_i ∝ τ_i`` and give each
   draw the weight ``D_i / (s p_i)``.

The cost is ``O(nnz(A)·k + m d² + s d²)``, against ``O(nnz(A)·d)`` for ``AᵀDA`` itself.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from softres._linalg import as_operator, signed_gram, single_blas_thread
from softres._validate import as_vector, check_choice, check_int, check_real
from softres.examples import as_generator

__all__ = ["NONPOSITIVE", "SAMPLING", "NonPositiveDiagonalError", "SketchedHessian", "SparseDiagonal",
           "condition_at_most", "condition_estimate", "leverage_scores", "sample_size", "sampled_gram",
           "sparsify_diagonal"]

#: The one spelling of what to do where the diagonal ``B_diag + W²`` is not positive (Lemma A.8 needs it
#: positive): ``"raise"`` refuses (:class:`NonPositiveDiagonalError`), ``"exact"`` keeps those rows exactly.
NONPOSITIVE = ("raise", "exact")

#: Row-sampling distributions: ``"leverage"`` (Lemma A.8) or ``"uniform"`` over the positive rows (a baseline
#: beyond the paper, which needs ``s`` to grow with the rows' coherence ``n · max τ_i / d``).
SAMPLING = ("leverage", "uniform")


class NonPositiveDiagonalError(ValueError):
    """The diagonal to sparsify has entries ``≤ 0``: Lemma A.8's assumption ``D > 0`` fails.

    ``count`` is the number of such entries and ``minimum`` the smallest entry.
    """

    def __init__(self, count: int, minimum: float, n: int) -> None:
        self.count, self.minimum, self.n = count, minimum, n
        super().__init__(f"D must be positive (Lemma A.8); {count} of {n} entries are non-positive "
                         f"(min {minimum:.3g}); "
                         "increase w, or pass nonpositive='exact' to keep those rows exactly")

    def __reduce__(self) -> tuple:
        return type(self), (self.count, self.minimum, self.n)


def _check_accuracy(eps0: Any, delta: Any, C: Any) -> tuple[float, float, float]:
    return (check_real(eps0, "eps0", low=0.0, high=1.0, low_open=True, high_open=True),
            check_real(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True),
            check_real(C, "C", low=0.0, low_open=True))


def sample_size(d: int, eps0: float, delta: float, C: float = 1.0) -> int:
    """``s = ⌈C ε₀⁻² d log(d/δ)⌉`` rows (Lemma A.8's sample size, up to the constant ``C``)."""
    d = check_int(d, "d")
    eps0, delta, C = _check_accuracy(eps0, delta, C)
    return math.ceil(C * eps0**-2 * d * math.log(max(d, 2) / delta))


def leverage_scores(A: Any, D: np.ndarray, rng: np.random.Generator, *, embed_rows: int | None = None,
                    jl_dim: int | None = None) -> np.ndarray:
    """Approximate leverage scores of the rows of ``D^{1/2} A`` (``D > 0``), summing to about ``d``.

    Uses a CountSketch of ``embed_rows`` (default ``min(n, 8 d)``) rows, its QR factor and a
    Gaussian projection to ``jl_dim`` (default ``⌈2 log n⌉`` within ``[8, 32]``) dimensions; never
    factors the ``n × d`` matrix, and never forms ``D^{1/2} A`` either: the scaling is folded into
    the sketch's entries and into the scores. Two passes over ``A``; the ``n × k`` product ``A R⁻¹G`` is
    taken in blocks of rows (:meth:`softres._linalg.MatrixOperator.projected_row_norms`).
    """
    op = as_operator(A)
    n, d = op.n, op.d
    sqrt_d = np.sqrt(D)
    m = min(n, embed_rows or 8 * d)
    k = jl_dim or jl_dimension(n)
    signs = rng.choice([-1.0, 1.0], size=n) * sqrt_d
    SM = op.countsketch(rng.integers(0, m, size=n), signs, m)  # = S D^{1/2} A
    norms = op.projected_row_norms(jl_projection(SM, k, rng))  # ‖(A R⁻¹G)_i‖², block by block
    # A leverage score is at most 1; an estimate above 1 comes from rows that collided in the sketch.
    return np.minimum(D * norms, 1.0)


def condition_estimate(A: Any, rng: np.random.Generator, *, sample_rows: int | None = None) -> float:
    """An estimate of ``A``'s condition number ``σ_max/σ_min`` from a uniform sample of its rows: not a pass.

    ``m = sample_rows`` (default ``4 d``) rows drawn i.i.d. uniformly (all ``n`` rows, exactly, when
    ``m ≥ n``): ``(n/m)`` times their Gram matrix is an unbiased estimate of ``AᵀA``; its condition number
    is returned. What it reads is ``m d`` entries where a sketch of ``A`` reads all ``n d`` (at
    ``n = 10⁴``, ``d = 100`` on this project's machine a CountSketch of ``8 d`` rows and its eigenvalues
    took 0.9 ms, this 0.35 in a loop and about 0.5 right after a solve had filled the caches).

    Uniform sampling keeps the spectrum where no few rows dominate (``A`` incoherent: leverage scores
    near ``d/n``, as for rows drawn from one distribution), up to the spread of a finite sample: for
    Gaussian rows of identity covariance ``κ̂`` is near ``(1 + √(d/m)) / (1 − √(d/m))`` (Marchenko–Pastur),
    3 at ``m = 4 d`` where ``κ = 1``. Where a few rows carry a direction (a coherent ``A``), missing them
    lowers ``λ_min`` (``κ̂`` too high, up to ``inf``) or, if they carry the largest singular value,
    ``λ_max`` (``κ̂`` too low). ``inf`` when the sample is rank deficient (to working precision in its
    Gram matrix: ``κ`` above about ``10⁷``) or has fewer rows than ``d``.
    """
    op = as_operator(A)
    with _blas_threads(op):
        G = _sample_gram(op, rng, sample_rows)
        return math.inf if G is None else _gram_condition(G)


def condition_at_most(A: Any, rng: np.random.Generator, kappa: float, *, sample_rows: int | None = None) -> bool:
    """Whether :func:`condition_estimate` with the same arguments would be at most ``kappa``, at a fraction of its cost.

    The same sample's Gram matrix ``G`` first gets a sufficient test: ``λ_max(G) ≤ ‖G‖_∞`` (the largest
    absolute row sum), so if ``G − (‖G‖_∞/κ²) I`` has a Cholesky factor, ``λ_min(G) > ‖G‖_∞/κ² ≥ λ_max/κ²``
    and ``κ̂ = √(λ_max/λ_min) < κ``. Only where that fails are the eigenvalues computed. The answer is
    the estimate's; a well-conditioned sample (``κ̂`` near 3, ``‖G‖_∞`` a few times ``λ_max``) passes
    the test, which costs a ``d × d`` factorisation (20 µs at ``d = 100``) where the eigenvalues took 0.24 ms.
    """
    kappa = check_real(kappa, "kappa", low=1.0)
    op = as_operator(A)
    with _blas_threads(op):
        G = _sample_gram(op, rng, sample_rows)
        if G is None:
            return False
        bound = float(np.abs(G).sum(axis=1).max())
        if math.isfinite(bound):
            try:
                np.linalg.cholesky(G - (bound / kappa**2) * np.eye(len(G)))
                return True
            except np.linalg.LinAlgError:
                pass
        return _gram_condition(G) <= kappa


def _blas_threads(op: Any) -> contextlib.AbstractContextManager:
    """BLAS on one thread next to compiled passes (see :func:`~softres._linalg.single_blas_thread`); elsewhere
    as it is: switching its threads cost more than it saved (0.1-0.2 ms at ``n = 10⁴``)."""
    kernels = getattr(op, "dense_kernels", lambda: None)()
    return single_blas_thread() if kernels is not None else contextlib.nullcontext()


def _sample_gram(op: Any, rng: np.random.Generator, sample_rows: int | None) -> np.ndarray | None:
    """The Gram matrix of ``sample_rows`` (default ``4 d``) uniformly drawn rows of ``op``'s ``A`` (all rows when
    at least ``n``): ``d × d``, unscaled; ``None`` when fewer than ``d`` rows."""
    n, d = op.n, op.d
    m = check_int(sample_rows, "sample_rows") if sample_rows is not None else 4 * d
    if min(n, m) < d:
        return None
    index = np.arange(n) if m >= n else np.sort(rng.integers(0, n, size=m))  # sorted: rows read in order
    R = op.rows(index)
    with np.errstate(over="ignore", invalid="ignore"):  # squares past float64: inf, judged by the callers
        return (R.T @ R).toarray() if sp.issparse(R) else R.T @ R


def _gram_condition(G: np.ndarray) -> float:
    """``√(λ_max/λ_min)`` of a Gram matrix; ``inf`` when ``λ_min`` is at its rounding level (``κ`` above about 10⁷).

    The eigenvalues of the ``d × d`` matrix: numpy's QR or SVD of the ``m × d`` sample took several times
    as long. Squaring limits what is resolved to ``κ`` of about ``10⁷``, far above the thresholds it is
    compared with.
    """
    if not np.isfinite(G).all():  # the sample's squares overflow: nothing is known, say inf (Newton for "auto")
        return math.inf
    ev = np.linalg.eigvalsh(G)
    if not ev[0] > 4 * len(G) * np.finfo(float).eps * ev[-1]:
        return math.inf
    return float(math.sqrt(ev[-1] / ev[0]))


def jl_dimension(n: int) -> int:
    """Default Johnson–Lindenstrauss dimension of :func:`leverage_scores`: ``⌈2 log n⌉`` within ``[8, 32]``."""
    return int(min(32, max(8, math.ceil(2 * math.log(n)))))


def jl_projection(SM: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``R⁻¹G`` (``d × k``) from the sketch ``SM = S D^{1/2} A``: ``R`` its QR factor, ``G`` Gaussian ``d × k``.

    The rows of ``D^{1/2} A R⁻¹ G`` have squared norms about ``k`` times the leverage scores.
    """
    d = SM.shape[1]
    # numpy's LAPACK throughout: mixing it with scipy's (a second OpenBLAS with its own threads)
    # made these small factorisations ten times slower on two cores.
    R = np.linalg.qr(SM, mode="r")[:d]
    if R.shape[0] < d:  # fewer sketch rows than columns (n < d): pad with zero rows, lifted below
        R = np.vstack([R, np.zeros((d - R.shape[0], d))])
    # Guard a rank-deficient sketch: lift tiny pivots so R⁻¹ stays finite.
    diag = np.abs(np.diag(R))
    floor = 1e-12 * max(diag.max(initial=0.0), 1e-300)
    R[np.diag_indices_from(R)] = np.where(diag < floor, floor, np.diag(R))
    G = rng.standard_normal((d, k)) / math.sqrt(k)
    return np.linalg.solve(R, G)


@dataclass(frozen=True)
class SparseDiagonal:
    """The sparse diagonal ``D̃`` of Lemma A.8: ``weights`` on ``rows`` (zero elsewhere)."""

    rows: np.ndarray
    weights: np.ndarray
    n: int
    draws: int
    scores: np.ndarray | None = None  # the leverage-score estimates sampled by (None when exact)

    @property
    def nnz(self) -> int:
        return int(self.rows.size)


def sparsify_diagonal(A: Any, D: Any, *, eps0: float = 0.1, delta: float = 0.05, C: float = 1.0,
                      rng: int | np.random.Generator | None = None, nonpositive: str = "raise",
                      scores: np.ndarray | None = None, distortion: float = 1.0,
                      sampling: str = "leverage") -> SparseDiagonal:
    """Sample ``D̃`` with ``AᵀD̃A ≈ AᵀDA`` to relative accuracy ``ε₀`` (Lemma A.8).

    When the sample size ``s`` reaches ``n``, the exact diagonal is returned (sampling would only
    add noise).

    Parameters
    ----------
    A : (n, d) array, sparse array or MatrixOperator
    D : (n,) array
        The diagonal; Lemma A.8 needs ``D > 0``.
    eps0, delta, C : float
        Accuracy ``ε₀ ∈ (0, 1)``, failure probability ``δ ∈ (0, 1)`` and the constant of
        :func:`sample_size`.
    nonpositive : {"raise", "exact"}
        ``"raise"`` refuses a diagonal with entries ``≤ 0`` (:class:`NonPositiveDiagonalError`);
        ``"exact"`` (beyond the paper) samples the positive entries only and keeps the rows with
        ``D_i < 0`` exactly (rows with ``D_i = 0``, or whose row of ``A`` is zero, contribute
        nothing and are dropped), so that ``AᵀD̃A − AᵀDA`` is within ``ε₀ AᵀD₊A`` (``D₊`` the
        positive part) with probability ``1 − δ``; the exact rows cost ``O(d²)`` each.
    scores : (n,) array, optional
        Leverage-score estimates to sample by instead of computing new ones with
        :func:`leverage_scores` (e.g. an earlier point's, rescaled: see ``distortion``).
    distortion : float
        A bound ``κ ≥ 1`` on how far ``scores`` may be from estimates made at ``D`` (the ratio of
        the largest to the smallest ``scores_i / τ_i``); sampling by such estimates needs ``κ``
        times the rows, so ``s`` is multiplied by ``κ``.
    sampling : {"leverage", "uniform"}
        ``"uniform"`` (a baseline, beyond the paper) draws the positive rows with equal probability
        instead of by leverage score; ``scores`` is then ignored and no pass over ``A`` is made.

    Raises
    ------
    NonPositiveDiagonalError
        ``D`` has an entry ``≤ 0`` and ``nonpositive="raise"``.
    ValueError
        ``D`` of the wrong length or not finite, or an argument out of range.
    """
    op = as_operator(A)
    n = op.n
    D = as_vector(D, n, "D")
    check_choice(nonpositive, "nonpositive", NONPOSITIVE)
    check_choice(sampling, "sampling", SAMPLING)
    distortion = check_real(distortion, "distortion", low=1.0)
    s = math.ceil(sample_size(op.d, eps0, delta, C) * distortion)
    positive = D > 0
    if nonpositive == "raise" and not positive.all():
        raise NonPositiveDiagonalError(int(n - np.count_nonzero(positive)), float(D.min()), n)
    keep = np.flatnonzero(D < 0)
    if keep.size:
        rows_of_keep = op.rows(keep)
        nonzero = (abs(rows_of_keep).sum(axis=1) > 0) if sp.issparse(rows_of_keep) else (rows_of_keep != 0).any(axis=1)
        keep = keep[np.asarray(nonzero).ravel()]
    if s >= n or not positive.any():
        rows = np.flatnonzero(positive)
        rows = np.union1d(rows, keep)
        return SparseDiagonal(rows, D[rows], n, n)
    rng = as_generator(rng)
    if sampling == "uniform":
        tau = positive.astype(float)
    elif scores is None:
        tau = leverage_scores(op, np.where(positive, D, 0.0), rng)  # non-positive rows get score 0: never drawn
    else:
        tau = np.where(positive, as_vector(scores, n, "scores"), 0.0)
    total = float(tau.sum())
    if not total > 0:  # every positive row of A is zero: nothing to sample
        return SparseDiagonal(keep, D[keep], n, 0, tau)
    p = tau / total
    draws = rng.choice(n, size=s, p=p)
    rows, counts = np.unique(draws, return_counts=True)
    weights = D[rows] * counts / (s * p[rows])
    if keep.size:
        order = np.argsort(np.concatenate([rows, keep]), kind="stable")
        rows = np.concatenate([rows, keep])[order]
        weights = np.concatenate([weights, D[keep]])[order]
    return SparseDiagonal(rows, weights, n, s, tau)


def sampled_gram(A: Any, Dt: SparseDiagonal) -> np.ndarray:
    """``Aᵀ D̃ A`` from the sampled rows only: ``O(nnz(D̃) d²)``; weights of either sign."""
    return signed_gram(as_operator(A).rows(Dt.rows), Dt.weights)


class SketchedHessian:
    """Algorithm 1's Hessian approximation ``H̃(x) = Aᵀ D̃ A + Aᵀ B_rank(x) A`` (Lemma A.8, Lemma 5.4).

    ``D̃`` is :func:`sparsify_diagonal` of ``D = B_diag(x) + w²`` (:meth:`Problem.hess_diag`); the
    rank-two part is added exactly. Calling the object at ``x`` returns the ``d × d`` matrix;
    :attr:`last` describes the last call (``rows``: rows of ``A`` in ``D̃``; ``exact_rows``: rows
    with ``D_i < 0`` kept exactly; ``draws``: the sample size; ``fresh``: whether new leverage
    scores were computed).

    Parameters
    ----------
    problem : Problem
    eps0, delta, C : float
        Lemma A.8's accuracy, failure probability and sample-size constant.
    nonpositive : {"raise", "exact"}
        See :func:`sparsify_diagonal`; ``"raise"`` is the paper's Algorithm 1 to the letter.
    score_reuse : float
        Leverage scores of ``D^{1/2}A`` move little when ``D`` does: if ``D = γ ∘ D₀`` with
        ``γ ∈ [γ_min, γ_max]``, then ``AᵀDA`` lies between ``γ_min AᵀD₀A`` and ``γ_max AᵀD₀A``, so the
        scores at ``D`` are within ``κ = γ_max/γ_min`` of ``γ_i τ_i(D₀)`` (up to a common factor). While
        ``κ ≤ score_reuse``, the last fresh estimates are rescaled by ``γ`` and the sample grows by ``κ``
        (Lemma A.8 with ``κ``-approximate scores) instead of passing over ``A`` twice more. The
        default 1 computes fresh scores at every point, as Algorithm 1 does.
    sampling : {"leverage", "uniform"}
        See :func:`sparsify_diagonal`; ``"uniform"`` is a baseline beyond the paper.
    seed : int, numpy.random.Generator or None
        Randomness of the sketch.
    """

    def __init__(self, problem: Any, *, eps0: float = 0.1, delta: float = 0.05, C: float = 1.0,
                 nonpositive: str = "exact", score_reuse: float = 1.0, sampling: str = "leverage",
                 seed: int | np.random.Generator | None = None) -> None:
        self.problem = problem
        self.eps0, self.delta, self.C = _check_accuracy(eps0, delta, C)
        self.nonpositive = check_choice(nonpositive, "nonpositive", NONPOSITIVE)
        self.score_reuse = check_real(score_reuse, "score_reuse", low=1.0)
        self.sampling = check_choice(sampling, "sampling", SAMPLING)
        self.rng = as_generator(seed)
        self._saved: tuple[np.ndarray, np.ndarray] | None = None
        self.last: dict[str, Any] = {}

    def __call__(self, x: Any) -> np.ndarray:
        P = self.problem
        if getattr(P, "distributed", False):  # Dask: scores and sampling block by block (softres._dask)
            H, self.last = P.sketched_hessian(x, self)
            return H
        D = P.hess_diag(x)
        positive = D > 0
        scores, kappa = None, 1.0
        if self._saved is not None:
            D0, tau0 = self._saved
            if np.array_equal(positive & (D0 > 0), positive):  # no row became positive since the fresh scores
                gamma = D[positive] / D0[positive]
                spread = float(gamma.max() / gamma.min()) if gamma.size else 1.0
                if spread <= self.score_reuse:
                    scores, kappa = np.where(positive, tau0 * D / np.where(D0 > 0, D0, 1.0), 0.0), spread
        Dt = sparsify_diagonal(P.op, D, eps0=self.eps0, delta=self.delta, C=self.C, rng=self.rng,
                               nonpositive=self.nonpositive, scores=scores, distortion=kappa,
                               sampling=self.sampling)
        if scores is None and Dt.scores is not None and self.sampling == "leverage":
            self._saved = (D, Dt.scores)
        self.last = {"rows": Dt.nnz, "exact_rows": int(np.count_nonzero(Dt.weights < 0)),
                     "draws": Dt.draws,
                     "fresh": scores is None and Dt.scores is not None and self.sampling == "leverage"}
        H = sampled_gram(P.op, Dt)
        H += P.hess_rank2(x)
        return H
