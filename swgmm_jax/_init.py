"""Data statistics and random initialisations shared by the SW fit, EM and the moves."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from swgmm_jax._config import INIT_METHODS, InitConfig
from swgmm_jax._params import GMMParams, check_params, moments_to_params
from swgmm_jax._validation import check_choice, check_data, check_key, check_positive_int, check_real

__all__ = ["initialize", "init_params", "centre", "standardizer", "data_covariance", "check_fit_args"]


KMEANS_ITERS = 100
"""Most Lloyd iterations of the ``"kmeans"`` initialisation (it stops earlier once no centre moves)."""


def centre(x: jax.Array) -> jax.Array:
    """``[d]`` mean of ``x[n, d]``, taken around the first point.

    Float32 data at a large offset keeps its digits (the mean of ``x - x[0]`` is small).
    """
    shift = x[0]
    return shift + jnp.mean(x - shift[None, :], axis=0)


def standardizer(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centre ``c[d]`` and global scale ``s[]`` with ``(x - c) / s`` of unit RMS.

    The centre is :func:`centre`; ``s = 1`` when all points coincide.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> c, s = sw.standardizer(jnp.array([[1.0, 1.0], [3.0, 3.0]]))
      >>> c.tolist(), float(s)
      ([2.0, 2.0], 1.0)
    """
    c = centre(x)
    s = jnp.sqrt(jnp.mean((x - c[None, :]) ** 2))
    return c, jnp.where(s > 0, s, jnp.ones_like(s))


def data_covariance(x: jax.Array) -> jax.Array:
    """``[d, d]`` covariance of ``x[n, d]`` (normalised by ``n``)."""
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    return xc.T @ xc / x.shape[0]


def _random_from_data(key, x, n_components, cov_scale, reg_covar):
    n, d = x.shape
    idx = jax.random.choice(key, n, (n_components,), replace=False)
    means = x[idx]
    cov = cov_scale * data_covariance(x) + reg_covar * jnp.eye(d, dtype=x.dtype)
    covs = jnp.broadcast_to(cov, (n_components, d, d))
    weights = jnp.full((n_components,), 1.0 / n_components, x.dtype)
    return weights, means, covs


def _kmeans_pp(key, x, n_components, reg_covar, lloyd_iters=0):
    """k-means++ seeding (D^2 sampling), ``lloyd_iters`` Lloyd iterations, then one hard-assignment M-step."""
    n, d = x.shape
    keys = jax.random.split(key, n_components)
    first = x[jax.random.randint(keys[0], (), 0, n)]
    centres = jnp.zeros((n_components, d), x.dtype).at[0].set(first)
    d2 = jnp.sum((x - first[None, :]) ** 2, axis=1)

    def body(i, carry):
        centres, d2 = carry
        # All points on the chosen centres (degenerate data): pick uniformly.
        logits = jnp.where(jnp.sum(d2) > 0, jnp.log(d2), 0.0)
        c = x[jax.random.categorical(keys[i], logits)]
        return centres.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c[None, :]) ** 2, axis=1))

    centres, _ = jax.lax.fori_loop(1, n_components, body, (centres, d2))
    x_sq = jnp.sum(x * x, axis=1, keepdims=True)

    def assign(centres):
        # |x - c|^2 without the [n, K, d] difference tensor; the argmin needs no |x|^2 but keep it
        # so that the values are distances.
        sq = x_sq - 2.0 * x @ centres.T + jnp.sum(centres * centres, axis=1)[None, :]
        resp = jax.nn.one_hot(jnp.argmin(sq, axis=1), n_components, dtype=x.dtype)
        nk = jnp.sum(resp, axis=0)
        means = jnp.where(nk[:, None] > 0, resp.T @ x / jnp.maximum(nk, 1.0)[:, None], centres)
        return resp, nk, means

    def lloyd(carry):
        it, centres, _ = carry
        new = assign(centres)[2]
        return it + 1, new, jnp.any(new != centres)

    _, centres, _ = jax.lax.while_loop(
        lambda c: (c[0] < lloyd_iters) & c[2], lloyd, (jnp.int32(0), centres, jnp.bool_(True))
    )
    resp, nk, means = assign(centres)
    safe = jnp.maximum(nk, 1.0)
    diff = x[None] - means[:, None]  # [K, n, d]
    covs = jnp.einsum("kn,kni,knj->kij", resp.T, diff, diff) / safe[:, None, None]
    covs = covs + reg_covar * jnp.eye(d, dtype=x.dtype)[None]
    weights = (nk + 1.0) / (n + n_components)  # no empty component gets weight 0
    return weights, means, covs


@functools.partial(jax.jit, static_argnames=("n_components",))
def init_params(key: jax.Array, x: jax.Array, n_components: int, init: InitConfig, reg_covar) -> GMMParams:
    """:func:`initialize` without argument checks (jitted; for use inside the package)."""
    if init.method == "random_from_data":
        w, m, c = _random_from_data(key, x, n_components, init.cov_scale, reg_covar)
    else:
        lloyd_iters = KMEANS_ITERS if init.method == "kmeans" else 0
        w, m, c = _kmeans_pp(key, x, n_components, reg_covar, lloyd_iters)
    return moments_to_params(w, m, c, jnp.asarray(reg_covar, x.dtype))


def initialize(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    *,
    method: str = "random_from_data",
    cov_scale: float = 0.1,
    reg_covar: float = 1e-6,
) -> GMMParams:
    """Random initial parameters from the data.

    Args:
      key: PRNG key.
      x: ``[n, d]`` data.
      n_components: ``K``.
      method: ``"random_from_data"``: means at ``K`` distinct random points,
        covariances ``cov_scale`` x the data covariance (+ ``reg_covar``),
        weights ``1/K`` (the paper's random initialisation); ``"kmeans++"``:
        k-means++ seeds, then weights, means and covariances of the points
        nearest to each seed; ``"kmeans"``: k-means++ seeds, then Lloyd's
        iterations until no centre moves (at most 100), then the same moments
        of the final clusters (scikit-learn's default initialisation).
      cov_scale: see ``method``.
      reg_covar: covariance floor, in the units of ``x``.

    Returns:
      ``GMMParams`` in the units of ``x``. Vmap over keys for many restarts.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (100, 3))
      >>> sw.initialize(jax.random.key(1), x, 4).means.shape
      (4, 3)
    """
    x, k, _ = check_fit_args(key, x, n_components, None)
    check_choice(method, "method", INIT_METHODS)
    check_real(cov_scale, "cov_scale", low=0.0, low_open=True)
    check_real(reg_covar, "reg_covar", low=0.0)
    return init_params(key, x, k, InitConfig(method, cov_scale), reg_covar)


def check_fit_args(
    key: Any, x: Any, n_components: Any, init: Any, batch_dims: tuple[int, ...] = ()
) -> tuple[jax.Array, int, GMMParams | None]:
    """Validate the arguments every fit takes; returns ``(x, K, init)`` as arrays of ``x``'s dtype."""
    check_key(key)
    k = check_positive_int(n_components, "n_components")
    x = check_data(x, "x")
    if x.shape[0] < k:
        raise ValueError(f"x has {x.shape[0]} points, fewer than n_components={k}")
    if init is not None:
        init = check_params(init, "init", n_components=k, dim=x.shape[1], batch_dims=batch_dims)
        init = jax.tree.map(lambda a: jnp.asarray(a, x.dtype), init)
    return x, k, init
