"""Covariance types "full", "diag", "spherical", "tied": against scikit-learn, SciPy and closed forms.

Every type through the density functions (SciPy's multivariate normal on the
expanded matrices), the slices (``theta^T Sigma theta`` of the expanded
matrices), EM (scikit-learn's ``GaussianMixture`` of the same type from the
same initialisation, float64), the SW fit, the parameter counts
(scikit-learn's ``_n_parameters``), sampling, saving and the estimator.
"""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import swgmm_jax as sw

TYPES = sw.COVARIANCE_TYPES
MEANS = np.array([[0.0, 0.0, 0.0], [4.0, 0.5, -1.0], [0.5, 4.5, 1.0]])
STDS = np.array([[0.5, 1.0, 0.7], [0.8, 0.4, 0.6], [0.6, 0.6, 1.2]])
X32, LABELS = sw.datasets.gaussian_mixture_data(
    600, MEANS, np.stack([np.diag(s**2) for s in STDS]), weights=[0.5, 0.3, 0.2], seed=4
)
X = X32.astype(np.float64)
K, D = MEANS.shape


def _moments(ct, rng):
    """Random valid moments of type ``ct`` (scikit-learn's shapes)."""
    w = rng.uniform(0.5, 1.5, K)
    m = rng.normal(size=(K, D)) * 3
    a = rng.normal(size=(K, D, D))
    full = a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(D)
    cov = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.3, 2.0, (K, D)),
        "spherical": rng.uniform(0.3, 2.0, K),
    }[ct]
    return w / w.sum(), m, cov


def _expanded(ct, cov):
    return {
        "full": cov,
        "tied": np.broadcast_to(cov, (K, D, D)),
        "diag": np.stack([np.diag(c) for c in np.atleast_2d(cov)]) if ct == "diag" else None,
        "spherical": cov[:, None, None] * np.eye(D) if ct == "spherical" else None,
    }[ct]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("ct", TYPES)
