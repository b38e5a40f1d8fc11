"""The SW fit loop: determinism, restarts, no retrace, validity, equivariance, e2e recovery."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import swgmm_jax as sw
from _helpers import count_compilations
from swgmm_jax._fit import _to_log_cholesky

TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
TRUE_COVS = np.stack([0.5 * np.eye(2), np.diag([0.8, 0.3]), 0.6 * np.eye(2)])
X, _ = sw.datasets.gaussian_mixture_data(400, TRUE_MEANS, TRUE_COVS, seed=0)  # float32 [400, 2]
K = 3
# Small and cheap: every test below with this config and X's shape shares one compilation.
CFG = sw.FitConfig(n_steps=30)
# Equalities between programs (vmapped or not) hold to float rounding, which 30 steps amplify: from
# an init computed by gathers alone (random_from_data), the runs start bit-identical.
CFG_EXACT_INIT = CFG.replace(init="random_from_data")


def _check_valid(params, floor):
    """Finite, weights on the simplex, covariances symmetric with eigenvalues >= floor
    (up to the rounding of L L^T + floor I in the parameters' dtype)."""
    eps = np.finfo(params.means.dtype).eps
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    for a in (w, m, c, np.asarray(params.reg_covar)):
        assert np.all(np.isfinite(a))
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=10 * eps)
    np.testing.assert_allclose(c, np.swapaxes(c, -1, -2), rtol=0, atol=10 * eps * np.abs(c).max())
    lam = np.linalg.eigvalsh(c)
    tol = 10 * eps * np.abs(lam).max(axis=-1, keepdims=True)
    assert np.all(lam >= np.asarray(floor)[..., None, None] * (1 - 1e-5) - tol), (lam.min(), floor)


def _standardise(x):
    x = np.asarray(x, np.float64)
    c = x.mean(0)
    return c, np.sqrt(np.mean((x - c) ** 2))


@pytest.fixture(scope="module")
def fitted():
    return sw.fit(jax.random.key(0), X, K, CFG)


def test_fit_is_deterministic_given_key(fitted):
    again = sw.fit(jax.random.key(0), X, K, CFG)
    jax.tree.map(np.testing.assert_array_equal, again, fitted)
    other = sw.fit(jax.random.key(1), X, K, CFG)
    assert not np.allclose(other.params.means, fitted.params.means)
    assert fitted.loss_history.shape == (CFG.n_steps,)
    assert fitted.params.means.dtype == jnp.float32 and fitted.loss_history.dtype == jnp.float32


def test_fit_params_valid_and_loss_decreases(fitted):
    params = fitted.params
    # The floor is config.reg_covar in standardised units: s^2 reg_covar in the data's.
    _, s = _standardise(X)
    np.testing.assert_allclose(params.reg_covar, s**2 * CFG.reg_covar, rtol=1e-4)
    _check_valid(params, params.reg_covar)
    loss = np.asarray(fitted.loss_history)
    assert np.all(np.isfinite(loss))
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()


@pytest.mark.parametrize("share", [True, False])
def test_fit_restarts_equal_single_fits(share):
    """Restart r is fit(keys[r]) with restart 0's steps' key (shared directions) or its own."""
    key = jax.random.key(42)
    n_restarts = 3
    batched = sw.fit_restarts(key, X, K, n_restarts, CFG_EXACT_INIT, share_directions=share)
    assert batched.params.means.shape == (n_restarts, K, 2)
    assert batched.loss_history.shape == (n_restarts, CFG.n_steps)
    keys = jax.random.split(key, n_restarts)
    shared = jax.random.split(keys[0])[1]
    for r, k in enumerate(keys):
        single = sw.fit(k, X, K, CFG_EXACT_INIT, steps_key=shared if share else None)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[r], b, rtol=2e-4, atol=2e-5), batched, single)
    # Restarts differ from each other.
    assert not np.allclose(batched.params.means[0], batched.params.means[1])


