"""Checks at the Python boundary, before anything is traced or compiled."""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_data", "check_positive_int", "check_key"]


def check_data(x, name: str = "x", min_points: int = 1) -> jax.Array:
    """Return ``x`` as an inexact ``[n, d]`` JAX array, or raise a ValueError/TypeError."""
    if isinstance(x, jax.core.Tracer):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as err:  # pragma: no cover - exotic inputs
            raise TypeError(f"{name} must be an array of numbers: {err}") from None
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
        ):
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [n, d] (rank 2), got shape {arr.shape}")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name} has {arr.shape[0]} points, needs at least {min_points}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    if not isinstance(arr, jax.core.Tracer) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    arr = jnp.asarray(arr)
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_key(key, name: str = "key") -> None:
    if not isinstance(key, jax.Array) and not isinstance(key, jax.core.Tracer):
        raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}")