def test_moments_round_trip_and_density_match_scipy(ct):
    w, m, c = _moments(ct, np.random.default_rng(0))
    params = sw.from_moments(w, m, c, reg_covar=1e-6, covariance_type=ct)
    assert (
        type(params)
        is {
            "full": sw.GMMParams,
            "diag": sw.DiagGMMParams,
            "spherical": sw.SphericalGMMParams,
            "tied": sw.TiedGMMParams,
        }[ct]
    )
    assert params.covariance_type == ct
    w2, m2, c2 = sw.to_moments(params)
    assert c2.shape == np.shape(c)
    np.testing.assert_allclose(w2, w, rtol=1e-12)
    np.testing.assert_allclose(c2, c, rtol=1e-9, atol=1e-12)
    full = _expanded(ct, c)
    np.testing.assert_allclose(sw.full_covariances(params), full, rtol=1e-9, atol=1e-12)
    x = np.random.default_rng(1).normal(size=(50, D)) * 3
    dens = sum(w[k] * multivariate_normal(m[k], full[k]).pdf(x) for k in range(K))
    np.testing.assert_allclose(sw.score_samples(params, x), np.log(dens), rtol=1e-10)
    # Slices: theta^T Sigma_k theta of the expanded matrices, without forming them.
    theta = sw.random_directions(jax.random.key(2), 16, D, jnp.float64)
    _, means, scales = sw.project_gmm(theta, params)
    want = np.einsum("ld,kde,le->lk", theta, full, theta)
    np.testing.assert_allclose(scales**2, want, rtol=1e-10)
    np.testing.assert_allclose(means, np.asarray(theta) @ m.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ct", TYPES)
def test_n_parameters_match_sklearn(ct):
    gm = SkGaussianMixture(K, covariance_type=ct, max_iter=5, random_state=0).fit(X)
    params = sw.from_moments(gm.weights_, gm.means_, gm.covariances_, covariance_type=ct)
    assert sw.n_parameters(params) == gm._n_parameters()
    np.testing.assert_allclose(sw.bic(params, X), gm.bic(X), rtol=1e-5)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("ct", TYPES)
def test_em_matches_sklearn_per_type(ct):
    init = sw.initialize(jax.random.key(3), X, K, method="random_from_data", covariance_type=ct)
    assert init.covariance_type == ct
    w, m, c = (np.asarray(a) for a in sw.to_moments(init))
    config = sw.EMConfig(covariance_type=ct, reg_covar=1e-6, tol=1e-3)
    # One step, then a whole fit, from the same moments.
    (w1, m1, c1), ll = sw.em_step(jnp.asarray(X), sw.to_moments(init), 1e-6, covariance_type=ct)
    precisions = np.linalg.inv(c) if ct in ("full", "tied") else 1.0 / c
    kw = dict(
        covariance_type=ct,
        reg_covar=1e-6,
        init_params="random",
        weights_init=w,
        means_init=m,
        precisions_init=precisions,
        random_state=0,
    )
    one = SkGaussianMixture(K, max_iter=1, tol=0.0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one.fit(X)
    np.testing.assert_allclose(w1, one.weights_, rtol=1e-10)
    np.testing.assert_allclose(m1, one.means_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(c1, one.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ll, one.lower_bound_, rtol=1e-10)
    res = sw.fit_em(jax.random.key(0), X, K, config, init=init)
    gm = SkGaussianMixture(K, tol=1e-3, max_iter=100, **kw).fit(X)
    assert type(res.params) is type(init)
    assert int(res.n_iter) == gm.n_iter_
    np.testing.assert_allclose(sw.log_likelihood(res.params, X), gm.score(X), rtol=1e-5)
    np.testing.assert_allclose(sw.to_moments(res.params)[2], gm.covariances_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ct", TYPES)
def test_sw_fit_per_type_recovers_means_and_keeps_the_floor(ct):
    config = sw.FitConfig(n_steps=150, covariance_type=ct, n_projections=32)
    res = sw.fit(jax.random.key(0), X32, K, config)
    params = res.params
    assert params.covariance_type == ct and params.means.shape == (K, D)
    assert np.all(np.isfinite(res.loss_history))
    # Every true mean has a fitted mean within half the smallest true standard deviation... per axis
    # of its own scale: the clusters are 4+ standard deviations apart.
    dist = np.linalg.norm(np.asarray(params.means)[:, None] - MEANS[None], axis=-1)
    assert np.all(dist.min(axis=0) < 0.5), dist.min(axis=0)
    full = np.asarray(sw.full_covariances(params), np.float64)
    floor = float(params.reg_covar)
    assert np.linalg.eigvalsh(full).min() >= floor * (1 - 1e-4)
    # Restarts vmap over any type; EM from the SW fit keeps the type.
    many = sw.fit_restarts(jax.random.key(1), X32, K, 2, config.replace(n_steps=20))
    assert type(many.params) is type(params) and many.params.means.shape == (2, K, D)
    polished = sw.polish_em(params, X32, 5)
    assert type(polished) is type(params)
    assert sw.log_likelihood(polished, X32) >= sw.log_likelihood(params, X32) - 1e-4


def test_diag_data_fits_better_with_diag_than_spherical():
    lls = {}
    for ct in ("spherical", "diag"):
        cfg = sw.EMConfig(covariance_type=ct, init="kmeans", max_iter=200)
        lls[ct] = float(sw.log_likelihood(sw.fit_em(jax.random.key(0), X32, K, cfg).params, X32))
    assert lls["diag"] > lls["spherical"] + 0.05, lls


@pytest.mark.parametrize("ct", ["diag", "spherical", "tied"])
def test_freeze_covariances_per_type_bit_for_bit(ct):
    init = sw.initialize(jax.random.key(0), X32, K, covariance_type=ct)
    field = type(init)._fields[2]
    res = sw.fit(
        jax.random.key(1), X32, K, sw.FitConfig(n_steps=10, covariance_type=ct, freeze={"covariances"}), init
    )
    np.testing.assert_array_equal(getattr(res.params, field), getattr(init, field))
    assert not np.array_equal(res.params.means, init.means)
    em = sw.fit_em(
        jax.random.key(1), X32, K, sw.EMConfig(max_iter=5, covariance_type=ct, freeze={"covariances"}), init
    )
    np.testing.assert_array_equal(getattr(em.params, field), getattr(init, field))


@pytest.mark.parametrize("ct", ["diag", "spherical", "tied"])
def test_sample_save_load_relocate_per_type(ct, tmp_path):
    w, m, c = _moments(ct, np.random.default_rng(5))
    params = sw.from_moments(w, m, c, covariance_type=ct)
    xs = np.asarray(sw.sample(jax.random.key(0), params, 20000), np.float64)
    comp = np.asarray(sw.predict(params, xs))
    full = _expanded(ct, c)
    big = int(np.argmax(w))  # the empirical covariance of the heaviest component's points
    np.testing.assert_allclose(np.cov(xs[comp == big].T), full[big], atol=0.35)
    path = os.path.join(tmp_path, "model.npz")
    sw.save(path, params, config=sw.FitConfig(covariance_type=ct))
    saved = sw.load(path)
    assert type(saved.params) is type(params) and saved.format_version == 2
    assert saved.config.covariance_type == ct
    for a, b in zip(saved.params, params, strict=True):
        np.testing.assert_array_equal(a, b)
    moved = sw.merge_relocate(jax.random.key(1), params, jnp.asarray(xs[:500], jnp.float32))
    assert type(moved) is type(params)
    assert all(np.shape(a) == np.shape(b) for a, b in zip(moved, params, strict=True))


@pytest.mark.parametrize("ct", TYPES)
def test_estimator_attributes_have_sklearn_shapes(ct):
    # n_init=10 on both sides: one k-means start left scikit-learn 0.4-0.9 nats below the optimum here.
    ours = sw.GaussianMixture(K, covariance_type=ct, method="em", n_init=10, random_state=0).fit(X)
    theirs = SkGaussianMixture(K, covariance_type=ct, n_init=10, random_state=0).fit(X)
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    assert ours.params_.covariance_type == ct
    assert abs(ours.score(X) - theirs.score(X)) < 1e-3
    xs, ys = ours.sample(50)
    assert xs.shape == (50, D) and ys.shape == (50,)


def test_covariance_type_errors_name_the_argument():
    with pytest.raises(ValueError, match="covariance_type"):
        sw.FitConfig(covariance_type="diagonal")
    with pytest.raises(ValueError, match="covariance_type"):
        sw.EMConfig(covariance_type="ful")
    with pytest.raises(ValueError, match="covariances must have shape"):
        sw.from_moments(np.ones(K), MEANS, np.ones((K, D, D)), covariance_type="diag")
    with pytest.raises(ValueError, match="covariances must be >= 0"):
        sw.from_moments(np.ones(K), MEANS, -np.ones((K, D)), covariance_type="diag")
    diag = sw.initialize(jax.random.key(0), X32, K, covariance_type="diag")
    with pytest.raises(ValueError, match="init is DiagGMMParams"):
        sw.fit(jax.random.key(0), X32, K, sw.FitConfig(n_steps=5), diag)
    with pytest.raises(ValueError, match="em_config has 'full'"):
        sw.fit_robust(jax.random.key(0), X32, K, sw.FitConfig(covariance_type="diag"), sw.EMConfig())
    with pytest.raises(ValueError, match="scale_diag must have shape"):
        sw.log_likelihood(diag._replace(scale_diag=jnp.ones((K, D + 1))), X32)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        sw.GaussianMixture(K, covariance_type="diagonal").fit(X32)


@pytest.mark.slow
def test_stream_robust_and_choosing_k_keep_the_type():
    ct = "spherical"
    cfg = sw.FitConfig(n_steps=20, covariance_type=ct, batch_size=200)
    streamed = sw.fit_stream(jax.random.key(0), X32, K, cfg, chunk_steps=10)
    assert type(streamed.params) is sw.SphericalGMMParams
    robust = sw.fit_robust(
        jax.random.key(0), X32, K, sw.FitConfig(n_steps=20, covariance_type=ct), n_restarts=2
    )
    assert type(robust.params) is sw.SphericalGMMParams  # the EM phase took the SW config's type
    chosen = sw.select_n_components(
        jax.random.key(0), X32, (2, 3), method="em", n_restarts=2, em_config=sw.EMConfig(covariance_type=ct)
    )
    assert chosen.best_n_components == 3 and type(chosen.best_params) is sw.SphericalGMMParams
    gm = SkGaussianMixture(3, covariance_type=ct, n_init=5, random_state=0).fit(X)
    np.testing.assert_allclose(chosen.bic[1], gm.bic(X), rtol=1e-3)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("ct", ["diag", "spherical", "tied"])
def test_integer_weights_equal_repeated_points_per_type(ct):
    counts = np.arange(X.shape[0]) % 3  # 0, 1, 2: dropped, kept, doubled
    repeated = np.repeat(X, counts, axis=0)
    init = sw.initialize(jax.random.key(0), repeated, K, method="random_from_data", covariance_type=ct)
    cfg = sw.EMConfig(covariance_type=ct, max_iter=20, tol=0.0)
    weighted = sw.fit_em(jax.random.key(0), X, K, cfg, init, sample_weight=counts).params
    plain = sw.fit_em(jax.random.key(0), repeated, K, cfg, init).params
    for a, b in zip(sw.to_moments(weighted), sw.to_moments(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
