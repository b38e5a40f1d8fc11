"""Sharded projections and restarts equal the unsharded computation.

The test process has 2 CPU devices (``jax_num_cpu_devices`` in conftest.py).
The directions and levels are drawn outside ``shard_map`` from the same key
as the unsharded :func:`swgmm_jax.sliced_loss`, so the results must agree to
float32 rounding, whether or not the mesh size divides the number of
projections or restarts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import swgmm_jax as sw
from swgmm_jax._mesh import resolve_mesh


def maxdiff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def mesh():
    return sw.make_projection_mesh()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(150, 3)) - 2, rng.normal(size=(150, 3)) + 2]).astype(np.float32)
    return x, sw.initialize(jax.random.key(5), x, 2)


def test_four_devices_seen(mesh):
    assert jax.device_count() == 2
    assert mesh.size == 2


# L = 8: divisible by 2 devices, all n midpoint levels; L = 9: padded to 10 with a masked slice.
@pytest.mark.parametrize(("n_proj", "n_levels"), [(8, None), (9, 16)])
def test_sharded_loss_and_grad_match(mesh, data, n_proj, n_levels):
    x, params = data
    key = jax.random.key(1)
    kw = dict(n_projections=n_proj, n_levels=n_levels, quantile_iters=10)

    def loss(m):
        return jax.jit(jax.value_and_grad(lambda pr: sw.sliced_loss(key, pr, x, sort="xla", mesh=m, **kw)))(
            params
        )

    ref, shd = loss(None), loss(mesh)
    np.testing.assert_allclose(shd[0], ref[0], rtol=1e-5)
    # Gradients are not multiplied by the device count (params are replicated
    # inputs, not values created inside shard_map).
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(ref[1]))
    assert maxdiff(ref[1], shd[1]) <= 1e-5 * max(scale, 1.0)
    # The validated entry point takes the same mesh argument.
    np.testing.assert_allclose(sw.sliced_wasserstein(key, params, x, mesh=mesh, **kw), ref[0], rtol=1e-5)


def test_sharded_fit_matches_unsharded(mesh, data):
    x, _ = data
    cfg = sw.FitConfig(n_steps=50, n_projections=9, n_levels=16)
    ref = sw.fit(jax.random.key(2), x, 2, cfg, mesh=None)  # host sort, one device
    shd = sw.fit(jax.random.key(2), x, 2, cfg, mesh=mesh)
    assert maxdiff(ref.params, shd.params) < 1e-4
    assert maxdiff(ref.loss_history, shd.loss_history) < 1e-4
    assert shd.params.means.sharding.is_fully_replicated


def test_sharded_restarts_match_unsharded(mesh, data):
    x, _ = data
    # random_from_data: the k-means init under a mesh is covered by the test above; this one's
    # compiles in half the time.
    cfg = sw.FitConfig(n_steps=20, n_projections=8, n_levels=16, init="random_from_data")
    ref = sw.fit_restarts(jax.random.key(3), x, 2, 5, cfg, mesh=None)
    shd = sw.fit_restarts(jax.random.key(3), x, 2, 5, cfg, mesh=mesh)  # 5 restarts on 2 devices
    assert shd.params.means.shape == (5, 2, 3)
    assert maxdiff(ref.params, shd.params) < 1e-4
    assert maxdiff(ref.loss_history, shd.loss_history) < 1e-4


@pytest.mark.slow
def test_sharded_relocations_match_unsharded(mesh, data):
    x, _ = data
    cfg = sw.FitConfig(
        n_steps=20,
        n_projections=8,
        n_levels=16,
        relocations=2,
        relocation_steps=10,
        relocation_projections=9,
        relocation_levels=16,
        init="random_from_data",  # as above
    )
    ref = sw.fit(jax.random.key(4), x, 2, cfg, mesh=None)
    shd = sw.fit(jax.random.key(4), x, 2, cfg, mesh=mesh)
    np.testing.assert_array_equal(ref.relocation_accepted, shd.relocation_accepted)
    np.testing.assert_allclose(ref.relocation_sw, shd.relocation_sw, rtol=1e-5)
    assert maxdiff(ref.params, shd.params) < 1e-4


def test_host_sort_rejected_when_sharded(mesh, data):
    x, params = data
    with pytest.raises(ValueError, match="sort='host'"):
        sw.fit(jax.random.key(2), x, 2, sw.FitConfig(n_steps=5, sort="host"), mesh=mesh)
    with pytest.raises(ValueError, match="sort='host'"):
        sw.sliced_wasserstein(jax.random.key(2), params, x, sort="host", mesh=mesh)


def test_mesh_argument_means_the_same_everywhere(mesh):
    one = sw.make_projection_mesh(jax.devices()[:1])
    assert one.size == 1
    assert resolve_mesh(one) is None
    assert resolve_mesh(None) is None
    assert resolve_mesh(mesh) is mesh
    # Several CPU devices of one process: the host sort beats sharding, so "auto" stays unsharded.
    assert resolve_mesh("auto") is None
    with pytest.raises(ValueError, match="mesh"):
        resolve_mesh("everything")
    with pytest.raises(TypeError, match="mesh"):
        resolve_mesh(4)


def test_sharded_loss_one_device_equals_unsharded(key):
    # The padding path (L = 3 on a mesh of 1 device, passed explicitly) reduces to the plain mean.
    x = jax.random.normal(key, (50, 2))
    params = sw.initialize(jax.random.key(1), x, 2)
    mesh = sw.make_projection_mesh(jax.devices()[:1])
    kw = dict(n_projections=3, n_levels=8, sort="xla")
    a = jax.jit(lambda pr, xx: sw.sliced_loss(jax.random.key(2), pr, xx, mesh=mesh, **kw))(params, x)
    b = jax.jit(lambda pr, xx: sw.sliced_loss(jax.random.key(2), pr, xx, **kw))(params, x)
    np.testing.assert_allclose(a, b, rtol=1e-6)
