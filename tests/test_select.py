"""Picking the best restart (``swgmm_jax._select``): by sliced distance, by likelihood, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import swgmm_jax as sw

TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
TRUE_COVS = np.stack([0.5 * np.eye(2), np.diag([0.8, 0.3]), 0.6 * np.eye(2)])
X, _ = sw.datasets.gaussian_mixture_data(400, TRUE_MEANS, TRUE_COVS, seed=0)  # float32 [400, 2]
K = 3


def _batched_candidates():
    """Restart 2 is the true model; the others are shifted or squashed versions."""
    good = (np.full(K, 1 / K), TRUE_MEANS, TRUE_COVS)
    cands = [
        (good[0], TRUE_MEANS + 1.5, TRUE_COVS),
        (good[0], TRUE_MEANS, 4.0 * TRUE_COVS),
        good,
        (np.array([0.8, 0.1, 0.1]), TRUE_MEANS[[0, 0, 1]], TRUE_COVS),
    ]
    params = [sw.from_moments(*c) for c in cands]
    batched = jax.tree.map(lambda *a: jnp.stack(a), *params)
    return sw.FitResult(batched, jnp.zeros((len(cands), 5))), cands


def test_select_best_picks_argmin_sw_and_argmax_loglik(key):
    result, cands = _batched_candidates()
    best, idx, scores = sw.select_best(result, X, "sw", key=key, n_projections=64)
    assert idx == 2 == int(np.argmin(scores))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[2], b), result, best)
    for r in range(len(cands)):  # the scores are SW on the same directions
        one = jax.tree.map(lambda a: a[r], result.params)
        np.testing.assert_allclose(scores[r], sw.sliced_wasserstein(key, one, X, n_projections=64), rtol=1e-4)
    best, idx, scores = sw.select_best(result, X, "log_likelihood")
    expected = [
        np.mean(
            logsumexp(
                np.stack(
                    [np.log(w) + multivariate_normal(m, c).logpdf(X) for w, m, c in zip(*cand, strict=False)],
                    1,
                ),
                axis=1,
            )
        )
        for cand in cands
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-4)
    assert idx == int(np.argmax(expected)) == 2
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[2], b), result, best)
    with pytest.raises(ValueError, match="key"):
        sw.select_best(result, X, "sw")
    with pytest.raises(ValueError, match="criterion"):
        sw.select_best(result, X, "aic", key=key)


def test_select_best_log_likelihood_on_em_restarts(key):
    res = sw.fit_em_restarts(key, X, K, 4, sw.EMConfig(max_iter=3))
    best, idx, scores = sw.select_best(res, X, "log_likelihood")
    expected = [float(sw.log_likelihood(jax.tree.map(lambda a: a[r], res.params), X)) for r in range(4)]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert idx == int(np.argmax(expected))
    assert int(best.n_iter) == int(res.n_iter[idx])


def test_select_best_rejects_unbatched_results(key):
    result, _ = _batched_candidates()
    one = jax.tree.map(lambda a: a[0], result)  # a single fit's result: no restart axis
    for criterion in ("sw", "log_likelihood"):
        with pytest.raises(TypeError, match="batched"):
            sw.select_best(one, X, criterion, key=key)
    with pytest.raises(TypeError, match="batched"):
        sw.select_best(result.params, X, "sw", key=key)  # GMMParams has no .params field
    with pytest.raises(ValueError, match="dimension"):
        sw.select_best(result, np.ones((10, 3), np.float32), "sw", key=key)


def _with_diverged(result, bad):
    """``result`` with the restarts in ``bad`` set to NaN means (a diverged fit)."""
    means = np.array(result.params.means)
    means[list(bad)] = np.nan
    return result._replace(params=result.params._replace(means=jnp.asarray(means)))


@pytest.mark.parametrize("criterion", ["sw", "log_likelihood"])
def test_select_best_never_picks_a_diverged_restart(key, criterion):
    # Issue 13: with "sw", argmin over scores containing NaN returned the NaN restart.
    result, _ = _batched_candidates()
    best, idx, scores = sw.select_best(_with_diverged(result, [0]), X, criterion, key=key, n_projections=32)
    assert idx == 2  # the true model, as without the diverged restart
    assert np.isnan(np.asarray(scores)[0])
    assert np.all(np.isfinite(np.asarray(best.params.means)))
    idx = sw.select_best(_with_diverged(result, [2]), X, criterion, key=key, n_projections=32).restart_index
    assert idx != 2


@pytest.mark.parametrize("criterion", ["sw", "log_likelihood"])
def test_select_best_raises_when_every_restart_diverged(key, criterion):
    # Issue 13: with "log_likelihood" and all restarts NaN, index -1 came back silently.
    result, _ = _batched_candidates()
    with pytest.raises(ValueError, match=r"result: all 4 restarts have non-finite"):
        sw.select_best(_with_diverged(result, range(4)), X, criterion, key=key, n_projections=32)


@pytest.mark.parametrize(
    "kwargs,err,name",
    [
        (dict(n_projections=0), ValueError, "n_projections"),
        (dict(n_levels=0), ValueError, "n_levels"),
        (dict(p=0.5), ValueError, r"\bp must"),
        (dict(p="2"), TypeError, r"\bp must"),
        (dict(criterion="nll"), ValueError, "criterion"),
    ],
)
@pytest.mark.parametrize("criterion", ["sw", "log_likelihood"])
def test_select_best_validates_its_arguments(key, kwargs, err, name, criterion):
    result, _ = _batched_candidates()
    kwargs = {"criterion": criterion, **kwargs}
    with pytest.raises(err, match=name):
        sw.select_best(result, X, key=key, **kwargs)


def test_select_best_checks_the_batched_params_shapes(key):
    result, _ = _batched_candidates()
    bad = result._replace(params=result.params._replace(logits=result.params.logits[:, :2]))
    with pytest.raises(ValueError, match=r"result\.params\.logits must have shape \[4, 3\]"):
        sw.select_best(bad, X, "sw", key=key)


def test_select_best_returns_the_best_first_and_says_how_to_call_it(key):
    result, _ = _batched_candidates()
    sel = sw.select_best(result, X, "log_likelihood")  # no key needed for the likelihood
    assert isinstance(sel, sw.Selection) and sel._fields == ("best", "restart_index", "scores")
    assert sel.restart_index == 2 and isinstance(sel.restart_index, int)
    np.testing.assert_array_equal(sel.best.params.means, result.params.means[2])
    with pytest.raises(TypeError, match=r"select_best\(result, x, criterion, key=key\)"):
        sw.select_best(key, result, X)  # the old argument order (criterion was optional)
    with pytest.raises(TypeError, match=r"select_best\(result, x, criterion, key=key\)"):
        sw.select_best(jax.random.PRNGKey(0), result, X)
    with pytest.raises(TypeError, match="positional"):
        sw.select_best(None, result, X, "log_likelihood")
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        sw.select_best(result, X, "sw", key=0)
