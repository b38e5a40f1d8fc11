"""Figure 1 of the paper: NLL vs Wasserstein-means energy landscapes (section 3.1).

Two scenarios, both in 1D with everything known except the means:

* (a) ``N`` samples of ``N(0, sigma)``, ``sigma`` known; the model is ``N(mu, sigma)``
  and both energies are plotted as functions of ``mu``.
* (b) ``N`` samples of a two-component mixture with known weights and standard
  deviations; both energies are surfaces over the ``(mu_1, mu_2)`` plane.

The energies are

* NLL: ``-(1/N) sum_n log I_x(y_n)`` (paper, eq. 10, negated);
* WM: ``W_2^2(I_x, I_y)`` between the model and the empirical distribution of
  the samples (paper, eq. 9), computed *exactly* by 1D quantile transport.
  With ``y_(1) <= ... <= y_(N)`` and bin edges ``e_i = Q_model(i / N)``::

      W_2^2 = int_0^1 (Q_model(z) - y_(ceil(zN)))^2 dz
            = E[X^2] - 2 sum_i y_(i) int_{e_(i-1)}^{e_i} x f(x) dx + mean(y^2),

  and the partial first moments of a Gaussian mixture are closed-form, so the
  only numerical step is the mixture quantile at the ``N - 1`` edges
  (:func:`swgmm_jax.mixture_quantile`). For one Gaussian the edges are
  ``mu + sigma * Phi^{-1}(i / N)`` and the energy is a closed form. As a
  cross-check, scenario (b) is also evaluated with the package's midpoint-rule
  estimate (:func:`swgmm_jax.transport_cost` at all ``N`` data levels).

Local minima are counted on the grid: strict minima w.r.t. the 2 (1D) or 8 (2D)
neighbours, interior grid points only (a minimum on the edge of the window is a
property of the window, not of the energy; those are counted separately). When
the scenario-(b) model is exchangeable (equal weights and equal standard
deviations, on a grid symmetric under ``mu_1 <-> mu_2``) each off-diagonal
minimum has a mirror image that is the same mixture; the count modulo label swap
identifies them. Otherwise the swapped configuration is a different model and
the two counts agree.

Settings. (a) ``sigma = 1``, ``mu`` in ``[-6, 6]``. There both energies are exact
quadratics in ``mu`` with vertex at the sample mean (NLL curvature ``1/sigma^2``,
WM curvature 2), so once scaled and shifted as in the paper they coincide; the
script reports the quadratic fits. (b) weights ``(0.5, 0.5)``, true means
``(-1.5, 1.5)``, known standard deviations ``(0.5, 2.0)``, means on ``[-7.5, 7.5]^2``.
Equal weights *and* equal widths (e.g. ``N(-3, 1)``, ``N(3, 1)``) give no spurious
NLL minimum, only the label-swapped copy of the optimum; unequal widths do: the
narrow component sitting in the wide one's tail is a local NLL minimum. Other
mixtures: ``--b-weights``, ``--b-means``, ``--b-scales``. With unequal known
weights the exact WM energy has its own second minimum (the components in the
wrong order), so "WM has no spurious minima" is a property of the chosen
mixture, not a theorem; try ``--b-weights 0.3 0.7 --b-scales 1 1 --b-means -3 3``.

Usage::

    python -m experiments.energy_landscape --scale quick --out results
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

import swgmm_jax as sw
from experiments import _common

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """All knobs of one run. ``quick`` and ``paper`` differ in grids and sample sizes only."""

    # Scenario (a): N(0, sigma_a), model N(mu, sigma_a).
    n_a: int
    grid_a: int
    sigma_a: float = 1.0
    range_a: tuple[float, float] = (-6.0, 6.0)
    # Scenario (b): sum_k w_k N(m_k, s_k), model with w, s known, means free.
    # Equal weights, unequal known widths: the NLL has spurious minima here (see
    # the module docstring); with equal widths too it has none.
    n_b: int = 1000
    grid_b: int = 101
    weights_b: tuple[float, float] = (0.5, 0.5)
    means_b: tuple[float, float] = (-1.5, 1.5)
    scales_b: tuple[float, float] = (0.5, 2.0)
    range_b: tuple[float, float] = (-7.5, 7.5)
    # Grid points per jit batch (bounds memory: batch * N * K doubles per intermediate).
    batch: int = 256
    # 24 iterations: the surface agrees with 32 to ~4e-15 (16: ~1e-13).
    quantile_iters: int = 24


# Grids keep the true means on grid points: spacing 15 / (grid - 1) divides 1.5.
SCALES = {
    "quick": dict(n_a=1000, grid_a=401, n_b=1000, grid_b=101),
    "paper": dict(n_a=5000, grid_a=2001, n_b=2000, grid_b=201),
}


# --------------------------------------------------------------------------- energies


def _partial_moments(e, log_w, means, scales):
    """``int_{-inf}^{e} x f(x) dx`` of a 1D mixture at points ``e[M]`` (``log_w, means, scales: [K]``)."""
    u = (e[:, None] - means) / scales
    phi = jnp.exp(-0.5 * u * u - _LOG_SQRT_2PI)
    w = jnp.exp(jax.nn.log_softmax(log_w))
    return jnp.sum(w * (means * ndtr(u) - scales * phi), axis=-1)


def wm_energy_mixture(y_sorted, log_w, means, scales, *, quantile_iters: int = 32):
    """Exact ``W_2^2`` between a 1D Gaussian mixture and the empirical measure of ``y_sorted[N]``.

    Args:
      y_sorted: ``[N]`` sorted samples.
      log_w, means, scales: ``[K]`` the mixture (log-weights normalised here).
      quantile_iters: iterations of the quantile solver.

    Returns:
      ``[]`` the energy ``int_0^1 (Q(z) - y_(ceil(zN)))^2 dz``.
    """
    n = y_sorted.shape[-1]
    i = jnp.arange(1, n, dtype=y_sorted.dtype)
    edges = sw.mixture_quantile(i / n, log_w, means, scales, quantile_iters=quantile_iters)
    w = jnp.exp(jax.nn.log_softmax(log_w))
    m_edges = _partial_moments(edges, log_w, means, scales)
    m_all = jnp.concatenate([jnp.zeros((1,), y_sorted.dtype), m_edges, jnp.sum(w * means)[None]])
    bin_first = jnp.diff(m_all)  # int over bin i of Q(z) dz
    second = jnp.sum(w * (means**2 + scales**2))
    return second - 2.0 * jnp.sum(y_sorted * bin_first) + jnp.mean(y_sorted**2)


def wm_energy_gaussian(y_sorted, mu, sigma):
    """Exact ``W_2^2(N(mu, sigma), empirical(y))``: closed form through the Gaussian quantile.

    The bin means of ``Q`` are ``mu + sigma N (phi(a_(i-1)) - phi(a_i))`` with
    ``a_i = Phi^{-1}(i / N)``, so the energy is ``(mu - ybar)^2`` plus a constant.
    """
    n = y_sorted.shape[-1]
    a = ndtri(jnp.arange(0, n + 1, dtype=y_sorted.dtype) / n)  # a_0 = -inf, a_N = +inf
    phi = jnp.exp(-0.5 * a * a - _LOG_SQRT_2PI)  # 0 at +-inf
    d = phi[:-1] - phi[1:]
    ybar = jnp.mean(y_sorted)
    const = sigma**2 + jnp.mean(y_sorted**2) - ybar**2 - 2.0 * sigma * jnp.sum(y_sorted * d)
    return (mu - ybar) ** 2 + const


def nll_mixture(y, log_w, means, scales):
    """Mean negative log-likelihood of samples ``y[N]`` under a 1D mixture (``[K]`` parameters).

    Through the package's 1D density :func:`swgmm_jax.mixture_logpdf` (log-weights
    normalised there); the run cross-checks it against :func:`swgmm_jax.log_likelihood`.
    """
    return -jnp.mean(sw.mixture_logpdf(y, log_w, means, scales))


def wm_midpoint(y_sorted, log_w, means, scales, *, quantile_iters: int = 32):
    """The package's estimate: ``transport_cost`` at all ``N`` data levels (midpoint rule)."""
    levels = sw.midpoint_levels(y_sorted.shape[-1], y_sorted.dtype)
    return sw.transport_cost(y_sorted, log_w, means, scales, levels, p=2.0, quantile_iters=quantile_iters)


