"""Checks at the Python boundary, before anything is traced or compiled.

One helper per kind of argument (data, key, positive integer, finite real,
bool, choice, finite array); every public entry point validates with these, so
each error message is written once and names the argument.

Shape and dtype checks always run (they are static, also under ``jit``/``vmap``);
value checks (finiteness, ranges) run on concrete inputs only and are skipped
for tracers, so that the public functions stay usable inside a caller's
transformations.

Dtype rule for data and parameters: computations run in float32 or float64.
Half-precision floats (float16, bfloat16) are cast to float32 (the
eigendecompositions, Cholesky factors and ``ndtri`` have no half-precision
kernels), integers and bools to the default float type, and non-native byte
orders (``>f4`` on a little-endian host) to the native one; float64 is float32
unless x64 is enabled (values beyond float32's range then count as non-finite).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "as_real_array",
    "check_real_dtype",
    "check_data",
    "check_key",
    "check_positive_int",
    "check_real",
    "check_bool",
    "check_choice",
    "check_dim",
    "check_finite",
    "check_sample_weight",
    "working_dtype",
]

_HALF = (np.dtype(np.float16), np.dtype(jnp.bfloat16))


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def working_dtype(dtype: Any) -> np.dtype:
    """The dtype computations run in for values of ``dtype`` (see the module's dtype rule).

    Canonical for JAX: float64 becomes float32 unless x64 is enabled, so that the
    finiteness checks see the values as they will be computed with (1e300 in a
    float64 array is inf in float32).
    """
    dtype = np.dtype(dtype)
    if dtype in _HALF:
        dtype = np.dtype(np.float32)
    elif not jnp.issubdtype(dtype, jnp.inexact):
        dtype = np.dtype(jnp.result_type(float))
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype.newbyteorder("=")))


def check_finite(value: Any, name: str) -> None:
    """Raise a ValueError if a concrete array ``value`` holds NaN or inf (tracers are skipped)."""
    if _is_traced(value):
        return
    if not np.all(np.isfinite(np.asarray(value))):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")


def check_real_dtype(dtype: Any, name: str) -> None:
    """Raise a TypeError unless ``dtype`` holds real numbers (bool, integer or float)."""
    dtype = np.dtype(dtype)
    real = np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_) or dtype in _HALF
    if dtype.kind == "O" or np.issubdtype(dtype, np.complexfloating) or not real:
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")


def as_real_array(value: Any, name: str) -> Any:
    """``value`` as an array of real numbers in its working dtype (NumPy, or the tracer itself).

    Raises a TypeError for strings, objects, complex numbers and ragged nested lists.
    No value check: see :func:`check_finite`.
    """
    arr: Any
    if _is_traced(value):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except Exception as err:  # ragged nested lists
            raise TypeError(f"{name} must be an array of real numbers: {err}") from None
        check_real_dtype(arr.dtype, name)
    dtype = working_dtype(arr.dtype)
    if arr.dtype == dtype:
        return arr
    with np.errstate(over="ignore"):  # an overflow becomes inf, which check_finite reports
        return arr.astype(dtype)


def check_data(x: Any, name: str = "x", min_points: int = 1) -> jax.Array:
    """Return ``x`` as a float32/float64 ``[n, d]`` JAX array, or raise a ValueError/TypeError.

    Half-precision and non-native byte-order floats are cast (see the module's dtype rule).
    """
    arr = as_real_array(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [n, d] (rank 2), got shape {arr.shape}")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name} has {arr.shape[0]} points, needs at least {min_points}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    check_finite(arr, name)
    return jnp.asarray(arr)


def check_dim(x: jax.Array, dim: int, name: str = "x") -> None:
    """Raise if the data's dimension ``x.shape[-1]`` differs from the model's ``dim``."""
    if x.shape[-1] != dim:
        raise ValueError(f"{name} has dimension {x.shape[-1]} but params have dimension {dim}")


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` >= ``minimum``, or raise a TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a ``bool``, or raise a TypeError unless it is a Python or NumPy bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r}")
    return bool(value)


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Check a real, finite hyperparameter against ``[low, high]`` (or open ends).

    Traced values, arrays and the placeholders that JAX puts in a pytree when it
    rebuilds one (under ``jit``/``vmap``) are not checked here: only Python or
    NumPy scalars are, so that a hyperparameter stays traceable.
    """
    if isinstance(value, (bool, str, bytes, complex)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if _is_traced(value) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        return
    if np.ndim(np.asarray(value)) != 0:
        return
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v <= low if low_open else v < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v >= high if high_open else v > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")


def check_choice(value: Any, name: str, choices: Sequence[str]) -> None:
    """Raise a ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_key(key: Any, name: str = "key") -> None:
    """Raise a TypeError unless ``key`` is one JAX PRNG key.

    Accepted: a typed key of shape ``[]`` (``jax.random.key(seed)``) or a raw
    ``uint32`` key of the default implementation's shape (``jax.random.PRNGKey(seed)``).
    Checked on shape and dtype only, so traced keys (under ``jit``/``vmap``) are checked too.
    """
    hint = "jax.random.key(seed)"
    if not isinstance(key, jax.Array) and not _is_traced(key):
        raise TypeError(f"{name} must be a JAX PRNG key ({hint}), got {type(key).__name__}")
    shape, dtype = tuple(key.shape), key.dtype
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if shape != ():
            raise TypeError(
                f"{name} must be a single PRNG key (shape []), got a key array of shape {list(shape)}; "
                "use jax.vmap over keys for a batch"
            )
        return
    impl = str(getattr(jax.config, "jax_default_prng_impl", ""))
    raw = (4,) if impl.endswith("rbg") else (2,)
    if dtype != np.uint32 or shape != raw:
        raise TypeError(
            f"{name} must be a JAX PRNG key ({hint}, or raw uint32{list(raw)} key data), "
            f"got an array of dtype {dtype} and shape {list(shape)}"
        )


def check_sample_weight(w: Any, n: int, name: str = "sample_weight", dtype: Any = None) -> jax.Array | None:
    """Return per-point weights ``w[n]`` as a JAX array (``None`` stays ``None``), or raise.

    Shape and dtype are always checked (a TypeError for non-real dtypes, a
    ValueError for a shape other than ``[n]``); on concrete values, a
    ValueError for NaN/inf, negative weights, all-zero weights and a sum that
    overflows. Tracers skip the value checks. The weights are cast to ``dtype``
    (the data's) when given, else to their working dtype.
    """
    if w is None:
        return None
    arr = as_real_array(w, name)
    if tuple(arr.shape) != (n,):
        raise ValueError(f"{name} must have shape [{n}] (one weight per point), got {list(arr.shape)}")
    if dtype is not None:
        arr = arr.astype(dtype) if _is_traced(arr) else np.asarray(arr).astype(working_dtype(dtype))
    if not _is_traced(arr):
        check_finite(arr, name)
        if np.any(arr < 0):
            raise ValueError(f"{name} must be >= 0, got a minimum of {float(np.min(arr))}")
        if not np.any(arr > 0):
            raise ValueError(f"{name} must not all be zero")
        with np.errstate(over="ignore"):
            if not np.isfinite(np.sum(arr, dtype=arr.dtype)):
                raise ValueError(f"{name} sums to more than the largest {arr.dtype} value")
    return jnp.asarray(arr)
