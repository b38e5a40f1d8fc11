"""1D mixture CDF / SF / quantile and quantile transport, against scipy oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import integrate, special, stats

import swgmm_jax as sw
from _oracles import cdf_oracle, pdf_oracle, quantile_oracle, sf_oracle

# (weights, means, scales): one component, overlapping, well separated with
# gaps, tiny outer weights, and very different scales with a large gap.
MIXTURES = {
    "single": ([1.0], [0.3], [2.0]),
    "overlap": ([0.2, 0.5, 0.3], [-3.0, 0.0, 4.0], [0.5, 2.0, 1.0]),
    "gap": ([0.3, 0.7], [-50.0, 50.0], [1.0, 1.0]),
    "light_tails": ([0.01, 0.98, 0.01], [-100.0, 0.0, 100.0], [1.0, 0.1, 3.0]),
    "wide_gap": ([0.25, 0.25, 0.5], [-20.0, 0.0, 1000.0], [1e-3, 5.0, 20.0]),
}

_TAIL = np.logspace(-12, np.log10(0.5), 37)
LEVELS = np.unique(np.concatenate([_TAIL, 1.0 - _TAIL, np.linspace(0.01, 0.99, 50)]))


def _np(mix):
    return tuple(np.asarray(a, np.float64) for a in mix)


def _levels_for(w):
    """LEVELS plus levels just beside the cumulative weights (quantiles at a gap's edges).

    Levels *equal* to a cumulative weight are excluded from value tests: in a gap
    F is flat to double precision and the quantile is not determined.
    """
    cw = np.cumsum(w)[:-1]
    z = np.concatenate([LEVELS, cw - 1e-5, cw + 1e-5, cw - 1e-9, cw + 1e-9])
    if len(cw):
        z = z[np.all(np.abs(z[:, None] - cw[None]) > 1e-10, axis=1)]
    return np.sort(z)


_quantile = jax.jit(sw.mixture_quantile, static_argnames="quantile_iters")
_cdf = jax.jit(sw.mixture_cdf)
_sf = jax.jit(sw.mixture_sf)
_logpdf = jax.jit(sw.mixture_logpdf)


# ---------------------------------------------------------------- CDF, SF, log-pdf
def _eval_points(w, m, s):
    z = _levels_for(w)
    t = np.array([quantile_oracle(zi, w, m, s) for zi in z])
    return np.concatenate([t, np.linspace(m.min() - 30 * s.max(), m.max() + 30 * s.max(), 101)])


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_cdf_sf_float64(name):
    w, m, s = _np(MIXTURES[name])
    t = _eval_points(w, m, s)
    args = (jnp.asarray(t), jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s))
    cdf, sf = (np.asarray(f(*args)) for f in (_cdf, _sf))
    assert cdf.dtype == sf.dtype == np.float64
    cdf_o, sf_o = cdf_oracle(t, w, m, s), sf_oracle(t, w, m, s)
    # The required range: tail masses down to 1e-13. (Much further out, at
    # ~1e-150, jax's log_ndtr asymptotic series is only good to ~1e-9.)
    keep = cdf_o > 1e-13
    np.testing.assert_allclose(cdf[keep], cdf_o[keep], rtol=1e-10)
    keep = sf_o > 1e-13
    np.testing.assert_allclose(sf[keep], sf_o[keep], rtol=1e-10)


@pytest.mark.usefixtures("x64")
def test_logpdf_float64():
    # Guards a fixed bug: _LOG_SQRT_2PI created with jnp at import was float32
    # when x64 was enabled later (1.6e-8 relative error in float64).
    rtol = 1e-10
    for name in sorted(MIXTURES):
        w, m, s = _np(MIXTURES[name])
        t = _eval_points(w, m, s)
        logpdf = np.asarray(_logpdf(jnp.asarray(t), jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s)))
        assert logpdf.dtype == np.float64
        logpdf_o = special.logsumexp(np.log(w) + stats.norm.logpdf(t[:, None], m, s), axis=1)
        np.testing.assert_allclose(logpdf, logpdf_o, rtol=rtol, atol=rtol, err_msg=name)


# ---------------------------------------------------------------- quantiles
@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_quantile_float64_vs_brentq(name):
    w, m, s = _np(MIXTURES[name])
    z = _levels_for(w)
    assert z.min() <= 1e-12 and z.max() >= 1 - 1e-12
    # 24 iterations: converged to float64 rounding (experiments/quantile_iters.py: 8 suffice); the
    # default QUANTILE_ITERS is chosen for float32.
    q = np.asarray(
        _quantile(jnp.asarray(z), jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s), quantile_iters=24)
    )
    assert q.dtype == np.float64
    q_o = np.array([quantile_oracle(zi, w, m, s) for zi in z])
    # Relative 1e-10 (relative to |q|, or to the smallest scale where q ~ 0),
    # plus the error that rounding the level itself implies (eps * min(z, 1-z) / f(q)):
    # significant only right beside a gap, where f(q) is tiny.
    cond = 16 * np.finfo(float).eps * np.minimum(z, 1 - z) / pdf_oracle(q_o, w, m, s)
    tol = 1e-10 * np.maximum(np.abs(q_o), s.min()) + cond
    err = np.abs(q - q_o)
    assert np.all(err <= tol), (z[np.argmax(err / tol)], np.max(err / tol))
    # And F(Q(z)) = z in the lower half, S(Q(z)) = 1 - z in the upper half.
    lower = z <= 0.5
    np.testing.assert_allclose(cdf_oracle(q[lower], w, m, s), z[lower], rtol=1e-10)
    np.testing.assert_allclose(sf_oracle(q[~lower], w, m, s), 1 - z[~lower], rtol=1e-10)


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_quantile_float32(name):
    w, m, s = _np(MIXTURES[name])
    cw = np.cumsum(w)[:-1]
    z = LEVELS[(LEVELS >= 1e-3) & (LEVELS <= 1 - 1e-3)].astype(np.float32)
    if len(cw):  # away from the flat gaps, where float32 cannot resolve the quantile
        z = z[np.all(np.abs(z[:, None] - cw[None]) > 1e-3, axis=1)]
    args = (
        jnp.asarray(z),
        jnp.log(jnp.asarray(w, jnp.float32)),
        jnp.asarray(m, jnp.float32),
        jnp.asarray(s, jnp.float32),
    )
    q = np.asarray(_quantile(*args))
    assert q.dtype == np.float32
    q_o = np.array([quantile_oracle(float(zi), w, m, s) for zi in z])
    np.testing.assert_array_less(np.abs(q - q_o), 1e-5 * np.maximum(np.abs(q_o), s.min()))
    # CDF/SF in float32 at the oracle quantiles.
    t = jnp.asarray(q_o, jnp.float32)
    lower = z <= 0.5
    np.testing.assert_allclose(
        np.asarray(_cdf(t, *args[1:]))[lower],
        cdf_oracle(np.asarray(t, np.float64), w, m, s)[lower],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        np.asarray(_sf(t, *args[1:]))[~lower],
        sf_oracle(np.asarray(t, np.float64), w, m, s)[~lower],
        rtol=1e-5,
    )


@pytest.mark.usefixtures("x64")
def test_quantile_broadcasts_over_slices():
    rng = np.random.default_rng(0)
    n_slices, k, n_lev = 5, 3, 7
    lw = np.log(rng.dirichlet(np.ones(k), size=n_slices))
    m = rng.normal(scale=3, size=(n_slices, k))
    s = rng.uniform(0.2, 2.0, size=(n_slices, k))
    z = np.sort(rng.uniform(size=(n_slices, n_lev)), axis=-1)
    q = np.asarray(_quantile(jnp.asarray(z), jnp.asarray(lw), jnp.asarray(m), jnp.asarray(s)))
    assert q.shape == (n_slices, n_lev)
    for i in range(n_slices):
        q_o = [quantile_oracle(zi, np.exp(lw[i]), m[i], s[i]) for zi in z[i]]
        np.testing.assert_allclose(q[i], q_o, rtol=1e-10, atol=1e-10)
    # Unnormalised log-weights: softmax is applied internally.
    q_shift = _quantile(jnp.asarray(z), jnp.asarray(lw + 3.7), jnp.asarray(m), jnp.asarray(s))
    np.testing.assert_allclose(q_shift, q, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_quantile_same_with_host_and_xla_table_sort(dtype):
    """The Newton-start table is sorted by NumPy (the CPU default) or by XLA: the same quantiles,
    to the bit, in both precisions, also under vmap; an unknown method is rejected by name."""
    rng = np.random.default_rng(1)
    lw = np.log(rng.dirichlet(np.ones(4), size=6))
    m, s = rng.normal(scale=3, size=(6, 4)), rng.uniform(0.1, 2.0, size=(6, 4))
    z = np.sort(rng.uniform(size=(6, 9)), axis=-1)
    with jax.enable_x64(dtype == jnp.float64):
        args = [jnp.asarray(a, dtype) for a in (z, lw, m, s)]
        q = {
            sort: jax.jit(jax.vmap(lambda *a, sort=sort: sw.mixture_quantile(*a, sort=sort)))(*args)
            for sort in ("host", "xla", "auto")
        }
        assert q["host"].dtype == dtype
        np.testing.assert_array_equal(q["host"], q["xla"])
        np.testing.assert_array_equal(q["auto"], q["xla"])
        with pytest.raises(ValueError, match="sort"):
            sw.mixture_quantile(*args, sort="numpy")


# ---------------------------------------------------------------- derivatives
@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", ["single", "overlap", "light_tails"])
def test_quantile_check_grads(name):
    w, m, s = _np(MIXTURES[name])
    z = jnp.array([0.02, 0.2, 0.5, 0.77, 0.98])
    f = jax.jit(lambda z, lw, m, s: sw.mixture_quantile(z, lw, m, s, quantile_iters=32))
    # eps=1e-6: the default 1e-4 leaves a finite-difference (curvature) error of
    # ~1e-4 near the tails, not a gradient error.
    check_grads(
        f,
        (z, jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s)),
        order=1,
        modes=("fwd", "rev"),
        eps=1e-6,
    )


_dqdz = jax.jit(
    jax.vmap(jax.grad(lambda zi, *a: sw.mixture_quantile(zi[None], *a)[0]), (0, None, None, None))
)


@pytest.mark.usefixtures("x64")
def test_quantile_level_derivative_is_inverse_density():
    """dQ/dz = 1 / f(Q(z)) (scipy density at the brentq quantile), down to 1e-12 tails."""
    for name in sorted(MIXTURES):
        w, m, s = _np(MIXTURES[name])
        cw = np.cumsum(w)[:-1]
        z = np.array([1e-12, 1e-6, 0.1, 0.6, 1 - 1e-6, 1 - 1e-12])
        if len(cw):
            z = z[np.all(np.abs(z[:, None] - cw[None]) > 1e-3, axis=1)]
        args = (jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s))
        g = _dqdz(jnp.asarray(z), *args)
        q_o = np.array([quantile_oracle(zi, w, m, s) for zi in z])
        np.testing.assert_allclose(g, 1.0 / pdf_oracle(q_o, w, m, s), rtol=1e-10, err_msg=name)


@pytest.mark.usefixtures("x64")
def test_quantile_gradient_finite_in_gap():
    """A level equal to the first weight puts the quantile in the gap between
    components at -50 and +50 (f(q) underflows): the parameter gradients stay finite."""
    lw = jnp.log(jnp.array([0.3, 0.7]))
    m = jnp.array([-50.0, 50.0])
    s = jnp.ones(2)
    z = jnp.array([0.3, 0.3 - 1e-9, 0.3 + 1e-9, 0.1, 0.9])

    q = sw.mixture_quantile(z, lw, m, s)
    assert np.all(np.isfinite(q)) and -50 < q[0] < 50
    quantile = lambda lw, m, s: sw.mixture_quantile(z, lw, m, s)  # noqa: E731
    for jac in (jax.jacfwd, jax.jacrev):
        jacs = jax.jit(jac(quantile, argnums=(0, 1, 2)))(lw, m, s)
        for g in jacs:
            assert np.all(np.isfinite(g)), (jac, jacs)
        # The mean part of the derivative is the responsibility: dq/dm_k = r_k(q) in [0, 1].
        jac_m = jacs[1]
        assert np.all((jac_m >= 0) & (jac_m <= 1))
        np.testing.assert_allclose(jnp.sum(jac_m, axis=1), 1.0, rtol=1e-12)
    # Also in float32.
    with jax.enable_x64(False):
        lw32, m32, s32 = (a.astype(jnp.float32) for a in (lw, m, s))
        g32 = jax.jit(
            jax.grad(
                lambda lw, m, s: jnp.sum(sw.mixture_quantile(z.astype(jnp.float32), lw, m, s)),
                argnums=(0, 1, 2),
            )
        )(lw32, m32, s32)
        assert all(np.all(np.isfinite(g)) for g in g32)


# ---------------------------------------------------------------- levels
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_levels(dtype, key):
    with jax.enable_x64(dtype == jnp.float64):
        n = 1000
        z, zc = sw.midpoint_levels(n, dtype)
        assert z.dtype == dtype
        np.testing.assert_allclose(z, (np.arange(n) + 0.5) / n, rtol=1e-6)
        np.testing.assert_allclose(zc, (n - np.arange(n) - 0.5) / n, rtol=1e-6)
        batch, m = (3, 4), 512
        z, zc = sw.stratified_levels(key, batch, m, dtype)
        assert z.shape == zc.shape == (*batch, m) and z.dtype == dtype
        z64, zc64 = np.asarray(z, np.float64), np.asarray(zc, np.float64)
        j = np.arange(m)
        # One level in each stratum (j/M, (j+1)/M], and its complement.
        assert np.all((z64 > j / m - 1e-7) & (z64 <= (j + 1) / m + 1e-7))
        np.testing.assert_allclose(z64 + zc64, 1.0, rtol=4 * np.finfo(dtype).eps)
        assert np.all(zc64 > 0) and np.all(z64 > 0)
        # Within-stratum positions are uniform: mean 1/2, variance 1/12.
        u = (z64 * m - j).ravel()
        assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
        assert abs(u.var() - 1 / 12) < 0.01
        # Different keys give different levels.
        z2, _ = sw.stratified_levels(jax.random.key(1), batch, m, dtype)
        assert not np.allclose(z, z2)


def test_stratified_levels_keep_upper_tail_in_float32(key):
    z, zc = sw.stratified_levels(key, (), 10**6, jnp.float32)
    # The last stratum's complement is < 1e-6 and computed directly, not as 1 - z.
    assert 0 < float(zc[-1]) <= 1e-6
    np.testing.assert_allclose(float(zc[-1]), 1.0 - float(np.float64(z[-1])), atol=1e-7)


# ---------------------------------------------------------------- transport cost
def _wpp_oracle(y, w, m, s, p):
    """Exact int_0^1 |Q(z) - y_(ceil(zn))|^p dz for a mixture and n sorted points.

    Substituting z = F(t) on each piece ((i-1)/n, i/n] gives
    int_{Q((i-1)/n)}^{Q(i/n)} |t - y_i|^p f(t) dt: only n - 1 brentq quantiles,
    and scipy quad on the density.
    """
    n = len(y)
    edges = [-np.inf] + [quantile_oracle(i / n, w, m, s) for i in range(1, n)] + [np.inf]
    total = 0.0
    for i in range(n):
        a, b = edges[i], edges[i + 1]
        f = lambda t, yi=y[i]: abs(t - yi) ** p * pdf_oracle(t, w, m, s)  # noqa: E731
        pts = [yi for yi in [y[i]] + list(m) if a < yi < b] if np.isfinite(a) and np.isfinite(b) else None
        val, _ = integrate.quad(f, a, b, points=pts or None, limit=200, epsabs=1e-13, epsrel=1e-11)
        total += val
    return total


def _w1_cdf_oracle(y, w, m, s):
    """W1 = int |F(t) - F_n(t)| dt (the CDF form, independent of quantiles)."""
    y = np.sort(y)
    n = len(y)
    lo, hi = np.min(m - 40 * s), np.max(m + 40 * s)
    knots = np.concatenate([[lo], y, [hi]])
    total = 0.0
    for i in range(n + 1):
        fn = i / n
        val, _ = integrate.quad(
            lambda t: abs(cdf_oracle(t, w, m, s) - fn),
            knots[i],
            knots[i + 1],
            limit=200,
            epsabs=1e-13,
            epsrel=1e-11,
        )
        total += val
    return total


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_transport_cost_vs_quadrature(p, key):
    rng = np.random.default_rng(int(p * 10))
    w, m, s = _np(MIXTURES["overlap"])
    y = np.sort(rng.normal(scale=2.5, size=40) + 0.5)
    mix = (jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s))
    exact = _wpp_oracle(y, w, m, s, p)
    if p == 1.0:
        np.testing.assert_allclose(_w1_cdf_oracle(y, w, m, s), exact, rtol=1e-8)
    cost = jax.jit(sw.transport_cost, static_argnames=("p", "quantile_iters"))
    # A fine midpoint rule on the mixture side converges to the exact integral.
    est = cost(jnp.asarray(y), *mix, sw.midpoint_levels(2**18, jnp.float64), p=p, quantile_iters=24)
    np.testing.assert_allclose(est, exact, rtol=1e-4)
    # Stratified random levels: unbiased; 64 independent 4,096-level draws.
    draws = jax.jit(
        jax.vmap(lambda k: cost(jnp.asarray(y), *mix, sw.stratified_levels(k, (), 4096, jnp.float64), p=p))
    )(jax.random.split(key, 64))
    draws = np.asarray(draws)
    assert abs(draws.mean() - exact) < 5 * draws.std() / 8 + 1e-6 * exact


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_transport_cost_midpoint_levels_vs_scipy(p):
    """With the n data midpoint levels the cost is the W_p^p between the sample and
    the n mixture quantiles Q((i - 1/2)/n); for p = 1 that is scipy's W1."""
    rng = np.random.default_rng(5)
    w, m, s = _np(MIXTURES["gap"])
    n = 60
    y = np.sort(np.concatenate([rng.normal(-48, 2, 20), rng.normal(47, 3, 40)]))
    z, _ = sw.midpoint_levels(n, jnp.float64)
    q_o = np.array([quantile_oracle(zi, w, m, s) for zi in np.asarray(z)])
    got = sw.transport_cost(
        jnp.asarray(y),
        jnp.log(jnp.asarray(w)),
        jnp.asarray(m),
        jnp.asarray(s),
        sw.midpoint_levels(n, jnp.float64),
        p=p,
    )
    expected = np.mean(np.abs(q_o - y) ** p)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    if p == 1.0:
        np.testing.assert_allclose(got, stats.wasserstein_distance(y, q_o), rtol=1e-10)
