"""The sliced p-Wasserstein loss between a GMM and an empirical distribution.

``SW_p^p(gmm, data) = E_theta[ W_p^p(theta#gmm, theta#data) ]`` with ``theta``
uniform on the sphere (paper, eqs. 7 and 13), estimated by Monte Carlo over
``n_projections`` directions and, on each slice, by the quantile transport of
:mod:`swgmm_jax._transport1d`.

One loss path: :func:`sliced_loss` draws the directions and the levels from
its key, then either computes every slice's cost (:func:`slice_costs`) or,
given a mesh, splits the slices across the devices, each of which runs
:func:`slice_costs` on its share inside ``jax.shard_map`` (the mean is a
``psum`` of per-device partial sums). The directions and levels are drawn
*outside* the ``shard_map`` and passed in sharded, so a sharded loss equals
the unsharded one up to float summation order, and so does its gradient with
respect to the (replicated) parameters. When the mesh size ``D`` does not
divide ``L``, the directions are padded with copies of the first one whose
costs get weight 0.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from swgmm_jax._mesh import check_mesh_sort, pad_rows, padded_size, resolve_mesh
from swgmm_jax._params import GMMParams, check_params
from swgmm_jax._projections import project_data, project_gmm, random_directions
from swgmm_jax._sort import SORT_METHODS, sort_slices, sort_with_weights
from swgmm_jax._transport1d import QUANTILE_ITERS, midpoint_levels, stratified_levels, transport_cost
from swgmm_jax._validation import (
    check_choice,
    check_data,
    check_dim,
    check_key,
    check_positive_int,
    check_real,
    check_sample_weight,
)

__all__ = ["sliced_wasserstein", "sliced_loss", "slice_costs", "sort_slices"]


Levels = tuple[jax.Array, jax.Array]


def slice_costs(
    params: GMMParams,
    x: jax.Array,
    theta: jax.Array,
    levels: Levels | None,
    *,
    p: float = 2.0,
    quantile_iters: int = QUANTILE_ITERS,
    sort: str = "auto",
    sample_weight: jax.Array | None = None,
) -> jax.Array:
    """``[L]`` per-slice ``W_p^p`` estimates along the given directions ``theta[L, d]``.

    The unit of work that sharding splits across devices: each device takes a
    share of the rows of ``theta`` (and of the levels).

    Args:
      params: the GMM.
      x: ``[n, d]`` data.
      theta: ``[L, d]`` unit directions.
      levels: ``(z, 1 - z)``, each ``[L, M]`` (e.g. :func:`swgmm_jax.stratified_levels`),
        or ``None`` for the ``n`` midpoint levels on every slice.
      p: transport exponent.
      quantile_iters: iterations of the mixture quantile solver.
      sort: see :func:`sort_slices`.
      sample_weight: ``None`` (equal weights) or ``[n]`` weights of the
        points, >= 0 and not all 0 (not checked here; scale-free). The data
        side of each slice is then the weighted empirical quantile function,
        a step of height ``w_(i) / sum(w)`` at each sorted projection. With
        stratified ``levels``, integer weights give exactly the cost of the
        data with each point repeated ``w_i`` times (the same levels pick the
        same values). With ``levels=None`` each point gets one level, the
        centre of its interval of levels ``(W_{i-1}, W_i] / W``, and its cost
        counts by the interval's width: the midpoint rule on intervals of
        unequal width. Repeating a point ``c`` times instead puts ``c`` levels
        evenly across that interval: both are midpoint rules for the same
        exact integral, equal when all weights are equal, and a zero weight
        equals dropping the point exactly under either levels.

    Returns:
      ``[L]`` costs.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = sw.sample(jax.random.key(0), params, 500)
      >>> theta = sw.random_directions(jax.random.key(1), 4, 2)
      >>> jax.jit(sw.slice_costs)(params, x, theta, None).shape
      (4,)
    """
    dtype = jnp.result_type(x, params.means)
    if sample_weight is not None:
        y_sorted, w_sorted = sort_with_weights(project_data(theta, x), sample_weight, sort)
        log_w, means, scales = project_gmm(theta, params)
        return transport_cost(
            y_sorted,
            log_w[None, :],
            means,
            scales,
            levels,
            p=p,
            quantile_iters=quantile_iters,
            weights=w_sorted,
            sort=sort,
        )
    y_sorted = sort_slices(project_data(theta, x), sort)
    log_w, means, scales = project_gmm(theta, params)
    if levels is None:
        levels = midpoint_levels(x.shape[0], dtype)
    return transport_cost(
        y_sorted, log_w[None, :], means, scales, levels, p=p, quantile_iters=quantile_iters, sort=sort
    )


def _sharded_mean_cost(
    params, x, theta, levels, mesh: Mesh, *, p: float, quantile_iters: int, sample_weight=None
) -> jax.Array:
    """Mean over ``theta[L, d]`` of :func:`slice_costs`, slices sharded over a 1-D ``mesh``."""
    (axis,) = mesh.axis_names
    n_proj = theta.shape[0]
    lp = padded_size(n_proj, mesh)
    dtype = jnp.result_type(x, params.means)
    # Weights and padding are made here, outside the body, and passed in
    # sharded: a value created inside shard_map counts as replicated.
    weights = jnp.where(jnp.arange(lp) < n_proj, 1.0 / n_proj, 0.0).astype(dtype)
    theta = pad_rows(theta, lp)
    if levels is not None:
        levels = (pad_rows(levels[0], lp), pad_rows(levels[1], lp))
    sharded, replicated = PartitionSpec(axis), PartitionSpec()
    lev_spec = None if levels is None else (sharded, sharded)

    @functools.partial(
        jax.shard_map,
        mesh=mesh,
        in_specs=(
            replicated,
            replicated,
            sharded,
            lev_spec,
            sharded,
            None if sample_weight is None else replicated,
        ),
        out_specs=replicated,
    )
    def body(params, x, theta, levels, weights, sample_weight):
        costs = slice_costs(
            params,
            x,
            theta,
            levels,
            p=p,
            quantile_iters=quantile_iters,
            sort="xla",
            sample_weight=sample_weight,
        )
        return jax.lax.psum(jnp.sum(weights * costs), axis)

    return body(params, x, theta, levels, weights, sample_weight)


def sliced_loss(
    key: jax.Array,
    params: GMMParams,
    x: jax.Array,
    *,
    n_projections: int,
    p: float = 2.0,
    n_levels: int | None = None,
    quantile_iters: int = QUANTILE_ITERS,
    sort: str = "auto",
    mesh: Mesh | None = None,
    sample_weight: jax.Array | None = None,
) -> jax.Array:
    """Pure, jit/vmap/grad-able Monte-Carlo estimate of ``SW_p^p``; see :func:`sliced_wasserstein`.

    ``key`` is split into the directions' key and the levels' key. ``mesh`` is
    ``None`` (unsharded) or a resolved 1-D mesh (:func:`swgmm_jax.make_projection_mesh`):
    the slices are then split across its devices and sorted with XLA.

    Args:
      key: PRNG key of the directions and levels.
      params: the GMM.
      x: ``[n, d]`` data (not checked).
      n_projections: number of directions ``L``.
      p: transport exponent, >= 1.
      n_levels: ``None`` for all ``n`` midpoint levels, or ``M`` stratified levels per slice.
      quantile_iters: iterations of the mixture quantile solver.
      sort: see :func:`sort_slices` (unused on a mesh).
      mesh: ``None`` or a 1-D ``jax.sharding.Mesh`` (not ``"auto"``).
      sample_weight: ``None`` or ``[n]`` weights of the points (not checked);
        see :func:`slice_costs`.

    Returns:
      Scalar estimate of ``SW_p^p`` in the units of ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = sw.sample(jax.random.key(0), params, 500)
      >>> loss_fn = jax.jit(jax.value_and_grad(
      ...     lambda p: sw.sliced_loss(jax.random.key(1), p, x, n_projections=8, n_levels=32)))
      >>> loss, grads = loss_fn(params)
      >>> grads.means.shape
      (1, 2)
    """
    dtype = jnp.result_type(x, params.means)
    k_dir, k_lev = jax.random.split(key)
    theta = random_directions(k_dir, n_projections, x.shape[-1], dtype)
    levels = None if n_levels is None else stratified_levels(k_lev, (n_projections,), n_levels, dtype)
    if mesh is not None:
        return _sharded_mean_cost(
            params, x, theta, levels, mesh, p=p, quantile_iters=quantile_iters, sample_weight=sample_weight
        )
    costs = slice_costs(
        params, x, theta, levels, p=p, quantile_iters=quantile_iters, sort=sort, sample_weight=sample_weight
    )
    return jnp.mean(costs)


def check_loss_args(
    *, n_projections: Any, p: Any, n_levels: Any, quantile_iters: Any, sort: Any, mesh: Any
) -> Mesh | None:
    """Validate the estimator's settings (as :class:`swgmm_jax.SlicingConfig` does); resolve ``mesh``."""
    check_positive_int(n_projections, "n_projections")
    check_real(p, "p", low=1.0)
    if n_levels is not None:
        check_positive_int(n_levels, "n_levels")
    check_positive_int(quantile_iters, "quantile_iters")
    check_choice(sort, "sort", SORT_METHODS)
    resolved = resolve_mesh(mesh)
    check_mesh_sort(resolved, sort)
    return resolved


