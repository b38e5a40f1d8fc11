"""The EM baseline in JAX (scikit-learn's update equations, for each covariance type).

``fit_em`` mirrors ``sklearn.mixture.GaussianMixture.fit`` step for step (E-step,
M-step with ``reg_covar`` added to the diagonals, stop when the mean
log-likelihood changes by less than ``tol``) inside one ``lax.while_loop``;
under ``vmap`` converged restarts are frozen while the others go on.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from swgmm_jax._config import FREEZE_NAMES, EMConfig, check_config, check_freeze, hold_frozen
from swgmm_jax._covariances import check_covariance_type, weighted_covariance
from swgmm_jax._init import centre, check_fit_args, init_params, normalized_weights
from swgmm_jax._mesh import loop_restarts
from swgmm_jax._params import (
    COLLAPSE_FACTOR,
    GMMParams,
    check_params,
    covariance_type_of,
    log_prob_from_moments,
    moments_to_params,
    rescale_params,
    to_moments,
)
from swgmm_jax._relocate import accept_if_better, merge_relocate
from swgmm_jax._validation import check_data, check_dim, check_positive_int, check_sample_weight

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

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> res = sw.fit_em(jax.random.key(1), x, 2, sw.EMConfig(max_iter=50))
      >>> res.params.means.shape, bool(res.converged), res.relocation_nll is None
      ((2, 2), True, True)
      >>> bool(jnp.all(jnp.diff(res.loss_history) <= 1e-6))  # EM never raises the NLL
      True
    """

    params: GMMParams
    loss_history: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    relocation_nll: jax.Array | None = None
    relocation_accepted: jax.Array | None = None


def em_step(
    x: jax.Array,
    moments: tuple[jax.Array, jax.Array, jax.Array],
    reg_covar: Any,
    *,
    sample_weight: jax.Array | None = None,
    freeze: Any = frozenset(),
    covariance_type: str = "full",
):
    """One E-step + M-step on ``(weights, means, covariances)``.

    Args:
      x: ``[n, d]`` data.
      moments: ``(weights[K], means[K, d], covariances)``, the covariances in
        scikit-learn's shape for ``covariance_type`` (``[K, d, d]``, ``[K, d]``,
        ``[K]`` or ``[d, d]``).
      reg_covar: added to the diagonal of every new covariance.
      sample_weight: ``None`` or ``[n]`` weights of the points (>= 0, not all
        0; not checked; only their ratios matter): the sufficient statistics
        are the responsibilities times the weights (rescaled to mean 1), and
        the log-likelihood is the weighted mean.
      freeze: names among ``"weights"``, ``"means"``, ``"covariances"`` (static)
        whose moments are returned unchanged; the others are updated given
        them (the covariances about frozen means).
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"`` or ``"tied"``
        (static): scikit-learn's M-step of that type.

    Returns:
      ``((weights, means, covariances), mean_log_likelihood)``: the new moments
      and the mean log-likelihood under the old ones.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (200, 2))
      >>> moments = (jnp.ones(2) / 2, jnp.array([[-1.0, 0.0], [1.0, 0.0]]), jnp.stack([jnp.eye(2)] * 2))
      >>> (w, m, c), ll = jax.jit(sw.em_step)(x, moments, 1e-6)
      >>> float(w.sum())
      1.0

      Weights scale the points' statistics; frozen moments stay as they are:

      >>> (w2, m2, c2), _ = sw.em_step(x, moments, 1e-6, sample_weight=jnp.ones(200) * 3.0,
      ...                              freeze={"means"})
      >>> bool(jnp.all(m2 == moments[1]))
      True
    """
    freeze = check_freeze(freeze)
    covariance_type = check_covariance_type(covariance_type)
    weights, means, covs = moments
    log_prob = log_prob_from_moments(x, jnp.log(weights), means, covs, covariance_type)
    log_norm = logsumexp(log_prob, axis=1)
    resp = jnp.exp(log_prob - log_norm[:, None])
    wn = normalized_weights(sample_weight, x.shape[0])
    if wn is not None:
        resp = resp * wn[:, None]
    nk = jnp.sum(resp, axis=0) + 10 * jnp.finfo(x.dtype).eps
    new_means = means if "means" in freeze else resp.T @ x / nk[:, None]
    if "covariances" in freeze:
        new_covs = covs
    else:  # one component at a time: memory O(n d), not O(K n d); PSD-clipped scatters
        new_covs = weighted_covariance(x, resp, nk, new_means, reg_covar, covariance_type)
    new_weights = weights if "weights" in freeze else nk / jnp.sum(nk)
    ll = jnp.mean(log_norm) if wn is None else jnp.mean(wn * log_norm)
    return (new_weights, new_means, new_covs), ll


