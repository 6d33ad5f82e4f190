"""Input validation shared by the public API: every check names the argument it rejects.

One layer for every public entry point (``Problem``, ``minimize``, the sketch, ``bounds``,
``random_problem``): numpy scalars and 0-d arrays are accepted wherever a Python number is, and
each message says which argument was wrong and what was expected.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["as_matrix", "as_vector", "check_choice", "check_int", "check_real", "is_dask_array", "read_only"]

_NUMERIC_KINDS = "iuf"  # signed/unsigned integers and floats; bool, complex, object, str rejected


def _numeric_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of real numbers, got {type(value).__name__}") from exc
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def read_only(arr: Any) -> Any:
    """Mark an ndarray (or a sparse array's index and data arrays) read-only and return it."""
    for part in (arr.data, arr.indices, arr.indptr) if sp.issparse(arr) else (arr,):
        part.flags.writeable = False
    return arr


def is_dask_array(value: Any) -> bool:
    """Whether ``value`` is a ``dask.array.Array`` (checked without importing dask)."""
    return type(value).__module__.startswith("dask.") and hasattr(value, "chunks") and hasattr(value, "to_delayed")


def as_matrix(A: Any, name: str = "A", order: str = "C") -> np.ndarray | sp.csr_array:
    """Return a private, read-only float64 copy of ``A`` (an ndarray in ``order``, ``"C"`` for row-major or
    ``"F"`` for column-major, or a ``csr_array``), n, d >= 1.

    The copy is what makes a :class:`~softres.Problem` immune to later changes of the caller's
    array; a float64 ndarray already in that order, or a canonical CSR/CSC float64 array, that is
    already read-only is used as it is (no copy).
    """
    if sp.issparse(A):
        if A.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{name} must hold real numbers (int or float), got dtype {A.dtype}")
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D of shape (n, d), got ndim={A.ndim}")
        frozen = (isinstance(A, sp.csr_array | sp.csc_array) and A.dtype == np.float64
                  and not A.data.flags.writeable and A.has_canonical_format)
        mat = A if frozen else sp.csr_array(A, dtype=np.float64, copy=True)
        mat.sum_duplicates()
        data = mat.data
    else:
        if is_dask_array(A):
            raise TypeError(f"{name} is a dask array: pass it to softres.Problem, which keeps it distributed "
                            "(softres._dask), instead of gathering it into one array")
        arr = _numeric_array(A, name)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array of shape (n, d), got ndim={arr.ndim}")
        if order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        contiguous = arr.flags.c_contiguous if order == "C" else arr.flags.f_contiguous
        frozen = arr.dtype == np.float64 and contiguous and not arr.flags.writeable
        mat = arr if frozen else np.array(arr, dtype=np.float64, order=order)
        data = mat
    n, d = mat.shape
    if n < 1 or d < 1:
        raise ValueError(f"{name} must have n >= 1 rows and d >= 1 columns, got shape {mat.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{name} must contain only finite values (no nan or inf)")
    return read_only(mat)


def as_vector(x: Any, size: int, name: str, *, copy: bool = False) -> np.ndarray:
    """Return ``x`` as a finite float64 vector of length ``size`` (a fresh array when ``copy``)."""
    arr = _numeric_array(x, name)
    if arr.ndim != 1 or arr.shape[0] != size:
        raise ValueError(f"{name} must be a 1-D array of length {size}, got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True) if copy else np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values (no nan or inf)")
    return arr


def check_real(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """Return ``value`` as a float in the given range, or raise naming ``name`` and the range.

    Python and numpy integers and floats, and 0-d arrays of them, are accepted; ``bool``,
    strings, complex numbers and arrays with more than one element are not.
    """
    if isinstance(value, bool | np.bool_) or isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if math.isnan(out) or (finite and math.isinf(out)):
        raise ValueError(f"{name} must be a finite number, got {out}")
    too_low = out <= low if low_open else out < low
    too_high = out >= high if high_open else out > high
    if too_low or too_high:
        if high == math.inf:
            expected = f"{'>' if low_open else '>='} {low:g}"
        elif low == -math.inf:
            expected = f"{'<' if high_open else '<='} {high:g}"
        else:
            expected = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {expected}, got {out:g}")
    return out


def check_int(value: Any, name: str, *, low: int = 1) -> int:
    """Return ``value`` as an int ``>= low`` (Python or numpy integer), or raise naming ``name``."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if out < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {out}")
    return out


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, or raise naming ``name`` and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
