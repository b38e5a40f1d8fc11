"""Frozen parameters (``freeze=``): the frozen leaves come out of every fit bit for bit."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import swgmm_jax as sw

MEANS = np.array([[0.0, 0.0], [4.0, 1.0]])
COVS = np.stack([0.5 * np.eye(2), np.array([[0.8, 0.3], [0.3, 0.4]])])
X, _ = sw.datasets.gaussian_mixture_data(120, MEANS, COVS, weights=[0.6, 0.4], seed=7)
INIT = sw.from_moments(np.array([0.3, 0.7]), np.array([[0.5, 0.0], [3.5, 1.5]]), np.stack([np.eye(2)] * 2))
FIELDS = {"weights": ("logits",), "means": ("means",), "covariances": ("scale_tril", "reg_covar")}


def _check(result, start, frozen, batched=False):
    """Frozen leaves bit-identical to ``start``'s; every other parameter moved."""
    for name, fields in FIELDS.items():
        for field in fields:
            got, want = np.asarray(getattr(result, field)), np.asarray(getattr(start, field))
            if batched and want.ndim < got.ndim:
                want = np.broadcast_to(want, got.shape)
            if name in frozen:
                assert np.array_equal(got, want), (name, field)
            elif field != "reg_covar":
                assert not np.allclose(got, want), (name, field)


def test_freeze_config_names_and_learn_weights_alias():
    assert sw.FitConfig(freeze="means").freeze == frozenset({"means"})
    assert sw.EMConfig(freeze=["means", "weights"]).freeze == frozenset({"means", "weights"})
    for cls in (sw.FitConfig, sw.EMConfig):
        with pytest.raises(ValueError, match=r"freeze may only hold \('weights', 'means', 'covariances'\)"):
            cls(freeze={"mean"})
        with pytest.raises(TypeError, match="freeze must be a set of names"):
            cls(freeze=3)
    assert sw.FitConfig(learn_weights=False).freeze == frozenset({"weights"})
    cfg = sw.FitConfig(freeze={"weights", "means"})
    assert cfg.learn_weights is False
    # learn_weights, when given, decides about the weights (so that replace() can undo either)
    assert cfg.replace(learn_weights=True).freeze == frozenset({"means"})
    assert dataclasses.replace(cfg, learn_weights=True).learn_weights is True
    assert sw.FitConfig(freeze={"weights"}, learn_weights=True).freeze == frozenset()
    assert cfg.replace(n_steps=3).freeze == cfg.freeze
    same = sw.FitConfig(freeze=("means", "weights"))
    assert cfg == same and hash(cfg) == hash(same)


SW_CFG = sw.FitConfig(n_steps=20, n_projections=8, n_levels=16, freeze={"covariances"})


def test_sw_fit_restarts_keep_frozen_covariances():
    # (fit itself: the relocation test below; a restart is a vmapped fit)
    batched = jax.tree.map(lambda a: jnp.stack([a, a]), INIT)
    many = sw.fit_restarts(jax.random.key(1), X, 2, 2, SW_CFG, batched)
    _check(many.params, batched, {"covariances"}, batched=True)


def test_sw_fit_with_relocations_keeps_frozen_means_and_weights():
    cfg = SW_CFG.replace(
        freeze={"means", "weights"},
        relocations=1,
        relocation_steps=5,
        relocation_projections=8,
        relocation_levels=16,
    )
    res = sw.fit(jax.random.key(0), X, 2, cfg, INIT)
    _check(res.params, INIT, {"means", "weights"})


def test_em_keeps_frozen_parameters():
    cfg = sw.EMConfig(max_iter=20, freeze={"means"})
    _check(sw.fit_em(jax.random.key(0), X, 2, cfg, INIT).params, INIT, {"means"})
    batched = jax.tree.map(lambda a: jnp.stack([a, a]), INIT)
    _check(
        sw.fit_em_restarts(jax.random.key(0), X, 2, 2, cfg, batched).params, batched, {"means"}, batched=True
    )
    cfg = sw.EMConfig(max_iter=20, relocations=1, freeze={"covariances", "weights"})
    _check(sw.fit_em(jax.random.key(0), X, 2, cfg, INIT).params, INIT, {"covariances", "weights"})


def test_em_step_with_frozen_means_against_numpy(x64):
    """The M-step given frozen means: the covariances are the responsibility-weighted scatter about them."""
    x = X.astype(np.float64)
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(INIT))
    step = jax.jit(sw.em_step, static_argnames="freeze")
    (w2, m2, c2), _ = step(jnp.asarray(x), (w, m, c), 1e-6, freeze=frozenset({"means"}))
    dens = np.stack([w[k] * stats.multivariate_normal(m[k], c[k]).pdf(x) for k in range(2)], axis=1)
    resp = dens / dens.sum(axis=1, keepdims=True)
    nk = resp.sum(axis=0)
    covs = np.stack([(resp[:, k, None] * (x - m[k])).T @ (x - m[k]) / nk[k] for k in range(2)])
    assert np.array_equal(m2, m)
    np.testing.assert_allclose(c2, covs + 1e-6 * np.eye(2), rtol=1e-9)
    np.testing.assert_allclose(w2, nk / nk.sum(), rtol=1e-10)


@pytest.mark.slow
def test_fit_robust_keeps_frozen_means():
    res = sw.fit_robust(
        jax.random.key(0),
        X,
        2,
        SW_CFG.replace(freeze={"means"}),
        sw.EMConfig(max_iter=20, freeze={"means"}),
        n_restarts=2,
    )
    assert np.array_equal(res.em_result.params.means, res.sw_result.params.means)
    assert np.array_equal(res.params.means, res.sw_result.params.means[res.restart_index])
    assert not np.allclose(res.em_result.params.scale_tril, res.sw_result.params.scale_tril)
