"""Fits on data that stays on the host: minibatches streamed into jitted chunks of steps.

:func:`fit_stream` runs the same RMSProp steps as :func:`swgmm_jax.fit` with
``batch_size`` set, but the minibatches are drawn (or read from an iterator)
on the host and sent to the device a chunk of ``chunk_steps`` steps at a time:
device memory holds ``chunk_steps * batch_size * d`` data values (two chunks
while the next one is being prepared), never the data set, so ``n`` is bounded
by host memory or disk (a ``numpy.memmap``) only.

Estimator. Each step's loss is ``SW_p^p`` between the GMM and the empirical
measure of ``b`` points drawn with replacement (a fresh minibatch, fresh
directions and fresh levels per step). Directions and stratified levels are
unbiased; the minibatch is not: per slice,
``E[W_2^2(mu_b, g)] = int (E[Q_b(z)] - Q_g(z))^2 dz + int Var[Q_b(z)] dz``, so
the expected loss is minimised by the GMM whose slice quantiles match the
*expected order statistics* of ``b`` points, ``E[Q_b(z)]``, rather than the
population quantiles: a bias in the fitted parameters of order ``1/b``
(largest in the tails, where order statistics spread out most), whereas the
variance of a step's gradient, which the RMSProp averaging and the decaying
step size average out, is of order ``1/b`` (data) plus ``1/L`` (directions)
plus ``1/(L M)`` (levels). With ``b`` in the thousands the bias is far below
the Monte-Carlo noise of a fit; ``results/large_data.json`` compares streamed
and full-data fits.
"""

from __future__ import annotations

import collections.abc
import itertools
import mmap
import os

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._config import FitConfig, check_config
from swgmm_jax._fit import FitResult, FitState, make_fit_step
from swgmm_jax._mesh import check_mesh_sort, resolve_mesh
from swgmm_jax._params import GMMParams, check_params, covariance_type_of
from swgmm_jax._validation import (
    as_real_array,
    check_key,
    check_positive_int,
    check_real_dtype,
    check_sample_weight,
)

__all__ = ["fit_stream", "host_minibatches"]


def _file_rows(x):
    """``(path, file offset of row 0, row stride)`` of a row-contiguous 2-D memmap, else ``None``."""
    mm = getattr(x, "_mmap", None)
    if not isinstance(x, np.memmap) or mm is None or not x.filename or x.ndim != 2:
        return None
    if x.strides[1] != x.itemsize or x.strides[0] <= 0 or not x.dtype.isnative:
        return None
    # numpy maps from the offset rounded down to the allocation granularity;
    # views keep the parent's offset, so locate x's first byte in the mapping.
    map_start = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY
    map_addr = np.frombuffer(mm, np.uint8).ctypes.data
    return x.filename, map_start + (x.ctypes.data - map_addr), x.strides[0]


def host_minibatches(seed, x, batch_size: int, sample_weight=None):
    """Endless iterator of ``[batch_size, d]`` minibatches of ``x``, drawn with replacement.

    ``x`` is any host array indexable by a row-index array (NumPy array or
    ``numpy.memmap``). Indices are sorted within a batch (a minibatch is a set;
    sorted reads run forward through a file). A row-contiguous memmap is read
    row by row with ``os.pread`` rather than through its mapping: a page fault
    on a file in the page cache maps far more than the page (here about 1 MB
    per fault, so 512 random rows of a 640 MB file added 460 MB to the
    process's resident memory), whereas ``pread`` copies only the rows.

    Args:
      seed: anything ``numpy.random.default_rng`` accepts.
      x: ``[n, d]`` host data.
      batch_size: points per batch.
      sample_weight: ``None`` (rows drawn uniformly) or ``[n]`` host weights,
        >= 0 and not all 0 (not checked here): row ``i`` is drawn with
        probability ``w_i / sum(w)`` (one cumulative sum up front, then a
        binary search per row drawn).

    Yields:
      ``[batch_size, d]`` NumPy arrays of rows of ``x``, in row order.

    Examples:
      >>> import numpy as np, swgmm_jax as sw
      >>> x = np.arange(20.0).reshape(10, 2)  # row i is [2i, 2i + 1]
      >>> batches = sw.host_minibatches(0, x, 4)
      >>> b = next(batches)
      >>> b.shape, bool(np.all(b[:, 1] == b[:, 0] + 1)), bool(np.all(np.diff(b[:, 0]) >= 0))
      ((4, 2), True, True)
      >>> np.array_equal(next(sw.host_minibatches(0, x, 4)), b)  # the same seed, the same batches
      True
    """
    rng = np.random.default_rng(seed)
    n, d = x.shape
    if sample_weight is None:

        def draw():
            return np.sort(rng.integers(0, n, size=batch_size))
    else:
        cdf = np.cumsum(np.asarray(sample_weight, np.float64))

        def draw():
            u = rng.random(batch_size) * cdf[-1]
            return np.sort(np.minimum(np.searchsorted(cdf, u, side="right"), n - 1))

    rows = _file_rows(x)
    if rows is None:
        while True:
            yield np.asarray(x[draw()])
    path, base, stride = rows
    row_bytes = d * x.itemsize
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            idx = draw()
            buf = b"".join([os.pread(fd, row_bytes, base + int(i) * stride) for i in idx])
            yield np.frombuffer(buf, x.dtype).reshape(batch_size, d)
    finally:
        os.close(fd)


