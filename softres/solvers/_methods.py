"""The methods of :func:`softres.minimize`, one small class each: how the step direction is computed.

Exact Newton (Definition A.6), the paper's Algorithm 1 (Definition A.9 with the sketched Hessian of
Lemma A.8), and, beyond the paper, Newton-CG, L-BFGS (plain or started from the sketched Hessian) and
gradient descent. The loop, line search, stopping rule and bookkeeping are in :mod:`._common`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from softres._linalg import MatrixOperator, safe_norm
from softres._validate import check_int
from softres.sketch import NonPositiveDiagonalError, SketchedHessian, condition_at_most
from softres.solvers._common import Method, Stop, chol_solve, pd_factor, triangular_solve

__all__ = ["GD", "LBFGS", "Newton", "NewtonCG", "NewtonLBFGS", "SketchLBFGS", "SketchNewton"]


def _hessian(problem: Any, x: np.ndarray) -> np.ndarray:
    try:
        return problem.hess(x)
    except ValueError as exc:  # the Hessian overflows float64
        raise Stop(5, str(exc)) from None


class Newton(Method):
    """Exact Newton (Definition A.6): ``p = −∇²L(x)⁻¹ ∇L(x)``, shifted to positive definite if needed."""

    name = "newton"
    curvature = True

    def __init__(self, problem: Any, rng: np.random.Generator) -> None:
        super().__init__(problem, rng)
        self.nhev = 0

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.nhev += 1
        factor, self.info["shift"] = pd_factor(_hessian(self.problem, x))
        self.info["hess_rows"] = self.problem.n
        return -chol_solve(factor, g)


class _Sketched(Method):
    """A method that uses Algorithm 1's sketched Hessian ``H̃`` (:class:`softres.sketch.SketchedHessian`)."""

    randomised = True
    curvature = True

    def __init__(self, problem: Any, rng: np.random.Generator, *, eps0: float = 0.1, delta: float = 0.05,
                 C: float = 1.0, nonpositive: str = "exact", score_reuse: float = 1.0,
                 sampling: str = "leverage") -> None:
        super().__init__(problem, rng)
        self.sketch = SketchedHessian(problem, eps0=eps0, delta=delta, C=C, nonpositive=nonpositive,
                                      score_reuse=score_reuse, sampling=sampling, seed=rng)
        self.nhev = 0

    def sketched_factor(self, x: np.ndarray) -> np.ndarray:
        """Cholesky factor of ``H̃(x)`` (shifted if it is not positive definite)."""
        self.nhev += 1
        try:
            H = self.sketch(x)
        except NonPositiveDiagonalError as exc:
            raise Stop(4, str(exc)) from None
        except ValueError as exc:  # overflow
            raise Stop(5, str(exc)) from None
        self.info["hess_rows"], self.info["exact_rows"] = self.sketch.last["rows"], self.sketch.last["exact_rows"]
        factor, self.info["shift"] = pd_factor(H)
        return factor


class SketchNewton(_Sketched):
    """The paper's Algorithm 1 (Theorem 9.1): ``p = −H̃(x)⁻¹ ∇L(x)`` with a fresh sketch at every iterate."""

    name = "sketch-newton"

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return -chol_solve(self.sketched_factor(x), g)


