"""The four covariance parametrisations: scikit-learn's ``"full"``, ``"diag"``, ``"spherical"``, ``"tied"``.

Each type stores an unconstrained *scale* leaf and the floor ``reg_covar``; the
covariance is the square of the scale plus the floor, so every gradient step
keeps it positive definite with smallest eigenvalue >= ``reg_covar``:

============  ====================  ===================================  ======================
type          scale leaf            covariance (scikit-learn's shape)     slice variance
============  ====================  ===================================  ======================
full          ``L[K, d, d]`` (tril)  ``L_k L_k^T + reg I``, ``[K, d, d]``  ``|L_k^T t|^2 + reg``
diag          ``s[K, d]``            ``s_k^2 + reg``, ``[K, d]``          ``sum_i t_i^2 s_ki^2 + reg``
spherical     ``s[K]``               ``s_k^2 + reg``, ``[K]``             ``s_k^2 + reg``
tied          ``L[d, d]`` (tril)     ``L L^T + reg I``, ``[d, d]``        ``|L^T t|^2 + reg``
============  ====================  ===================================  ======================

(slice variances for a unit direction ``t``). The diagonal and spherical
types never form a ``d x d`` matrix: a step of their fits costs ``O(L K d)``
after the projection of the data, against ``O(L K d^2)`` for ``"full"``.

This module holds the per-type arithmetic on moments and scale leaves, written
for one mixture (no batch axes unless a docstring says so); the parameter
pytrees are in :mod:`swgmm_jax._params`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "COVARIANCE_TYPES",
    "check_covariance_type",
    "covariance_shape",
    "scale_shape",
    "scale_from_covariance",
    "covariance_from_scale",
    "smallest_scale_eigenvalue",
    "slice_variances",
    "log_prob",
    "weighted_covariance",
    "reduce_full_covariance",
    "full_covariances",
    "n_covariance_parameters",
    "draw_noise",
]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
"""The covariance types, scikit-learn's names and meanings."""


def check_covariance_type(value: Any, name: str = "covariance_type") -> str:
    """``value`` if it is one of :data:`COVARIANCE_TYPES`, else a TypeError/ValueError naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {COVARIANCE_TYPES}, got {type(value).__name__}")
    if value not in COVARIANCE_TYPES:
        raise ValueError(f"{name} must be one of {COVARIANCE_TYPES}, got {value!r}")
    return value


def covariance_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    """scikit-learn's shape of ``covariances_`` for the type."""
    return {"full": (k, d, d), "diag": (k, d), "spherical": (k,), "tied": (d, d)}[covariance_type]


def scale_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    """The shape of the scale leaf (the same as the covariances')."""
    return covariance_shape(covariance_type, k, d)


def _has_matrix(covariance_type: str) -> bool:
    return covariance_type in ("full", "tied")


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


def scale_from_covariance(cov: jax.Array, reg_covar: jax.Array, covariance_type: str) -> jax.Array:
    """The scale leaf of covariances ``cov`` (the type's shape) above the floor ``reg_covar``.

    Eigenvalues (variances) below the floor are raised to it.
    """
    if covariance_type == "full":
        d = cov.shape[-1]
        sym = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
        return jax.vmap(_psd_factor)(sym - reg_covar * jnp.eye(d, dtype=sym.dtype)[None])
    if covariance_type == "tied":
        d = cov.shape[-1]
        return _psd_factor(0.5 * (cov + cov.T) - reg_covar * jnp.eye(d, dtype=cov.dtype))
    return jnp.sqrt(jnp.maximum(cov - reg_covar, 0.0))