def _grid_map(fn, points, batch):
    """``fn`` over the rows of ``points[G, ...]`` with ``vmap`` in batches of ``batch``.

    The rows are padded to a multiple of ``batch`` (repeating the last one) so
    that one vmapped body is compiled, not a second one for the remainder.
    """
    g = points.shape[0]
    batch = min(batch, g)
    pad = -g % batch
    padded = jnp.concatenate([points, jnp.repeat(points[-1:], pad, axis=0)]) if pad else points
    out = jax.lax.map(fn, padded, batch_size=batch)
    return jax.tree.map(lambda a: a[:g], out)


@jax.jit
def _landscape_a(y_sorted, mus, sigma):
    nll = jax.vmap(lambda m: nll_mixture(y_sorted, jnp.zeros(1), m[None], sigma[None]))(mus)
    wm = wm_energy_gaussian(y_sorted, mus, sigma)
    return nll, wm


def _landscape_b_impl(y_sorted, mu_pairs, log_w, scales, batch, quantile_iters, with_midpoint):
    def one(m):
        out = {
            "nll": nll_mixture(y_sorted, log_w, m, scales),
            "wm": wm_energy_mixture(y_sorted, log_w, m, scales, quantile_iters=quantile_iters),
        }
        if with_midpoint:
            out["wm_midpoint"] = wm_midpoint(y_sorted, log_w, m, scales, quantile_iters=quantile_iters)
        return out

    return _grid_map(one, mu_pairs, batch)


