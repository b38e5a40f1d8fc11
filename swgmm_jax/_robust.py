"""One call for the most robust fit the package knows: SW restarts, then EM, then the best likelihood.

The paper's point is that SW fits do not depend on luck with the
initialisation the way EM does; what an independent implementation and this
package's Figure 3 run showed (``shared/FINDINGS.md``, the README's results) is
finer than that: pure SW fits land in the right basin far more often than EM
from the same random start, but at a different optimum (the SW optimum is not
the likelihood optimum), and EM from an SW fit reaches the likelihood optimum
of that basin. :func:`fit_robust` therefore runs

1. ``n_restarts`` SW fits (:func:`swgmm_jax.fit_restarts`, one vmapped call);
2. EM from every one of them (:func:`swgmm_jax.fit_em_restarts`, one vmapped
   call; with ``em_config.relocations`` rounds of likelihood-accepted
   merge-and-relocate moves after convergence);
3. the restart with the largest log-likelihood, skipping any that diverged
   and any with a collapsed component (an eigenvalue within
   ``COLLAPSE_FACTOR`` times the floor, where the likelihood is unbounded: on
   iris, whose duplicated points attract such components, the best
   likelihood was otherwise always a degenerate fit) unless all are
   (:func:`swgmm_jax.select_best`).

EM is cheap next to the SW fits, so every restart is polished rather than a
few picked by SW distance first.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._config import EMConfig, FitConfig, check_config
from swgmm_jax._em import EMResult, fit_em_restarts
from swgmm_jax._fit import FitResult, ProgressSink, check_progress, fit_restarts
from swgmm_jax._params import GMMParams, collapsed_components
from swgmm_jax._select import select_best
from swgmm_jax._validation import check_positive_int

__all__ = ["RobustResult", "fit_robust"]

ROBUST_FIT_CONFIG = FitConfig(n_steps=100)
"""SW settings of :func:`fit_robust`: the defaults with 100 steps, since EM
finishes each fit. Measured on the quality suite's quick problems (5 calls each,
4 restarts per call): 500, 200 and 100 steps gave the same final likelihood on every
call (equal to scikit-learn's ``n_init=10``), 100 steps at about half the SW
time of 200 (``python -m experiments.quality_suite --methods sw_robust
--sw-config '{"n_steps": 100}' --tag robust100``, against ``200``);
``experiments/robust_calls.py`` checks the choice on 100 calls at each of
n = 850 and 3,000 on ring-square-line."""

ROBUST_EM_CONFIG = EMConfig(max_iter=1000, tol=1e-6, relocations=5)
"""EM settings of :func:`fit_robust`: to convergence (``tol=1e-6``), then 5
likelihood-accepted merge-and-relocate rounds."""


class RobustResult(NamedTuple):
    """Result of :func:`fit_robust`.

    Attributes:
      params: the chosen fit's ``GMMParams``, in the caller's units.
      restart_index: ``[]`` which restart it is.
      log_likelihoods: ``[R]`` mean log-likelihood of every restart after EM
        (NaN for one that diverged, which is never chosen).
      sw_distances: ``[R]`` ``SW_p^p`` of every SW fit before EM, on the same
        fixed directions (128 directions, 256 levels per slice).
      collapsed: ``[R]`` whether each restart ended with a collapsed component
        (not chosen unless every restart did).
      sw_result: the batched :class:`swgmm_jax.FitResult` of the SW fits.
      em_result: the batched :class:`swgmm_jax.EMResult` of EM from them.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> res = sw.fit_robust(jax.random.key(1), x, 2, sw.FitConfig(n_steps=30), n_restarts=3)
      >>> res.params.means.shape, res.log_likelihoods.shape, bool(res.restart_index < 3)
      ((2, 2), (3,), True)
    """

    params: GMMParams
    restart_index: jax.Array
    log_likelihoods: jax.Array
    sw_distances: jax.Array
    collapsed: jax.Array
    sw_result: FitResult
    em_result: EMResult


def pair_configs(config: Any, em_config: Any, fit_default: FitConfig, em_default: EMConfig):
    """The SW and EM configs of a two-phase fit, checked, with one covariance type.

    A config not given is the default with the other's ``covariance_type``;
    two given with different types raise a ValueError.
    """
    if config is not None:
        config = check_config(config, FitConfig)
    if em_config is not None:
        em_config = check_config(em_config, EMConfig)
    if config is None and em_config is None:
        return fit_default, em_default
    if config is None:
        return fit_default.replace(covariance_type=em_config.covariance_type), em_config
    if em_config is None:
        return config, dataclasses.replace(em_default, covariance_type=config.covariance_type)
    if config.covariance_type != em_config.covariance_type:
        raise ValueError(
            f"config has covariance_type={config.covariance_type!r} but em_config has "
            f"{em_config.covariance_type!r}: both phases fit the same model"
        )
    return config, em_config


def fit_robust(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    config: FitConfig | None = None,
    em_config: EMConfig | None = None,
    *,
    n_restarts: int = 4,
    mesh: Any = "auto",
    progress: Any = None,
    sample_weight: jax.typing.ArrayLike | None = None,
) -> RobustResult:
    """The most robust fit the package knows: ``n_restarts`` SW fits, EM from each, the best likelihood.

    See the module's docstring for why. Pure SW-GMM, the paper's method, stays
    :func:`swgmm_jax.fit`; this call is for when the aim is the maximum-likelihood
    GMM and EM alone is at the mercy of its initialisation.

    Args:
      key: PRNG key (split between the SW restarts, EM's relocation moves and
        the evaluation directions).
      x: ``[n, d]`` data.
      n_components: ``K``.
      config: :class:`FitConfig` of the SW fits; defaults to
        ``FitConfig(n_steps=100)`` (``ROBUST_FIT_CONFIG``).
      em_config: :class:`EMConfig` of the EM phase; defaults to
        ``EMConfig(max_iter=1000, tol=1e-6, relocations=5)``: to convergence,
        then 5 likelihood-accepted merge-and-relocate rounds. Both phases fit
        one covariance type: a config not given takes the other's
        ``covariance_type``; two given must agree.
      n_restarts: number of SW restarts ``R``. Each starts from the best of
        10 k-means runs (the default ``FitConfig`` init): on the quality
        suite's quick problems 4 restarts found scikit-learn's ``n_init=10``
        likelihood on every call tried.
      mesh: as in :func:`swgmm_jax.fit_restarts` (the restarts are spread
        over the devices).
      progress: as in :func:`swgmm_jax.fit_restarts`: reports of the SW
        steps, then one ``stage="em"`` report when EM has finished (``step``:
        the most iterations any restart took; ``loss``: the ``[R]`` negative
        mean log-likelihoods).
      sample_weight: ``None`` or ``[n]`` weights of the points (>= 0, not all
        0): the SW fits, EM and both selection scores are weighted (see
        :func:`swgmm_jax.fit` and :func:`swgmm_jax.fit_em`). ``config.freeze``
        and ``em_config.freeze`` hold parameters in either phase.

    Returns:
      :class:`RobustResult`; ``.params`` in the units of ``x``.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> res = sw.fit_robust(jax.random.key(1), x, 2, sw.FitConfig(n_steps=30), n_restarts=3)
      >>> bool(res.log_likelihoods[res.restart_index] == res.log_likelihoods.max())
      True
    """
    config, em_config = pair_configs(config, em_config, ROBUST_FIT_CONFIG, ROBUST_EM_CONFIG)
    r = check_positive_int(n_restarts, "n_restarts")
    check_progress(progress, key, x)
    t0 = time.perf_counter()
    k_sw, k_em, k_eval = jax.random.split(key, 3)
    w = sample_weight
    sw_res = fit_restarts(k_sw, x, n_components, r, config, mesh=mesh, sample_weight=w, progress=progress)
    em_res = fit_em_restarts(k_em, x, n_components, r, em_config, init=sw_res.params, sample_weight=w)
    # select_best skips diverged restarts (and raises if all did); the SW scores are diagnostics only.
    sw_eval = dict(key=k_eval, n_projections=128, p=config.slicing.p, n_levels=256, sample_weight=w)
    swd = select_best(sw_res, x, "sw", **sw_eval).scores
    collapsed = np.asarray(jnp.any(collapsed_components(em_res.params), axis=-1))
    exclude = None if collapsed.all() else collapsed
    best, i, ll = select_best(em_res, x, "log_likelihood", exclude=exclude, sample_weight=w)
    if progress is not None:
        sink = ProgressSink(progress, em_config.max_iter, r, stage="em", t0=t0)
        sink.emit("em", int(jnp.max(em_res.n_iter)), em_config.max_iter, -np.asarray(ll))
    return RobustResult(best.params, jnp.asarray(i), ll, swd, jnp.asarray(collapsed), sw_res, em_res)