def _start(key, x0, init, config: FitConfig, n_components: int):
    """The fit's state from the first batch ``x0[b, d]`` (standardisation and initialisation)."""
    return make_fit_step(config).init(key, x0, n_components, init)


_start_jit = jax.jit(_start, static_argnames=("n_components",))


def _chunk(state, xb, keys, config: FitConfig, mesh):
    """``xb[S, b, d]`` raw batches, ``keys[S]``: S steps of the fit in one scan.

    Also returns ``finite[S]``, whether each batch is free of NaN/inf: a
    reduction fused into the same call, read on the host one chunk later (so
    that the check does not stall the pipeline of chunks).
    """
    step = make_fit_step(config, mesh).step
    state, losses = jax.lax.scan(lambda st, inputs: step(inputs[1], st, inputs[0]), state, (xb, keys))
    return state, losses, jnp.all(jnp.isfinite(xb), axis=(1, 2))


_chunk_jit = jax.jit(_chunk, static_argnames=("mesh",))
_data_params = jax.jit(FitState.data_params)


def fit_stream(
    key: jax.Array,
    data,
    n_components: int,
    config: FitConfig | None = None,
    init: GMMParams | None = None,
    *,
    chunk_steps: int = 50,
    mesh=None,
    sample_weight=None,
) -> FitResult:
    """Fit a GMM on host data streamed in minibatches: :func:`swgmm_jax.fit` for large ``n``.

    The host loop sends ``chunk_steps`` minibatches ``[chunk_steps, b, d]`` at a
    time to one jitted ``lax.scan`` of RMSProp steps (the optimiser state and
    the learning-rate schedule carry over between chunks, so the steps are
    those of one scan). Dispatch is asynchronous: the host reads the next chunk
    while the device runs the current one. The centre and scale of the
    internal standardisation, and the initialisation (unless ``init`` is
    given), come from the first batch's ``b`` points (only the conditioning
    of the problem depends on the standardisation). The result does not
    depend on ``chunk_steps``.

    Peak device memory is set by ``chunk_steps * b * d`` (the batches) and
    ``n_projections * (b + n_levels * K)`` (a step's slices); host memory by
    the data source itself. See the module docstring for the minibatch
    estimator's bias (order ``1/b``, towards over-dispersion) and variance.

    Args:
      key: PRNG key (initialisation, directions, levels, and the host sampler's seed).
      data: either a host array ``[n, d]`` (NumPy array or ``numpy.memmap``),
        from which ``config.batch_size`` points per step are drawn with
        replacement (:func:`host_minibatches`), or an iterable of ``[b, d]``
        batches, all of one shape, at least ``config.n_steps`` of them.
      n_components: ``K``.
      config: :class:`FitConfig`; ``batch_size`` is required for array data
        and, for an iterable, must be ``None`` or the batches' size.
      init: optional initial ``GMMParams`` in the units of the data.
      chunk_steps: steps per device call.
      mesh: ``None`` (default) or a 1-D mesh / ``"auto"`` to shard each step's
        projections, as in :func:`swgmm_jax.fit`.
      sample_weight: ``None``, or for array ``data`` its ``[n]`` weights (>= 0,
        not all 0; only their ratios matter): minibatch rows are drawn with
        probability ``w_i / sum(w)`` (:func:`host_minibatches`), so each batch
        is an unweighted sample of the weighted distribution, as in
        :func:`swgmm_jax.fit`'s minibatches. An iterable's batches carry no
        weights (a ValueError): draw its rows in proportion to theirs instead.

    Returns:
      :class:`FitResult` (parameters in the data's units, ``[n_steps]`` loss history).

    Examples:
      >>> import jax, numpy as np, swgmm_jax as sw
      >>> x = np.random.default_rng(0).normal(size=(10_000, 2)).astype(np.float32)
      >>> cfg = sw.FitConfig(n_steps=40, batch_size=256)
      >>> res = sw.fit_stream(jax.random.key(0), x, 2, cfg, chunk_steps=20)
      >>> res.loss_history.shape
      (40,)
    """
    config = check_config(config, FitConfig)
    check_key(key)
    k = check_positive_int(n_components, "n_components")
    chunk_steps = check_positive_int(chunk_steps, "chunk_steps")
    mesh = resolve_mesh(mesh)
    check_mesh_sort(mesh, config.slicing.sort)
    batch_size = config.slicing.batch_size
    k_init, k_loop, k_host = jax.random.split(key, 3)
    if isinstance(data, (str, bytes)):
        raise TypeError(f"data must be a 2-D host array or an iterable of batches, got {type(data).__name__}")
    if hasattr(data, "shape") and hasattr(data, "__getitem__") and len(getattr(data, "shape", ())) == 2:
        if batch_size is None:
            raise ValueError("config.batch_size is required to draw minibatches from an array")
        check_real_dtype(data.dtype, "data")
        if data.shape[0] < k:
            raise ValueError(f"data has {data.shape[0]} points, fewer than n_components={k}")
        if sample_weight is not None:
            sample_weight = np.asarray(check_sample_weight(sample_weight, data.shape[0], dtype=np.float64))
        seed = np.asarray(jax.random.key_data(k_host)).astype(np.uint32).ravel().tolist()
        batches = host_minibatches(seed, data, batch_size, sample_weight)
    elif isinstance(data, collections.abc.Iterable):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight applies to array data only: an iterable's batches carry no weights "
                "(draw its rows in proportion to their weights instead)"
            )
        batches = iter(data)
    else:
        raise TypeError(f"data must be a 2-D host array or an iterable of batches, got {type(data).__name__}")

    n_steps = config.n_steps
    step_keys = jax.random.split(k_loop, n_steps)
    histories = []
    state = None
    shape: tuple[int, ...] = ()
    done = 0
    pending = None  # (first step, finite[S]) of the chunk before the one running

    def check_finite_batches(first, finite):
        bad = np.flatnonzero(~np.asarray(finite))
        if bad.size:
            raise ValueError(
                f"data batch {first + int(bad[0])} (0-based) contains non-finite values (NaN or inf)"
            )

    while done < n_steps:
        size = min(chunk_steps, n_steps - done)
        chunk = [
            as_real_array(b, f"data batch {done + i}") for i, b in enumerate(itertools.islice(batches, size))
        ]
        if len(chunk) < size:
            raise ValueError(f"data ran out after {done + len(chunk)} batches; config.n_steps={n_steps}")
        ref = chunk[0].shape if state is None else shape
        for i, b in enumerate(chunk):
            if b.ndim != 2:
                raise ValueError(f"data batch {done + i} must be a [b, d] array, got shape {list(b.shape)}")
            if b.shape != ref:
                raise ValueError(
                    f"all batches must have shape {list(ref)}, data batch {done + i} has {list(b.shape)}"
                )
        xb = np.stack(chunk)
        if state is None:
            if batch_size is not None and xb.shape[1] != batch_size:
                raise ValueError(f"batches have {xb.shape[1]} points, config.batch_size={batch_size}")
            if init is not None:
                init = check_params(init, "init", n_components=k, dim=xb.shape[2])
                if covariance_type_of(init) != config.covariance_type:
                    raise ValueError(
                        f"init has covariance_type={covariance_type_of(init)!r} but the config "
                        f"{config.covariance_type!r}: set the config's covariance_type to match"
                    )
                init = jax.tree.map(lambda a, dtype=xb.dtype: jnp.asarray(a, dtype), init)
            x0 = xb[0]  # the first batch, whatever chunk_steps is
            check_finite_batches(0, [np.isfinite(x0).all()])  # before it sets the scale
            state = _start_jit(k_init, x0, init, config, n_components=k)
        shape = xb.shape[1:]
        state, losses, finite = _chunk_jit(state, xb, step_keys[done : done + size], config, mesh=mesh)
        if pending is not None:
            check_finite_batches(*pending)
        pending = (done, finite)
        histories.append(losses)
        done += size
    assert state is not None and pending is not None  # n_steps >= 1
    check_finite_batches(*pending)
    return FitResult(_data_params(state), jnp.concatenate(histories))
