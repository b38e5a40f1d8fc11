"""Sample weights: the SW loss, the fits, EM, initialisation and the estimator, against oracles.

The oracles: the same data with each point repeated ``w_i`` times (integer
weights), the data without its zero-weight points, closed-form 1D transport
integrals, and NumPy float64 weighted statistics.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import swgmm_jax as sw
from swgmm_jax._validation import check_sample_weight

MEANS = np.array([[0.0, 0.0], [4.0, 1.0]])
COVS = np.stack([0.5 * np.eye(2), np.array([[0.8, 0.3], [0.3, 0.4]])])
_DATA, _ = sw.datasets.gaussian_mixture_data(180, MEANS, COVS, weights=[0.6, 0.4], seed=7)
N = 120
# Every data set has N points, so that each program compiles once for all of them:
# DISTINCT (60 points) repeated by their counts (integer weights summing to N) is REPEATED; X is
# DISTINCT followed by 60 other points of weight 0, which must count for nothing (as in OTHER).
DISTINCT = _DATA[:60].astype(np.float64)
_counts = np.random.default_rng(1).multinomial(N, np.full(60, 1 / 60))  # some are 0
COUNTS = np.concatenate([_counts, np.zeros(60, int)])  # zeros included in both halves
REPEATED = np.repeat(DISTINCT, _counts, axis=0)
X = np.concatenate([DISTINCT, _DATA[60:120]])
OTHER = np.concatenate([DISTINCT, _DATA[120:180]])  # the same points of non-zero weight
X32, REP32, OTHER32 = (a.astype(np.float32) for a in (X, REPEATED, OTHER))
PARAMS = sw.from_moments(np.array([0.5, 0.5]), np.array([[0.5, 0.0], [3.5, 1.5]]), np.stack([np.eye(2)] * 2))


@functools.partial(jax.jit, static_argnames=("n_levels", "sort"))
def _loss(x, w, n_levels, sort="xla"):
    """``(SW_2^2, its gradient)`` on fixed directions and levels (one program per static setting)."""

    def f(params):
        return sw.sliced_loss(
            jax.random.key(3), params, x, n_projections=8, n_levels=n_levels, sort=sort, sample_weight=w
        )

    return jax.value_and_grad(f)(PARAMS)


def _assert_same(a, b, rtol=1e-6):
    np.testing.assert_allclose(a[0], b[0], rtol=rtol)
    for name in ("logits", "means", "scale_tril"):
        np.testing.assert_allclose(getattr(a[1], name), getattr(b[1], name), rtol=10 * rtol, atol=1e-6)


def test_integer_weights_equal_repeated_points_and_zero_weights_drop_points():
    """Stratified levels: the same levels pick the same values, so the estimate (and its gradient)
    is the replicated data's."""
    assert REPEATED.shape[0] == N
    w = jnp.asarray(COUNTS, jnp.float32)
    a = _loss(X32, w, 32)
    _assert_same(a, _loss(REP32, None, 32))
    _assert_same(a, _loss(OTHER32, w, 32))  # zero weights: dropped
    _assert_same(a, _loss(X32, 7.3 * w, 32), rtol=1e-5)  # only ratios matter
    _assert_same(a, _loss(X32, w, 32, "host"))  # the host argsort path


def test_all_data_levels_weighted():
    """``n_levels=None``: zero weights drop points exactly, equal weights are the unweighted loss."""
    w = jnp.asarray(COUNTS, jnp.float32)
    a = _loss(X32, w, None)
    _assert_same(a, _loss(OTHER32, w, None))
    _assert_same(a, _loss(X32, 0.37 * w, None), rtol=1e-5)
    ones = jnp.full(N, 2.5, jnp.float32)
    _assert_same(_loss(X32, ones, None), _loss(X32, None, None))
    _assert_same(_loss(X32, ones, 32), _loss(X32, None, 32))


def _exact_w2(y, w):
    """Closed form of ``int_0^1 (Phi^-1(z) - Q_data(z))^2 dz`` for weighted data against N(0, 1).

    On point i's interval (a, b] of levels, with t = Phi^-1: ``int q^2 = [Phi(t) - t phi(t)]``,
    ``int q = [-phi(t)]``.
    """
    order = np.argsort(y)
    y, w = y[order], w[order] / np.sum(w)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    ta, tb = special.ndtri(cum[:-1]), special.ndtri(np.minimum(cum[1:], 1.0))
    phi = stats.norm.pdf

    def second(t):  # an antiderivative of t^2 phi(t), at t = -inf..inf
        return special.ndtr(t) - np.where(np.isfinite(t), t * phi(np.where(np.isfinite(t), t, 0.0)), 0.0)

    sq = second(tb) - second(ta)
    lin = -phi(tb) + phi(ta)
    return float(np.sum(sq - 2.0 * y * lin + y * y * w))