class NewtonCG(_Sketched):
    """Inexact Newton (beyond the paper; Nocedal & Wright, Algorithm 7.1): CG on ``∇²L(x) p = −∇L(x)``.

    Each CG iteration is one ``hessp`` (one pass over a dense ``A``, two over a sparse one). The sketched
    Hessian preconditions CG and is reused while CG converges in at most ``refresh_cg`` iterations. The forcing term is
    ``min(0.5, √(‖g‖/‖g₀‖))`` (superlinear convergence).
    """

    name = "newton-cg"

    def __init__(self, problem: Any, rng: np.random.Generator, *, eps0: float = 0.1, delta: float = 0.05,
                 C: float = 1.0, score_reuse: float = 1.0, cg_maxiter: int = 50, refresh_cg: int = 5) -> None:
        super().__init__(problem, rng, eps0=eps0, delta=delta, C=C, nonpositive="exact", score_reuse=score_reuse)
        self.cg_maxiter = check_int(cg_maxiter, "cg_maxiter")
        self.refresh_cg = check_int(refresh_cg, "refresh_cg")
        self.factor: np.ndarray | None = None
        self.last_cg = 0
        self.gnorm0: float | None = None

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.factor is None or self.last_cg > self.refresh_cg:
            self.factor = self.sketched_factor(x)
        gnorm = safe_norm(g)
        if self.gnorm0 is None:
            self.gnorm0 = gnorm
        forcing = min(0.5, math.sqrt(gnorm / self.gnorm0))
        p, self.last_cg = self._pcg(x, g, forcing)
        self.info["cg_iters"] = self.last_cg
        return p

    def _pcg(self, x: np.ndarray, g: np.ndarray, rtol: float) -> tuple[np.ndarray, int]:
        """Preconditioned CG on ``H p = −g``; stops at ``‖r‖ ≤ rtol ‖g‖`` or on negative curvature."""
        p = np.zeros_like(g)
        r = -g
        z = chol_solve(self.factor, r)
        d = z.copy()
        rz = float(r @ z)
        target = rtol * safe_norm(g)
        for k in range(1, self.cg_maxiter + 1):
            self.nhev += 1
            try:
                Hd = self.problem.hessp(x, d)
            except ValueError as exc:
                raise Stop(5, str(exc)) from None
            curv = float(d @ Hd)
            if not curv > 0:
                return (p if k > 1 else d), k
            step = rz / curv
            p += step * d
            r = r - step * Hd
            if safe_norm(r) <= target:
                return p, k
            z = chol_solve(self.factor, r)
            rz_new = float(r @ z)
            d = z + (rz_new / rz) * d
            rz = rz_new
        return p, self.cg_maxiter


#: Rows from which :func:`_lipschitz_estimate` estimates the curvature (``problem.curvature``'s ``rows``).
SCALE_ROWS = 4096


def _lipschitz_estimate(problem: Any, x: np.ndarray, g: np.ndarray) -> float:
    """Curvature of ``L`` along ``g``: ``gᵀ∇²L g / gᵀg`` (``problem.curvature``: one product ``A g``, or
    :data:`SCALE_ROWS` of its rows on a large dense ``A``); ``‖g‖`` if that is not positive.

    ``1/`` this is the exact minimising step along ``−g`` for a quadratic: the first step of
    gradient descent and of L-BFGS, so that neither spends its first iterations finding the scale.
    """
    u = g / safe_norm(g)  # unit direction: no under- or overflow in gᵀg at extreme scales
    try:
        curv = problem.curvature(x, u, rows=SCALE_ROWS)
    except ValueError:
        curv = math.nan
    return curv if curv > 0 and math.isfinite(curv) else safe_norm(g)


class GD(Method):
    """Gradient descent (baseline): ``p = −∇L(x) / L̂`` with ``L̂`` a local Lipschitz estimate.

    ``L̂`` is the curvature along the first gradient (:func:`_lipschitz_estimate`), then the secant
    ``‖Δ∇L‖ / ‖Δx‖`` of the last step; the Armijo line search guards both.
    """

    name = "gd"
    default_maxiter = 10_000

    def __init__(self, problem: Any, rng: np.random.Generator) -> None:
        super().__init__(problem, rng)
        self.lipschitz: float | None = None
        self.nhev = 0

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.lipschitz is None:
            self.nhev += 1
            self.lipschitz = _lipschitz_estimate(self.problem, x, g)
        self.info["hess_rows"] = 0
        return -g / self.lipschitz

    def accepted(self, s: np.ndarray, y: np.ndarray) -> None:
        ss = safe_norm(s)
        if ss > 0:
            estimate = safe_norm(y) / ss
            if estimate > 0 and math.isfinite(estimate):
                self.lipschitz = estimate


