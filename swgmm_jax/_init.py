"""Data statistics and random initialisations shared by the SW fit, EM and the moves."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from swgmm_jax._config import INIT_METHODS, KMEANS_SWAPS, InitConfig
from swgmm_jax._covariances import (
    check_covariance_type,
    covariance_shape,
    reduce_full_covariance,
    weighted_covariance,
)
from swgmm_jax._params import check_params, covariance_type_of, moments_to_params
from swgmm_jax._validation import (
    check_choice,
    check_data,
    check_key,
    check_positive_int,
    check_real,
    check_sample_weight,
)

__all__ = [
    "initialize",
    "init_params",
    "centre",
    "robust_scale",
    "ROBUST_SCALE_CAP",
    "standardizer",
    "data_covariance",
    "data_variances",
    "normalized_weights",
    "check_fit_args",
]


KMEANS_ITERS = 100
SWAP_ITERS = 3
"""Lloyd iterations after each swap move of the ``"kmeans"`` initialisation (:func:`_swap`)."""
"""Most Lloyd iterations of the ``"kmeans"`` initialisation (it stops earlier once no centre moves)."""


def normalized_weights(sample_weight: jax.Array | None, n: int) -> jax.Array | None:
    """Weights rescaled to mean 1 (``w n / sum(w)``), so that counts keep the units of points."""
    if sample_weight is None:
        return None
    return sample_weight * (n / jnp.sum(sample_weight))


def centre(x: jax.Array, sample_weight: jax.Array | None = None) -> jax.Array:
    """``[d]`` (weighted) mean of ``x[n, d]``, taken around the first point.

    Float32 data at a large offset keeps its digits (the mean of ``x - x[0]`` is small).
    """
    shift = x[0]
    if sample_weight is None:
        return shift + jnp.mean(x - shift[None, :], axis=0)
    w = sample_weight / jnp.sum(sample_weight)
    return shift + w @ (x - shift[None, :])


ROBUST_SCALE_CAP = 2.0
"""The standardisation scale is at most this many times the data's robust (interquartile) spread."""


def robust_scale(x: jax.Array, sample_weight: jax.Array | None = None) -> jax.Array:
    """``[]`` global robust spread of ``x[n, d]``: the RMS over coordinates of ``IQR_j / 1.349``.

    For Gaussian data it estimates the same thing as the RMS spread (1.349 is the
    interquartile range of a standard normal), but a few far points cannot
    inflate it. Unweighted quartiles interpolate linearly (``jnp.percentile``);
    with ``sample_weight`` they are the weighted empirical quartiles (the
    smallest value whose cumulative weight reaches 1/4 or 3/4).
    """
    if sample_weight is None:
        q1, q3 = jnp.percentile(x, jnp.array([25.0, 75.0], x.dtype), axis=0)
    else:
        order = jnp.argsort(x, axis=0)
        xs = jnp.take_along_axis(x, order, axis=0)
        cw = jnp.cumsum(sample_weight[order], axis=0) / jnp.sum(sample_weight)  # [n, d]
        last = x.shape[0] - 1
        i1 = jnp.minimum(jnp.sum(cw < 0.25, axis=0), last)
        i3 = jnp.minimum(jnp.sum(cw < 0.75, axis=0), last)
        q1 = jnp.take_along_axis(xs, i1[None, :], axis=0)[0]
        q3 = jnp.take_along_axis(xs, i3[None, :], axis=0)[0]
    return jnp.sqrt(jnp.mean(((q3 - q1) / 1.349) ** 2))


