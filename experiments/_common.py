"""Shared helpers of the experiment scripts: backend report, atomic results, resume."""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"

# The paper's numbers that the experiments reproduce (Section 4; Figure 6's table), as fractions.
PAPER = {
    "optimal_nll": {"dataset": "Ring-Square-Line, K=10, 100 random inits", "em": 0.29, "sw": 1.0},
    "purity": {"dataset": "MNIST, K=10, 128-d code", "em": 0.8048, "sw": 0.8698},
    "fooling_rate": {  # mean, std
        "MNIST": {"em": [0.2487, 0.0839], "sw": [0.4191, 0.0235]},
        "CelebA": {"em": [0.1037, 0.0322], "sw": [0.3183, 0.0124]},
        "Ring-Square-Line": {"em": [0.4683, 0.0114], "sw": [0.4756, 0.0086]},
    },
}


def describe_backend() -> dict:
    """Print and return the JAX backend and devices this run uses."""
    devices = jax.devices()
    info = {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "n_devices": len(devices),
        "jax_version": jax.__version__,
        "x64": bool(jax.config.jax_enable_x64),
    }
    print(f"JAX {info['jax_version']} backend={info['backend']} devices={info['devices']}", flush=True)
    return info


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj) -> None:
    """Atomically write ``obj`` as indented JSON (an interrupted run never leaves half a file)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def atomic_savefig(fig, path, **kwargs) -> None:
    """Atomically save a matplotlib figure (PNG)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=pathlib.Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def load_json(path, default=None):
    path = pathlib.Path(path)
    if not path.exists():
        return default
    with open(path) as f:
        return json.load(f)


def _jsonable(o):
    import numpy as np

    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# JAX's own compile-phase events (jax.monitoring): tracing, lowering to MLIR, XLA compilation.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class Timer:
    """``with Timer() as t: ...``: ``t.seconds`` of wall time, ``t.compile_seconds`` of it spent by
    JAX tracing, lowering and compiling: the union of those events' time spans (``jax.monitoring``;
    a union, because the trace of an outer ``jit`` contains the traces of the ones it calls)."""

    def _listen(self, name, start, end, **kwargs):
        if name in COMPILE_EVENTS:
            self._spans.append((start, end))

    def __enter__(self):
        self._spans = []
        jax.monitoring.register_event_time_span_listener(self._listen)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        jax.monitoring.unregister_event_time_span_listener(self._listen)
        self.compile_seconds, reach = 0.0, float("-inf")
        for start, end in sorted(self._spans):
            self.compile_seconds += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        return False


def run_info(scale: str) -> dict:
    return {"scale": scale, "argv": sys.argv, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **describe_backend()}
