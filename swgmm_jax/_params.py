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

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from swgmm_jax._validation import check_data, check_dim, check_key, check_positive_int

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
    "moments_to_params",
    "rescale_params",
    "check_params",
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

    Examples:
      Build one from moments (:func:`from_moments`); the leaves are a pytree:

      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.array([1.0, 3.0]), means, jnp.stack([jnp.eye(2)] * 2))
      >>> params.n_components, params.dim, params.weights.round(6).tolist()
      (2, 2, [0.25, 0.75])
      >>> jax.tree.map(jnp.shape, params)
      GMMParams(logits=(2,), means=(2, 2), scale_tril=(2, 2, 2), reg_covar=())
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
    b = vec * jnp.sqrt(jnp.clip(lam, 0.0))[None, :]
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

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> w, m = jnp.array([2.0, 6.0]), jnp.array([[0.0, 0.0], [3.0, 1.0]])
      >>> c = jnp.stack([jnp.eye(2), jnp.array([[2.0, 0.5], [0.5, 1.0]])])
      >>> w2, m2, c2 = sw.to_moments(sw.from_moments(w, m, c))
      >>> w2.round(6).tolist(), bool(jnp.allclose(m2, m)), bool(jnp.allclose(c2, c, atol=1e-5))
      ([0.25, 0.75], True, True)
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
    return moments_to_params(weights, means, covariances, jnp.asarray(reg_covar, dtype))


@jax.jit
def moments_to_params(weights, means, covariances, reg_covar) -> GMMParams:
    """:func:`from_moments` without argument checks (jitted; for use inside the package)."""
    d = means.shape[-1]
    # Tiny floor keeps log finite for a zero weight; softmax undoes the log.
    logits = jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).tiny))
    logits = logits - jnp.max(logits)
    sym = 0.5 * (covariances + jnp.swapaxes(covariances, -1, -2))
    shifted = sym - reg_covar * jnp.eye(d, dtype=sym.dtype)[None]
    scale_tril = jax.vmap(_psd_factor)(shifted)
    return GMMParams(logits, means, scale_tril, reg_covar)


