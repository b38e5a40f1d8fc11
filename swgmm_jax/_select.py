"""Picking the best of many restarts, by sliced distance or by likelihood."""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from swgmm_jax._params import GMMParams, check_params, log_likelihood
from swgmm_jax._sliced import check_loss_args, sliced_loss
from swgmm_jax._transport1d import QUANTILE_ITERS
from swgmm_jax._validation import check_choice, check_data, check_dim, check_key, check_sample_weight

__all__ = ["select_best"]

CRITERIA = ("sw", "log_likelihood")


@functools.partial(jax.jit, static_argnames=("n_projections", "p", "n_levels"))
def _restart_sw(key, params, x, n_projections, p, n_levels, sample_weight=None):
    def one(pr):
        return sliced_loss(
            key,
            pr,
            x,
            n_projections=n_projections,
            p=p,
            n_levels=n_levels,
            quantile_iters=QUANTILE_ITERS,
            sample_weight=sample_weight,
        )

    return jax.vmap(one)(params)


# At module level: a jit of a fresh vmap on every call would trace and compile again each time.
_restart_ll = jax.jit(jax.vmap(log_likelihood, (0, None)))
_restart_weighted_ll = jax.jit(
    jax.vmap(lambda params, x, w: log_likelihood(params, x, sample_weight=w), (0, None, None))
)


def select_best(
    key: jax.Array | None,
    result: Any,
    x: jax.typing.ArrayLike,
    criterion: str = "sw",
    *,
    n_projections: int = 256,
    p: float = 2.0,
    n_levels: int | None = None,
    exclude: Any = None,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> tuple[int, jax.Array, Any]:
    """Pick the best restart of a batched result.

    Args:
      key: PRNG key of the evaluation directions for ``"sw"`` (the same
        directions for every restart); may be ``None`` for ``"log_likelihood"``.
      result: a batched :class:`swgmm_jax.FitResult` or :class:`swgmm_jax.EMResult`
        from a ``*_restarts`` call (anything with a batched ``params`` field).
      x: ``[n, d]`` data the criterion is evaluated on.
      criterion: ``"sw"`` (smallest ``SW_p^p`` on ``n_projections`` directions
        with ``n_levels`` levels per slice, ``None``: all data levels) or
        ``"log_likelihood"`` (largest mean log-likelihood).
      n_projections: directions of the ``"sw"`` criterion.
      p: transport exponent of the ``"sw"`` criterion.
      n_levels: levels per slice of the ``"sw"`` criterion.
      exclude: optional ``[R]`` booleans: restarts never to pick (e.g. fits
        with a collapsed component, see :func:`swgmm_jax.fit_robust`).
      sample_weight: ``None`` or ``[n]`` weights of the points: either
        criterion is then the weighted one (see :func:`swgmm_jax.sliced_wasserstein`
        and :func:`swgmm_jax.log_likelihood`).

    Returns:
      ``(index, scores, best)``: the best restart's index, the ``[R]`` scores
      (SW distances, or log-likelihoods; NaN for a diverged restart) and the
      unbatched result. Restarts with non-finite parameters or scores are
      never picked; a ValueError says so when every restart is.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> many = sw.fit_restarts(jax.random.key(1), x, 2, 3, sw.FitConfig(n_steps=20))
      >>> i, scores, best = sw.select_best(jax.random.key(2), many, x, n_projections=32)
      >>> scores.shape, best.params.means.shape
      ((3,), (2, 2))
    """
    check_choice(criterion, "criterion", CRITERIA)
    x = check_data(x, "x")
    params = getattr(result, "params", None)
    if not isinstance(params, GMMParams) or params.means.ndim != 3:
        raise TypeError("result must be a batched result of a *_restarts call (params with a restart axis)")
    n_restarts = params.means.shape[0]
    # Shapes and dtypes only: a diverged restart's NaN parameters are expected here, and skipped below.
    params = check_params(params, "result.params", batch_dims=(n_restarts,), values=False)
    check_dim(x, params.means.shape[-1])
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    check_loss_args(
        n_projections=n_projections,
        p=p,
        n_levels=n_levels,
        quantile_iters=QUANTILE_ITERS,
        sort="auto",
        mesh=None,
    )
    if criterion == "sw":
        if key is None:
            raise ValueError("key is required for criterion='sw' (the evaluation directions)")
        check_key(key)
        scores = _restart_sw(key, params, x, n_projections, float(p), n_levels, w)
    elif w is None:
        scores = _restart_ll(params, x)
    else:
        scores = _restart_weighted_ll(params, x, w)
    finite = np.isfinite(np.asarray(scores))
    for leaf in params:
        finite &= np.all(np.isfinite(np.asarray(leaf)).reshape(n_restarts, -1), axis=1)
    if exclude is not None:
        excluded = np.asarray(exclude)
        if excluded.dtype != np.bool_ or excluded.shape != (n_restarts,):
            raise ValueError(
                f"exclude must be [{n_restarts}] booleans, got {excluded.dtype} {excluded.shape}"
            )
        finite &= ~excluded
    if not finite.any():
        raise ValueError(
            f"result: all {n_restarts} restarts have non-finite parameters or {criterion} scores "
            "(diverged fits) or are excluded; nothing to select"
        )
    sign = 1.0 if criterion == "sw" else -1.0  # smallest SW distance, largest likelihood
    idx = int(np.argmin(np.where(finite, sign * np.asarray(scores, np.float64), np.inf)))
    return idx, scores, jax.tree.map(lambda a: a[idx], result)
