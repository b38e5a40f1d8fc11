"""Data statistics and random initialisations (``swgmm_jax._init``) against NumPy oracles."""

import functools

import jax
import numpy as np
import pytest

import swgmm_jax as sw

# Clusters of spread 0.5 at distance 200: a D^2 draw lands in an already seeded cluster with
# probability ~1e-4 (at distance 20 it was ~1%, and one of three seeds did).
CORNERS = np.array([[-100.0, -100.0], [100.0, -100.0], [-100.0, 100.0], [100.0, 100.0]])


def _separated(seed=0, n_per=30):
    """Four tight clusters far apart (float64): ``(x, labels)``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), n_per)
    return CORNERS[labels] + 0.5 * rng.normal(size=(4 * n_per, 2)), labels


def _check_valid(params, k, d, floor):
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    assert w.shape == (k,) and m.shape == (k, d) and c.shape == (k, d, d)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(m)) and np.all(np.isfinite(c))
    assert np.all(w > 0)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(c, np.swapaxes(c, -1, -2), atol=1e-6 * np.abs(c).max())
    assert np.all(np.linalg.eigvalsh(c) >= floor * (1 - 1e-3))


# ---------------------------------------------------------------- random_from_data
@pytest.mark.usefixtures("x64")
def test_random_from_data_matches_numpy(key):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) @ np.array([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.2]]) + 7.0
    k, cov_scale, reg = 4, 0.2, 1e-3
    params = sw.initialize(key, x, k, method="random_from_data", cov_scale=cov_scale, reg_covar=reg)
    assert params.means.dtype == np.float64
    w, m, c = (np.asarray(a) for a in sw.to_moments(params))
    np.testing.assert_allclose(w, np.full(k, 1 / k), rtol=1e-12)
    # Means at K distinct data points.
    idx = [int(np.flatnonzero(np.all(x == mk, axis=1))[0]) for mk in m]
    assert len(set(idx)) == k
    # Covariances: cov_scale x the (biased) data covariance, plus the floor.
    want = cov_scale * np.cov(x.T, bias=True) + reg * np.eye(3)
    np.testing.assert_allclose(c, np.broadcast_to(want, (k, 3, 3)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params.reg_covar, reg)


def test_random_from_data_is_keyed(key):
    x = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    init = functools.partial(sw.initialize, method="random_from_data")
    a = init(key, x, 3)
    np.testing.assert_array_equal(a.means, init(key, x, 3).means)
    assert not np.array_equal(a.means, init(jax.random.key(1), x, 3).means)
    # vmap over keys gives one initialisation per restart, each equal to its own call.
    keys = jax.random.split(key, 3)
    batched = jax.vmap(init, (0, None, None))(keys, x, 3)
    assert batched.means.shape == (3, 3, 2)
    np.testing.assert_allclose(batched.means[1], init(keys[1], x, 3).means)


# ---------------------------------------------------------------- kmeans++
def test_kmeans_pp_valid_on_random_data(key):
    x = np.random.default_rng(2).normal(size=(60, 3)).astype(np.float32)
    params = sw.initialize(key, x, 5, method="kmeans++", reg_covar=1e-4)
    _check_valid(params, 5, 3, 1e-4)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_pp_one_component_per_separated_cluster(seed):
    """On four far-apart clusters every seed lands in its own cluster, so the points nearest each
    seed are exactly one cluster: the weights, means and covariances are those clusters' (NumPy)."""
    x, labels = _separated(seed)
    n, k, reg = x.shape[0], 4, 1e-3
    params = sw.initialize(jax.random.key(seed), x, k, method="kmeans++", reg_covar=reg)
    _check_valid(params, k, 2, reg)
    w, m, c = (np.asarray(a) for a in sw.to_moments(params))
    # Component j sits on cluster owner[j]; each cluster gets exactly one component.
    owner = np.argmin(np.linalg.norm(m[:, None, :] - CORNERS[None], axis=-1), axis=1)
    assert sorted(owner) == [0, 1, 2, 3]
    for j, cl in enumerate(owner):
        pts = x[labels == cl]
        np.testing.assert_allclose(w[j], (len(pts) + 1) / (n + k), rtol=1e-12)
        np.testing.assert_allclose(m[j], pts.mean(0), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(c[j], np.cov(pts.T, bias=True) + reg * np.eye(2), rtol=1e-8, atol=1e-10)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_ends_at_a_lloyd_fixed_point(seed):
    """Overlapping clusters, where the k-means++ seeds alone are not a clustering: after Lloyd's
    iterations every mean is the centroid of the points nearest to it (NumPy), and the weights and
    covariances are those cells' moments."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(150, 2)) + c for c in ([0, 0], [2.5, 0], [0, 2.5])])
    n, k, reg = x.shape[0], 3, 1e-3
    params = sw.initialize(jax.random.key(seed), x, k, method="kmeans", reg_covar=reg)
    _check_valid(params, k, 2, reg)
    w, m, c = (np.asarray(a) for a in sw.to_moments(params))
    cell = np.argmin(np.linalg.norm(x[:, None, :] - m[None], axis=-1), axis=1)
    for j in range(k):
        pts = x[cell == j]
        np.testing.assert_allclose(m[j], pts.mean(0), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(w[j], (len(pts) + 1) / (n + k), rtol=1e-12)
        np.testing.assert_allclose(c[j], np.cov(pts.T, bias=True) + reg * np.eye(2), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", ["random_from_data", "kmeans++", "kmeans"])
def test_initialize_degenerate_data(degenerate_x, method):
    name, x = degenerate_x
    params = sw.initialize(jax.random.key(0), x, 3, method=method, reg_covar=1e-6)
    for leaf in jax.tree.leaves(params):
        assert np.all(np.isfinite(np.asarray(leaf))), (name, method)
    np.testing.assert_allclose(np.asarray(params.weights).sum(), 1.0, rtol=1e-6)


# ---------------------------------------------------------------- standardizer
@pytest.mark.usefixtures("x64")
def test_standardizer_matches_numpy():
    x = np.random.default_rng(3).normal(size=(80, 3)) * np.array([0.01, 0.02, 0.005]) + 1000.0
    c, s = sw.standardizer(x)
    np.testing.assert_allclose(c, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(s, np.sqrt(np.mean((x - x.mean(0)) ** 2)), rtol=1e-10)
    z = (x - np.asarray(c)) / float(s)
    np.testing.assert_allclose(np.sqrt(np.mean(z**2)), 1.0, rtol=1e-10)


def test_standardizer_float32_far_offset():
    """The centre is taken around the first point, so float32 data at a large offset keeps its digits."""
    x64 = np.random.default_rng(4).normal(size=(200, 2)) + 1e4
    c, s = sw.standardizer(x64.astype(np.float32))
    xr = x64.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(c, xr.mean(0), rtol=0, atol=1e-3)
    np.testing.assert_allclose(s, np.sqrt(np.mean((xr - xr.mean(0)) ** 2)), rtol=1e-3)


def test_standardizer_identical_points_scale_one():
    x = np.tile(np.array([[1.5, -2.0, 3.0]], np.float32), (10, 1))
    c, s = sw.standardizer(x)
    np.testing.assert_array_equal(c, x[0])
    assert float(s) == 1.0


def _two_clusters_and_far_point(dtype=np.float32):
    """Issue 13's case: two clusters of sd 0.3, 3 apart, and one point at 1e6."""
    rng = np.random.default_rng(0)
    inliers = np.concatenate([rng.normal([0, 0], 0.3, (150, 2)), rng.normal([3, 0], 0.3, (150, 2))])
    return inliers.astype(dtype), np.concatenate([inliers, [[1e6, 1e6]]]).astype(dtype)


@pytest.mark.usefixtures("x64")
def test_standardizer_scale_is_capped_by_the_interquartile_spread():
    """One far point cannot inflate the scale: it is at most 2x the IQR spread (numpy oracle)."""
    _, x = _two_clusters_and_far_point(np.float64)
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    robust = np.sqrt(np.mean(((q3 - q1) / 1.349) ** 2))
    rms = np.sqrt(np.mean((x - x.mean(0)) ** 2))
    assert rms > 1e4 * robust  # the far point dominates the RMS spread
    np.testing.assert_allclose(sw._init.robust_scale(x), robust, rtol=1e-12)
    _, s = sw.standardizer(x)
    np.testing.assert_allclose(s, sw._init.ROBUST_SCALE_CAP * robust, rtol=1e-12)
    # Gaussian data: the cap does not bind (IQR spread ~ RMS spread), the scale is the RMS one.
    g = np.random.default_rng(1).normal(size=(500, 3)) * [1.0, 2.0, 0.5]
    np.testing.assert_allclose(sw.standardizer(g)[1], np.sqrt(np.mean((g - g.mean(0)) ** 2)), rtol=1e-12)


def test_standardizer_falls_back_to_rms_when_most_points_coincide():
    """A zero interquartile spread (over half the points identical) keeps the RMS scale, never 0."""
    x = np.zeros((10, 2), np.float32)
    x[:3] = [[1.0, 2.0], [-1.0, 0.5], [4.0, -3.0]]
    _, s = sw.standardizer(x)
    np.testing.assert_allclose(s, np.sqrt(np.mean((x - x.mean(0)) ** 2)), rtol=1e-6)


# ---------------------------------------------------------------- argument checks
X_GOOD = np.random.default_rng(5).normal(size=(20, 2)).astype(np.float32)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(n_components=0), ValueError, "n_components"),
        (dict(n_components=2.0), TypeError, "n_components"),
        (dict(n_components=21), ValueError, "n_components"),
        (dict(method="bogus"), ValueError, "method"),
        (dict(cov_scale=0.0), ValueError, "cov_scale"),
        (dict(reg_covar=-1.0), ValueError, "reg_covar"),
        (dict(x=np.where(np.arange(40).reshape(20, 2) == 3, np.nan, X_GOOD)), ValueError, r"\bx\b"),
        (dict(x=X_GOOD[:, 0]), ValueError, r"\bx\b"),
        (dict(key=0), TypeError, "key"),
    ],
)
def test_initialize_errors_name_the_argument(kwargs, err, match):
    args = dict(key=jax.random.key(0), x=X_GOOD, n_components=2)
    args.update(kwargs)
    key, x, k = args.pop("key"), args.pop("x"), args.pop("n_components")
    with pytest.raises(err, match=match):
        sw.initialize(key, x, k, **args)


