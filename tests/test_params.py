"""GMMParams: pytree, moments round trip, constraints, densities, sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

import swgmm_jax as sw

pytestmark = pytest.mark.usefixtures("x64")


def _random_moments(rng, k, d, reg):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(scale=3.0, size=(k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, -1, -2) / d + 2 * reg * np.eye(d)
    return weights, means, covs


def _mixture_loglik_scipy(x, weights, means, covs):
    comp = np.stack(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(x)
            for w, m, c in zip(weights, means, covs, strict=False)
        ],
        axis=1,
    )
    return comp, np.mean(logsumexp(comp, axis=1))


def test_params_is_a_pytree():
    rng = np.random.default_rng(0)
    w, m, c = _random_moments(rng, 3, 2, 1e-6)
    params = sw.from_moments(w, m, c)
    leaves, treedef = jax.tree.flatten(params)
    assert len(leaves) == 4
    assert jax.tree.unflatten(treedef, leaves) == params
    doubled = jax.tree.map(lambda a: 2 * a, params)
    assert isinstance(doubled, sw.GMMParams)
    np.testing.assert_array_equal(doubled.means, 2 * params.means)
    # Through jit and vmap unchanged.
    out = jax.jit(lambda p: p)(params)
    assert isinstance(out, sw.GMMParams)
    jax.tree.map(np.testing.assert_array_equal, out, params)
    batched = jax.tree.map(lambda a: jnp.stack([a, a + 0.0]), params)
    ws = jax.vmap(lambda p: p.weights)(batched)
    assert ws.shape == (2, 3)
    assert params.n_components == 3 and params.dim == 2


@pytest.mark.parametrize("k,d", [(1, 1), (3, 2), (4, 5)])
def test_moments_round_trip_float64(k, d):
    rng = np.random.default_rng(k * 10 + d)
    w, m, c = _random_moments(rng, k, d, 1e-6)
    params = sw.from_moments(w, m, c, reg_covar=1e-6)
    assert params.means.dtype == jnp.float64
    w2, m2, c2 = sw.to_moments(params)
    np.testing.assert_allclose(w2, w, rtol=1e-12, atol=0)
    np.testing.assert_allclose(m2, m, rtol=1e-14, atol=0)
    np.testing.assert_allclose(c2, c, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(params.covariances, c, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(params.log_weights, np.log(w), rtol=1e-12, atol=1e-13)


def test_from_moments_renormalises_and_floors():
    w = np.array([2.0, 6.0, 0.0])
    m = np.zeros((3, 2))
    # A singular covariance, one below the floor, one above.
    c = np.stack([np.array([[1.0, 1.0], [1.0, 1.0]]), 1e-9 * np.eye(2), np.diag([3.0, 0.5])])
    reg = 1e-4
    params = sw.from_moments(w, m, c, reg_covar=reg)
    w2, _, c2 = sw.to_moments(params)
    np.testing.assert_allclose(w2, [0.25, 0.75, 0.0], atol=1e-15)
    # Oracle: eigenvalues raised to the floor, eigenvectors kept.
    lam, vec = np.linalg.eigh(c)
    expected = np.einsum("kij,kj,klj->kil", vec, np.maximum(lam, reg), vec)
    np.testing.assert_allclose(c2, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype,reg", [(np.float64, 1e-6), (np.float32, 1e-2)])
def test_constraints_hold_for_arbitrary_leaves(dtype, reg):
    rng = np.random.default_rng(7)
    k, d = 6, 4
    logits = rng.normal(scale=10.0, size=k)
    means = rng.normal(size=(k, d))
    tril = rng.normal(scale=3.0, size=(k, d, d))  # upper part is garbage, must be ignored
    tril[0] = 0.0  # all zeros
    tril[1, 2, :] = 0.0  # a zero row: rank-deficient L L^T
    tril[2, :, 0] = 0.0  # a zero column
    tril[3] *= 1e-8  # nearly zero
    params = sw.GMMParams(
        jnp.asarray(logits, dtype),
        jnp.asarray(means, dtype),
        jnp.asarray(tril, dtype),
        jnp.asarray(reg, dtype),
    )
    w, _, cov = sw.to_moments(params)
    w = np.asarray(w, np.float64)
    cov = np.asarray(cov, np.float64)
    assert np.all(w >= 0)
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=10 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(cov, np.swapaxes(cov, -1, -2))
    lam = np.linalg.eigvalsh(cov)
    scale = np.max(np.abs(lam), axis=-1, keepdims=True)
    # The floor holds for the matrix as stored (up to float64's own eigvalsh rounding), float32 too.
    floor = float(np.asarray(reg, dtype))  # the floor as stored
    assert np.all(lam >= floor - 4 * np.finfo(np.float64).eps * scale), lam.min(axis=-1)
    # Independent oracle: numpy's tril(L) tril(L)^T + (reg + r) I, r = (d + 1) eps (|L|_F^2 + reg)
    # the rounding bound of L L^T + reg I that to_moments adds to the floor.
    lt = np.tril(np.asarray(tril, dtype).astype(np.float64))
    r = (d + 1) * np.finfo(dtype).eps * (np.sum(lt * lt, axis=(-2, -1)) + reg)
    expected = lt @ np.swapaxes(lt, -1, -2) + (reg + r)[:, None, None] * np.eye(d)
    np.testing.assert_allclose(cov, expected, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-12)
    # Component 0 (L = 0) is exactly the floor.
    np.testing.assert_allclose(cov[0], reg * np.eye(d), rtol=1e-6)
    np.testing.assert_allclose(
        w, np.exp(logits - logsumexp(logits)), rtol=1e-5 if dtype == np.float32 else 1e-12
    )


def test_log_likelihood_matches_scipy():
    rng = np.random.default_rng(1)
    k, d = 3, 3
    w, m, c = _random_moments(rng, k, d, 1e-3)
    params = sw.from_moments(w, m, c)
    x = rng.normal(scale=4.0, size=(257, d))
    comp_expected, ll_expected = _mixture_loglik_scipy(x, w, m, c)
    ll = sw.log_likelihood(params, x)
    assert ll.dtype == jnp.float64
    np.testing.assert_allclose(ll, ll_expected, rtol=1e-10)
    np.testing.assert_allclose(sw.component_log_prob(params, jnp.asarray(x)), comp_expected, rtol=1e-10)


def test_predict_proba_matches_sklearn():
    rng = np.random.default_rng(2)
    k, d = 4, 2
    w, m, c = _random_moments(rng, k, d, 1e-3)
    params = sw.from_moments(w, m, c)
    x = rng.normal(scale=3.0, size=(300, d))
    gm = GaussianMixture(n_components=k, covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = w, m, c
    gm.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(c)).transpose(0, 2, 1)
    gm.precisions_ = np.linalg.inv(c)
    proba = np.asarray(sw.predict_proba(params, x))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-13)
    np.testing.assert_allclose(proba, gm.predict_proba(x), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(sw.predict(params, x), gm.predict(x))
    np.testing.assert_allclose(sw.log_likelihood(params, x), gm.score(x), rtol=1e-10)


def _sklearn_gmm(w, m, c):
    """scikit-learn's GaussianMixture holding exactly the moments ``(w, m, c)`` (no fit)."""
    gm = GaussianMixture(n_components=len(w), covariance_type="full")
    gm.weights_, gm.means_, gm.covariances_ = w, m, c
    gm.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(c)).transpose(0, 2, 1)
    gm.precisions_ = np.linalg.inv(c)
    return gm


