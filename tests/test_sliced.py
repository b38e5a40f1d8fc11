"""The sliced Wasserstein loss: closed forms, scipy's W1, gradients (projections: test_projections.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

import swgmm_jax as sw
from _helpers import COMPILE_EVENT, TRACE_EVENT, count_compilations
from _oracles import quantile_oracle, slice_gmm


def _directions(key, n_projections, dim, dtype):
    """The directions sliced_loss draws: key -> (k_dir, k_lev), then random_directions(k_dir)."""
    k_dir, _ = jax.random.split(key)
    return np.asarray(sw.random_directions(k_dir, n_projections, dim, dtype), np.float64)


def _w2sq_gaussians(m1, s1, m2, s2):
    """Closed-form W2^2 between 1D normals."""
    return (m1 - m2) ** 2 + (s1 - s2) ** 2


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("n_levels", [None, 256])
def test_one_component_vs_closed_form(n_levels):
    """One-component GMM vs a 100k sample of another Gaussian: per slice
    W2^2 = (m1 - m2)^2 + (s1 - s2)^2, averaged over the same directions."""
    rng = np.random.default_rng(0)
    d, n, n_proj = 3, 100_000, 16
    m1, m2 = np.array([0.5, -1.0, 2.0]), np.array([0.0, 0.0, 1.0])
    a, b = rng.normal(size=(2, d, d))
    c1 = a @ a.T / 3 + 0.2 * np.eye(d)
    c2 = b @ b.T / 3 + 0.3 * np.eye(d)
    params = sw.from_moments(np.ones(1), m1[None], c1[None], reg_covar=1e-6)
    x = rng.multivariate_normal(m2, c2, size=n)
    key = jax.random.key(3)
    value = float(sw.sliced_wasserstein(key, params, x, n_projections=n_proj, n_levels=n_levels))
    theta = _directions(key, n_proj, d, jnp.float64)
    _, mp, sp = slice_gmm(theta, [1.0], m1[None], c1[None])
    mp, sp = mp[:, 0], sp[:, 0]
    population = _w2sq_gaussians(mp, sp, theta @ m2, np.sqrt(np.einsum("li,ij,lj->l", theta, c2, theta)))
    # The sample's own projected moments remove the sampling error of the
    # mean and variance (the empirical slices differ from N(mean, var) only by
    # O(1/n) non-Gaussian fluctuations).
    y = theta @ x.T
    sample = _w2sq_gaussians(mp, sp, y.mean(1), y.std(1))
    np.testing.assert_allclose(value, population.mean(), rtol=1e-2)
    if n_levels is None:  # deterministic midpoint rule over all n levels
        np.testing.assert_allclose(value, sample.mean(), rtol=1e-4)
        per_slice = sw.slice_costs(params, jnp.asarray(x), jnp.asarray(theta), None, quantile_iters=24)
        np.testing.assert_allclose(per_slice, sample, rtol=1e-3)
    else:  # unbiased stratified estimate, 256 levels per slice
        np.testing.assert_allclose(value, sample.mean(), rtol=1e-2)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_midpoint_sw_vs_scipy_w1(p):
    """With n_levels=None each slice's cost is W_p^p between the n projected points
    and the n mixture quantiles at z_i = (i - 1/2)/n (brentq): for p = 1,
    scipy.stats.wasserstein_distance of the two samples."""
    rng = np.random.default_rng(1)
    n, d, n_proj = 150, 2, 6
    w = np.array([0.35, 0.65])
    means = np.array([[-2.0, 0.5], [2.5, -1.0]])
    a = rng.normal(size=(2, d, d))
    covs = a @ a.transpose(0, 2, 1) / 2 + 0.2 * np.eye(d)
    params = sw.from_moments(w, means, covs, reg_covar=1e-6)
    x = rng.normal(size=(n, d)) * 2.0 + np.array([0.3, -0.2])
    key = jax.random.key(11)
    value = float(sw.sliced_wasserstein(key, params, x, n_projections=n_proj, p=p, n_levels=None))
    theta = _directions(key, n_proj, d, jnp.float64)
    w_s, m_s, s_s = slice_gmm(theta, w, means, covs)
    levels = (np.arange(n) + 0.5) / n
    costs = []
    for ell in range(n_proj):
        q = np.array([quantile_oracle(z, w_s, m_s[ell], s_s[ell]) for z in levels])
        y = x @ theta[ell]
        if p == 1.0:
            costs.append(stats.wasserstein_distance(y, q))
        else:
            costs.append(np.mean((np.sort(y) - q) ** p))
    np.testing.assert_allclose(value, np.mean(costs), rtol=1e-9)


@pytest.mark.usefixtures("x64")
def test_sliced_wasserstein_keyed_and_permutation_invariant(key):
    rng = np.random.default_rng(2)
    params = sw.from_moments(np.ones(2), np.array([[0.0, 0.0], [3.0, 1.0]]), np.stack([np.eye(2)] * 2))
    x = rng.normal(size=(300, 2))
    a = sw.sliced_wasserstein(key, params, x, n_projections=8)
    b = sw.sliced_wasserstein(key, params, x[rng.permutation(300)], n_projections=8)
    c = sw.sliced_wasserstein(jax.random.key(1), params, x, n_projections=8)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    assert float(a) != float(c)
    loss = jax.jit(sw.sliced_loss, static_argnames=("n_projections", "quantile_iters"))
    np.testing.assert_allclose(
        a, loss(key, params, jnp.asarray(x), n_projections=8, quantile_iters=24), rtol=1e-12
    )


def test_sliced_wasserstein_float32(key):
    rng = np.random.default_rng(3)
    w, means, covs = np.ones(2), np.array([[0.0, 0.0], [3.0, 1.0]]), np.stack([np.eye(2)] * 2)
    params = sw.from_moments(w, means.astype(np.float32), covs)
    x = rng.normal(size=(300, 2)).astype(np.float32)
    v32 = sw.sliced_wasserstein(key, params, x, n_projections=8, n_levels=None)
    assert v32.dtype == jnp.float32
    # float64 reference on the same (float32) directions.
    theta = _directions(key, 8, 2, jnp.float32)
    with jax.enable_x64(True):
        p64 = sw.from_moments(w, means, covs)
        costs = sw.slice_costs(p64, jnp.asarray(x, jnp.float64), jnp.asarray(theta), None, quantile_iters=24)
        assert costs.dtype == jnp.float64
        v64 = float(jnp.mean(costs))
    np.testing.assert_allclose(v32, v64, rtol=1e-4)


def test_sort_slices_host_and_xla_agree_and_differentiate(key):
    y = jax.random.normal(key, (4, 50))
    weights = jnp.arange(50.0)[None, :]
    for method in ("host", "xla", "auto"):
        s = jax.jit(sw.sort_slices, static_argnames="method")(y, method=method)
        np.testing.assert_array_equal(s, np.sort(np.asarray(y), axis=-1))
        g = jax.jit(jax.grad(lambda y: jnp.sum(sw.sort_slices(y, method) * weights)))(y)
        # d/dy_j of sum_i w_i y_(i) is the weight of y_j's rank.
        ranks = np.argsort(np.argsort(np.asarray(y), axis=-1), axis=-1)
        np.testing.assert_array_equal(g, np.asarray(weights)[0][ranks])
    with pytest.raises(ValueError, match="sort"):
        sw.sort_slices(y, "bogus")


def test_host_sort_splits_large_inputs_across_threads(key, monkeypatch):
    """Above _THREADED_SORT_SIZE values the host sort runs its rows on several threads:
    the result is NumPy's sort, whatever the number of threads and rows."""
    from swgmm_jax import _sort

    y = jax.random.normal(key, (3, 37, 700))  # 77,700 values: above the threshold
    assert y.size >= _sort._THREADED_SORT_SIZE
    for threads in (1, 2, 5):
        monkeypatch.setattr(_sort, "_SORT_THREADS", threads)
        s = jax.jit(lambda y: sw.sort_slices(y, "host"))(y)
        np.testing.assert_array_equal(s, np.sort(np.asarray(y), axis=-1))