def test_weighted_levels_against_the_exact_integral(x64):
    """All data levels: one width-weighted midpoint per point. Replication puts w_i midpoints in
    the same interval: both are midpoint rules of the exact integral. Stratified levels are unbiased."""
    rng = np.random.default_rng(0)
    y = rng.normal(0.5, 1.2, size=100)
    w = rng.integers(1, 5, size=100).astype(np.float64)
    exact = _exact_w2(y, w)
    order = np.argsort(y)
    rep = np.sort(np.repeat(y, w.astype(int)))

    @jax.jit
    def costs(y, w, rep, keys):
        lw, m, s = jnp.zeros(1), jnp.zeros(1), jnp.ones(1)
        mid = sw.transport_cost(y, lw, m, s, None, weights=w)
        mid_rep = sw.transport_cost(rep, lw, m, s, sw.midpoint_levels(rep.size, rep.dtype))

        def stratified(k):
            return sw.transport_cost(y, lw, m, s, sw.stratified_levels(k, (), 16, y.dtype), weights=w)

        return mid, mid_rep, jax.vmap(stratified)(keys)

    mid, mid_rep, draws = costs(y[order], w[order], rep, jax.random.split(jax.random.key(1), 1000))
    assert abs(mid - exact) < 1e-2 * exact and abs(mid_rep - exact) < 1e-2 * exact
    draws = np.asarray(draws)
    assert abs(draws.mean() - exact) < 4 * draws.std() / np.sqrt(draws.size)


def test_weighted_statistics_against_numpy(x64):
    w = COUNTS.astype(np.float64)
    c, s = sw.standardizer(jnp.asarray(X), jnp.asarray(w))
    mean = np.average(X, axis=0, weights=w)
    np.testing.assert_allclose(c, mean, rtol=1e-12)
    np.testing.assert_allclose(
        s, np.sqrt(np.average(np.mean((X - mean) ** 2, axis=1), weights=w)), rtol=1e-12
    )
    ll = sw.log_likelihood(PARAMS, X, sample_weight=w)
    np.testing.assert_allclose(ll, sw.log_likelihood(PARAMS, REPEATED), rtol=1e-10)


def test_weighted_kmeans_init_equals_repeated_points(x64):
    """Well-separated clusters: both find them; the moments are those of the repeated data."""
    w = COUNTS.astype(np.float64)
    a = sw.initialize(jax.random.key(0), X, 2, sample_weight=w)
    b = sw.initialize(jax.random.key(0), REPEATED, 2)
    wa, ma, ca = (np.asarray(t) for t in sw.to_moments(a))
    wb, mb, cb = (np.asarray(t) for t in sw.to_moments(b))
    oa, ob = np.argsort(ma[:, 0]), np.argsort(mb[:, 0])
    np.testing.assert_allclose(ma[oa], mb[ob], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ca[oa], cb[ob], rtol=1e-8, atol=1e-12)
    # (n_k + 1) / (n + K) with n_k counted by weights of mean 1 (n = 120 points, not the 180 copies)
    nk = np.array(
        [np.sum(w[np.argmin(((X[:, None] - ma[None]) ** 2).sum(-1), axis=1) == j]) for j in range(2)]
    )
    nk = nk * 120 / w.sum()
    np.testing.assert_allclose(wa, (nk + 1) / (120 + 2), rtol=1e-10)
    # random_from_data never starts a mean at a zero-weight point
    means = sw.initialize(jax.random.key(1), X, 2, method="random_from_data", sample_weight=w).means
    zero = X[COUNTS == 0]
    assert not np.any(np.all(np.isclose(np.asarray(means)[:, None], zero[None]), axis=-1))


def _em_config(**kw):
    return sw.EMConfig(max_iter=30, tol=0.0, **kw)


def test_em_step_against_numpy_float64(x64):
    w = COUNTS.astype(np.float64) * 0.7
    moments = tuple(
        np.asarray(t) for t in sw.to_moments(jax.tree.map(lambda a: jnp.asarray(a, float), PARAMS))
    )
    (wk, mk, ck), ll = sw.em_step(jnp.asarray(X), moments, 1e-6, sample_weight=jnp.asarray(w))
    dens = np.stack(
        [moments[0][k] * stats.multivariate_normal(moments[1][k], moments[2][k]).pdf(X) for k in range(2)],
        axis=1,
    )
    resp = dens / dens.sum(axis=1, keepdims=True) * w[:, None]
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, None]
    covs = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] for k in range(2)])
    np.testing.assert_allclose(wk, nk / nk.sum(), rtol=1e-10)
    np.testing.assert_allclose(mk, means, rtol=1e-10)
    np.testing.assert_allclose(ck, covs + 1e-6 * np.eye(2), rtol=1e-9)
    np.testing.assert_allclose(ll, np.sum(w * np.log(dens.sum(axis=1))) / w.sum(), rtol=1e-12)


