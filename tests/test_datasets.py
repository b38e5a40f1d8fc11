"""Data generators (``swgmm_jax.datasets``): shapes, dtypes, seeding, and the mixture's moments."""

import jax
import numpy as np
import pytest

import swgmm_jax as sw


def test_ring_square_line_shape_dtype_and_seed():
    x = sw.datasets.ring_square_line()
    assert x.shape == (850, 2) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, sw.datasets.ring_square_line(seed=0))
    assert not np.array_equal(x, sw.datasets.ring_square_line(seed=1))
    assert sw.datasets.ring_square_line(n=101, seed=3).shape == (101, 2)


def test_ring_square_line_geometry():
    """Without noise: 40% on the unit circle around (-2, 0), 40% on the outline of the square
    [1.2, 2.8] x [-0.8, 0.8], 20% on the segment y = 0 between them."""
    x = sw.datasets.ring_square_line(n=1000, seed=2, noise=0.0).astype(np.float64)
    on_ring = np.abs(np.hypot(x[:, 0] + 2.0, x[:, 1]) - 1.0) < 1e-5
    inside = (np.abs(x[:, 0] - 2.0) <= 0.8 + 1e-5) & (np.abs(x[:, 1]) <= 0.8 + 1e-5)
    edge = np.minimum(0.8 - np.abs(x[:, 0] - 2.0), 0.8 - np.abs(x[:, 1]))
    on_square = inside & (np.abs(edge) < 1e-5)
    on_line = (np.abs(x[:, 1]) < 1e-6) & (x[:, 0] >= -1.0 - 1e-6) & (x[:, 0] <= 1.2 + 1e-6)
    assert np.all(on_ring | on_square | on_line)
    assert (on_ring.sum(), on_square.sum()) == (400, 400)
    with pytest.raises(ValueError, match="n"):
        sw.datasets.ring_square_line(n=2)


def test_gaussian_mixture_data_shapes_labels_and_moments():
    means = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 2.0]])
    covs = np.stack([np.eye(3), np.diag([0.5, 2.0, 1.0])])
    x, labels = sw.datasets.gaussian_mixture_data(4000, means, covs, weights=[1.0, 3.0], seed=7)
    assert x.shape == (4000, 3) and x.dtype == np.float32
    assert labels.shape == (4000,) and set(np.unique(labels)) == {0, 1}
    # Weights renormalised to (1/4, 3/4): the count of label 1 is Binomial(4000, 3/4), sd ~ 27.
    assert abs(np.sum(labels == 1) - 3000) < 5 * 27
    for k in range(2):
        pts = x[labels == k].astype(np.float64)
        se = np.sqrt(np.diag(covs[k]) / len(pts))
        assert np.all(np.abs(pts.mean(0) - means[k]) < 5 * se), k
        np.testing.assert_allclose(np.cov(pts.T), covs[k], atol=0.15)
    again, labels_again = sw.datasets.gaussian_mixture_data(4000, means, covs, weights=[1.0, 3.0], seed=7)
    np.testing.assert_array_equal(again, x)
    np.testing.assert_array_equal(labels_again, labels)


def test_gaussian_mixture_data_default_weights_are_uniform():
    means = np.array([[-3.0], [0.0], [3.0]])
    _, labels = sw.datasets.gaussian_mixture_data(3000, means, np.ones((3, 1, 1)), seed=1)
    counts = np.bincount(labels, minlength=3)
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(3000 * (1 / 3) * (2 / 3))), counts


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: sw.datasets.ring_square_line(jax.random.key(0)), TypeError, "n must be an integer"),
        (lambda: sw.datasets.ring_square_line(2), ValueError, "n must be >= 3"),
        (lambda: sw.datasets.ring_square_line(100, seed=-1), ValueError, "seed"),
        (lambda: sw.datasets.ring_square_line(100, noise=float("nan")), ValueError, "noise"),
        (
            lambda: sw.datasets.gaussian_mixture_data(10, [[0.0]], [[[1.0]]], weights=[-1.0]),
            ValueError,
            "weights",
        ),
        (lambda: sw.datasets.gaussian_mixture_data(10, [[0.0]], [[[-1.0]]]), ValueError, "positive definite"),
        (lambda: sw.datasets.gaussian_mixture_data(10, [[0.0]], [[1.0]]), ValueError, "covariances"),
        (lambda: sw.datasets.gaussian_mixture_data(10, [0.0], [[[1.0]]]), ValueError, "means"),
        (
            lambda: sw.datasets.gaussian_mixture_data(1.5, [[0.0]], [[[1.0]]]),
            TypeError,
            "n must be an integer",
        ),
    ],
)
def test_generators_reject_bad_arguments_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
