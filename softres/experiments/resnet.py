"""Chapter "Two ResNet results beside this one": Shamir (2018), Liu et al. (2019), their questions of our loss.

Three experiments, all our own designs (neither related paper publishes numbers we could compare with):

* :func:`shamir_minima` — a reproduction of the *claim* of Shamir (2018): every local minimum of a
  residual unit ``x ↦ wᵀ(x + V ReLU(Ux))`` under squared loss is at most the best linear predictor's
  loss. Plain two-layer networks ``x ↦ vᵀReLU(Ux)`` are trained the same way, as a control the
  theorem says nothing about.
* :func:`liu_success` — a reproduction of the *claim* of Liu et al. (2019) in *our reading* of their
  model (the exact model is not recovered): a two-layer non-overlapping ReLU CNN with weight
  normalisation (Du et al. 2018) has a spurious local minimum that gradient descent from a random
  start reaches with positive probability; with an average-pooling shortcut and the first layer
  started at zero it does not, when the target lies near the shortcut. Population gradient descent
  in closed form (:func:`liu_population_loss`).
* :func:`unified_landscape` — the same two questions asked of the paper's loss with ``w = 0``:
  do local minima of ``L_exp`` for ``u = e^z + z`` sit above the optimum of the shortcut alone
  (``u = z``, solved exactly: :func:`shortcut_optimum`) or of softmax (``u = e^z``), and how often does
  gradient descent from zero or from random starts reach the best minimum found, for ``γ = 0`` (softmax)
  and ``γ = 1`` (the paper's unit)?
"""

from __future__ import annotations

import math

import numpy as np

from softres.experiments._common import figure
from softres.experiments._style import legend_below
from softres.figures import compute
from softres.problem import Problem
from softres.solvers import minimize
from softres.units import unified

# --------------------------------------------------------------------------------------------------
# Shamir (2018): residual unit against the best linear predictor
# --------------------------------------------------------------------------------------------------

#: Relative margin above the linear optimum that counts as "worse than linear".
SHAMIR_ABOVE = 1e-9
#: Relative distance to the linear optimum that counts as "equal" (a dead branch).
SHAMIR_EQUAL = 1e-6


