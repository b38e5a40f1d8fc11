"""Pictures of fitted 2-D Gaussian mixtures.

matplotlib is an optional extra (``pip install "swgmm_jax[plot]"``), imported
when a function is called, not when this module is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import swgmm_jax


def plot_gmm(
    ax,
    params,
    x=None,
    *,
    n_std: float | Sequence[float] = 2.0,
    color="C0",
    linewidth: float = 1.5,
    by_weight: bool = True,
    mark_means: bool = False,
    scatter_kwargs: dict | None = None,
) -> list:
    """Draw the data and one ellipse per component of a 2-D mixture on a matplotlib ``Axes``.

    Each ellipse is the contour at ``n_std`` standard deviations of its
    component (axes along the covariance's eigenvectors, half-lengths ``n_std``
    times the square roots of its eigenvalues). With ``by_weight``, a
    component's opacity and line width grow with its weight: a component of
    weight ``1/K`` gets opacity 0.8 and width ``linewidth``, an empty one 0.3 and
    half of it.

    Args:
      ax: a matplotlib ``Axes``.
      params: ``GMMParams`` of one 2-D mixture (``means`` of shape ``[K, 2]``;
        for restarts, pick one first, e.g. ``jax.tree.map(lambda a: a[i], params)``).
      x: optional ``[n, 2]`` data, drawn as a grey scatter under the ellipses.
      n_std: the contour's number of standard deviations, or a sequence of them
        (one ellipse per component and value).
      color: colour of the ellipses (and of the means).
      linewidth: line width of the ellipse of a component of weight ``1/K``.
      by_weight: scale opacity and line width by the weights (else opacity 1).
      mark_means: also mark each component's mean with a cross.
      scatter_kwargs: overrides of the data scatter's style (default ``s=2, c="0.6"``).

    Returns:
      The ``matplotlib.patches.Ellipse`` patches added, component by component
      (and within a component, in the order of ``n_std``).

    Raises:
      ValueError: if ``params`` is not one 2-D mixture, ``x`` is not ``[n, 2]``, or
        an ``n_std`` is not positive.

    Examples:
      >>> import numpy as np, swgmm_jax as sw
      >>> from matplotlib.figure import Figure  # no display needed
      >>> from swgmm_jax import plotting
      >>> params = sw.from_moments(np.array([0.3, 0.7]), np.array([[-2.0, 0.0], [2.0, 0.0]]),
      ...                          np.stack([np.eye(2), np.diag([2.0, 0.5])]))
      >>> x = np.random.default_rng(0).normal(size=(100, 2))
      >>> ax = Figure().add_subplot()
      >>> patches = plotting.plot_gmm(ax, params, x, n_std=2.0)
      >>> len(patches), len(ax.patches)
      (2, 2)
      >>> [round(float(v), 3) for v in (patches[1].width, patches[1].height)]
      [5.657, 2.828]
    """
    from matplotlib.patches import Ellipse

    weights, means, covs = (np.asarray(a, dtype=float) for a in swgmm_jax.to_moments(params))
    if means.ndim != 2 or means.shape[1] != 2:
        raise ValueError(
            f"plot_gmm draws one 2-D mixture: params.means must have shape [K, 2], got {list(means.shape)} "
            "(for restarts, pick one first: jax.tree.map(lambda a: a[i], params))"
        )
    levels = [float(v) for v in np.atleast_1d(np.asarray(n_std, dtype=float))]
    if not levels or not all(v > 0 for v in levels):
        raise ValueError(f"n_std must be positive, got {n_std!r}")
    if x is not None:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"x must have shape [n, 2], got {list(x.shape)}")
        ax.scatter(x[:, 0], x[:, 1], **{"s": 2, "c": "0.6", **(scatter_kwargs or {})})

    k = weights.shape[0]
    rel = weights * k  # 1 for a component of weight 1/K
    alphas = np.minimum(1.0, 0.3 + 0.5 * rel) if by_weight else np.ones(k)
    widths = linewidth * np.minimum(2.0, 0.5 + 0.5 * rel) if by_weight else np.full(k, float(linewidth))
    patches = []
    for j in range(k):
        lam, vec = np.linalg.eigh(0.5 * (covs[j] + covs[j].T))  # ascending eigenvalues
        major, minor = np.sqrt(np.maximum(lam[::-1], 0.0))
        angle = float(np.degrees(np.arctan2(vec[1, 1], vec[0, 1])))  # direction of the major axis
        for v in levels:
            patch = Ellipse(
                tuple(means[j]),
                2 * v * major,
                2 * v * minor,
                angle=angle,
                fill=False,
                edgecolor=color,
                linewidth=float(widths[j]),
                alpha=float(alphas[j]),
            )
            ax.add_patch(patch)
            patches.append(patch)
    if mark_means:
        ax.scatter(means[:, 0], means[:, 1], marker="x", c=[color], s=20)
    ax.autoscale_view()
    return patches
