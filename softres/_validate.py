"""Input validation shared by the public API: every check names the argument it rejects."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["as_matrix", "as_vector", "check_finite_scalar"]

_NUMERIC_KINDS = "iuf"  # signed/unsigned integers and floats; bool, complex, object, str rejected


def _numeric_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of real numbers, got {type(value).__name__}") from exc
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def as_matrix(A: Any, name: str = "A") -> np.ndarray | sp.csr_array:
    """Return ``A`` as a float64 C-contiguous array or ``csr_array`` of shape ``(n, d)``, n, d >= 1."""
    if sp.issparse(A):
        if A.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{name} must hold real numbers (int or float), got dtype {A.dtype}")
        mat = sp.csr_array(A, dtype=np.float64)
        mat.sum_duplicates()
        data = mat.data
    else:
        arr = _numeric_array(A, name)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array of shape (n, d), got ndim={arr.ndim}")
        mat = np.ascontiguousarray(arr, dtype=np.float64)
        data = mat
    n, d = mat.shape
    if n < 1 or d < 1:
        raise ValueError(f"{name} must have n >= 1 rows and d >= 1 columns, got shape {mat.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name} must contain only finite values (no nan or inf)")
    return mat


def as_vector(x: Any, size: int, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 vector of length ``size``."""
    arr = _numeric_array(x, name)
    if arr.ndim != 1 or arr.shape[0] != size:
        raise ValueError(f"{name} must be a 1-D array of length {size}, got shape {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no nan or inf)")
    return arr


def check_finite_scalar(value: Any, name: str) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``."""
    if isinstance(value, bool) or not np.isscalar(value) or np.asarray(value).dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out