def shamir_data(rng: np.random.Generator, n: int = 200, d: int = 5, teacher_units: int = 3,
                noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X̃`` (n × (d+1), a constant feature last) and labels from a nonlinear teacher.

    ``y = X̃β + 2 Σ_j ReLU(r_jᵀX̃) + noise·ε`` with ``β``, ``r_j``, ``ε`` standard normal: a target that
    a residual unit can fit better than any linear predictor.
    """
    X = np.hstack([rng.standard_normal((n, d)), np.ones((n, 1))])
    beta = rng.standard_normal(d + 1)
    R = rng.standard_normal((teacher_units, d + 1))
    y = X @ beta + 2.0 * np.maximum(X @ R.T, 0.0).sum(axis=1) + noise * rng.standard_normal(n)
    return X, y


def _res_grads(X, y, U, V, w):
    """Loss and gradients of the residual unit ``pred = X w + H(Vᵀw)``, ``H = ReLU(XUᵀ)``, batched over runs.

    Shapes: ``U`` (R, m, D), ``V`` (R, D, m), ``w`` (R, D).
    """
    n = X.shape[0]
    pre = X @ U.transpose(0, 2, 1)  # (R, n, m)
    H = np.maximum(pre, 0.0)
    c = (w[:, None, :] @ V)[:, 0]  # (R, m): c = Vᵀw
    e = w @ X.T + (H @ c[:, :, None])[..., 0] - y  # (R, n)
    r = e / n
    Hr = (r[:, None, :] @ H)[:, 0]  # (R, m)
    gw = r @ X + (V @ Hr[:, :, None])[..., 0]
    gV = w[:, :, None] * Hr[:, None, :]
    gU = c[:, :, None] * (((pre > 0) * r[:, :, None]).transpose(0, 2, 1) @ X)
    return 0.5 * np.mean(e**2, axis=1), gU, gV, gw


def _plain_grads(X, y, U, v):
    """Loss and gradients of the plain network ``pred = ReLU(XUᵀ) v``, batched over runs."""
    n = X.shape[0]
    pre = X @ U.transpose(0, 2, 1)
    H = np.maximum(pre, 0.0)
    e = (H @ v[:, :, None])[..., 0] - y
    r = e / n
    gv = (r[:, None, :] @ H)[:, 0]
    gU = v[:, :, None] * (((pre > 0) * r[:, :, None]).transpose(0, 2, 1) @ X)
    return 0.5 * np.mean(e**2, axis=1), gU, gv


def _wV_model(X, y, H, w, V):
    """At a fixed branch ``H`` (R, n, m): loss, gradient and exact Hessian in ``θ = (w, vec V)``, batched.

    ``pred = Xw + H Vᵀw``; the Jacobian is ``[X + HVᵀ, H_j w_d]`` and the only second derivatives of
    ``pred`` are ``∂²pred/∂w_d∂V_{dj} = H_{·j}``, so the Hessian is ``JᵀJ/n`` plus ``(Hᵀe/n)_j`` at
    the pairs ``(w_d, V_{dj})``.
    """
    n, D = X.shape
    R, _, m = H.shape
    c = (w[:, None, :] @ V)[:, 0]
    e = w @ X.T + (H @ c[:, :, None])[..., 0] - y
    Jw = X[None] + H @ V.transpose(0, 2, 1)  # (R, n, D)
    JV = (H[:, :, None, :] * w[:, None, :, None]).reshape(R, n, D * m)  # column (d, j) = H_j w_d
    J = np.concatenate([Jw, JV], axis=2)
    g = (e[:, None, :] @ J)[:, 0] / n
    Hs = J.transpose(0, 2, 1) @ J / n
    s = (e[:, None, :] @ H)[:, 0] / n  # (R, m)
    for d in range(D):
        for j in range(m):
            Hs[:, d, D + d * m + j] += s[:, j]
            Hs[:, D + d * m + j, d] += s[:, j]
    return 0.5 * np.mean(e**2, axis=1), g, Hs


def _wV_polish(X, y, H, w, V, iters: int = 100):
    """Levenberg–Marquardt in ``(w, V)`` at fixed ``H``, batched; each run's step is kept only if it lowers its loss."""
    R, D, m = V.shape
    mu = np.full(R, 1e-3)
    for _ in range(iters):
        F, g, Hs = _wV_model(X, y, H, w, V)
        lam = np.linalg.eigvalsh(Hs)[:, 0]
        shift = np.maximum(mu, -lam + mu)
        step = -np.linalg.solve(Hs + shift[:, None, None] * np.eye(D + D * m), g[:, :, None])[..., 0]
        w_new, V_new = w + step[:, :D], V + step[:, D:].reshape(R, D, m)
        F_new = _wV_model(X, y, H, w_new, V_new)[0]
        ok = F_new <= F
        w = np.where(ok[:, None], w_new, w)
        V = np.where(ok[:, None, None], V_new, V)
        mu = np.where(ok, np.maximum(mu / 3, 1e-12), mu * 4)
    return w, V


def shamir_minima(rng: np.random.Generator, n: int = 200, d: int = 5, widths: tuple[int, ...] = (1, 2),
                  runs: int = 40, steps: int = 1000, lr: float = 0.02, init: float = 0.5) -> dict:
    """End points of training residual units and plain networks, against the best linear predictor.

    Each of ``runs`` initialisations (entries i.i.d. ``N(0, (init/√D)²)``) per architecture and width is
    trained by full-batch gradient descent (``steps`` steps, rate ``lr``, all runs at once), then polished:
    the residual unit by Levenberg–Marquardt in ``(w, V)`` at the reached ``U`` (the variables Shamir's
    proof moves; a local minimum of the full network is one in ``(w, V)``), the plain network by least
    squares in ``v`` at the reached ``U``. Reported per run: the loss ``F``, and for the residual unit the
    proof's certificate ``‖(1/n)X̃ᵀ(pred − y)‖`` (zero at a local minimum in ``(w, V)``), ``‖∇_{w,V}F‖``,
    the smallest Hessian eigenvalue in ``(w, V)``, and ``‖∇_U F‖`` (not driven to zero: ReLU kinks).
    """
    X, y = shamir_data(rng, n=n, d=d)
    D = X.shape[1]
    u_lin = np.linalg.lstsq(X, y, rcond=None)[0]
    F_lin = 0.5 * float(np.mean((X @ u_lin - y) ** 2))
    F_zero = 0.5 * float(np.mean(y**2))
    s = init / math.sqrt(D)
    out = {"n": n, "d": d, "D": D, "runs": runs, "steps": steps, "lr": lr, "init": init, "widths": list(widths),
           "F_lin": F_lin, "F_zero": F_zero, "configs": []}
    for m in widths:
        # residual unit
        U = rng.standard_normal((runs, m, D)) * s
        V = rng.standard_normal((runs, D, m)) * s
        w = rng.standard_normal((runs, D)) * s
        for _ in range(steps):
            _, gU, gV, gw = _res_grads(X, y, U, V, w)
            U -= lr * gU
            V -= lr * gV
            w -= lr * gw
        H = np.maximum(X @ U.transpose(0, 2, 1), 0.0)
        w, V = _wV_polish(X, y, H, w, V)
        F, g, Hs = _wV_model(X, y, H, w, V)
        e = w @ X.T + (H @ (w[:, None, :] @ V)[:, 0][:, :, None])[..., 0] - y
        gU = _res_grads(X, y, U, V, w)[1]
        out["configs"].append({"arch": "residual", "m": m, "F": F,
                               "certificate": np.linalg.norm(e @ X, axis=1) / n,
                               "grad_wV": np.linalg.norm(g, axis=1),
                               "lam_min_wV": np.linalg.eigvalsh(Hs)[:, 0],
                               "grad_U": np.linalg.norm(gU.reshape(runs, -1), axis=1)})
        # plain two-layer network (no shortcut)
        U = rng.standard_normal((runs, m, D)) * s
        v = rng.standard_normal((runs, m)) * s
        for _ in range(steps):
            _, gU, gv = _plain_grads(X, y, U, v)
            U -= lr * gU
            v -= lr * gv
        F = np.empty(runs)
        for r in range(runs):
            H = np.maximum(X @ U[r].T, 0.0)
            coef = np.linalg.lstsq(H, y, rcond=None)[0] if H.any() else np.zeros(m)
            F[r] = 0.5 * float(np.mean((H @ coef - y) ** 2))
        out["configs"].append({"arch": "plain", "m": m, "F": F})
    for cfg in out["configs"]:
        F = cfg["F"]
        cfg["above"] = int(np.sum(F > F_lin * (1 + SHAMIR_ABOVE)))
        cfg["equal"] = int(np.sum(np.abs(F - F_lin) <= SHAMIR_EQUAL * F_lin))
        cfg["at_zero"] = int(np.sum(np.abs(F - F_zero) <= SHAMIR_EQUAL * F_zero))
    return out


def shamir_rows(data: dict) -> list[list]:
    """Table rows: architecture, width, runs, above linear, equal, stuck at F(0), min/median/max F."""
    rows = []
    for c in data["configs"]:
        rows.append([c["arch"], c["m"], data["runs"], c["above"], c["equal"], c["at_zero"],
                     float(c["F"].min()), float(np.median(c["F"])), float(c["F"].max())])
    return rows


def plot_shamir(data: dict):
    """Final loss of every run per architecture and width (log axis), with the linear optimum and ``F(0)``."""
    fig, (ax,) = figure(1, width=6.0)
    labels = []
    rng = np.random.default_rng(0)  # horizontal jitter only
    for i, c in enumerate(data["configs"]):
        xs = i + 0.25 * (rng.random(c["F"].size) - 0.5)
        ax.scatter(xs, c["F"], s=10, alpha=0.6, color="C0" if c["arch"] == "residual" else "C3")
        labels.append(f"{c['arch']}\nm = {c['m']}")
    ax.axhline(data["F_lin"], color="k", ls="--", lw=1, label="best linear predictor")
    ax.axhline(data["F_zero"], color="grey", ls=":", lw=1, label="F at the zero predictor")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("final training loss F (squared loss)")
    ax.set_xlabel("architecture and branch width m")
    ax.legend(loc="lower left")
    return fig


# --------------------------------------------------------------------------------------------------
# Liu et al. (2019), in our reading: non-overlapping CNN with and without an average-pooling shortcut
# --------------------------------------------------------------------------------------------------


def kappa(phi):
    """``E[σ(aᵀz)σ(bᵀz)]`` for unit ``a, b`` at angle ``φ`` and ``z ~ N(0, I)``, ``σ = ReLU``."""
    return (np.sin(phi) + (np.pi - phi) * np.cos(phi)) / (2 * np.pi)


def gamma_critical(k: int) -> float:
    """``γ_c = (k + π − 1)/π``: the spurious point ``v̄ = −v̄*`` is a local minimum iff ``(1ᵀa*)²/‖a*‖² < γ_c``.

    Derived for this book (not a published constant): at ``φ = π`` the gradient in ``u`` vanishes, and
    the point is a minimum iff ``aᵀa* < 0`` for ``a = M⁻¹M(π)a*``.
    """
    return (k + math.pi - 1) / math.pi


def liu_population_loss(a, vbar, a_star, vbar_star):
    """Population loss ``½E(Σ_j a_jσ(v̄ᵀZ_j) − Σ_j a*_jσ(v̄*ᵀZ_j))²`` for i.i.d. standard normal patches.

    Batched over leading axes: ``a`` (..., k), ``vbar`` (..., p) unit vectors.
    """
    cos = np.clip(np.sum(vbar * vbar_star, axis=-1), -1.0, 1.0)
    phi = np.arccos(cos)
    c = 1 / (2 * np.pi)

    def quad(x, y, diag):
        return diag * np.sum(x * y, axis=-1) + c * np.sum(x, axis=-1) * np.sum(y, axis=-1)

    diag = (np.pi - 1) * c
    return 0.5 * (quad(a, a, diag) - 2 * quad(a, a_star, kappa(phi) - c) + quad(a_star, a_star, diag))


def liu_gradients(a, u, a_star, vbar_star):
    """Gradients of :func:`liu_population_loss` in ``a`` and in ``u`` (``v̄ = u/‖u‖``), batched; also ``φ``."""
    nu = np.linalg.norm(u, axis=-1, keepdims=True)
    vbar = u / nu
    cos = np.clip(np.sum(vbar * vbar_star, axis=-1), -1.0, 1.0)
    phi = np.arccos(cos)
    c = 1 / (2 * np.pi)
    ga = ((np.pi - 1) * c * a + c * a.sum(-1, keepdims=True)
          - (kappa(phi) - c)[..., None] * a_star - c * a_star.sum(-1, keepdims=True))
    dL_dvbar = -np.sum(a * a_star, axis=-1)[..., None] * ((np.pi - phi) * c)[..., None] * vbar_star
    gu = (dL_dvbar - np.sum(dL_dvbar * vbar, -1, keepdims=True) * vbar) / nu
    return ga, gu, phi


def liu_teacher(k: int, p: int, gamma: float, theta: float, rng: np.random.Generator):
    """Teacher ``a*`` (unit norm, ``(1ᵀa*)² = γ``) and ``v̄*`` at angle ``θ`` from the shortcut direction ``1_p/√p``."""
    ones_k = np.ones(k) / math.sqrt(k)
    r = rng.standard_normal(k)
    r -= (r @ ones_k) * ones_k
    r /= np.linalg.norm(r)
    c1 = math.sqrt(gamma / k)
    a_star = c1 * ones_k + math.sqrt(max(0.0, 1 - c1**2)) * r
    ones_p = np.ones(p) / math.sqrt(p)
    q = rng.standard_normal(p)
    q -= (q @ ones_p) * ones_p
    q /= np.linalg.norm(q)
    return a_star, math.cos(theta) * ones_p + math.sin(theta) * q


def _liu_run(a0, u0, a_star, vbar_star, lr, steps, shift):
    """Population gradient descent on ``(a, w)`` with ``u = w + shift`` (batched over trials)."""
    a, w = a0.copy(), u0.copy()
    for _ in range(steps):
        ga, gu, _ = liu_gradients(a, w + shift, a_star, vbar_star)
        a -= lr * ga
        w -= lr * gu
    _, _, phi = liu_gradients(a, w + shift, a_star, vbar_star)
    vbar = (w + shift) / np.linalg.norm(w + shift, axis=-1, keepdims=True)
    loss = liu_population_loss(a, vbar, a_star, vbar_star)
    return phi, np.sum(a * a_star, axis=-1), loss


#: An end point counts as the global optimum when its angle to the teacher is below this (radians).
LIU_SUCCESS_ANGLE = 1e-3


def _ball(rng, trials, k, radius):
    g = rng.standard_normal((trials, k))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return g * radius * rng.random((trials, 1)) ** (1 / k)


def liu_success(rng: np.random.Generator, p: int = 8, ks: tuple[int, ...] = (4, 8, 16),
                ratios: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 1.1),
                thetas_deg: tuple[float, ...] = (45.0, 80.0, 100.0, 135.0), trials: int = 64,
                steps: int = 1000, lr: float = 0.5, adversarial: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 20.0),
                mc_samples: int = 200_000) -> dict:
    """Success rates of population gradient descent, plain CNN against the shortcut model (our reading).

    For each ``k`` and ``γ/γ_c`` a teacher is drawn (:func:`liu_teacher`); the CNN starts at ``v``
    uniform on the sphere, the shortcut model at ``w = 0`` (``u = w + 1_p/√p``, so it starts at the
    pure averaging network); both start ``a`` uniform in the ball of radius ``|1ᵀa*|/√k``. An end point
    is a *success* if its angle to ``v̄*`` is below :data:`LIU_SUCCESS_ANGLE`, *spurious* if the angle
    exceeds ``π/2`` with ``aᵀa* < 0`` (the basin of the spurious minimum), otherwise *undecided*.
    Also: the shortcut model from an adversarial ``a(0) = −ρ|1ᵀa*|/√k · a*`` for each ``ρ`` in
    ``adversarial`` (``ρ ≤ 1`` is inside the ball), and a Monte Carlo check of the closed form.
    """
    lines = ["CNN"] + [f"shortcut, theta* = {t:g} deg" for t in thetas_deg]
    success = np.zeros((len(ks), len(ratios), len(lines)))
    spurious = np.zeros_like(success)
    ones_p = np.ones(p) / math.sqrt(p)
    for i, k in enumerate(ks):
        # every (ratio, line) of this k in one batch of len(ratios) * len(lines) * trials rows
        a0s, u0s, stars, vstars, shifts = [], [], [], [], []
        for ratio in ratios:
            gamma = min(ratio * gamma_critical(k), float(k))
            radius = math.sqrt(gamma) / math.sqrt(k)  # |1ᵀa*|/√k with ‖a*‖ = 1
            for li in range(len(lines)):
                theta = math.radians(45.0 if li == 0 else thetas_deg[li - 1])
                a_star, vbar_star = liu_teacher(k, p, gamma, theta, rng)
                a0s.append(_ball(rng, trials, k, radius))
                if li == 0:  # plain CNN: v uniform on the sphere, no shortcut
                    u0 = rng.standard_normal((trials, p))
                    u0s.append(u0 / np.linalg.norm(u0, axis=1, keepdims=True))
                    shifts.append(np.zeros((trials, p)))
                else:  # shortcut model: w = 0, u = w + 1_p/√p
                    u0s.append(np.zeros((trials, p)))
                    shifts.append(np.tile(ones_p, (trials, 1)))
                stars.append(np.tile(a_star, (trials, 1)))
                vstars.append(np.tile(vbar_star, (trials, 1)))
        phi, aa, _ = _liu_run(np.vstack(a0s), np.vstack(u0s), np.vstack(stars), np.vstack(vstars), lr, steps,
                              np.vstack(shifts))
        shape = (len(ratios), len(lines), trials)
        success[i] = np.mean((phi < LIU_SUCCESS_ANGLE).reshape(shape), axis=2)
        spurious[i] = np.mean(((phi > np.pi / 2) & (aa < 0)).reshape(shape), axis=2)
    # Adversarial a(0) for the shortcut model, k = ks[0], gamma/gamma_c = ratios[0]
    k0, r0 = ks[0], ratios[0]
    gamma0 = r0 * gamma_critical(k0)
    rad = math.sqrt(gamma0) / math.sqrt(k0)
    teach = [liu_teacher(k0, p, gamma0, math.radians(t), rng) for t in thetas_deg]
    rho = np.asarray(adversarial)
    a_st = np.repeat(np.array([a for a, _ in teach]), rho.size, axis=0)
    v_st = np.repeat(np.array([v for _, v in teach]), rho.size, axis=0)
    a0 = -np.tile(rho, len(thetas_deg))[:, None] * rad * a_st
    phi, _, _ = _liu_run(a0, np.zeros_like(v_st), a_st, v_st, lr, steps, ones_p)
    adv = (phi < LIU_SUCCESS_ANGLE).reshape(len(thetas_deg), rho.size)
    # Monte Carlo check of the closed form at a random point (k = 4, p = 6)
    kc, pc = 4, 6
    a, a_star = rng.standard_normal(kc), rng.standard_normal(kc)
    vb, vs = (x / np.linalg.norm(x) for x in rng.standard_normal((2, pc)))
    Z = rng.standard_normal((mc_samples, kc, pc))
    diff = np.maximum(Z @ vb, 0) @ a - np.maximum(Z @ vs, 0) @ a_star
    mc = 0.5 * diff**2
    return {"p": p, "ks": list(ks), "ratios": list(ratios), "thetas_deg": list(thetas_deg), "lines": lines,
            "trials": trials, "steps": steps, "lr": lr, "success": success, "spurious": spurious,
            "adversarial": list(adversarial), "adversarial_success": adv, "adversarial_k": k0,
            "adversarial_ratio": r0, "mc_samples": mc_samples,
            "mc_closed": float(liu_population_loss(a, vb, a_star, vs)), "mc_mean": float(mc.mean()),
            "mc_se": float(mc.std(ddof=1) / math.sqrt(mc_samples))}


