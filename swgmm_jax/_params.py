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

The other covariance types of scikit-learn have their own pytrees with the same
leaves but the scale (:class:`DiagGMMParams`, :class:`SphericalGMMParams`,
:class:`TiedGMMParams`; see :mod:`swgmm_jax._covariances`); every function here
takes any of the four.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from swgmm_jax._covariances import (
    COVARIANCE_TYPES,
    check_covariance_type,
    covariance_from_scale,
    covariance_shape,
    draw_noise,
    log_prob,
    n_covariance_parameters,
    scale_from_covariance,
    scale_shape,
    smallest_scale_eigenvalue,
)
from swgmm_jax._covariances import full_covariances as expand_covariances
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
    "COVARIANCE_TYPES",
    "GMMParams",
    "DiagGMMParams",
    "SphericalGMMParams",
    "TiedGMMParams",
    "PARAMS_TYPES",
    "AnyGMMParams",
    "params_class",
    "covariance_type_of",
    "full_covariances",
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
    def covariance_type(self) -> str:
        """``"full"`` (not a leaf)."""
        return "full"

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


class DiagGMMParams(NamedTuple):
    """Parameters of a mixture with diagonal covariances (scikit-learn's ``"diag"``).

    ``Sigma_k = diag(scale_diag_k^2) + reg_covar I``: no ``d x d`` matrix is
    ever formed, so a fit's step costs ``O(L K d)`` per step after the
    projection of the data (for embeddings and features in hundreds of
    dimensions).

    Attributes:
      logits: ``[K]`` unnormalised log-weights.
      means: ``[K, d]``.
      scale_diag: ``[K, d]`` standard deviations above the floor (the sign is ignored).
      reg_covar: ``[]`` covariance floor.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 3)), jnp.ones((2, 3)),
      ...                          covariance_type="diag")
      >>> type(params).__name__, params.covariance_type, params.covariances.shape
      ('DiagGMMParams', 'diag', (2, 3))
    """

    logits: jax.Array
    means: jax.Array
    scale_diag: jax.Array
    reg_covar: jax.Array

    @property
    def covariance_type(self) -> str:
        """``"diag"`` (not a leaf)."""
        return "diag"

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
        """``[K, d]`` variances (scikit-learn's ``covariances_`` for ``"diag"``)."""
        return to_moments(self)[2]


class SphericalGMMParams(NamedTuple):
    """Parameters of a mixture with one variance per component (scikit-learn's ``"spherical"``).

    ``Sigma_k = (scale_k^2 + reg_covar) I``.

    Attributes:
      logits: ``[K]`` unnormalised log-weights.
      means: ``[K, d]``.
      scale: ``[K]`` standard deviations above the floor (the sign is ignored).
      reg_covar: ``[]`` covariance floor.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 3)), jnp.array([1.0, 4.0]),
      ...                          covariance_type="spherical")
      >>> params.covariances.round(4).tolist()
      [1.0, 4.0]
    """

    logits: jax.Array
    means: jax.Array
    scale: jax.Array
    reg_covar: jax.Array

    @property
    def covariance_type(self) -> str:
        """``"spherical"`` (not a leaf)."""
        return "spherical"

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
        """``[K]`` variances (scikit-learn's ``covariances_`` for ``"spherical"``)."""
        return to_moments(self)[2]


class TiedGMMParams(NamedTuple):
    """Parameters of a mixture whose components share one covariance (scikit-learn's ``"tied"``).

    ``Sigma = L L^T + reg_covar I`` for every component.

    Attributes:
      logits: ``[K]`` unnormalised log-weights.
      means: ``[K, d]``.
      scale_tril: ``[d, d]`` lower-triangular factor (entries above the diagonal are ignored).
      reg_covar: ``[]`` covariance floor.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 2)), 2.0 * jnp.eye(2),
      ...                          covariance_type="tied")
      >>> params.covariances.shape, params.scale_tril.shape
      ((2, 2), (2, 2))
    """

    logits: jax.Array
    means: jax.Array
    scale_tril: jax.Array
    reg_covar: jax.Array

    @property
    def covariance_type(self) -> str:
        """``"tied"`` (not a leaf)."""
        return "tied"

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
        """``[d, d]`` shared covariance (scikit-learn's ``covariances_`` for ``"tied"``)."""
        return to_moments(self)[2]


