"""Two processes on 127.0.0.1 (2 CPU devices each, gloo collectives) equal one process.

Each worker joins through :func:`swgmm_jax.initialize_distributed`, builds the
global 4-device mesh and computes the sharded loss, its gradient, a short fit
(projections sharded across both processes) and restarts (3 restarts on 4
devices, spread across both processes). The test process computes the same
quantities unsharded on its single device. Both workers are killed in a
``finally`` whatever happens, and every wait is bounded.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import swgmm_jax as sw

# Two worker processes (subprocesses, gloo collectives): about 100 s on 2 cores.
pytestmark = pytest.mark.slow

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TIMEOUT_S = 180

_WORKER = textwrap.dedent(
    """
    import json, sys
    import swgmm_jax as sw   # importing must not start the JAX backend
    sw.initialize_distributed(sys.argv[1], 2, int(sys.argv[2]), local_device_count=2,
                              cpu_collectives="gloo", initialization_timeout=60)
    import jax, numpy as np
    from tests_distributed_common import data, CFG, RCFG
    x, params = data()
    mesh = sw.make_projection_mesh()
    out = {"process": jax.process_index(), "n_devices": jax.device_count(),
           "n_local": jax.local_device_count()}
    loss, grad = jax.jit(jax.value_and_grad(
        lambda pr: sw.sliced_loss(jax.random.key(1), pr, x, n_projections=10, n_levels=16, mesh=mesh)
    ))(params)
    out["loss"] = float(loss)
    out["grad_means"] = np.asarray(grad.means).tolist()
    res = sw.fit(jax.random.key(2), x, 2, CFG)              # mesh="auto": all 4 devices
    out["fit_means"] = np.asarray(res.params.means).tolist()
    out["fit_loss"] = np.asarray(res.loss_history).tolist()
    rres = sw.fit_restarts(jax.random.key(3), x, 2, 3, RCFG)  # restarts across processes
    out["restart_means"] = np.asarray(rres.params.means).tolist()
    print("RESULT " + json.dumps(out), flush=True)
    jax.distributed.shutdown()
    """
)

_COMMON = textwrap.dedent(
    """
    import jax, numpy as np
    import swgmm_jax as sw
    CFG = sw.FitConfig(n_steps=20, n_projections=10, n_levels=16)
    RCFG = sw.FitConfig(n_steps=10, n_projections=8, n_levels=16)

    def data():
        rng = np.random.default_rng(0)
        x = np.concatenate([rng.normal(size=(150, 3)) - 2, rng.normal(size=(150, 3)) + 2]).astype(np.float32)
        return x, sw.initialize(jax.random.key(5), x, 2)
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    (tmp / "tests_distributed_common.py").write_text(_COMMON)
    (tmp / "worker.py").write_text(_WORKER)
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([_ROOT, str(tmp), env.get("PYTHONPATH", "")])
    address = f"127.0.0.1:{_free_port()}"
    procs, logs = [], [tmp / f"worker{pid}.log" for pid in range(2)]
    deadline = time.monotonic() + _TIMEOUT_S
    try:
        for pid in range(2):
            # Output goes to files, not pipes: a full pipe would block a worker.
            with open(logs[pid], "w") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(tmp / "worker.py"), address, str(pid)],
                        env=env,
                        cwd=str(tmp),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for p in procs:
            p.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for p in procs:  # SIGKILL: JAX's preemption notifier catches SIGTERM
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    results = []
    for p, log in zip(procs, logs, strict=False):
        text = log.read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
        assert p.returncode == 0 and lines, f"rc={p.returncode}\n{text[-3000:]}"
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    return results


@pytest.fixture(scope="module")
def reference():
    ns = {}
    exec(_COMMON, ns)
    x, params = ns["data"]()
    loss, grad = jax.jit(
        jax.value_and_grad(
            lambda pr, xx: sw.sliced_loss(jax.random.key(1), pr, xx, n_projections=10, n_levels=16)
        )
    )(params, x)
    res = sw.fit(jax.random.key(2), x, 2, ns["CFG"], mesh=None)
    rres = sw.fit_restarts(jax.random.key(3), x, 2, 3, ns["RCFG"], mesh=None)
    return dict(
        loss=float(loss),
        grad_means=np.asarray(grad.means),
        fit_means=np.asarray(res.params.means),
        fit_loss=np.asarray(res.loss_history),
        restart_means=np.asarray(rres.params.means),
    )


def test_global_mesh(workers):
    assert sorted(w["process"] for w in workers) == [0, 1]
    assert all(w["n_devices"] == 4 and w["n_local"] == 2 for w in workers)


def test_distributed_equals_single_process(workers, reference):
    for w in workers:
        np.testing.assert_allclose(w["loss"], reference["loss"], rtol=1e-5)
        np.testing.assert_allclose(w["grad_means"], reference["grad_means"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(w["fit_means"], reference["fit_means"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(w["fit_loss"], reference["fit_loss"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(w["restart_means"], reference["restart_means"], rtol=1e-4, atol=1e-5)
