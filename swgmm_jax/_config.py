"""Static configuration of the fits: frozen, hashable dataclasses.

Every field is static under ``jit``: changing one recompiles, changing the data
values never does.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Callable, Union

__all__ = ["FitConfig", "EMConfig", "INIT_METHODS"]

INIT_METHODS = ("random_from_data", "kmeans++")
_SCHEDULES = ("constant", "cosine")


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_pos(name, value, strict=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not (value > 0 if strict else value >= 0):
        raise ValueError(f"{name} must be {'>' if strict else '>='} 0, got {value}")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Configuration of a sliced-Wasserstein GMM fit (:func:`swgmm_jax.fit`).

    The fit standardises the data internally (centre, then divide by one global
    scale, the root-mean-square deviation): lengths below, and ``reg_covar``,
    are in those standardised units, so the same settings work for data at any
    offset or scale. Parameters are returned in the caller's units.

    Attributes:
      n_steps: RMSProp steps, one fresh set of directions each.
      n_projections: directions ``L`` per step.
      learning_rate: RMSProp step size (standardised units).
      lr_schedule: ``"cosine"`` (decay to ``lr_final_fraction * learning_rate``),
        ``"constant"``, or any optax schedule ``step -> lr``.
      lr_final_fraction: end value of the cosine schedule, as a fraction.
      rmsprop_decay: RMSProp's averaging constant of squared gradients.
      momentum: RMSProp momentum (the paper's ``kappa``); ``None`` for none.
      centered: centred RMSProp (the paper's eq. 15 subtracts the squared mean
        gradient).
      p: transport exponent (the loss is ``SW_p^p``), >= 1.
      n_levels: quantile levels per slice: ``None`` uses all ``n`` data levels
        (midpoint rule); an integer ``M`` draws ``M`` stratified random levels,
        an unbiased estimate of the exact per-slice integral whose cost does not
        grow with ``n`` (beyond the projection and sort). Its variance adds to
        that of the random directions and averages out over the steps.
      quantile_iters: iterations of the mixture quantile solver.
      batch_size: ``None`` uses all points each step; an integer draws that many
        points (with replacement) per step. The minibatch estimate of ``W_p^p``
        is biased upward (an empirical measure of ``b`` points is on average
        ``O(b^{-1/2})`` away from the population in 1D), so the fit is slightly
        over-dispersed; the bias vanishes as ``batch_size`` grows.
      learn_weights: learn the mixture weights; ``False`` keeps them at their
        initial value (``1/K`` for the built-in initialisations), as the
        authors' public 2D demo does.
      reg_covar: covariance floor (standardised units): every covariance has
        smallest eigenvalue >= ``reg_covar`` at every step.
      init: ``"random_from_data"`` (means at distinct random data points,
        covariances ``init_cov_scale`` x the data covariance, weights 1/K) or
        ``"kmeans++"`` (k-means++ seeding, then one hard-assignment M-step).
      init_cov_scale: covariance scale of ``"random_from_data"``.
      sort: ``"auto"``, ``"xla"`` or ``"host"`` (see :func:`swgmm_jax.sort_slices`).
      standardize: standardise the data internally (recommended).
      relocations: rounds of merge-and-relocate moves after the ``n_steps``
        (:func:`swgmm_jax.merge_relocate`): each round merges a redundant pair of
        components, re-seeds the freed one at a data point, refines with
        ``relocation_steps`` RMSProp steps (fresh optimiser state, cosine decay
        from ``relocation_lr``) and keeps the result only if the sliced
        distance on fixed evaluation directions went down. ``0``: no moves.
      relocation_steps, relocation_lr: the refinement of each proposal.
      relocation_temperature: temperature of the random choice of the pair.
      relocation_projections, relocation_levels: the acceptance test's
        ``SW_p^p``: that many directions, and ``relocation_levels`` stratified
        levels per slice (``None``: all data levels), both fixed for the whole
        fit so that every round compares on the same slices.
    """

    n_steps: int = 500
    n_projections: int = 16
    learning_rate: float = 0.05
    lr_schedule: Union[str, Callable] = "cosine"
    lr_final_fraction: float = 0.01
    rmsprop_decay: float = 0.9
    momentum: float | None = None
    centered: bool = False
    p: float = 2.0
    n_levels: int | None = 64
    quantile_iters: int = 10
    batch_size: int | None = None
    learn_weights: bool = True
    reg_covar: float = 1e-6
    init: str = "random_from_data"
    init_cov_scale: float = 0.1
    sort: str = "auto"
    standardize: bool = True
    relocations: int = 0
    relocation_steps: int = 150
    relocation_lr: float = 0.02
    relocation_temperature: float = 0.03
    relocation_projections: int = 128
    relocation_levels: int | None = 256

    def __post_init__(self):
        _check_int("n_steps", self.n_steps)
        _check_int("n_projections", self.n_projections)
        _check_pos("learning_rate", self.learning_rate)
        if isinstance(self.lr_schedule, str) and self.lr_schedule not in _SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {_SCHEDULES} or a callable, got {self.lr_schedule!r}")
        if not isinstance(self.lr_schedule, str) and not callable(self.lr_schedule):
            raise TypeError(f"lr_schedule must be a string or a callable, got {self.lr_schedule!r}")
        _check_pos("lr_final_fraction", self.lr_final_fraction, strict=False)
        if not 0 <= self.rmsprop_decay < 1:
            raise ValueError(f"rmsprop_decay must be in [0, 1), got {self.rmsprop_decay}")
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be None or in [0, 1), got {self.momentum}")
        if isinstance(self.p, bool) or not isinstance(self.p, numbers.Real) or not self.p >= 1:
            raise ValueError(f"p must be a real number >= 1, got {self.p!r}")
        if self.n_levels is not None:
            _check_int("n_levels", self.n_levels)
        _check_int("quantile_iters", self.quantile_iters)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size)
        _check_pos("reg_covar", self.reg_covar)
        if self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        _check_pos("init_cov_scale", self.init_cov_scale)
        if self.sort not in ("auto", "xla", "host"):
            raise ValueError(f"sort must be 'auto', 'xla' or 'host', got {self.sort!r}")
        _check_int("relocations", self.relocations, minimum=0)
        _check_int("relocation_steps", self.relocation_steps)
        _check_pos("relocation_lr", self.relocation_lr)
        _check_pos("relocation_temperature", self.relocation_temperature, strict=False)
        _check_int("relocation_projections", self.relocation_projections)
        if self.relocation_levels is not None:
            _check_int("relocation_levels", self.relocation_levels)
        object.__setattr__(self, "p", float(self.p))