def standardizer(x: jax.Array, sample_weight: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Centre ``c[d]`` and global scale ``s[]`` of the standardised data ``(x - c) / s``.

    The centre is :func:`centre` (the mean); the scale is the RMS spread around
    it, capped at ``ROBUST_SCALE_CAP = 2`` times :func:`robust_scale` (the
    interquartile spread), and ``s = 1`` when all points coincide. Lengths,
    learning rates and ``reg_covar`` of the fits are in units of ``s``, so the
    cap keeps one far point from inflating the covariance floor and the step
    sizes: two clusters of standard deviation 0.3 plus one point at ``1e6`` had
    an RMS spread of 5.8e4, which put every fitted component's standard deviation
    at the floor's 58 (inlier log-likelihood -10.0 against -1.1 without the
    point); the interquartile spread of those data is 1.6. On every problem of
    ``experiments/quality_suite.py`` (clean data, d = 1 to 100) the ratio of the
    interquartile to the RMS spread is between 0.86 and 1.63 (it binds below 0.5), so the cap never
    binds there and the fits are unchanged. When more than half the points
    coincide in every coordinate (a zero interquartile spread), the RMS spread is
    used. With ``sample_weight`` (``[n]``, >= 0, not all 0; not checked), the
    centre, the RMS and the quartiles are the weighted ones: integer weights give
    the standardisation of the data with each point repeated ``w_i`` times (up to
    the quartiles' interpolation).

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> c, s = sw.standardizer(jnp.array([[1.0, 1.0], [3.0, 3.0]]))
      >>> c.tolist(), float(s)
      ([2.0, 2.0], 1.0)
      >>> c, s = sw.standardizer(jnp.array([[1.0, 1.0], [3.0, 3.0]]), jnp.array([3.0, 1.0]))
      >>> c.tolist()
      [1.5, 1.5]
    """
    c = centre(x, sample_weight)
    if sample_weight is None:
        s = jnp.sqrt(jnp.mean((x - c[None, :]) ** 2))
    else:
        w = sample_weight / jnp.sum(sample_weight)
        s = jnp.sqrt(w @ jnp.mean((x - c[None, :]) ** 2, axis=1))
    r = robust_scale(x, sample_weight)
    s = jnp.where(r > 0, jnp.minimum(s, ROBUST_SCALE_CAP * r), s)
    return c, jnp.where(s > 0, s, jnp.ones_like(s))


def data_covariance(x: jax.Array, sample_weight: jax.Array | None = None) -> jax.Array:
    """``[d, d]`` (weighted) covariance of ``x[n, d]`` (normalised by ``n``, or by the total weight)."""
    if sample_weight is None:
        xc = x - jnp.mean(x, axis=0, keepdims=True)
        return xc.T @ xc / x.shape[0]
    w = sample_weight / jnp.sum(sample_weight)
    xc = x - (w @ x)[None, :]
    return (w[:, None] * xc).T @ xc


def data_variances(x: jax.Array, sample_weight: jax.Array | None = None) -> jax.Array:
    """``[d]`` (weighted) variances of ``x[n, d]``: the diagonal of :func:`data_covariance`."""
    if sample_weight is None:
        xc = x - jnp.mean(x, axis=0, keepdims=True)
        return jnp.mean(xc * xc, axis=0)
    w = sample_weight / jnp.sum(sample_weight)
    xc = x - (w @ x)[None, :]
    return w @ (xc * xc)


def _random_from_data(key, x, n_components, cov_scale, reg_covar, w=None, covariance_type="full"):
    n, d = x.shape
    # Weighted: means drawn with probability proportional to the weights (never a zero-weight point
    # while K points have weight).
    idx = jax.random.choice(key, n, (n_components,), replace=False, p=None if w is None else w / jnp.sum(w))
    means = x[idx]
    if covariance_type in ("diag", "spherical"):  # the data's variances: no d x d matrix
        var = data_variances(x, w)
        var = var if covariance_type == "diag" else jnp.mean(var, keepdims=True)
        covs = jnp.broadcast_to(
            cov_scale * var + reg_covar, covariance_shape(covariance_type, n_components, d)
        )
    else:
        cov = cov_scale * data_covariance(x, w) + reg_covar * jnp.eye(d, dtype=x.dtype)
        covs = reduce_full_covariance(cov, covariance_type, n_components)
    weights = jnp.full((n_components,), 1.0 / n_components, x.dtype)
    return weights, means, covs


def _sq_dist(x, x_sq, centres):
    """``[n, K]`` squared distances ``|x|^2 - 2 x.c + |c|^2`` (no ``[n, K, d]`` difference tensor)."""
    return jnp.maximum(x_sq[:, None] - 2.0 * x @ centres.T + jnp.sum(centres * centres, axis=1)[None, :], 0.0)


def _kmeans(key, x, n_components, lloyd_iters, w=None, n_swaps=0):
    """Greedy k-means++ seeds, up to ``lloyd_iters`` Lloyd iterations, then ``n_swaps`` swap moves
    (:func:`_swap`): ``(centres[K, d], inertia)``.

    Greedy k-means++ (Arthur and Vassilvitskii 2007, section 5; scikit-learn's
    ``kmeans_plusplus``): each new seed is the best, by the k-means potential,
    of ``2 + floor(log K)`` candidates drawn by D^2 sampling. Plain D^2 sampling
    (one candidate) often puts two seeds in one well-separated cluster and none
    in another: on a 10-D problem with 8 clusters it and 100 Lloyd iterations
    found every cluster in 0 of 20 draws, the greedy seeds in 14 of 20.

    With weights ``w[n]`` (as scikit-learn's ``sample_weight``): the first seed
    and the D^2 draws are weighted (``w d^2``), and so are the potential, the
    centroids and the inertia.
    """
    n, d = x.shape
    n_trials = 2 + int(math.log(n_components))
    keys = jax.random.split(key, n_components)
    x_sq = jnp.sum(x * x, axis=1)
    if w is None:
        first = x[jax.random.randint(keys[0], (), 0, n)]
    else:
        first = x[jax.random.categorical(keys[0], jnp.log(w))]
    centres = jnp.zeros((n_components, d), x.dtype).at[0].set(first)
    d2 = _sq_dist(x, x_sq, first[None, :])[:, 0]

    def seed(i, carry):
        centres, d2 = carry
        wd2 = d2 if w is None else w * d2
        # All points on the chosen centres (degenerate data): pick uniformly (among weighted points).
        fallback = 0.0 if w is None else jnp.log(w)
        logits = jnp.where(jnp.sum(wd2) > 0, jnp.log(wd2), fallback)
        cands = x[jax.random.categorical(keys[i], logits, shape=(n_trials,))]  # [T, d]
        cand_d2 = jnp.minimum(d2[:, None], _sq_dist(x, x_sq, cands))  # [n, T]
        potential = jnp.sum(cand_d2, axis=0) if w is None else w @ cand_d2
        best = jnp.argmin(potential)
        return centres.at[i].set(cands[best]), cand_d2[:, best]

    centres, _ = jax.lax.fori_loop(1, n_components, seed, (centres, d2))

    centres = _lloyd(x, x_sq, centres, lloyd_iters, w)
    inertia = _inertia(x, x_sq, centres, w)
    if n_swaps and n_components > 1:
        swap_keys = jax.random.split(jax.random.fold_in(key, 1), n_swaps)

        def swap(i, carry):
            centres, inertia = carry
            return _swap(swap_keys[i], x, x_sq, centres, inertia, n_trials, SWAP_ITERS, w)

        centres, inertia = jax.lax.fori_loop(0, n_swaps, swap, (centres, inertia))
    return centres, inertia


def _lloyd(x, x_sq, centres, lloyd_iters, w=None):
    """Up to ``lloyd_iters`` Lloyd iterations from ``centres`` (fewer once no centre moves)."""
    n_components = centres.shape[0]

    def lloyd(carry):
        it, centres, _ = carry
        resp = jax.nn.one_hot(jnp.argmin(_sq_dist(x, x_sq, centres), axis=1), n_components, dtype=x.dtype)
        if w is not None:
            resp = resp * w[:, None]
        nk = jnp.sum(resp, axis=0)
        safe = jnp.maximum(nk, 1.0) if w is None else jnp.where(nk > 0, nk, 1.0)
        new = jnp.where(nk[:, None] > 0, resp.T @ x / safe[:, None], centres)
        return it + 1, new, jnp.any(new != centres)

    _, centres, _ = jax.lax.while_loop(
        lambda c: (c[0] < lloyd_iters) & c[2], lloyd, (jnp.int32(0), centres, jnp.bool_(True))
    )
    return centres


def _inertia(x, x_sq, centres, w=None):
    dmin = jnp.min(_sq_dist(x, x_sq, centres), axis=1)
    return jnp.sum(dmin) if w is None else w @ dmin


def _swap(key, x, x_sq, centres, inertia, n_trials, lloyd_iters, w=None):
    """One swap move of k-means local search: ``(centres, inertia)``, changed only if it lowers the inertia.

    The centre whose removal raises the inertia least (its points' gap between
    their nearest and second-nearest centre, summed) moves to the best, by the
    potential without it, of ``n_trials`` points drawn by D^2 sampling from the
    other centres; Lloyd iterations follow, and the move is kept if the final
    inertia is lower (the swap heuristic of Kanungo et al. 2004, one greedy
    candidate per round). It moves a centre from a cluster that seeding covered
    twice to one it missed, which Lloyd iterations never do.
    """
    k = centres.shape[0]
    d2 = _sq_dist(x, x_sq, centres)  # [n, K]
    nearest = jnp.argmin(d2, axis=1)
    d_first = jnp.min(d2, axis=1)
    d_second = jnp.min(jnp.where(jax.nn.one_hot(nearest, k, dtype=bool), jnp.inf, d2), axis=1)
    gap = d_second - d_first if w is None else w * (d_second - d_first)
    removal = jnp.zeros(k, x.dtype).at[nearest].add(gap)
    j = jnp.argmin(removal)
    d2_without = jnp.where(nearest == j, d_second, d_first)
    wd2 = d2_without if w is None else w * d2_without
    fallback = 0.0 if w is None else jnp.log(w)
    logits = jnp.where(jnp.sum(wd2) > 0, jnp.log(wd2), fallback)
    cands = x[jax.random.categorical(key, logits, shape=(n_trials,))]  # [T, d]
    cand_d2 = jnp.minimum(d2_without[:, None], _sq_dist(x, x_sq, cands))
    potential = jnp.sum(cand_d2, axis=0) if w is None else w @ cand_d2
    moved = _lloyd(x, x_sq, centres.at[j].set(cands[jnp.argmin(potential)]), lloyd_iters, w)
    moved_inertia = _inertia(x, x_sq, moved, w)
    better = moved_inertia < inertia
    return jnp.where(better, moved, centres), jnp.where(better, moved_inertia, inertia)


def _hard_moments(x, centres, reg_covar, w=None, covariance_type="full"):
    """Weights, means and covariances of the points nearest to each centre (one hard M-step).

    ``w``, if given, are weights of mean 1 (:func:`normalized_weights`): the
    statistics are weighted and the mixture weights' smoothing ``(n_k + 1) / (n + K)``
    keeps the units of points.
    """
    n, d = x.shape
    k = centres.shape[0]
    resp = jax.nn.one_hot(jnp.argmin(_sq_dist(x, jnp.sum(x * x, axis=1), centres), axis=1), k, dtype=x.dtype)
    if w is not None:
        resp = resp * w[:, None]
    nk = jnp.sum(resp, axis=0)
    safe = jnp.maximum(nk, 1.0) if w is None else jnp.where(nk > 0, nk, 1.0)
    means = jnp.where(nk[:, None] > 0, resp.T @ x / safe[:, None], centres)
    if covariance_type == "full":
        diff = x[None] - means[:, None]  # [K, n, d]
        covs = jnp.einsum("kn,kni,knj->kij", resp.T, diff, diff) / safe[:, None, None]
        covs = covs + reg_covar * jnp.eye(d, dtype=x.dtype)[None]
    else:  # the M-step's estimate of the type (tied: pooled over the points' total weight)
        covs = weighted_covariance(x, resp, safe, means, reg_covar, covariance_type)
    weights = (nk + 1.0) / (n + k)  # no empty component gets weight 0
    return weights, means, covs


@functools.partial(jax.jit, static_argnames=("n_components", "covariance_type"))
def init_params(
    key: jax.Array,
    x: jax.Array,
    n_components: int,
    init: InitConfig,
    reg_covar,
    sample_weight=None,
    covariance_type: str = "full",
) -> Any:
    """:func:`initialize` without argument checks (jitted; for use inside the package)."""
    sw_ = normalized_weights(sample_weight, x.shape[0])
    if init.method == "random_from_data":
        w, m, c = _random_from_data(key, x, n_components, init.cov_scale, reg_covar, sw_, covariance_type)
    else:
        lloyd_iters = KMEANS_ITERS if init.method == "kmeans" else 0
        # Distances as |x|^2 - 2 x.c + |c|^2 lose digits at a large offset: work centred.
        shift = centre(x, sw_)
        xc = x - shift[None, :]
        keys = key[None] if init.n_init == 1 else jax.random.split(key, init.n_init)
        n_swaps = init.n_swaps if init.method == "kmeans" else 0
        centres, inertia = jax.vmap(lambda k: _kmeans(k, xc, n_components, lloyd_iters, sw_, n_swaps))(keys)
        w, m, c = _hard_moments(xc, centres[jnp.argmin(inertia)], reg_covar, sw_, covariance_type)
        m = m + shift[None, :]
    return moments_to_params(w, m, c, jnp.asarray(reg_covar, x.dtype), covariance_type=covariance_type)


def initialize(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    *,
    method: str = "kmeans",
    cov_scale: float = 0.1,
    n_init: int = 10,
    n_swaps: int = KMEANS_SWAPS,
    reg_covar: float = 1e-6,
    sample_weight: jax.typing.ArrayLike | None = None,
    covariance_type: str = "full",
) -> Any:
    """Random initial parameters from the data.

    Args:
      key: PRNG key.
      x: ``[n, d]`` data.
      n_components: ``K``.
      method: ``"random_from_data"``: means at ``K`` distinct random points,
        covariances ``cov_scale`` x the data covariance (+ ``reg_covar``),
        weights ``1/K`` (the paper's random initialisation); ``"kmeans++"``:
        greedy k-means++ seeds (the best of ``2 + log K`` D^2-sampled
        candidates at each seed, as scikit-learn), then weights, means and
        covariances of the points nearest to each seed; ``"kmeans"``: those
        seeds, then Lloyd's
        iterations until no centre moves (at most 100), then the same moments
        of the final clusters (scikit-learn's default initialisation).
      cov_scale: see ``method``.
      n_init: k-means runs of ``"kmeans"`` and ``"kmeans++"``; the one of lowest
        inertia is kept.
      n_swaps: swap moves after the Lloyd iterations of each ``"kmeans"`` run
        (:class:`~swgmm_jax.InitConfig` ``n_swaps``).
      reg_covar: covariance floor, in the units of ``x``.
      sample_weight: ``None`` or ``[n]`` weights of the points (>= 0, not all
        0; only their ratios matter). Random points are drawn in proportion to
        the weights; the data covariance, the k-means potential, centroids and
        inertia, and the final moments are weighted (the mixture weights
        ``(n_k + 1) / (n + K)`` count ``n_k`` with the weights rescaled to
        mean 1).
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"`` or ``"tied"``:
        the type of the parameters (each moment estimated as the type's
        M-step does: the diagonal of the data covariance, its mean, or the
        clusters' pooled scatter).

    Returns:
      The type's parameters (``GMMParams`` for ``"full"``) in the units of
      ``x``. Vmap over keys for many restarts.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (100, 3))
      >>> sw.initialize(jax.random.key(1), x, 4).means.shape
      (4, 3)

      Weight 0 drops a point: one component on the 50 points that count.

      >>> w = (jnp.arange(100) < 50).astype(float)
      >>> m = sw.initialize(jax.random.key(1), x, 1, sample_weight=w).means
      >>> bool(jnp.allclose(m[0], x[:50].mean(axis=0), atol=1e-5))
      True
    """
    x, k, _ = check_fit_args(key, x, n_components, None)
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    check_choice(method, "method", INIT_METHODS)
    check_real(cov_scale, "cov_scale", low=0.0, low_open=True)
    check_positive_int(n_init, "n_init")
    check_positive_int(n_swaps, "n_swaps", minimum=0)
    check_real(reg_covar, "reg_covar", low=0.0)
    ct = check_covariance_type(covariance_type)
    init = InitConfig(method, cov_scale, n_init, n_swaps)
    return init_params(key, x, k, init, reg_covar, w, covariance_type=ct)


def check_fit_args(
    key: Any,
    x: Any,
    n_components: Any,
    init: Any,
    batch_dims: tuple[int, ...] = (),
    covariance_type: str | None = None,
) -> tuple[jax.Array, int, Any]:
    """Validate the arguments every fit takes; returns ``(x, K, init)`` as arrays of ``x``'s dtype.

    ``covariance_type``, if given, is the config's: ``init`` must be of that type.
    """
    check_key(key)
    k = check_positive_int(n_components, "n_components")
    x = check_data(x, "x")
    if x.shape[0] < k:
        raise ValueError(f"x has {x.shape[0]} points, fewer than n_components={k}")
    if init is not None:
        init = check_params(init, "init", n_components=k, dim=x.shape[1], batch_dims=batch_dims)
        if covariance_type is not None and covariance_type_of(init) != covariance_type:
            raise ValueError(
                f"init is {type(init).__name__} (covariance_type={covariance_type_of(init)!r}) but the "
                f"config has covariance_type={covariance_type!r}: set the config's covariance_type to match"
            )
        init = jax.tree.map(lambda a: jnp.asarray(a, x.dtype), init)
    return x, k, init
