"""Section 6 of the paper ("Rewrite Hessian"): Definition 6.1's split ``B(x) = B_mat + B_rank + B_diag``.

Song, Wang and Yin (2023), Definition 6.1, name three pieces of the matrix ``B(x)`` of Lemma 5.2
(``∇²L_exp(x) = Aᵀ B(x) A``), and Lemma 7.1 bounds them one by one (Parts 1–3) before bounding
``B`` (Part 4). The extracted text of the paper lost the formulas; what survives fixes each
piece's kind:

* ``B_mat`` is positive semidefinite: the proof of Lemma 7.1, Part 1 gets its lower bound from
  that alone. It is the Gauss–Newton term ``JᵀJ`` with ``J = α⁻¹(I − f 1ᵀ) diag(v)``, the
  Jacobian of ``f`` in ``z = Ax``, kept as a matrix product (hence "mat").
* ``B_rank`` is the low-rank piece that Part 2 bounds through ``x yᵀ + y xᵀ`` and then a factor
  ``α⁻²``: ``B_rank = −α⁻²((v∘r) vᵀ + v (v∘r)ᵀ)``, rank at most two, with ``r = c − <c, f> 1``.
* ``B_diag`` is the diagonal that Part 3 bounds by its largest entry:
  ``B_diag = α⁻¹ diag(exp(Ax) ∘ r)``.

This is *our reconstruction* of Definition 6.1 from that narrative and from the three-term form
of ``B`` (MATH.md, Section 3); the sum is checked against the independent hyper-dual Hessian of
:mod:`softres.reference` in the tests and in the book. It is not the split the rest of the package
uses: :meth:`softres.Problem.B_diag` and :meth:`softres.Problem.B_rank` are the book's two-term
split of Lemma 5.4 (all diagonal terms in one matrix, all rank-two terms in the other). The two
are related by expanding ``B_mat`` into its diagonal and rank-two parts (:func:`correspondence`)::

    book B_diag = B_diag + α⁻² diag(v∘v)
    book B_rank = B_rank + α⁻² (‖f‖² v vᵀ − (v∘f) vᵀ − v (v∘f)ᵀ)

The four matrices ``α⁻² diag(v∘v)``, the rank-two part of ``B_mat``, ``B_rank`` and ``B_diag``
are also our four steps ``G1 … G4`` for the Lipschitz argument of Lemmas 8.4–8.8
(:func:`four_steps`). Every function here forms ``n × n`` matrices: for small ``n`` (checks and
figures) only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softres.problem import Problem

__all__ = ["B_diag", "B_mat", "B_rank", "basic", "correspondence", "evaluate", "four_steps", "pieces"]


def basic(problem: Problem, x: Any) -> dict[str, Any]:
    """The basic functions of Definition 3.1 at ``x``: ``z, e = exp(z), u, v, α, f, c, <c, f>, r``.

    ``r = c − <c, f> 1``. Computed from the public methods of :class:`~softres.Problem`; ``e`` from
    ``z`` directly, so that it keeps its relative accuracy where ``exp(z)`` is tiny.
    """
    x = np.asarray(x, dtype=float)
    z = np.asarray(problem.A @ x, dtype=float)
    alpha = problem.alpha(x)
    f, c = problem.f(x), problem.c(x)
    cf = float(c @ f)
    e = np.exp(z)
    return {"z": z, "e": e, "u": e + z, "v": e + 1.0, "alpha": alpha, "f": f, "c": c, "cf": cf, "r": c - cf}


def B_mat(problem: Problem, x: Any) -> np.ndarray:
    """Definition 6.1 (our reconstruction): ``B_mat(x) = JᵀJ``, ``J = α⁻¹(I − f 1ᵀ) diag(v)``; PSD."""
    return _pieces(basic(problem, x))["B_mat"]


def B_rank(problem: Problem, x: Any) -> np.ndarray:
    """Definition 6.1 (our reconstruction): ``B_rank(x) = −α⁻²((v∘r) vᵀ + v (v∘r)ᵀ)``, rank ≤ 2."""
    return _pieces(basic(problem, x))["B_rank"]


def B_diag(problem: Problem, x: Any) -> np.ndarray:
    """Definition 6.1 (our reconstruction): ``B_diag(x) = α⁻¹ diag(exp(Ax) ∘ r)`` (``n × n``)."""
    return _pieces(basic(problem, x))["B_diag"]


def _pieces(q: dict[str, Any]) -> dict[str, np.ndarray]:
    a, v, f, r = q["alpha"], q["v"], q["f"], q["r"]
    J = (np.eye(f.size) - np.outer(f, np.ones_like(f))) * (v / a)
    vr = v * r
    return {"B_mat": J.T @ J, "B_rank": -(np.outer(vr, v) + np.outer(v, vr)) / a**2, "B_diag": np.diag(q["e"] * r / a)}


def pieces(problem: Problem, x: Any) -> dict[str, np.ndarray]:
    """``{"B_mat", "B_rank", "B_diag"}`` of Definition 6.1 at ``x``; their sum is ``B(x)`` (Lemma 5.2)."""
    return _pieces(basic(problem, x))


def four_steps(problem: Problem, x: Any) -> dict[str, np.ndarray]:
    """Our four matrix functions ``G1 … G4`` of Lemmas 8.4–8.8, with ``G1 + G2 + G3 + G4 = B(x)``.

    ``G1 = α⁻² diag(v∘v)`` and ``G2 = α⁻²(‖f‖² v vᵀ − (v∘f) vᵀ − v (v∘f)ᵀ)`` expand ``B_mat``;
    ``G3 = B_rank`` and ``G4 = B_diag`` (Definition 6.1, our reconstruction). The paper's own
    ``G1 … G4`` are not recoverable from its extracted text; these are ours, chosen so that each is
    a diagonal or a rank-two matrix whose Lipschitz constant follows from Lemma 8.3's.
    """
    return _four(basic(problem, x))


def _four(q: dict[str, Any], pc: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    pc = _pieces(q) if pc is None else pc
    a2 = q["alpha"] ** -2
    v, f = q["v"], q["f"]
    vf = v * f
    G2 = a2 * (float(f @ f) * np.outer(v, v) - np.outer(vf, v) - np.outer(v, vf))
    return {"G1": np.diag(a2 * v * v), "G2": G2, "G3": pc["B_rank"], "G4": pc["B_diag"]}


def evaluate(problem: Problem, x: Any) -> dict[str, Any]:
    """Everything at once, from one evaluation of the basic functions: ``{"basic", "pieces", "steps"}``.

    ``basic`` is :func:`basic`, ``pieces`` is :func:`pieces` (Definition 6.1) and ``steps`` is
    :func:`four_steps` (``G1 … G4``); for loops over many points (the book's checks).
    """
    q = basic(problem, x)
    pc = _pieces(q)
    return {"basic": q, "pieces": pc, "steps": _four(q, pc)}


def correspondence(problem: Problem, x: Any) -> dict[str, float]:
    """How far the book's Lemma 5.4 split is from Definition 6.1's, after the regrouping above.

    Returns the largest absolute entry of ``book B_diag − (B_diag + G1)``,
    ``book B_rank − (B_rank + G2)`` and ``B_mat − (G1 + G2)``, each relative to ``max |B(x)|``:
    all three are rounding-level when the two splits describe the same matrix.
    """
    G = four_steps(problem, x)
    U, C = problem.B_rank(x)
    book_rank = U @ C @ U.T
    book_diag = np.diag(problem.B_diag(x))
    scale = float(np.abs(book_diag + book_rank).max())
    return {
        "diag": float(np.abs(book_diag - G["G4"] - G["G1"]).max()) / scale,
        "rank": float(np.abs(book_rank - G["G3"] - G["G2"]).max()) / scale,
        "mat": float(np.abs(B_mat(problem, x) - G["G1"] - G["G2"]).max()) / scale,
    }
