"""Tests of experiments/energy_landscape.py: minimum counter, exact W2 energies, smoke run."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, stats

from experiments import energy_landscape as el

# Experiment code (outside the package) is not held to strict rank promotion.
pytestmark = pytest.mark.usefixtures("allow_rank_promotion")

_wm_mixture = jax.jit(el.wm_energy_mixture)
_wm_gaussian = jax.jit(el.wm_energy_gaussian)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------- local minima


def test_local_minima_1d():
    e = np.array([3.0, 1.0, 2.0, 0.5, 0.7, 0.7, 0.2, 4.0, 4.0, 5.0])
    # 1.0 at 1 and 0.5 at 3 are strict minima; the plateau 0.7, 0.7 is not;
    # 0.2 at 6 is; index 0 and 9 are edges.
    assert np.flatnonzero(el.local_minima(e)).tolist() == [1, 3, 6]
    # The edge point 3.0 is above its neighbour; with a falling edge it would count.
    e2 = np.array([0.0, 1.0, 0.5, 2.0])
    assert np.flatnonzero(el.local_minima(e2)).tolist() == [2]
    assert np.flatnonzero(el.local_minima(e2, include_boundary=True)).tolist() == [0, 2]


def test_local_minima_1d_nan_and_ties():
    e = np.array([5.0, 1.0, np.nan, 0.0, 0.0, 3.0])
    # NaN neither blocks its neighbour nor counts; the tie 0.0, 0.0 is not strict.
    assert np.flatnonzero(el.local_minima(e)).tolist() == [1]


def test_local_minima_2d_eight_neighbourhood():
    x = np.linspace(-2, 2, 9)
    e = np.add.outer(x**2, x**2)  # one bowl, minimum at the centre (4, 4)
    assert np.argwhere(el.local_minima(e)).tolist() == [[4, 4]]
    # A diagonal neighbour below the centre: the centre is no longer a minimum
    # in the 8-neighbourhood (it would be in the 4-neighbourhood).
    e2 = e.copy()
    e2[5, 5] = -1.0
    assert np.argwhere(el.local_minima(e2)).tolist() == [[5, 5]]
    # Two separate wells plus one on the edge (reported only on request).
    e3 = np.ones((7, 7))
    e3[2, 2], e3[4, 5], e3[0, 3] = 0.0, 0.5, -1.0
    assert np.argwhere(el.local_minima(e3)).tolist() == [[2, 2], [4, 5]]
    assert np.argwhere(el.local_minima(e3, include_boundary=True)).tolist() == [[0, 3], [2, 2], [4, 5]]
    with pytest.raises(ValueError):
        el.local_minima(np.zeros((2, 2, 2)))


def test_swap_orbits_and_symmetry():
    assert el.swap_orbits([(1, 5), (5, 1), (3, 3), (2, 4)]) == 3
    x = np.linspace(-1, 1, 5)
    sym = np.add.outer(x**2, x**2) + np.multiply.outer(x, x)
    assert el.is_swap_symmetric(sym)
    asym = sym + np.add.outer(x, 0 * x)
    assert not el.is_swap_symmetric(asym)


# --------------------------------------------------------------------------- exact W2 energies


def _w2_oracle(y_sorted, weights, means, scales):
    """int_0^1 (Q(z) - y_(ceil(zN)))^2 dz by scipy quadrature and brentq quantiles."""

    def cdf(t):
        return sum(
            w * 0.5 * math.erfc(-(t - m) / (s * math.sqrt(2)))
            for w, m, s in zip(weights, means, scales, strict=False)
        )

    def q(z):
        return optimize.brentq(lambda t: cdf(t) - z, -60, 60, xtol=1e-14, rtol=1e-14)

    n = len(y_sorted)
    total = 0.0
    for i, yi in enumerate(y_sorted):
        val, _ = integrate.quad(
            lambda z: (q(z) - yi) ** 2, i / n, (i + 1) / n, epsabs=1e-12, epsrel=1e-10, limit=200
        )
        total += val
    return total


def test_wm_energy_mixture_against_quadrature(x64):
    y = np.sort(np.array([-2.1, -0.3, 0.4, 1.7, 3.2]))
    w, m, s = (0.3, 0.7), (-1.0, 1.5), (0.6, 1.2)
    got = _wm_mixture(jnp.asarray(y), jnp.log(jnp.asarray(w)), jnp.asarray(m), jnp.asarray(s))
    assert float(got) == pytest.approx(_w2_oracle(y, w, m, s), rel=1e-7, abs=1e-9)


def test_wm_energy_gaussian_closed_form(x64):
    y = np.sort(np.array([-1.3, -0.2, 0.1, 0.9, 2.0, 2.2]))
    for mu in (-1.0, 0.0, 0.7):
        got = _wm_gaussian(jnp.asarray(y), mu, 0.8)
        assert float(got) == pytest.approx(_w2_oracle(y, (1.0,), (mu,), (0.8,)), rel=1e-7, abs=1e-9)
        # The mixture path with one component agrees with the closed form.
        mix = _wm_mixture(jnp.asarray(y), jnp.zeros(1), jnp.array([mu]), jnp.array([0.8]))
        assert float(mix) == pytest.approx(float(got), rel=1e-10, abs=1e-12)


def test_wm_energy_gaussian_limit(x64):
    # Samples at the exact N(0, 1) quantiles: W2^2 to N(mu, 1) tends to mu^2
    # (closed-form W2 between Gaussians).
    n = 4000
    y = stats.norm.ppf((np.arange(n) + 0.5) / n)
    for mu in (0.0, 1.0, -2.5):
        got = float(_wm_gaussian(jnp.asarray(y), mu, 1.0))
        assert got == pytest.approx(mu**2, abs=2e-3)


# --------------------------------------------------------------------------- smoke run


def test_main_smoke(tmp_path):
    before = bool(jax.config.jax_enable_x64)
    args = ["--out", str(tmp_path), "--grid", "21", "--grid-1d", "41", "--n-samples", "200", "--seed", "3"]
    res = el.main([*args, "--no-midpoint-check"])
    assert bool(jax.config.jax_enable_x64) == before  # x64 is scoped to the run
    path = tmp_path / "energy_landscape.json"
    on_disk = json.loads(path.read_text())
    assert (tmp_path / "energy_landscape.png").stat().st_size > 0
    for key in ("run", "settings", "seed", "grid_sizes", "grid_ranges", "counts", "scenario_a", "scenario_b"):
        assert key in on_disk
    assert on_disk["grid_sizes"] == {"a": 41, "b": [21, 21]}
    for sc in ("a", "b"):
        for k in ("nll", "wm"):
            assert set(on_disk["counts"][sc][k]) == {"raw", "modulo_swap", "boundary_minima"}
            assert on_disk["counts"][sc][k]["raw"] >= 1
    assert on_disk["run"]["x64"] is True

    # WM at the true means is the grid minimum up to grid resolution.
    b = res["scenario_b"]
    spacing = b["spacing"]
    truth = np.asarray(res["settings"]["means_b"])
    assert np.max(np.abs(np.asarray(b["argmin"]["wm"]) - truth)) <= spacing + 1e-9
    assert b["minima"]["wm"]["minima"][0]["kind"] == "truth"
    # (a): both energies are minimised at the sample mean, to grid resolution.
    a = res["scenario_a"]
    step_a = (res["grid_ranges"]["a"][1] - res["grid_ranges"]["a"][0]) / 40
    for k in ("nll", "wm"):
        assert abs(a["argmin"][k] - a["sample_mean"]) <= step_a / 2 + 1e-9
    # The NLL surface's formula agrees with the package's log-likelihood.
    nat = b["nll_at_truth"]
    assert nat["surface_formula"] == pytest.approx(nat["sw.log_likelihood"], rel=1e-10)
