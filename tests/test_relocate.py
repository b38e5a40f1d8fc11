"""Merge-and-relocate moves: the proposal against closed forms, and the fits that use it.

The oracle for the merge is the mean and covariance of a two-component
mixture in float64 NumPy; for the re-seeded component, NumPy's (biased) data
covariance. End to end, separated clusters are started in a local optimum
that plain EM (three clusters: two components on the left one, one between the
others) or plain SW (four clusters at the corners of a square: two components
on each of two corners) does not leave; relocations leave it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import swgmm_jax as sw

CENTRES = np.array([[-4.0, 0.0], [0.0, 0.0], [4.0, 0.0]])
X3, LABELS3 = sw.datasets.gaussian_mixture_data(
    600, CENTRES, np.stack([0.09 * np.eye(2)] * 3), weights=[1 / 3] * 3, seed=0
)


def _bad_init(x, reg=1e-6):
    """Two components on the left cluster, one spanning the middle and right ones."""
    cov = 0.1 * np.cov(np.asarray(x, np.float64).T, bias=True)
    means = np.array([[-4.2, 0.0], [-3.8, 0.0], [2.0, 0.0]])
    return sw.from_moments(
        jnp.full(3, 1 / 3),
        jnp.asarray(means, x.dtype),
        jnp.asarray(np.stack([cov] * 3), x.dtype),
        reg_covar=reg,
    )


CORNERS = np.array([[-4.0, -4.0], [4.0, -4.0], [-4.0, 4.0], [4.0, 4.0]])
X4, _ = sw.datasets.gaussian_mixture_data(800, CORNERS, np.stack([0.09 * np.eye(2)] * 4), seed=0)


def _recovered(params, centres=CENTRES, tol=0.3):
    means = np.asarray(params.means)
    return all(np.min(np.linalg.norm(means - c, axis=1)) < tol for c in centres)


@pytest.mark.usefixtures("x64")
def test_merge_is_moment_matched_and_reseed_is_a_data_point():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2)) * [2.0, 0.5]
    w = np.array([0.4, 0.35, 0.25])
    m = np.array([[0.0, 0.0], [0.1, 0.05], [3.0, 0.0]])  # 0 and 1 overlap: the redundant pair
    c = np.stack([np.diag([1.0, 0.2]), np.array([[0.8, 0.1], [0.1, 0.3]]), np.eye(2)])
    params = sw.from_moments(jnp.asarray(w), jnp.asarray(m), jnp.asarray(c), reg_covar=1e-6)
    out = sw.merge_relocate(jax.random.key(3), params, jnp.asarray(x), temperature=0.0, cov_scale=0.1)
    w2, m2, c2 = (np.asarray(a) for a in sw.to_moments(out))

    # Oracle: the two-component mixture's mean and covariance.
    tot = w[0] + w[1]
    mu = (w[0] * m[0] + w[1] * m[1]) / tot
    cov = sum(w[i] * (c[i] + np.outer(m[i] - mu, m[i] - mu)) for i in (0, 1)) / tot
    merged, seeded = (0, 1) if np.allclose(m2[0], mu, atol=1e-12) else (1, 0)
    np.testing.assert_allclose(m2[merged], mu, atol=1e-12)
    np.testing.assert_allclose(c2[merged], cov, atol=1e-10)
    np.testing.assert_allclose(w2[merged] + w2[seeded], tot, atol=1e-12)
    np.testing.assert_allclose(w2[seeded], 0.5 / 3, atol=1e-12)
    assert np.min(np.linalg.norm(x - m2[seeded], axis=1)) == 0.0
    np.testing.assert_allclose(c2[seeded], 0.1 * np.cov(x.T, bias=True) + 1e-6 * np.eye(2), atol=1e-10)
    # The third component is untouched.
    np.testing.assert_allclose(m2[2], m[2], atol=1e-12)
    np.testing.assert_allclose(c2[2], c[2], atol=1e-10)
    assert float(out.reg_covar) == 1e-6


def test_keep_weights_and_random_pair_prefers_redundant():
    x = jnp.asarray(X3)
    params = _bad_init(x)
    keys = jax.random.split(jax.random.key(0), 200)
    props = jax.vmap(lambda k: sw.merge_relocate(k, params, x))(keys)
    # The pair {0, 1} shares the left cluster: one of them becomes the merge.
    merged_left = np.any(
        np.linalg.norm(np.asarray(props.means) - np.array([-4.0, 0.0]), axis=-1) < 0.25, axis=-1
    )
    assert np.mean(merged_left) > 0.95
    kept = sw.merge_relocate(keys[0], params, x, keep_weights=True)
    np.testing.assert_allclose(np.asarray(kept.weights), np.asarray(params.weights), atol=1e-6)


def test_em_relocations_leave_the_local_optimum():
    x = jnp.asarray(X3)
    init = _bad_init(x)
    plain = sw.fit_em(jax.random.key(0), x, 3, sw.EMConfig(max_iter=200, tol=1e-6), init=init)
    assert not _recovered(plain.params)
    assert plain.relocation_nll is None
    cfg = sw.EMConfig(max_iter=200, tol=1e-6, relocations=6)
    moved = sw.fit_em(jax.random.key(0), x, 3, cfg, init=init)
    assert _recovered(moved.params)
    nll = np.asarray(moved.relocation_nll)
    assert np.all(np.diff(nll) <= 0) and np.any(np.asarray(moved.relocation_accepted))
    ll_plain = float(sw.log_likelihood(plain.params, x))
    np.testing.assert_allclose(-float(sw.log_likelihood(moved.params, x)), nll[-1], rtol=1e-5)
    assert -nll[-1] > ll_plain + 0.1
    # The first phase is plain EM: same history and iteration count.
    np.testing.assert_array_equal(np.asarray(moved.n_iter), np.asarray(plain.n_iter))


def test_sw_relocations_leave_the_local_optimum():
    x = jnp.asarray(X4)
    cov = 0.1 * np.cov(X4.T, bias=True)
    means = np.array([[-4.2, -4.0], [-3.8, -4.0], [-4.2, 4.0], [-3.8, 4.0]])  # two on each left corner
    init = sw.from_moments(
        jnp.full(4, 0.25), jnp.asarray(means, jnp.float32), jnp.asarray(np.stack([cov] * 4), jnp.float32)
    )
    base = dict(n_steps=150, n_projections=16, learning_rate=0.05)
    plain = sw.fit(jax.random.key(0), x, 4, sw.FitConfig(**base), init=init)
    assert not _recovered(plain.params, CORNERS)
    assert plain.relocation_sw is None and plain.relocation_accepted is None
    cfg = sw.FitConfig(
        **base, relocations=6, relocation_steps=200, relocation_projections=32, relocation_levels=64
    )
    moved = sw.fit(jax.random.key(0), x, 4, cfg, init=init)
    assert _recovered(moved.params, CORNERS)
    values = np.asarray(moved.relocation_sw)
    accepted = np.asarray(moved.relocation_accepted)
    assert values.shape == accepted.shape == (6,)
    assert np.all(np.diff(values) <= 0) and accepted.any()
    # Rejected rounds leave the value unchanged; accepted ones lower it.
    np.testing.assert_array_equal(np.diff(values) < 0, accepted[1:])
    # The first phase is untouched by the rounds that follow it.
    np.testing.assert_array_equal(np.asarray(moved.loss_history), np.asarray(plain.loss_history))
    # Same directions: the SW distance of the result is far lower.
    key = jax.random.key(9)
    d_plain = float(sw.sliced_wasserstein(key, plain.params, x))
    d_moved = float(sw.sliced_wasserstein(key, moved.params, x))
    assert d_moved < 0.2 * d_plain


@pytest.mark.slow
def test_sw_relocations_fixed_weights_and_restarts():
    x = jnp.asarray(X3)
    cfg = sw.FitConfig(
        n_steps=30,
        n_projections=8,
        relocations=2,
        relocation_steps=20,
        relocation_projections=8,
        relocation_levels=16,
        learn_weights=False,
        init="random_from_data",  # weights 1/K, kept so by the fit
    )
    res = sw.fit_restarts(jax.random.key(1), x, 3, 3, cfg)
    assert res.relocation_sw.shape == (3, 2) and res.relocation_accepted.shape == (3, 2)
    np.testing.assert_allclose(np.asarray(res.params.weights), 1 / 3, atol=1e-6)
    one = sw.fit(jax.random.split(jax.random.key(1), 3)[1], x, 3, cfg)
    np.testing.assert_allclose(np.asarray(one.params.means), np.asarray(res.params.means[1]), atol=1e-5)


@pytest.mark.parametrize(
    "field,value",
    [
        ("relocations", -1),
        ("relocation_steps", 0),
        ("relocation_lr", 0.0),
        ("relocation_projections", 0),
        ("relocation_levels", 0),
        ("relocation_temperature", -0.1),
    ],
)
def test_fit_config_rejects_bad_relocation_settings(field, value):
    with pytest.raises(ValueError, match=field):
        sw.FitConfig(**{field: value})


@pytest.mark.parametrize("field,value", [("relocations", -2), ("relocation_temperature", -1.0)])
def test_em_config_rejects_bad_relocation_settings(field, value):
    with pytest.raises(ValueError, match=field):
        sw.EMConfig(**{field: value})


def test_accept_if_better_keeps_only_improvements():
    # A random walk on a scalar, scored by its square: a move is kept exactly when the square drops.
    from swgmm_jax._relocate import accept_if_better

    def propose(s, k):
        return s + jax.random.normal(k)

    state, scores, accepted = accept_if_better(jax.random.key(3), jnp.float32(2.0), 40, propose, jnp.square)
    steps = np.asarray(jax.vmap(jax.random.normal)(jax.random.split(jax.random.key(3), 40)))  # its draws
    value, best, kept = np.float32(2.0), np.float32(4.0), []
    for step in steps:
        keep = (value + step) ** 2 < best
        if keep:
            value, best = value + step, (value + step) ** 2
        kept.append(bool(keep))
    assert 0 < sum(kept) < 40
    np.testing.assert_array_equal(np.asarray(accepted), kept)
    np.testing.assert_allclose(float(state), value, atol=1e-6)
    assert np.all(np.diff(np.asarray(scores)) <= 0) and float(scores[-1]) == pytest.approx(
        float(best), abs=1e-6
    )
