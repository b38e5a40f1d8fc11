"""Data generators used by the examples and experiments (NumPy, seeded, no downloads)."""

from __future__ import annotations

import numpy as np

from swgmm_jax._validation import check_positive_int, check_real

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
    n = check_positive_int(n, "n", minimum=3)
    seed = check_positive_int(seed, "seed", minimum=0)
    check_real(noise, "noise", low=0.0)
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
    n = check_positive_int(n, "n", minimum=1)
    seed = check_positive_int(seed, "seed", minimum=0)
    means, covariances = _real_array(means, "means", 2), _real_array(covariances, "covariances", 3)
    k, d = means.shape
    if covariances.shape != (k, d, d):
        raise ValueError(
            f"covariances must have shape [K, d, d] = {[k, d, d]}, got {list(covariances.shape)}"
        )
    if weights is None:
        weights = np.full(k, 1.0 / k)
    else:
        weights = _real_array(weights, "weights", 1)
        if weights.shape != (k,) or np.any(weights < 0) or not np.sum(weights) > 0:
            raise ValueError(f"weights must be {k} non-negative numbers with a positive sum, got {weights}")
        weights = weights / np.sum(weights)
    try:
        chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError("covariances must be symmetric positive definite") from None
    rng = np.random.default_rng(seed)
    labels = rng.choice(k, size=n, p=weights)
    eps = rng.standard_normal((n, means.shape[1]))
    x = means[labels] + np.einsum("nij,nj->ni", chol[labels], eps)
    return x.astype(np.float32), labels


def _real_array(value, name: str, ndim: int) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers") from None
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a
