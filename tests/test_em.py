"""The EM baseline against scikit-learn's GaussianMixture, restarts and polish_em."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

import swgmm_jax as sw
from _helpers import DEGENERATE

TRUE_MEANS = np.array([[0.0, 0.0], [3.0, 0.5], [0.5, 3.5]])
TRUE_COVS = np.stack([0.5 * np.eye(2), np.array([[0.8, 0.3], [0.3, 0.4]]), 0.6 * np.eye(2)])
X32, _ = sw.datasets.gaussian_mixture_data(500, TRUE_MEANS, TRUE_COVS, weights=[0.5, 0.3, 0.2], seed=3)
X = X32.astype(np.float64)
K = 3


def _sklearn_from(init_moments, config, max_iter=None):
    w, m, c = (np.asarray(a, np.float64) for a in init_moments)
    return GaussianMixture(
        n_components=len(w),
        covariance_type="full",
        tol=config.tol,
        reg_covar=config.reg_covar,
        max_iter=config.max_iter if max_iter is None else max_iter,
        n_init=1,
        init_params="random",
        weights_init=w,
        means_init=m,
        precisions_init=np.linalg.inv(c),
        random_state=0,
    )


def _check_valid(params, floor):
    eps = np.finfo(params.means.dtype).eps
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    assert all(np.all(np.isfinite(a)) for a in (w, m, c))
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=10 * eps)
    lam = np.linalg.eigvalsh(c)
    assert np.all(lam >= floor * (1 - 1e-5) - 10 * eps * np.abs(lam).max(axis=-1, keepdims=True)), lam.min()


@pytest.mark.usefixtures("x64")
def test_em_step_matches_one_sklearn_iteration(key):
    config = sw.EMConfig(reg_covar=1e-4)
    init = sw.initialize(key, X, K, method="random_from_data")
    moments = sw.to_moments(init)
    (w, m, c), ll = jax.jit(sw.em_step)(jnp.asarray(X), moments, jnp.asarray(config.reg_covar))
    gm = _sklearn_from(moments, config, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    np.testing.assert_allclose(w, gm.weights_, rtol=1e-10)
    np.testing.assert_allclose(m, gm.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, gm.covariances_, rtol=1e-10, atol=1e-12)
    # The log-likelihood returned is the one under the *old* moments (sklearn's lower bound).
    np.testing.assert_allclose(ll, gm.lower_bound_, rtol=1e-12)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_em_matches_sklearn(seed):
    config = sw.EMConfig()  # tol 1e-3, max_iter 100, reg_covar 1e-6, as scikit-learn's defaults
    init = sw.initialize(jax.random.key(seed), X, K, method="random_from_data")
    res = sw.fit_em(jax.random.key(seed), X, K, config, init=init)
    assert res.params.means.dtype == jnp.float64
    gm = _sklearn_from(sw.to_moments(init), config).fit(X)
    assert gm.converged_ and bool(res.converged)
    assert int(res.n_iter) == gm.n_iter_
    np.testing.assert_allclose(sw.log_likelihood(res.params, X), gm.score(X), rtol=1e-5)
    np.testing.assert_allclose(res.params.means, gm.means_, rtol=1e-4, atol=1e-4)
    _check_valid(res.params, config.reg_covar)
    # EM never decreases the likelihood: the history (negative mean log-lik) is non-increasing.
    hist = np.asarray(res.loss_history)[: int(res.n_iter)]
    assert np.all(np.diff(hist) <= 1e-12)
    np.testing.assert_array_equal(np.asarray(res.loss_history)[int(res.n_iter) :], hist[-1])


@pytest.mark.usefixtures("x64")
def test_fit_em_without_init_uses_key(key):
    a = sw.fit_em(key, X, K)
    b = sw.fit_em(key, X, K)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    # Same initial parameters as sw.initialize with that key.
    c = sw.fit_em(key, X, K, init=sw.initialize(key, X, K, method="random_from_data"))
    np.testing.assert_allclose(a.params.means, c.params.means, rtol=1e-8, atol=1e-8)
    assert int(a.n_iter) == int(c.n_iter)


@pytest.mark.usefixtures("x64")
def test_fit_em_restarts_equal_single_fits():
    key = jax.random.key(9)
    n_restarts = 4
    batched = sw.fit_em_restarts(key, X, K, n_restarts)
    assert batched.params.means.shape == (n_restarts, K, 2)
    for r, k in enumerate(jax.random.split(key, n_restarts)):
        single = sw.fit_em(k, X, K)
        assert int(batched.n_iter[r]) == int(single.n_iter)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[r], b, rtol=1e-9, atol=1e-12), batched, single)


@pytest.mark.usefixtures("x64")
def test_polish_em_increases_loglik_and_vmaps(key):
    n_restarts, n_steps = 3, 5
    keys = jax.random.split(key, n_restarts)
    batched = jax.vmap(sw.initialize, (0, None, None))(keys, jnp.asarray(X), K)
    polished = jax.vmap(sw.polish_em, (0, None, None))(batched, X, n_steps)
    assert polished.means.shape == (n_restarts, K, 2)
    for r in range(n_restarts):
        before = jax.tree.map(lambda a: a[r], batched)
        after = jax.tree.map(lambda a: a[r], polished)
        single = sw.polish_em(before, X, n_steps)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), after, single)
        assert float(sw.log_likelihood(after, X)) > float(sw.log_likelihood(before, X)) + 1e-3
        # polish_em keeps params.reg_covar as the floor.
        np.testing.assert_allclose(after.reg_covar, before.reg_covar)
        _check_valid(after, float(before.reg_covar))
        # n_steps EM iterations from `before` = sklearn with max_iter=n_steps, tol=0.
        gm = _sklearn_from(
            sw.to_moments(before), sw.EMConfig(tol=0.0, reg_covar=float(before.reg_covar)), max_iter=n_steps
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X)
        np.testing.assert_allclose(after.means, gm.means_, rtol=1e-8, atol=1e-10)
    # n_steps = 0 is the identity.
    same = sw.polish_em(jax.tree.map(lambda a: a[0], batched), X, 0)
    np.testing.assert_allclose(
        sw.to_moments(same)[2], sw.to_moments(jax.tree.map(lambda a: a[0], batched))[2], rtol=1e-10
    )


@pytest.mark.parametrize(
    "name",
    [
        "duplicated",
        "identical",
        "line_in_3d",
        "far_outlier",
    ],
)
def test_degenerate_data_em_without_nan(name):
    x = DEGENERATE[name].astype(np.float32)
    config = sw.EMConfig(max_iter=30)
    res = sw.fit_em(jax.random.key(0), x, 3, config)
    _check_valid(res.params, config.reg_covar)
    assert np.all(np.isfinite(np.asarray(res.loss_history))), name
    assert np.isfinite(float(sw.log_likelihood(res.params, x))), name


@pytest.mark.usefixtures("x64")
def test_far_outlier_em_float64():
    """The same far-outlier data in float64 fit without NaN (the float32 failure is precision)."""
    x = DEGENERATE["far_outlier"]
    config = sw.EMConfig(max_iter=30)
    res = sw.fit_em(jax.random.key(0), x, 3, config)
    _check_valid(res.params, config.reg_covar)
    assert np.all(np.isfinite(np.asarray(res.loss_history)))
