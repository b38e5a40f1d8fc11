"""Goodness-of-fit metrics of a fitted GMM that need no networks.

The paper (Section 4.2) scores a GMM fitted in an autoencoder's code space in two
ways, both reduced here to pure functions of labels and scores:

* **component purity**: samples drawn from each component are decoded and
  classified; a component is pure when all its samples get the same class.
* **fooling rate**: a discriminator is trained to tell real points from GMM
  samples; its error rate on held-out points measures how well the GMM imitates
  the data (0.5, chance level, when samples and data are indistinguishable).

The networks themselves (decoder, classifier, discriminator) are outside the
package (``experiments/_nets.py``); these functions only see their outputs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["component_purity", "fooling_rate"]


@functools.partial(jax.jit, static_argnames=("n_components", "n_classes"))
def _purity(component_ids, predicted_labels, n_components, n_classes):
    dtype = jnp.result_type(float)
    counts = jax.nn.one_hot(component_ids, n_components, dtype=dtype).T @ jax.nn.one_hot(
        predicted_labels, n_classes, dtype=dtype
    )  # [K, C] contingency table
    totals = jnp.sum(counts, axis=1)
    per_component = jnp.where(totals > 0, jnp.max(counts, axis=1) / jnp.maximum(totals, 1), jnp.nan)
    return jnp.nanmean(per_component), per_component


def component_purity(
    component_ids: jax.typing.ArrayLike,
    predicted_labels: jax.typing.ArrayLike,
    n_components: int,
    n_classes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Purity of the components of a mixture, judged by a classifier.

    Sample ``i`` was drawn from component ``component_ids[i]`` and the classifier
    assigned it class ``predicted_labels[i]``. The purity of component ``k`` is
    the fraction of its samples in its most frequent class; the mean purity is
    the unweighted average over the components that have samples (the paper
    draws the same number of samples from every component, so each counts
    equally whatever its mixture weight).

    Args:
      component_ids: ``[n]`` integers in ``[0, n_components)``.
      predicted_labels: ``[n]`` integers in ``[0, n_classes)``.
      n_components: ``K``.
      n_classes: number of classes ``C``; ``None`` infers ``max(label) + 1``
        (which needs concrete labels: pass it explicitly under ``jit``).

    Returns:
      ``(mean_purity[], per_component[K])``; a component without samples has
      purity NaN and is left out of the mean. Values lie in ``[1/C, 1]``.

    Examples:
      >>> import swgmm_jax._metrics as m
      >>> mean, per = m.component_purity([0, 0, 0, 0, 1, 1], [3, 3, 3, 5, 2, 2], 2)
      >>> [round(float(v), 3) for v in per], round(float(mean), 4)
      ([0.75, 1.0], 0.875)
    """
    component_ids = jnp.asarray(component_ids)
    predicted_labels = jnp.asarray(predicted_labels)
    if component_ids.ndim != 1 or predicted_labels.shape != component_ids.shape:
        raise ValueError(
            "component_ids and predicted_labels must both have shape [n], got "
            f"{component_ids.shape} and {predicted_labels.shape}"
        )
    for name, a in (("component_ids", component_ids), ("predicted_labels", predicted_labels)):
        if not jnp.issubdtype(a.dtype, jnp.integer):
            raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    if isinstance(n_components, bool) or int(n_components) != n_components or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    if n_classes is None:
        n_classes = int(np.max(np.asarray(predicted_labels), initial=0)) + 1
    return _purity(component_ids, predicted_labels, int(n_components), int(n_classes))


def fooling_rate(
    real_scores: jax.typing.ArrayLike,
    fake_scores: jax.typing.ArrayLike,
    threshold: float = 0.5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Error rate of a real-vs-fake discriminator on held-out points.

    The discriminator outputs a score that is high for "real": a point is called
    real when its score is ``> threshold`` (a probability with ``0.5``, or a
    logit with ``0.0``). The fooling rate is the balanced error rate, the mean
    of the error on real points (called fake) and on fake points (called real),
    so unequal test set sizes do not tilt it; with equal sizes it equals the
    plain error rate. A perfect imitation of the data leaves any discriminator
    at chance, a fooling rate of 0.5 in expectation (finite test sets scatter
    around it, above included); a perfect discriminator scores 0.

    Args:
      real_scores: ``[n_real]`` discriminator outputs on held-out data points.
      fake_scores: ``[n_fake]`` discriminator outputs on held-out GMM samples.
      threshold: decision threshold on the scores.

    Returns:
      ``(rate[], error_on_real[], error_on_fake[])``; ``error_on_fake`` is the
      fraction of GMM samples taken for real data.

    Examples:
      >>> import swgmm_jax._metrics as m
      >>> rate, on_real, on_fake = m.fooling_rate([0.9, 0.8, 0.3, 0.7], [0.1, 0.6])
      >>> float(on_real), float(on_fake), float(rate)
      (0.25, 0.5, 0.375)
    """
    real_scores = jnp.asarray(real_scores)
    fake_scores = jnp.asarray(fake_scores)
    if real_scores.ndim != 1 or fake_scores.ndim != 1:
        raise ValueError(
            "real_scores and fake_scores must have shape [n], "
            f"got {real_scores.shape} and {fake_scores.shape}"
        )
    if real_scores.shape[0] == 0 or fake_scores.shape[0] == 0:
        raise ValueError("real_scores and fake_scores must be non-empty")
    dtype = jnp.result_type(real_scores, fake_scores, float)
    error_on_real = jnp.mean((real_scores <= threshold).astype(dtype))
    error_on_fake = jnp.mean((fake_scores > threshold).astype(dtype))
    return 0.5 * (error_on_real + error_on_fake), error_on_real, error_on_fake