def liu_reproduced(data: dict) -> bool:
    """Whether the claim reproduces in our reading: from ``w = 0`` the shortcut model reaches the global
    optimum in every run whenever the teacher is within 90° of the shortcut, while the plain CNN from a
    random start misses it in some runs at the smallest ``γ/γ_c`` for every ``k``."""
    near = [i + 1 for i, t in enumerate(data["thetas_deg"]) if t < 90]
    success = data["success"]
    return bool(near and success[:, :, near].min() == 1.0 and np.all(success[:, 0, 0] < 1.0))


def plot_liu(data: dict):
    """Success rate against ``γ/γ_c``, one panel per ``k``; a vertical line where the spurious minimum disappears."""
    ks = data["ks"]
    fig, axes = figure(len(ks), width=3.4)
    for i, (ax, k) in enumerate(zip(axes, ks, strict=True)):
        for li, line in enumerate(data["lines"]):
            ax.plot(data["ratios"], data["success"][i, :, li], marker="osD^v"[li % 5], ms=7 - li, mfc="none",
                    ls="-" if li == 0 else "--", color=f"C{li}", label=line)
        ax.axvline(1.0, color="grey", lw=1, ls=":")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(r"$\gamma/\gamma_c$ (teacher's alignment with $\mathbf{1}$)")
        ax.set_title(f"k = {k}, p = {data['p']}")
    axes[0].set_ylabel("fraction of runs reaching the global optimum")
    legend_below(fig, ncols=3)
    return fig


