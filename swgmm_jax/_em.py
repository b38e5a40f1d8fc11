"""The EM baseline in JAX (full covariances, scikit-learn's update equations).

``fit_em`` mirrors ``sklearn.mixture.GaussianMixture.fit`` step for step (E-step,
M-step with ``reg_covar`` added to the diagonals, stop when the mean
log-likelihood changes by less than ``tol``) inside one ``lax.while_loop``;
under ``vmap`` converged restarts are frozen while the others go on.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from swgmm_jax import _validation
from swgmm_jax._config import EMConfig
from swgmm_jax._fit import _check_fit_args
from swgmm_jax._init import _initialize
from swgmm_jax._params import GMMParams, _from_moments, log_prob_from_moments, to_moments
from swgmm_jax._relocate import accept_if_better, merge_relocate

__all__ = ["EMResult", "fit_em", "fit_em_restarts", "polish_em", "em_step"]


class EMResult(NamedTuple):
    """Result of :func:`fit_em` (leading restart axis for :func:`fit_em_restarts`).

    Attributes:
      params: fitted ``GMMParams`` (units of the data).
      loss_history: ``[max_iter]`` negative mean log-likelihood at the start of
        each iteration, the last value repeated after convergence.
      n_iter: iterations run.
      converged: whether the ``tol`` criterion was met.
      relocation_nll: ``[relocations]`` negative mean log-likelihood of the kept
        parameters after each merge-and-relocate round (non-increasing);
        ``None`` without relocations.
      relocation_accepted: ``[relocations]`` whether each round's move was kept.
    """

    params: GMMParams
    loss_history: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    relocation_nll: jax.Array | None = None
    relocation_accepted: jax.Array | None = None


def em_step(x, moments, reg_covar):
    """One E-step + M-step on ``(weights, means, covariances)``.

    Returns the new moments and the mean log-likelihood under the old ones.
    """
    weights, means, covs = moments
    log_prob = log_prob_from_moments(x, jnp.log(weights), means, covs)
    log_norm = logsumexp(log_prob, axis=1)
    resp = jnp.exp(log_prob - log_norm[:, None])
    nk = jnp.sum(resp, axis=0) + 10 * jnp.finfo(x.dtype).eps
    new_means = resp.T @ x / nk[:, None]
    eye = jnp.eye(x.shape[1], dtype=x.dtype)

    def cov(r, mu, n):  # one component at a time: memory O(n d), not O(K n d)
        diff = x - mu
        c = (r[:, None] * diff).T @ diff / n
        # A component collapsing on a few points has a near-singular scatter
        # matrix that float32 rounding can make indefinite (the next Cholesky
        # would be NaN): clip its eigenvalues at 0 before adding the floor.
        # A no-op, to rounding, whenever the scatter matrix is PSD.
        lam, vec = jnp.linalg.eigh(0.5 * (c + c.T))
        return (vec * jnp.maximum(lam, 0.0)) @ vec.T + reg_covar * eye

    new_covs = jax.lax.map(lambda a: cov(*a), (resp.T, new_means, nk))
    return (nk / jnp.sum(nk), new_means, new_covs), jnp.mean(log_norm)


def _centre(x):
    shift = x[0]
    return shift + jnp.mean(x - shift, axis=0)


def _shift(params: GMMParams, c) -> GMMParams:
    return params._replace(means=params.means + c)


def _fit_em_single(key, x, init, n_components: int, config: EMConfig) -> EMResult:
    # Centring is exact for EM (translation equivariant, reg_covar included)
    # and keeps float32 digits for data at a large offset.
    c = _centre(x)
    xc = x - c
    reg = jnp.asarray(config.reg_covar, x.dtype)
    if init is None:
        params0 = _initialize(key, xc, n_components, config.init, config.init_cov_scale, config.reg_covar)
    else:
        params0 = _shift(init, -c)
    moments, n_iter, conv, hist = _em_loop(xc, to_moments(params0), reg, config)
    if not config.relocations:
        return EMResult(_shift(_from_moments(*moments, reg), c), hist, n_iter, conv)
    params, nll, accepted = _relocation_rounds(jax.random.fold_in(key, 1), xc, moments, reg, config)
    return EMResult(_shift(params, c), hist, n_iter, conv, nll, accepted)


def _em_loop(xc, moments0, reg, config: EMConfig):
    """EM iterations until ``tol`` or ``max_iter``: ``(moments, n_iter, converged, history)``."""
    hist0 = jnp.full((config.max_iter,), jnp.nan, xc.dtype)

    def cond(carry):
        _, _, it, conv, _ = carry
        return (it < config.max_iter) & ~conv

    def body(carry):
        moments, prev, it, _, hist = carry
        moments, ll = em_step(xc, moments, reg)
        return moments, ll, it + 1, jnp.abs(ll - prev) < config.tol, hist.at[it].set(-ll)

    init_carry = (moments0, jnp.asarray(-jnp.inf, xc.dtype), jnp.int32(0), jnp.bool_(False), hist0)
    moments, _, n_iter, conv, hist = jax.lax.while_loop(cond, body, init_carry)
    hist = jnp.where(jnp.arange(config.max_iter) < n_iter, hist, hist[n_iter - 1])
    return moments, n_iter, conv, hist


def _relocation_rounds(key, xc, moments, reg, config: EMConfig):
    """Merge-and-relocate rounds, each run to convergence and kept only if the likelihood rose."""

    def nll(m):
        return -jnp.mean(logsumexp(log_prob_from_moments(xc, jnp.log(m[0]), m[1], m[2]), axis=1))

    def propose(current, k):
        proposal = merge_relocate(
            _from_moments(*current, reg), xc, k, temperature=config.relocation_temperature,
            cov_scale=config.init_cov_scale,
        )
        return _em_loop(xc, to_moments(proposal), reg, config)[0]

    moments, values, accepted = accept_if_better(key, moments, config.relocations, propose, nll)
    return _from_moments(*moments, reg), values, accepted


_fit_em_jit = jax.jit(_fit_em_single, static_argnames=("n_components", "config"))


@functools.partial(jax.jit, static_argnames=("n_components", "config"))
def _fit_em_restarts_jit(keys, x, init, n_components, config):
    in_axes = (0, None, None if init is None else 0)
    fn = functools.partial(_fit_em_single, n_components=n_components, config=config)
    return jax.vmap(fn, in_axes)(keys, x, init)


def fit_em(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    config: EMConfig | None = None,
    init: GMMParams | None = None,
) -> EMResult:
    """Fit a GMM by expectation-maximisation (the baseline), in one jitted call.

    Same initialisations as :func:`swgmm_jax.fit`. Given the same initial
    parameters it follows scikit-learn's ``GaussianMixture`` (full covariances)
    iteration for iteration. ``config.reg_covar`` is in the units of the data,
    as in scikit-learn.

    Args:
      key: PRNG key (initialisation).
      x: ``[n, d]`` data.
      n_components: ``K``.
      config: :class:`EMConfig`; defaults to ``EMConfig()``.
      init: optional initial ``GMMParams``.

    Returns:
      :class:`EMResult`.
    """
    config = EMConfig() if config is None else config
    if not isinstance(config, EMConfig):
        raise TypeError(f"config must be an EMConfig, got {type(config).__name__}")
    x, k, init = _check_fit_args(key, x, n_components, config, init)
    return _fit_em_jit(key, x, init, n_components=k, config=config)


def fit_em_restarts(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    n_restarts: int,
    config: EMConfig | None = None,
    init: GMMParams | None = None,
) -> EMResult:
    """``n_restarts`` EM fits as one jitted ``vmap`` over ``jax.random.split(key, n_restarts)``."""
    config = EMConfig() if config is None else config
    if not isinstance(config, EMConfig):
        raise TypeError(f"config must be an EMConfig, got {type(config).__name__}")
    r = _validation.check_positive_int(n_restarts, "n_restarts")
    x, k, init = _check_fit_args(key, x, n_components, config, init, batch_dims=(r,))
    return _fit_em_restarts_jit(jax.random.split(key, r), x, init, n_components=k, config=config)


@functools.partial(jax.jit, static_argnames=("n_steps",))
def _polish(params, x, n_steps):
    c = _centre(x)
    moments = to_moments(_shift(params, -c))

    def body(m, _):
        return em_step(x - c, m, params.reg_covar)[0], None

    moments, _ = jax.lax.scan(body, moments, None, length=n_steps)
    return _shift(_from_moments(*moments, params.reg_covar), c)


def polish_em(params: GMMParams, x: jax.typing.ArrayLike, n_steps: int) -> GMMParams:
    """Refine a fit with ``n_steps`` EM iterations (an explicit, optional step).

    The authors' public demo silently ends its SW fit with 25 EM iterations;
    here it is a separate call so that SW-GMM results stay pure SW unless asked
    for. Keeps ``params.reg_covar`` as the covariance floor. Vmappable over
    restarts: ``jax.vmap(polish_em, (0, None, None))(batched_params, x, n)``.
    """
    _validation.check_positive_int(n_steps, "n_steps", minimum=0)
    x = _validation.check_data(x, "x")
    if x.shape[1] != params.means.shape[-1]:
        raise ValueError(f"x has dimension {x.shape[1]} but params have dimension {params.means.shape[-1]}")
    return _polish(params, x.astype(params.means.dtype), n_steps)
