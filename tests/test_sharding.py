"""Sharded projections and restarts equal the unsharded computation.

The multi-device checks run in one subprocess with 4 CPU devices
(``--xla_force_host_platform_device_count``), so that every other test keeps
its single device. The directions and levels are drawn outside ``shard_map``
from the same key as :func:`swgmm_jax.sliced_loss`, so the results must agree
to float32 rounding, whether or not the mesh size divides the number of
projections or restarts.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import swgmm_jax as sw

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent(
    """
    import json, os, time
    t0 = time.time()
    import jax, jax.numpy as jnp, numpy as np
    import swgmm_jax as sw

    def maxdiff(a, b):
        return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
                   for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    out = {"n_devices": jax.device_count()}
    mesh = sw.make_projection_mesh()
    out["mesh_size"] = mesh.size
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(150, 3)) - 2, rng.normal(size=(150, 3)) + 2]).astype(np.float32)
    params = sw.initialize(jax.random.key(5), x, 2)
    key = jax.random.key(1)
    # L = 8: divisible by 4 devices, all n midpoint levels;
    # L = 10: padded to 12 with masked slices, stratified levels.
    for n_proj, n_levels in ((8, None), (10, 16)):
        kw = dict(n_projections=n_proj, n_levels=n_levels, quantile_iters=10)
        ref = jax.jit(jax.value_and_grad(lambda pr: sw.sliced_loss(pr, x, key, sort="xla", **kw)))(params)
        shd = jax.jit(jax.value_and_grad(lambda pr: sw.sharded_sliced_loss(pr, x, key, mesh, **kw)))(params)
        out[f"loss_{n_proj}"] = [float(ref[0]), float(shd[0])]
        out[f"grad_{n_proj}"] = [maxdiff(ref[1], shd[1]), max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(ref[1]))]

    cfg = sw.FitConfig(n_steps=50, n_projections=10, n_levels=16)
    ref = sw.fit(jax.random.key(2), x, 2, cfg, mesh=None)   # host sort, one device
    shd = sw.fit(jax.random.key(2), x, 2, cfg)              # mesh="auto": 4 devices
    out["fit_params"] = maxdiff(ref.params, shd.params)
    out["fit_loss"] = maxdiff(ref.loss_history, shd.loss_history)
    out["fit_replicated"] = shd.params.means.sharding.is_fully_replicated

    rcfg = sw.FitConfig(n_steps=20, n_projections=8, n_levels=16)
    ref = sw.fit_restarts(jax.random.key(3), x, 2, 6, rcfg, mesh=None)
    shd = sw.fit_restarts(jax.random.key(3), x, 2, 6, rcfg)  # 6 restarts on 4 devices
    out["restarts_shape"] = list(shd.params.means.shape)
    out["restarts_params"] = maxdiff(ref.params, shd.params)
    out["restarts_loss"] = maxdiff(ref.loss_history, shd.loss_history)

    ccfg = sw.FitConfig(n_steps=20, n_projections=8, n_levels=16, relocations=2, relocation_steps=10,
                        relocation_projections=10, relocation_levels=16)
    ref = sw.fit(jax.random.key(4), x, 2, ccfg, mesh=None)
    shd = sw.fit(jax.random.key(4), x, 2, ccfg)
    out["reloc_params"] = maxdiff(ref.params, shd.params)
    out["reloc_sw"] = [np.asarray(ref.relocation_sw).tolist(), np.asarray(shd.relocation_sw).tolist()]
    out["reloc_accepted"] = [np.asarray(ref.relocation_accepted).tolist(), np.asarray(shd.relocation_accepted).tolist()]

    try:
        sw.fit(jax.random.key(2), x, 2, sw.FitConfig(n_steps=5, sort="host"))
        out["host_sort_error"] = None
    except ValueError as e:
        out["host_sort_error"] = str(e)
    out["seconds"] = time.time() - t0
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def four_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, cwd=_ROOT, capture_output=True, text=True, timeout=240
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_four_devices_seen(four_devices):
    assert four_devices["n_devices"] == 4
    assert four_devices["mesh_size"] == 4


@pytest.mark.parametrize("n_proj", [8, 10])
def test_sharded_loss_and_grad_match(four_devices, n_proj):
    ref, shd = four_devices[f"loss_{n_proj}"]
    np.testing.assert_allclose(shd, ref, rtol=1e-5)
    err, scale = four_devices[f"grad_{n_proj}"]
    # Gradients are not multiplied by the device count (params are replicated
    # inputs, not values created inside shard_map).
    assert err <= 1e-5 * max(scale, 1.0)


def test_sharded_fit_matches_unsharded(four_devices):
    assert four_devices["fit_params"] < 1e-4
    assert four_devices["fit_loss"] < 1e-4
    assert four_devices["fit_replicated"]


def test_sharded_restarts_match_unsharded(four_devices):
    assert four_devices["restarts_shape"] == [6, 2, 3]
    assert four_devices["restarts_params"] < 1e-4
    assert four_devices["restarts_loss"] < 1e-4


def test_sharded_relocations_match_unsharded(four_devices):
    ref_acc, shd_acc = four_devices["reloc_accepted"]
    assert ref_acc == shd_acc
    np.testing.assert_allclose(*four_devices["reloc_sw"], rtol=1e-5)
    assert four_devices["reloc_params"] < 1e-4


def test_host_sort_rejected_when_sharded(four_devices):
    assert "sort='host'" in (four_devices["host_sort_error"] or "")


def test_single_device_mesh_is_unsharded():
    assert sw.make_projection_mesh(jax.devices()[:1]).size == 1
    from swgmm_jax._sharding import resolve_mesh

    assert resolve_mesh(sw.make_projection_mesh(jax.devices()[:1])) is None
    if jax.device_count() == 1:
        assert resolve_mesh("auto") is None
    with pytest.raises(ValueError, match="mesh"):
        resolve_mesh("everything")


def test_sharded_loss_one_device_equals_unsharded(key):
    # The padding path (L = 3 on a mesh of 1) reduces to the plain mean.
    x = jax.random.normal(key, (50, 2))
    params = sw.initialize(jax.random.key(1), x, 2)
    mesh = sw.make_projection_mesh(jax.devices()[:1])
    a = jax.jit(lambda pr, xx: sw.sharded_sliced_loss(pr, xx, jax.random.key(2), mesh, n_projections=3, n_levels=8))(
        params, x
    )
    b = jax.jit(lambda pr, xx: sw.sliced_loss(pr, xx, jax.random.key(2), n_projections=3, n_levels=8, sort="xla"))(
        params, x
    )
    np.testing.assert_allclose(a, b, rtol=1e-6)
