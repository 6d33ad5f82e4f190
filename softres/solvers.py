"""Minimising ``L = L_exp + L_reg``: the paper's approximate Newton method and better ones.

``minimize(problem, x0, method=...)`` mirrors ``scipy.optimize.minimize`` and returns a
``scipy.optimize.OptimizeResult`` with ``x, fun, jac, nit, success, status, message`` and a
per-iteration ``history``. Methods:

``"newton"``
    exact Newton (Definition A.6) with a backtracking line search that rejects trial points outside
    the domain ``α(x) > 0``;
``"sketch-newton"``
    the paper's Algorithm 1 (Theorem 9.1): the Hessian's diagonal part ``B_diag + W²`` is
    sparsified by leverage-score sampling (Lemma A.8, :mod:`softres.sketch`), the rank-two part of
    Lemma 5.4 is added exactly, and ``x ← x − H̃⁻¹∇L`` (Definition A.9);
``"newton-cg"``
    inexact Newton (beyond the paper): conjugate gradients on the exact Hessian through
    ``hessp`` (``O(nnz(A))`` each), preconditioned by the sketched Hessian;
``"sketch-lbfgs"``
    L-BFGS (beyond the paper) whose initial inverse Hessian is the sketched Hessian of Algorithm 1
    at ``x0``: a quasi-Newton method that costs one loss and one gradient per iteration and is
    insensitive to the conditioning of ``A`` (the sketch absorbs it);
``"gd"``, ``"lbfgs"``
    baselines: gradient descent with Armijo backtracking, and scipy's L-BFGS-B.

A solver never raises on a numerical failure and never returns ``nan``: it stops with
``success=False`` and a reason. ``newton_method`` is a custom ``method=`` callable for
``scipy.optimize.minimize``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult
from scipy.optimize import minimize as scipy_minimize

from softres._validate import as_vector
from softres.examples import as_generator
from softres.problem import Problem
from softres.sketch import sampled_gram, sparsify_diagonal

__all__ = ["METHODS", "minimize", "newton_method"]

METHODS = ("newton", "sketch-newton", "newton-cg", "sketch-lbfgs", "gd", "lbfgs")

_STATUS = {0: "converged: |grad L(x)| <= tol * |grad L(x0)|", 1: "maximum number of iterations reached",
           2: "line search failed: no acceptable step inside the domain",
           3: "x0 is outside the domain or not finite", 4: "Hessian approximation unavailable"}


class _Stop(Exception):
    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _safe(fun: Callable, x: np.ndarray) -> float:
    """``fun(x)``, or ``inf`` when ``x`` is outside the domain or overflows (a rejected trial point)."""
    try:
        value = float(fun(x))
    except ValueError:
        return math.inf
    return value if math.isfinite(value) else math.inf


def _line_search(fun, x, f, g, p, *, c1=1e-4, shrink=0.5, min_step=1e-12):
    """Backtracking Armijo search from ``t = 1``; trial points outside the domain are rejected."""
    slope = float(g @ p)
    if not slope < 0:
        p, slope = -g, -float(g @ g)  # not a descent direction: fall back to steepest descent
    slack = 8 * np.finfo(float).eps * abs(f)  # rounding in f near the optimum
    t = 1.0
    while t >= min_step:
        xt = x + t * p
        ft = _safe(fun, xt)
        if ft <= f + c1 * t * slope + slack:
            return xt, ft, t * float(np.linalg.norm(p))
        t *= shrink
    raise _Stop(2, f"no decrease along the direction down to step {min_step:g}")


def _pd_factor(H: np.ndarray) -> tuple[np.ndarray, float]:
    """Cholesky factor ``L`` of ``H``, or of ``H + τI`` with the smallest doubling ``τ`` that makes it PD.

    Returns ``L`` and ``τ`` (0 when ``H`` was positive definite). numpy's LAPACK is used throughout
    the solvers (see :mod:`softres.sketch` for why not scipy's as well).
    """
    scale = max(float(np.abs(np.diag(H)).max(initial=0.0)), 1e-300)
    tau = 0.0
    for _ in range(60):
        try:
            return np.linalg.cholesky(H + tau * np.eye(len(H))), tau
        except np.linalg.LinAlgError:
            tau = max(2 * tau, 1e-10 * scale)
    raise _Stop(4, "the Hessian could not be made positive definite by a shift")


def _chol_solve(L: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``(L Lᵀ)⁻¹ r``."""
    return np.linalg.solve(L.T, np.linalg.solve(L, r))


def _pcg(hessp: Callable, g: np.ndarray, precond: Callable, rtol: float, maxiter: int) -> tuple[np.ndarray, int]:
    """Preconditioned CG on ``H p = −g``; stops at ``‖r‖ ≤ rtol ‖g‖`` or on negative curvature."""
    p = np.zeros_like(g)
    r = -g.copy()
    z = precond(r)
    d = z.copy()
    rz = float(r @ z)
    target = rtol * float(np.linalg.norm(g))
    for k in range(1, maxiter + 1):
        Hd = hessp(d)
        curv = float(d @ Hd)
        if curv <= 0:
            return (p if k > 1 else d), k
        step = rz / curv
        p += step * d
        r -= step * Hd
        if float(np.linalg.norm(r)) <= target:
            return p, k
        z = precond(r)
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return p, maxiter


class _Sketcher:
    """The sketched Hessian ``H̃ = Aᵀ D̃ A + Aᵀ B_rank A`` of Algorithm 1 at one point.

    ``nonpositive="stop"`` ends the run where ``B_diag + W²`` is not positive (Lemma A.8's
    assumption fails); ``"exact"`` keeps those rows exactly and samples the rest.

    Leverage scores of ``D^{1/2}A`` move little when ``D`` does: if ``D = γ ∘ D₀`` with
    ``γ ∈ [γ_min, γ_max]``, then ``AᵀDA`` lies between ``γ_min AᵀD₀A`` and ``γ_max AᵀD₀A``, so the scores
    at ``D`` are within ``κ = γ_max/γ_min`` of ``γ_i τ_i(D₀)`` (up to a common factor). While
    ``κ ≤ score_reuse``, the last fresh estimates are rescaled by ``γ`` and the sample grows by ``κ``
    (Lemma A.8 with ``κ``-approximate scores) instead of passing over ``A`` twice more for new ones.
    """

    def __init__(self, problem: Problem, eps0: float, delta: float, C: float, rng: np.random.Generator,
                 nonpositive: str = "stop", score_reuse: float = 1.0):
        self.problem, self.eps0, self.delta, self.C, self.rng = problem, eps0, delta, C, rng
        self.nonpositive, self.score_reuse, self.saved = nonpositive, score_reuse, None

    def __call__(self, x: np.ndarray, info: dict) -> np.ndarray:
        P = self.problem
        D = P.B_diag(x) + P.w2
        positive = D > 0
        bad = int(D.size - np.count_nonzero(positive))
        if bad and self.nonpositive == "stop":
            raise _Stop(4, f"B_diag(x) + w² has {bad} non-positive entries (min {float(D.min()):.3g}): "
                           "Lemma A.8 needs a positive diagonal; increase w, or pass nonpositive='exact'")
        scores, kappa = None, 1.0
        if self.saved is not None:
            D0, tau0 = self.saved
            both = positive & (D0 > 0)
            if np.array_equal(both, positive):  # no row became positive since the fresh scores
                gamma = D[both] / D0[both]
                spread = float(gamma.max() / gamma.min())
                if spread <= self.score_reuse:
                    scores, kappa = np.where(positive, tau0 * D / np.where(D0 > 0, D0, 1.0), 0.0), spread
        Dt = sparsify_diagonal(P.A, D, eps0=self.eps0, delta=self.delta, C=self.C, rng=self.rng,
                               nonpositive="exact", scores=scores, distortion=kappa)
        if scores is None and Dt.scores is not None:
            self.saved = (D.copy(), Dt.scores)
        info["hess_rows"], info["exact_rows"] = Dt.nnz, bad
        return sampled_gram(P.A, Dt) + P.hess_rank2(x)


class _LBFGSDirection:
    """L-BFGS directions (two-loop recursion) with ``H₀ = H̃(x₀)⁻¹``, the sketched Hessian at the start.

    The usual L-BFGS scales the identity by ``sᵀy / yᵀy``; a Hessian whose spectrum follows the
    column scales of ``A`` then takes many iterations to learn. Starting from the sketched Hessian
    (Lemma A.8, accurate to ``1 ± ε₀`` at ``x₀``) the pairs only have to learn how the Hessian
    moves along the path. Pairs with ``sᵀy ≤ 0`` (possible without a Wolfe line search, or where
    ``L`` is not convex) are skipped. The recursion is written out because scipy's L-BFGS-B takes
    no initial Hessian, and because softres's line search must keep ``α(x) > 0``.
    """

    def __init__(self, sketcher: _Sketcher, memory: int) -> None:
        self.sketcher, self.memory = sketcher, memory
        self.pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.factor: np.ndarray | None = None
        self.last = (np.empty(0), np.empty(0))  # the previous (x, g), set by the first call

    def __call__(self, x: np.ndarray, g: np.ndarray, info: dict) -> np.ndarray:
        if self.factor is None:
            self.factor, info["shift"] = _pd_factor(self.sketcher(x, info))
        else:
            s, y = x - self.last[0], g - self.last[1]
            sy = float(s @ y)
            if sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):
                self.pairs = [*self.pairs, (s, y, 1.0 / sy)][-self.memory:]
        self.last = (x.copy(), g.copy())
        q = g.copy()
        coeffs = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            coeffs.append(a)
            q -= a * y
        r = _chol_solve(self.factor, q)
        for (s, y, rho), a in zip(self.pairs, reversed(coeffs), strict=True):
            r += (a - rho * float(y @ r)) * s
        return -r