AnyGMMParams = GMMParams | DiagGMMParams | SphericalGMMParams | TiedGMMParams
"""Any of the four parameter pytrees."""

PARAMS_TYPES: dict[str, Any] = {
    "full": GMMParams,
    "diag": DiagGMMParams,
    "spherical": SphericalGMMParams,
    "tied": TiedGMMParams,
}
"""The parameter pytree of each covariance type."""

_PARAMS_CLASSES = tuple(PARAMS_TYPES.values())
_TYPE_OF = {cls: name for name, cls in PARAMS_TYPES.items()}


def params_class(covariance_type: str) -> Any:
    """The parameter pytree class of a covariance type (one of :data:`COVARIANCE_TYPES`)."""
    return PARAMS_TYPES[check_covariance_type(covariance_type)]


def covariance_type_of(params: Any) -> str:
    """The covariance type of a parameter pytree (``"full"`` for :class:`GMMParams`)."""
    return _TYPE_OF[type(params)]


def _scale(params: Any) -> jax.Array:
    """The scale leaf (``scale_tril``, ``scale_diag`` or ``scale``)."""
    return params[2]


def _with(params: Any, logits: Any, means: Any, scale: Any, reg_covar: Any) -> Any:
    return type(params)(logits, means, scale, reg_covar)


def from_moments(
    weights: jax.typing.ArrayLike,
    means: jax.typing.ArrayLike,
    covariances: jax.typing.ArrayLike,
    reg_covar: float = 1e-6,
    *,
    covariance_type: str = "full",
) -> Any:
    """Build parameters from weights, means and covariances.

    Args:
      weights: ``[K]`` non-negative weights, not all zero (renormalised to sum to 1).
      means: ``[K, d]``.
      covariances: in scikit-learn's shape for ``covariance_type``: ``[K, d, d]``
        symmetric matrices (to within ``sqrt(eps)`` of their largest entry)
        for ``"full"``, one ``[d, d]`` matrix for ``"tied"``, ``[K, d]``
        variances for ``"diag"``, ``[K]`` for ``"spherical"``. Eigenvalues
        (variances) below ``reg_covar`` are raised to the floor.
      reg_covar: the covariance floor the parameters keep, >= 0.
      covariance_type: ``"full"`` (:class:`GMMParams`), ``"diag"``
        (:class:`DiagGMMParams`), ``"spherical"`` (:class:`SphericalGMMParams`)
        or ``"tied"`` (:class:`TiedGMMParams`).

    Raises ValueError/TypeError naming the argument for wrong shapes, non-real
    dtypes and (on concrete inputs) NaN/inf, negative or all-zero weights and
    non-symmetric covariances. Half-precision inputs are computed in float32.

    Returns:
      The type's parameters, with ``to_moments(from_moments(w, m, C)) == (w, m, C)``
      to float tolerance.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> w, m = jnp.array([2.0, 6.0]), jnp.array([[0.0, 0.0], [3.0, 1.0]])
      >>> c = jnp.stack([jnp.eye(2), jnp.array([[2.0, 0.5], [0.5, 1.0]])])
      >>> w2, m2, c2 = sw.to_moments(sw.from_moments(w, m, c))
      >>> w2.round(6).tolist(), bool(jnp.allclose(m2, m)), bool(jnp.allclose(c2, c, atol=1e-5))
      ([0.25, 0.75], True, True)
    """
    covariance_type = check_covariance_type(covariance_type)
    w: Any = as_real_array(weights, "weights")
    m: Any = as_real_array(means, "means")
    c: Any = as_real_array(covariances, "covariances")
    if m.ndim != 2:
        raise ValueError(f"means must have shape [K, d], got {m.shape}")
    k, d = m.shape
    if w.shape != (k,):
        raise ValueError(f"weights must have shape [{k}], got {w.shape}")
    want = covariance_shape(covariance_type, k, d)
    if c.shape != want:
        raise ValueError(
            f"covariances must have shape {list(want)} for covariance_type={covariance_type!r}, "
            f"got {list(c.shape)}"
        )
    check_real(reg_covar, "reg_covar", low=0.0)
    for value, name in ((w, "weights"), (m, "means"), (c, "covariances")):
        check_finite(value, name)
    if isinstance(w, np.ndarray):
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0, got {w.tolist()}")
        if not np.any(w > 0):
            raise ValueError("weights must not all be zero")
    if isinstance(c, np.ndarray) and covariance_type in ("diag", "spherical") and np.any(c < 0):
        raise ValueError("covariances must be >= 0 (variances)")
    if isinstance(c, np.ndarray) and covariance_type in ("full", "tied"):
        c64 = c.astype(np.float64)
        asym = np.max(np.abs(c64 - np.swapaxes(c64, -1, -2)), axis=(-2, -1))
        tol = np.sqrt(np.finfo(c.dtype).eps) * np.max(np.abs(c64), axis=(-2, -1))
        if np.any(asym > tol):
            bad = np.unravel_index(int(np.argmax(asym > tol)), asym.shape) if asym.ndim else ()
            where = f"covariances[{bad[0]}]" if len(bad) else "covariances"
            raise ValueError(f"covariances must be symmetric: {where} differs from its transpose")
    m = jnp.asarray(m)
    dtype = jnp.result_type(m, float)
    return moments_to_params(
        jnp.asarray(w, dtype),
        m.astype(dtype),
        jnp.asarray(c, dtype),
        jnp.asarray(reg_covar, dtype),
        covariance_type=covariance_type,
    )


