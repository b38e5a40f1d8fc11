"""The SW-GMM fit: a public ``init``/``step`` pair, and the loops that drive it.

:func:`make_fit_step` returns the two pure functions of the method, in the
manner of optax's ``GradientTransformation`` and blackjax's algorithms:
``init(key, x, n_components) -> FitState`` and
``step(key, state, x_batch) -> (state, loss)``, one RMSProp step on a fresh
Monte-Carlo estimate of ``SW_p^p``. Everything else drives them:

* :func:`fit` is one jitted call: ``init``, then ``n_steps`` steps in one
  ``lax.scan``, then the optional merge-and-relocate rounds, whose
  refinements are runs of the same step;
* :func:`fit_restarts` is one jitted ``vmap`` of :func:`fit` over
  ``keys = jax.random.split(key, n_restarts)`` whose restarts share one
  steps' key (the data's projections are sorted once per step for all of
  them), so restart ``r`` equals ``fit(keys[r], ..., steps_key=...)``;
* :func:`swgmm_jax.fit_stream` feeds host minibatches to the same step.

The state keeps the parameters in *standardised* units (the data centred and
divided by one global scale): lengths, learning rates and ``reg_covar`` mean
the same whatever the data's offset and scale.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from swgmm_jax._config import FitConfig, SlicingConfig, check_config, frozen_fields, hold_frozen
from swgmm_jax._init import check_fit_args, init_params, standardizer
from swgmm_jax._mesh import check_mesh_sort, loop_restarts, map_restarts, resolve_mesh
from swgmm_jax._params import GMMParams, covariance_type_of, moments_to_params, rescale_params, to_moments
from swgmm_jax._relocate import accept_if_better, merge_relocate
from swgmm_jax._sliced import sliced_loss
from swgmm_jax._validation import check_bool, check_key, check_positive_int, check_sample_weight

__all__ = [
    "FitState",
    "FitStep",
    "FitResult",
    "Progress",
    "make_fit_step",
    "run_steps",
    "fit",
    "fit_restarts",
    "PROGRESS_REPORTS",
    "ProgressSink",
    "check_progress",
]


class FitState(NamedTuple):
    """State of an SW fit: a pytree, carried by ``lax.scan``.

    Attributes:
      params: current ``GMMParams`` in standardised units.
      opt_state: the optimiser's state.
      centre: ``[d]`` centre of the standardisation.
      scale: ``[]`` scale of the standardisation (data units per standardised unit).

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (500, 2))
      >>> init, step, restart = sw.make_fit_step(sw.FitConfig(n_steps=50))
      >>> state = init(jax.random.key(1), x, 3)
      >>> c, s = sw.standardizer(x)  # the state's standardisation
      >>> bool(jnp.allclose(state.centre, c)), bool(jnp.allclose(state.scale, s))
      (True, True)
      >>> means = state.data_params().means  # back in the units of x
      >>> bool(jnp.allclose(means, c[None, :] + s * state.params.means))
      True
    """

    params: GMMParams
    opt_state: optax.OptState
    centre: jax.Array
    scale: jax.Array

    def data_params(self) -> GMMParams:
        """The current parameters in the units of the data."""
        return rescale_params(self.params, self.centre, self.scale)


class FitStep(NamedTuple):
    """The pure functions of an SW fit (see :func:`make_fit_step`).

    Attributes:
      init: ``(key, x, n_components, init=None, sample_weight=None) -> FitState``.
      step: ``(key, state, x_batch, sample_weight=None) -> (state, loss)``.
      restart: ``(state, params) -> FitState``: the same standardisation, new
        parameters (standardised units) and a fresh optimiser state.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (500, 2))
      >>> fit_step = sw.make_fit_step(sw.FitConfig(n_steps=50))
      >>> fit_step._fields
      ('init', 'step', 'restart')
      >>> state = fit_step.init(jax.random.key(1), x, 3)
      >>> moved = state.params._replace(means=state.params.means + 0.5)
      >>> fresh = fit_step.restart(state, moved)
      >>> bool(jnp.all(fresh.params.means == moved.means)), bool(fresh.scale == state.scale)
      (True, True)
    """

    init: Callable[..., FitState]
    step: Callable[..., tuple[FitState, jax.Array]]
    restart: Callable[[FitState, GMMParams], FitState]


class FitResult(NamedTuple):
    """Result of :func:`fit` (leaves carry a leading restart axis for :func:`fit_restarts`).

    Attributes:
      params: fitted ``GMMParams`` in the caller's units.
      loss_history: ``[n_steps]`` estimate of ``SW_p^p`` (caller's units) at each
        step, each on that step's own random directions.
      relocation_sw: ``[relocations]`` the acceptance test's ``SW_p^p``
        (caller's units) of the kept parameters after each merge-and-relocate
        round (non-increasing); ``None`` without relocations.
      relocation_accepted: ``[relocations]`` whether each round's move was kept.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> res = sw.fit(jax.random.key(1), x, 2, sw.FitConfig(n_steps=50))
      >>> res.params.means.shape, res.loss_history.shape, res.relocation_sw is None
      ((2, 2), (50,), True)
    """

    params: GMMParams
    loss_history: jax.Array
    relocation_sw: jax.Array | None = None
    relocation_accepted: jax.Array | None = None


def _optimizer(config: FitConfig) -> optax.GradientTransformation:
    opt = config.optimizer
    lr: Any
    if callable(opt.lr_schedule):
        lr = opt.lr_schedule
    elif opt.lr_schedule == "cosine":
        lr = optax.cosine_decay_schedule(opt.learning_rate, config.n_steps, opt.lr_final_fraction)
    else:
        lr = opt.learning_rate
    return optax.rmsprop(lr, decay=opt.rmsprop_decay, centered=opt.centered, momentum=opt.momentum)


def _loss(
    key: jax.Array, params: GMMParams, x: jax.Array, slicing: SlicingConfig, mesh, sample_weight=None
) -> jax.Array:
    return sliced_loss(
        key,
        params,
        x,
        n_projections=slicing.n_projections,
        p=slicing.p,
        n_levels=slicing.n_levels,
        quantile_iters=slicing.quantile_iters,
        sort=slicing.sort,
        mesh=mesh,
        sample_weight=sample_weight,
    )


def _eye_like(a: jax.Array) -> jax.Array:
    """The identity with as many (unit) leading axes as ``a[..., d, d]`` has."""
    return jnp.eye(a.shape[-1], dtype=a.dtype).reshape((1,) * (a.ndim - 2) + a.shape[-2:])


def _to_log_cholesky(params: Any) -> Any:
    """The optimiser's coordinates: each factor's diagonal as ``log |L_ii|`` (columns sign-flipped).

    ``L diag(+-1)`` has the same ``L L^T``; for the diagonal and spherical
    types every entry of the scale is a standard deviation above the floor,
    taken as ``log |s|``. In these coordinates a step changes
    a standard deviation by a factor, not by an amount: RMSProp normalises every
    coordinate's step to about the learning rate, so on the raw factor a
    diagonal entry whose gradient is mostly noise (in ``d >= 10`` a slice sees
    one direction's variance with weight ~1/d) drifted through 0, and the fits of
    the quality suite ended with covariances at the floor in every restart.
    """
    if covariance_type_of(params) in ("diag", "spherical"):
        s = params[2]
        return params._replace(
            **{params._fields[2]: jnp.log(jnp.maximum(jnp.abs(s), jnp.finfo(s.dtype).tiny))}
        )
    lower = jnp.tril(params.scale_tril)
    diag = jnp.diagonal(lower, axis1=-2, axis2=-1)
    lower = lower * jnp.where(diag < 0, -1.0, 1.0).astype(lower.dtype)[..., None, :]
    absd = jnp.abs(diag)
    logd = jnp.log(jnp.maximum(absd, jnp.finfo(lower.dtype).tiny))
    return params._replace(scale_tril=lower + (logd - absd)[..., None, :] * _eye_like(lower))


def _from_log_cholesky(params: Any) -> Any:
    if covariance_type_of(params) in ("diag", "spherical"):
        return params._replace(**{params._fields[2]: jnp.exp(params[2])})
    lower = jnp.tril(params.scale_tril)
    logd = jnp.diagonal(lower, axis1=-2, axis2=-1)
    return params._replace(scale_tril=lower + (jnp.exp(logd) - logd)[..., None, :] * _eye_like(lower))


def make_fit_step(config: FitConfig | None = None, mesh: Any = None) -> FitStep:
    """The ``init``/``step`` pair of an SW fit, for a caller's own loop.

    ``step`` is one RMSProp step (``optax.rmsprop``, with the config's
    schedule) on the Monte-Carlo ``SW_p^p`` of the batch it is given, on
    directions and levels drawn from its key. The optimiser works on the
    log-Cholesky coordinates of the covariances (each factor's diagonal as
    its logarithm), so that a step rescales a standard deviation. Both functions are pure: they
    jit, vmap and run inside ``lax.scan``. The config's numeric
    hyperparameters may be traced (e.g. inside a ``jit`` that takes the config
    as an argument).

    Args:
      config: :class:`FitConfig` (its ``slicing``, ``optimizer``,
        ``initialization``, ``reg_covar``, ``freeze``, ``standardize``
        and ``n_steps``, the length of the cosine schedule, are used; drawing
        minibatches and relocations are the caller's loop's business).
      mesh: ``None`` (unsharded) or a 1-D mesh / ``"auto"``: each step's
        projections split across its devices.

    Returns:
      :class:`FitStep` ``(init, step, restart)``:

      * ``init(key, x, n_components, init=None, sample_weight=None) -> FitState``: the
        standardisation from ``x`` (``[n, d]``, or the first batch of a
        stream), initial parameters (``config.initialization`` drawn from
        ``key``, or ``init`` given in the data's units) and optimiser state;
        ``sample_weight[n]`` (not checked) weights the standardisation and
        the initialisation;
      * ``step(key, state, x_batch, sample_weight=None) -> (state, loss)``:
        ``x_batch`` in the data's units, ``sample_weight`` the ``[b]``
        weights of its points (not checked; see :func:`swgmm_jax.slice_costs`);
        ``loss`` is the step's ``SW_p^p`` estimate in the data's units,
        before the update. The leaves of ``config.freeze`` come out of the
        step bit for bit as they went in;
      * ``restart(state, params) -> FitState``.

    Examples:
      Drive the step with your own ``lax.scan``:

      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> init, step, _ = sw.make_fit_step(sw.FitConfig(n_steps=50))
      >>> state = init(jax.random.key(1), x, 3)
      >>> def body(state, key):
      ...     return step(key, state, x)
      >>> state, losses = jax.lax.scan(body, state, jax.random.split(jax.random.key(2), 50))
      >>> losses.shape, state.data_params().means.shape
      ((50,), (3, 2))
    """
    config = check_config(config, FitConfig)
    mesh = resolve_mesh(mesh)
    check_mesh_sort(mesh, config.slicing.sort)
    opt = _optimizer(config)
    slicing = config.slicing
    # Fits that freeze at most the weights keep the program they had before freeze= existed
    # (the logits pass through the log-Cholesky coordinates unchanged, so a zero update keeps them).
    legacy = set(frozen_fields(config.freeze)) <= {"logits"}

    def held_of(params: Any) -> tuple[str, ...]:
        # The leaves of the frozen parameters ("covariances": the scale leaf of the params' type).
        return frozen_fields(config.freeze, type(params))

    def legacy_loss_fn(coords: Any, fixed: Any, xb: jax.Array, key: jax.Array, weights):
        # Frozen leaves get a zero gradient, hence an exactly zero RMSProp update.
        frozen = ("reg_covar", *held_of(coords))
        coords = coords._replace(**{name: jax.lax.stop_gradient(getattr(coords, name)) for name in frozen})
        return _loss(key, _from_log_cholesky(coords), xb, slicing, mesh, weights)

    def loss_fn(coords: Any, fixed: Any, xb: jax.Array, key: jax.Array, weights):
        # As above, but the loss sees the frozen leaves themselves (``fixed``), not their round
        # trip through the log-Cholesky coordinates (exp(log d) is not d to the bit).
        coords = coords._replace(reg_covar=jax.lax.stop_gradient(coords.reg_covar))
        params = _from_log_cholesky(coords)
        params = params._replace(
            **{name: jax.lax.stop_gradient(getattr(fixed, name)) for name in held_of(fixed)}
        )
        return _loss(key, params, xb, slicing, mesh, weights)

    def restart(state: FitState, params: GMMParams) -> FitState:
        return state._replace(params=params, opt_state=opt.init(_to_log_cholesky(params)))

    def init(
        key: jax.Array,
        x: jax.Array,
        n_components: int,
        init: GMMParams | None = None,
        sample_weight: jax.Array | None = None,
    ) -> FitState:
        dtype = x.dtype
        if config.standardize:
            c, s = standardizer(x, sample_weight)
        else:
            c, s = jnp.zeros(x.shape[1], dtype), jnp.ones((), dtype)
        reg = jnp.asarray(config.reg_covar, dtype)
        if init is None:
            params = init_params(
                key,
                (x - c[None, :]) / s,
                n_components,
                config.initialization,
                reg,
                sample_weight,
                covariance_type=config.covariance_type,
            )
        else:  # re-floored at this fit's reg_covar
            moments = to_moments(rescale_params(init, -c / s, 1.0 / s))
            params = moments_to_params(*moments, reg, covariance_type=covariance_type_of(init))
        return restart(FitState(params, None, c, s), params)

    def step(
        key: jax.Array, state: FitState, x_batch: jax.Array, sample_weight: jax.Array | None = None
    ) -> tuple[FitState, jax.Array]:
        xb = (x_batch - state.centre[None, :]) / state.scale
        coords = _to_log_cholesky(state.params)  # the optimiser's coordinates
        grad_fn = jax.value_and_grad(legacy_loss_fn if legacy else loss_fn)
        loss, grads = grad_fn(coords, state.params, xb, key, sample_weight)
        updates, opt_state = opt.update(grads, state.opt_state, coords)
        if config.optimizer.scale_with_dim and state.params.dim > 2:
            factor = (2.0 / state.params.dim) ** 0.5
            updates = jax.tree.map(lambda u: u * jnp.asarray(factor, u.dtype), updates)
        params = _from_log_cholesky(optax.apply_updates(coords, updates))
        if not legacy:  # bit for bit: the state's frozen leaves, not their round trip
            params = params._replace(**{name: getattr(state.params, name) for name in held_of(params)})
        return state._replace(params=params, opt_state=opt_state), loss * state.scale**slicing.p

    return FitStep(init, step, restart)


def run_steps(
    fit_step: FitStep,
    key: jax.Array,
    state: FitState,
    x: jax.Array,
    n_steps: int,
    batch_size: int | None = None,
    sample_weight: jax.Array | None = None,
    *,
    progress: Callable[[jax.Array, jax.Array], Any] | None = None,
    progress_every: int = 1,
) -> tuple[FitState, jax.Array]:
    """``n_steps`` steps in one ``lax.scan``, each on all of ``x`` or on a minibatch of it.

    Step ``i`` uses ``jax.random.split(key, n_steps)[i]``, split again into the
    minibatch's key (``batch_size`` points drawn with replacement) and the step's.
    With ``sample_weight``, full-data steps use the weights, and minibatch
    points are drawn with probability ``w_i / sum(w)`` and count equally (an
    unweighted minibatch of the weighted distribution: never a batch of zero
    weight).

    Args:
      fit_step: the :class:`FitStep` of :func:`make_fit_step`.
      key: PRNG key of the steps (minibatches, directions, levels).
      state: the :class:`FitState` to start from.
      x: ``[n, d]`` data, in its own units.
      n_steps: number of steps.
      batch_size: ``None`` for all of ``x`` each step, else points per minibatch.
      sample_weight: ``None`` or ``[n]`` weights of the points (not checked).
      progress: optional host function ``progress(steps_done, loss)``, called
        through ``jax.debug.callback`` from inside the scan after every
        ``progress_every``-th step and after the last one (the scan is not
        left; without ``progress`` the program has no callback at all).
      progress_every: steps between two ``progress`` calls.

    Returns:
      ``(state, losses[n_steps])``.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (200, 2))
      >>> fit_step = sw.make_fit_step(sw.FitConfig(n_steps=20, n_projections=4, n_levels=16))
      >>> state = fit_step.init(jax.random.key(1), x, 2)
      >>> state, losses = sw.run_steps(fit_step, jax.random.key(2), state, x, 20, batch_size=50)
      >>> losses.shape, state.data_params().means.shape
      ((20,), (2, 2))

      With a progress report every 10 steps:

      >>> seen = []
      >>> state, losses = sw.run_steps(fit_step, jax.random.key(2), state, x, 20,
      ...     progress=lambda i, loss: seen.append(int(i)), progress_every=10)
      >>> jax.effects_barrier(); seen
      [10, 20]
    """
    every = check_positive_int(progress_every, "progress_every")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable or None, got {type(progress).__name__}")
    report = None if progress is None else lambda i, loss: jax.debug.callback(progress, i, loss)
    return _scan_steps(fit_step, key, state, x, n_steps, batch_size, every, report, sample_weight)


def _scan_steps(fit_step, key, state, x, n_steps, batch_size, every, report, sample_weight=None):
    """:func:`run_steps`; ``report(steps_done, loss)`` (traced) after every ``every``-th step, if given."""
    n = x.shape[0]
    keys = jax.random.split(key, n_steps)

    def step(state, k):
        k_batch, k_loss = jax.random.split(k)
        if sample_weight is None:
            xb = x if batch_size is None else x[jax.random.randint(k_batch, (batch_size,), 0, n)]
            return fit_step.step(k_loss, state, xb)
        if batch_size is None:
            return fit_step.step(k_loss, state, x, sample_weight)
        drawn = jax.random.choice(k_batch, n, (batch_size,), p=sample_weight / jnp.sum(sample_weight))
        return fit_step.step(k_loss, state, x[drawn])

    if report is None:  # the default program: no callback, no step counter
        return jax.lax.scan(step, state, keys)

    def step_and_report(state, ik):
        i, k = ik
        state, loss = step(state, k)
        due = ((i + 1) % every == 0) | (i + 1 == n_steps)  # and always after the last step
        jax.lax.cond(due, lambda: report(i + 1, loss), lambda: None)
        return state, loss

    return jax.lax.scan(step_and_report, state, (jnp.arange(n_steps), keys))


# ---------------------------------------------------------------- progress of the jitted fits
PROGRESS_REPORTS = 20
"""Most progress reports of a fit given ``progress=`` (every ``ceil(n_steps / 20)`` steps, and the last)."""


def _report_every(n_steps: int) -> int:
    return -(-n_steps // PROGRESS_REPORTS)  # ceil: at most PROGRESS_REPORTS reports


class Progress(NamedTuple):
    """A progress report of :func:`fit`, :func:`fit_restarts` or :func:`swgmm_jax.fit_robust`.

    Attributes:
      stage: ``"sw"`` (the SW steps) or ``"em"`` (reported once EM has finished).
      step: steps (EM: iterations) done.
      n_steps: steps of the stage (EM: the most iterations).
      loss: the step's Monte-Carlo ``SW_p^p`` in standardised units (EM: the
        negative mean log-likelihood); ``[R]`` for restarts.
      elapsed: seconds since the call started.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (200, 2))
      >>> reports = []
      >>> _ = sw.fit(jax.random.key(1), x, 2, sw.FitConfig(n_steps=40), progress=reports.append)
      >>> [r.step for r in reports][:3], reports[-1].n_steps, reports[-1].stage
      ([2, 4, 6], 40, 'sw')
    """

    stage: str
    step: int
    n_steps: int
    loss: Any
    elapsed: float


_SINKS: dict[int, Callable[[int, np.ndarray], None]] = {}
_SINK_IDS = itertools.count(1)
_SINK_LOCK = threading.Lock()


def _dispatch(sink_id, step, loss) -> None:
    """Host side of the fits' ``jax.debug.callback``: hand the report to the sink ``sink_id``."""
    sink = _SINKS.get(int(sink_id))
    if sink is not None:
        sink(int(step), np.asarray(loss))


def _print_progress(report: Progress) -> None:
    loss = np.asarray(report.loss, dtype=float)
    if loss.ndim:
        value = f"median {np.median(loss):.4g} (min {loss.min():.4g}) over {loss.size} restarts"
    else:
        value = f"{float(loss):.4g}"
    what = "SW_p^p" if report.stage == "sw" else "NLL"
    print(
        f"swgmm {report.stage}: step {report.step}/{report.n_steps}, {what} {value} [{report.elapsed:.1f} s]",
        file=sys.stderr,
        flush=True,
    )


class ProgressSink:
    """Routes the progress reports of one fit call to ``progress`` (a callable, or ``True`` to print).

    Used by the fits (and :func:`swgmm_jax.fit_robust`): ``with ProgressSink(progress,
    n_steps, n_restarts) as sink_id``: the compiled fit takes ``sink_id`` as a
    traced argument, so a new callback never compiles a new program. Reports of
    the ``R`` restarts of one step arrive one by one (``vmap`` of a callback)
    and are passed on together. On exit, waits for the outstanding reports.
    """

    def __init__(
        self,
        progress: Any,
        n_steps: int,
        n_restarts: int | None = None,
        stage: str = "sw",
        t0: float | None = None,
    ):
        if progress is True:
            progress = _print_progress
        if not callable(progress):
            raise TypeError(f"progress must be None, True or a callable, got {type(progress).__name__}")
        self.progress, self.n_steps, self.n_restarts, self.stage = progress, n_steps, n_restarts, stage
        self.t0 = time.perf_counter() if t0 is None else t0
        self._pending: list[np.ndarray] = []

    def emit(self, stage: str, step: int, n_steps: int, loss: Any) -> None:
        self.progress(Progress(stage, step, n_steps, loss, time.perf_counter() - self.t0))

    def _receive(self, step: int, loss: np.ndarray) -> None:
        if self.n_restarts is None:
            self.emit(self.stage, step, self.n_steps, float(loss))
            return
        self._pending.append(loss)
        if len(self._pending) == self.n_restarts:
            losses, self._pending = np.stack(self._pending), []
            self.emit(self.stage, step, self.n_steps, losses)

    def __enter__(self) -> jax.Array:
        with _SINK_LOCK:
            self.sink_id = next(_SINK_IDS)
            _SINKS[self.sink_id] = self._receive
        return jnp.asarray(self.sink_id, jnp.int32)

    def __exit__(self, *exc) -> None:
        try:
            jax.effects_barrier()
        finally:
            with _SINK_LOCK:
                _SINKS.pop(self.sink_id, None)


def check_progress(progress: Any, *arrays: Any) -> None:
    if progress is None:
        return
    if progress is not True and not callable(progress):
        raise TypeError(f"progress must be None, True or a callable, got {type(progress).__name__}")
    if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(arrays)):
        raise ValueError("progress cannot be used inside a jax transformation (jit, vmap, grad): pass None")