def _check_options(method: str, tol: float, maxiter: int, options: dict[str, Any]) -> dict[str, Any]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not (isinstance(tol, int | float) and tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    if not (isinstance(maxiter, int | np.integer) and maxiter >= 1):
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
    allowed = {"sketch-newton": {"eps0", "delta", "C", "nonpositive", "score_reuse"},
               "newton-cg": {"eps0", "delta", "C", "score_reuse", "cg_maxiter", "refresh_cg"},
               "sketch-lbfgs": {"eps0", "delta", "C", "memory"},
               "newton": set(), "gd": set(), "lbfgs": set()}[method]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for method {method!r}; allowed: {sorted(allowed)}")
    opts = {"eps0": 0.1, "delta": 0.05, "C": 1.0, "nonpositive": "stop", "score_reuse": 1.0, "cg_maxiter": 50,
            "refresh_cg": 5, "memory": 20} | options
    if not 0 < opts["eps0"] < 1:
        raise ValueError(f"eps0 must be in (0, 1), got {opts['eps0']!r}")
    if not 0 < opts["delta"] < 1:
        raise ValueError(f"delta must be in (0, 1), got {opts['delta']!r}")
    if not opts["C"] > 0:
        raise ValueError(f"C must be positive, got {opts['C']!r}")
    if not (isinstance(opts["score_reuse"], int | float) and 1 <= opts["score_reuse"] < math.inf):
        raise ValueError(f"score_reuse must be a finite number >= 1, got {opts['score_reuse']!r}")
    if opts["nonpositive"] not in ("stop", "exact"):
        raise ValueError(f"nonpositive must be 'stop' or 'exact', got {opts['nonpositive']!r}")
    for key in ("cg_maxiter", "refresh_cg", "memory"):
        if not (isinstance(opts[key], int) and opts[key] >= 1):
            raise ValueError(f"{key} must be a positive integer, got {opts[key]!r}")
    return opts


def minimize(problem: Problem, x0: Any, method: str = "newton-cg", tol: float = 1e-10, maxiter: int = 100,
             seed: int | np.random.Generator | None = None, callback: Callable[[np.ndarray], Any] | None = None,
             **options: Any) -> OptimizeResult:
    """Minimise ``problem.loss`` from ``x0`` (Theorem 9.1's problem) with one of :data:`METHODS`.

    Parameters
    ----------
    problem : Problem
    x0 : (d,) array_like
        Starting point; must satisfy ``α(x0) > 0``.
    method : str
        ``"newton"``, ``"sketch-newton"`` (Algorithm 1), ``"newton-cg"``, ``"sketch-lbfgs"``, ``"gd"`` or
        ``"lbfgs"``.
    tol : float
        Stop when ``‖∇L(x)‖₂ ≤ tol · ‖∇L(x₀)‖₂``. The test is relative because the loss's scale
        varies with ``n`` (``f`` sums to one, so its curvature is of order ``1/n²``).
    maxiter : int
        Iteration limit.
    seed : int or numpy.random.Generator, optional
        Randomness of the sketch (``"sketch-newton"``, ``"newton-cg"``, ``"sketch-lbfgs"``); the
        global ``np.random`` state is never used.
    callback : callable, optional
        Called as ``callback(x)`` after each iteration.
    **options
        ``eps0`` (default 0.1), ``delta`` (0.05), ``C`` (1.0): the sketch's accuracy, failure
        probability and sample-size constant (Lemma A.8); ``nonpositive`` (``"stop"``): where
        ``B_diag + W²`` is not positive, ``"stop"`` ends with ``status=4`` (the paper's assumption
        fails), ``"exact"`` keeps those rows exactly and samples the rest (beyond the paper;
        ``"newton-cg"`` always does this, a preconditioner only has to be positive definite);
        ``score_reuse`` (1.0, i.e. fresh leverage scores at every iterate as in Algorithm 1): up to
        this spread ``max(D/D₀)/min(D/D₀)`` of the diagonal since the last fresh scores, rescale
        those instead (two passes over ``A`` saved, ``s`` multiplied by the spread);
        for ``"newton-cg"`` also ``cg_maxiter``
        (50) and ``refresh_cg`` (5): the sketched preconditioner is reused until CG needs more than
        ``refresh_cg`` iterations; for ``"sketch-lbfgs"`` also ``memory`` (20), the number of
        curvature pairs kept.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``jac``, ``nit``, ``success``, ``status``, ``message`` and ``history``, a dict
        of per-iteration lists ``loss``, ``grad_norm``, ``step``, ``time``, ``hess_rows`` (rows of
        ``A`` in the Hessian approximation: ``n`` exact, fewer when sketched, 0 for none) and
        ``cg_iters``; entry 0 describes ``x0``.

    Raises
    ------
    ValueError
        Unknown method or option, an option out of range, or ``x0`` of the wrong shape.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a softres.Problem, got {type(problem).__name__}")
    opts = _check_options(method, tol, maxiter, options)
    x = as_vector(x0, problem.d, "x0").copy()
    if method == "lbfgs":
        return _lbfgs(problem, x, tol, maxiter, callback)
    rng = as_generator(seed)
    sketcher = _Sketcher(problem, opts["eps0"], opts["delta"], opts["C"], rng,
                         opts["nonpositive"] if method == "sketch-newton" else "exact", opts["score_reuse"])
    if method == "sketch-lbfgs":
        return _descent_loop(problem.loss, problem.grad, _LBFGSDirection(sketcher, opts["memory"]), x, tol,
                             maxiter, callback)

    precond: dict[str, Any] = {"factor": None, "cg_iters": 0}

    def direction(x: np.ndarray, g: np.ndarray, info: dict) -> np.ndarray:
        if method == "gd":
            info["hess_rows"] = 0
            return -g
        if method == "newton":
            factor, info["shift"] = _pd_factor(problem.hess(x))
            info["hess_rows"] = problem.n
            return -_chol_solve(factor, g)
        if method == "sketch-newton":
            factor, info["shift"] = _pd_factor(sketcher(x, info))
            return -_chol_solve(factor, g)
        # newton-cg: the sketched Hessian only preconditions CG, so it may be reused from an earlier
        # iterate while CG still converges quickly; it is refreshed once CG needs many iterations.
        if precond["factor"] is None or precond["cg_iters"] > opts["refresh_cg"]:
            precond["factor"], info["shift"] = _pd_factor(sketcher(x, info))
        gnorm = float(np.linalg.norm(g))
        precond.setdefault("gnorm0", gnorm)  # the first call sees the gradient at x0
        forcing = min(0.5, math.sqrt(gnorm / precond["gnorm0"]))
        p, info["cg_iters"] = _pcg(lambda s: problem.hessp(x, s), g,
                                   lambda r: _chol_solve(precond["factor"], r),
                                   forcing, opts["cg_maxiter"])
        precond["cg_iters"] = info["cg_iters"]
        return p

    return _descent_loop(problem.loss, problem.grad, direction, x, tol, maxiter, callback,
                         gd=(method == "gd"))


def _descent_loop(fun, grad, direction, x, tol, maxiter, callback, gd=False) -> OptimizeResult:
    """The shared iteration: direction, line search inside the domain, history, stopping rules."""
    hist: dict[str, list] = {k: [] for k in ("loss", "grad_norm", "step", "time", "hess_rows", "cg_iters")}
    t0 = time.perf_counter()
    f = _safe(fun, x)
    g = None
    status, detail, nit, shifts, kept = 1, "", 0, 0, 0
    if not math.isfinite(f):
        return _result(x, f, None, 0, 3, "x0: alpha(x0) <= 0 or the loss overflows", hist)
    try:
        g = np.asarray(grad(x), dtype=float)
        gtol = tol * float(np.linalg.norm(g))
        scale = 1.0
        for nit in range(maxiter + 1):
            gnorm = float(np.linalg.norm(g))
            info = {"hess_rows": 0, "cg_iters": 0, "shift": 0.0, "exact_rows": 0}
            if nit == 0:
                _record(hist, f, gnorm, 0.0, t0, 0, 0)
            if gnorm <= gtol:
                status = 0
                break
            if nit == maxiter:
                break
            p = direction(x, g, info)
            if gd:  # remember the last accepted step length between iterations
                p = scale * p
            x_new, f, step = _line_search(fun, x, f, g, p)
            if gd:
                scale = 2.0 * scale * step / max(float(np.linalg.norm(p)), 1e-300)
            shifts += info["shift"] > 0
            kept += info["exact_rows"] > 0
            x = x_new
            g = np.asarray(grad(x), dtype=float)
            _record(hist, f, float(np.linalg.norm(g)), step, t0, info["hess_rows"], info["cg_iters"])
            if callback is not None:
                callback(x.copy())
        nit = len(hist["loss"]) - 1
    except _Stop as stop:
        status, detail, nit = stop.status, stop.detail, len(hist["loss"]) - 1
    message = _STATUS[status] + (f": {detail}" if detail else "")
    if shifts:
        message += f" ({shifts} iteration(s) shifted an indefinite Hessian to make it positive definite)"
    if kept:
        message += f" ({kept} iteration(s) kept rows with B_diag + w² <= 0 exactly instead of sampling them)"
    return _result(x, f, g, nit, status, message, hist)


def _record(hist, f, gnorm, step, t0, rows, cg):
    hist["loss"].append(f)
    hist["grad_norm"].append(gnorm)
    hist["step"].append(step)
    hist["time"].append(time.perf_counter() - t0)
    hist["hess_rows"].append(rows)
    hist["cg_iters"].append(cg)


def _result(x, f, g, nit, status, message, hist) -> OptimizeResult:
    return OptimizeResult(x=x, fun=f, jac=g, nit=nit, success=status == 0, status=status, message=message,
                          history=hist)


def _lbfgs(problem: Problem, x: np.ndarray, tol: float, maxiter: int, callback) -> OptimizeResult:
    """scipy's L-BFGS-B on ``loss``/``grad``; points outside the domain get an infinite loss."""
    hist: dict[str, list] = {k: [] for k in ("loss", "grad_norm", "step", "time", "hess_rows", "cg_iters")}
    t0 = time.perf_counter()
    if not problem.in_domain(x):
        return _result(x, math.inf, None, 0, 3, _STATUS[3], hist)
    last = {"x": x.copy()}
    evals: dict[str, Any] = {}  # the last evaluation: the history then costs no extra pass over A

    def fun(z):
        try:
            f, g = problem.loss(z), problem.grad(z)
        except ValueError:
            return 1e300, np.zeros_like(z)
        evals.update(x=z.copy(), f=f, g=g.copy())
        return f, g

    def record(z):
        if "x" in evals and np.array_equal(evals["x"], z):
            f, g = evals["f"], evals["g"]
        else:
            f, g = problem.loss(z), problem.grad(z)
        _record(hist, f, float(np.linalg.norm(g)), float(np.linalg.norm(z - last["x"])), t0, 0, 0)
        last["x"] = z.copy()
        if callback is not None:
            callback(z.copy())

    record(x)
    gtol = tol * hist["grad_norm"][0]
    res = scipy_minimize(fun, x, jac=True, method="L-BFGS-B", callback=record,
                         options={"maxiter": maxiter, "gtol": gtol / np.sqrt(problem.d), "ftol": 0.0, "maxcor": 20})
    g = problem.grad(res.x)
    gnorm = float(np.linalg.norm(g))
    status = 0 if gnorm <= gtol else (1 if res.nit >= maxiter else 2)
    message = _STATUS[status]
    if status == 2:  # L-BFGS-B's line search compares loss values, which stop decreasing in floating point
        message = "line search failed: L-BFGS-B found no step that lowers the computed loss"
    if status:
        message += f" (L-BFGS-B: {res.message}; |grad| = {gnorm:.3g}, {gnorm / hist['grad_norm'][0]:.2g} |grad(x0)|)"
    return _result(res.x, problem.loss(res.x), g, res.nit, status, message, hist)


def newton_method(fun, x0, args=(), jac=None, hess=None, callback=None, tol=None, maxiter=100, **unknown):
    """Exact Newton with a domain-aware line search, as a custom method of ``scipy.optimize.minimize``.

    Usage: ``scipy.optimize.minimize(P.loss, x0, jac=P.grad, hess=P.hess, method=newton_method)``.
    Trial points where ``fun`` raises ``ValueError`` (e.g. :class:`softres.DomainError`) are
    rejected steps. Needs callable ``jac`` and ``hess``.
    """
    if not callable(jac) or not callable(hess):
        raise ValueError("newton_method needs callable jac and hess")
    x = np.asarray(x0, dtype=float).copy()

    def direction(x, g, info):
        factor, info["shift"] = _pd_factor(np.asarray(hess(x, *args)))
        return -_chol_solve(factor, g)

    return _descent_loop(lambda z: fun(z, *args), lambda z: jac(z, *args), direction, x,
                         1e-10 if tol is None else tol, maxiter,
                         None if callback is None else (lambda z: callback(z)))
