"""Multi-process SW-GMM fit: one process per host, the same script on every host.

Every process runs the same program on the same data (here, generated from the
same seed). ``swgmm_jax.initialize_distributed`` joins the processes, after
which ``jax.devices()`` is the global device list, ``fit`` shards each step's
projections over all of them and ``fit_restarts`` spreads the restarts.

On a cluster (one command per host, from the repository root, process ids
0..P-1; process 0's host runs the coordinator)::

    python -m experiments.launch_multihost --coordinator HOST0:12345 \\
        --num-processes P --process-id I
    # or: SWGMM_COORDINATOR=HOST0:12345 SWGMM_NUM_PROCESSES=P SWGMM_PROCESS_ID=I \\
    #     python -m experiments.launch_multihost

On one machine, for trying it out (CPU, gloo collectives, 2 devices each)::

    python -m experiments.launch_multihost --spawn 2 --local-devices 2

With ``--spawn``, the launching process writes the workers' results to
``results/multihost.json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from experiments import _common  # does not import JAX


def _worker(args) -> None:
    import swgmm_jax as sw  # importing does not start the backend

    sw.initialize_distributed(
        args.coordinator,
        args.num_processes,
        args.process_id,
        local_device_count=args.local_devices,
        cpu_collectives=args.cpu_collectives,
        initialization_timeout=args.init_timeout,
    )
    import jax
    import numpy as np

    rng = np.random.default_rng(0)  # same seed on every process: same data
    centres = rng.normal(scale=4.0, size=(args.k, args.d))
    x = (centres[rng.integers(args.k, size=args.n)] + rng.normal(size=(args.n, args.d))).astype(np.float32)
    cfg = sw.FitConfig(n_steps=args.steps, n_projections=args.projections, n_levels=64)
    out = {
        "process": jax.process_index(),
        "n_processes": jax.process_count(),
        "devices": [str(d) for d in jax.devices()],
        "local_devices": [str(d) for d in jax.local_devices()],
    }
    log = lambda msg: print(f"[process {jax.process_index()}] {msg}", file=sys.stderr, flush=True)
    log(f"{jax.device_count()} devices, {jax.local_device_count()} local; fit")
    t0 = time.perf_counter()
    res = sw.fit(jax.random.key(1), x, args.k, cfg)
    jax.block_until_ready(res)
    out["fit_seconds"] = time.perf_counter() - t0
    out["final_loss"] = float(np.asarray(res.loss_history)[-10:].mean())
    log(f"fit {out['fit_seconds']:.1f} s; restarts")
    t0 = time.perf_counter()
    rres = sw.fit_restarts(jax.random.key(2), x, args.k, args.restarts, cfg)
    jax.block_until_ready(rres)
    out["restarts_seconds"] = time.perf_counter() - t0
    out["restart_final_losses"] = np.asarray(rres.loss_history)[:, -10:].mean(axis=1).tolist()
    print("RESULT " + json.dumps(out), flush=True)
    jax.distributed.shutdown()


def _spawn(args) -> int:
    """Start ``args.spawn`` workers on 127.0.0.1; kill them all on any exit."""
    info = _common.run_info("spawn", backend=False)  # the backends are the workers'
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    # Workers run this module from the repository root, like any experiment (python -m).
    base = [
        sys.executable,
        "-m",
        "experiments.launch_multihost",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        str(args.spawn),
    ]
    for name in ("local_devices", "n", "d", "k", "steps", "projections", "restarts", "init_timeout"):
        base += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    procs, logs = [], []
    deadline = time.monotonic() + args.timeout
    try:
        for pid in range(args.spawn):
            # Output goes to files, not pipes: a full pipe would block a worker.
            logs.append(tempfile.NamedTemporaryFile("w+", prefix=f"swgmm_worker{pid}_", suffix=".log"))
            procs.append(
                subprocess.Popen(
                    base + ["--process-id", str(pid)],
                    env=env,
                    cwd=_common.ROOT,
                    stdout=logs[-1],
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
    for pid, (p, log) in enumerate(zip(procs, logs, strict=True)):
        log.seek(0)
        text = log.read()
        lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
        if p.returncode != 0 or not lines:
            print(f"process {pid} failed (rc={p.returncode}):\n{text[-3000:]}", file=sys.stderr)
            return 1
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    info.finish()
    _common.atomic_write_json(
        args.out or _common.result_path("multihost"), {"argv": sys.argv, "run": info, "processes": results}
    )
    print(json.dumps(results[0], indent=1))
    return 0


def main(argv=None) -> int:
    ap = _common.argument_parser(__doc__)
    ap.add_argument("--spawn", type=int, default=0, help="start this many local processes on 127.0.0.1")
    ap.add_argument("--coordinator", default=None, help="host:port of process 0 (or SWGMM_COORDINATOR)")
    ap.add_argument("--num-processes", type=int, default=None)
    ap.add_argument("--process-id", type=int, default=None)
    ap.add_argument("--local-devices", type=int, default=None, help="CPU devices per process (CPU only)")
    ap.add_argument("--cpu-collectives", default="gloo")
    ap.add_argument("--init-timeout", type=int, default=120)
    ap.add_argument(
        "--timeout", type=float, default=600, help="--spawn: seconds before the workers are killed"
    )
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=8)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--projections", type=int, default=16)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--out", default=None, help="--spawn: results JSON (default results/multihost.json)")
    args = ap.parse_args(argv)
    if args.spawn:
        return _spawn(args)
    _worker(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