def _relocation_rounds(key, state: FitState, x, config: FitConfig, mesh, sample_weight=None):
    """``config.relocation.rounds`` merge-and-relocate rounds, each kept only if ``SW_p^p`` went down."""
    reloc, slicing = config.relocation, config.slicing
    refine = make_fit_step(
        config.replace(n_steps=reloc.steps, learning_rate=reloc.learning_rate, lr_schedule="cosine"), mesh
    )
    xs = (x - state.centre[None, :]) / state.scale
    k_eval, k_rounds = jax.random.split(key)
    held = frozen_fields(config.freeze, type(state.params))

    test = dataclasses.replace(slicing, n_projections=reloc.n_projections, n_levels=reloc.n_levels)

    def evaluate(params):  # the same directions and levels in every round
        return _loss(k_eval, params, xs, test, mesh, sample_weight)

    def propose(params, k):
        k_move, k_steps = jax.random.split(k)
        proposal = merge_relocate(
            k_move,
            params,
            xs,
            temperature=reloc.temperature,
            cov_scale=config.initialization.cov_scale,
            keep_weights=not config.learn_weights,
            sample_weight=sample_weight,
        )
        # The move leaves the frozen parameters alone (the steps then keep them).
        proposal = proposal._replace(**{name: getattr(params, name) for name in held})
        refined, _ = run_steps(
            refine,
            k_steps,
            refine.restart(state, proposal),
            x,
            reloc.steps,
            slicing.batch_size,
            sample_weight,
        )
        return refined.params

    return accept_if_better(k_rounds, state.params, reloc.rounds, propose, evaluate)


