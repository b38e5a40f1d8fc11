"""Sharding: projections of one loss, and restarts, split across devices.

Two independent axes of work parallelise:

* **projections** of one SW loss evaluation (:func:`sharded_sliced_loss`). The
  directions ``theta[L, d]`` and the per-slice quantile levels are drawn
  *outside* ``jax.shard_map`` from the same key, and in the same way, as
  :func:`swgmm_jax.sliced_loss`, then passed in sharded along the mesh axis:
  each device projects the (replicated) data on its own ``L / D`` directions,
  sorts and solves its slices, and the mean is a ``psum`` of per-device partial
  sums. The result for a key equals the unsharded loss up to float summation
  order, and so does the gradient with respect to the (replicated) parameters.
  When ``D`` does not divide ``L`` the directions are padded with copies of the
  first one whose costs get weight 0: the estimate is unchanged and the padded
  slices cost ``ceil(L / D) * D - L`` extra slice solves.
* **restarts** of :func:`swgmm_jax.fit_restarts` (:func:`map_restarts`): each
  device runs its share of the restarts, whole (no communication). When ``D``
  does not divide ``R``, the last devices re-run copies of the first restarts,
  which are discarded.

Both work on any 1-D :class:`jax.sharding.Mesh`, local or global (several
processes after ``jax.distributed.initialize``; see :func:`initialize_distributed`).

Sharded code always sorts with XLA (``sort="xla"``): a NumPy host sort
through ``jax.pure_callback`` deadlocked the collectives of a ``shard_map``
over 2+ devices, and inside the restarts' ``shard_map`` (no collective in the
body) it hung a 2-process run. On CPU the XLA sort is slower than the host one
(see :func:`swgmm_jax.sort_slices`), so sharding pays off on accelerators
rather than on CPU devices of one host.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from swgmm_jax import _validation
from swgmm_jax._params import GMMParams
from swgmm_jax._projections import project_data, project_gmm, random_directions
from swgmm_jax._sliced import sort_slices
from swgmm_jax._transport1d import midpoint_levels, stratified_levels, transport_cost

__all__ = [
    "make_projection_mesh",
    "sharded_sliced_loss",
    "sharded_sliced_wasserstein",
    "map_restarts",
    "initialize_distributed",
]

AXIS = "proj"


def make_projection_mesh(devices=None, axis_name: str = AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all devices, every process's).

    The axis is ``AxisType.Auto`` (``jax.make_mesh`` defaults to ``Explicit``,
    under which unsharded arrays passed to ``shard_map`` are rejected).

    Args:
      devices: a sequence of devices; ``None`` for ``jax.devices()`` (after
        ``jax.distributed.initialize`` this is the global device list).
      axis_name: the mesh axis name.

    Returns:
      A :class:`jax.sharding.Mesh` with one axis of size ``len(devices)``.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must not be empty")
    return Mesh(np.asarray(devices, dtype=object), (axis_name,), axis_types=(AxisType.Auto,))


def resolve_mesh(mesh) -> Mesh | None:
    """``"auto"`` -> a mesh over all devices if there are several, else ``None``.

    A mesh of one device also gives ``None`` (the unsharded code path).
    """
    if isinstance(mesh, str):
        if mesh != "auto":
            raise ValueError(f"mesh must be 'auto', None or a jax.sharding.Mesh, got {mesh!r}")
        return make_projection_mesh() if jax.device_count() > 1 else None
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be 'auto', None or a jax.sharding.Mesh, got {type(mesh).__name__}")
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be 1-D, got axes {mesh.axis_names}")
    return None if mesh.size == 1 else mesh


def _pad_rows(a, n_rows):
    """Pad ``a[L, ...]`` to ``n_rows`` rows with copies of row 0 (finite, masked out later)."""
    extra = n_rows - a.shape[0]
    if extra == 0:
        return a
    return jnp.concatenate([a, jnp.broadcast_to(a[:1], (extra, *a.shape[1:]))], axis=0)


def _padded_size(n, mesh):
    d = mesh.size
    return -(-n // d) * d


def sharded_mean_cost(
    params: GMMParams,
    x: jax.Array,
    theta: jax.Array,
    levels,
    mesh: Mesh,
    *,
    p: float = 2.0,
    quantile_iters: int = 10,
) -> jax.Array:
    """Mean over ``theta[L, d]`` of the per-slice costs, slices sharded over ``mesh``.

    Args:
      params: replicated GMM.
      x: ``[n, d]`` data, replicated.
      theta: ``[L, d]`` directions (any ``L``: padded to a multiple of the mesh size).
      levels: ``(z, 1 - z)`` each ``[L, M]`` (stratified), or ``None`` for the
        ``n`` midpoint levels (the same on every slice).
      mesh: 1-D mesh.

    Returns:
      Scalar ``mean_l cost_l``, replicated.
    """
    (axis,) = mesh.axis_names
    n_proj = theta.shape[0]
    lp = _padded_size(n_proj, mesh)
    dtype = jnp.result_type(x, params.means)
    # Weights and padding are made here, outside the body, and passed in
    # sharded: a value created inside shard_map counts as replicated.
    weights = jnp.where(jnp.arange(lp) < n_proj, 1.0 / n_proj, 0.0).astype(dtype)
    theta = _pad_rows(theta, lp)
    if levels is not None:
        levels = tuple(_pad_rows(lv, lp) for lv in levels)
    sharded = P(axis)
    lev_spec = None if levels is None else (sharded, sharded)

    @functools.partial(
        jax.shard_map, mesh=mesh, in_specs=(P(), P(), sharded, lev_spec, sharded), out_specs=P()
    )
    def body(params, x, theta, levels, weights):
        y_sorted = sort_slices(project_data(theta, x), "xla")
        log_w, means, scales = project_gmm(theta, params)
        if levels is None:
            levels = midpoint_levels(x.shape[0], dtype)
        costs = transport_cost(y_sorted, log_w[None, :], means, scales, levels, p=p, n_iter=quantile_iters)
        return jax.lax.psum(jnp.sum(weights * costs), axis)

    return body(params, x, theta, levels, weights)


def sharded_sliced_loss(
    params: GMMParams,
    x: jax.Array,
    key: jax.Array,
    mesh: Mesh,
    *,
    n_projections: int,
    p: float = 2.0,
    n_levels: int | None = None,
    quantile_iters: int = 10,
) -> jax.Array:
    """:func:`swgmm_jax.sliced_loss` with its projections sharded over ``mesh``.

    Pure and differentiable (``jit``/``grad``); draws the same directions and
    levels from ``key`` as :func:`swgmm_jax.sliced_loss`, so the two agree to
    float rounding. ``params`` and ``x`` are replicated on every device; the
    ``n_projections`` directions are split along the mesh axis (padded with
    masked-out copies when the mesh size does not divide ``n_projections``).
    Sorts with XLA (never the host sort, which deadlocks sharded collectives).

    Args:
      params: the GMM.
      x: ``[n, d]`` data.
      key: PRNG key, split into the directions' and the levels' keys.
      mesh: a 1-D mesh, e.g. :func:`make_projection_mesh`.
      n_projections, p, n_levels, quantile_iters: as in :func:`swgmm_jax.sliced_loss`.

    Returns:
      Scalar estimate of ``SW_p^p``, replicated.
    """
    dtype = jnp.result_type(x, params.means)
    k_dir, k_lev = jax.random.split(key)
    theta = random_directions(k_dir, n_projections, x.shape[-1], dtype)
    levels = None if n_levels is None else stratified_levels(k_lev, (n_projections,), n_levels, dtype)
    return sharded_mean_cost(params, x, theta, levels, mesh, p=p, quantile_iters=quantile_iters)


_sharded_loss_jit = jax.jit(
    sharded_sliced_loss, static_argnames=("mesh", "n_projections", "p", "n_levels", "quantile_iters")
)


def sharded_sliced_wasserstein(
    params: GMMParams,
    x: jax.typing.ArrayLike,
    key: jax.Array,
    mesh: Mesh | None = None,
    *,
    n_projections: int = 128,
    p: float = 2.0,
    n_levels: int | None = None,
    quantile_iters: int = 24,
) -> jax.Array:
    """Validated, jitted :func:`sharded_sliced_loss` (cf. :func:`swgmm_jax.sliced_wasserstein`).

    ``mesh=None`` uses :func:`make_projection_mesh` over all devices.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = sw.sample(params, jax.random.key(0), 2000)
      >>> a = sw.sharded_sliced_wasserstein(params, x, jax.random.key(1), n_projections=10)
      >>> b = sw.sliced_wasserstein(params, x, jax.random.key(1), n_projections=10)
      >>> bool(jnp.allclose(a, b, rtol=1e-5))
      True
    """
    _validation.check_key(key)
    x = _validation.check_data(x, "x")
    _validation.check_positive_int(n_projections, "n_projections")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p}")
    if n_levels is not None:
        _validation.check_positive_int(n_levels, "n_levels")
    if x.shape[1] != params.means.shape[-1]:
        raise ValueError(f"x has dimension {x.shape[1]} but params have dimension {params.means.shape[-1]}")
    mesh = make_projection_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError("mesh must be a 1-D jax.sharding.Mesh")
    return _sharded_loss_jit(
        params, x, key, mesh, n_projections=n_projections, p=float(p), n_levels=n_levels,
        quantile_iters=quantile_iters,
    )


def map_restarts(fit_one, keys, x, init, mesh: Mesh):
    """``vmap(fit_one)(keys, x, init)`` with the restart axis sharded over ``mesh``.

    Call inside ``jit``. Each device fits ``ceil(R / D)`` restarts on its own,
    without communication; when ``D`` does not divide ``R`` the keys (and
    ``init``) are padded with copies of the first ones, and those extra fits are
    dropped. The result is gathered to every device (replicated), so that each
    process of a multi-process run can read all restarts.

    Args:
      fit_one: ``(key, x, init) -> pytree`` for one restart.
      keys: ``[R]`` PRNG keys.
      x: data, replicated.
      init: ``None`` or a pytree with leading ``[R]`` axes.
      mesh: 1-D mesh.
    """
    (axis,) = mesh.axis_names
    r = keys.shape[0]
    rp = _padded_size(r, mesh)
    idx = jnp.arange(rp) % r
    keys = keys[idx]
    init = None if init is None else jax.tree.map(lambda a: a[idx], init)
    in_axes = (0, None, None if init is None else 0)
    init_spec = None if init is None else P(axis)

    # No collectives in the body, so the varying/invariant type checks are off:
    # the fit's scan starts from freshly created (invariant) optimiser state.
    @functools.partial(
        jax.shard_map, mesh=mesh, in_specs=(P(axis), P(), init_spec), out_specs=P(axis), check_vma=False
    )
    def body(keys, x, init):
        return jax.vmap(fit_one, in_axes)(keys, x, init)

    out = body(keys, x, init)
    replicated = NamedSharding(mesh, P())
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a[:r], replicated), out)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_count: int | None = None,
    cpu_collectives: str | None = "gloo",
    initialization_timeout: int = 300,
) -> None:
    """Join a multi-process run: ``jax.distributed.initialize`` from arguments or env vars.

    Missing arguments are read from ``SWGMM_COORDINATOR`` (``host:port``),
    ``SWGMM_NUM_PROCESSES`` and ``SWGMM_PROCESS_ID``; when those are unset too,
    JAX's own cluster detection runs (SLURM, Open MPI, cloud TPU, ...). Call it
    once per process, before any other JAX call; afterwards ``jax.devices()``
    lists every process's devices and :func:`make_projection_mesh` (hence
    ``fit(..., mesh="auto")``) spans all of them.

    Args:
      coordinator_address: ``host:port`` of process 0's coordinator service.
      num_processes: number of processes.
      process_id: this process's id in ``[0, num_processes)``.
      local_device_count: on the CPU backend, the number of CPU devices this
        process exposes (``jax_num_cpu_devices``); ignored if ``None``.
      cpu_collectives: CPU collectives implementation (``"gloo"``; ``"mpi"``
        needs an MPI library); ``None`` leaves JAX's setting alone.
      initialization_timeout: seconds to wait for all processes to connect.
    """
    env = os.environ
    if coordinator_address is None:
        coordinator_address = env.get("SWGMM_COORDINATOR")
    if num_processes is None and "SWGMM_NUM_PROCESSES" in env:
        num_processes = int(env["SWGMM_NUM_PROCESSES"])
    if process_id is None and "SWGMM_PROCESS_ID" in env:
        process_id = int(env["SWGMM_PROCESS_ID"])
    if local_device_count is not None:
        jax.config.update("jax_num_cpu_devices", int(local_device_count))
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=initialization_timeout,
    )