def _fit_em_single(key, x, init, n_components: int, config: EMConfig, sample_weight=None) -> EMResult:
    # Centring is exact for EM (translation equivariant, reg_covar included)
    # and keeps float32 digits for data at a large offset.
    c = centre(x, sample_weight)
    xc = x - c[None, :]
    reg = jnp.asarray(config.reg_covar, x.dtype)
    if init is None:
        params0 = init_params(
            key, xc, n_components, config.initialization, reg, sample_weight, config.covariance_type
        )
    else:
        params0 = rescale_params(init, -c, 1.0)
    ct = covariance_type_of(params0)
    start = rescale_params(params0, c, 1.0) if init is None else init  # the frozen leaves, caller's units
    moments, n_iter, conv, hist = _em_loop(xc, to_moments(params0), reg, config, sample_weight, ct)
    if not config.relocations:
        params = rescale_params(moments_to_params(*moments, reg, ct), c, 1.0)
        return EMResult(hold_frozen(params, start, config.freeze), hist, n_iter, conv)
    params, nll, accepted = _relocation_rounds(
        jax.random.fold_in(key, 1), xc, moments, reg, config, sample_weight, ct
    )
    params = hold_frozen(rescale_params(params, c, 1.0), start, config.freeze)
    return EMResult(params, hist, n_iter, conv, nll, accepted)


_TOL_ULPS = 8  # the convergence test's floor, in units of the log-likelihood's rounding


def _em_loop(xc, moments0, reg, config: EMConfig, sample_weight=None, covariance_type="full"):
    """EM iterations until ``tol`` or ``max_iter``: ``(moments, n_iter, converged, history)``."""
    hist0 = jnp.full((config.max_iter,), jnp.nan, xc.dtype)

    def cond(carry):
        _, _, it, conv, _ = carry
        return (it < config.max_iter) & ~conv

    def body(carry):
        moments, prev, it, _, hist = carry
        moments, ll = em_step(
            xc,
            moments,
            reg,
            sample_weight=sample_weight,
            freeze=config.freeze,
            covariance_type=covariance_type,
        )
        # tol, but never below the resolution of the mean log-likelihood in its dtype: in float32 at
        # d = 50 (|ll| ~ 69, resolution 8e-6) tol = 1e-6 could not be met, and EM ran max_iter times.
        tol = jnp.maximum(config.tol, _TOL_ULPS * jnp.finfo(xc.dtype).eps * jnp.abs(ll))
        return moments, ll, it + 1, jnp.abs(ll - prev) < tol, hist.at[it].set(-ll)

    init_carry = (moments0, jnp.asarray(-jnp.inf, xc.dtype), jnp.int32(0), jnp.bool_(False), hist0)
    moments, _, n_iter, conv, hist = jax.lax.while_loop(cond, body, init_carry)
    hist = jnp.where(jnp.arange(config.max_iter) < n_iter, hist, hist[n_iter - 1])
    return moments, n_iter, conv, hist


