"""Minimising ``L = L_exp + L_reg``: the paper's approximate Newton method and better ones.

``minimize(problem, x0, method=...)`` mirrors ``scipy.optimize.minimize`` and returns a
``scipy.optimize.OptimizeResult``. The methods live in a registry (:data:`REGISTRY`, one small class
each in :mod:`._methods`); :data:`METHODS` lists their names:

``"newton"``
    exact Newton (Definition A.6) with a backtracking line search that rejects trial points outside
    the domain ``α(x) > 0``;
``"sketch-newton"``
    the paper's Algorithm 1 (Theorem 9.1): the Hessian's diagonal part ``B_diag + W²`` is
    sparsified by leverage-score sampling (Lemma A.8, :class:`softres.sketch.SketchedHessian`), the
    rank-two part of Lemma 5.4 is added exactly, and ``x ← x − H̃⁻¹∇L`` (Definition A.9);
``"newton-cg"``
    inexact Newton (beyond the paper): conjugate gradients on the exact Hessian through ``hessp``,
    preconditioned by the sketched Hessian;
``"sketch-lbfgs"``
    L-BFGS (beyond the paper) whose initial inverse Hessian is the sketched Hessian at ``x0``;
``"newton-lbfgs"``
    L-BFGS (beyond the paper) whose initial inverse Hessian is the exact Hessian at ``x0`` (its first
    step is exact Newton's), formed again every ``refresh`` iterations;
``"gd"``, ``"lbfgs"``
    baselines: gradient descent with a Lipschitz-estimated step, and L-BFGS;
``"auto"``
    the method :func:`choose_method` picks from the size and sparsity of ``A`` and an estimate of its
    condition number (``"newton"``, ``"newton-lbfgs"`` or ``"lbfgs"``; the result's message says which and why).

A solver never raises on a numerical failure (a non-finite gradient or Hessian, a domain error) and
never returns ``nan``: it stops with ``success=False``, a ``status`` and a reason; no numpy warning
escapes. ``newton_method`` is a custom ``method=`` callable for ``scipy.optimize.minimize``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from softres._validate import as_vector, check_int, check_real
from softres.examples import as_generator
from softres.problem import Problem
from softres.solvers._common import STATUS, Method, chol_solve, pd_factor, run
from softres.solvers._methods import (
    GD,
    LBFGS,
    Auto,
    Newton,
    NewtonCG,
    NewtonLBFGS,
    SketchLBFGS,
    SketchNewton,
    choose_method,
)

__all__ = ["METHODS", "REGISTRY", "STATUS", "Method", "choose_method", "minimize", "newton_method", "options_of",
           "register"]

#: Method name → class; :func:`register` adds to it.
REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a :class:`Method` subclass to the registry under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"a method must be a subclass of softres.solvers.Method, got {cls!r}")
    REGISTRY[cls.name] = cls
    global METHODS
    METHODS = tuple(REGISTRY)
    return cls


for _cls in (Newton, SketchNewton, NewtonCG, SketchLBFGS, NewtonLBFGS, GD, LBFGS, Auto):
    register(_cls)

#: Names of the registered methods, in registration order.
METHODS: tuple[str, ...] = tuple(REGISTRY)


def options_of(method: str) -> dict[str, Any]:
    """The options ``method`` accepts, with their defaults (read from its class's signature)."""
    if method not in REGISTRY:
        raise ValueError(f"method must be one of {', '.join(map(repr, REGISTRY))}, got {method!r}")
    return dict(_keyword_options(REGISTRY[method]))


@functools.cache
def _keyword_options(cls: type[Method]) -> tuple[tuple[str, Any], ...]:
    """``(name, default)`` of ``cls.__init__``'s keyword-only parameters, read once (``inspect.signature``
    took about 10 µs of every call of :func:`minimize`)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple((p.name, p.default) for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def minimize(problem: Problem, x0: Any, method: str = "auto", tol: float = 1e-10, gtol: float = 0.0,
             maxiter: int | None = None, seed: int | np.random.Generator | None = None,
             callback: Callable | None = None, **options: Any) -> OptimizeResult:
    """Minimise ``problem.loss`` from ``x0`` (Theorem 9.1's problem) with one of :data:`METHODS`.

    Parameters
    ----------
    problem : Problem
    x0 : (d,) array_like
        Starting point; must satisfy ``α(x0) > 0``. Copied.
    method : str
        A name in :data:`METHODS` (default ``"auto"``, whose ratio to the best method in each cell of
        ``benchmarks/bench_autodiff.py``'s grid the README reports; ``"newton-cg"`` before).
    tol : float
        Relative tolerance: stop when ``‖∇L(x)‖₂ ≤ tol · ‖∇L(x₀)‖₂`` (default ``1e-10``). Relative
        because the loss's scale varies with ``n`` (``f`` sums to one, so its curvature is of order ``1/n²``).
    gtol : float
        Absolute tolerance: stop when ``‖∇L(x)‖₂ ≤ gtol`` (default 0, off). Independently of both,
        a run stops once the gradient is within its own rounding error
        (:meth:`Problem.grad_error`), where it is zero to working precision (a warm start at the
        optimum converges at iteration 0).
    maxiter : int, optional
        Iteration limit; default per method (100 for the Newton methods, 500 for ``"sketch-lbfgs"`` and
        ``"newton-lbfgs"``, 1000 for ``"lbfgs"``, 10000 for ``"gd"``).
    seed : int or numpy.random.Generator, optional
        Randomness of the sketch (``"sketch-newton"``, ``"newton-cg"``, ``"sketch-lbfgs"``); the
        global ``np.random`` state is never used.
    callback : callable, optional
        Called after each iteration, as scipy does: ``callback(intermediate_result)`` (an
        ``OptimizeResult`` with ``x``, ``fun``, ``jac``, ``nit``) if its only parameter has that
        name, otherwise ``callback(x)``. Raising ``StopIteration`` ends the run with ``status=99``.
    **options
        Per method (:func:`options_of` lists them): ``eps0`` (0.1), ``delta`` (0.05), ``C`` (1.0): the
        sketch's accuracy, failure probability and sample-size constant (Lemma A.8); ``nonpositive``
        (``"sketch-newton"`` only, default ``"exact"``): where ``B_diag + W²`` is not positive,
        ``"raise"`` ends with ``status=4`` (the paper's assumption fails), ``"exact"`` keeps those rows
        exactly and samples the rest (beyond the paper); ``sampling`` (``"sketch-newton"`` only, default
        ``"leverage"``; ``"uniform"`` is a baseline beyond the paper); ``score_reuse`` (1.0): see
        :class:`softres.sketch.SketchedHessian`; ``"newton-cg"``: ``cg_maxiter`` (50), ``refresh_cg`` (5);
        ``"lbfgs"``, ``"sketch-lbfgs"``, ``"newton-lbfgs"``: ``memory`` (20), curvature pairs kept;
        ``"newton-lbfgs"``: ``refresh`` (10), iterations after which the Hessian is formed again (0: never).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``jac``, ``nit``, ``nfev`` (loss evaluations, line-search trials included),
        ``njev`` (gradients), ``nhev`` (Hessians, sketched Hessians and Hessian-vector products),
        ``passes`` (passes over ``A``, all evaluations included), ``success``, ``status`` (a key of
        :data:`STATUS`), ``message``, ``method`` and ``history``: per-iteration lists ``loss``,
        ``grad_norm``, ``step`` (``‖x_{k+1} − x_k‖``), ``t`` (the line search's step length, 1 for a full
        step), ``shift`` (the ``τ`` added to make the Hessian positive definite, 0 if none),
        ``exact_rows`` (rows with ``B_diag + w² < 0`` kept exactly), ``time``, ``hess_rows`` (rows of
        ``A`` in the Hessian approximation:
        ``n`` exact, fewer when sketched, 0 for none), ``cg_iters`` and ``passes`` (cumulative); entry
        0 describes ``x0``.

    Raises
    ------
    TypeError, ValueError
        A bad argument (named in the message): unknown method or option, a value out of range,
        ``x0`` of the wrong shape. Numerical failures never raise.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a softres.Problem, got {type(problem).__name__}")
    allowed = options_of(method)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; allowed: {sorted(allowed)}")
    tol = check_real(tol, "tol", low=0.0)
    gtol = check_real(gtol, "gtol", low=0.0)
    cls = REGISTRY[method]
    maxiter = cls.default_maxiter if maxiter is None else check_int(maxiter, "maxiter")
    x = as_vector(x0, problem.d, "x0", copy=True)
    solver = cls(problem, as_generator(seed), **options)
    return run(problem, solver, x, tol=tol, gtol=gtol, maxiter=maxiter, callback=callback)


class _Functions:
    """``fun``/``jac`` given to scipy's ``minimize``, in the shape :func:`._common.run` expects."""

    def __init__(self, fun: Callable, jac: Callable, args: tuple) -> None:
        self.fun, self.jac, self.args = fun, jac, args

    def loss(self, x: np.ndarray) -> float:
        return self.fun(x, *self.args)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.jac(x, *self.args)


class _GivenHessian(Method):
    name = "newton"

    def __init__(self, hess: Callable, args: tuple) -> None:
        super().__init__(None, np.random.default_rng(0))
        self.hess, self.args, self.nhev = hess, args, 0

    def direction(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.nhev += 1
        factor, self.info["shift"] = pd_factor(np.asarray(self.hess(x, *self.args), dtype=float))
        return -chol_solve(factor, g)


def newton_method(fun: Callable, x0: Any, args: tuple = (), jac: Callable | None = None,
                  hess: Callable | None = None, callback: Callable | None = None, tol: float | None = None,
                  maxiter: int = 100, **unknown: Any) -> OptimizeResult:
    """Exact Newton with a domain-aware line search, as a custom method of ``scipy.optimize.minimize``.

    Usage: ``scipy.optimize.minimize(P.loss, x0, jac=P.grad, hess=P.hess, method=newton_method)``.
    Trial points where ``fun`` raises ``ValueError`` (e.g. :class:`softres.DomainError`) are
    rejected steps. Needs callable ``jac`` and ``hess``; ``tol`` is relative, as in :func:`minimize`.
    """
    if not callable(jac) or not callable(hess):
        raise ValueError("newton_method needs callable jac and hess")
    x = np.array(x0, dtype=float)
    res = run(_Functions(fun, jac, args), _GivenHessian(hess, args), x, tol=1e-10 if tol is None else tol,
              gtol=0.0, maxiter=maxiter, callback=callback)
    res.pop("passes")
    return res
