"""GMM parameters as a pytree, and the density-side functions of a GMM.

A :class:`GMMParams` stores an *unconstrained* parametrisation, so that any
gradient step on its leaves yields a valid mixture:

* ``logits[K]``: weights are ``softmax(logits)``, hence >= 0 and summing to 1;
* ``means[K, d]``;
* ``scale_tril[K, d, d]``: lower-triangular factors ``L_k`` (upper part ignored);
* ``reg_covar[]``: the covariance floor.

The covariances are ``Sigma_k = L_k L_k^T + reg_covar * I``: symmetric positive
definite with smallest eigenvalue >= ``reg_covar`` whatever ``L_k`` is (an
additive floor: a floor on the Cholesky diagonal alone does not bound the
smallest eigenvalue).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

__all__ = [
    "GMMParams",
    "from_moments",
    "to_moments",
    "component_log_prob",
    "log_prob_from_moments",
    "log_likelihood",
    "predict_proba",
    "predict",
    "sample",
]


class GMMParams(NamedTuple):
    """Unconstrained parameters of a K-component Gaussian mixture in ``d`` dimensions.

    A ``NamedTuple``, hence a pytree: it passes through ``jit``, ``vmap``,
    ``optax`` and ``lax.scan`` unchanged. Batched parameters (e.g. one set per
    restart) carry a leading axis on every leaf.

    Attributes:
      logits: ``[K]`` unnormalised log-weights.
      means: ``[K, d]`` component means.
      scale_tril: ``[K, d, d]`` lower-triangular factors (entries above the
        diagonal are ignored).
      reg_covar: ``[]`` covariance floor added to ``L L^T``.
    """

    logits: jax.Array
    means: jax.Array
    scale_tril: jax.Array
    reg_covar: jax.Array

    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    @property
    def weights(self) -> jax.Array:
        """``[K]`` mixture weights."""
        return jax.nn.softmax(self.logits, axis=-1)

    @property
    def log_weights(self) -> jax.Array:
        """``[K]`` log mixture weights (normalised)."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def covariances(self) -> jax.Array:
        """``[K, d, d]`` covariance matrices."""
        return to_moments(self)[2]


def _tril(scale_tril: jax.Array) -> jax.Array:
    return jnp.tril(scale_tril)


def _psd_factor(sym: jax.Array) -> jax.Array:
    """Lower-triangular ``L`` with ``L L^T = sym`` for a symmetric PSD ``[d, d]``.

    Robust to singular input (a plain Cholesky returns NaN there): eigenvalues
    are clipped at 0, the square-root factor ``B = V sqrt(lam)`` is
    re-triangularised by a QR decomposition of ``B^T`` (``B B^T = R^T R``).
    """
    lam, vec = jnp.linalg.eigh(sym)
    b = vec * jnp.sqrt(jnp.clip(lam, 0.0))
    r = jnp.linalg.qr(b.T, mode="r")
    return r.T


def from_moments(
    weights: jax.typing.ArrayLike,
    means: jax.typing.ArrayLike,
    covariances: jax.typing.ArrayLike,
    reg_covar: float = 1e-6,
) -> GMMParams:
    """Build :class:`GMMParams` from weights, means and covariances.

    Args:
      weights: ``[K]`` non-negative weights (renormalised to sum to 1).
      means: ``[K, d]``.
      covariances: ``[K, d, d]`` symmetric matrices whose smallest eigenvalue is
        at least ``reg_covar``; smaller eigenvalues are raised to the floor.
      reg_covar: the covariance floor the parameters keep.

    Returns:
      ``GMMParams`` with ``to_moments(from_moments(w, m, C)) == (w, m, C)`` to
      float tolerance.
    """
    means = jnp.asarray(means)
    dtype = jnp.result_type(means, float)
    weights = jnp.asarray(weights, dtype)
    means = means.astype(dtype)
    covariances = jnp.asarray(covariances, dtype)
    if means.ndim != 2:
        raise ValueError(f"means must have shape [K, d], got {means.shape}")
    k, d = means.shape
    if weights.shape != (k,):
        raise ValueError(f"weights must have shape [{k}], got {weights.shape}")
    if covariances.shape != (k, d, d):
        raise ValueError(f"covariances must have shape [{k}, {d}, {d}], got {covariances.shape}")
    if not reg_covar >= 0:
        raise ValueError(f"reg_covar must be >= 0, got {reg_covar}")
    return _from_moments(weights, means, covariances, jnp.asarray(reg_covar, dtype))