def test_fit_em_weights_equal_repeated_points(x64):
    init = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), PARAMS)
    a = sw.fit_em(jax.random.key(0), X, 2, _em_config(), init, sample_weight=COUNTS)
    b = sw.fit_em(jax.random.key(0), REPEATED, 2, _em_config(), init)
    c = sw.fit_em(jax.random.key(0), OTHER, 2, _em_config(), init, sample_weight=3.0 * COUNTS)
    for other in (b, c):
        for ta, tb in zip(sw.to_moments(a.params), sw.to_moments(other.params), strict=True):
            np.testing.assert_allclose(ta, tb, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(a.loss_history, other.loss_history, rtol=1e-9)
    polished = sw.polish_em(init, X, 5, sample_weight=COUNTS)
    np.testing.assert_allclose(polished.means, sw.polish_em(init, REPEATED, 5).means, rtol=1e-8)


def test_sw_fit_weights_equal_repeated_points():
    """Same init, keys and levels: the weighted steps are the replicated data's, to float rounding."""
    cfg = sw.FitConfig(n_steps=20, n_projections=8, n_levels=16)
    a = sw.fit(jax.random.key(0), X32, 2, cfg, PARAMS, sample_weight=COUNTS)
    b = sw.fit(jax.random.key(0), REP32, 2, cfg, PARAMS)
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=2e-4)
    for ta, tb in zip(sw.to_moments(a.params), sw.to_moments(b.params), strict=True):
        np.testing.assert_allclose(ta, tb, rtol=2e-4, atol=2e-5)


@pytest.mark.slow
def test_estimator_em_weights_equal_repeated_rows():
    a = sw.GaussianMixture(2, method="em", random_state=0, tol=1e-6).fit(X32, sample_weight=COUNTS)
    b = sw.GaussianMixture(2, method="em", random_state=0, tol=1e-6).fit(REP32)
    oa, ob = np.argsort(a.means_[:, 0]), np.argsort(b.means_[:, 0])
    np.testing.assert_allclose(a.means_[oa], b.means_[ob], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.weights_[oa], b.weights_[ob], rtol=1e-4)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-4)


BAD_WEIGHTS = [
    (np.ones(119), ValueError, r"sample_weight must have shape \[120\]"),
    (np.ones((120, 1)), ValueError, r"sample_weight must have shape"),
    (-np.ones(120), ValueError, "sample_weight must be >= 0"),
    (np.where(np.arange(120) == 3, np.nan, 1.0), ValueError, "sample_weight contains non-finite"),
    (np.where(np.arange(120) == 3, np.inf, 1.0), ValueError, "sample_weight contains non-finite"),
    (np.zeros(120), ValueError, "sample_weight must not all be zero"),
    (np.full(120, 3e38), ValueError, "sample_weight sums to more than"),
    (np.ones(120, complex), TypeError, "sample_weight must hold real numbers"),
    (np.array(["a"] * 120), TypeError, "sample_weight must hold real numbers"),
]


@pytest.mark.parametrize(("w", "error", "match"), BAD_WEIGHTS)
def test_bad_sample_weight_raises(w, error, match):
    key = jax.random.key(0)
    calls = [
        lambda: sw.sliced_wasserstein(key, PARAMS, X32, sample_weight=w),
        lambda: sw.fit(key, X32, 2, sw.FitConfig(n_steps=5), sample_weight=w),
        lambda: sw.fit_restarts(key, X32, 2, 2, sw.FitConfig(n_steps=5), sample_weight=w),
        lambda: sw.fit_em(key, X32, 2, sample_weight=w),
        lambda: sw.fit_em_restarts(key, X32, 2, 2, sample_weight=w),
        lambda: sw.polish_em(PARAMS, X32, 2, sample_weight=w),
        lambda: sw.initialize(key, X32, 2, sample_weight=w),
        lambda: sw.log_likelihood(PARAMS, X32, sample_weight=w),
        lambda: sw.fit_robust(key, X32, 2, sample_weight=w),
        lambda: sw.GaussianMixture(2).fit(X32, sample_weight=w),
    ]
    for call in calls:
        with pytest.raises(error, match=match):
            call()


def test_traced_weights_skip_value_checks():
    """Under jit the shape is checked, the values (unknown) are not."""
    f = jax.jit(lambda w: check_sample_weight(w, N, dtype=np.float32).sum())
    assert float(f(-jnp.ones(N))) == -N  # would raise on a concrete array
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        f(jnp.ones(N + 1))


def test_host_minibatches_draw_rows_in_proportion_to_weights():
    x = np.arange(8.0).reshape(8, 1)
    w = np.array([0.0, 1.0, 2.0, 0.0, 4.0, 1.0, 0.0, 0.0])
    batches = itertools.islice(sw.host_minibatches(0, x, 400, w), 200)
    rows = np.concatenate([b[:, 0] for b in batches]).astype(int)
    freq = np.bincount(rows, minlength=8) / rows.size
    assert np.all(freq[w == 0] == 0)
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.008)  # 80,000 draws: sd <= 0.0018
    with pytest.raises(ValueError, match="sample_weight applies to array data only"):
        sw.fit_stream(jax.random.key(0), iter([X32] * 5), 2, sw.FitConfig(n_steps=5), sample_weight=COUNTS)
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        sw.fit_stream(
            jax.random.key(0), X32, 2, sw.FitConfig(n_steps=5, batch_size=8), sample_weight=-np.ones(N)
        )
