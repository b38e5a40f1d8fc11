"""Shared test configuration.

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
from _helpers import DEGENERATE


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