_sliced_loss_jit = jax.jit(
    sliced_loss, static_argnames=("n_projections", "p", "n_levels", "quantile_iters", "sort", "mesh")
)
_sliced_loss_jit.__doc__ = None  # the wrapper would carry sliced_loss's doctest a second time


def sliced_wasserstein(
    key: jax.Array,
    params: GMMParams,
    x: jax.typing.ArrayLike,
    *,
    n_projections: int = 128,
    p: float = 2.0,
    n_levels: int | None = None,
    quantile_iters: int = QUANTILE_ITERS,
    sort: str = "auto",
    mesh: Any = None,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Monte-Carlo estimate of the sliced Wasserstein distance **to the power p**.

    ``SW_p^p = (1/L) sum_l int_0^1 |Q_gmm,l(z) - Q_data,l(z)|^p dz`` over ``L``
    directions drawn uniformly on the sphere from ``key``. Take the ``p``-th root
    for the distance itself.

    Args:
      key: PRNG key for the directions (and levels): the same key gives the
        same directions, so different GMMs are compared on equal terms.
      params: the GMM.
      x: ``[n, d]`` data.
      n_projections: number of directions ``L``.
      p: transport exponent, >= 1.
      n_levels: ``None`` integrates over all ``n`` data levels (midpoint rule,
        deterministic given the directions, cost ``O(n K)`` per slice); an
        integer ``M`` draws one level per stratum ``((j-1)/M, j/M]``: an unbiased
        estimate of the exact integral at cost ``O(M K)`` per slice.
      quantile_iters: iterations of the mixture quantile solver.
      sort: ``"auto"``, ``"xla"`` or ``"host"``; see :func:`sort_slices`.
      mesh: ``None`` (unsharded, the default), ``"auto"`` or a 1-D
        ``jax.sharding.Mesh``: the slices are split across its devices (see
        :func:`swgmm_jax.make_projection_mesh`); the result equals the
        unsharded one to float rounding.
      sample_weight: ``None`` (equal weights) or ``[n]`` weights of the
        points, >= 0, not all 0; only their ratios matter. The data side is
        the weighted empirical distribution (see :func:`slice_costs`): with
        ``n_levels`` set, integer weights give exactly the estimate for the
        data with each point repeated ``w_i`` times, on the same key.

    Returns:
      Scalar estimate of ``SW_p^p`` in the units of ``x`` (to the power ``p``).

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = sw.sample(jax.random.key(0), params, 2000)
      >>> float(sw.sliced_wasserstein(jax.random.key(1), params, x)) < 0.01
      True

      Integer weights count as repeated points:

      >>> w = jnp.arange(2000) % 3  # weights 0, 1, 2, ...
      >>> rep = jnp.repeat(x, w, axis=0, total_repeat_length=int(w.sum()))
      >>> key = jax.random.key(2)
      >>> a = sw.sliced_wasserstein(key, params, x, n_levels=64, sample_weight=w)
      >>> bool(jnp.allclose(a, sw.sliced_wasserstein(key, params, rep, n_levels=64)))
      True
    """
    check_key(key)
    params = check_params(params)
    x = check_data(x, "x")
    check_dim(x, params.means.shape[-1])
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    mesh = check_loss_args(
        n_projections=n_projections,
        p=p,
        n_levels=n_levels,
        quantile_iters=quantile_iters,
        sort=sort,
        mesh=mesh,
    )
    return _sliced_loss_jit(
        key,
        params,
        x,
        n_projections=n_projections,
        p=float(p),
        n_levels=n_levels,
        quantile_iters=quantile_iters,
        sort=sort,
        mesh=mesh,
        sample_weight=w,
    )