def _relocation_rounds(key, xc, moments, reg, config: EMConfig, sample_weight=None, covariance_type="full"):
    """Merge-and-relocate rounds, each run to convergence and kept only if the likelihood rose."""
    wn = normalized_weights(sample_weight, xc.shape[0])
    frozen = [i for i, name in enumerate(FREEZE_NAMES) if name in config.freeze]  # moments' order

    def nll(m):
        # A proposal that collapses a component (its likelihood unbounded as the floor goes to 0, e.g.
        # a component on a few duplicated points) is never kept.
        point_ll = logsumexp(log_prob_from_moments(xc, jnp.log(m[0]), m[1], m[2], covariance_type), axis=1)
        value = -jnp.mean(point_ll if wn is None else wn * point_ll)
        at_floor = jnp.any(_smallest_eigenvalues(m[2], covariance_type) < COLLAPSE_FACTOR * reg)
        return jnp.where(at_floor, jnp.inf, value)

    def propose(current, k):
        proposal = merge_relocate(
            k,
            moments_to_params(*current, reg, covariance_type),
            xc,
            temperature=config.relocation_temperature,
            cov_scale=config.init_cov_scale,
            sample_weight=sample_weight,
        )
        moments = list(to_moments(proposal))
        for i in frozen:  # the move leaves the frozen moments alone
            moments[i] = current[i]
        return _em_loop(xc, tuple(moments), reg, config, sample_weight, covariance_type)[0]

    moments, values, accepted = accept_if_better(key, moments, config.relocations, propose, nll)
    return moments_to_params(*moments, reg, covariance_type), values, accepted


def _smallest_eigenvalues(cov: jax.Array, covariance_type: str) -> jax.Array:
    """Each covariance's smallest eigenvalue (the type's shape: one per component, or one if tied)."""
    if covariance_type in ("full", "tied"):
        return jnp.linalg.eigvalsh(cov)[..., 0]
    return jnp.min(cov, axis=-1) if covariance_type == "diag" else cov


_fit_em_jit = jax.jit(_fit_em_single, static_argnames=("n_components",))


@functools.partial(jax.jit, static_argnames=("n_components",))
def _fit_em_restarts_jit(keys, x, init, n_components, config, sample_weight=None):
    fn = functools.partial(
        _fit_em_single, n_components=n_components, config=config, sample_weight=sample_weight
    )
    if init is None:
        return loop_restarts(lambda k: fn(k, x, None), keys)
    return loop_restarts(lambda k, i: fn(k, x, i), keys, init)