@pytest.mark.parametrize("k,d", [(1, 1), (4, 3)])
def test_score_samples_bic_aic_match_sklearn(k, d):
    rng = np.random.default_rng(4)
    w, m, c = _random_moments(rng, k, d, 1e-3)
    params = sw.from_moments(w, m, c)
    gm = _sklearn_gmm(w, m, c)
    x = rng.normal(scale=3.0, size=(211, d))
    np.testing.assert_allclose(sw.score_samples(params, x), gm.score_samples(x), rtol=1e-10)
    assert sw.n_parameters(params) == gm._n_parameters()
    np.testing.assert_allclose(sw.bic(params, x), gm.bic(x), rtol=1e-10)
    np.testing.assert_allclose(sw.aic(params, x), gm.aic(x), rtol=1e-10)
    assert sw.bic(params, x).dtype == jnp.float64 and sw.bic(params, x).shape == ()


def _stack(params_list):
    return jax.tree.map(lambda *a: jnp.stack(a), *params_list)


def test_density_functions_map_over_leading_batch_axes(key):
    rng = np.random.default_rng(5)
    k, d, n = 3, 2, 50
    moments = [[_random_moments(rng, k, d, 1e-3) for _ in range(3)] for _ in range(2)]
    batched = _stack([_stack([sw.from_moments(*m) for m in row]) for row in moments])  # means [2, 3, K, d]
    x = rng.normal(scale=3.0, size=(n, d))
    scores = np.asarray(sw.score_samples(batched, x))
    proba = np.asarray(sw.predict_proba(batched, x))
    assert scores.shape == (2, 3, n) and proba.shape == (2, 3, n, k)
    for i in range(2):
        for j in range(3):  # each entry against scikit-learn on that entry's moments
            gm = _sklearn_gmm(*moments[i][j])
            np.testing.assert_allclose(scores[i, j], gm.score_samples(x), rtol=1e-10)
            np.testing.assert_allclose(proba[i, j], gm.predict_proba(x), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(sw.predict(batched, x), np.argmax(proba, axis=-1))
    np.testing.assert_allclose(sw.log_likelihood(batched, x), scores.mean(-1), rtol=1e-12)
    n_par = 3 * 3 + 3 * 2 + 2
    assert sw.n_parameters(batched) == n_par
    np.testing.assert_allclose(sw.bic(batched, x), -2 * scores.sum(-1) + n_par * np.log(n), rtol=1e-12)
    np.testing.assert_allclose(sw.aic(batched, x), -2 * scores.sum(-1) + 2 * n_par, rtol=1e-12)


def test_sample_maps_over_leading_batch_axes_with_split_keys(key):
    rng = np.random.default_rng(5)
    d = 2
    batched = _stack([_stack([sw.from_moments(*_random_moments(rng, 3, d, 1e-3)) for _ in range(3)])] * 2)
    draws = sw.sample(key, batched, 7)
    assert draws.shape == (2, 3, 7, d)
    keys = jax.random.split(key, (2, 3))
    one = jax.tree.map(lambda a: a[1, 2], batched)
    np.testing.assert_array_equal(draws[1, 2], sw.sample(keys[1, 2], one, 7))


def test_batched_params_with_inconsistent_leaves_are_rejected(key):
    rng = np.random.default_rng(6)
    batched = _stack([sw.from_moments(*_random_moments(rng, 3, 2, 1e-3)) for _ in range(4)])
    x = np.zeros((5, 2))
    bad = {
        "logits": batched._replace(logits=batched.logits[:3]),
        "scale_tril": batched._replace(scale_tril=batched.scale_tril[:, :2]),
        "reg_covar": batched._replace(reg_covar=batched.reg_covar[0]),
    }
    for field, params in bad.items():
        for fn in (sw.log_likelihood, sw.score_samples, sw.predict_proba, sw.predict, sw.bic, sw.aic):
            with pytest.raises(ValueError, match=rf"params\.{field} must have shape \[4"):
                fn(params, x)
        with pytest.raises(ValueError, match=rf"params\.{field} must have shape"):
            sw.sample(key, params, 3)
    with pytest.raises(ValueError, match=r"params\.means must have shape \[\.\.\., K, d\]"):
        sw.score_samples(batched._replace(means=jnp.zeros(3)), x)
    with pytest.raises(TypeError, match="params must be GMMParams"):
        sw.bic((batched.logits, batched.means), x)
    with pytest.raises(ValueError, match="dimension"):
        sw.aic(batched, np.zeros((5, 3)))


def test_sample_moments_and_weights(key):
    rng = np.random.default_rng(3)
    k, d, n = 3, 2, 200_000
    w = np.array([0.2, 0.5, 0.3])
    m = np.array([[-20.0, 0.0], [0.0, 20.0], [20.0, -5.0]])
    _, _, c = _random_moments(rng, k, d, 1e-3)
    params = sw.from_moments(w, m, c)
    x = np.asarray(sw.sample(key, params, n))
    assert x.shape == (n, d) and x.dtype == np.float64
    # Components are 20 apart (>> their scales): label by the nearest mean.
    labels = np.argmin(np.linalg.norm(x[:, None] - m[None], axis=-1), axis=1)
    frac = np.bincount(labels, minlength=k) / n
    assert np.all(np.abs(frac - w) <= 5 * np.sqrt(w * (1 - w) / n)), frac
    for j in range(k):
        xj = x[labels == j]
        nj = len(xj)
        se_mean = np.sqrt(np.diag(c[j]) / nj)
        assert np.all(np.abs(xj.mean(0) - m[j]) <= 5 * se_mean), (j, xj.mean(0))
        # Var of a sample covariance entry is (c_ii c_jj + c_ij^2) / n.
        se_cov = np.sqrt((np.outer(np.diag(c[j]), np.diag(c[j])) + c[j] ** 2) / nj)
        assert np.all(np.abs(np.cov(xj.T) - c[j]) <= 6 * se_cov), (j, np.cov(xj.T))
    # Whole-mixture moments.
    mbar = w @ m
    cbar = np.einsum("k,kij->ij", w, c + np.einsum("ki,kj->kij", m, m)) - np.outer(mbar, mbar)
    assert np.all(np.abs(x.mean(0) - mbar) <= 5 * np.sqrt(np.diag(cbar) / n))
    np.testing.assert_allclose(np.cov(x.T), cbar, rtol=0.02)


def test_sample_is_deterministic_and_keyed(key):
    params = sw.from_moments(np.ones(2), np.array([[0.0], [5.0]]), np.ones((2, 1, 1)))
    a = sw.sample(key, params, 50)
    b = sw.sample(key, params, 50)
    c = sw.sample(jax.random.key(1), params, 50)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert sw.sample(key, params, 0).shape == (0, 1)


def _smallest_eigenvalues(params):
    return np.linalg.eigvalsh(np.asarray(sw.to_moments(params)[2], np.float64)).min(axis=-1)


def test_floor_holds_in_float32_after_a_fit_with_a_far_outlier(key):
    # Issue 13: the README promises every covariance eigenvalue >= reg_covar; in float32 this fit
    # ended at -1.46 (L L^T + reg I formed in data units after rescaling by a huge scale), and
    # sample(1000) returned 228 NaN values.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(150, 2)) - 3, rng.normal(size=(150, 2)) + 3, [[1e6, 1e6]]])
    x = x.astype(np.float32)
    res = sw.fit(key, x, 3, sw.FitConfig(n_steps=50, n_projections=8, n_levels=16, reg_covar=1e-12))
    floor = float(res.params.reg_covar)  # reg_covar in data units
    assert np.all(_smallest_eigenvalues(res.params) >= floor)
    assert np.all(np.isfinite(np.asarray(sw.sample(key, res.params, 1000))))
    assert np.isfinite(float(sw.log_likelihood(res.params, x)))


@pytest.mark.parametrize("d", [2, 8, 32])
def test_floor_holds_in_float32_for_stretched_factors(d):
    # Nearly rank-1 factors up to |L|^2 ~ 1e12 against floors down to 1e-12.
    rng = np.random.default_rng(d)
    k = 24
    big = 10.0 ** rng.uniform(0, 12, size=k)
    tril = np.tril(rng.normal(size=(k, d, d)) * 1e-3)
    tril[:, :, 0] += rng.normal(size=(k, d))
    tril *= np.sqrt(big)[:, None, None]
    reg = 10.0 ** rng.uniform(-12, 0)
    params = sw.GMMParams(
        jnp.zeros(k), jnp.zeros((k, d)), jnp.asarray(tril, jnp.float32), jnp.asarray(reg, jnp.float32)
    )
    assert np.all(_smallest_eigenvalues(params) >= float(params.reg_covar))
    assert np.all(np.isfinite(np.asarray(jnp.linalg.cholesky(sw.to_moments(params)[2]))))
