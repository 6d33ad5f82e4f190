"""The paper's quantities as code: R, β, l, M, the PSD threshold on w, and Newton's guarantees.

Song, Wang and Yin (2023) state their results under ``‖A‖ ≤ R``, ``‖x‖₂ ≤ R`` and ``α(x) ≥ β``
(Lemma 7.1, Lemma 8.1, Theorem 9.1). These functions compute those constants for a concrete
problem, the bounds the paper derives from them, and the empirical counterparts the book compares
them with.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh

from softres.examples import as_generator
from softres.problem import Problem

__all__ = [
    "R_bound",
    "beta",
    "empirical_lipschitz",
    "good_init_radius",
    "hessian_min_eig",
    "lipschitz_bound_M",
    "predicted_iterations",
    "psd_constant_C",
    "psd_w_sufficient",
    "shrinking_bound",
    "singular_values_extreme",
    "spectral_error",
]


def singular_values_extreme(A) -> tuple[float, float]:
    """``(σ_max(A), σ_min(A))``; exact SVD for small ``A``, ``svds`` otherwise."""
    n, d = A.shape
    if not sp.issparse(A) and n * d <= 4_000_000:
        s = np.linalg.svd(A, compute_uv=False)
        return float(s[0]), float(s[-1])
    G = np.asarray((A.T @ A).toarray() if sp.issparse(A) else A.T @ A)
    lam = np.linalg.eigvalsh(G)
    return float(math.sqrt(max(lam[-1], 0.0))), float(math.sqrt(max(lam[0], 0.0)))


def R_bound(problem: Problem, x: np.ndarray) -> float:
    """``R = max(‖A‖₂, ‖x‖₂)``: the radius in the assumptions of Lemma 7.1, Lemma 8.1, Theorem 9.1."""
    return max(singular_values_extreme(problem.A)[0], float(np.linalg.norm(x)))


def beta(problem: Problem, center: np.ndarray, radius: float, maxiter: int = 500) -> float:
    """``β = min{α(x) : ‖x − center‖₂ ≤ radius}``, the paper's lower bound on ``α`` (Lemma 7.1).

    ``α(x) = Σ_i e^{(Ax)_i} + (Ax)_i`` is convex in ``x``, so this is a convex program; it is
    solved by projected gradient descent with backtracking, whose iterates never leave the ball
    (so ``exp`` is only evaluated where the bound itself is). A negative value means the ball
    leaves the domain and the paper's assumption fails there.
    """
    center = np.asarray(center, dtype=float)
    if not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")

    def project(x):
        dist = np.linalg.norm(x - center)
        return x if dist <= radius else center + (x - center) * (radius / dist)

    x, fx, step = center.copy(), problem.alpha(center), 1.0
    for _ in range(maxiter):
        g = problem.grad_alpha(x)
        while True:
            y = project(x - step * g)
            fy = problem.alpha(y)
            if fy <= fx - 1e-4 * float(g @ (x - y)) or step < 1e-14:
                break
            step *= 0.5
        if np.linalg.norm(y - x) <= 1e-12 * max(1.0, radius) or fy >= fx:
            x, fx = (y, fy) if fy < fx else (x, fx)
            break
        x, fx, step = y, fy, 2.0 * step
    return float(fx)


def hessian_min_eig(problem: Problem, x: np.ndarray) -> float:
    """``λ_min(∇²L(x))``; at ``x*`` this is the ``l`` of Definition A.1 / Theorem 9.1."""
    return float(np.linalg.eigvalsh(problem.hess(x))[0])


def lipschitz_bound_M(n: int, R: float, beta: float, *, log10: bool = False) -> float:
    """The Lipschitz constant of Lemma 8.1 as the paper states it: ``M = 20 β⁻⁵ n^{3.5} exp(8R²)``.

    Read it as the paper's order of growth (polynomial in ``n`` and ``1/β``, exponential in
    ``R²``); the extracted text lost the formula, and this form is the one quoted by the paper's
    summary. Returns ``inf`` where it overflows float64; ``log10=True`` returns ``log₁₀ M``, which
    never overflows.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive (alpha bounded away from 0), got {beta!r}")
    log_m = math.log(20.0) - 5 * math.log(beta) + 3.5 * math.log(n) + 8 * R * R
    if log10:
        return log_m / math.log(10.0)
    return math.exp(log_m) if log_m < 709 else math.inf