def _fit_single(
    key,
    x,
    init,
    config: FitConfig,
    n_components: int,
    mesh=None,
    sample_weight=None,
    progress_every: int = 0,
    sink_id=None,
    steps_key=None,
    state=None,
) -> FitResult:
    fit_step = make_fit_step(config, mesh)
    k_init, k_loop = jax.random.split(key)
    if steps_key is not None:
        k_loop = steps_key
    if state is None:  # else fit_step.init(k_init, x, n_components, init, sample_weight), done by the caller
        state = fit_step.init(k_init, x, n_components, init, sample_weight)
    start = state.data_params() if init is None else init  # the frozen leaves' values, caller's units
    report = None
    if progress_every:
        report = lambda i, loss: jax.debug.callback(_dispatch, sink_id, i, loss)  # noqa: E731
    state, losses = _scan_steps(
        fit_step,
        k_loop,
        state,
        x,
        config.n_steps,
        config.slicing.batch_size,
        progress_every,
        report,
        sample_weight,
    )
    if not config.relocation.rounds:
        return FitResult(hold_frozen(state.data_params(), start, config.freeze), losses)
    params, sw_rounds, accepted = _relocation_rounds(
        jax.random.fold_in(key, 1), state, x, config, mesh, sample_weight
    )
    unit = state.scale**config.slicing.p
    params = hold_frozen(rescale_params(params, state.centre, state.scale), start, config.freeze)
    return FitResult(params, losses, sw_rounds * unit, accepted)