def test_steps_key_replaces_only_the_steps_key():
    """fit(key, steps_key=split(key)[1]) is fit(key); another steps' key keeps the initialisation."""
    key = jax.random.key(5)
    cfg = CFG_EXACT_INIT  # the programs of the test above
    ref = sw.fit(key, X, K, cfg)
    same = sw.fit(key, X, K, cfg, steps_key=jax.random.split(key)[1])
    jax.tree.map(np.testing.assert_array_equal, ref, same)
    other = sw.fit(key, X, K, cfg, steps_key=jax.random.key(6))
    assert not np.allclose(other.loss_history, ref.loss_history)
    with pytest.raises(TypeError, match="steps_key"):
        sw.fit(key, X, K, cfg, steps_key=3)
    with pytest.raises(TypeError, match="share_directions"):
        sw.fit_restarts(key, X, K, 2, cfg, share_directions="yes")


def test_no_retrace_when_only_data_values_change():
    """New data values (same shape and dtype), new keys or an equal config: no new
    compilation and no new entry in the fit's jit caches. (Traces are not counted:
    the host sort currently costs one spurious trace per step, see
    test_sliced.py::test_host_sort_does_not_trace.)"""
    rng = np.random.default_rng(0)
    x2 = (X + rng.normal(scale=0.1, size=X.shape)).astype(np.float32)
    x3 = (2.0 * X - 1.0).astype(np.float32)
    sw.fit(jax.random.key(0), X, K, CFG)  # warm (compiled by other tests, or now)
    sw.fit_restarts(jax.random.key(0), X, K, 3, CFG)
    sizes = (sw._fit._fit_jit._cache_size(), sw._fit._fit_restarts_jit._cache_size())
    with count_compilations() as events:
        a = sw.fit(jax.random.key(3), x2, K, CFG)
        b = sw.fit(
            jax.random.key(4), jnp.asarray(x3), K, sw.FitConfig(n_steps=30)
        )  # equal config, new object
        c = sw.fit_restarts(jax.random.key(5), x3, K, 3, CFG)  # R = 3 as in the test above
        jax.block_until_ready((a, b, c))
    assert events == [], f"{len(events)} compilations on new data values"
    assert (sw._fit._fit_jit._cache_size(), sw._fit._fit_restarts_jit._cache_size()) == sizes
    # Sanity: the counter does see a new shape.
    with count_compilations() as events:
        sw.fit(jax.random.key(3), x2[:-1], K, CFG)
    assert len(events) > 0


def test_far_outlier_does_not_set_the_covariance_floor():
    """Issue 13, item 4: with one point at 1e6 beside two clusters of sd 0.3, the
    floor (relative to the data's scale) once held every component at sd 58; the
    scale is now capped by the interquartile spread, so the inlier components fit
    the clusters' size and the far point gets its own component."""
    rng = np.random.default_rng(0)
    # 200 + 199 + 1 points: X's shape, so this fit reuses the compiled program of the tests above.
    inliers = np.concatenate([rng.normal([0, 0], 0.3, (200, 2)), rng.normal([3, 0], 0.3, (199, 2))])
    x = np.concatenate([inliers, [[1e6, 1e6]]]).astype(np.float32)
    assert x.shape == X.shape
    params = sw.fit(jax.random.key(1), x, K, CFG).params
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    _check_valid(params, params.reg_covar)
    far = np.argmax(m[:, 0])
    np.testing.assert_allclose(m[far], [1e6, 1e6], rtol=1e-5)
    inlier_sd = np.sqrt(np.linalg.eigvalsh(np.delete(c, far, axis=0)))
    assert np.all(inlier_sd < 1.0), inlier_sd  # was 57.5 in every direction
    assert np.all(inlier_sd > 0.03), inlier_sd  # not collapsed either