def covariance_from_scale(scale: jax.Array, reg_covar: jax.Array, covariance_type: str) -> jax.Array:
    """Covariances (the type's shape, leading batch axes kept) from the scale leaf and the floor.

    ``reg_covar`` has the batch axes only. For the matrix types the floor is
    raised by the rounding bound of forming ``L L^T + reg I`` in the dtype,
    ``(d + 1) eps (|L|_F^2 + reg)`` (see :mod:`swgmm_jax._params`), so that the
    stored matrix keeps every eigenvalue >= ``reg_covar``; a variance
    ``s^2 + reg`` is rounded once, never below ``reg``.
    """
    if _has_matrix(covariance_type):
        tril = jnp.tril(scale)
        d = tril.shape[-1]
        extra = 3 if covariance_type == "full" else 2  # the reg's axes to broadcast against [(K,) d, d]
        reg = jnp.asarray(reg_covar).reshape(jnp.shape(reg_covar) + (1,) * extra)
        eye = jnp.eye(d, dtype=tril.dtype).reshape((1,) * (reg.ndim - 2) + (d, d))
        rounding = (
            (d + 1) * jnp.finfo(tril.dtype).eps * (jnp.sum(tril * tril, axis=(-2, -1)) + reg[..., 0, 0])
        )
        return tril @ jnp.swapaxes(tril, -1, -2) + (reg + rounding[..., None, None]) * eye
    extra = 2 if covariance_type == "diag" else 1
    reg = jnp.asarray(reg_covar).reshape(jnp.shape(reg_covar) + (1,) * extra)
    return scale * scale + reg


def smallest_scale_eigenvalue(scale: jax.Array, covariance_type: str, k: int) -> jax.Array:
    """``[..., K]`` smallest eigenvalue of each component's ``L L^T`` (covariance less the floor).

    From the factor (its smallest singular value, squared): free of the
    rounding of forming the matrix. Leading batch axes are kept.
    """
    if covariance_type == "full":
        return jnp.linalg.svd(jnp.tril(scale), compute_uv=False)[..., -1] ** 2
    if covariance_type == "tied":
        sigma = jnp.linalg.svd(jnp.tril(scale), compute_uv=False)[..., -1] ** 2
        return jnp.broadcast_to(sigma[..., None], (*sigma.shape, k))
    if covariance_type == "diag":
        return jnp.min(scale * scale, axis=-1)
    return scale * scale


def slice_variances(theta: jax.Array, scale: jax.Array, reg_covar: jax.Array, covariance_type: str, k: int):
    """``[L, K]`` variances ``theta_l^T Sigma_k theta_l`` of every slice of every component.

    Never forms ``Sigma``: ``|L_k^T theta|^2`` for the matrix types,
    ``(theta^2) . s_k^2`` for diagonal ones (no ``d x d`` work),
    ``|theta|^2 s_k^2`` for spherical ones; plus ``reg |theta|^2``.
    """
    norm2 = jnp.sum(theta * theta, axis=-1, keepdims=True)  # [L, 1]
    if covariance_type == "full":
        lt_theta = jnp.einsum("ld,kde->lke", theta, jnp.tril(scale))
        var = jnp.sum(lt_theta * lt_theta, axis=-1)
    elif covariance_type == "tied":
        lt_theta = theta @ jnp.tril(scale)
        var = jnp.broadcast_to(jnp.sum(lt_theta * lt_theta, axis=-1, keepdims=True), (theta.shape[0], k))
    elif covariance_type == "diag":
        var = (theta * theta) @ (scale * scale).T
    else:
        var = norm2 * (scale * scale)[None, :]
    return var + reg_covar * norm2


