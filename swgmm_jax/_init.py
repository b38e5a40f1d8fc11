"""Random initialisations shared by the SW fit and by EM."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from swgmm_jax import _validation
from swgmm_jax._config import INIT_METHODS
from swgmm_jax._params import GMMParams, _from_moments

__all__ = ["initialize"]


def _data_covariance(x):
    xc = x - jnp.mean(x, axis=0)
    return xc.T @ xc / x.shape[0]


def _random_from_data(key, x, n_components, cov_scale, reg_covar):
    n, d = x.shape
    idx = jax.random.choice(key, n, (n_components,), replace=False)
    means = x[idx]
    cov = cov_scale * _data_covariance(x) + reg_covar * jnp.eye(d, dtype=x.dtype)
    covs = jnp.broadcast_to(cov, (n_components, d, d))
    weights = jnp.full((n_components,), 1.0 / n_components, x.dtype)
    return weights, means, covs


def _kmeans_pp(key, x, n_components, reg_covar):
    """k-means++ seeding (D^2 sampling), then one hard-assignment M-step."""
    n, d = x.shape
    keys = jax.random.split(key, n_components)
    first = x[jax.random.randint(keys[0], (), 0, n)]
    centres = jnp.zeros((n_components, d), x.dtype).at[0].set(first)
    d2 = jnp.sum((x - first) ** 2, axis=1)

    def body(i, carry):
        centres, d2 = carry
        # All points on the chosen centres (degenerate data): pick uniformly.
        logits = jnp.where(jnp.sum(d2) > 0, jnp.log(d2), 0.0)
        c = x[jax.random.categorical(keys[i], logits)]
        return centres.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c) ** 2, axis=1))

    centres, _ = jax.lax.fori_loop(1, n_components, body, (centres, d2))
    sq = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
    resp = jax.nn.one_hot(jnp.argmin(sq, axis=1), n_components, dtype=x.dtype)
    nk = jnp.sum(resp, axis=0)
    safe = jnp.maximum(nk, 1.0)
    means = jnp.where(nk[:, None] > 0, resp.T @ x / safe[:, None], centres)
    diff = x[None] - means[:, None]  # [K, n, d]
    covs = jnp.einsum("kn,kni,knj->kij", resp.T, diff, diff) / safe[:, None, None]
    covs = covs + reg_covar * jnp.eye(d, dtype=x.dtype)
    weights = (nk + 1.0) / (n + n_components)  # no empty component gets weight 0
    return weights, means, covs


@functools.partial(jax.jit, static_argnames=("n_components", "method"))
def _initialize(key, x, n_components, method, cov_scale, reg_covar):
    if method == "random_from_data":
        w, m, c = _random_from_data(key, x, n_components, cov_scale, reg_covar)
    else:
        w, m, c = _kmeans_pp(key, x, n_components, reg_covar)
    return _from_moments(w, m, c, jnp.asarray(reg_covar, x.dtype))


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
        nearest to each seed.
      cov_scale: see ``method``.
      reg_covar: covariance floor, in the units of ``x``.

    Returns:
      ``GMMParams`` in the units of ``x``. Vmap over keys for many restarts.
    """
    x = _validation.check_data(x, "x")
    k = _validation.check_positive_int(n_components, "n_components")
    if x.shape[0] < k:
        raise ValueError(f"x has {x.shape[0]} points, fewer than n_components={k}")
    if method not in INIT_METHODS:
        raise ValueError(f"method must be one of {INIT_METHODS}, got {method!r}")
    return _initialize(key, x, k, method, cov_scale, reg_covar)