_fit_jit = jax.jit(_fit_single, static_argnames=("n_components", "mesh", "progress_every"))


@functools.partial(jax.jit, static_argnames=("n_components", "mesh", "progress_every"))
def _fit_restarts_jit(
    keys,
    x,
    init,
    config,
    n_components,
    mesh=None,
    sample_weight=None,
    progress_every=0,
    sink_id=None,
    steps_key=None,
):
    def fit_one(key, data, init, state=None):  # data = (x, sample_weight): both replicated under a mesh
        return _fit_single(
            key,
            data[0],
            init,
            config,
            n_components,
            sample_weight=data[1],
            progress_every=progress_every,
            sink_id=sink_id,
            steps_key=steps_key,
            state=state,
        )

    if mesh is not None:  # restarts, not projections, sharded over the devices
        return map_restarts(fit_one, keys, (x, sample_weight), init, mesh)
    if init is not None:
        return jax.vmap(fit_one, (0, None, 0))(keys, (x, sample_weight), init)
    # The initialisations (k-means: data-dependent loops) one restart after another on the CPU
    # (loop_restarts), then the steps of all restarts side by side; the standardisation is the
    # same for every restart, and stays unbatched so that the data's slices are too.
    fit_step = make_fit_step(config)
    states = loop_restarts(
        lambda k: fit_step.init(jax.random.split(k)[0], x, n_components, None, sample_weight), keys
    )
    states = states._replace(centre=states.centre[0], scale=states.scale[0])
    axes = FitState(0, 0, None, None)  # type: ignore[arg-type]  # vmap in_axes, not a state
    return jax.vmap(fit_one, (0, None, None, axes))(keys, (x, sample_weight), None, states)