def test_kmeans_n_init_keeps_the_lowest_inertia():
    """``n_init`` runs from ``split(key, n_init)``; the kept clustering is the one of least k-means
    inertia (NumPy), each run equal to a single-run call on its key."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(size=(60, 3)) + c for c in np.eye(3) * 3.0] + [rng.normal(size=(60, 3))])
    x = x.astype(np.float32)
    key, k = jax.random.key(4), 4

    def inertia(means):
        return np.sum(np.min(np.sum((x[:, None] - np.asarray(means)[None]) ** 2, axis=-1), axis=1))

    runs = [sw.initialize(kr, x, k, method="kmeans", n_init=1) for kr in jax.random.split(key, 5)]
    scores = [inertia(r.means) for r in runs]
    best = sw.initialize(key, x, k, method="kmeans", n_init=5)
    np.testing.assert_allclose(best.means, runs[int(np.argmin(scores))].means, rtol=1e-5, atol=1e-5)
    assert inertia(best.means) == pytest.approx(min(scores), rel=1e-5)


def test_greedy_seeds_one_per_cluster():
    """Greedy k-means++ seeds (no Lloyd iterations): on 6 separated clusters in 6-D, each seed's cell is
    one whole cluster, for every key tried."""
    rng = np.random.default_rng(12)
    centres = 8.0 * np.eye(6)
    x = np.concatenate([0.5 * rng.normal(size=(50, 6)) + c for c in centres]).astype(np.float32)
    labels = np.repeat(np.arange(6), 50)
    for seed in range(5):
        params = sw.initialize(jax.random.key(seed), x, 6, method="kmeans++", n_init=1)
        cell = np.argmin(np.sum((x[:, None] - np.asarray(params.means)[None]) ** 2, axis=-1), axis=1)
        assert len(set(zip(cell.tolist(), labels.tolist(), strict=True))) == 6, seed


def test_kmeans_init_vmapped_equals_single_calls():
    x = np.random.default_rng(13).normal(size=(120, 3)).astype(np.float32)
    keys = jax.random.split(jax.random.key(5), 3)
    batched = jax.vmap(lambda k: sw.initialize(k, x, 4))(keys)
    for r, k in enumerate(keys):
        one = sw.initialize(k, x, 4)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[r], b, rtol=1e-5, atol=1e-6), batched, one)


def test_kmeans_swaps_find_the_clusters_seeding_missed():
    """Swap moves (``n_swaps``): on 10 separated clusters in 5-D with weights down to 0.02, single
    k-means runs (``n_init=1``) with swaps put one centre in every cluster for at least 19 of 20 keys,
    far more often than without; a swap is kept only if it lowers the inertia, so no run ends worse
    than its own seeding and Lloyd iterations."""
    rng = np.random.default_rng(14)
    k, d = 10, 5
    weights = 0.02 * (0.2 / 0.02) ** (np.arange(k) / (k - 1))
    counts = np.maximum(np.round(2000 * weights / weights.sum()).astype(int), 1)
    centres = rng.normal(size=(k, d))
    centres *= 6.0 / np.min(np.linalg.norm(centres[:, None] - centres[None], axis=-1) + 1e9 * np.eye(k))
    labels = np.repeat(np.arange(k), counts)
    x = (centres[labels] + rng.normal(size=(labels.size, d))).astype(np.float32)

    def run(n_swaps):
        init = jax.jit(jax.vmap(lambda key: sw.initialize(key, x, k, n_init=1, n_swaps=n_swaps).means))
        means = np.asarray(init(jax.random.split(jax.random.key(6), 20)), np.float64)
        sq = np.sum((x[None, :, None] - means[:, None]) ** 2, axis=-1)  # [R, n, K]
        cells = np.argmin(sq, axis=-1)
        covered = [len(set(zip(c.tolist(), labels.tolist(), strict=True))) == k for c in cells]
        return np.array(covered), np.sum(np.min(sq, axis=-1), axis=-1)

    plain, plain_inertia = run(0)
    swapped, swapped_inertia = run(10)
    assert swapped.sum() >= 19 and swapped.sum() > plain.sum(), (plain.sum(), swapped.sum())
    assert np.all(swapped_inertia <= plain_inertia * (1 + 1e-5))