def test_table_sort_goes_to_the_host_by_size_of_all_vmapped_lanes(key):
    """sort_table("auto") is NumPy's sort (a host callback) on the CPU only where all the
    vmapped lanes together hold _HOST_TABLE_SIZE values or more, nested vmaps and scans
    included; XLA's below. Both give NumPy's sort."""
    from swgmm_jax import _sort

    if jax.default_backend() != "cpu":
        pytest.skip("the host sort is the CPU backend's")

    def uses_host(f, y):
        np.testing.assert_array_equal(jax.jit(f)(y), np.sort(np.asarray(y), axis=-1))
        return "pure_callback" in str(jax.make_jaxpr(f)(y))

    big = jax.random.normal(key, (100, 16, 50))  # 80,000 values: 100 restarts' tables
    assert big[0].size < _sort._HOST_TABLE_SIZE <= big.size
    table = _sort.sort_table
    assert not uses_host(table, big[0])
    assert uses_host(table, big)
    assert uses_host(jax.vmap(table), big)
    assert uses_host(jax.vmap(jax.vmap(table)), big)
    assert not uses_host(jax.vmap(jax.vmap(table)), big[:4])
    in_scan = lambda y: jax.lax.scan(lambda c, r: (c, jax.vmap(table)(r)), 0, y)[1]  # noqa: E731
    assert uses_host(in_scan, big.reshape(5, 20, 16, 50))  # 16,000 values per scan step
    assert not uses_host(jax.vmap(lambda y: table(y, "xla")), big)