def to_moments(params: GMMParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Return ``(weights[K], means[K, d], covariances[K, d, d])``.

    The covariances are ``L_k L_k^T + reg_covar * I`` (leading batch axes are kept).

    Args:
      params: ``GMMParams``, possibly batched.

    Returns:
      ``(weights, means, covariances)``.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> L = jnp.stack([2.0 * jnp.eye(2), jnp.array([[1.0, 0.0], [1.0, 1.0]])])
      >>> params = sw.GMMParams(jnp.zeros(2), jnp.zeros((2, 2)), L, jnp.asarray(0.5))
      >>> w, m, c = sw.to_moments(params)
      >>> w.tolist(), c.tolist()  # L L^T + 0.5 I
      ([0.5, 0.5], [[[4.5, 0.0], [0.0, 4.5]], [[1.5, 1.0], [1.0, 2.5]]])
    """
    tril = _tril(params.scale_tril)
    d = params.means.shape[-1]
    reg = jnp.asarray(params.reg_covar)[..., None, None, None]
    eye = jnp.eye(d, dtype=tril.dtype).reshape((1,) * (reg.ndim - 2) + (d, d))
    cov = tril @ jnp.swapaxes(tril, -1, -2) + reg * eye
    return params.weights, params.means, cov


def rescale_params(params: GMMParams, centre: Any, scale: Any) -> GMMParams:
    """Parameters of ``scale * X + centre`` for ``X`` distributed as ``params``.

    ``scale`` is a scalar (an isotropic scale keeps the parametrisation exact:
    the factors scale by ``scale``, the floor by ``scale**2``).
    """
    return GMMParams(
        params.logits,
        jnp.expand_dims(centre, -2) + scale * params.means,
        scale * params.scale_tril,
        scale * scale * params.reg_covar,
    )


def component_log_prob(params: GMMParams, x: jax.Array) -> jax.Array:
    """``[n, K]`` matrix of ``log w_k + log N(x_n | mu_k, Sigma_k)``.

    Args:
      params: the GMM.
      x: ``[n, d]`` points (not checked: see :func:`log_likelihood` for a checked entry point).

    Returns:
      ``[n, K]`` joint log-densities of each point and component.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> lp = sw.component_log_prob(params, jnp.zeros((1, 2)))
      >>> lp.shape, round(float(lp[0, 0]), 4)  # log(1/2) - log(2 pi)
      ((1, 2), -2.531)
    """
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
        proj = (x - mu[None, :]) @ v  # [n, d]
        maha = jnp.sum(proj * proj / l[None, :], axis=1)
        return -0.5 * (maha + jnp.sum(jnp.log(l)) + d * jnp.log(2.0 * jnp.pi))

    return jax.vmap(one, out_axes=1)(means, vec, lam) + log_weights[None, :]


def check_params(
    params: Any,
    name: str = "params",
    *,
    n_components: int | None = None,
    dim: int | None = None,
    batch_dims: tuple[int, ...] = (),
) -> GMMParams:
    """Check that ``params`` is :class:`GMMParams` with means ``[*batch_dims, K, d]``.

    ``K`` and ``d`` are checked against ``n_components`` and ``dim`` when given.
    """
    if not isinstance(params, GMMParams):
        raise TypeError(f"{name} must be GMMParams, got {type(params).__name__}")
    shape = tuple(params.means.shape)
    if len(shape) != len(batch_dims) + 2 or shape[: len(batch_dims)] != tuple(batch_dims):
        raise ValueError(f"{name}.means must have shape {[*batch_dims, 'K', 'd']}, got {list(shape)}")
    want = (
        *batch_dims,
        shape[-2] if n_components is None else n_components,
        shape[-1] if dim is None else dim,
    )
    if shape != want:
        raise ValueError(f"{name}.means must have shape {list(want)}, got {list(shape)}")
    return params


# Jitted once per shape: called eagerly, the density functions ran op by op (an
# eigendecomposition and a log-sum-exp each dispatched and compiled on its own).
@jax.jit
def _mean_log_likelihood(params: GMMParams, x: jax.Array) -> jax.Array:
    return jnp.mean(logsumexp(component_log_prob(params, x), axis=1))


@jax.jit
def _responsibilities(params: GMMParams, x: jax.Array) -> jax.Array:
    return jax.nn.softmax(component_log_prob(params, x), axis=1)


@jax.jit
def _labels(params: GMMParams, x: jax.Array) -> jax.Array:
    return jnp.argmax(component_log_prob(params, x), axis=1)


def _check_dim(params: GMMParams, x) -> jax.Array:
    x = check_data(x, "x")
    check_dim(x, params.means.shape[-1])
    return x.astype(jnp.result_type(x, params.means.dtype, float))


def log_likelihood(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """Mean log-likelihood per point of ``x[n, d]`` (log-sum-exp over components).

    Args:
      params: the GMM.
      x: ``[n, d]`` points.

    Returns:
      Scalar ``mean_n log sum_k w_k N(x_n | mu_k, Sigma_k)``.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
      >>> round(float(sw.log_likelihood(params, x)), 4)  # -log(2 pi) - (0 + 1/2) / 2
      -2.0879
    """
    x = _check_dim(params, x)
    return _mean_log_likelihood(params, x)


def predict_proba(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n, K]`` posterior responsibilities of each component for each point.

    Args:
      params: the GMM.
      x: ``[n, d]`` points.

    Returns:
      ``[n, K]`` probabilities; each row sums to 1.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> proba = sw.predict_proba(params, jnp.array([[0.0, 0.0], [1.5, 0.0]]))
      >>> proba.sum(axis=1).round(6).tolist(), proba[1].round(6).tolist()  # [1.5, 0] is halfway
      ([1.0, 1.0], [0.5, 0.5])
    """
    x = _check_dim(params, x)
    return _responsibilities(params, x)


def predict(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n]`` index of the most responsible component for each point.

    Args:
      params: the GMM.
      x: ``[n, d]`` points.

    Returns:
      ``[n]`` integer component indices (the argmax of :func:`predict_proba`).

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> sw.predict(params, jnp.array([[-1.0, 0.0], [1.0, 0.5], [4.0, 0.0]])).tolist()
      [0, 0, 1]
    """
    x = _check_dim(params, x)
    return _labels(params, x)


def sample(key: jax.Array, params: GMMParams, n: int) -> jax.Array:
    """Draw ``[n, d]`` samples from the mixture.

    Args:
      key: PRNG key.
      params: the GMM.
      n: number of samples, >= 0.

    Returns:
      ``[n, d]`` samples, of the parameters' dtype.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [5.0, 5.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> sw.sample(jax.random.key(0), params, 100).shape
      (100, 2)
    """
    check_key(key)
    n = check_positive_int(n, "n", minimum=0)
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, params.logits, shape=(int(n),))
    _, means, cov = to_moments(params)
    chol = jnp.linalg.cholesky(cov)
    eps = jax.random.normal(k_noise, (int(n), means.shape[-1]), means.dtype)
    return means[comp] + jnp.einsum("nij,nj->ni", chol[comp], eps)