_landscape_b = jax.jit(_landscape_b_impl, static_argnames=("batch", "quantile_iters", "with_midpoint"))


# --------------------------------------------------------------------------- minima


def local_minima(energy, *, include_boundary: bool = False) -> np.ndarray:
    """Boolean mask of strict local minima of a 1D or 2D array.

    A point is a strict minimum when it is smaller than each of its neighbours
    (2 in 1D, 8 in 2D). Points on the edge of the array have fewer neighbours;
    they are reported only with ``include_boundary=True``. NaNs are never minima
    and never block a neighbour.

    Args:
      energy: ``[n]`` or ``[n1, n2]`` values on a grid.
      include_boundary: also report edge points (compared with the neighbours they have).

    Returns:
      A boolean array of ``energy``'s shape.
    """
    e = np.asarray(energy, dtype=float)
    if e.ndim not in (1, 2):
        raise ValueError(f"energy must be 1D or 2D, got shape {e.shape}")
    padded = np.pad(np.where(np.isnan(e), np.inf, e), 1, constant_values=np.inf)
    is_min = np.isfinite(e)
    for offset in np.ndindex(*(3,) * e.ndim):
        shift = tuple(o - 1 for o in offset)
        if not any(shift):
            continue
        neigh = padded[tuple(slice(1 + s, 1 + s + n) for s, n in zip(shift, e.shape, strict=True))]
        is_min &= e < neigh
    if not include_boundary:
        interior = np.zeros(e.shape, bool)
        interior[tuple(slice(1, -1) for _ in e.shape)] = True
        is_min &= interior
    return is_min


def swap_orbits(indices) -> int:
    """Number of minima ``(i, j)`` counted once per pair ``{(i, j), (j, i)}``."""
    return len({tuple(sorted(map(int, ij))) for ij in indices})


def is_swap_symmetric(energy, rtol: float = 1e-9) -> bool:
    """Whether a square surface satisfies ``E[i, j] == E[j, i]`` to ``rtol`` of its range."""
    e = np.asarray(energy, dtype=float)
    if e.ndim != 2 or e.shape[0] != e.shape[1]:
        return False
    finite = np.isfinite(e) & np.isfinite(e.T)
    span = np.ptp(e[finite]) if finite.any() else 0.0
    return bool(np.all(np.abs(e - e.T)[finite] <= rtol * max(span, 1e-300)))


def _describe_minima_2d(energy, grid, truth, symmetric, spacing):
    mask = local_minima(energy)
    idx = np.argwhere(mask)
    boundary = int(local_minima(energy, include_boundary=True).sum() - mask.sum())
    e_min = float(np.nanmin(energy))
    tol = 1.5 * spacing + 0.3  # grid resolution plus a generous sampling allowance
    rows = []
    for i, j in idx:
        loc = np.array([grid[i], grid[j]])
        kind = "other"
        if np.max(np.abs(loc - truth)) <= tol:
            kind = "truth"
        elif np.max(np.abs(loc - truth[::-1])) <= tol:
            kind = "swapped truth (same mixture)" if symmetric else "swapped truth (different model)"
        rows.append(
            {
                "index": [int(i), int(j)],
                "mu": loc.tolist(),
                "energy": float(energy[i, j]),
                "excess_over_grid_min": float(energy[i, j] - e_min),
                "kind": kind,
            }
        )
    rows.sort(key=lambda r: r["energy"])
    count_mod = swap_orbits(idx) if symmetric else len(idx)
    return {"raw": len(idx), "modulo_swap": count_mod, "boundary_minima": boundary, "minima": rows}


