"""The SW-GMM fit loop: RMSProp on the sliced loss inside one ``lax.scan``.

``fit`` is one jitted call; ``fit_restarts`` is one jitted ``vmap`` of the same
function over ``jax.random.split(key, n_restarts)``, so restart ``r`` equals
``fit(keys[r], ...)``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from swgmm_jax import _sharding, _validation
from swgmm_jax._config import FitConfig
from swgmm_jax._init import _initialize
from swgmm_jax._params import GMMParams, _from_moments, log_likelihood, to_moments
from swgmm_jax._relocate import accept_if_better, merge_relocate
from swgmm_jax._sliced import sliced_loss

__all__ = ["FitResult", "fit", "fit_restarts", "select_best", "standardizer"]


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
    """

    params: GMMParams
    loss_history: jax.Array
    relocation_sw: jax.Array | None = None
    relocation_accepted: jax.Array | None = None


def standardizer(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centre ``c[d]`` and global scale ``s[]`` with ``(x - c) / s`` of unit RMS.

    The mean is taken around the first point so that float32 data at a large
    offset keeps its digits; ``s = 1`` when all points coincide.
    """
    shift = x[0]
    c = shift + jnp.mean(x - shift, axis=0)
    s = jnp.sqrt(jnp.mean((x - c) ** 2))
    return c, jnp.where(s > 0, s, jnp.ones_like(s))


def _rescale(params: GMMParams, c, s) -> GMMParams:
    """Parameters of ``s * X + c`` from those of ``X``."""
    return GMMParams(params.logits, c + s * params.means, s * params.scale_tril, s * s * params.reg_covar)


def _optimizer(config: FitConfig) -> optax.GradientTransformation:
    if callable(config.lr_schedule):
        lr = config.lr_schedule
    elif config.lr_schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.learning_rate, config.n_steps, config.lr_final_fraction)
    else:
        lr = config.learning_rate
    return optax.rmsprop(
        lr, decay=config.rmsprop_decay, centered=config.centered, momentum=config.momentum
    )


def _step_fn(config: FitConfig, merge, mesh):
    """The optimiser and one RMSProp step ``(carry, (x_batch, key)) -> (carry, loss)``."""
    opt = _optimizer(config)

    def loss_fn(t, xb, k):
        if mesh is not None:
            return _sharding.sharded_sliced_loss(
                merge(t), xb, k, mesh, n_projections=config.n_projections, p=config.p,
                n_levels=config.n_levels, quantile_iters=config.quantile_iters,
            )
        return sliced_loss(
            merge(t), xb, k, n_projections=config.n_projections, p=config.p,
            n_levels=config.n_levels, quantile_iters=config.quantile_iters, sort=config.sort,
        )

    def step(carry, inputs):
        t, opt_state = carry
        xb, k = inputs
        loss, grads = jax.value_and_grad(loss_fn)(t, xb, k)
        updates, opt_state = opt.update(grads, opt_state, t)
        return (optax.apply_updates(t, updates), opt_state), loss

    return opt, step


def _split(params0, learn_weights):
    """Trainable part of the params (no floor; no logits if weights are fixed), and the merge back."""
    reg = params0.reg_covar
    fixed = None if learn_weights else params0.logits
    trainable = params0._replace(reg_covar=None, logits=None if fixed is not None else params0.logits)

    def merge(t):
        return GMMParams(t.logits if fixed is None else fixed, t.means, t.scale_tril, reg)

    return trainable, merge


def _fit_single(key, x, init, n_components: int, config: FitConfig, mesh=None) -> FitResult:
    dtype = x.dtype
    if config.standardize:
        c, s = standardizer(x)
    else:
        c, s = jnp.zeros(x.shape[1], dtype), jnp.ones((), dtype)
    xs = (x - c) / s
    k_init, k_loop = jax.random.split(key)
    reg = jnp.asarray(config.reg_covar, dtype)
    if init is None:
        params0 = _initialize(k_init, xs, n_components, config.init, config.init_cov_scale, config.reg_covar)
    else:
        std = _rescale(init, -c / s, 1.0 / s)
        params0 = _from_moments(*to_moments(std), reg)  # re-floor at this fit's reg_covar

    def run(params0, key, config):
        """``config.n_steps`` RMSProp steps from ``params0``, fresh optimiser state."""
        trainable, merge = _split(params0, config.learn_weights)
        opt, step_on = _step_fn(config, merge, mesh)
        n = xs.shape[0]

        def step(carry, k):
            k_batch, k_loss = jax.random.split(k)
            xb = xs if config.batch_size is None else xs[jax.random.randint(k_batch, (config.batch_size,), 0, n)]
            return step_on(carry, (xb, k_loss))

        keys = jax.random.split(key, config.n_steps)
        (t, _), losses = jax.lax.scan(step, (trainable, opt.init(trainable)), keys)
        return merge(t), losses

    params, losses = run(params0, k_loop, config)
    if not config.relocations:
        return FitResult(_rescale(params, c, s), losses * s**config.p)
    params, sw_rounds, accepted = _relocation_rounds(jax.random.fold_in(key, 1), xs, params, config, mesh, run)
    return FitResult(_rescale(params, c, s), losses * s**config.p, sw_rounds * s**config.p, accepted)


def _relocation_rounds(key, xs, params, config: FitConfig, mesh, run):
    """``config.relocations`` merge-and-relocate rounds, each kept only if ``SW_p^p`` went down."""
    refine = dataclasses.replace(
        config, n_steps=config.relocation_steps, learning_rate=config.relocation_lr, lr_schedule="cosine"
    )
    k_eval, k_rounds = jax.random.split(key)
    eval_kw = dict(
        n_projections=config.relocation_projections, p=config.p, n_levels=config.relocation_levels,
        quantile_iters=max(config.quantile_iters, 16),
    )

    def evaluate(p):  # the same directions and levels in every round
        if mesh is not None:
            return _sharding.sharded_sliced_loss(p, xs, k_eval, mesh, **eval_kw)
        return sliced_loss(p, xs, k_eval, sort=config.sort, **eval_kw)

    def propose(current, k):
        k_move, k_steps = jax.random.split(k)
        proposal = merge_relocate(
            current, xs, k_move, temperature=config.relocation_temperature,
            cov_scale=config.init_cov_scale, keep_weights=not config.learn_weights,
        )
        return run(proposal, k_steps, refine)[0]

    return accept_if_better(k_rounds, params, config.relocations, propose, evaluate)


_fit_jit = jax.jit(_fit_single, static_argnames=("n_components", "config", "mesh"))


@functools.partial(jax.jit, static_argnames=("n_components", "config", "mesh"))
def _fit_restarts_jit(keys, x, init, n_components, config, mesh=None):
    fit_one = functools.partial(_fit_single, n_components=n_components, config=config)
    if mesh is not None:  # restarts, not projections, sharded over the devices
        return _sharding.map_restarts(fit_one, keys, x, init, mesh)
    in_axes = (0, None, None if init is None else 0)
    return jax.vmap(fit_one, in_axes)(keys, x, init)


def _check_mesh(mesh, config):
    mesh = _sharding.resolve_mesh(mesh)
    if mesh is not None and config.sort == "host":
        raise ValueError("sort='host' cannot run sharded over several devices; use sort='auto' or 'xla'")
    return mesh


def _check_fit_args(key, x, n_components, config, init, batch_dims=()):
    _validation.check_key(key)
    k = _validation.check_positive_int(n_components, "n_components")
    x = _validation.check_data(x, "x")
    if x.shape[0] < k:
        raise ValueError(f"x has {x.shape[0]} points, fewer than n_components={k}")
    if init is not None:
        if not isinstance(init, GMMParams):
            raise TypeError(f"init must be GMMParams or None, got {type(init).__name__}")
        want = (*batch_dims, k, x.shape[1])
        if tuple(init.means.shape) != want:
            raise ValueError(f"init.means must have shape {list(want)}, got {list(init.means.shape)}")
        init = jax.tree.map(lambda a: jnp.asarray(a, x.dtype), init)
    return x, k, init


def fit(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    config: FitConfig | None = None,
    init: GMMParams | None = None,
    *,
    mesh="auto",
) -> FitResult:
    """Fit a GMM to ``x`` by minimising the sliced Wasserstein distance.

    One jitted call: initialisation (unless ``init`` is given), then
    ``config.n_steps`` steps of ``optax.rmsprop`` on the Monte-Carlo ``SW_p^p``
    with fresh random directions each step, inside a single ``lax.scan``.

    Args:
      key: PRNG key (initialisation, directions, levels, minibatches).
      x: ``[n, d]`` data, any offset and scale.
      n_components: ``K``.
      config: :class:`FitConfig`; defaults to ``FitConfig()``.
      init: optional initial ``GMMParams`` in the units of ``x``.
      mesh: where the projections of each step run. ``"auto"``: sharded over
        all devices (:func:`make_projection_mesh`) when there are several, else
        unsharded; ``None``: unsharded; or a 1-D ``jax.sharding.Mesh``. Sharded
        steps equal unsharded ones to float rounding (same key, same
        directions) but sort with XLA (``config.sort="host"`` is rejected).

    Returns:
      :class:`FitResult` with parameters in the units of ``x``.

    Examples:
      >>> import jax, swgmm_jax as sw
      >>> x = jax.random.normal(jax.random.key(0), (500, 2))
      >>> res = sw.fit(jax.random.key(1), x, 2, sw.FitConfig(n_steps=50))
      >>> res.loss_history.shape
      (50,)
    """
    config = FitConfig() if config is None else config
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    x, k, init = _check_fit_args(key, x, n_components, config, init)
    return _fit_jit(key, x, init, n_components=k, config=config, mesh=_check_mesh(mesh, config))


def fit_restarts(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    n_components: int,
    n_restarts: int,
    config: FitConfig | None = None,
    init: GMMParams | None = None,
    *,
    mesh="auto",
) -> FitResult:
    """``n_restarts`` independent fits as one jitted ``vmap``.

    Restart ``r`` uses ``jax.random.split(key, n_restarts)[r]`` and equals
    ``fit(that_key, x, n_components, config)``. ``init``, if given, has a leading
    ``[n_restarts]`` axis (e.g. ``jax.vmap(sw.initialize, (0, None, None))``).

    ``mesh`` (as in :func:`fit`) shards the *restarts* over the devices: each
    device runs its share of them whole (padded with discarded copies when the
    device count does not divide ``n_restarts``), with no communication; results
    are replicated. Sharded restarts sort with XLA (``config.sort="host"`` is
    rejected).

    Returns:
      :class:`FitResult` whose leaves have a leading ``[n_restarts]`` axis; pick
      one with :func:`select_best`.
    """
    config = FitConfig() if config is None else config
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    r = _validation.check_positive_int(n_restarts, "n_restarts")
    x, k, init = _check_fit_args(key, x, n_components, config, init, batch_dims=(r,))
    mesh = _check_mesh(mesh, config)
    if mesh is not None and config.sort == "auto":
        # The host sort inside shard_map hung a 2-process run even with no
        # collective in the body (the gather of the results waited forever).
        config = dataclasses.replace(config, sort="xla")
    return _fit_restarts_jit(jax.random.split(key, r), x, init, n_components=k, config=config, mesh=mesh)


@functools.partial(jax.jit, static_argnames=("n_projections", "p", "n_levels"))
def _restart_sw(params, x, key, n_projections, p, n_levels):
    return jax.vmap(
        lambda pr: sliced_loss(pr, x, key, n_projections=n_projections, p=p, n_levels=n_levels, quantile_iters=24)
    )(params)


def select_best(
    result,
    x: jax.typing.ArrayLike,
    criterion: str = "sw",
    *,
    key: jax.Array | None = None,
    n_projections: int = 256,
    p: float = 2.0,
    n_levels: int | None = None,
):
    """Pick the best restart of a batched result.

    Args:
      result: a batched :class:`FitResult` (or EM result) from a ``*_restarts`` call.
      x: ``[n, d]`` data the criterion is evaluated on.
      criterion: ``"sw"`` (smallest ``SW_p^p`` on the same ``n_projections``
        directions from ``key`` for every restart) or ``"log_likelihood"``
        (largest mean log-likelihood).
      key: PRNG key, required for ``"sw"``.

    Returns:
      ``(index, scores, best)``: the best restart's index, the ``[R]`` scores
      (SW distances, or log-likelihoods) and the unbatched result.
    """
    x = _validation.check_data(x, "x")
    params = result.params
    if criterion == "sw":
        if key is None:
            raise ValueError("key is required for criterion='sw' (the evaluation directions)")
        scores = _restart_sw(params, x, key, n_projections, float(p), n_levels)
        idx = int(jnp.argmin(scores))
    elif criterion == "log_likelihood":
        scores = jax.jit(jax.vmap(log_likelihood, (0, None)))(params, x)
        idx = int(jnp.nanargmax(scores))
    else:
        raise ValueError(f"criterion must be 'sw' or 'log_likelihood', got {criterion!r}")
    return idx, scores, jax.tree.map(lambda a: a[idx], result)