def _floored_eigh(cov: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigendecomposition with eigenvalues floored at ``10 eps`` of the largest (see :func:`log_prob`)."""
    lam, vec = jnp.linalg.eigh(0.5 * (cov + jnp.swapaxes(cov, -1, -2)))
    eps = jnp.finfo(lam.dtype).eps
    lam = jnp.maximum(lam, 10 * eps * jnp.max(jnp.abs(lam), axis=-1, keepdims=True))
    return jnp.maximum(lam, jnp.finfo(lam.dtype).tiny), vec


def log_prob(x: jax.Array, log_weights: jax.Array, means: jax.Array, cov: jax.Array, covariance_type: str):
    """``[n, K]`` joint log-densities ``log w_k + log N(x_n | mu_k, Sigma_k)`` from moments.

    Matrix types go through an eigendecomposition rather than a Cholesky
    factor: a covariance whose condition number exceeds ``1/eps`` (a component
    collapsed on a few points, in float32) can be indefinite after rounding,
    where a Cholesky factor is NaN. Eigenvalues are floored at ``10 eps`` times
    the largest, which changes nothing for any covariance that is numerically
    positive definite. Diagonal and spherical types work on the variances
    directly (``O(n K d)``, no ``d x d`` work).
    """
    d = means.shape[-1]
    log_2pi = d * jnp.log(2.0 * jnp.pi)
    if covariance_type == "full":
        lam, vec = _floored_eigh(cov)
        # Whitened coordinates of every point for every component from one
        # [n, d] x [d, K d] product, as scikit-learn computes them
        # (x W_k - mu_k W_k, W_k = V_k diag(lam_k)^-1/2); x - mu_k itself carries
        # the rounding of x, so the order of the error is that of (x - mu_k) W_k.
        # K small products ([n, d] x [d, d] each) took twice as long in the EM step.
        k = means.shape[0]
        white = vec * jax.lax.rsqrt(lam)[:, None, :]  # [K, d, d]
        proj = x @ jnp.moveaxis(white, 0, 1).reshape(d, k * d)  # [n, K d]
        y = proj.reshape(-1, k, d) - jnp.einsum("ki,kij->kj", means, white)[None]
        maha = jnp.sum(y * y, axis=-1)  # [n, K]
        return -0.5 * (maha + jnp.sum(jnp.log(lam), axis=-1)[None, :] + log_2pi) + log_weights[None, :]
    if covariance_type == "tied":
        lam, vec = _floored_eigh(cov)
        xv, mv = x @ vec, means @ vec  # rotate once: [n, d], [K, d]

        def one_tied(mu):
            diff = xv - mu[None, :]
            return jnp.sum(diff * diff / lam[None, :], axis=1)

        maha = jax.vmap(one_tied, out_axes=1)(mv)
        return -0.5 * (maha + jnp.sum(jnp.log(lam)) + log_2pi) + log_weights[None, :]
    var = jnp.maximum(cov, jnp.finfo(cov.dtype).tiny)
    if covariance_type == "spherical":
        var = jnp.broadcast_to(var[:, None], means.shape)

    def one_diag(mu, v):
        diff = x - mu[None, :]
        return jnp.sum(diff * diff / v[None, :], axis=1)

    maha = jax.vmap(one_diag, out_axes=1)(means, var)
    return -0.5 * (maha + jnp.sum(jnp.log(var), axis=1)[None, :] + log_2pi) + log_weights[None, :]


_BATCHED_SCATTER_SIZE = 1 << 22
"""Largest ``K n d`` for which :func:`weighted_covariance` forms all components' differences at
once (16 MiB in float32); above it, one component at a time (memory ``O(n d)``)."""


def weighted_covariance(
    x: jax.Array, resp: jax.Array, nk: jax.Array, means: jax.Array, reg_covar: Any, covariance_type: str
) -> jax.Array:
    """The M-step's covariances (the type's shape) about ``means``, plus the floor.

    ``resp[n, K]`` are the (weighted) responsibilities, ``nk[K]`` their column
    sums. scikit-learn's estimates for each type (``full``: each component's
    scatter; ``tied``: the components' scatters pooled, over ``sum_k n_k``;
    ``diag``: the scatters' diagonals; ``spherical``: their mean over
    dimensions), computed about the given means from the differences
    ``x - mu_k`` (not from ``E[x^2] - mu^2``, which loses digits): for the
    full type all components at once up to ``K n d = _BATCHED_SCATTER_SIZE``,
    otherwise (and for the other types) one component at a time (memory
    ``O(n d)``). Scatter matrices are projected
    on the PSD cone (eigenvalues clipped at 0) before the floor is added: a
    component collapsing on a few points has one that float32 rounding can
    make indefinite.
    """
    d = x.shape[1]
    eye = jnp.eye(d, dtype=x.dtype)

    def psd(c):  # [..., d, d]
        lam, vec = jnp.linalg.eigh(0.5 * (c + jnp.swapaxes(c, -1, -2)))
        return (vec * jnp.maximum(lam, 0.0)[..., None, :]) @ jnp.swapaxes(vec, -1, -2)

    if covariance_type == "full":
        if means.shape[0] * x.shape[0] * d <= _BATCHED_SCATTER_SIZE:  # one [K, n, d] difference
            diff = x[None, :, :] - means[:, None, :]
            scatter = jnp.einsum("nk,kni,knj->kij", resp, diff, diff) / nk[:, None, None]
            return psd(scatter) + reg_covar * eye[None]

        def cov(r, mu, n):
            diff = x - mu[None, :]
            return psd((r[:, None] * diff).T @ diff / n) + reg_covar * eye

        return jax.lax.map(lambda a: cov(*a), (resp.T, means, nk))
    if covariance_type == "tied":

        def add(acc, a):
            r, mu = a
            diff = x - mu[None, :]
            return acc + (r[:, None] * diff).T @ diff, None

        scatter, _ = jax.lax.scan(add, jnp.zeros((d, d), x.dtype), (resp.T, means))
        return psd(scatter / jnp.sum(nk)) + reg_covar * eye

    def var(r, mu, n):
        diff = x - mu[None, :]
        return r @ (diff * diff) / n

    diag = jax.lax.map(lambda a: var(*a), (resp.T, means, nk)) + reg_covar
    return diag if covariance_type == "diag" else jnp.mean(diag, axis=1)


def reduce_full_covariance(cov: jax.Array, covariance_type: str, k: int) -> jax.Array:
    """The type's ``K`` covariances for one full ``[d, d]`` covariance shared by all components."""
    if covariance_type == "full":
        return jnp.broadcast_to(cov, (k, *cov.shape))
    if covariance_type == "tied":
        return cov
    diag = jnp.diagonal(cov)
    if covariance_type == "diag":
        return jnp.broadcast_to(diag, (k, diag.shape[0]))
    return jnp.full((k,), jnp.mean(diag), cov.dtype)