def _describe_minima_1d(energy, grid):
    mask = local_minima(energy)
    idx = np.flatnonzero(mask)
    boundary = int(local_minima(energy, include_boundary=True).sum() - mask.sum())
    rows = [{"index": int(i), "mu": float(grid[i]), "energy": float(energy[i])} for i in idx]
    return {"raw": len(idx), "modulo_swap": len(idx), "boundary_minima": boundary, "minima": rows}


# --------------------------------------------------------------------------- runs


def run_scenario_a(key, s: Settings) -> dict:
    y = np.sort(np.asarray(s.sigma_a * jax.random.normal(key, (s.n_a,), jnp.float64)))
    mus = np.linspace(*s.range_a, s.grid_a)
    nll, wm = _landscape_a(jnp.asarray(y), jnp.asarray(mus), jnp.asarray(s.sigma_a))
    nll, wm = np.asarray(nll), np.asarray(wm)
    # Both energies are quadratics in mu here: report how far from one each is.
    quad = {}
    for name, e in (("nll", nll), ("wm", wm)):
        coef = np.polyfit(mus, e, 2)
        quad[name] = {
            "curvature": float(2 * coef[0]),
            "vertex": float(-coef[1] / (2 * coef[0])),
            "max_abs_residual": float(np.max(np.abs(np.polyval(coef, mus) - e))),
        }
    return {
        "grid": mus,
        "samples": y,
        "nll": nll,
        "wm": wm,
        "sample_mean": float(y.mean()),
        "argmin": {"nll": float(mus[np.argmin(nll)]), "wm": float(mus[np.argmin(wm)])},
        "quadratic_fit": quad,
        "minima": {"nll": _describe_minima_1d(nll, mus), "wm": _describe_minima_1d(wm, mus)},
    }


@functools.partial(jax.jit, static_argnames=("n",))
def _truth_and_samples(key, w, m, sc, n):
    # Jitted as a whole: op-by-op dispatch of from_moments and sample costs seconds of compiles.
    truth = sw.from_moments(w, m[:, None], (sc**2)[:, None, None], reg_covar=0.0)
    return truth, sw.sample(key, truth, n)[:, 0]


def run_scenario_b(key, s: Settings, *, with_midpoint: bool = True) -> dict:
    w = jnp.asarray(s.weights_b, jnp.float64)
    m = jnp.asarray(s.means_b, jnp.float64)
    sc = jnp.asarray(s.scales_b, jnp.float64)
    truth, y = _truth_and_samples(key, w, m, sc, n=s.n_b)
    y = np.sort(np.asarray(y))  # host sort: XLA's CPU sort is slow (README, "Sorting on CPU")
    grid = np.linspace(*s.range_b, s.grid_b)
    g1, g2 = np.meshgrid(grid, grid, indexing="ij")  # energy[i, j] is at (mu_1, mu_2) = (grid[i], grid[j])
    pairs = jnp.asarray(np.stack([g1.ravel(), g2.ravel()], axis=-1))
    out = _landscape_b(
        jnp.asarray(y),
        pairs,
        jnp.log(w),
        sc,
        batch=s.batch,
        quantile_iters=s.quantile_iters,
        with_midpoint=with_midpoint,
    )
    out = {k: np.asarray(v).reshape(s.grid_b, s.grid_b) for k, v in out.items()}
    spacing = float(grid[1] - grid[0])
    exchangeable = bool(np.allclose(w, w[::-1]) and np.allclose(sc, sc[::-1]))
    truth_np = np.asarray(s.means_b)
    res = {"grid": grid, "samples": y, "exchangeable_model": exchangeable, "spacing": spacing, **out}
    res["swap_symmetric"] = {k: is_swap_symmetric(out[k]) for k in ("nll", "wm")}
    res["minima"] = {
        k: _describe_minima_2d(out[k], grid, truth_np, exchangeable and res["swap_symmetric"][k], spacing)
        for k in ("nll", "wm")
    }
    # The package's own log-likelihood at the truth, against the NLL surface's formula.
    yj = jnp.asarray(y)
    res["nll_at_truth"] = {
        "surface_formula": float(jax.jit(nll_mixture)(yj, jnp.log(w), m, sc)),
        "sw.log_likelihood": float(-jax.jit(sw.log_likelihood)(truth, yj[:, None])),
    }
    wm_truth = jax.jit(wm_energy_mixture, static_argnames=("quantile_iters",))
    res["wm_at_truth"] = float(wm_truth(yj, jnp.log(w), m, sc, quantile_iters=s.quantile_iters))
    for k in ("nll", "wm"):
        i, j = np.unravel_index(np.nanargmin(out[k]), out[k].shape)
        res.setdefault("argmin", {})[k] = [float(grid[i]), float(grid[j])]
    if with_midpoint:
        diff = out["wm_midpoint"] - out["wm"]
        res["midpoint_check"] = {
            "max_abs_diff": float(np.max(np.abs(diff))),
            "max_rel_diff": float(np.max(np.abs(diff) / np.abs(out["wm"]))),
            "minima_raw": int(local_minima(out["wm_midpoint"]).sum()),
        }
    return res