@jax.jit
def _from_moments(weights, means, covariances, reg_covar):
    d = means.shape[-1]
    # Tiny floor keeps log finite for a zero weight; softmax undoes the log.
    logits = jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).tiny))
    logits = logits - jnp.max(logits)
    sym = 0.5 * (covariances + jnp.swapaxes(covariances, -1, -2))
    shifted = sym - reg_covar * jnp.eye(d, dtype=sym.dtype)
    scale_tril = jax.vmap(_psd_factor)(shifted)
    return GMMParams(logits, means, scale_tril, reg_covar)


def to_moments(params: GMMParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Return ``(weights[K], means[K, d], covariances[K, d, d])``."""
    tril = _tril(params.scale_tril)
    d = params.means.shape[-1]
    eye = jnp.eye(d, dtype=tril.dtype)
    reg = jnp.asarray(params.reg_covar)[..., None, None, None]
    cov = tril @ jnp.swapaxes(tril, -1, -2) + reg * eye
    return params.weights, params.means, cov


def component_log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    """``[n, K]`` matrix of ``log w_k + log N(x_n | mu_k, Sigma_k)``."""
    _, means, cov = to_moments(params)
    return log_prob_from_moments(x, params.log_weights, means, cov)


def log_prob_from_moments(x, log_weights, means, covariances) -> jax.Array:
    """``[n, K]`` joint log-densities from moments (shared with the EM E-step).

    Through an eigendecomposition rather than a Cholesky factor: a covariance
    whose condition number exceeds ``1/eps`` (a component collapsed on a few
    points, in float32) can be indefinite after rounding, where a Cholesky
    factor is NaN. Eigenvalues are floored at ``10 eps`` times the largest, which
    changes nothing for any covariance that is numerically positive definite.
    """
    d = means.shape[-1]
    lam, vec = jnp.linalg.eigh(0.5 * (covariances + jnp.swapaxes(covariances, -1, -2)))
    eps = jnp.finfo(lam.dtype).eps
    lam = jnp.maximum(lam, 10 * eps * jnp.max(jnp.abs(lam), axis=-1, keepdims=True))
    lam = jnp.maximum(lam, jnp.finfo(lam.dtype).tiny)

    def one(mu, v, l):
        proj = (x - mu) @ v  # [n, d]
        maha = jnp.sum(proj * proj / l, axis=1)
        return -0.5 * (maha + jnp.sum(jnp.log(l)) + d * jnp.log(2.0 * jnp.pi))

    return jax.vmap(one, out_axes=1)(means, vec, lam) + log_weights


def _check_dim(params: GMMParams, x) -> jax.Array:
    from swgmm_jax._validation import check_data

    x = check_data(x, "x")
    if x.shape[1] != params.means.shape[-1]:
        raise ValueError(
            f"x has dimension {x.shape[1]} but params have dimension {params.means.shape[-1]}"
        )
    return x.astype(jnp.result_type(x, params.means.dtype, float))


def log_likelihood(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """Mean log-likelihood per point of ``x[n, d]`` (log-sum-exp over components)."""
    x = _check_dim(params, x)
    return jnp.mean(logsumexp(component_log_prob(params, x), axis=1))


def predict_proba(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n, K]`` posterior responsibilities of each component for each point."""
    x = _check_dim(params, x)
    return jax.nn.softmax(component_log_prob(params, x), axis=1)


def predict(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n]`` index of the most responsible component for each point."""
    x = _check_dim(params, x)
    return jnp.argmax(component_log_prob(params, x), axis=1)


def sample(params: GMMParams, key: jax.Array, n: int) -> jax.Array:
    """Draw ``[n, d]`` samples from the mixture."""
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, params.logits, shape=(int(n),))
    _, means, cov = to_moments(params)
    chol = jnp.linalg.cholesky(cov)
    eps = jax.random.normal(k_noise, (int(n), means.shape[-1]), means.dtype)
    return means[comp] + jnp.einsum("nij,nj->ni", chol[comp], eps)