# --------------------------------------------------------------------------------------------------
# The same questions of the unified loss (w = 0)
# --------------------------------------------------------------------------------------------------


def shortcut_optimum(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact global optimum of ``L_exp`` for the shortcut alone, ``u = Ax``: ``(x, L*)``.

    ``f = Ax/⟨Ax, 1⟩`` ranges over ``{Ax : ⟨Ax, 1⟩ = 1}`` as ``x`` ranges over the domain, so the
    problem is least squares under one linear constraint (KKT system); the returned ``x`` has
    ``α(x) = 1``. ``A`` must have full column rank with ``Aᵀ1 ≠ 0``.
    """
    d = A.shape[1]
    g = A.T @ np.ones(A.shape[0])
    K = np.zeros((d + 1, d + 1))
    K[:d, :d] = A.T @ A
    K[:d, d] = g
    K[d, :d] = g
    x = np.linalg.solve(K, np.concatenate([A.T @ b, [1.0]]))[:d]
    return x, 0.5 * float(np.sum((A @ x - b) ** 2))


#: Methods used for the "many starts" question.
LANDSCAPE_METHODS = ("newton", "lbfgs", "gd")
#: Relative gap above the best minimum found that still counts as "the global minimum".
SAME_MIN = 1e-6


def _classify(P: Problem, res, best: float, hess_tol: float) -> str:
    """``"global"``, ``"local"`` (a certified strict local minimum above the best), ``"plateau"``
    (a saturated end point: Hessian below ``hess_tol``, a minimum only at infinity), or ``"stopped"``."""
    if res.status == 0 and res.fun <= best * (1 + SAME_MIN) + 1e-15:
        return "global"
    if res.status in (0, 6):
        lam = np.linalg.eigvalsh(P.hess(res.x))
        if lam[-1] < hess_tol:
            return "plateau"
        if lam[0] > hess_tol:
            return "local"
    return "stopped"


def _planted_b(A: np.ndarray, kind: str, rng: np.random.Generator, noise: float) -> np.ndarray:
    """``b = f(x_true) + noise·N(0, 1)/n`` with ``f`` of the unit ``kind`` (``x_true`` a unit vector in the domain)."""
    n, d = A.shape
    while True:
        x = rng.standard_normal(d)
        x /= np.linalg.norm(x)
        P = Problem(A, np.zeros(n), None, unit=kind)
        if P.in_domain(x) and (kind != "shortcut" or P.alpha(x) > 0.5 * np.abs(A @ x).sum() / n):
            return P.f(x) + noise * rng.standard_normal(n) / n


def unified_landscape(rng: np.random.Generator, n: int = 10, d: int = 4, draws: int = 30, starts: int = 2,
                      shortcut_draws: int = 8, scale: float = 1.5, noise: float = 0.5, start_radius: float = 2.0,
                      gd_maxiter: int = 500, tol: float = 1e-8) -> dict:
    """Minima of ``L_exp`` (``w = 0``) for softmax (γ = 0) and the unified unit (γ = 1), against the parts' optima.

    ``A`` has entries ``N(0, scale²/d)``. Two ways of planting ``b`` (:func:`_planted_b`): from the
    unified unit (``draws`` draws) and from the shortcut alone (``shortcut_draws`` draws). For each
    draw and each unit, ``"newton"`` and ``"lbfgs"`` run from ``x = 0`` and from ``starts`` random
    points (``N(0, (start_radius²/d) I)``, redrawn until ``α > 0`` for the unified unit; the same
    points for both units); on the draws with ``b`` from the unified unit ``"gd"`` (at most
    ``gd_maxiter`` iterations) also runs from ``x = 0`` and from the first random point, for the
    reach rates. Every run stops at the relative gradient tolerance ``tol``. Each end point is
    classified by :func:`_classify` against the best loss found for
    that unit and draw. The shortcut's optimum is exact (:func:`shortcut_optimum`) and checked with
    ``softres.minimize(..., unit="shortcut")`` from a nearby start.
    """
    units = {"softmax": unified(0.0), "unified": unified(1.0)}
    recs = []
    shortcut_check = []
    for plant, count in (("unified", draws), ("shortcut", shortcut_draws)):
        for t in range(count):
            A = rng.standard_normal((n, d)) * (scale / math.sqrt(d))
            b = _planted_b(A, plant, rng, noise)
            x_s, L_s = shortcut_optimum(A, b)
            Ps = Problem(A, b, None, unit="shortcut")
            xs0 = x_s + 0.3 * rng.standard_normal(d)
            while not Ps.in_domain(xs0):
                xs0 = x_s + 0.3 * rng.standard_normal(d)
            rs = minimize(Ps, xs0, method="lbfgs")
            shortcut_check.append((abs(Ps.loss(x_s) - L_s) / L_s, (rs.fun - L_s) / L_s, rs.status))
            Pu = Problem(A, b, None, unit=units["unified"])
            x0s = [np.zeros(d)]
            while len(x0s) < starts + 1:
                x0 = rng.standard_normal(d) * (start_radius / math.sqrt(d))
                if Pu.in_domain(x0):
                    x0s.append(x0)
            hess_tol = 1e-9 * np.linalg.norm(A, 2) ** 2 / n**2
            for uname, unit in units.items():
                P = Problem(A, b, None, unit=unit)
                results = []
                for si, x0 in enumerate(x0s):
                    for method in LANDSCAPE_METHODS:
                        if method == "gd" and (plant != "unified" or si > 1):
                            continue
                        res = minimize(P, x0, method=method, tol=tol, maxiter=gd_maxiter if method == "gd" else None)
                        results.append((si, method, res))
                done = [r for _, _, r in results if r.status == 0]
                best_run = min(done or [r for _, _, r in results], key=lambda r: r.fun)
                best = best_run.fun
                cond = float(np.linalg.cond(P.hess(best_run.x))) if done else float("inf")
                for si, method, res in results:
                    recs.append({"plant": plant, "draw": t, "unit": uname, "start": "zero" if si == 0 else "random",
                                 "method": method, "loss": float(res.fun), "status": int(res.status),
                                 "nit": int(res.nit), "kind": _classify(P, res, best, hess_tol), "best": best,
                                 "shortcut": L_s, "cond": cond})
    keys = ("plant", "draw", "unit", "start", "method", "loss", "status", "nit", "kind", "best", "shortcut", "cond")
    # text columns as lists (the figure registry compares data field by field; see tests/test_figures.py)
    table = {k: [r[k] for r in recs] if isinstance(recs[0][k], str) else np.array([r[k] for r in recs])
             for k in keys}
    sc = np.array(shortcut_check)
    return {"n": n, "d": d, "draws": draws, "shortcut_draws": shortcut_draws, "starts": starts,
            "plants": ["unified", "shortcut"], "methods": list(LANDSCAPE_METHODS), "scale": scale, "noise": noise,
            "start_radius": start_radius, "gd_maxiter": gd_maxiter, "tol": tol, "same_min": SAME_MIN, "runs": table,
            "shortcut_formula_err": float(sc[:, 0].max()), "shortcut_solver_gap": sc[:, 1],
            "shortcut_solver_status": sc[:, 2].astype(int)}


def landscape_summary(data: dict) -> dict:
    """Counts for the chapter: local minima above the parts' optima, and reach rates of gradient descent."""
    T = {k: np.asarray(v) for k, v in data["runs"].items()}
    out = {}
    for plant in data["plants"]:
        sel = T["plant"] == plant
        best = {}
        for u in ("softmax", "unified"):
            m = sel & (T["unit"] == u)
            draws = np.unique(T["draw"][m])
            best[u] = np.array([T["best"][m & (T["draw"] == t)][0] for t in draws])
        Ls = np.array([T["shortcut"][sel & (T["draw"] == t)][0] for t in np.unique(T["draw"][sel])])
        uni = sel & (T["unit"] == "unified")
        minima = uni & np.isin(T["kind"], ["global", "local"])
        # the softmax optimum of the same draw, per run
        soft_best = best["softmax"][T["draw"][minima]]
        conds = {}
        for u in ("softmax", "unified"):
            m = sel & (T["unit"] == u)
            conds[u] = np.array([T["cond"][m & (T["draw"] == t)][0] for t in np.unique(T["draw"][m])])
        soft = sel & (T["unit"] == "softmax")
        out[plant] = {
            "draws": int(Ls.size),
            "cond_softmax": conds["softmax"], "cond_unified": conds["unified"],
            "softmax_minima": int((soft & np.isin(T["kind"], ["global", "local"])).sum()),
            "softmax_local_only": int((soft & (T["kind"] == "local")).sum()),
            "unified_minima": int(minima.sum()),
            "local_only": int((uni & (T["kind"] == "local")).sum()),
            "plateau": int((uni & (T["kind"] == "plateau")).sum()),
            "minima_above_shortcut": int(np.sum(T["loss"][minima] > T["shortcut"][minima] * (1 + SAME_MIN))),
            "minima_above_softmax": int(np.sum(T["loss"][minima] > soft_best * (1 + SAME_MIN))),
            "best_above_shortcut": int(np.sum(best["unified"] > Ls * (1 + SAME_MIN))),
            "best_above_softmax": int(np.sum(best["unified"] > best["softmax"] * (1 + SAME_MIN))),
            "softmax_above_shortcut": int(np.sum(best["softmax"] > Ls * (1 + SAME_MIN))),
            "ratio_to_shortcut": best["unified"] / Ls,
            "ratio_to_softmax": best["unified"] / best["softmax"],
            "softmax_ratio_to_shortcut": best["softmax"] / Ls,
        }
        if not np.any(sel & (T["method"] == "gd")):
            continue
        rates = {}
        for u in ("softmax", "unified"):
            for start in ("zero", "random"):
                m = sel & (T["unit"] == u) & (T["method"] == "gd") & (T["start"] == start)
                kinds = T["kind"][m]
                rates[(u, start)] = {k: int(np.sum(kinds == k)) for k in ("global", "local", "plateau", "stopped")}
                rates[(u, start)]["runs"] = int(m.sum())
                rates[(u, start)]["maxiter"] = int(np.sum(T["status"][m] == 1))
                # iterations, runs stopped at the limit counted at the limit (a lower bound for them)
                rates[(u, start)]["median_nit"] = float(np.median(T["nit"][m]))
        out[plant]["gd"] = rates
    return out


def plot_landscape(data: dict):
    """Best unified loss per draw against the shortcut's and softmax's optima; gradient-descent outcomes."""
    s = landscape_summary(data)
    fig, axes = figure(2, width=4.4)
    ax = axes[0]
    for i, plant in enumerate(data["plants"]):
        r = s[plant]
        ax.scatter(r["ratio_to_shortcut"], r["ratio_to_softmax"], s=14, color=f"C{i}",
                   label=f"b planted from the {plant} unit")
    ax.axvline(1.0, color="grey", lw=1, ls=":")
    ax.axhline(1.0, color="grey", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("best unified loss / shortcut-alone optimum")
    ax.set_ylabel("best unified loss / best softmax loss")
    ax.legend()
    ax = axes[1]
    kinds = ("global", "local", "plateau", "stopped")
    colors = {"global": "C2", "local": "C3", "plateau": "C1", "stopped": "C7"}
    labels, bottoms = [], []
    bars = []
    for u in ("softmax", "unified"):
        for start in ("zero", "random"):
            bars.append(s["unified"]["gd"][(u, start)])
            labels.append(f"{'γ = 0 (softmax)' if u == 'softmax' else 'γ = 1 (unified)'}\nfrom {start}")
    x = np.arange(len(bars))
    bottoms = np.zeros(len(bars))
    for k in kinds:
        h = np.array([bar[k] / bar["runs"] for bar in bars])
        ax.bar(x, h, bottom=bottoms, color=colors[k], label=k)
        bottoms += h
    ax.set_xticks(x, labels)
    ax.set_ylabel("fraction of gradient-descent runs")
    ax.set_xlabel("unit and start (b planted from the unified unit)")
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(loc="upper center", ncol=4)
    return fig


# --------------------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------------------


def ledger_rows() -> list[dict]:
    """Ledger rows of the chapter, from its registered data (``resnet-shamir``, ``resnet-liu``, ``resnet-unified``)."""
    sh = compute("resnet-shamir")
    res = [c for c in sh["configs"] if c["arch"] == "residual"]
    plain = [c for c in sh["configs"] if c["arch"] == "plain"]
    above = sum(c["above"] for c in res)
    total = sh["runs"] * len(res)
    plain_above = sum(c["above"] for c in plain)
    ok_sh = above == 0
    rows = [{
        "item": "Shamir 2018 (beside)", "chapter": "resnet", "label": "thm-shamir",
        "check": "residual units x -> w'(x + V ReLU(Ux)) trained from random starts to approximate local minima "
                 "(certified in (w, V)); fails if any ends above the best linear predictor's loss",
        "evidence": f"{above} of {total} residual end points above F_lin = {sh['F_lin']:.4g} "
                    f"(n = {sh['n']}, widths {sh['widths']}); plain networks (no guarantee): "
                    f"{plain_above} of {sh['runs'] * len(plain)} above",
        "verdict": "not falsified" if ok_sh else "does not hold as stated",
        "passed": bool(ok_sh),
    }]
    lu = compute("resnet-liu")
    cnn = lu["success"][:, :, 0]
    prior = [i + 1 for i, t in enumerate(lu["thetas_deg"]) if t < 90]
    res_prior = lu["success"][:, :, prior]
    below = np.array(lu["ratios"]) < 1
    ok_lu = liu_reproduced(lu)
    rows.append({
        "item": "Liu et al. 2019 (beside)", "chapter": "resnet", "label": "claim-liu",
        "check": "population gradient descent in our reading of the model (CNN with weight normalisation, with and "
                 "without an average-pooling shortcut); fails if the shortcut model from w = 0 missed the global "
                 "optimum when the target is near the shortcut, or if the plain CNN always reached it",
        "evidence": f"shortcut model, theta* < 90 deg: success {res_prior.min():.2f}..{res_prior.max():.2f}; "
                    f"plain CNN below gamma_c: {cnn[:, below].min():.2f}..{cnn[:, below].max():.2f} "
                    f"({lu['trials']} runs per point, p = {lu['p']}, k in {lu['ks']})",
        "verdict": "reproduced (our reading)" if ok_lu else "not reproduced (our reading)",
        "passed": ok_lu,
    })
    la = compute("resnet-unified")
    s = landscape_summary(la)
    above_sc = {p: s[p]["minima_above_shortcut"] for p in la["plants"]}
    mins = {p: s[p]["unified_minima"] for p in la["plants"]}
    any_above = any(v > 0 for v in above_sc.values())
    rows.append({
        "item": "Unified loss: local minima vs parts", "chapter": "resnet", "label": "prop-shortcut-optimum",
        "check": "minima of the unified L_exp (w = 0) from many starts and three methods, against the exact optimum "
                 "of the shortcut alone and the best softmax loss; a Shamir-type guarantee would leave none above",
        "evidence": "; ".join(f"b from {p}: {above_sc[p]} of {mins[p]} unified minima above the shortcut optimum, "
                              f"{s[p]['minima_above_softmax']} above the best softmax loss ({s[p]['draws']} draws)"
                              for p in la["plants"]),
        "verdict": "no Shamir-type guarantee (minima above the shortcut optimum)" if any_above
        else "no minimum above the parts seen",
        "passed": bool(not any_above),
    })
    return rows
