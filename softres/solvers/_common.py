"""What every method of :func:`softres.minimize` shares: the loop, the line search, the stopping rule,
the history, the callback and the result.

The loop is the one of scipy's ``_trustregion.py`` turned to line searches: a method only says how to
compute a step direction (:class:`Method.direction`); everything else lives here once.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy.linalg.lapack import dtrtrs
from scipy.optimize import OptimizeResult

from softres._linalg import safe_norm

__all__ = ["STATUS", "Method", "Stop", "chol_solve", "pd_factor", "run", "triangular_solve"]

_EPS = float(np.finfo(float).eps)  # np.finfo is a call of about 1 µs

STATUS = {
    0: "converged",
    1: "maximum number of iterations reached",
    2: "line search failed: no acceptable step inside the domain",
    3: "x0 is outside the domain alpha(x) > 0, or the loss is not finite there",
    4: "Hessian approximation unavailable",
    5: "numerical failure: a quantity is not finite in float64",
    6: "the gradient is exactly zero in float64 while L(x) > 0: not a verified minimum",
    99: "stopped by the callback (StopIteration)",
}


class Stop(Exception):
    """Ends a run with ``status`` and a detail for the message."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Method:
    """One solver of :func:`softres.minimize`: a step direction at each iterate.

    Subclasses declare their options as keyword-only parameters of ``__init__`` (validated there);
    ``default_maxiter``, ``randomised`` and ``curvature`` describe them to :func:`softres.minimize` and the tests;
    :func:`softres.solvers.options_of` reads them from the signature. ``accepted`` sees each step
    ``s = x_{k+1} − x_k`` and gradient change ``y``, for methods that learn from them.
    """

    name: ClassVar[str]
    default_maxiter: ClassVar[int] = 100
    randomised: ClassVar[bool] = False  # uses the seed (a sketch)
    curvature: ClassVar[bool] = False  # uses the Hessian or its sketch: converges in few iterations

    def __init__(self, problem: Any, rng: np.random.Generator) -> None:
        self.problem, self.rng = problem, rng
        self.info: dict[str, Any] = {}

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def accepted(self, s: np.ndarray, y: np.ndarray) -> None:
        """Called after each accepted step (no-op by default)."""


def pd_factor(H: np.ndarray) -> tuple[np.ndarray, float]:
    """Cholesky factor ``L`` of ``H``, or of ``H + τI`` with the smallest doubling ``τ`` that makes it PD.

    Returns ``L`` and ``τ`` (0 when ``H`` was positive definite). numpy's LAPACK is used throughout
    the solvers (see :mod:`softres.sketch` for why not scipy's as well).
    """
    if not np.isfinite(H).all():
        raise Stop(5, "the Hessian (or its approximation) is not finite")
    scale = float(np.abs(np.diag(H)).max(initial=0.0))
    if not scale > 0:
        raise Stop(4, "the Hessian's diagonal is zero in float64 (A or w too small to resolve)")
    tau = 0.0
    for _ in range(60):
        try:
            return np.linalg.cholesky(H + tau * np.eye(len(H))), tau
        except np.linalg.LinAlgError:
            tau = max(2 * tau, 1e-10 * scale)
    raise Stop(4, "the Hessian could not be made positive definite by a shift")


