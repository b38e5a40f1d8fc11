"""1D optimal transport between a Gaussian mixture and an empirical distribution.

In 1D the optimal map is monotone, so ``W_p^p(mu, nu) = int_0^1 |Q_mu(z) - Q_nu(z)|^p dz``
(paper, eq. 3) with ``Q`` the quantile functions. The data side is exact: the
quantile of ``n`` points is the sorted sample, ``Q_data(z) = y_(ceil(z n))``. The
mixture side has no closed form: :func:`mixture_quantile` solves ``F(q) = z`` by a
safeguarded Newton iteration in log-tail space and is differentiated by the
implicit function theorem, never through its iterations.

Shapes: functions broadcast over leading "slice" axes ``[...]``; mixtures are
given by ``log_weights[..., K]``, ``means[..., K]`` and ``scales[..., K]``
(standard deviations), levels by ``[..., M]``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, logsumexp, ndtri

from swgmm_jax._sort import SORT_METHODS, sort_table
from swgmm_jax._validation import check_choice

__all__ = [
    "mixture_cdf",
    "mixture_sf",
    "mixture_logpdf",
    "mixture_quantile",
    "stratified_levels",
    "midpoint_levels",
    "transport_cost",
    "weighted_levels",
    "weighted_data_quantile",
    "QUANTILE_ITERS",
]

# A Python float: weakly typed (exact in float64 too), and computing it with
# jnp at import would start the backend, after which
# jax.distributed.initialize can no longer run.
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

QUANTILE_ITERS = 5
"""Iterations of the mixture quantile solver everywhere (fits, evaluation,
selection), after its start from a per-slice table (see ``_start``).
Measured by ``python -m experiments.quantile_iters`` on 60 random 1D mixtures
(K = 2 to 32, weights, spreads and scales over several orders of magnitude)
at 64 levels each, against scipy's ``brentq`` in float64, error relative to
the mixture's span: after 5 iterations the worst error is at float32
rounding (7e-7, the same as after 16) and 2e-8 in float64; 8 reach float64
rounding. (The solver started from the moment-matched Gaussian needed 16
iterations for a worst error of 2.5e-5 in float32.)"""

# Internally the component axis comes before the level axis (``[..., K, M]``)
# so that elementwise work runs along the long, contiguous level axis and the
# sums over components are K vector additions; with components last, the short
# K axis defeated vectorisation on CPU.


def _align(*arrays):
    """Broadcast the leading (slice) axes of levels ``[..., M]`` and mixtures ``[..., K]`` to one shape.

    Explicitly, so that nothing below relies on implicit rank promotion (e.g. the
    ``n`` midpoint levels, shared by every slice, against ``[L, K]`` mixtures).
    """
    arrays = tuple(jnp.asarray(a) for a in arrays)
    batch = jnp.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return tuple(jnp.broadcast_to(a, (*batch, a.shape[-1])) for a in arrays)


def _comp(a):
    """``[..., K] -> [..., K, 1]``."""
    return a[..., :, None]


def _standardised(t, means, scales):
    """``[..., K, M]`` standardised distances of levels ``t[..., M]`` to each component."""
    return (t[..., None, :] - _comp(means)) / _comp(scales)


def _norm_lw(log_weights):
    return _comp(jax.nn.log_softmax(log_weights, axis=-1))


def _tail_mass(sign, t, log_weights, means, scales):
    """``sum_k w_k Phi(sign (t - m_k) / s_k)``: the CDF (``sign = 1``) or the survival function (``-1``)."""
    t, log_weights, means, scales = _align(t, log_weights, means, scales)
    u = _standardised(t, means, scales)
    return jnp.exp(logsumexp(_norm_lw(log_weights) + log_ndtr(sign * u), axis=-2))


def mixture_cdf(t, log_weights, means, scales):
    """``[..., M]`` mixture CDF ``F(t) = sum_k w_k Phi((t - m_k) / s_k)``.

    Args:
      t: ``[..., M]`` points.
      log_weights: ``[..., K]`` log-weights (normalised internally by softmax).
      means: ``[..., K]``.
      scales: ``[..., K]`` standard deviations, > 0.

    Returns:
      ``[..., M]`` values of the CDF.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> lw, m, s = jnp.log(jnp.array([0.5, 0.5])), jnp.array([-1.0, 1.0]), jnp.ones(2)
      >>> float(sw.mixture_cdf(jnp.array([0.0]), lw, m, s)[0])
      0.5
    """
    return _tail_mass(1.0, t, log_weights, means, scales)


def mixture_sf(t, log_weights, means, scales):
    """``[..., M]`` survival function ``1 - F(t)``, accurate in the upper tail.

    Args:
      t: ``[..., M]`` points.
      log_weights: ``[..., K]`` log-weights (normalised internally by softmax).
      means: ``[..., K]``.
      scales: ``[..., K]`` standard deviations, > 0.

    Returns:
      ``[..., M]`` values of ``1 - F``.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> lw, m, s = jnp.zeros(1), jnp.zeros(1), jnp.ones(1)
      >>> float(sw.mixture_sf(jnp.array([10.0]), lw, m, s)[0]) > 0
      True
    """
    return _tail_mass(-1.0, t, log_weights, means, scales)


def mixture_logpdf(t, log_weights, means, scales):
    """``[..., M]`` log density of the mixture.

    Args:
      t: ``[..., M]`` points.
      log_weights: ``[..., K]`` log-weights (normalised internally by softmax).
      means: ``[..., K]``.
      scales: ``[..., K]`` standard deviations, > 0.

    Returns:
      ``[..., M]`` log densities.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> lw, m, s = jnp.zeros(1), jnp.zeros(1), jnp.ones(1)
      >>> round(float(sw.mixture_logpdf(jnp.array([0.0]), lw, m, s)[0]), 4)
      -0.9189
    """
    t, log_weights, means, scales = _align(t, log_weights, means, scales)
    u = _standardised(t, means, scales)
    logphi = -0.5 * u * u - _LOG_SQRT_2PI - _comp(jnp.log(scales))
    return logsumexp(_norm_lw(log_weights) + logphi, axis=-2)


def _gauss(arg):
    """``exp(-arg^2) = exp(-u^2 / 2)`` for the ``erfc`` argument ``arg = +-u / sqrt(2)``.

    Written exactly as XLA's ``erfc`` expansion computes its own factor
    ``exp(-x * x)``, so that common-subexpression elimination shares one
    exponential between a component's tail mass and its density: the solver's
    iteration and the table then cost one ``exp`` per (level, component), not two.
    """
    return jnp.exp(-(arg * arg))


# Newton-start table: every component's mean +- 2 and 4 standard deviations.
# Measured by ``experiments/quantile_iters.py`` (60 random mixtures against
# scipy in float64, see QUANTILE_ITERS): with this table 5 iterations reach
# float32 rounding everywhere; 9 offsets per component needed 4 iterations at
# almost twice the table's cost, and 4 offsets (+-1, +-3) 6 iterations.
_TABLE_OFFSETS = (-4.0, -2.0, 0.0, 2.0, 4.0)


def _table(log_w, means, scales, sort):
    """Mixture at ``K G`` sorted points per slice: ``t``, ``F(t)``, ``S(t)``, ``f(t)``, each ``[..., KG]``.

    One ``erfc`` per (point, component), whose ``exp`` the density shares
    (:func:`_gauss`), ``O(K^2 G)`` per slice (the levels then need only a few
    Newton steps each). Each component term's
    small tail is computed directly, so ``F`` is accurate in the lower tail and
    ``S = 1 - F`` in the upper one. ``cummax``/``cummin`` remove rounding
    wiggles, so the two tails are monotone and can be searched.
    """
    dtype = means.dtype
    offsets = jnp.asarray(_TABLE_OFFSETS, dtype).reshape((1,) * means.ndim + (-1,))
    k = means.shape[-1]
    t = (_comp(means) + _comp(scales) * offsets).reshape(*means.shape[:-1], k * offsets.size)
    t = sort_table(t, sort)  # by NumPy for many slices on the CPU (1,600 x 50: XLA 9.4 ms, NumPy 1.1 ms)
    u = _standardised(t, means, scales)  # [..., K, K G]
    w = jnp.exp(log_w)  # [..., K, 1]
    arg = jnp.abs(u) * (1.0 / math.sqrt(2.0))
    small = 0.5 * jax.lax.erfc(arg)  # Phi(-|u|)
    cdf = jnp.sum(w * jnp.where(u < 0, small, 1.0 - small), axis=-2)
    sf = jnp.sum(w * jnp.where(u > 0, small, 1.0 - small), axis=-2)
    pdf = jnp.sum(w / _comp(scales) * _gauss(arg), axis=-2) * (1.0 / math.sqrt(2.0 * math.pi))
    last = t.ndim - 1
    return t, jax.lax.cummax(cdf, axis=last), jax.lax.cummin(sf, axis=last), pdf


def _start(z, zc, lower, tail, sgn, log_w, means, scales, sort):
    """Bracket ``lo <= q <= hi`` and Newton start of each level, from :func:`_table`.

    Each level falls between two neighbouring table points (a binary search on
    ``F`` for lower-tail levels, on ``S`` for upper-tail ones), which bracket
    its quantile. The start is the cubic Hermite interpolant of ``q`` as a
    function of ``log T`` (``T = F`` or ``S``) between them, from the values
    and the slopes ``dq / dlog T = +-T / f`` at both ends. Beyond the table's
    ends (tails below ``Phi(-4)`` of every component) the bracket is closed by
    the components' own quantiles, ``min_k Q_k <= q <= max_k Q_k``, and the
    start is that outer bound.
    """
    t, cdf, sf, pdf = _table(log_w, means, scales, sort)
    n_table = t.shape[-1]
    search = jax.vmap(lambda a, v: jnp.searchsorted(a, v, side="right"))
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    i_lo = search(flat(cdf), flat(z)).reshape(z.shape)
    i_up = search(flat(-sf), flat(-zc)).reshape(z.shape)
    idx = jnp.where(lower, i_lo, i_up)  # table points left of the quantile

    def at(a, i):
        return jnp.take_along_axis(a, jnp.clip(i, 0, n_table - 1), axis=-1)

    has_lo, has_hi = idx > 0, idx < n_table
    t_lo, t_hi = at(t, idx - 1), at(t, idx)
    tail_lo = jnp.where(lower, at(cdf, idx - 1), at(sf, idx - 1))
    tail_hi = jnp.where(lower, at(cdf, idx), at(sf, idx))
    # Components' own quantiles close the bracket beyond the table.
    comp_q = _comp(means) + sgn[..., None, :] * _comp(scales) * ndtri(tail)[..., None, :]
    lo = jnp.where(has_lo, t_lo, jnp.min(comp_q, axis=-2))
    hi = jnp.where(has_hi, t_hi, jnp.max(comp_q, axis=-2))
    lo = jnp.minimum(lo, hi)
    # Hermite start between two table points.
    y_lo, y_hi = jnp.log(tail_lo), jnp.log(tail_hi)
    s = (jnp.log(tail) - y_lo) / (y_hi - y_lo)
    h = y_hi - y_lo
    m_lo = sgn * tail_lo / at(pdf, idx - 1)
    m_hi = sgn * tail_hi / at(pdf, idx)
    s2, s3 = s * s, s * s * s
    x0 = (2 * s3 - 3 * s2 + 1) * t_lo + (s3 - 2 * s2 + s) * h * m_lo + (3 * s2 - 2 * s3) * t_hi
    x0 = x0 + (s3 - s2) * h * m_hi
    inside = has_lo & has_hi & jnp.isfinite(x0)
    # Beyond the table, start from the outer bound (exact for one component):
    # log T is concave in a Gaussian tail, so Newton from the outside climbs
    # monotonically to the root, where from the inside it would overshoot.
    x0 = jnp.where(inside, x0, jnp.where(has_lo, hi, lo))
    return lo, hi, jnp.clip(x0, lo, hi)


def _solve(z, zc, log_weights, means, scales, quantile_iters, sort):
    """Safeguarded Newton on ``log T(q) = log tail`` with T = F (lower) or S (upper)."""
    log_w = _norm_lw(log_weights)
    lower = z <= zc
    tail = jnp.where(lower, z, zc)
    log_tail = jnp.log(tail)
    sgn = jnp.where(lower, 1.0, -1.0).astype(z.dtype)
    lo, hi, x0 = _start(z, zc, lower, tail, sgn, log_w, means, scales, sort)
    # Per-component constants: the loop body costs one erfc (whose exp the
    # density shares) per (component, level), in linear space; log T is taken of the sum only.
    # Where every component's tail underflows (far outside all of them) log T
    # is -inf, the step is not finite and the iteration bisects instead.
    w = jnp.exp(log_w)  # [..., K, 1]
    half_w = 0.5 * w
    pdf_coef = w / (_comp(scales) * jnp.sqrt(2.0 * jnp.pi).astype(z.dtype))
    neg_sgn = (-sgn / jnp.sqrt(2.0).astype(z.dtype))[..., None, :]
    tol = 64 * jnp.finfo(z.dtype).eps
    smin = jnp.min(scales, axis=-1, keepdims=True)

    inv_scales = _comp(1.0 / scales)  # a multiply per (level, component) instead of a divide

    def body(_, carry):
        x, lo, hi, dx, dx_old = carry
        arg = neg_sgn * ((x[..., None, :] - _comp(means)) * inv_scales)
        t = jnp.sum(half_w * jax.lax.erfc(arg), axis=-2)
        f = jnp.sum(pdf_coef * _gauss(arg), axis=-2)
        g = jnp.log(t) - log_tail
        # g increases with x in the lower tail, decreases in the upper one.
        above = jnp.where(lower, g > 0, g < 0)
        hi = jnp.where(above, x, hi)
        lo = jnp.where(above, lo, x)
        step = sgn * g * t / f
        x_new = x - step
        # Newton is taken when it stays in the bracket (inclusive: a converged
        # step may land on its end) and shrinks faster than bisection would
        # (rtsafe's test); otherwise bisect, so the bracket at least halves
        # every second iteration whatever the mixture. Steps at rounding level
        # are always taken: rejecting them would throw a converged x back to the
        # middle of a bracket that Newton, from one side, never shrank.
        converged = jnp.abs(step) <= tol * (jnp.abs(x) + smin)
        ok = (
            jnp.isfinite(x_new)
            & (x_new >= lo)
            & (x_new <= hi)
            & ((2.0 * jnp.abs(step) <= jnp.abs(dx_old)) | converged)
        )
        x_next = jnp.where(ok, x_new, 0.5 * (lo + hi))
        return x_next, lo, hi, x_next - x, dx

    width = hi - lo
    x, _, _, _, _ = jax.lax.fori_loop(0, quantile_iters, body, (x0, lo, hi, width, width))
    return x


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6))
def _quantile(z, zc, log_weights, means, scales, quantile_iters, sort):
    return _solve(z, zc, log_weights, means, scales, quantile_iters, sort)


@_quantile.defjvp
def _quantile_jvp(quantile_iters, sort, primals, tangents):
    z, zc, log_weights, means, scales = primals
    dz, dzc, dlw, dm, ds = tangents
    q = _quantile(z, zc, log_weights, means, scales, quantile_iters, sort)
    log_w = _norm_lw(log_weights)
    u = _standardised(q, means, scales)  # [..., K, M]
    log_comp = log_w - 0.5 * u * u - _LOG_SQRT_2PI - _comp(jnp.log(scales))
    # f(q) = exp(top) * total, with the largest term factored out: one exp per
    # (component, level), shared by the responsibilities and the weight part.
    top = jax.lax.stop_gradient(jnp.max(log_comp, axis=-2, keepdims=True))
    terms = jnp.exp(log_comp - top)
    total = jnp.sum(terms, axis=-2, keepdims=True)  # in [1, K]
    # Responsibilities r_k(q) = w_k f_k(q) / f(q): bounded.
    resp = terms * (1.0 / total)
    # dq = -(dF/dparams) / f: the mean and scale parts are r_k dm_k and r_k u_k ds_k.
    dq = jnp.sum(resp * (_comp(dm) + u * _comp(ds)), axis=-2)
    # Weight part: dq/dlogit_j = -w_j (Phi_j(q) - F(q)) / f(q), with F(q) = z, or
    # (Phi_j - F) = zc - S_j(q) in the upper tail for accuracy. It is unbounded
    # where f(q) ~ 0 (gaps between components): cap it at the mixture's span.
    # 1 / f is a per-level factor; where it overflows (f underflows) the cap applies.
    lower = z <= zc
    sgn = jnp.where(lower, 1.0, -1.0).astype(u.dtype)[..., None, :]
    tail = jnp.where(lower, z, zc)[..., None, :]
    phi_sgn = 0.5 * jax.lax.erfc(sgn * u * (-1.0 / math.sqrt(2.0)))  # Phi(sgn u), one erfc
    diff = sgn * (phi_sgn - tail)
    span = jnp.max(means + 8 * scales, axis=-1) - jnp.min(means - 8 * scales, axis=-1)
    cap = span[..., None, None]
    inv_f = jnp.exp(-top) / total  # [..., 1, M]
    big = jnp.asarray(jnp.finfo(u.dtype).max, u.dtype)
    w_over_f = jnp.exp(log_w) * jnp.minimum(inv_f, big)  # never inf, so 0 * it is 0
    coef = -jnp.sign(diff) * jnp.minimum(jnp.abs(diff) * w_over_f, cap)
    dlw_c = dlw - jnp.mean(dlw, axis=-1, keepdims=True)  # softmax is shift-invariant
    dq = dq + jnp.sum(coef * _comp(dlw_c), axis=-2)
    # Levels: dq = dz / f in the lower tail, -dzc / f in the upper one.
    dq = dq + jnp.where(lower, dz, -dzc) * inv_f[..., 0, :]
    return q, dq


def mixture_quantile(
    z, log_weights, means, scales, *, quantile_iters: int = QUANTILE_ITERS, sort: str = "auto"
):
    """Quantile ``F^{-1}(z)`` of a 1D Gaussian mixture at levels ``z[..., M]``.

    Found by a safeguarded Newton iteration on ``log F`` (``z <= 1/2``) or on
    ``log S = log(1 - F)`` (``z > 1/2``) inside a bracket from the components'
    own quantiles, a fixed ``quantile_iters`` times (no data-dependent loop, so it jits,
    vmaps and shards). Differentiable in every argument through the implicit
    function theorem (``jax.custom_jvp``): ``dq = (dz - dF/dtheta . dtheta) / f(q)``.
    The weight part of the derivative, unbounded where ``f(q) ~ 0``, is capped at
    the mixture's span so that gaps between components give finite gradients.

    Args:
      z: ``[..., M]`` levels in ``(0, 1)``.
      log_weights: ``[..., K]`` log-weights (normalised internally by softmax).
      means: ``[..., K]``.
      scales: ``[..., K]`` standard deviations, > 0.
      quantile_iters: Newton/bisection iterations (see ``QUANTILE_ITERS``).
      sort: how the Newton-start table of each slice is sorted: ``"auto"``
        (NumPy's sort on the CPU where all vmapped lanes together hold at
        least 10,000 table values, else XLA's), ``"xla"`` or ``"host"`` (see
        :func:`swgmm_jax.sort_slices`; pass ``"xla"`` inside a ``shard_map``
        over several devices).

    Returns:
      ``[..., M]`` quantiles.

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> lw, m, s = jnp.log(jnp.array([0.5, 0.5])), jnp.array([-1.0, 1.0]), jnp.ones(2)
      >>> abs(float(sw.mixture_quantile(jnp.array([0.5]), lw, m, s)[0])) < 1e-6
      True
    """
    check_choice(sort, "sort", SORT_METHODS)
    z, log_weights, means, scales = _align(z, log_weights, means, scales)
    # 1 - z is exact for z >= 1/2 (Sterbenz), which is where it is used.
    return _quantile(z, 1.0 - z, log_weights, means, scales, quantile_iters, sort)


def midpoint_levels(n: int, dtype) -> tuple[jax.Array, jax.Array]:
    """The ``n`` data levels ``z_i = (i - 1/2) / n`` and their complements ``1 - z_i``.

    Args:
      n: number of levels (the number of data points of a slice).
      dtype: floating dtype of the levels.

    Returns:
      ``(z[n], 1 - z[n])``, shared by every slice (they broadcast against ``[L, K]`` mixtures).

    Examples:
      >>> import jax.numpy as jnp, swgmm_jax as sw
      >>> z, zc = sw.midpoint_levels(4, jnp.float32)
      >>> z.tolist(), zc.tolist()
      ([0.125, 0.375, 0.625, 0.875], [0.875, 0.625, 0.375, 0.125])
    """
    i = jnp.arange(n, dtype=dtype)
    return (i + 0.5) / n, (n - i - 0.5) / n


def stratified_levels(key, batch_shape, n_levels: int, dtype) -> tuple[jax.Array, jax.Array]:
    """One uniform level in each stratum ``((j-1)/M, j/M]``, for each of ``batch_shape``.

    Returns ``(z, 1 - z)``, each computed directly (never as ``1 - z``) so
    that levels near 1 keep their upper-tail mass in float32.

    Args:
      key: PRNG key.
      batch_shape: leading shape, e.g. ``(L,)`` for one set of levels per slice.
      n_levels: number of levels ``M`` (strata) per set.
      dtype: floating dtype of the levels.

    Returns:
      ``(z, 1 - z)``, each ``[*batch_shape, M]``.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> z, zc = sw.stratified_levels(jax.random.key(0), (2,), 4, jnp.float32)
      >>> z.shape, jnp.ceil(4 * z).astype(int).tolist()  # level j lies in ((j-1)/4, j/4]
      ((2, 4), [[1, 2, 3, 4], [1, 2, 3, 4]])
      >>> bool(jnp.allclose(z + zc, 1.0))
      True
    """
    eps = jnp.finfo(dtype).eps
    u = jax.random.uniform(key, (*batch_shape, n_levels), dtype, minval=eps, maxval=1.0)
    j = jnp.arange(n_levels, dtype=dtype).reshape((1,) * len(batch_shape) + (n_levels,))
    return (j + u) / n_levels, ((n_levels - 1 - j) + (1.0 - u)) / n_levels


def weighted_levels(weights_sorted) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The data levels of weighted sorted data: each point's interval's centre, and its mass.

    Point ``i`` of a slice sorted with its weights holds the levels
    ``(W_{i-1} / W, W_i / W]`` (``W_i`` the cumulative weights, ``W`` their sum);
    this returns the centre of that interval, its complement (from the
    suffix sums, so that levels near 1 keep their upper-tail digits) and its
    width ``w_(i) / W``. A zero-weight point gets width 0 and the level 1/2 (a
    finite quantile whose cost counts for nothing). Equal weights give
    :func:`midpoint_levels` and widths ``1/n``.

    Args:
      weights_sorted: ``[..., n]`` weights, >= 0, of each slice's points in sorted order.

    Returns:
      ``(z, 1 - z, widths)``, each ``[..., n]``.
    """
    w = jnp.asarray(weights_sorted)
    total = jnp.sum(w, axis=-1, keepdims=True)
    below = jnp.cumsum(w, axis=-1) - w  # W_{i-1}
    above = jnp.flip(jnp.cumsum(jnp.flip(w, -1), axis=-1), -1) - w  # W - W_i
    half = 0.5 * w
    live = w > 0
    z = jnp.where(live, (below + half) / total, 0.5)
    zc = jnp.where(live, (above + half) / total, 0.5)
    return z, zc, w / total