# --------------------------------------------------------------------------- output


def _scaled(e):
    """Shift and scale to ``[0, 1]`` (the paper's 'scaled and shifted for visualization')."""
    e = np.asarray(e, float)
    return (e - np.nanmin(e)) / (np.nanmax(e) - np.nanmin(e))


def plot(res_a, res_b, s: Settings, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    ax = axes[0]
    ax.plot(res_a["grid"], _scaled(res_a["nll"]), label="NLL", lw=2)
    ax.plot(res_a["grid"], _scaled(res_a["wm"]), "--", label=r"WM ($W_2^2$)", lw=2)
    ax.axvline(0.0, color="k", lw=0.8, alpha=0.5)
    ax.text(
        0.5,
        0.62,
        "both are exact parabolas in $\\mu$ with vertex at the\n"
        "sample mean: identical once scaled and shifted",
        transform=ax.transAxes,
        ha="center",
        fontsize=8,
    )
    ax.set_xlabel(r"$\mu$")
    ax.set_ylabel("energy (scaled and shifted)")
    ax.set_title(rf"(a) $N={s.n_a}$ samples of $\mathcal{{N}}(0, {s.sigma_a:g})$, $\sigma$ known")
    ax.legend()

    grid = res_b["grid"]
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    for ax, key, name in ((axes[1], "nll", "NLL"), (axes[2], "wm", r"WM ($W_2^2$, exact)")):
        e = _scaled(res_b[key])
        # Colour levels at quantiles of the values: both surfaces span orders of
        # magnitude, and a linear scale would show only the far corners.
        levels = np.unique(np.quantile(e, np.linspace(0, 1, 30)))
        cs = ax.contourf(grid, grid, e.T, levels=levels, cmap="viridis")  # x = mu_1, y = mu_2
        ax.contour(grid, grid, e.T, levels=levels[::3], colors="w", linewidths=0.4, alpha=0.6)
        mins = res_b["minima"][key]["minima"]
        if mins:
            xy = np.array([r["mu"] for r in mins])
            ax.plot(xy[:, 0], xy[:, 1], "o", mfc="none", mec="r", mew=1.8, ms=10, label="grid local minima")
        t = np.asarray(s.means_b)
        ax.plot([t[0]], [t[1]], "wx", ms=10, mew=2, label="true means")
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_aspect("equal")
        ax.set_xlabel(r"$\mu_1$")
        ax.set_ylabel(r"$\mu_2$")
        c = res_b["minima"][key]
        ax.set_title(f"(b) {name}: local minima {c['raw']} ({c['modulo_swap']} mod. swap)")
        ax.legend(loc="lower right", fontsize=8)
        fig.colorbar(cs, ax=ax, shrink=0.8, ticks=levels[::6], format="%.2g")
    fig.suptitle(
        f"(b) mixture: weights {s.weights_b}, means {s.means_b}, std {s.scales_b}, N={s.n_b}; "
        "colours at quantiles of each surface",
        fontsize=10,
    )
    _common.atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def _table(res_a, res_b) -> str:
    lines = [
        f"{'scenario':<14}{'energy':<8}{'raw minima':>11}{'mod swap':>10}{'edge minima':>12}  argmin",
        "-" * 72,
    ]
    for name, res in (("(a) 1D mu", res_a), ("(b) mu1,mu2", res_b)):
        for k in ("nll", "wm"):
            c = res["minima"][k]
            am = res["argmin"][k]
            am = f"{am:+.3f}" if np.isscalar(am) else f"({am[0]:+.2f}, {am[1]:+.2f})"
            counts = f"{c['raw']:>11}{c['modulo_swap']:>10}{c['boundary_minima']:>12}"
            lines.append(f"{name:<14}{k.upper():<8}{counts}  {am}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = _common.argument_parser(__doc__.split("\n")[0])
    _common.add_scale_argument(p, SCALES)
    p.add_argument("--out", default=str(_common.RESULTS), help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", type=int, default=None, help="override: points per axis of the (b) grid")
    p.add_argument("--grid-1d", type=int, default=None, help="override: points of the (a) grid")
    p.add_argument("--n-samples", type=int, default=None, help="override: samples in both scenarios")
    p.add_argument("--b-weights", type=float, nargs=2, default=None, help="override: (b) known weights")
    p.add_argument("--b-means", type=float, nargs=2, default=None, help="override: (b) true means")
    p.add_argument("--b-scales", type=float, nargs=2, default=None, help="override: (b) known std devs")
    p.add_argument("--no-midpoint-check", action="store_true", help="skip the transport_cost cross-check")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if not args.no_plot:  # before any compute: the figure is drawn last
        _common.require("matplotlib", why="energy_landscape's figure; or pass --no-plot")

    kw = _common.scale_settings(SCALES, args.scale)
    if args.grid is not None:
        kw["grid_b"] = args.grid
    if args.grid_1d is not None:
        kw["grid_a"] = args.grid_1d
    if args.n_samples is not None:
        kw["n_a"] = kw["n_b"] = args.n_samples
    for name in ("weights", "means", "scales"):
        if getattr(args, f"b_{name}") is not None:
            kw[f"{name}_b"] = tuple(getattr(args, f"b_{name}"))
    s = Settings(**kw)
    # float64 for this run only (scoped, so importing this module changes nothing).
    with jax.enable_x64(True):
        return _run(args, s)


def _run(args, s: Settings) -> dict:
    info = _common.run_info(args.scale)

    key_a, key_b = jax.random.split(jax.random.key(args.seed))
    with _common.Timer() as ta:
        res_a = run_scenario_a(key_a, s)
    with _common.Timer() as tb:
        res_b = run_scenario_b(key_b, s, with_midpoint=not args.no_midpoint_check)

    print(_table(res_a, res_b))
    print(
        f"(a) sample mean {res_a['sample_mean']:+.4f}; "
        f"curvature NLL {res_a['quadratic_fit']['nll']['curvature']:.4f}, "
        f"WM {res_a['quadratic_fit']['wm']['curvature']:.4f} (both exact quadratics in mu)"
    )
    if "midpoint_check" in res_b:
        mc = res_b["midpoint_check"]
        print(
            f"(b) exact WM vs transport_cost midpoint rule: max |diff| {mc['max_abs_diff']:.2e} "
            f"(rel {mc['max_rel_diff']:.2e}); midpoint surface has {mc['minima_raw']} local minima"
        )
    print(f"time: (a) {ta.seconds:.1f} s, (b) {tb.seconds:.1f} s")

    drop = ("grid", "samples", "nll", "wm", "wm_midpoint")
    result = {
        "run": info,
        "settings": dataclasses.asdict(s),
        "seed": args.seed,
        "grid_sizes": {"a": s.grid_a, "b": [s.grid_b, s.grid_b]},
        "grid_ranges": {"a": list(s.range_a), "b": list(s.range_b)},
        "minima_rule": "strict minima over the 2 (1D) / 8 (2D) neighbours, interior grid points only",
        "counts": {
            sc: {
                k: {c: r["minima"][k][c] for c in ("raw", "modulo_swap", "boundary_minima")}
                for k in ("nll", "wm")
            }
            for sc, r in (("a", res_a), ("b", res_b))
        },
        "scenario_a": {k: v for k, v in res_a.items() if k not in drop},
        "scenario_b": {k: v for k, v in res_b.items() if k not in drop},
        "seconds": {"a": ta.seconds, "b": tb.seconds},
    }
    info.finish()
    # One file name at every scale: the README reports whichever run wrote it last.
    json_path = _common.result_path("energy_landscape", "json", out_dir=args.out)
    _common.atomic_write_json(json_path, result)
    if not args.no_plot:
        plot(res_a, res_b, s, json_path.with_suffix(".png"))
    return result


if __name__ == "__main__":
    main()
