"""Picking the best of many restarts, by sliced distance or by likelihood."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._params import PARAMS_TYPES, check_params, log_likelihood
from swgmm_jax._sliced import check_loss_args, sliced_loss
from swgmm_jax._transport1d import QUANTILE_ITERS
from swgmm_jax._validation import check_choice, check_data, check_dim, check_key, check_sample_weight

__all__ = ["Selection", "select_best"]

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


class Selection(NamedTuple):
    """What :func:`select_best` returns: the best restart first, then where it was and every score.

    A ``NamedTuple``: ``best, i, scores = sw.select_best(...)`` unpacks it.

    Attributes:
      best: the chosen restart's result, unbatched (same type as the result passed in).
      index: its index along the restart axis (a Python ``int``).
      scores: ``[R]`` the criterion of every restart (NaN for a diverged one):
        for ``"sw"`` the sliced distance, **lower is better**; for
        ``"log_likelihood"`` the mean log-likelihood, **higher is better**.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (200, 2))
      >>> many = sw.fit_em_restarts(jax.random.key(1), x, 2, 3, sw.EMConfig(max_iter=5))
      >>> sel = sw.select_best(many, x, "log_likelihood")
      >>> sel.restart_index == int(sel.scores.argmax()), sel.best.params.means.shape
      (True, (2, 2))
    """

    best: Any
    restart_index: int
    scores: jax.Array


def _looks_like_a_key(value: Any) -> bool:
    if not isinstance(value, jax.Array):
        return False
    return jnp.issubdtype(value.dtype, jax.dtypes.prng_key) or (value.dtype == np.uint32 and value.ndim == 1)


def select_best(
    result: Any,
    x: jax.typing.ArrayLike,
    criterion: str,
    *,
    key: jax.Array | None = None,
    n_projections: int = 256,
    p: float = 2.0,
    n_levels: int | None = None,
    exclude: Any = None,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> Selection:
    """Pick the best restart of a batched result.

    A host-side function (it returns a Python ``int`` index), called on the
    output of a ``*_restarts`` call, not inside ``jit``.

    Args:
      result: a batched :class:`swgmm_jax.FitResult` or :class:`swgmm_jax.EMResult`
        from a ``*_restarts`` call (anything with a batched ``params`` field).
      x: ``[n, d]`` data the criterion is evaluated on.
      criterion: ``"sw"``: the smallest ``SW_p^p`` on ``n_projections``
        directions with ``n_levels`` levels per slice (``None``: all data
        levels), the same directions for every restart (needs ``key``); or
        ``"log_likelihood"``: the largest mean log-likelihood (no ``key``).
      key: PRNG key of the evaluation directions; required for ``"sw"``,
        unused (and may be omitted) for ``"log_likelihood"``.
      n_projections: directions of the ``"sw"`` criterion.
      p: transport exponent of the ``"sw"`` criterion.
      n_levels: levels per slice of the ``"sw"`` criterion.
      exclude: optional ``[R]`` booleans: restarts never to pick (e.g. fits
        with a collapsed component, see :func:`swgmm_jax.fit_robust`).
      sample_weight: ``None`` or ``[n]`` weights of the points: either
        criterion is then the weighted one (see :func:`swgmm_jax.sliced_wasserstein`
        and :func:`swgmm_jax.log_likelihood`).

    Returns:
      :class:`Selection` ``(best, index, scores)``: the unbatched best result,
      its index and the ``[R]`` scores (``"sw"``: lower is better;
      ``"log_likelihood"``: higher is better; NaN for a diverged restart).
      Restarts with non-finite parameters or scores are never picked; a
      ValueError says so when every restart is.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> many = sw.fit_restarts(jax.random.key(1), x, 2, 3, sw.FitConfig(n_steps=20))
      >>> best, i, scores = sw.select_best(many, x, "sw", key=jax.random.key(2), n_projections=32)
      >>> scores.shape, best.params.means.shape, i == int(scores.argmin())
      ((3,), (2, 2), True)
    """
    if _looks_like_a_key(result):
        raise TypeError(
            "select_best takes the batched result first: select_best(result, x, criterion, key=key) "
            "(the key is a keyword argument since the signature changed, needed for criterion='sw' only)"
        )
    check_choice(criterion, "criterion", CRITERIA)
    x = check_data(x, "x")
    params: Any = getattr(result, "params", None)
    if type(params) not in PARAMS_TYPES.values() or params.means.ndim != 3:
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
            raise ValueError(
                "key is required for criterion='sw' (the evaluation directions): select_best(..., key=key)"
            )
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
    return Selection(jax.tree.map(lambda a: a[idx], result), idx, scores)