@functools.partial(jax.jit, static_argnames="covariance_type")
def moments_to_params(weights, means, covariances, reg_covar, covariance_type: str = "full") -> Any:
    """:func:`from_moments` without argument checks (jitted; for use inside the package)."""
    # Tiny floor keeps log finite for a zero weight; softmax undoes the log.
    logits = jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).tiny))
    logits = logits - jnp.max(logits)
    scale = scale_from_covariance(covariances, reg_covar, covariance_type)
    return PARAMS_TYPES[covariance_type](logits, means, scale, reg_covar)


def full_covariances(params: Any) -> jax.Array:
    """``[..., K, d, d]`` covariance matrices of any covariance type (e.g. for plotting).

    Forms ``d x d`` matrices: for the diagonal and spherical types in high
    dimensions prefer :func:`to_moments`, which returns their variances.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 2)), jnp.array([[1.0, 4.0], [2.0, 2.0]]),
      ...                          covariance_type="diag")
      >>> sw.full_covariances(params).round(4).tolist()
      [[[1.0, 0.0], [0.0, 4.0]], [[2.0, 0.0], [0.0, 2.0]]]
    """
    ct = covariance_type_of(params)
    k, d = params.means.shape[-2:]
    return expand_covariances(to_moments(params)[2], ct, k, d)