def weighted_data_quantile(y_sorted, weights_sorted, z):
    """``[..., M]`` weighted empirical quantile of sorted data at levels ``z[..., M]``.

    The step function with a jump of ``w_(i) / W`` at each sorted value:
    ``y_(i)`` for the ``i`` with ``W_{i-1} <= z W < W_i``. With integer
    weights this is the sorted sample with each point repeated ``w_i`` times,
    level for level (the unweighted rule is ``y_(floor(z n) + 1)``); a point of
    weight 0 is never returned.

    Args:
      y_sorted: ``[..., n]`` sorted data of each slice.
      weights_sorted: ``[..., n]`` their weights, >= 0, permuted along with them.
      z: ``[..., M]`` levels in ``(0, 1)``.

    Returns:
      ``[..., M]`` data quantiles.
    """
    n, m = y_sorted.shape[-1], z.shape[-1]
    batch = jnp.broadcast_shapes(y_sorted.shape[:-1], jnp.shape(weights_sorted)[:-1], z.shape[:-1])
    y = jnp.broadcast_to(y_sorted, (*batch, n)).reshape(-1, n)
    cum = jnp.broadcast_to(jnp.cumsum(weights_sorted, axis=-1), (*batch, n)).reshape(-1, n)
    target = jnp.broadcast_to(z, (*batch, m)).reshape(-1, m) * cum[:, -1:]
    idx = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(cum, target)
    out = jnp.take_along_axis(y, jnp.clip(idx, 0, n - 1), axis=-1)
    return out.reshape(*batch, m)


