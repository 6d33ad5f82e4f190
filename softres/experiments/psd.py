"""Chapter "PSD": is the Hessian positive semidefinite, and how large must w be (Lemma 7.1)?"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from softres import bounds
from softres.experiments._common import figure
from softres.problem import Problem


def _draw(rng: np.random.Generator, n: int, d: int):
    A = rng.standard_normal((n, d))
    b = rng.dirichlet(np.ones(n))
    return A, b


def indefinite_fraction(rng: np.random.Generator, draws: int = 2000, n: int = 10, d: int = 4) -> dict:
    """Fraction of random ``(A, b, x)`` in the domain where ``∇²L_exp(x)`` has a negative eigenvalue.

    ``A ~ N(0, 1)``, ``b`` uniform on the simplex (a probability vector, like ``f``),
    ``x ~ N(0, I/d)``; draws with ``α(x) ≤ 0`` are redrawn. Also returns each draw's extreme
    eigenvalues relative to the largest magnitude.
    """
    lo, hi = [], []
    while len(lo) < draws:
        A, b = _draw(rng, n, d)
        x = rng.standard_normal(d) / np.sqrt(d)
        P = Problem(A, b)
        if not P.in_domain(x):
            continue
        lam = np.linalg.eigvalsh(P.hess_exp(x))
        scale = np.abs(lam).max()
        lo.append(lam[0] / scale)
        hi.append(lam[-1] / scale)
    lo, hi = np.array(lo), np.array(hi)
    return {"min_rel": lo, "max_rel": hi, "fraction": float(np.mean(lo < -1e-10)), "draws": draws, "n": n, "d": d}


def min_w(P: Problem, x: np.ndarray) -> float:
    """The smallest uniform ``w`` with ``∇²L(x) = Aᵀ(B + w²I)A ⪰ 0`` at ``x`` (exact).

    ``AᵀBA + w² AᵀA ⪰ 0`` iff ``w² ≥ −λ_min`` of the pencil ``(AᵀBA, AᵀA)``.
    """
    G = P.gram(np.ones(P.n))
    lam = eigh(P.hess_exp(x), G, eigvals_only=True)[0]
    return float(np.sqrt(max(0.0, -lam)))


def w_threshold(rng: np.random.Generator, n: int = 10, d: int = 4, points: int = 300) -> dict:
    """Smallest ``w`` making the Hessian PSD over balls of radius ρ, against Lemma 7.1's sufficient ``w``.

    Empirical: the largest :func:`min_w` over ``points`` random points of the ball (inside the
    domain). Paper: :func:`softres.bounds.psd_w_sufficient` with ``l = 0``, ``R = max(‖A‖, ρ)``,
    ``β`` the minimum of ``α`` over the ball; where ``β ≤ 0`` the lemma does not apply.
    """
    A, b = _draw(rng, n, d)
    P = Problem(A, b)
    smax, smin = bounds.singular_values_extreme(A)
    radii = np.array([0.4, 0.6, 0.8, 1.0, 1.2, 1.5])
    emp, paper, betas = [], [], []
    for rho in radii:
        worst = 0.0
        for _ in range(points):
            u = rng.standard_normal(d)
            x = rho * rng.random() ** (1 / d) * u / np.linalg.norm(u)
            if P.in_domain(x):
                worst = max(worst, min_w(P, x))
        beta = bounds.beta(P, np.zeros(d), rho)
        emp.append(worst)
        betas.append(beta)
        paper.append(bounds.psd_w_sufficient(n, max(smax, rho), beta, 0.0, smin, float(np.linalg.norm(b)))
                     if beta > 0 else np.nan)
    emp, paper = np.array(emp), np.array(paper)
    ratio = np.divide(paper, emp, out=np.full_like(paper, np.nan), where=emp > 0)
    return {"radius": radii, "empirical": emp, "paper": paper, "beta": np.array(betas), "ratio": ratio,
            "sigma_max": smax}


def plot_w_threshold(data: dict):
    fig, (ax,) = figure(width=4.8)
    ax.semilogy(data["radius"], data["empirical"], "o-", label="smallest w that makes the Hessian PSD (measured)")
    ax.semilogy(data["radius"], data["paper"], "s--", label="sufficient w from Lemma 7.1's argument")
    ax.set_xlabel(r"radius $\rho$ of the ball around $x = 0$")
    ax.set_ylabel("w")
    ax.legend(fontsize=8)
    return fig


def spectra_vs_w(rng: np.random.Generator, n: int = 10, d: int = 4) -> dict:
    """``λ_min`` and ``λ_max`` of ``∇²L(x)`` as the uniform weight ``w`` grows, at one point."""
    while True:
        A, b = _draw(rng, n, d)
        x = rng.standard_normal(d) / np.sqrt(d)
        P = Problem(A, b)
        if P.in_domain(x) and np.linalg.eigvalsh(P.hess_exp(x))[0] < 0:
            break
    ws = np.geomspace(1e-3, 1.0, 60)
    lam = np.array([np.linalg.eigvalsh(Problem(A, b, w).hess(x))[[0, -1]] for w in ws])
    return {"w": ws, "lam_min": lam[:, 0], "lam_max": lam[:, 1], "w_star": min_w(P, x)}


def plot_spectra_vs_w(data: dict):
    fig, (ax,) = figure(width=4.8)
    ax.semilogx(data["w"], data["lam_min"], label=r"$\lambda_{\min}(\nabla^2 L)$")
    ax.semilogx(data["w"], data["lam_max"], label=r"$\lambda_{\max}(\nabla^2 L)$")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(data["w_star"], color="C3", ls=":", label=rf"$w^* = {data['w_star']:.3g}$")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("w (uniform)")
    ax.legend(fontsize=8)
    return fig


def plot_indefinite(data: dict):
    fig, (ax,) = figure(width=4.8)
    ax.hist(data["min_rel"], bins=60, color="C0")
    ax.axvline(0, color="C3", ls=":")
    ax.set_xlabel(r"$\lambda_{\min} / \max_i |\lambda_i|$ of $\nabla^2 L_{\exp}(x)$")
    ax.set_ylabel("draws")
    return fig
