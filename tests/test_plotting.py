"""swgmm_jax.plotting: one ellipse per component of a 2-D mixture, on any Axes, headless."""

import jax
import numpy as np
import pytest

import swgmm_jax as sw

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402  (no backend needed)
from matplotlib.patches import Ellipse  # noqa: E402

from swgmm_jax import plotting  # noqa: E402

WEIGHTS = np.array([0.2, 0.3, 0.5])
MEANS = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
COVS = np.stack([0.4 * np.eye(2), np.diag([1.0, 0.2]), np.array([[0.5, 0.3], [0.3, 0.5]])])


def _axes():
    return Figure().add_subplot()


def test_draws_one_ellipse_per_component():
    params = sw.from_moments(WEIGHTS, MEANS, COVS)
    x = np.random.default_rng(0).normal(size=(50, 2))
    ax = _axes()
    patches = plotting.plot_gmm(ax, params, x, n_std=2.0)
    assert len(patches) == 3 and len(ax.patches) == 3
    assert all(isinstance(p, Ellipse) for p in ax.patches)
    assert len(ax.collections) == 1  # the data scatter
    for p, m, c in zip(patches, MEANS, COVS, strict=True):
        np.testing.assert_allclose(p.center, m, atol=1e-5)
        lam = np.linalg.eigvalsh(c)
        np.testing.assert_allclose([p.width, p.height], 4.0 * np.sqrt(lam[::-1]), rtol=1e-4)
    # The heavier the component, the more opaque and the thicker its ellipse.
    assert patches[0].get_alpha() < patches[1].get_alpha() < patches[2].get_alpha()
    assert patches[0].get_linewidth() < patches[2].get_linewidth()
    # The major axis of the correlated component points along the diagonal.
    assert patches[2].angle % 180 == pytest.approx(45.0, abs=1e-3)


def test_several_levels_and_no_data():
    params = sw.from_moments(WEIGHTS, MEANS, COVS)
    ax = _axes()
    patches = plotting.plot_gmm(ax, params, n_std=(1.0, 2.0), by_weight=False, mark_means=True)
    assert len(patches) == 6 and len(ax.patches) == 6
    assert patches[1].width == pytest.approx(2 * patches[0].width)
    assert {p.get_alpha() for p in patches} == {1.0}
    assert len(ax.collections) == 1  # the means, no data


def test_rejects_what_is_not_one_2d_mixture():
    ax = _axes()
    three_d = sw.from_moments(np.ones(2), np.zeros((2, 3)), np.stack([np.eye(3)] * 2))
    with pytest.raises(ValueError, match=r"\[K, 2\]"):
        plotting.plot_gmm(ax, three_d)
    one_d = sw.from_moments(np.ones(2), np.zeros((2, 1)), np.ones((2, 1, 1)))
    with pytest.raises(ValueError, match=r"\[K, 2\]"):
        plotting.plot_gmm(ax, one_d)
    two_d = sw.from_moments(WEIGHTS, MEANS, COVS)
    restarts = jax.tree.map(lambda a: np.stack([a, a]), two_d)
    with pytest.raises(ValueError, match="restarts"):
        plotting.plot_gmm(ax, restarts)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        plotting.plot_gmm(ax, two_d, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="n_std"):
        plotting.plot_gmm(ax, two_d, n_std=0.0)
    assert not ax.patches


# ---------------------------------------------------------------- loss curves and restart histograms
def test_plot_loss_single_and_restarts():
    ax = _axes()
    (line,) = plotting.plot_loss(ax, np.array([3.0, 2.0, 1.0]))
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 2.0, 1.0])
    losses = np.random.default_rng(1).uniform(0.5, 2.0, size=(7, 12))
    line, band = plotting.plot_loss(_axes(), losses)
    np.testing.assert_allclose(line.get_ydata(), np.median(losses, axis=0))
    # The band's polygon spans the interquartile range at every step.
    verts = band.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(verts.min(), np.percentile(losses, 25, axis=0).min())
    np.testing.assert_allclose(verts.max(), np.percentile(losses, 75, axis=0).max())


def test_plot_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="loss_history"):
        plotting.plot_loss(_axes(), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="log=False"):
        plotting.plot_loss(_axes(), np.array([-1.0, 2.0]))
    (line,) = plotting.plot_loss(_axes(), np.array([-1.0, 2.0]), log=False)
    assert line.axes.get_yscale() == "linear"


def test_restart_histograms_clip_the_tail_into_the_last_bin():
    ax = _axes()
    values = {"a": np.r_[np.linspace(0.0, 1.0, 99), 1e6], "b": np.array([0.5, np.nan, 0.6])}
    patches = plotting.plot_restart_histograms(ax, values, bins=10, upper_percentile=99.0)
    assert len(patches) == 2
    lo, hi = ax.get_xlim()
    assert hi < 100  # the 1e6 restart did not stretch the axis
    with pytest.raises(ValueError, match="finite"):
        plotting.plot_restart_histograms(_axes(), {"a": [np.nan]})
    with pytest.raises(ValueError, match="at least one"):
        plotting.plot_restart_histograms(_axes(), {})
