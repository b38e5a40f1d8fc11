"""Data generators used by the examples and experiments (NumPy, seeded, no downloads)."""

from __future__ import annotations

import numpy as np

__all__ = ["ring_square_line", "gaussian_mixture_data"]


def ring_square_line(n: int = 850, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """The 2D ring + square + connecting line data of the paper's Figure 3.

    A ring of radius 1 centred at ``(-2, 0)``, the outline of a square of side
    1.6 centred at ``(2, 0)``, and the segment joining them, points spread in
    proportion to the lengths (ring 40%, square 40%, line 20%) with isotropic
    Gaussian noise of standard deviation ``noise``.

    Args:
      n: number of points.
      seed: NumPy seed.
      noise: noise standard deviation.

    Returns:
      ``[n, 2]`` float32 array.
    """
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    rng = np.random.default_rng(seed)
    n_ring, n_square = int(0.4 * n), int(0.4 * n)
    n_line = n - n_ring - n_square
    angle = rng.uniform(0, 2 * np.pi, n_ring)
    ring = np.stack([-2 + np.cos(angle), np.sin(angle)], axis=1)
    half = 0.8
    t = rng.uniform(0, 4, n_square)
    side, pos = np.floor(t).astype(int), (t % 1) * 2 * half - half
    square = np.select(
        [side[:, None] == 0, side[:, None] == 1, side[:, None] == 2],
        [
            np.stack([pos, -half + 0 * pos], 1),
            np.stack([half + 0 * pos, pos], 1),
            np.stack([pos, half + 0 * pos], 1),
        ],
        np.stack([-half + 0 * pos, pos], 1),
    ) + np.array([2.0, 0.0])
    s = rng.uniform(0, 1, n_line)
    line = np.stack([-1 + s * (2 - half + 1), 0 * s], axis=1)
    x = np.concatenate([ring, square, line]) + noise * rng.standard_normal((n, 2))
    return rng.permutation(x).astype(np.float32)


def gaussian_mixture_data(
    n: int, means, covariances, weights=None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points from a GMM given by its moments; returns ``(x[n, d], labels[n])``.

    Args:
      n: number of points.
      means: ``[K, d]`` component means.
      covariances: ``[K, d, d]`` positive definite covariances.
      weights: ``[K]`` non-negative weights (renormalised); ``None`` for ``1/K`` each.
      seed: NumPy seed.

    Returns:
      ``(x, labels)``: ``[n, d]`` float32 points and the ``[n]`` component of each.

    Examples:
      >>> import numpy as np, swgmm_jax as sw
      >>> means, covs = [[0.0, 0.0], [10.0, 0.0]], [np.eye(2)] * 2
      >>> x, labels = sw.datasets.gaussian_mixture_data(1000, means, covs, weights=[1, 3])
      >>> x.shape, x.dtype, bool(np.abs(x[labels == 1].mean(axis=0) - means[1]).max() < 0.2)
      ((1000, 2), dtype('float32'), True)
    """
    rng = np.random.default_rng(seed)
    means = np.asarray(means, float)
    covariances = np.asarray(covariances, float)
    k = means.shape[0]
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, float) / np.sum(weights)
    labels = rng.choice(k, size=n, p=weights)
    chol = np.linalg.cholesky(covariances)
    eps = rng.standard_normal((n, means.shape[1]))
    x = means[labels] + np.einsum("nij,nj->ni", chol[labels], eps)
    return x.astype(np.float32), labels
