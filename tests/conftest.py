"""Shared test configuration.

Strict JAX settings for the whole run (as equinox's and optimistix's test suites):

* ``jax_num_cpu_devices = 2``: the sharding tests run in this process on a
  2-device mesh (4 CPU devices slowed every other test's execution 1.6x on
  2 cores); meshes are explicit (``mesh="auto"`` stays unsharded on CPU).
* ``jax_numpy_rank_promotion = "raise"``: no implicit broadcasting between
  arrays of different ranks in the package.
* warnings raised from ``swgmm_jax`` are errors (``filterwarnings`` in pyproject.toml).

Fixtures:

* ``key``: a fresh PRNG key per test.
* ``x64``: runs a test with 64-bit types enabled (``jax.enable_x64``), so that
  float64 oracles can be compared at ~1e-10 without switching x64 on for the
  float32 tests that share the process.
* ``degenerate_x``: degenerate but valid float32 data sets (duplicates,
  identical points, points on a line in 3D, a far outlier).
"""

import jax
import numpy as np
import pytest

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_numpy_rank_promotion", "raise")

from _helpers import DEGENERATE  # noqa: E402  (after the settings, before any computation)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled CPU executable keeps its own memory mappings; a pytest-xdist
    worker that runs hundreds of modules' programs reached the kernel's limit of
    mappings per process (``vm.max_map_count`` = 65530 here), and XLA's LLVM
    backend then failed with "Cannot allocate memory" (a segfault or abort of
    the worker in a full run). Tests within a module still share compilations.
    """
    yield
    jax.clear_caches()


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(params=sorted(DEGENERATE))
def degenerate_x(request):
    return request.param, DEGENERATE[request.param].astype(np.float32)


@pytest.fixture
def allow_rank_promotion():
    """For tests of experiment code (outside the package), which is not held to strict promotion."""
    with jax.numpy_rank_promotion("allow"):
        yield