def fit(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    config: FitConfig | None = None,
    init: GMMParams | None = None,
    *,
    mesh: Any = "auto",
    sample_weight: jax.typing.ArrayLike | None = None,
    progress: bool | Callable[[Progress], Any] | None = None,
    steps_key: jax.Array | None = None,
) -> FitResult:
    """Fit a GMM to ``x`` by minimising the sliced Wasserstein distance.

    One jitted call: initialisation (unless ``init`` is given), then
    ``config.n_steps`` steps of ``optax.rmsprop`` on the Monte-Carlo ``SW_p^p``
    with fresh random directions each step, inside a single ``lax.scan``
    (:func:`make_fit_step`, :func:`run_steps`), then ``config.relocations``
    merge-and-relocate rounds. Changing a numeric hyperparameter of ``config``
    (learning rates, ``reg_covar``, ...) reuses the compiled fit, and
    ``jax.vmap`` over them sweeps them in one call.

    Args:
      key: PRNG key (initialisation, directions, levels, minibatches), split
        into the initialisation's key and the steps' key.
      x: ``[n, d]`` data, any offset and scale.
      n_components: ``K``.
      config: :class:`FitConfig`; defaults to ``FitConfig()``.
      init: optional initial ``GMMParams`` in the units of ``x``.
      mesh: where the projections of each step run: ``"auto"`` (all devices
        when there are several accelerators, else unsharded), ``None``
        (unsharded) or a 1-D ``jax.sharding.Mesh`` (see
        :func:`swgmm_jax.make_projection_mesh`). Sharded steps equal unsharded
        ones to float rounding but sort with XLA (``sort="host"`` is rejected).
      sample_weight: ``None`` (equal weights) or ``[n]`` weights of the points,
        >= 0 and not all 0 (only their ratios matter): the fit then matches
        the weighted empirical distribution. The standardisation, the
        initialisation (:func:`swgmm_jax.initialize`), every step's slices
        (:func:`swgmm_jax.slice_costs`; with ``n_levels`` set, integer weights
        give the steps of the data with each point repeated ``w_i`` times),
        minibatches (drawn in proportion to the weights) and relocation
        moves all use them.
      progress: ``None`` (silent), ``True`` (a line on stderr every
        ``ceil(n_steps / 20)`` steps and after the last) or a callable that
        receives a :class:`Progress` at those steps, from inside the jitted scan (through
        ``jax.debug.callback``). A new callable reuses the compiled fit; turning
        progress on or off compiles once more. Not usable under a jax transformation.
      steps_key: optional PRNG key of the steps (their directions, levels and
        minibatches) in place of the one split from ``key``; ``key`` then
        seeds only the initialisation and the relocation rounds. Restart ``r``
        of :func:`fit_restarts` (which shares one steps' key among its
        restarts) is ``fit(keys[r], ..., steps_key=...)``.

    Returns:
      :class:`FitResult` with parameters in the units of ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> res = sw.fit(jax.random.key(1), x, 2, sw.FitConfig(n_steps=50))
      >>> res.loss_history.shape
      (50,)

      A learning-rate sweep in one call:

      >>> def final_loss(lr):
      ...     cfg = sw.FitConfig(n_steps=50, learning_rate=lr)
      ...     return sw.fit(jax.random.key(1), x, 2, cfg).loss_history[-1]
      >>> jax.vmap(final_loss)(jnp.array([0.01, 0.05, 0.2])).shape
      (3,)

      Weighted points, and means held where ``init`` put them:

      >>> init = sw.initialize(jax.random.key(2), x, 2)
      >>> cfg = sw.FitConfig(n_steps=20, freeze={"means"})
      >>> res = sw.fit(jax.random.key(1), x, 2, cfg, init, sample_weight=jnp.linspace(0.0, 1.0, 500))
      >>> bool(jnp.all(res.params.means == init.means))
      True
    """
    config = check_config(config, FitConfig)
    check_progress(progress, key, x, init)
    x, k, init = check_fit_args(key, x, n_components, init, covariance_type=config.covariance_type)
    if steps_key is not None:
        check_key(steps_key, "steps_key")
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    mesh = resolve_mesh(mesh)
    check_mesh_sort(mesh, config.slicing.sort)
    if progress is None:
        if w is None and steps_key is None:
            return _fit_jit(key, x, init, config, n_components=k, mesh=mesh)
        return _fit_jit(key, x, init, config, n_components=k, mesh=mesh, sample_weight=w, steps_key=steps_key)
    with ProgressSink(progress, config.n_steps) as sink:
        every = _report_every(config.n_steps)
        res = _fit_jit(
            key,
            x,
            init,
            config,
            n_components=k,
            mesh=mesh,
            sample_weight=w,
            progress_every=every,
            sink_id=sink,
            steps_key=steps_key,
        )
        return jax.block_until_ready(res)


