"""Random directions and the projections of data and of a GMM (``swgmm_jax._projections``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import swgmm_jax as sw
from _oracles import slice_gmm


def test_random_directions_are_unit_and_uniform(key):
    theta = np.asarray(sw.random_directions(key, 20_000, 3))
    assert theta.shape == (20_000, 3) and theta.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, rtol=1e-6)
    # Uniform on S^2: E[theta] = 0 and E[theta theta^T] = I / 3.
    assert np.all(np.abs(theta.mean(0)) < 5 * np.sqrt(1 / 3 / 20_000))
    np.testing.assert_allclose(theta.T @ theta / 20_000, np.eye(3) / 3, atol=0.01)


def test_project_gmm_matches_moments(key):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 3))
    covs = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(3)
    means = rng.normal(size=(2, 3))
    params = sw.from_moments(np.array([0.4, 0.6]), means, covs, reg_covar=1e-3)
    theta = sw.random_directions(key, 5, 3)
    log_w, m, s = sw.project_gmm(theta, params)
    w_o, m_o, s_o = slice_gmm(np.asarray(theta, np.float64), [0.4, 0.6], means, covs)
    np.testing.assert_allclose(np.exp(log_w), w_o, rtol=1e-6)
    np.testing.assert_allclose(m, m_o, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s, s_o, rtol=1e-5)
    x = rng.normal(size=(7, 3)).astype(np.float32)
    np.testing.assert_allclose(sw.project_data(theta, x), np.asarray(theta) @ x.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dim", [2, 5])
def test_random_directions_uniform_in_other_dimensions(dim):
    n = 20_000
    theta = np.asarray(sw.random_directions(jax.random.key(1), n, dim), np.float64)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, rtol=1e-6)
    # Each coordinate has variance 1/d, so its sample mean has standard deviation sqrt(1/(d n)).
    assert np.all(np.abs(theta.mean(0)) < 5 * np.sqrt(1 / dim / n))
    np.testing.assert_allclose(theta.T @ theta / n, np.eye(dim) / dim, atol=0.01)


def test_random_directions_keyed(key):
    a = sw.random_directions(key, 8, 3)
    np.testing.assert_array_equal(a, sw.random_directions(key, 8, 3))
    assert not np.allclose(a, sw.random_directions(jax.random.key(1), 8, 3))


@pytest.mark.usefixtures("x64")
def test_random_directions_float64(key):
    theta = sw.random_directions(key, 50, 4, jnp.float64)
    assert theta.dtype == jnp.float64 and theta.shape == (50, 4)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(theta), axis=1), 1.0, rtol=1e-14)


@pytest.mark.usefixtures("x64")
def test_project_data_equals_numpy_float64(key):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(11, 3)) * 5 + 2
    theta = sw.random_directions(key, 6, 3, jnp.float64)
    y = sw.project_data(theta, jnp.asarray(x))
    assert y.shape == (6, 11) and y.dtype == jnp.float64
    np.testing.assert_allclose(y, np.asarray(theta) @ x.T, rtol=1e-13, atol=1e-13)


@pytest.mark.usefixtures("x64")
def test_project_gmm_matches_to_moments_float64(key):
    """Arbitrary leaves (not from from_moments, junk above the diagonal of the factors):
    slice means theta . mu_k and variances theta^T Sigma_k theta from the moments, in NumPy."""
    rng = np.random.default_rng(2)
    k, d = 3, 4
    params = sw.GMMParams(
        jnp.asarray(rng.normal(size=k)),
        jnp.asarray(rng.normal(size=(k, d)) * 3),
        jnp.asarray(rng.normal(size=(k, d, d))),
        jnp.asarray(0.3),
    )
    theta = sw.random_directions(key, 7, d, jnp.float64)
    log_w, m, s = sw.project_gmm(theta, params)
    assert log_w.shape == (k,) and m.shape == s.shape == (7, k)
    w, means, covs = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    th = np.asarray(theta, np.float64)
    np.testing.assert_allclose(np.exp(log_w), w, rtol=1e-13)
    np.testing.assert_allclose(m, th @ means.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s**2, np.einsum("li,kij,lj->lk", th, covs, th), rtol=1e-12)
    # The floor alone bounds each slice's variance from below: |theta|^2 reg_covar = 0.3.
    assert np.all(np.asarray(s) ** 2 >= 0.3 * (1 - 1e-12))