def test_offset_and_scale_equivariance(fitted):
    """Data at offset 1e6, or at scale 1e-6 (float32), fit as the unit data do:
    the fit standardises internally."""
    key = jax.random.key(0)
    # float32 cannot hold X + 1e6 exactly (spacing 1/16 there): compare with the
    # fit of the data as actually stored, X_q = float32(X + 1e6) - 1e6 (exact).
    x_off = (X.astype(np.float64) + 1e6).astype(np.float32)
    x_q = (x_off.astype(np.float64) - 1e6).astype(np.float32)
    ref = sw.fit(key, x_q, K, CFG).params
    off = sw.fit(key, x_off, K, CFG).params
    w_r, m_r, c_r = (np.asarray(a, np.float64) for a in sw.to_moments(ref))
    w_o, m_o, c_o = (np.asarray(a, np.float64) for a in sw.to_moments(off))
    np.testing.assert_allclose(w_o, w_r, atol=1e-3)
    # Means come back at 1e6, where float32's spacing is 1/16.
    np.testing.assert_allclose(m_o - 1e6, m_r, atol=0.07)
    np.testing.assert_allclose(c_o, c_r, rtol=2e-3, atol=1e-4)

    # Scale 1e-6: everything scales exactly.
    small = sw.fit(key, (X * np.float32(1e-6)), K, CFG).params
    w_u, m_u, c_u = (np.asarray(a, np.float64) for a in sw.to_moments(fitted.params))
    w_s, m_s, c_s = (np.asarray(a, np.float64) for a in sw.to_moments(small))
    _check_valid(small, small.reg_covar)
    np.testing.assert_allclose(w_s, w_u, atol=1e-4)
    np.testing.assert_allclose(m_s * 1e6, m_u, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(c_s * 1e12, c_u, rtol=1e-3, atol=1e-5)

    # Log-likelihood of the standardised data under each fit, in float64 (scipy).
    def std_loglik(w, m, c, x):
        centre, scale = _standardise(x)
        xs = (np.asarray(x, np.float64) - centre) / scale
        comp = [
            np.log(wk) + multivariate_normal((mk - centre) / scale, ck / scale**2).logpdf(xs)
            for wk, mk, ck in zip(w, m, c, strict=False)
        ]
        return np.mean(logsumexp(np.stack(comp, 1), axis=1))

    ll_u = std_loglik(w_u, m_u, c_u, X)
    np.testing.assert_allclose(std_loglik(w_s, m_s, c_s, X * np.float32(1e-6)), ll_u, rtol=1e-4)
    np.testing.assert_allclose(std_loglik(w_o, m_o, c_o, x_off), std_loglik(w_r, m_r, c_r, x_q), rtol=1e-2)


@pytest.mark.usefixtures("x64")
def test_fit_float64():
    x64 = X.astype(np.float64)
    res = sw.fit(jax.random.key(0), x64, K, CFG)
    assert res.params.means.dtype == jnp.float64
    assert res.params.scale_tril.dtype == jnp.float64
    assert res.loss_history.dtype == jnp.float64
    _check_valid(res.params, res.params.reg_covar)
    loss = np.asarray(res.loss_history)
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()


def test_fit_with_init_and_fixed_weights():
    """init= starts from given parameters; learn_weights=False keeps their weights."""
    weights = np.array([0.3, 0.33, 0.37])  # X has equal weights: close, not equal
    init = sw.from_moments(weights, TRUE_MEANS + 0.5, TRUE_COVS)
    cfg = sw.FitConfig(n_steps=30, learn_weights=False)
    res = sw.fit(jax.random.key(0), X, K, cfg, init=init)
    np.testing.assert_allclose(res.params.weights, weights, rtol=1e-5)
    _check_valid(res.params, res.params.reg_covar)
    # Started next to the truth: ends next to it.
    np.testing.assert_allclose(res.params.means, TRUE_MEANS, atol=0.3)


def test_degenerate_data_fit_without_nan(degenerate_x):
    name, x = degenerate_x
    res = sw.fit(jax.random.key(0), x, 3, sw.FitConfig(n_steps=50))
    assert np.all(np.isfinite(np.asarray(res.loss_history))), name
    _check_valid(res.params, res.params.reg_covar)
    assert float(res.params.reg_covar) > 0


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
def test_recovers_separated_3d_mixture_from_random_init():
    """20 restarts from random init (the paper's) with the default FitConfig otherwise: >= 90% recover a
    well-separated 3-component GMM in 3D (each true mean matched within 0.3 x
    separation, Hungarian matching)."""
    means = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    separation = 6.0
    covs = np.stack([0.5 * np.eye(3), np.diag([1.0, 0.3, 0.5]), 0.8 * np.eye(3)])
    x, _ = sw.datasets.gaussian_mixture_data(1000, means, covs, weights=[0.3, 0.3, 0.4], seed=1)
    n_restarts = 20
    res = sw.fit_restarts(jax.random.key(0), x, 3, n_restarts, sw.FitConfig(init="random_from_data"))
    fitted_means = np.asarray(res.params.means)
    recovered = []
    for r in range(n_restarts):
        dist = np.linalg.norm(means[:, None] - fitted_means[r][None], axis=-1)
        rows, cols = linear_sum_assignment(dist)
        recovered.append(bool(np.all(dist[rows, cols] < 0.3 * separation)))
        _check_valid(jax.tree.map(lambda a: a[r], res.params), res.params.reg_covar[r])
    rate = np.mean(recovered)
    assert rate >= 0.9, f"recovered in {rate:.0%} of {n_restarts} restarts"


# ---------------------------------------------------------------- public step, traced hyperparameters
@pytest.mark.parametrize("d", [2, 8])
def test_updates_scale_with_dimension(d):
    """With ``scale_with_dim`` each update is ``min(1, sqrt(2 / d))`` times the plain RMSProp update
    (in the optimiser's log-Cholesky coordinates)."""
    x = jax.random.normal(jax.random.key(0), (200, d))
    moves = {}
    for on in (True, False):
        # (The init method plays no part in the step: the cheap-to-compile one.)
        cfg = sw.FitConfig(n_steps=10, scale_with_dim=on, init="random_from_data")
        init, step, _ = sw.make_fit_step(cfg)
        # Jitted: one compilation each, not one per primitive run eagerly.
        state = jax.jit(init, static_argnums=2)(jax.random.key(1), x, 2)
        new, _ = jax.jit(step)(jax.random.key(2), state, x)
        # The optimiser's coordinates: log-Cholesky (each factor's diagonal as its logarithm).
        before, after = _to_log_cholesky(state.params), _to_log_cholesky(new.params)
        moves[on] = jax.tree.map(
            lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64), after, before
        )
    factor = min(1.0, np.sqrt(2.0 / d))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, factor * b, rtol=1e-4, atol=1e-7),
        moves[True],
        moves[False],
    )
    assert np.abs(moves[False].means).max() > 0


