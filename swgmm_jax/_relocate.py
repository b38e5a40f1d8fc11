"""Merge-and-relocate moves: a way out of the SW fit's local minima.

A local minimum of the sliced loss typically has the wrong *number* of
components on some part of the data (two components sharing one cluster,
while another cluster is covered by a single wide one): moving a component
across would raise the loss on the way, so gradient steps never do it.

One move (:func:`merge_relocate`) merges a redundant pair into one
moment-matched component and re-seeds the freed component at a data point;
the fit then refines the proposal with a short run of RMSProp steps and keeps
it only if the sliced distance on fixed evaluation directions went down
(``FitConfig.relocations``). The redundancy of a pair is the cosine similarity
of the two components' responsibility vectors over the data (the merge
criterion of split-and-merge EM, Ueda et al., Neural Computation 2000); the
pair is drawn at random with probability ``softmax(similarity / temperature)``,
so that a rejected move is not proposed again identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from swgmm_jax._init import data_covariance, data_variances
from swgmm_jax._params import GMMParams, component_log_prob, covariance_type_of, moments_to_params, to_moments

__all__ = ["merge_relocate", "accept_if_better"]

State = TypeVar("State")


def accept_if_better(
    key: jax.Array,
    state: State,
    n_rounds: int,
    propose: Callable[[State, jax.Array], State],
    score: Callable[[State], jax.Array],
) -> tuple[State, jax.Array, jax.Array]:
    """``n_rounds`` rounds of: propose a move from the kept state, keep it if its score is lower.

    Args:
      key: PRNG key, split into one key per round.
      state: the starting pytree.
      n_rounds: number of rounds (static).
      propose: ``(state, key) -> state``, the move and its refinement.
      score: ``state -> []``, lower is better (the SW distance, or the NLL).

    Returns:
      ``(state, scores[n_rounds], accepted[n_rounds])``: the kept state, its score after each
      round (non-increasing) and whether each round's move was kept.
    """

    def one_round(carry, k):
        current, best = carry
        proposal = propose(current, k)
        value = score(proposal)
        keep = value < best
        current = jax.tree.map(lambda a, b: jnp.where(keep, a, b), proposal, current)
        best = jnp.where(keep, value, best)
        return (current, best), (best, keep)

    (state, _), (scores, accepted) = jax.lax.scan(
        one_round, (state, score(state)), jax.random.split(key, n_rounds)
    )
    return state, scores, accepted


def _pair_scores(params: GMMParams, x: jax.Array, sample_weight=None) -> jax.Array:
    """``[K, K]`` cosine similarity of responsibility vectors; ``-inf`` on the diagonal.

    Weighted: the inner product over points is ``sum_n w_n r_nk r_nj`` (each point
    counted ``w_n`` times).
    """
    resp = jax.nn.softmax(component_log_prob(params, x), axis=1)  # [n, K]
    if sample_weight is not None:
        resp = resp * jnp.sqrt(sample_weight / jnp.max(sample_weight))[:, None]
    norm = jnp.linalg.norm(resp, axis=0)
    resp = resp / jnp.where(norm > 0, norm, 1.0)[None, :]
    sim = resp.T @ resp
    k = sim.shape[0]
    return jnp.where(jnp.eye(k, dtype=bool), -jnp.inf, sim)


def merge_relocate(
    key: jax.Array,
    params: GMMParams,
    x: jax.Array,
    *,
    temperature: Any = 0.03,
    cov_scale: Any = 0.1,
    keep_weights: bool = False,
    sample_weight: jax.Array | None = None,
) -> GMMParams:
    """Propose new parameters: merge a redundant pair, re-seed the freed component.

    Args:
      key: PRNG key (the pair, and the data point of the re-seeded component).
      params: current GMM (``K >= 2``).
      x: ``[n, d]`` data in the units of ``params``.
      temperature: pairs are drawn with probability
        ``softmax(similarity / temperature)``; ``0`` takes the most redundant
        pair (``temperature`` may be traced).
      cov_scale: the re-seeded component's covariance is ``cov_scale`` x the
        data covariance (as the ``"random_from_data"`` initialisation).
      keep_weights: keep every weight as it is (for fits with fixed weights);
        otherwise the merged component takes the pair's total weight less
        ``1/(2K)``, which goes to the re-seeded one.
      sample_weight: ``None`` or ``[n]`` weights of the points (>= 0, not all
        0; not checked): the redundancy of a pair and the data covariance are
        weighted, and the re-seeding point is drawn in proportion to the weights.

    Returns:
      Parameters of the same type, shapes and ``reg_covar``: component ``i`` of
      the drawn pair ``(i, j)`` is the moment-matched merge of ``i`` and ``j``
      (within the covariance type: the merged covariance's diagonal, or its
      mean over dimensions; a tied covariance stays as it is); component ``j``
      is centred at a data point drawn uniformly.

    Examples:
      >>> import jax, jax.numpy as jnp, swgmm_jax as sw
      >>> x = jnp.concatenate([jax.random.normal(jax.random.key(0), (100, 2)) + 5, jnp.zeros((1, 2))])
      >>> means = jnp.array([[5.0, 5.0], [5.1, 5.0]])
      >>> params = sw.from_moments(jnp.ones(2), means, jnp.stack([jnp.eye(2)] * 2))
      >>> jax.jit(sw.merge_relocate)(jax.random.key(1), params, x).means.shape
      (2, 2)
    """
    k_pair, k_point = jax.random.split(key)
    w, m, c = to_moments(params)
    k, d = m.shape
    scores = _pair_scores(params, x, sample_weight).ravel()
    # temperature may be traced: draw at a positive one, take the argmax at 0.
    positive = jnp.asarray(temperature) > 0
    drawn = jax.random.categorical(k_pair, scores / jnp.where(positive, temperature, 1.0))
    ij = jnp.where(positive, drawn, jnp.argmax(scores))
    i, j = ij // k, ij % k

    wi, wj = w[i], w[j]
    tot = wi + wj
    mu = (wi * m[i] + wj * m[j]) / tot
    di, dj = m[i] - mu, m[j] - mu
    ct = covariance_type_of(params)
    if sample_weight is None:
        point = x[jax.random.randint(k_point, (), 0, x.shape[0])]
    else:
        point = x[jax.random.categorical(k_point, jnp.log(sample_weight))]
    if keep_weights:
        new_w = w
    else:
        seed_w = jnp.minimum(0.5 / k, 0.5 * tot)
        new_w = w.at[i].set(tot - seed_w).at[j].set(seed_w)
    new_m = m.at[i].set(mu).at[j].set(point)
    if ct == "tied":  # the shared covariance stays
        return moments_to_params(new_w, new_m, c, params.reg_covar, ct)
    if ct == "full":
        cov = (wi * (c[i] + jnp.outer(di, di)) + wj * (c[j] + jnp.outer(dj, dj))) / tot
        seed = cov_scale * data_covariance(x, sample_weight) + params.reg_covar * jnp.eye(d, dtype=c.dtype)
    else:
        si, sj = di * di, dj * dj
        seed = cov_scale * data_variances(x, sample_weight)
        if ct == "spherical":
            si, sj, seed = jnp.mean(si), jnp.mean(sj), jnp.mean(seed)
        cov = (wi * (c[i] + si) + wj * (c[j] + sj)) / tot
        seed = seed + params.reg_covar
    new_c = c.at[i].set(cov).at[j].set(seed)
    return moments_to_params(new_w, new_m, new_c, params.reg_covar, ct)