class LBFGS(Method):
    """L-BFGS (baseline; Nocedal & Wright, Section 7.2): the inverse Hessian of the last ``memory`` pairs.

    The initial inverse Hessian is ``sᵀy/yᵀy · I`` (the newest pair), or ``1/L̂`` before the first
    pair (:func:`_lipschitz_estimate`). Pairs with ``sᵀy ≤ 0`` (possible without a Wolfe line search,
    or where ``L`` is not convex) are skipped. The line search is softres's own, so trial points stay
    in the domain ``α(x) > 0`` and progress below the loss's rounding error is still taken.

    The direction uses the compact representation of Byrd, Nocedal and Schnabel (1994, Theorem 2.2),
    equal to the two-loop recursion (Nocedal & Wright, Algorithm 7.4) in exact arithmetic: a few
    products with the ``2k × d`` stack of pairs and two ``k × k`` triangular solves instead of ``4k``
    operations on ``d``-vectors, which at small ``n`` cost as much as the pass over ``A``. The pairs live
    in one preallocated array, interleaved (``s₀, y₀, s₁, y₁, …``), so that one product gives every inner
    product the direction needs (``[S; Y][S; Y]ᵀ`` and ``[S; Y]g``) and one more combines the rows.
    """

    name = "lbfgs"
    default_maxiter = 1000
    scalar_initial: ClassVar[bool] = True  # H₀ a multiple of I (False: initial_inverse is a matrix)

    def __init__(self, problem: Any, rng: np.random.Generator, *, memory: int = 20) -> None:
        super().__init__(problem, rng)
        self.memory = check_int(memory, "memory")
        self.pairs = np.empty((self.memory, 2, problem.d))  # rows s_i, y_i of the kept pairs, oldest first
        self.k = 0  # pairs kept
        self.nhev = 0
        self.scale: float | None = None

    def initial_inverse(self, x: np.ndarray, q: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``H₀ q`` before any pair is kept: ``q / L̂``. Once there are pairs, :meth:`direction` applies
        ``H₀ = sᵀy/yᵀy · I`` (newest pair) through the pairs' inner products; a subclass with
        ``scalar_initial = False`` overrides this with its fixed ``H₀`` (a vector or a ``d × k`` block ``q``)."""
        if self.scale is None:
            self.nhev += 1
            self.scale = 1.0 / _lipschitz_estimate(self.problem, x, g)
        return q * self.scale

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        k = self.k
        if not k:
            return -self.initial_inverse(x, g, g)
        W = self.pairs[:k].reshape(2 * k, -1)  # s₀, y₀, s₁, y₁, …
        G, Wg = W @ W.T, W @ g
        SY = G[0::2, 1::2]  # s_iᵀ y_j; the solves read its upper triangle R (i ≤ j) only
        Sg, Yg = Wg[0::2], Wg[1::2]
        u = triangular_solve(SY, Sg)
        if self.scalar_initial:  # H₀ = γI: its products from G and Wg
            gamma = SY[-1, -1] / G[-1, -1]
            p1 = triangular_solve(SY, np.diag(SY) * u + gamma * (G[1::2, 1::2] @ u - Yg), trans=True)
            coef = np.empty(2 * k)
            coef[0::2], coef[1::2] = p1, -gamma * u
            return -(gamma * g + coef @ W)
        Y = W[1::2]
        HY = self.initial_inverse(x, Y.T, g).T  # rows H₀ y_i
        p1 = triangular_solve(SY, np.diag(SY) * u + (Y @ HY.T) @ u - HY @ g, trans=True)
        return -(self.initial_inverse(x, g, g) + p1 @ W[0::2] - u @ HY)

    def accepted(self, s: np.ndarray, y: np.ndarray) -> None:
        sy = float(s @ y)
        if sy > 1e-12 * safe_norm(s) * safe_norm(y) and math.isfinite(sy):
            if self.k == self.memory:  # full: drop the oldest
                self.pairs[:-1] = self.pairs[1:]
                self.k -= 1
            self.pairs[self.k] = s, y
            self.k += 1


class _FactoredLBFGS(LBFGS):
    """L-BFGS whose initial inverse Hessian is ``M⁻¹`` for a ``d × d`` matrix ``M`` (a Hessian or its sketch)
    factored at the first iterate (:meth:`start_factor`) and, every ``refresh`` iterations, at the current one."""

    scalar_initial = False
    curvature = True

    def __init__(self, problem: Any, rng: np.random.Generator, *, memory: int = 20, refresh: int = 0) -> None:
        super().__init__(problem, rng, memory=memory)
        self.refresh = check_int(refresh, "refresh", low=0)
        self.factor: np.ndarray | None = None
        self.age = 0  # iterations since the factor was made

    def start_factor(self, x: np.ndarray) -> np.ndarray:
        """Cholesky factor of ``M`` at ``x`` (shifted to positive definite where needed)."""
        raise NotImplementedError

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.refresh and self.age >= self.refresh:
            self.factor = None
        return super().direction(x, g)

    def initial_inverse(self, x: np.ndarray, q: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.factor is None:
            self.factor, self.age = self.start_factor(x), 0
        return chol_solve(self.factor, q)

    def accepted(self, s: np.ndarray, y: np.ndarray) -> None:
        self.age += 1
        super().accepted(s, y)


class SketchLBFGS(_FactoredLBFGS):
    """L-BFGS (beyond the paper) whose initial inverse Hessian is ``H̃(x₀)⁻¹``, Algorithm 1's sketch at the start.

    The usual scaling ``sᵀy/yᵀy · I`` leaves a Hessian whose spectrum follows the column scales of ``A``
    to be learnt pair by pair; started from the sketched Hessian (accurate to ``1 ± ε₀`` at ``x₀``,
    Lemma A.8) the pairs only learn how the Hessian moves along the path. One pass over ``A`` per
    iteration after the first where :attr:`softres.Problem.fused_loss_and_grad`, two otherwise.
    """

    name = "sketch-lbfgs"
    default_maxiter = 500
    randomised = True

    def __init__(self, problem: Any, rng: np.random.Generator, *, eps0: float = 0.1, delta: float = 0.05,
                 C: float = 1.0, memory: int = 20) -> None:
        super().__init__(problem, rng, memory=memory)
        self._sketched = _Sketched(problem, rng, eps0=eps0, delta=delta, C=C, nonpositive="exact")

    def start_factor(self, x: np.ndarray) -> np.ndarray:
        self._sketched.info = self.info
        factor = self._sketched.sketched_factor(x)
        self.nhev = self._sketched.nhev
        return factor


class NewtonLBFGS(_FactoredLBFGS):
    """L-BFGS (beyond the paper) whose initial inverse Hessian is the exact ``∇²L(x₀)⁻¹`` (Lemma 5.2).

    Its first step is exact Newton's (Definition A.6); after it, the pairs correct ``∇²L(x₀)`` for how the
    Hessian moves along the path instead of forming it again: one weighted Gram product in all (for a
    dense ``A`` an ``n d²`` product, many passes' worth), then one or two passes over ``A`` per iteration.
    Where the Hessian moves far from ``x₀`` (a start far from ``x*``), ``refresh`` (default 10) forms it
    again at the current iterate every that many iterations (0: never), so that the run never becomes
    plain L-BFGS on an ill-conditioned problem.
    """

    name = "newton-lbfgs"
    default_maxiter = 500

    def __init__(self, problem: Any, rng: np.random.Generator, *, memory: int = 20, refresh: int = 10) -> None:
        super().__init__(problem, rng, memory=memory, refresh=refresh)

    def start_factor(self, x: np.ndarray) -> np.ndarray:
        self.nhev += 1
        factor, self.info["shift"] = pd_factor(_hessian(self.problem, x))
        self.info["hess_rows"] = self.problem.n
        return factor


#: κ̂(A) (:func:`softres.sketch.condition_estimate`) at or below which ``"auto"`` may take L-BFGS for a dense ``A``.
AUTO_KAPPA = 10.0

#: Bytes of a dense ``A`` from which ``"auto"`` may take L-BFGS. Ours, from ``benchmarks/bench_autodiff.py``
#: (d = 100, well-conditioned, after L-BFGS's per-iteration costs were cut and with pauses between the timed
#: runs): at 8 MB (n = 10⁴) L-BFGS took a median of 12.2 ms against exact Newton's 23.6 ms (11.1 and
#: 14.2 at best), its eight iterations of two passes cheaper than Newton's two ``n d²`` Gram products. Below
#: 4 MiB Newton is kept: there κ̂ (0.25-0.5 ms at d = 100 right after other work) weighs on a solve of a few ms.
AUTO_LBFGS_BYTES = 4 << 20


def choose_method(problem: Any, rng: np.random.Generator) -> tuple[str, str]:
    """The method ``"auto"`` runs on ``problem``, and why: ``(name, reason)``.

    * sparse ``A`` (few nonzeros per row): ``"newton-lbfgs"``: its Gram product costs about one pass over
      ``A`` (a compiled row-by-row sum, with numba), and exact Newton's first step followed by L-BFGS pairs
      on that Hessian converges in two or three iterations whatever the conditioning, one Gram product
      fewer than exact Newton (``benchmarks/bench_autodiff.py``, 1% nonzeros, ``d = 100``: faster from
      ``n = 10⁵``, 1.05-1.11x slower at ``10⁴`` in two runs);
    * ``A`` not held in this process (a Dask array): ``"newton"``: the fewest passes over ``A``;
    * dense ``A`` of at least :data:`AUTO_LBFGS_BYTES` with ``κ̂(A) ≤`` :data:`AUTO_KAPPA`: ``"lbfgs"``,
      one or two passes over ``A`` per iteration (:attr:`softres.Problem.fused_loss_and_grad`) against
      Newton's two or three plus an ``n d²`` Gram product;
    * dense ``A`` of at least :data:`AUTO_LBFGS_BYTES` with ``κ̂(A) >`` :data:`AUTO_KAPPA`: ``"newton-lbfgs"``,
      exact Newton's first step and then L-BFGS pairs on its Hessian, one ``n d²`` Gram product instead of
      one per iteration (``benchmarks/bench_autodiff.py``, ``col_range`` 100, ``d = 100``: 3.56, 35.3 and 329 ms
      against Newton's 5.77, 57 and 544 at ``n = 10⁴, 10⁵, 10⁶``);
    * a smaller dense ``A``: ``"newton"``, whose iterations do not grow with the conditioning.

    ``κ̂`` reads ``4 d`` sampled rows of a dense ``A``, not a pass (only estimated from
    :data:`AUTO_LBFGS_BYTES` up); it is about 3 for a well-conditioned ``A`` (the sample's own spread),
    which a Cholesky factorisation proves to be below the threshold without the eigenvalues
    (:func:`~softres.sketch.condition_at_most`: 0.23-0.27 against 0.45-0.50 ms inside a solve at ``n = 10⁴``).
    Where a few rows carry a direction it errs high (towards Newton) if that direction is the weakest, low
    (towards L-BFGS) if it is the strongest (:func:`~softres.sketch.condition_estimate`). The thresholds
    are ours, set from the benchmark grid (``benchmarks/bench_autodiff.py``: ``κ(A)`` about 1.2 and 100
    there, ``A`` of 8 MB to 800 MB).
    """
    op = getattr(problem, "op", None)
    if not isinstance(op, MatrixOperator):
        return "newton", "A is not in this process's memory: exact Newton makes the fewest passes"
    if op.is_sparse:
        return "newton-lbfgs", "sparse A: the Hessian's Gram product costs about one pass; one Hessian, then L-BFGS"
    size = 8 * op.n * op.d
    if size < AUTO_LBFGS_BYTES:
        return "newton", f"dense A of {size / 2**20:.3g} MiB < {AUTO_LBFGS_BYTES / 2**20:g} MiB: passes are cheap"
    if condition_at_most(op, rng, AUTO_KAPPA):
        return "lbfgs", f"dense A with estimated condition number <= {AUTO_KAPPA:g}"
    return "newton-lbfgs", f"dense A with estimated condition number > {AUTO_KAPPA:g}: one Hessian, then L-BFGS"


class Auto(Method):
    """The method :func:`choose_method` picks from the problem's shape, sparsity and conditioning (beyond the paper).

    Chooses at the first step (so that the estimate's time is the run's, and a run that starts at the
    optimum makes none) and delegates every step to that method, which the result's
    ``message`` names.
    """

    name = "auto"
    default_maxiter = 1000
    randomised = True  # the conditioning estimate draws a sample of rows

    def __init__(self, problem: Any, rng: np.random.Generator) -> None:
        super().__init__(problem, rng)
        self.inner: Method | None = None
        self.choice, self.reason = "", ""

    @property
    def nhev(self) -> int:
        return getattr(self.inner, "nhev", 0)

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.inner is None:
            self.choice, self.reason = choose_method(self.problem, self.rng)
            self.inner = _CHOICES[self.choice](self.problem, self.rng)
        self.inner.info = self.info
        return self.inner.direction(x, g)

    def accepted(self, s: np.ndarray, y: np.ndarray) -> None:
        self.inner.accepted(s, y)


_CHOICES: dict[str, type[Method]] = {"newton": Newton, "lbfgs": LBFGS, "newton-lbfgs": NewtonLBFGS}