def test_public_step_driven_by_own_scan_equals_fit():
    """fit = make_fit_step's init + the same steps in the caller's own lax.scan, bit for bit."""
    # random_from_data: the init method is not what is compared, and it compiles in half the time.
    cfg = sw.FitConfig(n_steps=30, learn_weights=False, init="random_from_data")
    ref = sw.fit(jax.random.key(7), X, K, cfg, mesh=None)
    init, step, _ = sw.make_fit_step(cfg)
    k_init, k_loop = jax.random.split(jax.random.key(7))

    @jax.jit
    def run(x):
        state = init(k_init, x, K)

        def body(state, k):
            k_batch, k_loss = jax.random.split(k)  # run_steps' split (k_batch unused at full batch)
            return step(k_loss, state, x)

        return jax.lax.scan(body, state, jax.random.split(k_loop, cfg.n_steps))

    state, losses = run(jnp.asarray(X))
    # Two different programs (XLA fuses each its own way): equal to float32 rounding.
    np.testing.assert_allclose(losses, ref.loss_history, rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.data_params(), ref.params
    )
    # Frozen leaves are exactly untouched by the steps: the weights (learn_weights=False) and the floor.
    start = init(k_init, jnp.asarray(X), K)
    np.testing.assert_array_equal(state.params.logits, start.params.logits)
    np.testing.assert_array_equal(state.params.reg_covar, start.params.reg_covar)


