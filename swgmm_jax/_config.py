"""Configuration of the fits: small frozen dataclasses, composed, registered as pytrees.

Settings are split by concern: :class:`SlicingConfig` (the Monte-Carlo
estimator of ``SW_p^p``), :class:`OptimizerConfig` (RMSProp and its schedule),
:class:`InitConfig` (the random initialisation) and :class:`RelocationConfig`
(merge-and-relocate moves), composed by :class:`FitConfig`.

Each config is a pytree (``jax.tree_util.register_dataclass``) with two kinds
of field:

* **structure** (step and projection counts, quantile levels, ``p``, which
  options are on) is static: part of the tree's structure, so changing it
  compiles again;
* **numeric hyperparameters** (learning rates, schedule values, ``reg_covar``,
  covariance scales, temperatures, ``tol``) are leaves: traced under ``jit``, so
  changing them reuses the compiled fit, and ``jax.vmap`` over an array of
  them runs a sweep in one call.

``p`` stays static: ``p = 2`` takes a multiplication where any other value
takes a power, a different computation with a different gradient at 0.

For convenience :class:`FitConfig` also takes every sub-setting as a flat
keyword (``FitConfig(n_steps=300, learning_rate=0.1, n_levels=128)``) and reads
it back the same way (``config.learning_rate``).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

from swgmm_jax._covariances import check_covariance_type
from swgmm_jax._sort import SORT_METHODS
from swgmm_jax._transport1d import QUANTILE_ITERS
from swgmm_jax._validation import check_bool, check_choice, check_positive_int, check_real

__all__ = [
    "SlicingConfig",
    "OptimizerConfig",
    "InitConfig",
    "RelocationConfig",
    "FitConfig",
    "EMConfig",
    "INIT_METHODS",
    "FREEZE_NAMES",
    "check_config",
    "check_freeze",
    "frozen_fields",
    "hold_frozen",
]

INIT_METHODS = ("random_from_data", "kmeans++", "kmeans")
KMEANS_SWAPS = 10
"""Default swap moves of each ``"kmeans"`` run (:class:`InitConfig` ``n_swaps``)."""
_SCHEDULES = ("constant", "cosine")

FREEZE_NAMES = ("weights", "means", "covariances")
"""The parameters a fit can hold at their initial values (``freeze=``)."""

# Which leaves each name covers ("covariances": the scale leaf of the params' type, their third field).
_FROZEN_FIELDS = {"weights": ("logits",), "means": ("means",), "covariances": ("scale_tril",)}


def check_freeze(freeze: Any, name: str = "freeze") -> frozenset[str]:
    """``freeze`` as a frozenset of names from :data:`FREEZE_NAMES` (a single string is one name)."""
    if freeze is None:
        return frozenset()
    if isinstance(freeze, str):
        freeze = (freeze,)
    try:
        names = frozenset(freeze)
    except TypeError:
        raise TypeError(
            f"{name} must be a set of names from {FREEZE_NAMES}, got {type(freeze).__name__}"
        ) from None
    bad = sorted(repr(n) for n in names if not isinstance(n, str) or n not in FREEZE_NAMES)
    if bad:
        raise ValueError(f"{name} may only hold {FREEZE_NAMES}, got {', '.join(bad)}")
    return names


def frozen_fields(freeze: frozenset[str], params_cls: Any = None) -> tuple[str, ...]:
    """The parameter fields held fixed for the frozen names, in a fixed order.

    ``"covariances"`` names the scale leaf of ``params_cls`` (``scale_tril``,
    ``scale_diag`` or ``scale``; ``GMMParams``' ``scale_tril`` when not given).
    """
    scale = "scale_tril" if params_cls is None else params_cls._fields[2]
    return tuple(
        scale if f == "scale_tril" else f for n in FREEZE_NAMES if n in freeze for f in _FROZEN_FIELDS[n]
    )


def hold_frozen(params: Any, start: Any, freeze: frozenset[str]) -> Any:
    """``params`` with ``start``'s leaves for the frozen names, bit for bit.

    Frozen covariances take ``start``'s floor ``reg_covar`` too, so that the
    covariance matrices are ``start``'s exactly.
    """
    held = frozen_fields(freeze, type(params))
    if "covariances" in freeze:
        held = (*held, "reg_covar")
    return params._replace(**{name: getattr(start, name) for name in held})


def _check_int_or_none(value: Any, name: str) -> None:
    if value is not None:
        check_positive_int(value, name)


def _pytree(cls: Any, data: tuple[str, ...]) -> Any:
    """Register a frozen dataclass: ``data`` fields are leaves, the others static."""
    meta = [f.name for f in dataclasses.fields(cls) if f.name not in data]
    return jax.tree_util.register_dataclass(cls, data_fields=list(data), meta_fields=meta)


@dataclasses.dataclass(frozen=True)
class SlicingConfig:
    """The Monte-Carlo estimator of ``SW_p^p`` used at each step (all static).

    Attributes:
      n_projections: directions ``L`` per step.
      p: transport exponent (the loss is ``SW_p^p``), >= 1.
      n_levels: quantile levels per slice: ``None`` uses all ``n`` data levels
        (midpoint rule); an integer ``M`` draws ``M`` stratified random levels,
        an unbiased estimate of the exact per-slice integral whose cost does not
        grow with ``n`` (beyond the projection and sort).
      quantile_iters: iterations of the mixture quantile solver
        (see ``QUANTILE_ITERS``).
      batch_size: ``None`` uses all points each step; an integer draws that many
        points (with replacement) per step. The minibatch estimate of ``W_p^p``
        is biased upward (an empirical measure of ``b`` points is on average
        ``O(b^{-1/2})`` away from the population in 1D), so the fit is slightly
        over-dispersed; the bias vanishes as ``batch_size`` grows.
      sort: ``"auto"``, ``"xla"`` or ``"host"`` (see :func:`swgmm_jax.sort_slices`).
        On the CPU ``"auto"`` sorts with NumPy through a host callback, and
        JAX's persistent compilation cache never stores a program with one;
        ``"xla"`` makes the fits cacheable across processes at the cost of
        XLA's slower CPU sort. Measured on 2 CPU cores (ring-square-line,
        K = 10, defaults otherwise): a new process's first ``fit`` call took
        4.7 s with ``"auto"`` whether or not the cache held it, 5.6 s with
        ``"xla"`` and an empty cache, 2.1 s with ``"xla"`` once cached; a
        compiled fit ran 0.43 s with ``"auto"`` against 1.13 s with ``"xla"``.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> slicing = sw.SlicingConfig(n_projections=32, n_levels=None)
      >>> cfg = sw.FitConfig(n_steps=100, slicing=slicing)
      >>> cfg.n_projections, cfg.n_levels, cfg.p
      (32, None, 2.0)
      >>> jax.tree.leaves(slicing)  # all static: no traced leaves
      []
    """

    n_projections: int = 16
    p: float = 2.0
    n_levels: int | None = 64
    quantile_iters: int = QUANTILE_ITERS
    batch_size: int | None = None
    sort: str = "auto"

    def __post_init__(self) -> None:
        check_positive_int(self.n_projections, "n_projections")
        if isinstance(self.p, (bool, np.bool_)) or not isinstance(self.p, numbers.Real):
            raise TypeError(f"p must be a real number >= 1 (static), got {self.p!r}")
        check_real(self.p, "p", low=1.0)
        object.__setattr__(self, "p", float(self.p))
        _check_int_or_none(self.n_levels, "n_levels")
        check_positive_int(self.quantile_iters, "quantile_iters")
        _check_int_or_none(self.batch_size, "batch_size")
        check_choice(self.sort, "sort", SORT_METHODS)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """RMSProp (``optax.rmsprop``) and its learning-rate schedule.

    Attributes:
      learning_rate: step size (standardised units) in up to 2 dimensions; in
        ``d > 2`` dimensions the steps are ``sqrt(2 / d)`` times as long when
        ``scale_with_dim`` is on. Traced.
      lr_schedule: ``"cosine"`` (decay over the fit's steps to
        ``lr_final_fraction * learning_rate``), ``"constant"``, or any optax
        schedule ``step -> lr`` (then ``learning_rate`` is unused).
      lr_final_fraction: end value of the cosine schedule, as a fraction. Traced.
      rmsprop_decay: RMSProp's averaging constant of squared gradients. Traced.
      momentum: RMSProp momentum (the paper's ``kappa``); ``None`` for none. Traced.
      centered: centred RMSProp (the paper's eq. 15 subtracts the squared mean
        gradient).
      scale_with_dim: multiply every update by ``min(1, sqrt(2 / d))``. RMSProp
        moves each coordinate by about the learning rate whatever the size of
        its gradient, and a slice ``theta . x`` sums ``d`` coordinates, so with
        coherent gradients one step moves each slice's mean and spread by about
        ``learning_rate * sqrt(d)``. The factor keeps that move what it is in
        2-D, where the default rate was chosen. Measured without it (kmeans
        init, 20 restarts each): in 20-D, 5 components, ``learning_rate=0.05``
        shrank the covariances to the floor (median smallest eigenvalue 1e-5
        of the data's mean variance, true 0.25; NLL 44.1 against 27.6 at the
        truth), from the truth as well, while 0.02 and 0.01 kept them (0.14,
        NLL 27.3); in 50-D, 0.02 recovered 90% of restarts and 0.01 100%.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> opt = sw.OptimizerConfig(learning_rate=0.1, lr_schedule="constant", momentum=0.9)
      >>> sw.FitConfig(n_steps=100, optimizer=opt).learning_rate
      0.1
      >>> jax.tree.leaves(opt)  # the traced numbers: learning rate, final fraction, decay, momentum
      [0.1, 0.01, 0.9, 0.9]
    """

    learning_rate: Any = 0.05
    lr_schedule: str | Callable[[Any], Any] = "cosine"
    lr_final_fraction: Any = 0.01
    rmsprop_decay: Any = 0.9
    momentum: Any = None
    centered: bool = False
    scale_with_dim: bool = True

    def __post_init__(self) -> None:
        check_real(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        if isinstance(self.lr_schedule, str):
            check_choice(self.lr_schedule, "lr_schedule", _SCHEDULES)
        elif not callable(self.lr_schedule):
            raise TypeError(f"lr_schedule must be a string or a callable, got {self.lr_schedule!r}")
        check_real(self.lr_final_fraction, "lr_final_fraction", low=0.0)
        check_real(self.rmsprop_decay, "rmsprop_decay", low=0.0, high=1.0, high_open=True)
        if self.momentum is not None:
            check_real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        object.__setattr__(self, "centered", check_bool(self.centered, "centered"))
        object.__setattr__(self, "scale_with_dim", check_bool(self.scale_with_dim, "scale_with_dim"))


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """Random initialisation (shared by the SW fit and EM).

    Attributes:
      method: ``"random_from_data"`` (means at distinct random data points,
        covariances ``cov_scale`` x the data covariance, weights 1/K) or
        ``"kmeans++"`` (greedy k-means++ seeding, then one hard-assignment M-step) or
        ``"kmeans"`` (greedy k-means++ seeding, Lloyd iterations, then that M-step).
      cov_scale: covariance scale of ``"random_from_data"``. Traced.
      n_init: k-means runs of ``"kmeans"`` and ``"kmeans++"`` (each from its own
        seeds); the one of lowest k-means inertia is kept, as scikit-learn's
        ``KMeans(n_init=...)``. Static.
      n_swaps: swap moves after the Lloyd iterations of each ``"kmeans"`` run:
        the centre whose removal raises the inertia least moves to a D^2-drawn
        point (the best of ``2 + log K`` candidates), three Lloyd iterations
        follow, and the move is kept if the inertia fell (k-means local search,
        Kanungo et al. 2004). Static.

    The default, ``"kmeans"`` with ``n_init=10``, was chosen on the quality
    suite (``experiments/quality_suite.py``): the SW fit refines the
    components it starts from but rarely moves one from a cluster it covers
    twice to a cluster it misses. From ``"random_from_data"`` (the paper's
    initialisation, still available) pure SW fits recovered every component
    in 0-65% of 20 restarts on the suite's synthetic problems of 1 to 20
    dimensions; from one k-means run in 60-100%; from the best of 10 in 100%
    on all six quick problems and on the full suite's ``d50_k5_well``
    (quick measurements in the README's quality table).

    The swap moves (``n_swaps=10``) were added for the full suite's
    ``d10_k10_well_wmin0.02`` (weights down to 0.02), where the best of 10
    runs without them recovered every component in 50% of pure SW restarts:
    seeding had put two centres in one cluster and none in a small one, and
    Lloyd iterations never move a centre across. Of 200 single k-means runs
    on that problem, 21% put one centre in every cluster without swaps, 72%
    with 2, 93% with 5 and 100% with 10 (3 Lloyd iterations after each); the
    best of 10 runs with 10 swaps, then pure SW, recovered every component
    in 20 of 20 restarts (``results/quality_suite_kmeans_swaps_full.json``).
    Ten swaps cost about 1.9x the k-means time of runs without them (100
    inits of ring-square-line, n=850, K=10: 8.3 s against 4.4 s).

    Examples:
      >>> import swgmm_jax as sw
      >>> cfg = sw.FitConfig(n_steps=100, initialization=sw.InitConfig(method="kmeans++"))
      >>> cfg.init, cfg.init_cov_scale
      ('kmeans++', 0.1)
      >>> sw.FitConfig(init="kmeans++").initialization == sw.InitConfig("kmeans++")
      True
    """

    method: str = "kmeans"
    cov_scale: Any = 0.1
    n_init: int = 10
    n_swaps: int = KMEANS_SWAPS

    def __post_init__(self) -> None:
        check_choice(self.method, "init", INIT_METHODS)
        check_real(self.cov_scale, "init_cov_scale", low=0.0, low_open=True)
        check_positive_int(self.n_init, "kmeans_n_init")
        check_positive_int(self.n_swaps, "kmeans_swaps", minimum=0)


@dataclasses.dataclass(frozen=True)
class RelocationConfig:
    """Merge-and-relocate moves after the fit (:func:`swgmm_jax.merge_relocate`).

    Each round merges a redundant pair of components, re-seeds the freed one at
    a data point, refines with ``steps`` RMSProp steps (fresh optimiser state,
    cosine decay from ``learning_rate``) and keeps the result only if the
    sliced distance on fixed evaluation directions went down.

    Attributes:
      rounds: number of rounds; ``0``: no moves.
      steps: refinement steps of each proposal.
      learning_rate: initial learning rate of the refinement. Traced.
      temperature: pairs are drawn with probability
        ``softmax(similarity / temperature)``; ``0`` takes the most redundant. Traced.
      n_projections: directions of the acceptance test's ``SW_p^p``.
      n_levels: stratified levels per slice of the acceptance test (``None``: all
        data levels). Directions and levels are fixed for the whole fit, so that
        every round compares on the same slices.

    Examples:
      >>> import swgmm_jax as sw
      >>> cfg = sw.FitConfig(n_steps=100, relocation=sw.RelocationConfig(rounds=3, steps=50))
      >>> cfg.relocations, cfg.relocation_steps, cfg.relocation_lr
      (3, 50, 0.02)
    """

    rounds: int = 0
    steps: int = 150
    learning_rate: Any = 0.02
    temperature: Any = 0.03
    n_projections: int = 128
    n_levels: int | None = 256

    def __post_init__(self) -> None:
        check_positive_int(self.rounds, "relocations", minimum=0)
        check_positive_int(self.steps, "relocation_steps")
        check_real(self.learning_rate, "relocation_lr", low=0.0, low_open=True)
        check_real(self.temperature, "relocation_temperature", low=0.0)
        check_positive_int(self.n_projections, "relocation_projections")
        _check_int_or_none(self.n_levels, "relocation_levels")


_pytree(SlicingConfig, ())
_pytree(OptimizerConfig, ("learning_rate", "lr_final_fraction", "rmsprop_decay", "momentum"))
_pytree(InitConfig, ("cov_scale",))
_pytree(RelocationConfig, ("learning_rate", "temperature"))

# Flat keyword -> (sub-config field of FitConfig, field of that sub-config).
_FLAT = {
    **{f.name: ("slicing", f.name) for f in dataclasses.fields(SlicingConfig)},
    **{f.name: ("optimizer", f.name) for f in dataclasses.fields(OptimizerConfig)},
    "init": ("initialization", "method"),
    "init_cov_scale": ("initialization", "cov_scale"),
    "kmeans_n_init": ("initialization", "n_init"),
    "kmeans_swaps": ("initialization", "n_swaps"),
    "relocations": ("relocation", "rounds"),
    "relocation_steps": ("relocation", "steps"),
    "relocation_lr": ("relocation", "learning_rate"),
    "relocation_temperature": ("relocation", "temperature"),
    "relocation_projections": ("relocation", "n_projections"),
    "relocation_levels": ("relocation", "n_levels"),
}


@dataclasses.dataclass(frozen=True, init=False)
class FitConfig:
    """Configuration of a sliced-Wasserstein GMM fit (:func:`swgmm_jax.fit`).

    The fit standardises the data internally (centre, then divide by one global
    scale, the root-mean-square deviation): lengths, learning rates and
    ``reg_covar`` are in those standardised units, so the same settings work for
    data at any offset or scale. Parameters are returned in the caller's units.

    The defaults were chosen on the quality suite (``experiments/quality_suite.py``:
    problems from 1 to 20 dimensions, and 50-D in its full scale), not on one 2-D
    problem: the fit starts from the best of 10 k-means runs (see
    :class:`InitConfig`; from the paper's random start, pure SW recovered every
    component in 0-65% of restarts beyond 2-D), and RMSProp's updates shrink
    as ``sqrt(2 / d)`` above 2-D (see :class:`OptimizerConfig`; without it the
    covariances collapsed to the floor from 20-D up), and the optimiser steps
    on each covariance factor's diagonal in log space (log-Cholesky: a step
    rescales a standard deviation; on the raw factor, noise-sized steps drove
    diagonal entries through 0, and 2 of 10 restarts on a 6-D test problem
    ended with a covariance at the floor). With them, pure SW fits
    recovered every component in all restarts of the quick suite's six
    synthetic problems, with no degenerate fit.

    Every sub-setting can be given and read as a flat keyword:
    ``n_projections, p, n_levels, quantile_iters, batch_size, sort`` (of
    :class:`SlicingConfig`), ``learning_rate, lr_schedule, lr_final_fraction,
    rmsprop_decay, momentum, centered, scale_with_dim`` (:class:`OptimizerConfig`), ``init`` and
    ``init_cov_scale``, ``kmeans_n_init``, ``kmeans_swaps`` (:class:`InitConfig` ``method``, ``cov_scale``,
    ``n_init``, ``n_swaps``),
    ``relocations, relocation_steps, relocation_lr, relocation_temperature,
    relocation_projections, relocation_levels`` (:class:`RelocationConfig`
    ``rounds, steps, learning_rate, temperature, n_projections, n_levels``).

    Attributes:
      n_steps: RMSProp steps, one fresh set of directions each.
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"`` or ``"tied"``
        (scikit-learn's names and meanings; see :func:`swgmm_jax.from_moments`):
        the parameters the initialisation builds. A fit given ``init`` takes
        its type from ``init``, which must match. Diagonal and spherical fits
        never form a ``d x d`` matrix. Static.
      reg_covar: covariance floor (standardised units): every covariance has
        smallest eigenvalue >= ``reg_covar`` at every step. Traced.
      freeze: parameters held at their initial values, any of ``"weights"``,
        ``"means"`` and ``"covariances"`` (a set, or one name as a string):
        their updates are masked, so they come out of the fit bit for bit as
        they went in (given ``init``, exactly ``init``'s leaves: ``logits``,
        ``means``, or ``scale_tril`` with ``reg_covar``; otherwise those of
        the initialisation, e.g. ``1/K`` weights for ``init="random_from_data"``,
        as the authors' public 2D demo does, the k-means cells' shares for
        ``"kmeans"``). Merge-and-relocate moves leave them alone too. Static.
      learn_weights: alias of ``"weights" not in freeze`` (read back as such).
        Given to the constructor (or to ``replace``), it decides about the
        weights whatever ``freeze`` says: ``False`` adds ``"weights"`` to
        ``freeze``, ``True`` removes it; not given, ``freeze`` decides.
      standardize: standardise the data internally (recommended).
      slicing: :class:`SlicingConfig`.
      optimizer: :class:`OptimizerConfig`.
      initialization: :class:`InitConfig`.
      relocation: :class:`RelocationConfig`.

    Examples:
      >>> import swgmm_jax as sw
      >>> cfg = sw.FitConfig(n_steps=200, learning_rate=0.1, n_levels=128)
      >>> cfg.optimizer.learning_rate, cfg.learning_rate, cfg.slicing.n_levels
      (0.1, 0.1, 128)
      >>> cfg.replace(relocations=4).relocation.rounds
      4
      >>> frozen = sw.FitConfig(freeze={"means", "weights"})
      >>> sorted(frozen.freeze), frozen.learn_weights, sorted(frozen.replace(learn_weights=True).freeze)
      (['means', 'weights'], False, ['means'])
    """

    n_steps: int
    covariance_type: str
    reg_covar: Any
    freeze: frozenset[str]
    standardize: bool
    slicing: SlicingConfig
    optimizer: OptimizerConfig
    initialization: InitConfig
    relocation: RelocationConfig

    def __init__(
        self,
        n_steps: int = 500,
        *,
        covariance_type: str = "full",
        reg_covar: Any = 1e-6,
        freeze: Any = frozenset(),
        learn_weights: bool | None = None,
        standardize: bool = True,
        slicing: SlicingConfig | None = None,
        optimizer: OptimizerConfig | None = None,
        initialization: InitConfig | None = None,
        relocation: RelocationConfig | None = None,
        **settings: Any,
    ) -> None:
        subs: dict[str, Any] = {
            "slicing": SlicingConfig() if slicing is None else slicing,
            "optimizer": OptimizerConfig() if optimizer is None else optimizer,
            "initialization": InitConfig() if initialization is None else initialization,
            "relocation": RelocationConfig() if relocation is None else relocation,
        }
        routed: dict[str, dict[str, Any]] = {name: {} for name in subs}
        for flat, value in settings.items():
            if flat not in _FLAT:
                raise TypeError(f"FitConfig got an unexpected setting {flat!r}")
            sub, field = _FLAT[flat]
            routed[sub][field] = value
        for name, changes in routed.items():
            if changes:
                subs[name] = dataclasses.replace(subs[name], **changes)
        for name, cls in (
            ("slicing", SlicingConfig),
            ("optimizer", OptimizerConfig),
            ("initialization", InitConfig),
            ("relocation", RelocationConfig),
        ):
            if not isinstance(subs[name], cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(subs[name]).__name__}")
        check_positive_int(n_steps, "n_steps")
        check_real(reg_covar, "reg_covar", low=0.0, low_open=True)
        setattr_ = object.__setattr__
        setattr_(self, "n_steps", int(n_steps))
        setattr_(self, "covariance_type", check_covariance_type(covariance_type))
        setattr_(self, "reg_covar", reg_covar)
        frozen = check_freeze(freeze)
        if learn_weights is not None:  # the alias decides about the weights when given
            keep = frozenset() if check_bool(learn_weights, "learn_weights") else frozenset({"weights"})
            frozen = (frozen - {"weights"}) | keep
        setattr_(self, "freeze", frozen)
        setattr_(self, "standardize", check_bool(standardize, "standardize"))
        for name, sub_config in subs.items():
            setattr_(self, name, sub_config)

    @property
    def learn_weights(self) -> bool:
        """Whether the mixture weights are learnt (``"weights" not in freeze``)."""
        return "weights" not in self.freeze

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields: the flat aliases.
        if name in _FLAT:
            sub, field = _FLAT[name]
            return getattr(getattr(self, sub), field)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def replace(self, **changes: Any) -> FitConfig:
        """A copy with fields or flat settings changed (``dataclasses.replace`` also works)."""
        return dataclasses.replace(self, **changes)


_pytree(FitConfig, ("reg_covar", "slicing", "optimizer", "initialization", "relocation"))


@dataclasses.dataclass(frozen=True)
class EMConfig:
    """Configuration of the EM baseline (:func:`swgmm_jax.fit_em`), as in scikit-learn.

    Attributes:
      max_iter: maximum EM iterations.
      tol: stop when the mean log-likelihood changes by less than ``tol``, or
        than 8 units of its rounding in the data's dtype if that is larger
        (``8 eps |ll|``: float32 cannot resolve 1e-6 at ``|ll| > 1``). Traced.
      reg_covar: added to every covariance's diagonal after each M-step, in the
        units of the data (scikit-learn's convention). Traced.
      init: initialisation method, as :class:`InitConfig` ``method``.
      init_cov_scale: as :class:`InitConfig` ``cov_scale``. Traced.
      kmeans_n_init: as :class:`InitConfig` ``n_init``.
      kmeans_swaps: as :class:`InitConfig` ``n_swaps``.
      relocations: rounds of merge-and-relocate moves after convergence
        (:func:`swgmm_jax.merge_relocate`, a split-and-merge EM in the manner
        of Ueda et al. 2000): each round merges a redundant pair, re-seeds the
        freed component at a data point, runs EM to convergence from there and
        keeps the result only if the log-likelihood rose and no component
        collapsed (an eigenvalue within ``COLLAPSE_FACTOR = 10`` times
        ``reg_covar``: the likelihood of a component on a few duplicated points
        grows without bound as the floor shrinks; such a state scores
        ``inf``, so a collapsed start gives way to any proposal that is not).
        ``0``: plain EM.
      relocation_temperature: temperature of the random choice of the pair. Traced.
      freeze: parameters held at their initial values, any of ``"weights"``,
        ``"means"`` and ``"covariances"`` (a set, or one name as a string).
        The M-step keeps them and updates the others given them (covariances
        about the frozen means, for instance); the result's frozen leaves are
        the initial parameters' bit for bit (given ``init``, ``init``'s own).
        Relocation moves leave them alone too. Static.
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"`` or ``"tied"``:
        scikit-learn's M-step of that type. A fit given ``init`` (and
        :func:`swgmm_jax.polish_em`) takes the type of the parameters it is
        given, which must match. Static.

    Examples:
      >>> import swgmm_jax as sw
      >>> sw.EMConfig(max_iter=500, tol=1e-6).max_iter
      500
      >>> sorted(sw.EMConfig(freeze={"covariances", "weights"}).freeze)
      ['covariances', 'weights']
    """

    max_iter: int = 100
    tol: Any = 1e-3
    reg_covar: Any = 1e-6
    init: str = "random_from_data"
    init_cov_scale: Any = 0.1
    kmeans_n_init: int = 10
    kmeans_swaps: int = KMEANS_SWAPS
    relocations: int = 0
    relocation_temperature: Any = 0.03
    freeze: frozenset[str] = frozenset()
    covariance_type: str = "full"

    def __post_init__(self) -> None:
        object.__setattr__(self, "freeze", check_freeze(self.freeze))
        check_covariance_type(self.covariance_type)
        check_positive_int(self.max_iter, "max_iter")
        check_real(self.tol, "tol", low=0.0)
        check_real(self.reg_covar, "reg_covar", low=0.0, low_open=True)
        check_choice(self.init, "init", INIT_METHODS)
        check_real(self.init_cov_scale, "init_cov_scale", low=0.0, low_open=True)
        check_positive_int(self.kmeans_n_init, "kmeans_n_init")
        check_positive_int(self.kmeans_swaps, "kmeans_swaps", minimum=0)
        check_positive_int(self.relocations, "relocations", minimum=0)
        check_real(self.relocation_temperature, "relocation_temperature", low=0.0)

    @property
    def initialization(self) -> InitConfig:
        """The initialisation settings as an :class:`InitConfig`."""
        return InitConfig(self.init, self.init_cov_scale, self.kmeans_n_init, self.kmeans_swaps)


_pytree(EMConfig, ("tol", "reg_covar", "init_cov_scale", "relocation_temperature"))

Config = TypeVar("Config", FitConfig, EMConfig)


def check_config(config: Config | None, cls: type[Config]) -> Config:
    """``cls()`` for ``None``; otherwise ``config``, which must be a ``cls``."""
    if config is None:
        return cls()
    if not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    return config
