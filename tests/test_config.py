"""Composed configs: flat keywords, sub-configs, pytree structure (static vs traced), validation."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

import swgmm_jax as sw


def test_defaults_usable_without_arguments():
    cfg = sw.FitConfig()
    assert cfg.n_steps == 500 and cfg.slicing == sw.SlicingConfig() and cfg.optimizer == sw.OptimizerConfig()
    assert cfg.slicing.quantile_iters == sw.QUANTILE_ITERS
    assert sw.EMConfig().max_iter == 100


def test_flat_keywords_route_to_sub_configs_and_read_back():
    cfg = sw.FitConfig(
        n_steps=7,
        learning_rate=0.3,
        n_levels=None,
        init="kmeans++",
        init_cov_scale=0.2,
        relocations=3,
        relocation_lr=0.01,
        momentum=0.5,
    )
    assert cfg.optimizer.learning_rate == 0.3 == cfg.learning_rate
    assert cfg.optimizer.momentum == 0.5
    assert cfg.slicing.n_levels is None
    assert cfg.initialization == sw.InitConfig("kmeans++", 0.2)
    assert cfg.relocation.rounds == 3 and cfg.relocation.learning_rate == 0.01 == cfg.relocation_lr
    # Sub-configs and flat keywords combine; flat keywords win over the given sub-config's field.
    cfg2 = sw.FitConfig(optimizer=sw.OptimizerConfig(learning_rate=0.1, centered=True), learning_rate=0.2)
    assert cfg2.optimizer.centered and cfg2.optimizer.learning_rate == 0.2
    # replace (and dataclasses.replace) accept both kinds of name.
    assert cfg.replace(learning_rate=0.4).optimizer == dataclasses.replace(cfg.optimizer, learning_rate=0.4)
    assert dataclasses.replace(cfg, n_projections=5).slicing.n_projections == 5
    assert cfg.replace(n_steps=9).relocation == cfg.relocation


def test_equal_configs_are_equal_and_hashable():
    assert sw.FitConfig(n_steps=30) == sw.FitConfig(n_steps=30)
    assert hash(sw.FitConfig(n_steps=30)) == hash(sw.FitConfig(n_steps=30))
    assert sw.FitConfig(n_steps=30) != sw.FitConfig(n_steps=30, learning_rate=0.1)


def test_numeric_fields_are_leaves_structure_is_static():
    cfg = sw.FitConfig(momentum=0.3)
    leaves, treedef = jax.tree.flatten(cfg)
    # reg_covar, learning_rate, lr_final_fraction, rmsprop_decay, momentum, cov_scale,
    # relocation learning_rate and temperature.
    assert sorted(leaves) == sorted([1e-6, 0.05, 0.01, 0.9, 0.3, 0.1, 0.02, 0.03])
    halved = jax.tree.unflatten(treedef, [v / 2 for v in leaves])
    assert halved.learning_rate == 0.025 and halved.n_steps == cfg.n_steps
    # A different structure (step count) is a different treedef: it compiles anew.
    assert jax.tree.structure(cfg.replace(n_steps=3)) != treedef
    assert jax.tree.structure(cfg.replace(learning_rate=1.0)) == treedef
    em_leaves = jax.tree.leaves(sw.EMConfig())
    assert sorted(em_leaves) == sorted([1e-3, 1e-6, 0.1, 0.03])


def test_traced_values_pass_through_jit_and_vmap():
    @jax.jit
    def lr_of(cfg):
        return cfg.optimizer.learning_rate * 2

    assert float(lr_of(sw.FitConfig(learning_rate=0.25))) == 0.5
    out = jax.vmap(lambda lr: sw.FitConfig(learning_rate=lr).learning_rate + 1)(jnp.arange(3.0))
    assert out.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("kwargs", "err", "name"),
    [
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": float("inf")}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
        ({"reg_covar": float("nan")}, ValueError, "reg_covar"),
        ({"rmsprop_decay": 1.0}, ValueError, "rmsprop_decay"),
        ({"p": 0.5}, ValueError, r"\bp\b"),
        ({"n_levels": 0}, ValueError, "n_levels"),
        ({"quantile_iters": 2.5}, TypeError, "quantile_iters"),
        ({"sort": "gpu"}, ValueError, "sort"),
        ({"init": "kmedoids"}, ValueError, "init"),
        ({"relocations": -1}, ValueError, "relocations"),
        ({"relocation_temperature": -0.1}, ValueError, "relocation_temperature"),
        ({"learn_weights": 1}, TypeError, "learn_weights"),
        ({"n_step": 10}, TypeError, "n_step"),
        ({"slicing": sw.OptimizerConfig()}, TypeError, "slicing"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, err, name):
    with pytest.raises(err, match=name):
        sw.FitConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tol": -1.0}, "tol"),
        ({"reg_covar": 0.0}, "reg_covar"),
        ({"init_cov_scale": float("inf")}, "init_cov_scale"),
    ],
)
def test_bad_em_settings_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sw.EMConfig(**kwargs)