def test_numeric_hyperparameters_do_not_recompile():
    """Changing learning rates, reg_covar, schedule values, init scale or EM tol reuses the compiled fit."""
    base = sw.FitConfig(n_steps=12, relocations=1, relocation_steps=3, init="random_from_data")
    sw.fit(jax.random.key(0), X, K, base)
    sw.fit_em(jax.random.key(0), X, K, sw.EMConfig(max_iter=5))
    changed = [
        base.replace(learning_rate=0.2),
        base.replace(reg_covar=1e-4, lr_final_fraction=0.1, rmsprop_decay=0.8),
        base.replace(init_cov_scale=0.3, relocation_lr=0.05, relocation_temperature=0.0),
    ]
    with count_compilations() as events:
        results = [sw.fit(jax.random.key(0), X, K, c) for c in changed]
        em = sw.fit_em(jax.random.key(0), X, K, sw.EMConfig(max_iter=5, tol=1e-6, reg_covar=1e-3))
        jax.block_until_ready((results, em))
    assert events == [], f"{len(events)} compilations after changing numeric hyperparameters only"
    assert not np.allclose(results[0].params.means, sw.fit(jax.random.key(0), X, K, base).params.means)
    # Structure is static: a new step count compiles.
    with count_compilations() as events:
        sw.fit(jax.random.key(0), X, K, base.replace(n_steps=13))
    assert len(events) > 0


def test_vmap_over_learning_rates_equals_separate_fits():
    lrs = jnp.array([0.01, 0.05, 0.2])

    def final(lr):
        return sw.fit(jax.random.key(3), X, K, CFG_EXACT_INIT.replace(learning_rate=lr), mesh=None)

    swept = jax.vmap(final)(lrs)
    assert swept.params.means.shape == (3, K, 2)
    for i, lr in enumerate([0.01, 0.05, 0.2]):
        one = sw.fit(jax.random.key(3), X, K, CFG_EXACT_INIT.replace(learning_rate=lr), mesh=None)
        np.testing.assert_allclose(swept.loss_history[i], one.loss_history, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(swept.params.means[i], one.params.means, rtol=1e-4, atol=1e-4)
    assert not np.allclose(swept.params.means[0], swept.params.means[2])


# ---------------------------------------------------------------- progress reports
# random_from_data: progress reports do not depend on the init, which compiles in half the time.
PROGRESS_CFG = sw.FitConfig(n_steps=40, n_projections=4, n_levels=16, init="random_from_data")
X_PROGRESS = np.random.default_rng(7).normal(size=(120, 2)).astype(np.float32)


def _leaves_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_progress_reports_the_steps_losses_from_inside_the_fit():
    """Every n_steps // 20 steps a Progress arrives whose loss is that step's entry of
    loss_history; the fit itself is bit-identical to the fit without progress."""
    key = jax.random.key(3)
    plain = sw.fit(key, X_PROGRESS, 2, PROGRESS_CFG)
    reports = []
    res = sw.fit(key, X_PROGRESS, 2, PROGRESS_CFG, progress=reports.append)
    assert _leaves_equal(res, plain)
    assert [r.step for r in reports] == list(range(2, 41, 2))
    assert {(r.stage, r.n_steps) for r in reports} == {("sw", 40)}
    np.testing.assert_array_equal([r.loss for r in reports], np.asarray(res.loss_history)[1::2])
    # A new callable reuses the compiled fit.
    other = []
    with count_compilations() as events:
        sw.fit(key, X_PROGRESS, 2, PROGRESS_CFG, progress=other.append)
    assert events == [] and len(other) == 20


def test_progress_of_restarts_carries_every_restarts_loss():
    key = jax.random.key(4)
    reports = []
    res = sw.fit_restarts(key, X_PROGRESS, 2, 3, PROGRESS_CFG, progress=reports.append)
    assert len(reports) == 20 and all(r.loss.shape == (3,) for r in reports)
    losses = np.stack([r.loss for r in reports])
    np.testing.assert_array_equal(losses, np.asarray(res.loss_history)[:, 1::2].T)


def test_progress_true_prints_to_stderr(capsys):
    sw.fit(jax.random.key(3), X_PROGRESS, 2, PROGRESS_CFG, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 20 and err[-1].startswith("swgmm sw: step 40/40, SW_p^p ")


def test_progress_argument_errors():
    with pytest.raises(TypeError, match="progress"):
        sw.fit(jax.random.key(3), X_PROGRESS, 2, PROGRESS_CFG, progress="yes")
    with pytest.raises(ValueError, match="progress"):
        fit = lambda k: sw.fit(k, X_PROGRESS, 2, PROGRESS_CFG, progress=True).loss_history
        jax.jit(fit)(jax.random.key(3))