@dataclasses.dataclass(frozen=True)
class EMConfig:
    """Configuration of the EM baseline (:func:`swgmm_jax.fit_em`), as in scikit-learn.

    Attributes:
      max_iter: maximum EM iterations.
      tol: stop when the mean log-likelihood changes by less than ``tol``.
      reg_covar: added to every covariance's diagonal after each M-step, in the
        units of the data (scikit-learn's convention).
      init, init_cov_scale: as in :class:`FitConfig`.
      relocations: rounds of merge-and-relocate moves after convergence
        (:func:`swgmm_jax.merge_relocate`, a split-and-merge EM in the manner
        of Ueda et al. 2000): each round merges a redundant pair, re-seeds the
        freed component at a data point, runs EM to convergence from there and
        keeps the result only if the log-likelihood rose. ``0``: plain EM.
      relocation_temperature: temperature of the random choice of the pair.
    """

    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-6
    init: str = "random_from_data"
    init_cov_scale: float = 0.1
    relocations: int = 0
    relocation_temperature: float = 0.03

    def __post_init__(self):
        _check_int("max_iter", self.max_iter)
        _check_pos("tol", self.tol, strict=False)
        _check_pos("reg_covar", self.reg_covar)
        if self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        _check_pos("init_cov_scale", self.init_cov_scale)
        _check_int("relocations", self.relocations, minimum=0)
        _check_pos("relocation_temperature", self.relocation_temperature, strict=False)
