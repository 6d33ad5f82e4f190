"""Chapter "The problem": the residual unit, the domain α(x) > 0 and overflow (Definitions 1.4, 3.1)."""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from softres.experiments._common import figure
from softres.problem import Problem

#: Ω = W₀(1), the root of z + e^z = 0: u_i = e^{z_i} + z_i < 0 exactly when z_i < −Ω.
OMEGA = float(lambertw(1.0).real)


def residual_unit(rng: np.random.Generator) -> dict:
    """The three units side by side on a grid: softmax's ``e^z``, ResNet's ``z``, and ``e^z + z``."""
    z = np.linspace(-3.0, 1.5, 400)
    return {"z": z, "exp": np.exp(z), "identity": z, "unit": np.exp(z) + z, "omega": OMEGA}


def plot_residual_unit(data: dict):
    fig, (ax,) = figure()
    z = data["z"]
    ax.plot(z, data["exp"], label=r"softmax: $e^z$")
    ax.plot(z, data["identity"], label=r"shortcut: $z$", ls="--")
    ax.plot(z, data["unit"], label=r"unified: $e^z + z$", lw=2)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(-data["omega"], color="C3", ls=":", label=rf"$z = -\Omega \approx {-data['omega']:.4f}$")
    ax.set_xlabel("$z = (Ax)_i$")
    ax.set_ylim(-3, 5)
    ax.legend(fontsize=8)
    return fig


def domain_map(rng: np.random.Generator, n: int = 8, grid: int = 161, radius: float = 3.0) -> dict:
    """``α(x)`` over a square of ``x ∈ R²`` for a random ``A`` (d = 2): where is ``α(x) > 0``?"""
    A = rng.standard_normal((n, 2))
    P = Problem(A, np.full(n, 1.0 / n))
    t = np.linspace(-radius, radius, grid)
    X, Y = np.meshgrid(t, t)
    alpha = np.array([[P.alpha(np.array([a, b])) for a, b in zip(xr, yr, strict=True)]
                      for xr, yr in zip(X, Y, strict=True)])
    inside = np.array([[P.in_domain(np.array([a, b])) for a, b in zip(xr, yr, strict=True)]
                       for xr, yr in zip(X, Y, strict=True)])
    return {"t": t, "alpha": alpha, "inside": inside, "outside_fraction": float(1 - inside.mean()),
            "agree": bool(np.array_equal(inside, alpha > 0)), "radius": radius, "n": n}


def plot_domain_map(data: dict):
    fig, (ax,) = figure(width=4.6)
    t = data["t"]
    levels = np.linspace(-np.abs(data["alpha"]).max(), np.abs(data["alpha"]).max(), 21)
    cs = ax.contourf(t, t, data["alpha"], levels=levels, cmap="RdBu")
    ax.contour(t, t, data["alpha"], levels=[0.0], colors="k", linewidths=1.5)
    fig.colorbar(cs, ax=ax, label=r"$\alpha(x)$")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(r"black curve: $\alpha(x) = 0$; red: outside the domain", fontsize=9)
    return fig


def overflow_demo(rng: np.random.Generator) -> dict:
    """Loss and gradient at points with ``max(Ax)`` far beyond float64's ``exp`` range."""
    A = rng.standard_normal((20, 3))
    b = rng.random(20) / 20
    P = Problem(A, b, 0.1)
    x0 = rng.standard_normal(3)
    tops, losses, gnorms, naive = [], [], [], []
    for top in (10.0, 700.0, 1e3, 1e4):
        x = x0 * top / (A @ x0).max()
        tops.append(top)
        losses.append(P.loss(x))
        gnorms.append(float(np.linalg.norm(P.grad(x))))
        with np.errstate(over="ignore", invalid="ignore"):
            u = np.exp(A @ x) + A @ x
            f = u / u.sum()
        naive.append(bool(np.all(np.isfinite(f))))
    return {"top": np.array(tops), "loss": np.array(losses), "grad_norm": np.array(gnorms),
            "naive_finite": np.array(naive)}