def fit_restarts(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    n_restarts: int,
    config: FitConfig | None = None,
    init: GMMParams | None = None,
    *,
    mesh: Any = "auto",
    sample_weight: jax.typing.ArrayLike | None = None,
    progress: bool | Callable[[Progress], Any] | None = None,
    share_directions: bool = True,
) -> FitResult:
    """``n_restarts`` fits from independent initialisations as one jitted ``vmap``.

    Restart ``r`` is initialised from ``keys[r]``, ``keys =
    jax.random.split(key, n_restarts)``. With ``share_directions`` (the
    default) every restart takes each step's directions, levels and minibatch
    from one key, restart 0's, so that the data's projections are computed and
    sorted once per step for all of them, not once per restart: restart ``r``
    equals ``fit(keys[r], x, n_components, config, steps_key=s)`` with
    ``s = jax.random.split(keys[0])[1]`` (restart 0 is ``fit(keys[0], ...)``).
    The restarts still differ in their initialisations (and relocation
    rounds), which is what restarts are for. Without it, restart ``r`` equals
    ``fit(keys[r], x, n_components, config)``: independent directions, at the
    cost of one sort of the data's projections per restart and step. ``init``, if
    given, has a leading ``[n_restarts]`` axis (e.g. ``jax.vmap(sw.initialize, (0, None, None))``).

    On the CPU the restarts' initialisations (k-means, whose Lloyd iterations
    stop when the centres do) run one restart after another and the steps of
    all restarts side by side; elsewhere all of it side by side (see
    ``swgmm_jax._mesh.loop_restarts``): 100 default restarts 18.0 -> 14.3 s on
    2 CPU cores.

    Sharing the directions made 100 default restarts on ring-square-line
    (n = 850, K = 10) 7% faster (19.3 -> 18.0 s), 200-step fits of 100 restarts
    at n = 3,000 23% faster (27.9 -> 21.4 s) and of 20 restarts at n = 20,000,
    d = 10 35% faster (24.3 -> 15.9 s) on a 2-core CPU: the larger ``n``
    against the mixture's levels, the more the data's sort is of a step.

    ``mesh`` (as in :func:`fit`) shards the *restarts* over the devices: each
    device runs its share of them whole (padded with discarded copies when the
    device count does not divide ``n_restarts``), with no communication; results
    are replicated. Sharded restarts sort with XLA (``sort="host"`` is rejected).

    Args:
      key: PRNG key, split into one key per restart.
      x: ``[n, d]`` data, any offset and scale.
      n_components: ``K``.
      n_restarts: number of restarts ``R``.
      config: :class:`FitConfig`; defaults to ``FitConfig()``.
      init: optional ``[R]``-batched initial ``GMMParams`` in the units of ``x``.
      mesh: ``"auto"``, ``None`` or a 1-D ``jax.sharding.Mesh`` over which the restarts run.
      sample_weight: ``None`` or ``[n]`` weights of the points, as in :func:`fit`.
      progress: as in :func:`fit`; each :class:`Progress` carries the ``[R]``
        losses of the step (not with a ``mesh``).
      share_directions: one steps' key for all restarts (see above); ``False``
        gives each restart its own directions, levels and minibatches.

    Returns:
      :class:`FitResult` whose leaves have a leading ``[n_restarts]`` axis; pick
      one with :func:`swgmm_jax.select_best`.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (300, 2))
      >>> res = sw.fit_restarts(jax.random.key(1), x, 2, 4, sw.FitConfig(n_steps=20))
      >>> res.params.means.shape
      (4, 2, 2)
    """
    config = check_config(config, FitConfig)
    r = check_positive_int(n_restarts, "n_restarts")
    share = check_bool(share_directions, "share_directions")
    check_progress(progress, key, x, init)
    x, k, init = check_fit_args(
        key, x, n_components, init, batch_dims=(r,), covariance_type=config.covariance_type
    )
    w = check_sample_weight(sample_weight, x.shape[0], dtype=x.dtype)
    mesh = resolve_mesh(mesh)
    check_mesh_sort(mesh, config.slicing.sort)
    if mesh is not None and config.slicing.sort == "auto":
        # The host sort inside shard_map hung a 2-process run even with no
        # collective in the body (the gather of the results waited forever).
        config = config.replace(sort="xla")
    keys = jax.random.split(key, r)
    steps_key = jax.random.split(keys[0])[1] if share else None
    if progress is None:
        if w is None:
            return _fit_restarts_jit(keys, x, init, config, n_components=k, mesh=mesh, steps_key=steps_key)
        return _fit_restarts_jit(
            keys, x, init, config, n_components=k, mesh=mesh, sample_weight=w, steps_key=steps_key
        )
    if mesh is not None:
        raise ValueError("progress is not supported with a mesh: pass mesh=None or progress=None")
    with ProgressSink(progress, config.n_steps, n_restarts=r) as sink:
        every = _report_every(config.n_steps)
        res = _fit_restarts_jit(
            keys,
            x,
            init,
            config,
            n_components=k,
            sample_weight=w,
            progress_every=every,
            sink_id=sink,
            steps_key=steps_key,
        )
        return jax.block_until_ready(res)
