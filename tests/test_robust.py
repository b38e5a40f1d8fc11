"""fit_robust: SW restarts, EM from each, the best likelihood."""

import jax
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import swgmm_jax as sw

CFG = sw.FitConfig(n_steps=100)


def _problem(seed):
    """4 anisotropic components in 3-D, unequal weights, means ~6 sd apart (not a problem used to
    choose any default)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(4, 3)) * 6.0
    covs = []
    for _ in range(4):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        covs.append(q @ np.diag([1.0, 0.3, 0.1]) @ q.T)
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    x, _ = sw.datasets.gaussian_mixture_data(2000, means, np.array(covs), weights, seed=seed)
    return x, means, weights


def _recovered(params, means, weights):
    w, m, _ = (np.asarray(a) for a in sw.to_moments(params))
    rows, cols = linear_sum_assignment(np.linalg.norm(m[:, None] - means[None], axis=-1))
    return np.all(np.linalg.norm(m[rows] - means[cols], axis=-1) < 0.15) and np.all(
        np.abs(w[rows] - weights[cols]) < 0.05
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_robust_recovers_the_components(seed):
    x, means, weights = _problem(seed)
    res = sw.fit_robust(jax.random.key(seed), x, 4, CFG, n_restarts=3)
    assert _recovered(res.params, means, weights)
    # The chosen restart is the most likely one, and its params are that restart's.
    assert int(res.restart_index) == int(np.argmax(np.asarray(res.log_likelihoods)))
    np.testing.assert_array_equal(res.params.means, res.em_result.params.means[int(res.restart_index)])
    assert res.sw_distances.shape == (3,) and np.all(np.isfinite(res.sw_distances))


def test_fit_robust_is_deterministic_given_key():
    x, _, _ = _problem(0)
    a = sw.fit_robust(jax.random.key(7), x, 4, CFG, n_restarts=3)
    b = sw.fit_robust(jax.random.key(7), x, 4, CFG, n_restarts=3)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


def test_fit_robust_validates_its_arguments():
    x, _, _ = _problem(0)
    with pytest.raises(ValueError, match="n_restarts"):
        sw.fit_robust(jax.random.key(0), x, 4, CFG, n_restarts=0)
    with pytest.raises(TypeError, match="config"):
        sw.fit_robust(jax.random.key(0), x, 4, sw.EMConfig())
    with pytest.raises(TypeError, match="config"):
        sw.fit_robust(jax.random.key(0), x, 4, CFG, em_config=CFG)


def test_collapsed_components_against_eigenvalues():
    """A component is collapsed when its covariance's smallest eigenvalue (NumPy, float64) is below
    COLLAPSE_FACTOR x reg_covar."""
    from swgmm_jax._params import COLLAPSE_FACTOR, collapsed_components

    reg = 1e-4
    covs = np.stack(
        [np.eye(2), np.diag([1.0, 3e-4]), np.diag([1.0, 2e-3]), np.diag([1.0, 0.0])]
    ) + reg * np.eye(2)
    params = sw.from_moments(np.full(4, 0.25), np.zeros((4, 2)), covs, reg_covar=reg)
    want = np.linalg.eigvalsh(covs)[:, 0] < COLLAPSE_FACTOR * reg
    np.testing.assert_array_equal(np.asarray(collapsed_components(params)), want)
    assert want.tolist() == [False, True, False, True]


def test_fit_robust_skips_collapsed_fits_and_select_best_excludes():
    """Six duplicated points attract a component whose likelihood grows without bound as the floor
    shrinks: plain EM restarts that collapse onto them have the highest likelihood; fit_robust's
    choice has no collapsed component and is as likely as the clean EM restarts. This data has two
    clean local optima 0.005 nats per point apart (the third component takes the duplicates with
    the tail of one cluster or of the other), so over several keys: every choice is within 0.01
    nats of the best clean EM restart, and some key reaches it."""
    from swgmm_jax._params import collapsed_components

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 6.0, np.full((6, 2), 3.0)])
    x = x.astype(np.float32)
    em = sw.fit_em_restarts(jax.random.key(0), x, 3, 8, sw.EMConfig(max_iter=500, tol=1e-6))
    em_collapsed = np.asarray(collapsed_components(em.params)).any(-1)
    _, i, em_ll = sw.select_best(em, x, "log_likelihood")
    assert em_collapsed[i] and not em_collapsed.all()  # the data does what the test is about
    best_clean = np.max(np.asarray(em_ll)[~em_collapsed])
    lls = []
    for key in range(3):
        res = sw.fit_robust(jax.random.key(key), x, 3, CFG, n_restarts=4)
        assert not np.asarray(res.collapsed)[int(res.restart_index)]
        assert not np.asarray(collapsed_components(res.params)).any()
        lls.append(float(sw.log_likelihood(res.params, x)))
    assert min(lls) >= best_clean - 1e-2
    assert max(lls) >= best_clean - 1e-3
    # select_best's exclude: the best restart that is not excluded.
    j = sw.select_best(em, x, "log_likelihood", exclude=em_collapsed).restart_index
    assert j == int(np.argmax(np.where(em_collapsed, -np.inf, np.asarray(em_ll))))
    with pytest.raises(ValueError, match="exclude"):
        sw.select_best(em, x, "log_likelihood", exclude=np.zeros(2, bool))