def fit_em(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    config: EMConfig | None = None,
    init: GMMParams | None = None,
    *,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> EMResult:
    """Fit a GMM by expectation-maximisation (the baseline), in one jitted call.

    Same initialisations as :func:`swgmm_jax.fit`. Given the same initial
    parameters it follows scikit-learn's ``GaussianMixture`` (with the same
    ``covariance_type``: ``config.covariance_type``, or ``init``'s type)
    iteration for iteration. ``config.reg_covar`` is in the units of the data,
    as in scikit-learn.

    Args:
      key: PRNG key (initialisation).
      x: ``[n, d]`` data.
      n_components: ``K``.
      config: :class:`EMConfig`; defaults to ``EMConfig()``.
      init: optional initial ``GMMParams``.
      sample_weight: ``None`` (equal weights) or ``[n]`` weights of the points,
        >= 0 and not all 0 (only their ratios matter): weighted sufficient
        statistics, weighted mean log-likelihood (in ``loss_history`` and the
        ``tol`` test), weighted initialisation and relocation moves. Integer
        weights fit what the data with each point repeated ``w_i`` times fits.

    Returns:
      :class:`EMResult`.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> res = sw.fit_em(jax.random.key(1), x, 2, sw.EMConfig(max_iter=50))
      >>> res.params.means.shape, res.loss_history.shape
      ((2, 2), (50,))

      Counts as weights, and covariances held at ``init``'s:

      >>> init = sw.initialize(jax.random.key(2), x, 2)
      >>> cfg = sw.EMConfig(max_iter=20, freeze={"covariances"})
      >>> res = sw.fit_em(jax.random.key(1), x, 2, cfg, init, sample_weight=jnp.arange(300) % 4)
      >>> bool(jnp.all(res.params.scale_tril == init.scale_tril))
      True
    """
    config = check_config(config, EMConfig)
    x, k, init = check_fit_args(key, x, n_components, init, covariance_type=config.covariance_type)
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    if w is None:
        return _fit_em_jit(key, x, init, config=config, n_components=k)
    return _fit_em_jit(key, x, init, config=config, n_components=k, sample_weight=w)


def fit_em_restarts(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    n_restarts: int,
    config: EMConfig | None = None,
    init: GMMParams | None = None,
    *,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> EMResult:
    """``n_restarts`` EM fits in one jitted call, over ``jax.random.split(key, n_restarts)``.

    On the CPU the restarts run one after another (``lax.map``: each stops when
    it converges), elsewhere side by side (``vmap``); see ``swgmm_jax._mesh.loop_restarts``.

    Restart ``r`` equals ``fit_em(jax.random.split(key, n_restarts)[r], ...)``;
    ``init``, if given, has a leading ``[n_restarts]`` axis.

    Args:
      key: PRNG key, split into one key per restart.
      x: ``[n, d]`` data.
      n_components: ``K``.
      n_restarts: number of restarts ``R``.
      config: :class:`EMConfig`; defaults to ``EMConfig()``.
      init: optional ``[R]``-batched initial ``GMMParams``.
      sample_weight: ``None`` or ``[n]`` weights of the points, as in :func:`fit_em`.

    Returns:
      :class:`EMResult` whose leaves have a leading ``[n_restarts]`` axis.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> sw.fit_em_restarts(jax.random.key(1), x, 2, 5).params.means.shape
      (5, 2, 2)
    """
    config = check_config(config, EMConfig)
    r = check_positive_int(n_restarts, "n_restarts")
    x, k, init = check_fit_args(
        key, x, n_components, init, batch_dims=(r,), covariance_type=config.covariance_type
    )
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    if w is None:
        return _fit_em_restarts_jit(jax.random.split(key, r), x, init, k, config)
    return _fit_em_restarts_jit(jax.random.split(key, r), x, init, k, config, w)


@functools.partial(jax.jit, static_argnames=("n_steps",))
def _polish(params, x, n_steps, sample_weight=None):
    c = centre(x, sample_weight)
    moments = to_moments(rescale_params(params, -c, 1.0))
    ct = covariance_type_of(params)

    def body(m, _):
        return em_step(x - c[None, :], m, params.reg_covar, sample_weight=sample_weight, covariance_type=ct)[
            0
        ], None

    moments, _ = jax.lax.scan(body, moments, None, length=n_steps)
    return rescale_params(moments_to_params(*moments, params.reg_covar, ct), c, 1.0)


def polish_em(
    params: GMMParams,
    x: jax.typing.ArrayLike,
    n_steps: int,
    *,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> GMMParams:
    """Refine a fit with ``n_steps`` EM iterations (an explicit, optional step).

    The authors' public demo silently ends its SW fit with 25 EM iterations;
    here it is a separate call so that SW-GMM results stay pure SW unless asked
    for. Keeps ``params.reg_covar`` as the covariance floor. Vmappable over
    restarts: ``jax.vmap(polish_em, (0, None, None))(batched_params, x, n)``.

    Args:
      params: the GMM to refine.
      x: ``[n, d]`` data.
      n_steps: EM iterations, >= 0.
      sample_weight: ``None`` or ``[n]`` weights of the points (see :func:`fit_em`).

    Returns:
      The refined ``GMMParams``.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> params = sw.initialize(jax.random.key(1), x, 2)
      >>> sw.polish_em(params, x, 10).means.shape
      (2, 2)
    """
    check_positive_int(n_steps, "n_steps", minimum=0)
    params = check_params(params)
    x = check_data(x, "x")
    check_dim(x, params.means.shape[-1])
    w = check_sample_weight(sample_weight, x.shape[0], dtype=params.means.dtype)
    if w is None:
        return _polish(params, x.astype(params.means.dtype), n_steps)
    return _polish(params, x.astype(params.means.dtype), n_steps, w)
