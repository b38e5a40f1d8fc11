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

    weights, means = (np.asarray(a, dtype=float) for a in swgmm_jax.to_moments(params)[:2])
    covs = np.asarray(swgmm_jax.full_covariances(params), dtype=float)  # any covariance type
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


def plot_loss(
    ax,
    loss_history,
    *,
    color="C0",
    label: str | None = None,
    log: bool = True,
    band: bool = True,
) -> list:
    """Draw the loss curve of a fit, or the median curve and interquartile band of restarts.

    Args:
      ax: a matplotlib ``Axes``.
      loss_history: ``[n_steps]`` losses (``FitResult.loss_history``, or EM's
        negative log-likelihoods) or ``[R, n_steps]`` for restarts.
      color: colour of the curve and band.
      label: legend label of the curve.
      log: logarithmic loss axis (positive losses only; EM's NLL can be
        negative: pass ``log=False``).
      band: for restarts, shade the 25th-75th percentile band.

    Returns:
      The matplotlib artists added (the line, then the band if drawn).

    Raises:
      ValueError: if ``loss_history`` is not 1-D or 2-D, or ``log`` is asked
        for losses that are not all positive.

    Examples:
      >>> import numpy as np
      >>> from matplotlib.figure import Figure
      >>> from swgmm_jax import plotting
      >>> ax = Figure().add_subplot()
      >>> losses = np.exp(-np.linspace(0, 3, 50))[None] * np.array([[1.0], [2.0], [3.0]])
      >>> artists = plotting.plot_loss(ax, losses, label="3 restarts")
      >>> len(artists), ax.get_yscale(), float(artists[0].get_ydata()[0])  # the median restart
      (2, 'log', 2.0)
    """
    losses = np.asarray(loss_history, dtype=float)
    if losses.ndim not in (1, 2) or losses.shape[-1] == 0:
        raise ValueError(f"loss_history must have shape [n_steps] or [R, n_steps], got {list(losses.shape)}")
    if log and not np.all(losses[np.isfinite(losses)] > 0):
        raise ValueError("log=True needs positive losses (pass log=False, e.g. for EM's NLL)")
    steps = np.arange(1, losses.shape[-1] + 1)
    artists = []
    if losses.ndim == 1:
        artists += ax.plot(steps, losses, color=color, label=label)
    else:
        q1, med, q3 = np.nanpercentile(losses, [25, 50, 75], axis=0)
        artists += ax.plot(steps, med, color=color, label=label)
        if band:
            artists.append(ax.fill_between(steps, q1, q3, color=color, alpha=0.25, linewidth=0))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    return artists


def plot_restart_histograms(
    ax,
    values: dict,
    *,
    bins: int = 40,
    upper_percentile: float = 98.0,
    xlabel: str | None = None,
) -> list:
    """Overlay step histograms of a per-restart score (NLL, SW distance), one per method.

    The bins span from the smallest value of any method to the
    ``upper_percentile``-th percentile of all of them (values beyond are
    counted in the last bin), so a few diverged restarts do not squash the rest.

    Args:
      ax: a matplotlib ``Axes``.
      values: ``{method name: [R] scores}`` (non-finite scores are left out).
      bins: number of bins.
      upper_percentile: upper end of the bins, a percentile of all values.
      xlabel: label of the score axis.

    Returns:
      The histogram patches added, one per method.

    Raises:
      ValueError: if ``values`` is empty or has no finite score.

    Examples:
      >>> import numpy as np
      >>> from matplotlib.figure import Figure
      >>> from swgmm_jax import plotting
      >>> rng = np.random.default_rng(0)
      >>> ax = Figure().add_subplot()
      >>> patches = plotting.plot_restart_histograms(
      ...     ax, {"em": rng.normal(1.5, 0.2, 100), "sw": rng.normal(1.3, 0.1, 100)}, xlabel="NLL")
      >>> len(patches), ax.get_xlabel()
      (2, 'NLL')
    """
    if not values:
        raise ValueError("values must map at least one method name to its scores")
    finite = {k: np.asarray(v, dtype=float).ravel() for k, v in values.items()}
    finite = {k: v[np.isfinite(v)] for k, v in finite.items()}
    pooled = np.concatenate(list(finite.values()))
    if pooled.size == 0:
        raise ValueError("values has no finite score")
    lo, hi = float(pooled.min()), float(np.percentile(pooled, upper_percentile))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    patches = []
    for name, v in finite.items():
        _, _, patch = ax.hist(
            np.clip(v, edges[0], edges[-1]), bins=edges, histtype="step", linewidth=1.5, label=name
        )
        patches.append(patch)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    return patches