def triangular_solve(T: np.ndarray, r: np.ndarray, *, lower: bool = False, trans: bool = False) -> np.ndarray:
    """``T⁻¹ r`` (``T⁻ᵀ r`` with ``trans``) for a triangular ``T``: LAPACK's ``dtrtrs`` called directly.

    scipy's ``solve_triangular`` validates and wraps the same call at about 15 µs against 1 µs here (two
    per L-BFGS iteration, where at ``n = 10⁴`` an iteration's pass over ``A`` takes some 300 µs).
    A ``d × k`` block ``r`` is solved column by column: for a block, ``dtrtrs`` runs in scipy's OpenBLAS
    threads (a second pool beside numpy's), and right after numpy's BLAS on two cores one ``100 × 8``
    solve took 8 ms, against 0.1 ms for its columns one at a time (sketch-lbfgs paid it every iteration).
    ``np.linalg.LinAlgError`` for a zero on the diagonal (the callers' factors have none).
    """
    if r.ndim == 2:
        out = np.empty(r.shape)
        for j in range(r.shape[1]):
            out[:, j] = triangular_solve(T, r[:, j], lower=lower, trans=trans)
        return out
    out, info = dtrtrs(T, r, lower=int(lower), trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular solve failed (LAPACK dtrtrs info = {info})")
    return out


def chol_solve(L: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``(L Lᵀ)⁻¹ r`` by two triangular solves (``O(d²)``; a general solve would factor ``L`` again)."""
    return triangular_solve(L, triangular_solve(L, r, lower=True), lower=True, trans=True)


class _Counted:
    """The problem's loss and gradient, counted (``nfev``, ``njev``), trial points outside the domain rejected."""

    def __init__(self, problem: Any) -> None:
        self.problem, self.nfev, self.njev = problem, 0, 0
        # Where the loss and the gradient come from one pass, every trial computes both: an accepted
        # trial's gradient is then free, a rejected one costs no extra pass.
        self.loss = problem.loss_and_grad if getattr(problem, "fused_loss_and_grad", False) else problem.loss

    def trial_loss(self, x: np.ndarray) -> float:
        """``L(x)``, or ``inf`` where ``x`` is outside the domain or something overflows (a rejected trial)."""
        self.nfev += 1
        try:
            value = self.loss(x)
            value = float(value[0] if isinstance(value, tuple) else value)
        except ValueError:
            return math.inf
        return value if math.isfinite(value) else math.inf

    def grad(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """``(∇L(x), ‖∇L(x)‖)``; :class:`Stop` with status 5 when it is not finite."""
        self.njev += 1
        try:
            g = np.asarray(self.problem.grad(x), dtype=float)
        except ValueError as exc:  # overflow in a product with A
            raise Stop(5, f"the gradient is not finite ({exc})") from None
        gnorm = safe_norm(g)
        if not math.isfinite(gnorm):
            raise Stop(5, "the gradient's norm overflows float64")
        return g, gnorm


def _line_search(oracle: _Counted, x: np.ndarray, f: float, g: np.ndarray, p: np.ndarray, *, c1: float = 1e-4,
                 shrink: float = 0.5, min_step: float = 1e-12) -> tuple:
    """Backtracking Armijo search from ``t = 1``; trial points outside the domain are rejected.

    A change of the loss within its rounding error (``8 ε_mach |L|``) counts as no increase, so that
    steps keep being taken once the loss has stopped resolving the progress (near ``x*``). Where even
    the predicted decrease ``t |gᵀp|`` is within that error, the loss cannot judge the trial (its
    computed change is rounding noise, of either sign): the trial is then accepted if it reduces the
    gradient's norm. Returns ``(x_new, f_new, t, ‖t p‖, (∇L(x_new), ‖∇L(x_new)‖) or None)``.
    """
    slope = float(g @ p)
    if not slope < 0:
        p, slope = -g, -float(g @ g)  # not a descent direction: fall back to steepest descent
    slack = 8 * _EPS * abs(f)
    t = 1.0
    while t >= min_step:
        xt = x + t * p
        ft = oracle.trial_loss(xt)
        if ft <= f + c1 * t * slope + slack:
            return xt, ft, t, t * safe_norm(p), None
        if -t * slope <= slack and math.isfinite(ft):
            gt = oracle.grad(xt)  # no pass where loss and gradient share one (dense or Dask A)
            if gt[1] < safe_norm(g):
                return xt, ft, t, t * safe_norm(p), gt
        t *= shrink
    raise Stop(2, f"no decrease along the direction down to step {min_step:g}")


def _wrap_callback(callback: Callable | None) -> Callable[[OptimizeResult], None] | None:
    """scipy's convention: ``callback(intermediate_result)`` if that is its only parameter, else ``callback(x)``."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        params = []
    if params == ["intermediate_result"]:
        return lambda res: callback(intermediate_result=res)
    return lambda res: callback(np.copy(res.x))


def run(problem: Any, method: Method, x: np.ndarray, *, tol: float, gtol: float, maxiter: int,
        callback: Callable | None) -> OptimizeResult:
    """Iterate ``method`` from ``x`` until the stopping rule, and assemble scipy's ``OptimizeResult``.

    Stopping rule: ``‖∇L(x)‖ ≤ max(gtol, tol · ‖∇L(x₀)‖)``, or the gradient is at its own rounding
    level (``problem.grad_error(x)``, when the problem provides it): below that it is zero to
    working precision, so a warm start at the optimum converges at once. A gradient whose norm
    overflows never counts as converged (status 5).
    """
    oracle = _Counted(problem)
    notify = _wrap_callback(callback)
    op = getattr(problem, "op", None)
    passes0 = op.passes if op is not None else 0
    hist: dict[str, list] = {k: [] for k in ("loss", "grad_norm", "step", "t", "shift", "exact_rows", "time",
                                             "hess_rows", "cg_iters", "passes")}
    t0 = time.perf_counter()

    def record(f: float, gnorm: float, step: float, t: float) -> None:
        for key, value in (("loss", f), ("grad_norm", gnorm), ("step", step), ("t", t),
                           ("shift", method.info.get("shift", 0.0)), ("exact_rows", method.info.get("exact_rows", 0)),
                           ("time", time.perf_counter() - t0),
                           ("hess_rows", method.info.get("hess_rows", 0)),
                           ("cg_iters", method.info.get("cg_iters", 0)),
                           ("passes", (op.passes - passes0) if op is not None else 0)):
            hist[key].append(value)

    f, g, status, detail, reason, shifts, kept = math.inf, None, 1, "", "", 0, 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        try:
            try:
                oracle.nfev += 1
                f = oracle.loss(x)
                f = float(f[0] if isinstance(f, tuple) else f)
            except ValueError as exc:  # DomainError, or an overflow at x0
                raise Stop(3, str(exc)) from None
            if not math.isfinite(f):
                raise Stop(3, f"L(x0) = {f}")
            g, gnorm = oracle.grad(x)
            target = max(gtol, tol * gnorm)
            record(f, gnorm, 0.0, 0.0)
            floor = _RoundingFloor(problem)
            for k in range(maxiter + 1):
                reason = _converged(x, f, gnorm, target, gtol, floor)
                if reason:
                    status = 0
                    break
                if k == maxiter:
                    break
                method.info = {}
                p = method.direction(x, g)
                x_new, f, t, step, judged = _line_search(oracle, x, f, g, p)
                g_new, gnorm = judged or oracle.grad(x_new)
                method.accepted(x_new - x, g_new - g)
                x, g = x_new, g_new
                shifts += method.info.get("shift", 0.0) > 0
                kept += method.info.get("exact_rows", 0) > 0
                record(f, gnorm, step, t)
                if notify is not None:
                    try:
                        notify(OptimizeResult(x=x.copy(), fun=f, jac=g.copy(), nit=k + 1))
                    except StopIteration:
                        raise Stop(99) from None
        except Stop as stop:
            status, detail = stop.status, stop.detail
    message = STATUS[status] + (f": {reason}" if reason else "") + (f": {detail}" if detail else "")
    if shifts:
        message += f" ({shifts} iteration(s) shifted an indefinite Hessian to make it positive definite)"
    if getattr(method, "choice", None):
        message += f" (auto chose {method.choice!r}: {method.reason})"
    if kept:
        message += f" ({kept} iteration(s) kept rows with B_diag + w² < 0 exactly instead of sampling them)"
    nhev = getattr(method, "nhev", 0)
    return OptimizeResult(x=x, fun=f, jac=g, nit=max(len(hist["loss"]) - 1, 0), nfev=oracle.nfev, njev=oracle.njev,
                          nhev=nhev, passes=(op.passes - passes0) if op is not None else 0, success=status == 0,
                          status=status, message=message, method=method.name, history=hist)


class _RoundingFloor:
    """The gradient's rounding error (``problem.grad_error``, ``O(n)`` work), evaluated only when it may matter.

    While ``‖∇L‖`` is more than ``1e3`` times the last value computed, that value is reused for up to
    ``refresh`` iterations: the rounding error moves with ``f`` and ``v/α``, slowly along a run.
    """

    def __init__(self, problem: Any, refresh: int = 8) -> None:
        self.fun = getattr(problem, "grad_error", None)
        self.value, self.age, self.refresh = math.nan, 0, refresh

    def __call__(self, x: np.ndarray, gnorm: float) -> float:
        if self.fun is None:
            return 0.0
        self.age += 1
        if not (gnorm > 1e3 * self.value and self.age <= self.refresh):  # nan compares False: compute
            self.value, self.age = self.fun(x), 0
        return self.value


def _converged(x: np.ndarray, f: float, gnorm: float, target: float, gtol: float, floor: _RoundingFloor) -> str:
    """Why the run may stop at ``x`` (empty when it may not); :class:`Stop` for a gradient that vanished.

    A gradient that is exactly zero in float64 while ``L(x) > 0`` comes from saturation (the
    normalised output one-hot to working precision, as when ``Ax`` is huge), underflow, or an exact
    symmetry (``cosh`` at ``x = 0``), not from a computed optimum: the run stops with status 6.
    """
    if gnorm == 0.0 and f > 0.0:
        raise Stop(6, "the output f(x) is saturated, the gradient underflows, or x is a stationary point "
                      "by symmetry; start elsewhere")
    if gnorm <= target:
        return f"|grad L(x)| = {gnorm:.3g} <= " + ("gtol" if target == gtol else "tol * |grad L(x0)|")
    floor = floor(x, gnorm)
    if math.isfinite(floor) and gnorm <= floor:
        return f"|grad L(x)| = {gnorm:.3g} is at its rounding error ({floor:.3g}): zero to working precision"
    return ""