def transport_cost(
    y_sorted,
    log_weights,
    means,
    scales,
    levels,
    *,
    p: float = 2.0,
    quantile_iters: int = QUANTILE_ITERS,
    weights=None,
    sort: str = "auto",
):
    """Estimate of ``W_p^p`` between 1D mixtures and empirical distributions.

    ``int_0^1 |Q_gmm(z) - Q_data(z)|^p dz`` evaluated at the given levels:
    midpoint levels (all ``n`` data levels) give the midpoint rule on the
    mixture side; stratified random levels give an unbiased estimate of the
    exact integral.

    With ``weights``, the data side is the weighted empirical quantile function
    (:func:`weighted_data_quantile`: a jump of ``w_(i) / W`` at each sorted
    value). Given levels, integer weights then cost exactly what the data
    with each point repeated ``w_i`` times costs. ``levels=None`` takes the data
    levels (:func:`weighted_levels`): one level at the centre of each point's
    interval ``(W_{i-1}, W_i] / W``, its cost weighted by the interval's width,
    the midpoint rule on intervals of unequal width (see :func:`swgmm_jax.slice_costs`).

    Args:
      y_sorted: ``[..., n]`` sorted data of each slice.
      log_weights: ``[..., K]`` log-weights of each slice's mixture.
      means: ``[..., K]`` component means of each slice.
      scales: ``[..., K]`` component standard deviations of each slice.
      levels: ``(z, 1 - z)``, each ``[..., M]``; ``None`` for the data levels
        (:func:`midpoint_levels` without weights).
      p: the transport exponent, >= 1.
      quantile_iters: quantile solver iterations.
      weights: ``None`` (equal weights) or ``[..., n]`` weights, >= 0 and not
        all 0, of the points of ``y_sorted``, permuted along with them.
      sort: how the quantile solver sorts its tables (see :func:`mixture_quantile`).

    Returns:
      ``[...]`` cost of each slice.

    Examples:
      Data at the midpoint quantiles of ``N(1, 1)`` against the mixture
      ``N(0, 1)``: every quantile is off by 1, so ``W_2^2 = 1``:

      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> z, zc = sw.midpoint_levels(100, jnp.float32)
      >>> y = jax.scipy.special.ndtri(z) + 1.0  # sorted data
      >>> cost = jax.jit(sw.transport_cost)(y, jnp.zeros(1), jnp.zeros(1), jnp.ones(1), (z, zc))
      >>> round(float(cost), 4)
      1.0

      Weight 2 on a point costs what two copies of it cost, at the same levels:

      >>> lev = sw.stratified_levels(jax.random.key(0), (), 8, jnp.float32)
      >>> one = sw.transport_cost(jnp.array([-1.0, 0.5, 0.5]), jnp.zeros(1), jnp.zeros(1), jnp.ones(1), lev)
      >>> two = sw.transport_cost(jnp.array([-1.0, 0.5]), jnp.zeros(1), jnp.zeros(1), jnp.ones(1), lev,
      ...                         weights=jnp.array([1.0, 2.0]))
      >>> bool(one == two)
      True
    """
    check_choice(sort, "sort", SORT_METHODS)
    if weights is not None:
        return _weighted_transport_cost(
            y_sorted,
            weights,
            log_weights,
            means,
            scales,
            levels,
            p=p,
            quantile_iters=quantile_iters,
            sort=sort,
        )
    if levels is None:
        levels = midpoint_levels(y_sorted.shape[-1], jnp.result_type(y_sorted, means))
    z, zc, log_weights, means, scales = _align(*levels, log_weights, means, scales)
    n = y_sorted.shape[-1]
    idx = jnp.clip(jnp.floor(z * n).astype(jnp.int32), 0, n - 1)
    y = jnp.take_along_axis(y_sorted, jnp.broadcast_to(idx, (*y_sorted.shape[:-1], idx.shape[-1])), axis=-1)
    q = _quantile(z, zc, log_weights, means, scales, quantile_iters, sort)
    diff = q - y
    cost = diff * diff if p == 2 else jnp.abs(diff) ** p
    return jnp.mean(cost, axis=-1)


def _weighted_transport_cost(
    y_sorted, w_sorted, log_weights, means, scales, levels, *, p, quantile_iters, sort
):
    w_sorted = jnp.broadcast_to(jnp.asarray(w_sorted, y_sorted.dtype), y_sorted.shape)
    if levels is None:
        z, zc, widths = weighted_levels(w_sorted)
        y = y_sorted
    else:
        z, zc = levels
        y = weighted_data_quantile(y_sorted, w_sorted, z)
        widths = None
    z, zc, log_weights, means, scales = _align(z, zc, log_weights, means, scales)
    q = _quantile(z, zc, log_weights, means, scales, quantile_iters, sort)
    diff = q - y
    cost = diff * diff if p == 2 else jnp.abs(diff) ** p
    if widths is None:
        return jnp.mean(cost, axis=-1)
    return jnp.sum(widths * cost, axis=-1)
