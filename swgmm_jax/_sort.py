"""Sorting the slices: XLA's sort, or NumPy's on the host (the CPU default).

XLA's CPU sort calls a compiled comparator per comparison and is 10-50x
slower than NumPy's on the package's workloads: the data projections
(:func:`sort_slices`) and the quantile solver's per-slice tables
(:mod:`swgmm_jax._transport1d`). ``"auto"`` sorts on the host on the CPU
backend only (elsewhere it would copy every slice to the host), and sharded
code always passes ``"xla"`` (a host callback deadlocked the collectives of a
``shard_map``, see :mod:`swgmm_jax._mesh`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._validation import check_choice

__all__ = ["SORT_METHODS", "resolve_sort", "sort_slices", "sort_table", "sort_with_weights"]


SORT_METHODS = ("auto", "xla", "host")


def resolve_sort(method: str) -> str:
    """``"auto"`` -> ``"host"`` on the CPU backend, ``"xla"`` elsewhere (decided at trace time)."""
    if method == "auto":
        return "host" if jax.default_backend() == "cpu" else "xla"
    return method


# The host callbacks exchange the values as uint32 words: with x64 switched on
# only in the caller's thread (``jax.enable_x64`` is thread-local), float64
# operands and results are cast to float32 on the callback's thread.
def _to_words(y: jax.Array) -> jax.Array:
    bits = jax.lax.bitcast_convert_type(y, jnp.uint32)  # [..., n] or [..., n, 2]
    return bits.reshape(*y.shape[:-1], -1)


def _host_argsort(words, dtype):
    # np.asarray first: handed a jax Array, np.argsort would try jax's own
    # argsort (a spurious trace) before falling back to NumPy.
    return np.argsort(np.asarray(words).view(dtype), axis=-1).astype(np.int32)


# NumPy's sort releases the GIL: above this many values the rows are split
# across a small thread pool (1,600 rows x 850 float32 on 2 cores: 8.9 -> 6.2 ms).
_THREADED_SORT_SIZE = 1 << 16
_SORT_THREADS = min(8, os.cpu_count() or 1)


@functools.cache
def _sort_pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(_SORT_THREADS, thread_name_prefix="swgmm-sort")


def _host_sorted(words, dtype):
    out = np.array(words, copy=True).view(dtype)  # a private copy, sorted in place
    rows = out.reshape(-1, out.shape[-1])
    if _SORT_THREADS == 1 or out.size < _THREADED_SORT_SIZE or rows.shape[0] < 2:
        rows.sort(axis=-1)
    else:
        chunks = np.array_split(np.arange(rows.shape[0]), min(_SORT_THREADS, rows.shape[0]))
        bounds = [(c[0], c[-1] + 1) for c in chunks if c.size]
        list(_sort_pool().map(lambda b: rows[b[0] : b[1]].sort(axis=-1), bounds))
    return out.view(np.uint32)


@jax.custom_jvp
def _host_sort(y: jax.Array) -> jax.Array:
    # Values only: NumPy's sort of 1,600 rows x 850 took 4.5 ms here, its
    # argsort 23 ms (89 ms stable). The fits never differentiate the data side,
    # so the permutation is only computed when a tangent reaches ``y``.
    words = _to_words(y)
    out = jax.ShapeDtypeStruct(words.shape, jnp.uint32)
    sort = functools.partial(_host_sorted, dtype=np.dtype(y.dtype))
    bits = jax.pure_callback(sort, out, words, vmap_method="expand_dims")
    return jax.lax.bitcast_convert_type(bits.reshape(*y.shape, -1), y.dtype).reshape(y.shape)


@_host_sort.defjvp
def _host_sort_jvp(primals, tangents):
    (y,), (dy,) = primals, tangents
    argsort = functools.partial(_host_argsort, dtype=np.dtype(y.dtype))
    order = jax.pure_callback(
        argsort, jax.ShapeDtypeStruct(y.shape, jnp.int32), _to_words(y), vmap_method="expand_dims"
    )
    return jnp.take_along_axis(y, order, axis=-1), jnp.take_along_axis(dy, order, axis=-1)


def sort_slices(y: jax.Array, method: str = "auto") -> jax.Array:
    """Sort ``y[..., n]`` along its last (contiguous) axis, differentiably.

    ``method="host"`` sorts with NumPy through ``jax.pure_callback``: XLA's CPU
    sort is 10-50x slower than NumPy's on this workload (60,000 x 256 values:
    5.0 s vs 0.30 s). ``"auto"`` picks it on the CPU backend only: on GPU/TPU it
    would copy every slice to the host. NumPy sorts the values; where a
    gradient with respect to ``y`` is asked for, the order is computed on the
    host too and applied with a gather, so gradients still flow.
    Never use ``"host"`` inside ``shard_map`` over several devices (a host
    callback there deadlocked the collective).

    Args:
      y: ``[..., n]`` values, e.g. projected data ``[L, n]``.
      method: ``"auto"``, ``"xla"`` (``jnp.sort``) or ``"host"`` (NumPy).

    Returns:
      ``y`` sorted along its last axis.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> y = jnp.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]])
      >>> sw.sort_slices(y).tolist()
      [[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]]

      The gradient of the largest value of slice 0 reaches the point it came from:

      >>> jax.grad(lambda y: sw.sort_slices(y, "host")[0, -1])(y).tolist()
      [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    method = resolve_sort(method)
    if method == "xla":
        return jnp.sort(y, axis=-1)
    if method != "host":
        check_choice(method, "sort", SORT_METHODS)
    # Under a shard_map with several devices, a callback would deadlock: sharded
    # callers pass "xla" (see swgmm_jax._mesh).
    return _host_sort(y)


# Below this many values (all vmapped lanes together) a host callback costs more than
# NumPy's faster sort saves. Measured on 2 CPU cores, the quantile solver's tables
# (K x 5 points per slice): one 400-point fit (16 slices, K = 3: 240 values) ran
# 0.42 s with XLA's sort against 0.57 s with NumPy's; 100 vmapped restarts (1,600
# slices, K = 10: 80,000 values) 42.6 s against 37.1 s.
_HOST_TABLE_SIZE = 10_000


def _sort_by_size(y: jax.Array) -> jax.Array:
    host = resolve_sort("auto") == "host" and y.size >= _HOST_TABLE_SIZE
    return _host_sort(y) if host else jnp.sort(y, axis=-1)


@jax.custom_batching.custom_vmap
def _sort_sized(y: jax.Array) -> jax.Array:
    return _sort_by_size(y)


@_sort_sized.def_vmap
def _sort_sized_vmap(axis_size, in_batched, y):
    # Called again on the batched array, so that the size decided on is that of
    # every vmapped lane together, however many vmaps are nested.
    del axis_size
    return _sort_sized(y), in_batched[0]


def sort_table(y: jax.Array, method: str = "auto") -> jax.Array:
    """:func:`sort_slices` for the quantile solver's small per-slice tables (values only, no gradient).

    ``"auto"`` sorts on the host only on the CPU backend and only where all the
    vmapped lanes together hold at least ``_HOST_TABLE_SIZE`` values (e.g. many
    restarts in one ``vmap``), decided at trace time; a single fit's tables stay
    with XLA, whose sort of a few hundred values is cheaper than a host callback.
    """
    if method == "auto":
        return _sort_sized(y)
    return sort_slices(y, method)


def sort_with_weights(y: jax.Array, w: jax.Array, method: str) -> tuple[jax.Array, jax.Array]:
    """``y[..., n]`` sorted along its last axis, and ``w[n]`` permuted along with each row.

    XLA sorts the (value, weight) pairs in one ``lax.sort``. The host path needs
    the permutation, so it pays for NumPy's argsort rather than its sort (see
    :func:`sort_slices`); the values and weights are then gathered on the
    device, which keeps ``y``'s gradient. Measured on 2 loaded CPU cores
    (noisy): NumPy's argsort of 1,600 x 850 float32 took 85 ms against 25 ms for
    its sort, and a jitted value-and-gradient of ``sliced_loss`` on
    ``ring_square_line`` (850 points, K = 10, 16 directions) took 2.7 ms
    weighted against 1.4 ms unweighted at 64 levels (host sort; 3.7 against
    4.4 ms with XLA's), and 15 against 5 ms with all data levels, whose levels
    then differ from slice to slice.
    """
    wb = jnp.broadcast_to(w.astype(y.dtype), y.shape)
    method = resolve_sort(method)
    if method == "xla":
        y_sorted, w_sorted = jax.lax.sort((y, wb), dimension=y.ndim - 1, num_keys=1)
        return y_sorted, w_sorted
    argsort = functools.partial(_host_argsort, dtype=np.dtype(y.dtype))
    order = jax.pure_callback(
        argsort,
        jax.ShapeDtypeStruct(y.shape, jnp.int32),
        _to_words(jax.lax.stop_gradient(y)),
        vmap_method="expand_dims",
    )
    return jnp.take_along_axis(y, order, axis=-1), jnp.take_along_axis(wb, order, axis=-1)
