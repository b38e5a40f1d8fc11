"""Choosing the number of components: fit each ``K`` (restarts vmapped), score, pick the best."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._config import EMConfig, FitConfig
from swgmm_jax._em import fit_em_restarts
from swgmm_jax._fit import fit_restarts
from swgmm_jax._params import GMMParams, covariance_type_of, n_parameters, point_log_likelihood
from swgmm_jax._robust import ROBUST_EM_CONFIG, ROBUST_FIT_CONFIG, fit_robust, pair_configs
from swgmm_jax._sliced import sliced_loss
from swgmm_jax._validation import (
    check_choice,
    check_data,
    check_dim,
    check_key,
    check_positive_int,
    check_real,
)

__all__ = ["ComponentSelection", "select_n_components"]

METHODS = ("sw", "sw+em", "em", "robust")
CRITERIA = ("bic", "aic", "sw")

# The held-out SW distance: the same directions for every K, all levels of the held-out data.
_SW_EVAL_PROJECTIONS = 256


class ComponentSelection(NamedTuple):
    """What :func:`select_n_components` returns: the best ``K`` first, then the table per ``K``.

    Every table field has one entry per tried ``K``, in the order of ``n_components``.

    Attributes:
      best_n_components: the chosen ``K`` (a Python ``int``).
      best_params: its fitted :class:`swgmm_jax.GMMParams` (data units).
      criterion: the criterion ``K`` was chosen by (``"bic"``, ``"aic"`` or ``"sw"``).
      n_components: the tried ``K``, a tuple of ints.
      bic: ``[len(n_components)]`` BIC on the fitted data (lower is better).
      aic: ``[len(n_components)]`` AIC on the fitted data (lower is better).
      log_likelihood: ``[len(n_components)]`` mean log-likelihood per point on the fitted data.
      sw: ``[len(n_components)]`` ``SW_2^2`` to the held-out data on shared
        directions (lower is better), or ``None`` when there was no held-out data.
      params: the fitted ``GMMParams`` of each ``K`` (the best restart), a tuple.

    Examples:
      >>> import jax, numpy as np, swgmm_jax as sw
      >>> x = np.concatenate([np.random.default_rng(0).normal(m, 0.3, (60, 2)) for m in (-3, 3)])
      >>> sel = sw.select_n_components(jax.random.key(0), x, (1, 2), method="em", n_restarts=2)
      >>> sel.best_n_components, sel.n_components, sel.bic.shape, sel.sw is None
      (2, (1, 2), (2,), True)
    """

    best_n_components: int
    best_params: GMMParams
    criterion: str
    n_components: tuple[int, ...]
    bic: np.ndarray
    aic: np.ndarray
    log_likelihood: np.ndarray
    sw: np.ndarray | None
    params: tuple[GMMParams, ...]


def _check_ks(n_components: Any, n_points: int) -> tuple[int, ...]:
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        raise TypeError(
            f"n_components must be several K to compare (e.g. range(1, 9)), got the single int {n_components}"
        )
    if not isinstance(n_components, Iterable) or isinstance(n_components, (str, bytes)):
        raise TypeError(f"n_components must be an iterable of ints, got {type(n_components).__name__}")
    ks = tuple(check_positive_int(k, "n_components[i]") for k in n_components)
    if not ks:
        raise ValueError("n_components must hold at least one K")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat a K, got {list(ks)}")
    if max(ks) > n_points:
        raise ValueError(f"n_components: K={max(ks)} exceeds the {n_points} points fitted")
    return ks


def _pad(params: GMMParams, k_max: int) -> GMMParams:
    """The same mixture with ``k_max`` components: the extra ones copy the first, at weight ~``tiny``.

    Lets every ``K`` be scored in one batched call (one compilation, not one per ``K``): a weight
    of ``tiny`` (1e-38 in float32) changes no density, quantile or sliced distance by a rounding.
    """
    extra = k_max - params.means.shape[0]
    if extra == 0:
        return params
    floor = jnp.log(jnp.finfo(params.means.dtype).tiny)
    scale = params[2]
    if covariance_type_of(params) != "tied":  # a tied scale has no component axis
        scale = jnp.concatenate([scale, jnp.repeat(scale[:1], extra, axis=0)])
    cls: Any = type(params)
    return cls(
        jnp.concatenate([params.log_weights, jnp.full((extra,), floor, params.logits.dtype)]),
        jnp.concatenate([params.means, jnp.repeat(params.means[:1], extra, axis=0)]),
        scale,
        params.reg_covar,
    )


@functools.partial(jax.jit, static_argnames="n_projections")
def _batched_sw(key, params, x, n_projections):
    """``[B]`` ``SW_2^2`` of each set of ``params[B, ...]`` to ``x``, on the same directions."""
    return jax.vmap(lambda pr: sliced_loss(key, pr, x, n_projections=n_projections))(params)


# Jitted, not score_samples: a diverged restart's NaN parameters must score NaN here, not raise.
_batched_points = jax.jit(jax.vmap(point_log_likelihood, (0, None)))


def _fit_restarts_of_k(key, x, k, method, n_restarts, config, em_config) -> GMMParams:
    """``[R, k, d]`` parameters of the ``n_restarts`` fits of ``method`` (``[1, k, d]``: robust's choice)."""
    k_fit, k_em = jax.random.split(key)
    if method == "robust":
        params = fit_robust(k_fit, x, k, config, em_config, n_restarts=n_restarts).params
        return jax.tree.map(lambda a: a[None], params)
    if method == "em":
        return fit_em_restarts(k_em, x, k, n_restarts, em_config).params
    sw_params = fit_restarts(k_fit, x, k, n_restarts, config).params
    if method == "sw":
        return sw_params
    return fit_em_restarts(k_em, x, k, n_restarts, em_config, init=sw_params).params


def select_n_components(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: Iterable[int] = range(1, 9),
    *,
    criterion: str = "bic",
    method: str = "sw",
    n_restarts: int = 4,
    config: FitConfig | None = None,
    em_config: EMConfig | None = None,
    x_val: jax.typing.ArrayLike | None = None,
    val_fraction: float = 0.2,
    sw_rtol: float = 0.05,
) -> ComponentSelection:
    """Fit a mixture for each number of components ``K`` and choose ``K``.

    Each ``K`` is fitted ``n_restarts`` times as one vmapped call and its best
    restart kept (``"sw"``: the smallest SW distance on fixed directions, the
    paper's way; ``"sw+em"``/``"em"``: the largest likelihood; ``"robust"``:
    :func:`swgmm_jax.fit_robust`'s choice). Every ``K`` is a new shape, so a
    new compilation.

    Held-out data: ``x_val`` when given; otherwise, for ``criterion="sw"``, a
    random ``val_fraction`` of ``x`` is held out and the rest fitted (for
    ``"bic"``/``"aic"`` all of ``x`` is fitted and ``sw`` is ``None``). BIC,
    AIC and the log-likelihood are on the fitted data.

    With the estimator, scikit-learn's tools work too:
    ``GridSearchCV(sw.GaussianMixture(), {"n_components": range(1, 9)},
    scoring=lambda est, X, y=None: -est.bic(X))`` chooses ``K`` by BIC on held-out folds.

    Args:
      key: PRNG key (split between the ``K``, the held-out split and the SW
        evaluation directions).
      x: ``[n, d]`` data.
      n_components: the ``K`` to try (distinct ints >= 1, e.g. ``range(1, 9)``).
      criterion: ``"bic"`` (default), ``"aic"`` (both lower is better, on the
        fitted data) or ``"sw"`` (the smallest ``SW_2^2`` to the held-out data,
        256 directions shared by every ``K``, all the held-out levels).
      method: ``"sw"`` (default; :func:`swgmm_jax.fit_restarts`), ``"sw+em"``,
        ``"em"`` (:func:`swgmm_jax.fit_em_restarts`) or ``"robust"``.
      n_restarts: restarts per ``K``.
      config: :class:`swgmm_jax.FitConfig` of the SW fits (``None``: the default;
        for ``"robust"``, :func:`swgmm_jax.fit_robust`'s).
      em_config: :class:`swgmm_jax.EMConfig` of the EM fits (``None``: the default;
        for ``"robust"``, :func:`swgmm_jax.fit_robust`'s).
      x_val: optional ``[m, d]`` held-out data for the ``sw`` column.
      val_fraction: the share of ``x`` held out when ``criterion="sw"`` and no
        ``x_val`` is given, in ``(0, 1)``.
      sw_rtol: for ``criterion="sw"``, the smallest ``K`` whose held-out
        distance is within ``sw_rtol`` (relative) of the smallest is chosen:
        past the true ``K`` the held-out SW distance flattens at the held-out
        sample's own noise level rather than rising again, so its bare argmin
        drifts to a larger ``K``. ``0``: the argmin.

    Returns:
      :class:`ComponentSelection`: the best ``K`` and its parameters, then the
      table per ``K`` (BIC, AIC, log-likelihood, held-out SW, parameters).

    Examples:
      >>> import jax, numpy as np, swgmm_jax as sw
      >>> x = np.concatenate([np.random.default_rng(0).normal(m, 0.3, (60, 2)) for m in (-3, 3)])
      >>> sel = sw.select_n_components(jax.random.key(0), x, (1, 2), method="em", n_restarts=2)
      >>> sel.best_n_components, bool(sel.bic[1] < sel.bic[0])
      (2, True)
    """
    check_key(key)
    x = check_data(x, "x")
    check_choice(criterion, "criterion", CRITERIA)
    check_choice(method, "method", METHODS)
    n_restarts = check_positive_int(n_restarts, "n_restarts")
    if method == "robust":
        config, em_config = pair_configs(config, em_config, ROBUST_FIT_CONFIG, ROBUST_EM_CONFIG)
    else:  # one covariance type for both phases (a config not given takes the other's)
        config, em_config = pair_configs(config, em_config, FitConfig(), EMConfig())
    check_real(val_fraction, "val_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    check_real(sw_rtol, "sw_rtol", low=0.0)
    k_split, k_eval, k_fit, k_pick = jax.random.split(key, 4)
    if x_val is not None:
        x_val = check_data(x_val, "x_val")
        check_dim(x_val, x.shape[1], "x_val")
    elif criterion == "sw":
        n = x.shape[0]
        n_val = int(round(float(val_fraction) * n))
        if n_val < 1 or n_val >= n:
            raise ValueError(
                f"val_fraction={val_fraction} of {n} points leaves no held-out or no fitted point; "
                "pass x_val or more data"
            )
        perm = jax.random.permutation(k_split, n)
        x, x_val = x[perm[n_val:]], x[perm[:n_val]]
    ks = _check_ks(n_components, x.shape[0])

    # Every K's restarts, padded to the largest K and stacked: each score below is one batched call
    # (one compilation), not one per K.
    restarts = [
        _fit_restarts_of_k(kk, x, k, method, n_restarts, config, em_config)
        for kk, k in zip(jax.random.split(k_fit, len(ks)), ks, strict=True)
    ]
    k_max = max(ks)
    r = restarts[0].means.shape[0]
    padded = jax.tree.map(
        lambda *a: jnp.concatenate(a), *(jax.vmap(lambda pr: _pad(pr, k_max))(rs) for rs in restarts)
    )  # [len(ks) * R, k_max, ...]
    points = np.asarray(_batched_points(padded, x), np.float64).reshape(len(ks), r, -1)
    finite = np.stack(
        [np.all(np.isfinite(np.asarray(leaf)).reshape(len(ks), r, -1), axis=-1) for leaf in padded]
    ).all(axis=0)
    if method == "sw" and r > 1:  # the paper's way: the restart of smallest SW distance on fixed directions
        pick = np.asarray(_batched_sw(k_pick, padded, x, _SW_EVAL_PROJECTIONS), np.float64).reshape(
            len(ks), r
        )
        pick = -pick
    else:  # the largest likelihood (EM's objective)
        pick = points.mean(axis=-1)
    pick = np.where(finite & np.isfinite(pick), pick, -np.inf)
    best_r = np.argmax(pick, axis=1)
    valid = np.isfinite(pick[np.arange(len(ks)), best_r])  # a K whose every restart diverged: NaN row
    rows = np.arange(len(ks)) * r + best_r
    fitted = tuple(jax.tree.map(lambda a, i=i: a[i], rs) for rs, i in zip(restarts, best_r, strict=True))
    best_points = np.where(valid[:, None], points[np.arange(len(ks)), best_r], np.nan)
    n = x.shape[0]
    n_par = np.array([n_parameters(pr) for pr in fitted], np.float64)
    total = best_points.sum(axis=1)
    table = {
        "bic": -2.0 * total + n_par * np.log(n),
        "aic": -2.0 * total + 2.0 * n_par,
        "log_likelihood": best_points.mean(axis=1),
    }
    swd = None
    if x_val is not None:
        best_padded = jax.tree.map(lambda a: a[rows], padded)
        swd = np.asarray(_batched_sw(k_eval, best_padded, x_val, _SW_EVAL_PROJECTIONS), np.float64)
        swd = np.where(valid, swd, np.nan)
    scores = swd if criterion == "sw" else table[criterion]
    assert scores is not None  # "sw" always has held-out data
    finite_scores = np.isfinite(scores)
    if not finite_scores.any():
        raise ValueError(f"x: every K's fits diverged (non-finite {criterion}); nothing to select")
    if criterion == "sw":
        near = finite_scores & (scores <= np.min(scores[finite_scores]) * (1.0 + float(sw_rtol)))
        best = int(min(np.flatnonzero(near), key=lambda i: ks[i]))
    else:
        best = int(np.argmin(np.where(finite_scores, scores, np.inf)))
    return ComponentSelection(
        best_n_components=ks[best],
        best_params=fitted[best],
        criterion=criterion,
        n_components=ks,
        bic=table["bic"],
        aic=table["aic"],
        log_likelihood=table["log_likelihood"],
        sw=swd,
        params=fitted,
    )
