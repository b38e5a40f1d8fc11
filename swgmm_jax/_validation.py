"""Checks at the Python boundary, before anything is traced or compiled.

One helper per kind of argument (data, key, positive integer, finite real,
choice); every public entry point validates with these, so each error message
is written once and names the argument.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_data", "check_key", "check_positive_int", "check_real", "check_choice", "check_dim"]


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def check_data(x: Any, name: str = "x", min_points: int = 1) -> jax.Array:
    """Return ``x`` as an inexact ``[n, d]`` JAX array, or raise a ValueError/TypeError."""
    arr: Any
    if _is_traced(x):
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
    if not _is_traced(arr) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    out = jnp.asarray(arr)
    if not jnp.issubdtype(out.dtype, jnp.inexact):
        out = out.astype(jnp.result_type(float))
    return out


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
    """Raise a TypeError unless ``key`` is a JAX array (a PRNG key)."""
    if not isinstance(key, jax.Array) and not _is_traced(key):
        raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}")
