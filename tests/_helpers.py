"""Shared test data and utilities."""

import contextlib

import jax
import numpy as np

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations(events=(COMPILE_EVENT,)):
    """Collects the names of JAX trace / compile events (jax.monitoring) inside the block."""
    seen = []

    def listener(name, duration, **kwargs):
        if name in events:
            seen.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _degenerate_sets():
    # All [120, 3], so that each fit compiles once for the four of them.
    rng = np.random.default_rng(12345)
    base = rng.normal(size=(40, 3))
    t = rng.normal(size=(120, 1))
    outlier = np.concatenate([rng.normal(size=(119, 3)), [[1e4, -1e4, 1e4]]])
    return {
        "duplicated": np.repeat(base, 3, axis=0),
        "identical": np.tile([[1.5, -2.0, 3.0]], (120, 1)),
        "line_in_3d": np.array([1.0, -2.0, 0.5]) + t * np.array([[0.6, 0.8, 0.0]]),
        "far_outlier": outlier,
    }


# Degenerate but valid data (float64; tests cast to float32 where they need it).
DEGENERATE = _degenerate_sets()
