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
smallest eigenvalue). Formed as a matrix (:func:`to_moments`), ``L L^T + reg I``
is rounded by up to about ``(d + 1) eps (|L|_F^2 + reg)``, which in float32 exceeds any
small floor once ``|L|`` is large (a component stretched to a far outlier:
eigenvalues of -1e4 were seen); :func:`to_moments` therefore adds that
rounding bound to the floor, so that the matrix it returns keeps every
eigenvalue >= ``reg_covar`` in the dtype it is stored in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from swgmm_jax._validation import (
    as_real_array,
    check_data,
    check_dim,
    check_finite,
    check_key,
    check_positive_int,
    check_real,
    check_sample_weight,
)

__all__ = [
    "GMMParams",
    "from_moments",
    "to_moments",
    "component_log_prob",
    "log_prob_from_moments",
    "log_likelihood",
    "score_samples",
    "n_parameters",
    "bic",
    "aic",
    "predict_proba",
    "predict",
    "sample",
    "moments_to_params",
    "rescale_params",
    "check_params",
    "collapsed_components",
    "point_log_likelihood",
    "responsibilities",
    "hard_labels",
    "batch_shape",
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
      weights: ``[K]`` non-negative weights, not all zero (renormalised to sum to 1).
      means: ``[K, d]``.
      covariances: ``[K, d, d]`` symmetric matrices (to within ``sqrt(eps)`` of
        their largest entry) whose smallest eigenvalue is at least
        ``reg_covar``; smaller eigenvalues are raised to the floor.
      reg_covar: the covariance floor the parameters keep, >= 0.

    Raises ValueError/TypeError naming the argument for wrong shapes, non-real
    dtypes and (on concrete inputs) NaN/inf, negative or all-zero weights and
    non-symmetric covariances. Half-precision inputs are computed in float32.

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
    w: Any = as_real_array(weights, "weights")
    m: Any = as_real_array(means, "means")
    c: Any = as_real_array(covariances, "covariances")
    if m.ndim != 2:
        raise ValueError(f"means must have shape [K, d], got {m.shape}")
    k, d = m.shape
    if w.shape != (k,):
        raise ValueError(f"weights must have shape [{k}], got {w.shape}")
    if c.shape != (k, d, d):
        raise ValueError(f"covariances must have shape [{k}, {d}, {d}], got {c.shape}")
    check_real(reg_covar, "reg_covar", low=0.0)
    for value, name in ((w, "weights"), (m, "means"), (c, "covariances")):
        check_finite(value, name)
    if isinstance(w, np.ndarray):
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0, got {w.tolist()}")
        if not np.any(w > 0):
            raise ValueError("weights must not all be zero")
    if isinstance(c, np.ndarray):
        c64 = c.astype(np.float64)
        asym = np.max(np.abs(c64 - np.swapaxes(c64, -1, -2)), axis=(-2, -1))
        tol = np.sqrt(np.finfo(c.dtype).eps) * np.max(np.abs(c64), axis=(-2, -1))
        if np.any(asym > tol):
            bad = int(np.argmax(asym > tol))
            raise ValueError(f"covariances must be symmetric: covariances[{bad}] differs from its transpose")
    m = jnp.asarray(m)
    dtype = jnp.result_type(m, float)
    return moments_to_params(
        jnp.asarray(w, dtype), m.astype(dtype), jnp.asarray(c, dtype), jnp.asarray(reg_covar, dtype)
    )


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

    The covariances are ``L_k L_k^T + (reg_covar + r_k) I`` (leading batch axes
    are kept), where ``r_k = (d + 1) eps (|L_k|_F^2 + reg_covar)`` bounds the
    rounding error of forming ``L_k L_k^T + reg_covar I`` in the parameters'
    dtype: the returned matrices have smallest eigenvalue >= ``reg_covar`` as
    stored, also in float32 for components whose scale dwarfs the floor
    (``r_k`` is a few ulps of the largest entry, so it changes nothing else).

    Args:
      params: ``GMMParams``, possibly batched.

    Returns:
      ``(weights, means, covariances)``.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> L = jnp.stack([2.0 * jnp.eye(2), jnp.array([[1.0, 0.0], [1.0, 1.0]])])
      >>> params = sw.GMMParams(jnp.zeros(2), jnp.zeros((2, 2)), L, jnp.asarray(0.5))
      >>> w, m, c = sw.to_moments(params)
      >>> w.tolist(), c.round(4).tolist()  # L L^T + 0.5 I, to float32 rounding
      ([0.5, 0.5], [[[4.5, 0.0], [0.0, 4.5]], [[1.5, 1.0], [1.0, 2.5]]])
    """
    tril = _tril(params.scale_tril)
    d = params.means.shape[-1]
    reg = jnp.asarray(params.reg_covar)[..., None, None, None]
    eye = jnp.eye(d, dtype=tril.dtype).reshape((1,) * (reg.ndim - 2) + (d, d))
    # The rounding bound of forming L L^T + reg I in this dtype (see the module docstring).
    rounding = (d + 1) * jnp.finfo(tril.dtype).eps * (jnp.sum(tril * tril, axis=(-2, -1)) + reg[..., 0, 0])
    cov = tril @ jnp.swapaxes(tril, -1, -2) + (reg + rounding[..., None, None]) * eye
    return params.weights, params.means, cov


COLLAPSE_FACTOR = 10.0
"""A component is *collapsed* when its covariance has an eigenvalue below this
many times the floor ``reg_covar``: its own spread in some direction is lost
in the floor (e.g. a component on a few duplicated points), where the
likelihood is unbounded as the floor goes to 0."""


def collapsed_components(params: GMMParams) -> jax.Array:
    """``[..., K]`` whether each component is collapsed (see :data:`COLLAPSE_FACTOR`).

    Tested on the factor: the smallest eigenvalue of ``L L^T`` is the square
    of ``L``'s smallest singular value, free of the rounding of forming the
    matrix.
    """
    sigma = jnp.linalg.svd(_tril(params.scale_tril), compute_uv=False)
    floor = jnp.asarray(params.reg_covar)[..., None]
    return sigma[..., -1] ** 2 < (COLLAPSE_FACTOR - 1.0) * floor


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
    values: bool = True,
) -> GMMParams:
    """Return ``params`` checked and as arrays of one float dtype, or raise a ValueError/TypeError.

    ``params`` must be :class:`GMMParams` with ``means[*batch_dims, K, d]``,
    ``logits[*batch_dims, K]``, ``scale_tril[*batch_dims, K, d, d]`` and
    ``reg_covar[*batch_dims]`` (``K`` and ``d`` checked against ``n_components``
    and ``dim`` when given), real-valued leaves (half precision computed in
    float32); on concrete leaves, finite values (the lower triangle of
    ``scale_tril``) and ``reg_covar >= 0`` (unless ``values=False``). Errors
    name ``name.field``.
    """
    if not isinstance(params, GMMParams):
        raise TypeError(
            f"{name} must be GMMParams (e.g. from swgmm_jax.from_moments), got {type(params).__name__}"
        )
    leaves = {field: as_real_array(getattr(params, field), f"{name}.{field}") for field in GMMParams._fields}
    shape = tuple(leaves["means"].shape)
    b = tuple(batch_dims)
    if len(shape) != len(b) + 2 or shape[: len(b)] != b:
        raise ValueError(f"{name}.means must have shape {[*b, 'K', 'd']}, got {list(shape)}")
    want = (
        *b,
        shape[-2] if n_components is None else n_components,
        shape[-1] if dim is None else dim,
    )
    if shape != want:
        raise ValueError(f"{name}.means must have shape {list(want)}, got {list(shape)}")
    k, d = shape[-2:]
    shapes = {"logits": (*b, k), "scale_tril": (*b, k, d, d), "reg_covar": b}
    for field, expected in shapes.items():
        if tuple(leaves[field].shape) != expected:
            raise ValueError(
                f"{name}.{field} must have shape {list(expected)} (K={k}, d={d}), "
                f"got {list(leaves[field].shape)}"
            )
    if values:
        for field, value in leaves.items():
            # Entries above the diagonal of scale_tril are ignored, whatever they hold.
            check_finite(
                np.tril(value) if field == "scale_tril" and isinstance(value, np.ndarray) else value,
                f"{name}.{field}",
            )
        reg = leaves["reg_covar"]
        if isinstance(reg, np.ndarray) and np.any(reg < 0):
            raise ValueError(f"{name}.reg_covar must be >= 0, got {reg.tolist()}")

    dtype = jnp.asarray(leaves["means"]).dtype  # canonical: float32 unless x64 is on
    return GMMParams(**{field: jnp.asarray(v, dtype) for field, v in leaves.items()})


# Jitted once per shape: called eagerly, the density functions ran op by op (an
# eigendecomposition and a log-sum-exp each dispatched and compiled on its own).
@jax.jit
def point_log_likelihood(params: GMMParams, x: jax.Array) -> jax.Array:
    """``[n]`` log-density of each point."""
    return logsumexp(component_log_prob(params, x), axis=1)


@jax.jit
def responsibilities(params: GMMParams, x: jax.Array) -> jax.Array:
    """:func:`predict_proba` without argument checks (jitted; for use inside the package)."""
    return jax.nn.softmax(component_log_prob(params, x), axis=1)


@jax.jit
def hard_labels(params: GMMParams, x: jax.Array) -> jax.Array:
    """:func:`predict` without argument checks (jitted; for use inside the package)."""
    return jnp.argmax(component_log_prob(params, x), axis=1)


def batch_shape(params: Any, name: str = "params") -> tuple[int, ...]:
    """The leading batch axes of ``params`` (``()`` for one GMM), or raise a TypeError/ValueError.

    Read from ``means[*batch, K, d]``; the other leaves are checked against it
    by :func:`check_params`.
    """
    if not isinstance(params, GMMParams):
        raise TypeError(
            f"{name} must be GMMParams (e.g. from swgmm_jax.from_moments), got {type(params).__name__}"
        )
    shape = tuple(jnp.shape(params.means))
    if len(shape) < 2:
        raise ValueError(f"{name}.means must have shape [..., K, d] (rank >= 2), got {list(shape)}")
    return shape[:-2]


@functools.cache
def _vmapped(fn: Callable, in_axes: Any) -> Callable:
    # Cached: a jit of a fresh vmap on every call would trace and compile again each time.
    return jax.jit(jax.vmap(fn, in_axes))


def _map_batch(fn: Callable, batch: tuple[int, ...], params: GMMParams, *args: Any) -> jax.Array:
    """``fn(params, *args)`` for each set of parameters in the leading ``batch`` axes (``args`` shared).

    The batch axes are flattened into one, so that any number of them costs one
    ``vmap`` (nested vmaps compiled much slower: 4.8 s against 2.6 s for the
    sampler over two axes).
    """
    if not batch:
        return fn(params, *args)
    flat = jax.tree.map(lambda a: a.reshape((-1, *a.shape[len(batch) :])), params)
    out = _vmapped(fn, (0,) + (None,) * len(args))(flat, *args)
    return out.reshape((*batch, *out.shape[1:]))


def _check_inputs(params: Any, x: Any) -> tuple[GMMParams, jax.Array, tuple[int, ...]]:
    batch = batch_shape(params)
    params = check_params(params, batch_dims=batch)
    x = check_data(x, "x")
    check_dim(x, params.means.shape[-1])
    return params, x.astype(jnp.result_type(x, params.means.dtype, float)), batch


def log_likelihood(
    params: GMMParams, x: jax.typing.ArrayLike, *, sample_weight: jax.typing.ArrayLike | None = None
) -> jax.Array:
    """Mean log-likelihood per point of ``x[n, d]`` (log-sum-exp over components).

    Parameters with leading batch axes (e.g. the ``[R, K, d]`` means of
    :func:`swgmm_jax.fit_restarts`' result) give results with those leading
    axes (one per set of parameters, ``x`` shared).

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.
      sample_weight: ``None`` or ``[n]`` weights of the points (>= 0, not all
        0): the weighted mean ``sum_n w_n log p(x_n) / sum_n w_n``.

    Returns:
      ``[*B]`` (a scalar for one GMM): ``mean_n log sum_k w_k N(x_n | mu_k, Sigma_k)``.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
      >>> round(float(sw.log_likelihood(params, x)), 4)  # -log(2 pi) - (0 + 1/2) / 2
      -2.0879
      >>> three = jax.tree.map(lambda a: jnp.stack([a] * 3), params)  # a batch of 3
      >>> sw.log_likelihood(three, x).shape
      (3,)
      >>> round(float(sw.log_likelihood(params, x, sample_weight=jnp.array([3.0, 1.0]))), 4)  # (0 + 1/2) / 4
      -1.9629
    """
    params, x, batch = _check_inputs(params, x)
    # From the per-point kernel, shared with score_samples, bic and aic (one compilation for all).
    ll = _map_batch(point_log_likelihood, batch, params, x)
    if sample_weight is None:
        return jnp.mean(ll, axis=-1)
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    assert w is not None  # sample_weight is not None
    return ll @ w / jnp.sum(w)


def score_samples(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n]`` log-density of each point of ``x[n, d]`` (scikit-learn's ``score_samples``).

    Parameters with leading batch axes give ``[*B, n]``.

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.

    Returns:
      ``[*B, n]``: ``log sum_k w_k N(x_n | mu_k, Sigma_k)``; their mean is
      :func:`log_likelihood`.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> [round(float(v), 4) for v in sw.score_samples(params, jnp.array([[0.0, 0.0], [1.0, 0.0]]))]
      [-1.8379, -2.3379]
    """
    params, x, batch = _check_inputs(params, x)
    return _map_batch(point_log_likelihood, batch, params, x)


def n_parameters(params: GMMParams) -> int:
    """Number of free parameters of the mixture (full covariances), as scikit-learn counts them.

    ``K d (d + 1) / 2`` covariance entries, ``K d`` mean entries and ``K - 1``
    weights; the floor ``reg_covar`` is not fitted, so not counted. For batched
    parameters, the count of one set (all share ``K`` and ``d``).

    Args:
      params: the GMM, possibly batched.

    Returns:
      The count, a Python ``int``.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(3), jnp.zeros((3, 2)), jnp.stack([jnp.eye(2)] * 3))
      >>> sw.n_parameters(params)  # 3 * 3 + 3 * 2 + 2
      17
    """
    params = check_params(params, batch_dims=batch_shape(params), values=False)
    return _free_parameters(*params.means.shape[-2:])


def _free_parameters(k: int, d: int) -> int:
    return int(k * d * (d + 1) // 2 + k * d + k - 1)


def _criterion(params: Any, x: Any, penalty_per_parameter: Callable[[int], float]) -> jax.Array:
    params, x, batch = _check_inputs(params, x)
    penalty = _free_parameters(*params.means.shape[-2:]) * penalty_per_parameter(x.shape[0])
    total = jnp.sum(_map_batch(point_log_likelihood, batch, params, x), axis=-1)
    return -2.0 * total + jnp.asarray(penalty, total.dtype)


def bic(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """Bayesian information criterion on ``x[n, d]`` (lower is better), scikit-learn's definition.

    ``-2 sum_n log p(x_n) + n_parameters(params) log n``. Parameters with
    leading batch axes give ``[*B]``.

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.

    Returns:
      ``[*B]`` (a scalar for one GMM).

    Examples:
      >>> import jax.numpy as jnp, numpy as np, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
      >>> bool(np.isclose(sw.bic(params, x), -6 * sw.log_likelihood(params, x) + 5 * np.log(3)))
      True
    """
    return _criterion(params, x, lambda n: float(np.log(n)))


def aic(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """Akaike information criterion on ``x[n, d]`` (lower is better), scikit-learn's definition.

    ``-2 sum_n log p(x_n) + 2 n_parameters(params)``. Parameters with leading
    batch axes give ``[*B]``.

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.

    Returns:
      ``[*B]`` (a scalar for one GMM).

    Examples:
      >>> import jax.numpy as jnp, numpy as np, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(1), jnp.zeros((1, 2)), jnp.eye(2)[None])
      >>> x = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
      >>> bool(np.isclose(sw.aic(params, x), -6 * sw.log_likelihood(params, x) + 2 * 5))
      True
    """
    return _criterion(params, x, lambda n: 2.0)


def predict_proba(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n, K]`` posterior responsibilities of each component for each point.

    Parameters with leading batch axes give ``[*B, n, K]``.

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.

    Returns:
      ``[*B, n, K]`` probabilities; each row sums to 1.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> proba = sw.predict_proba(params, jnp.array([[0.0, 0.0], [1.5, 0.0]]))
      >>> proba.sum(axis=1).round(6).tolist(), proba[1].round(6).tolist()  # [1.5, 0] is halfway
      ([1.0, 1.0], [0.5, 0.5])
    """
    params, x, batch = _check_inputs(params, x)
    return _map_batch(responsibilities, batch, params, x)


def predict(params: GMMParams, x: jax.typing.ArrayLike) -> jax.Array:
    """``[n]`` index of the most responsible component for each point.

    Parameters with leading batch axes give ``[*B, n]``.

    Args:
      params: the GMM, possibly batched (``means[*B, K, d]``).
      x: ``[n, d]`` points.

    Returns:
      ``[*B, n]`` integer component indices (the argmax of :func:`predict_proba`).

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [3.0, 0.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> sw.predict(params, jnp.array([[-1.0, 0.0], [1.0, 0.5], [4.0, 0.0]])).tolist()
      [0, 0, 1]
    """
    params, x, batch = _check_inputs(params, x)
    return _map_batch(hard_labels, batch, params, x)


def _draw(key: jax.Array, params: GMMParams, n: int) -> jax.Array:
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, params.logits, shape=(n,))
    _, means, cov = to_moments(params)
    chol = jnp.linalg.cholesky(cov)
    eps = jax.random.normal(k_noise, (n, means.shape[-1]), means.dtype)
    return means[comp] + jnp.einsum("nij,nj->ni", chol[comp], eps)


_draw_jit = jax.jit(_draw, static_argnames="n")


@functools.cache
def _vmapped_draw(n: int) -> Callable:
    return jax.jit(jax.vmap(functools.partial(_draw, n=n)))


def sample(key: jax.Array, params: GMMParams, n: int) -> jax.Array:
    """Draw ``[n, d]`` samples from the mixture.

    Parameters with leading batch axes ``B`` give ``[*B, n, d]``: the set of
    parameters at batch index ``b`` draws with key ``jax.random.split(key, B)[b]``
    (independent draws, each equal to ``sample(keys[b], params[b], n)``).

    Args:
      key: PRNG key.
      params: the GMM, possibly batched (``means[*B, K, d]``).
      n: number of samples, >= 0.

    Returns:
      ``[*B, n, d]`` samples, of the parameters' dtype.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> means = jnp.array([[0.0, 0.0], [5.0, 5.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> sw.sample(jax.random.key(0), params, 100).shape
      (100, 2)
      >>> three = jax.tree.map(lambda a: jnp.stack([a] * 3), params)
      >>> sw.sample(jax.random.key(0), three, 100).shape
      (3, 100, 2)
    """
    check_key(key)
    batch = batch_shape(params)
    params = check_params(params, batch_dims=batch)
    n = check_positive_int(n, "n", minimum=0)
    if not batch:
        return _draw_jit(key, params, n=int(n))
    keys = jax.random.split(key, batch)
    flat_keys = keys.reshape((-1, *keys.shape[len(batch) :]))
    flat = jax.tree.map(lambda a: a.reshape((-1, *a.shape[len(batch) :])), params)
    out = _vmapped_draw(int(n))(flat_keys, flat)
    return out.reshape((*batch, *out.shape[1:]))