def test_host_sort_does_not_trace(key):
    ys = [jax.random.normal(k, (4, 50)) for k in jax.random.split(key, 3)]
    f = jax.jit(lambda y: sw.sort_slices(y, "host"))
    jax.block_until_ready(f(ys[0]))
    with count_compilations((TRACE_EVENT, COMPILE_EVENT)) as events:
        for y in ys:
            jax.block_until_ready(f(y))
    assert events == [], f"{len(events)} JAX traces/compilations in 3 calls of a compiled host sort"


# ---------------------------------------------------------------- gradients of the whole loss
def _loss_setup():
    rng = np.random.default_rng(4)
    n, d = 120, 2
    w = np.array([0.4, 0.6])
    means = np.array([[-1.5, 0.0], [1.5, 0.5]])
    a = rng.normal(size=(2, d, d))
    covs = a @ a.transpose(0, 2, 1) / 2 + 0.3 * np.eye(d)
    params = sw.from_moments(w, means, covs, reg_covar=0.05)
    # Perturb the factors off the from_moments output (upper part included, ignored).
    params = params._replace(scale_tril=params.scale_tril + 0.1 * rng.normal(size=(2, d, d)))
    x = jnp.asarray(rng.normal(size=(n, d)) * 1.5)
    return params, x


@pytest.mark.usefixtures("x64")
def test_sliced_loss_directional_finite_differences():
    params, x = _loss_setup()
    key = jax.random.key(5)
    loss = jax.jit(lambda p: sw.sliced_loss(key, p, x, n_projections=8, n_levels=None, quantile_iters=40))
    grad = jax.jit(
        jax.grad(lambda p: sw.sliced_loss(key, p, x, n_projections=8, n_levels=None, quantile_iters=40))
    )(params)
    rng = np.random.default_rng(6)
    for _ in range(4):
        v = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=np.shape(a))), params)
        v = v._replace(reg_covar=jnp.asarray(0.01 * rng.normal()))
        h = 1e-5
        plus = loss(jax.tree.map(lambda a, b: a + h * b, params, v))
        minus = loss(jax.tree.map(lambda a, b: a - h * b, params, v))
        fd = (plus - minus) / (2 * h)
        ad = sum(jnp.vdot(g, b) for g, b in zip(jax.tree.leaves(grad), jax.tree.leaves(v), strict=False))
        np.testing.assert_allclose(ad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("n_levels", [None, 32])
def test_sliced_loss_check_grads(n_levels):
    params, x = _loss_setup()
    key = jax.random.key(7)
    f = jax.jit(lambda p: sw.sliced_loss(key, p, x, n_projections=4, n_levels=n_levels, quantile_iters=40))
    check_grads(f, (params,), order=1, modes=("fwd", "rev"), eps=1e-6)