def full_covariances(cov: jax.Array, covariance_type: str, k: int, d: int) -> jax.Array:
    """``[..., K, d, d]`` matrices from covariances of the type's shape (leading batch axes kept)."""
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return jnp.broadcast_to(cov[..., None, :, :], (*cov.shape[:-2], k, d, d))
    eye = jnp.eye(d, dtype=cov.dtype)
    if covariance_type == "spherical":
        return cov[..., None, None] * eye.reshape((1,) * cov.ndim + (d, d))
    return cov[..., :, None] * eye.reshape((1,) * (cov.ndim - 1) + (d, d))


def n_covariance_parameters(covariance_type: str, k: int, d: int) -> int:
    """Free covariance parameters of the type, as scikit-learn counts them."""
    return int(
        {
            "full": k * d * (d + 1) // 2,
            "diag": k * d,
            "spherical": k,
            "tied": d * (d + 1) // 2,
        }[covariance_type]
    )


def draw_noise(cov: jax.Array, comp: jax.Array, eps: jax.Array, covariance_type: str) -> jax.Array:
    """``[n, d]`` draws of ``N(0, Sigma_comp)`` from standard normals ``eps[n, d]``."""
    if covariance_type == "full":
        chol = jnp.linalg.cholesky(cov)
        return jnp.einsum("nij,nj->ni", chol[comp], eps)
    if covariance_type == "tied":
        return eps @ jnp.linalg.cholesky(cov).T
    std = jnp.sqrt(cov)
    if covariance_type == "spherical":
        return std[comp][:, None] * eps
    return std[comp] * eps
