"""Metrics of the embedding study (``swgmm_jax._metrics``): component purity and fooling rate,
against hand-computed examples."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swgmm_jax._metrics import component_purity, fooling_rate


def test_component_purity_by_hand():
    # component 0: labels 3,3,3,5 -> 3/4; component 1: 2,2 -> 1; component 2: 1,4,7 -> 1/3
    comp = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    lab = np.array([3, 3, 3, 5, 2, 2, 1, 4, 7])
    mean, per = component_purity(comp, lab, 3)
    np.testing.assert_allclose(per, [0.75, 1.0, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(mean, (0.75 + 1 + 1 / 3) / 3, rtol=1e-6)
    # the same with explicit n_classes, under jit, and invariant to relabelling
    f = jax.jit(lambda c, l: component_purity(c, l, 3, n_classes=10))
    np.testing.assert_allclose(f(comp, lab)[0], mean, rtol=1e-6)
    np.testing.assert_allclose(component_purity(comp, (lab + 4) % 10, 3)[1], per, rtol=1e-6)


def test_component_purity_empty_component_and_errors():
    mean, per = component_purity(np.array([0, 0, 2]), np.array([1, 1, 0]), 4)
    assert np.isnan(per[1]) and np.isnan(per[3])
    np.testing.assert_allclose([per[0], per[2]], [1.0, 1.0])
    assert float(mean) == 1.0
    with pytest.raises(ValueError):
        component_purity(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(TypeError):
        component_purity(np.array([0.0, 1.0]), np.array([0, 1]), 2)


def test_fooling_rate_by_hand():
    rate, on_real, on_fake = fooling_rate(jnp.array([0.9, 0.8, 0.3, 0.7]), jnp.array([0.1, 0.6]))
    # real: 0.3 called fake (1/4); fake: 0.6 called real (1/2); balanced (1/4 + 1/2) / 2, not pooled 2/6
    assert float(on_real) == 0.25 and float(on_fake) == 0.5 and float(rate) == 0.375
    # perfect discriminator: 0; a constant one: 0.5; logits with threshold 0
    assert float(fooling_rate(np.ones(3), np.zeros(5))[0]) == 0.0
    assert float(fooling_rate(np.full(3, 0.7), np.full(5, 0.7))[0]) == 0.5
    assert float(fooling_rate(np.array([2.0, -1.0]), np.array([-3.0, 1.0]), threshold=0.0)[0]) == 0.5
    with pytest.raises(ValueError):
        fooling_rate(np.array([]), np.array([0.5]))
