"""The paper's quantities as code: R, β, l, M, the PSD threshold on w, and Newton's guarantees.

Song, Wang and Yin (2023) state their results under ``‖A‖ ≤ R``, ``‖x‖₂ ≤ R``, ``α(x) ≥ β`` and
a hypothesis on ``b`` (Lemmas 7.1, 8.1–8.3), and Theorem 9.1 adds ``R ≥ 4`` (:data:`R_MIN`). These
functions compute those constants for a concrete problem, the bounds derived from them, and the
empirical counterparts the book compares them with.

Whose constants these are: the extracted text of the paper lost every formula, so

* Lemma 7.1's ``C`` and the per-piece bounds of its Parts 1–3 (:func:`psd_piece_bounds`,
  :func:`psd_constant_C`) are **ours**, derived from the same ingredients;
* the norm bounds of Lemma 8.2, the Lipschitz constants of Lemma 8.3 and the four steps of
  Lemmas 8.4–8.8 (:func:`lipschitz_chain`) are **ours**;
* Lemma 8.1's ``M`` (:func:`lipschitz_bound_M`) comes from a third-party summary of the paper that
  gives it in two inconsistent forms (``exp(8R²)`` and ``exp(R²)``): both readings are
  implemented, neither is the paper's verified constant.

Every function validates its arguments (:mod:`softres._validate`) and names the one it rejects.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh

from softres._validate import check_int, check_real
from softres.examples import as_generator
from softres.problem import Problem

#: Theorem 9.1 assumes ``R ≥ 4``; the Lemmas it rests on use the same regime (Fact 3.7).
R_MIN = 4.0

#: The two readings of Lemma 8.1's ``M`` in the third-party summary (see :func:`lipschitz_bound_M`).
M_READINGS = ("exp8R2", "expR2")

__all__ = [
    "M_READINGS",
    "R_MIN",
    "R_bound",
    "R_regime",
    "beta",
    "empirical_lipschitz",
    "good_init_radius",
    "hessian_min_eig",
    "lipschitz_bound_M",
    "lipschitz_chain",
    "predicted_iterations",
    "psd_constant_C",
    "psd_piece_bounds",
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
    """``R = max(‖A‖₂, ‖x‖₂)``: the radius in the assumptions of Lemma 7.1, Lemma 8.1, Theorem 9.1.

    Can be below :data:`R_MIN`; :func:`R_regime` gives the smallest ``R`` inside the paper's regime.
    """
    return max(singular_values_extreme(problem.A)[0], float(np.linalg.norm(x)))


def R_regime(*norms: float) -> float:
    """``max(4, norms...)``: the smallest ``R`` inside the paper's regime (Theorem 9.1's ``R ≥ 4``).

    Pass ``‖A‖₂`` and the largest ``‖x‖₂`` considered (e.g. the radius of a ball around 0).
    """
    return max([R_MIN, *(check_real(v, "norm", low=0.0) for v in norms)])


def beta(problem: Problem, center: np.ndarray, radius: float, maxiter: int = 500) -> float:
    """``β = min{α(x) : ‖x − center‖₂ ≤ radius}``, the paper's lower bound on ``α`` (Lemma 7.1).

    ``α(x) = Σ_i e^{(Ax)_i} + (Ax)_i`` is convex in ``x``, so this is a convex program; it is
    solved by projected gradient descent with backtracking, whose iterates never leave the ball
    (so ``exp`` is only evaluated where the bound itself is). A negative value means the ball
    leaves the domain and the paper's assumption fails there.
    """
    center = np.asarray(center, dtype=float)
    radius = check_real(radius, "radius", low=0.0)
    maxiter = check_int(maxiter, "maxiter")

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


def lipschitz_bound_M(n: int, R: float, beta: float, *, reading: str = "exp8R2", log10: bool = False) -> float:
    """Lemma 8.1's Lipschitz constant ``M`` as a third-party summary of the paper quotes it.

    The extracted text of the paper lost the formula. The only source at hand, a machine-generated
    summary of the paper, gives it in two forms that contradict each other; both are implemented
    and neither is the paper's verified constant:

    * ``reading="exp8R2"``: ``M = 20 β⁻⁵ n^{3.5} exp(8R²)`` (the summary's statement of Lemma 8.1);
    * ``reading="expR2"``: ``M = 20 β⁻⁵ n^{3.5} exp(R²)`` (its "key results" list the growth
      ``n^{3.5} exp(R²)``; the factor ``20 β⁻⁵`` is carried over).

    Read either as an order of growth: polynomial in ``n`` and ``1/β``, exponential in ``R²``.
    Hypotheses (Lemma 8.1 via Lemmas 8.2–8.3 and Theorem 9.1): ``‖A‖ ≤ R``, ``‖x‖, ‖y‖ ≤ R``,
    ``α ≥ β > 0`` at ``x`` and ``y``, ``R ≥ 4`` (:data:`R_MIN`) and a bound on ``b`` that did not
    survive extraction. ``R < 4`` is accepted (the caller marks such points as outside the regime).
    Returns ``inf`` where ``M`` overflows float64; ``log10=True`` returns ``log₁₀ M``, which never
    overflows.

    Raises
    ------
    ValueError
        If ``n < 1``, ``R ≤ 0``, ``beta ≤ 0`` (or nan), or ``reading`` is not one of :data:`M_READINGS`.
    """
    n = check_int(n, "n")
    R = check_real(R, "R", low=0.0, low_open=True)
    beta = check_real(beta, "beta", low=0.0, low_open=True)
    if reading not in M_READINGS:
        raise ValueError(f"reading must be one of {', '.join(map(repr, M_READINGS))}, got {reading!r}")
    k = 8.0 if reading == "exp8R2" else 1.0
    log_m = math.log(20.0) - 5 * math.log(beta) + 3.5 * math.log(n) + k * R * R
    if log10:
        return log_m / math.log(10.0)
    return math.exp(log_m) if log_m < 709 else math.inf


def _regime_args(n, R, beta, b_norm):
    return (check_int(n, "n"), check_real(R, "R", low=0.0, low_open=True),
            check_real(beta, "beta", low=0.0, low_open=True), check_real(b_norm, "b_norm", low=0.0))


def _norm_bounds(n: int, R: float, beta: float, b_norm: float) -> dict[str, float]:
    """Our Lemma 8.2: bounds on the basic functions under ``‖A‖, ‖x‖ ≤ R``, ``α ≥ β``, ``‖b‖₂ ≤ b_norm``."""
    E = math.exp(min(R * R, 700.0))          # e^{z_i} ≤ e^{|z_i|} ≤ e^{R²}, since |z_i| ≤ ‖A‖‖x‖ ≤ R²
    rn = math.sqrt(n)
    F = (rn * E + R * R) / beta              # ‖f‖ = ‖u‖/α
    c = F + b_norm                           # ‖c‖ = ‖f − b‖
    cf = c * F                               # |<c, f>|
    r_inf = c + cf                           # ‖r‖_∞ ≤ ‖c‖_∞ + |<c, f>|
    return {
        "z_inf": R * R, "exp": rn * E, "u": rn * E + R * R, "v": rn * (E + 1.0), "v_inf": E + 1.0,
        "e_inf": E, "alpha_inv": 1.0 / beta, "f": F, "c": c, "cf": cf, "r_inf": r_inf,
        "r": c + rn * cf, "J": (1.0 + rn * F) * (E + 1.0) / beta,
    }


def psd_piece_bounds(n: int, R: float, beta: float, b_norm: float = 1.0) -> dict[str, float]:
    """Our bounds for Lemma 7.1, Parts 1–4, on Definition 6.1's pieces (:mod:`softres.rewrite`).

    Under ``‖A‖ ≤ R``, ``‖x‖₂ ≤ R``, ``α(x) ≥ β > 0`` and ``‖b‖₂ ≤ b_norm`` (the paper's
    hypothesis on ``b`` did not survive extraction; a probability vector has ``‖b‖₂ ≤ 1``), with
    ``E = e^{R²}`` and the norm bounds of our Lemma 8.2 (``‖v‖ ≤ √n(E+1)``,
    ``‖f‖ ≤ F = (√n E + R²)/β``, ``‖r‖_∞ ≤ (F + ‖b‖)(1 + F)``):

    * ``"mat"`` (Part 1): ``0 ⪯ B_mat = JᵀJ ⪯ ‖J‖² I``, ``‖J‖ ≤ β⁻¹ (1 + √n F)(E + 1)``;
    * ``"rank"`` (Part 2): ``‖B_rank‖ ≤ 2 β⁻² ‖v∘r‖ ‖v‖ ≤ 2 β⁻² ‖r‖_∞ ‖v‖²``;
    * ``"diag"`` (Part 3): ``‖B_diag‖ ≤ β⁻¹ e^{R²} ‖r‖_∞``;
    * ``"upper"``/``"C"`` (Part 4): ``B ⪯ C I`` with ``C`` the sum of the three; ``"lower"``:
      ``B ⪰ −(rank + diag) I`` (``B_mat`` is PSD).

    These are our constants, not the paper's (which are not recoverable). The paper's regime also
    has ``R ≥ 4`` (:data:`R_MIN`); smaller ``R`` is accepted and gives a valid but different bound.
    """
    n, R, beta, b_norm = _regime_args(n, R, beta, b_norm)
    N = _norm_bounds(n, R, beta, b_norm)
    mat = N["J"] ** 2
    rank = 2.0 * N["r_inf"] * N["v"] ** 2 / beta**2
    diag = N["e_inf"] * N["r_inf"] / beta
    return {"mat": mat, "rank": rank, "diag": diag, "upper": mat + rank + diag, "lower": rank + diag,
            "C": mat + rank + diag}


def psd_constant_C(n: int, R: float, beta: float, b_norm: float = 1.0) -> float:
    """Our constant ``C`` of Lemma 7.1, Part 4: ``−C·I ⪯ B(x) ⪯ C·I`` (sum of Parts 1–3).

    See :func:`psd_piece_bounds` for the hypotheses and the derivation. The paper's constant is not
    recoverable from its extracted text; this one is ours. ``b_norm`` is ``‖b‖₂`` (default 1: a
    probability vector); pass the actual norm otherwise.
    """
    return psd_piece_bounds(n, R, beta, b_norm)["C"]


def lipschitz_chain(n: int, R: float, beta: float, b_norm: float = 1.0) -> dict[str, float]:
    """Our constants for the chain of Lemmas 8.2–8.8 and 8.1, step by step (none is the paper's).

    Same hypotheses as :func:`psd_piece_bounds`. Keys:

    * norm bounds (our Lemma 8.2): ``"z_inf"`` (``‖Ax‖_∞ ≤ R²``), ``"exp"``, ``"u"``, ``"v"``,
      ``"f"``, ``"c"``, ``"cf"`` (``|<c, f>|``), ``"r_inf"``, ``"r"`` and ``"alpha_inv"`` (``1/β``);
    * Lipschitz constants in ``x`` (our Lemma 8.3), with ``‖A(x − y)‖ ≤ R ‖x − y‖``:
      ``"L_exp" = e^{R²} R``, ``"L_u" = (e^{R²} + 1) R``, ``"L_alpha" = √n L_u``,
      ``"L_alpha_inv" = L_alpha/β²``, ``"L_f" = L_u/β + ‖u‖ L_alpha_inv``, ``"L_cf" = (‖c‖ + ‖f‖) L_f``,
      ``"L_r" = L_f + √n L_cf`` (2-norm) and ``"L_r_inf" = L_f + L_cf``;
    * the four steps (our Lemmas 8.5–8.8) for :func:`softres.rewrite.four_steps`' ``G1 … G4``:
      ``"K1" … "K4"``, by the product rule on ``α⁻²``, ``v``, ``f`` and ``r``;
    * ``"L_B"`` (Lemma 8.4): ``K1 + K2 + K3 + K4``, a Lipschitz constant of ``x ↦ B(x)``;
    * ``"M"`` (Lemma 8.1, ours): ``R² L_B``, since ``∇²L(x) − ∇²L(y) = Aᵀ(B(x) − B(y))A``.
    """
    n, R, beta, b_norm = _regime_args(n, R, beta, b_norm)
    N = _norm_bounds(n, R, beta, b_norm)
    E, rn = N["e_inf"], math.sqrt(n)
    V = E + 1.0
    out = dict(N)
    L_exp = E * R
    L_u = V * R
    L_alpha = rn * L_u
    L_alpha_inv = L_alpha / beta**2
    L_alpha_inv2 = 2.0 * L_alpha / beta**3           # |α(x)⁻² − α(y)⁻²|
    L_f = L_u / beta + N["u"] * L_alpha_inv
    L_cf = (N["c"] + N["f"]) * L_f
    L_r = L_f + rn * L_cf
    L_r_inf = L_f + L_cf
    F, nv, r_inf = N["f"], N["v"], N["r_inf"]
    # G1 = α⁻² diag(v∘v)
    K1 = L_alpha_inv2 * V * V + 2.0 * V * L_exp / beta**2
    # G2 = α⁻² S, S = ‖f‖² v vᵀ − (v∘f) vᵀ − v (v∘f)ᵀ; ‖v∘f‖ ≤ V ‖f‖
    S2 = F * F * nv * nv + 2.0 * V * F * nv
    dS2 = 2.0 * F * L_f * nv * nv + F * F * 2.0 * nv * L_exp + 2.0 * ((L_exp * F + V * L_f) * nv + V * F * L_exp)
    K2 = L_alpha_inv2 * S2 + dS2 / beta**2
    # G3 = B_rank = −α⁻² ((v∘r) vᵀ + v (v∘r)ᵀ); ‖v∘r‖ ≤ ‖r‖_∞ ‖v‖
    S3 = 2.0 * r_inf * nv * nv
    dS3 = 2.0 * ((L_exp * r_inf + V * L_r) * nv + r_inf * nv * L_exp)
    K3 = L_alpha_inv2 * S3 + dS3 / beta**2
    # G4 = B_diag = α⁻¹ diag(e∘r)
    K4 = L_alpha_inv * E * r_inf + (L_exp * r_inf + E * L_r_inf) / beta
    L_B = K1 + K2 + K3 + K4
    out.update({"L_exp": L_exp, "L_u": L_u, "L_alpha": L_alpha, "L_alpha_inv": L_alpha_inv, "L_f": L_f,
                "L_cf": L_cf, "L_r": L_r, "L_r_inf": L_r_inf, "K1": K1, "K2": K2, "K3": K3, "K4": K4,
                "L_B": L_B, "M": R * R * L_B})
    return out


def psd_w_sufficient(n: int, R: float, beta: float, l: float, sigma_min: float, b_norm: float = 1.0) -> float:
    """Smallest uniform ``w`` that Lemma 7.1's argument certifies: ``w² ≥ C + l/σ_min(A)²``.

    Then ``B(x) + W² ⪰ (w² − C) I ⪰ (l / σ_min²) I`` and ``∇²L = Aᵀ(B + W²)A ⪰ l I``. The paper
    places this condition among Theorem 9.1's hypotheses (not in Lemma 7.1); ``C`` is
    :func:`psd_constant_C`, our constant of Lemma 7.1, Part 4 (not the paper's).
    """
    l = check_real(l, "l", low=0.0)
    sigma_min = check_real(sigma_min, "sigma_min", low=0.0, low_open=True)
    return math.sqrt(psd_constant_C(n, R, beta, b_norm) + l / sigma_min**2)


def good_init_radius(l: float, M: float) -> float:
    """``0.1 l / M``: how close ``x₀`` must be to ``x*`` (Definition A.3, ``M‖x₀ − x*‖ ≤ 0.1 l``).

    ``l ≥ 0`` and ``M > 0`` (a ``ValueError`` naming the argument otherwise).
    """
    l = check_real(l, "l", low=0.0)
    M = check_real(M, "M", low=0.0, low_open=True)
    return 0.1 * l / M


def predicted_iterations(r0: float, eps: float, rate: float = 0.4) -> int:
    """Iterations Lemma A.11 promises: ``r_t ≤ rate^t r₀``, so ``T = ⌈log(r₀/ε) / log(1/rate)⌉``.

    ``r0 ≥ 0``, ``eps > 0`` and ``rate`` in ``(0, 1)`` (the paper's 0.4 by default); anything else
    raises a ``ValueError`` naming the argument.
    """
    r0 = check_real(r0, "r0", low=0.0)
    eps = check_real(eps, "eps", low=0.0, low_open=True)
    rate = check_real(rate, "rate", low=0.0, high=1.0, low_open=True, high_open=True)
    if r0 <= eps:
        return 0
    return math.ceil(math.log(r0 / eps) / math.log(1.0 / rate))


def shrinking_bound(r: float, eps0: float, l: float, M: float) -> float:
    """Lemma A.10: ``r_{t+1} ≤ 2 (ε₀ + M r_t / (l − M r_t)) r_t`` (``inf`` when ``M r_t ≥ l``).

    ``r ≥ 0``, ``eps0 ≥ 0`` (the lemma assumes ``ε₀ < 0.1``; larger achieved values are accepted so
    that measured runs can be compared), ``l > 0`` (Definition A.1), ``M ≥ 0``; a ``ValueError``
    naming the argument otherwise.
    """
    r = check_real(r, "r", low=0.0)
    eps0 = check_real(eps0, "eps0", low=0.0)
    l = check_real(l, "l", low=0.0, low_open=True)
    M = check_real(M, "M", low=0.0)
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
    radius = check_real(radius, "radius", low=0.0, low_open=True)
    pairs = check_int(pairs, "pairs")
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