def psd_constant_C(n: int, R: float, beta: float, b_norm: float = 1.0) -> float:
    """A constant ``C`` with ``−C·I ⪯ B(x) ⪯ C·I`` under ``‖A‖, ‖x‖ ≤ R``, ``α ≥ β`` (Lemma 7.1).

    The paper's constant is not recoverable from its extracted text, so this is our derivation,
    from the same ingredients (its Lemma 8.2): ``|z_i| ≤ R²``, hence ``e^{z_i} ≤ E = e^{R²}``,
    ``0 < v_i ≤ V = E + 1``, ``|u_i| ≤ E + R²``; ``α ≥ β`` gives ``‖f‖ ≤ F = √n (E + R²)/β`` and
    ``‖c‖ ≤ F + ‖b‖``. Then, with ``r = c − <c, f>``,

    * ``|B_diag,ii| ≤ V²/β² + E (‖c‖ + ‖c‖ F)/β``,
    * ``‖B_rank‖ ≤ β⁻² (F² ‖v‖² + 2 ‖v‖ ‖p‖)`` with ``‖v‖ ≤ √n V`` and
      ``‖p‖ ≤ V (2F + ‖b‖ + √n ‖c‖ F)``,

    and ``C`` is their sum. ``b_norm`` is ``‖b‖₂``; its default 1 assumes a target of at most unit
    norm (a probability vector, like ``f``, has ``‖b‖₂ ≤ 1``): pass the actual norm otherwise.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta!r}")
    E = math.exp(min(R * R, 700.0))
    V = E + 1.0
    F = math.sqrt(n) * (E + R * R) / beta
    c = F + b_norm
    diag = V * V / beta**2 + E * (c + c * F) / beta
    v = math.sqrt(n) * V
    p = V * (2 * F + b_norm + math.sqrt(n) * c * F)
    return diag + (F * F * v * v + 2 * v * p) / beta**2


def psd_w_sufficient(n: int, R: float, beta: float, l: float, sigma_min: float, b_norm: float = 1.0) -> float:
    """Smallest uniform ``w`` that Lemma 7.1's argument certifies: ``w² ≥ C + l/σ_min(A)²``.

    Then ``B(x) + W² ⪰ (w² − C) I ⪰ (l / σ_min²) I`` and ``∇²L = Aᵀ(B + W²)A ⪰ l I``; ``C`` is
    :func:`psd_constant_C` (our explicit constant, see there).
    """
    if sigma_min <= 0:
        raise ValueError(f"sigma_min must be positive (A of full column rank), got {sigma_min!r}")
    return math.sqrt(psd_constant_C(n, R, beta, b_norm) + l / sigma_min**2)


def good_init_radius(l: float, M: float) -> float:
    """``0.1 l / M``: how close ``x₀`` must be to ``x*`` (Definition A.3, ``M‖x₀ − x*‖ ≤ 0.1 l``)."""
    return 0.1 * l / M


def predicted_iterations(r0: float, eps: float, rate: float = 0.4) -> int:
    """Iterations Theorem 9.1 / Lemma A.11 promise: ``r_t ≤ 0.4^t r₀``, so ``T = ⌈log(r₀/ε) / log(1/0.4)⌉``."""
    if r0 <= eps:
        return 0
    return math.ceil(math.log(r0 / eps) / math.log(1.0 / rate))


def shrinking_bound(r: float, eps0: float, l: float, M: float) -> float:
    """Lemma A.10: ``r_{t+1} ≤ 2 (ε₀ + M r_t / (l − M r_t)) r_t`` (``inf`` when ``M r_t ≥ l``)."""
    if M * r >= l:
        return math.inf
    return 2.0 * (eps0 + M * r / (l - M * r)) * r


def spectral_error(H: np.ndarray, H_tilde: np.ndarray) -> float:
    """``max_i |λ_i(H^{-1/2} H̃ H^{-1/2}) − 1|``: the ``ε₀`` that ``H̃`` achieves (Definition A.7).

    Computed as generalized eigenvalues of the pencil ``(H̃, H)``; ``H`` must be positive definite.
    """
    lam = eigh(H_tilde, H, eigvals_only=True)
    return float(np.abs(lam - 1.0).max())


def empirical_lipschitz(problem: Problem, center: np.ndarray, radius: float, pairs: int = 200,
                        rng: int | np.random.Generator | None = None) -> float:
    """Largest ``‖∇²L(x) − ∇²L(y)‖₂ / ‖x − y‖₂`` over random pairs in the ball (compare Lemma 8.1).

    Pairs are drawn uniformly in the ball, half of them close together (distance ≤ radius/100)
    to probe the local constant; points outside the domain are skipped.
    """
    rng = as_generator(rng)
    center = np.asarray(center, dtype=float)
    d = center.size

    def point():
        u = rng.standard_normal(d)
        return center + radius * rng.random() ** (1 / d) * u / np.linalg.norm(u)

    best = 0.0
    for k in range(pairs):
        x = point()
        if k % 2:
            step = rng.standard_normal(d)
            y = x + radius / 100 * rng.random() * step / np.linalg.norm(step)
        else:
            y = point()
        if not (problem.in_domain(x) and problem.in_domain(y)) or np.array_equal(x, y):
            continue
        diff = np.linalg.norm(problem.hess(x) - problem.hess(y), 2)
        best = max(best, float(diff / np.linalg.norm(x - y)))
    return best