def to_moments(params: AnyGMMParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Return ``(weights[K], means[K, d], covariances)``, the covariances in scikit-learn's shape.

    ``[K, d, d]`` for :class:`GMMParams`, ``[d, d]`` for ``"tied"``, ``[K, d]``
    for ``"diag"`` and ``[K]`` for ``"spherical"`` (``s^2 + reg_covar``).

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
    cov = covariance_from_scale(_scale(params), params.reg_covar, covariance_type_of(params))
    return params.weights, params.means, cov


COLLAPSE_FACTOR = 10.0
"""A component is *collapsed* when its covariance has an eigenvalue below this
many times the floor ``reg_covar``: its own spread in some direction is lost
in the floor (e.g. a component on a few duplicated points), where the
likelihood is unbounded as the floor goes to 0."""


def collapsed_components(params: AnyGMMParams) -> jax.Array:
    """``[..., K]`` whether each component is collapsed (see :data:`COLLAPSE_FACTOR`).

    Tested on the factor: the smallest eigenvalue of ``L L^T`` is the square
    of ``L``'s smallest singular value (the smallest ``s^2`` for the diagonal
    types), free of the rounding of forming the matrix. A tied covariance
    collapses for all components at once.
    """
    k = params.means.shape[-2]
    smallest = smallest_scale_eigenvalue(_scale(params), covariance_type_of(params), k)
    floor = jnp.asarray(params.reg_covar)[..., None]
    return smallest < (COLLAPSE_FACTOR - 1.0) * floor


def rescale_params(params: Any, centre: Any, scale: Any) -> Any:
    """Parameters of ``scale * X + centre`` for ``X`` distributed as ``params`` (any covariance type).

    ``scale`` is a scalar (an isotropic scale keeps the parametrisation exact:
    the scale leaf scales by ``scale``, the floor by ``scale**2``).
    """
    return _with(
        params,
        params.logits,
        jnp.expand_dims(centre, -2) + scale * params.means,
        scale * _scale(params),
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
    return log_prob(x, params.log_weights, means, cov, covariance_type_of(params))


def log_prob_from_moments(x, log_weights, means, covariances, covariance_type: str = "full") -> jax.Array:
    """``[n, K]`` joint log-densities from moments (shared with the EM E-step; see
    :func:`swgmm_jax._covariances.log_prob`)."""
    return log_prob(x, log_weights, means, covariances, covariance_type)


def check_params(
    params: Any,
    name: str = "params",
    *,
    n_components: int | None = None,
    dim: int | None = None,
    batch_dims: tuple[int, ...] = (),
    values: bool = True,
) -> Any:
    """Return ``params`` checked and as arrays of one float dtype, or raise a ValueError/TypeError.

    ``params`` must be one of the parameter pytrees (:data:`PARAMS_TYPES`)
    with ``means[*batch_dims, K, d]``, ``logits[*batch_dims, K]``, the scale
    leaf in its type's shape after the batch axes (``scale_tril[K, d, d]``,
    ``scale_diag[K, d]``, ``scale[K]`` or tied ``scale_tril[d, d]``) and
    ``reg_covar[*batch_dims]`` (``K`` and ``d`` checked against ``n_components``
    and ``dim`` when given), real-valued leaves (half precision computed in
    float32); on concrete leaves, finite values (the lower triangle of
    ``scale_tril``) and ``reg_covar >= 0`` (unless ``values=False``). Errors
    name ``name.field``.
    """
    cls = _check_params_class(params, name)
    leaves = {field: as_real_array(getattr(params, field), f"{name}.{field}") for field in cls._fields}
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
    scale_field = cls._fields[2]
    shapes = {
        "logits": (*b, k),
        scale_field: (*b, *scale_shape(_TYPE_OF[cls], k, d)),
        "reg_covar": b,
    }
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
    return cls(**{field: jnp.asarray(v, dtype) for field, v in leaves.items()})


def _check_params_class(params: Any, name: str) -> Any:
    if not isinstance(params, _PARAMS_CLASSES):
        raise TypeError(
            f"{name} must be GMMParams, DiagGMMParams, SphericalGMMParams or TiedGMMParams "
            f"(e.g. from swgmm_jax.from_moments), got {type(params).__name__}"
        )
    return type(params)


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
    _check_params_class(params, name)
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
    """Number of free parameters of the mixture, as scikit-learn counts them.

    The covariances' entries (``K d (d + 1) / 2`` for ``"full"``, ``d (d + 1) / 2``
    for ``"tied"``, ``K d`` for ``"diag"``, ``K`` for ``"spherical"``), ``K d``
    mean entries and ``K - 1`` weights; the floor ``reg_covar`` is not fitted,
    so not counted. For batched parameters, the count of one set (all share
    ``K`` and ``d``).

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
    k, d = params.means.shape[-2:]
    return _free_parameters(k, d, covariance_type_of(params))


def _free_parameters(k: int, d: int, covariance_type: str = "full") -> int:
    return int(n_covariance_parameters(covariance_type, k, d) + k * d + k - 1)


def _criterion(params: Any, x: Any, penalty_per_parameter: Callable[[int], float]) -> jax.Array:
    params, x, batch = _check_inputs(params, x)
    k, d = params.means.shape[-2:]
    penalty = _free_parameters(k, d, covariance_type_of(params)) * penalty_per_parameter(x.shape[0])
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
    eps = jax.random.normal(k_noise, (n, means.shape[-1]), means.dtype)
    return means[comp] + draw_noise(cov, comp, eps, covariance_type_of(params))


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
