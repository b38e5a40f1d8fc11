"""Accuracy of the mixture quantile solver against its iteration count (``sw.QUANTILE_ITERS``).

60 random 1D Gaussian mixtures (K = 2, 5, 10 or 32; Dirichlet weights of several
concentrations; means and log-scales spread over several orders of magnitude),
each at 64 stratified levels; the reference is scipy's ``brentq`` on the CDF (or
the survival function above 1/2) in float64. The error is reported relative to
the mixture's span (``max(m + 3 s) - min(m - 3 s)``), in float32 and float64.

Run: ``python -m experiments.quantile_iters`` (about a minute on 2 CPU cores);
writes ``results/quantile_iters.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.stats

import swgmm_jax as sw
from experiments import _common

SCALES = {"quick": {"n_mixtures": 60, "n_levels": 64}, "smoke": {"n_mixtures": 6, "n_levels": 8}}
ITERATIONS = (1, 2, 3, 4, 5, 6, 8, 12, 16)


def mixtures(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for _ in range(n):
        k = int(rng.choice([2, 5, 10, 32]))
        w = rng.dirichlet(np.ones(k) * rng.choice([0.3, 1.0, 5.0]))
        m = rng.normal(size=k) * rng.choice([0.5, 3.0, 20.0])
        s = np.exp(rng.normal(size=k) * rng.choice([0.1, 1.0, 2.0])) * 0.3
        out.append((w, m, s))
    return out


def reference_quantile(z: float, w: np.ndarray, m: np.ndarray, s: np.ndarray) -> float:
    def lower(t):
        return np.sum(w * scipy.stats.norm.cdf((t - m) / s)) - z

    def upper(t):
        return np.sum(w * scipy.stats.norm.sf((t - m) / s)) - (1.0 - z)

    lo, hi = np.min(m - 40 * s), np.max(m + 40 * s)
    return scipy.optimize.brentq(lower if z <= 0.5 else upper, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500)


def main() -> None:
    parser = _common.argument_parser(__doc__)
    _common.add_scale_argument(parser, SCALES)
    args = parser.parse_args()
    settings = _common.scale_settings(SCALES, args.scale)
    info = _common.run_info(args.scale)
    rng = np.random.default_rng(0)
    mix = mixtures(rng, settings["n_mixtures"])
    n_levels = settings["n_levels"]
    z = np.clip((np.arange(n_levels) + rng.uniform(size=n_levels)) / n_levels, 1e-6, 1 - 1e-6)
    refs = [np.array([reference_quantile(float(zi), *mx) for zi in z]) for mx in mix]
    table = {}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            rows = {}
            for iters in ITERATIONS:
                errs = []
                for (w, m, s), ref in zip(mix, refs, strict=True):
                    q = sw.mixture_quantile(
                        jnp.asarray(z, dtype),
                        jnp.log(jnp.asarray(w, dtype)),
                        jnp.asarray(m, dtype),
                        jnp.asarray(s, dtype),
                        quantile_iters=iters,
                    )
                    span = np.max(m + 3 * s) - np.min(m - 3 * s)
                    errs.append(float(np.max(np.abs(np.asarray(q, np.float64) - ref)) / span))
                e = np.asarray(errs)
                row = {
                    "median": float(np.median(e)),
                    "p95": float(np.quantile(e, 0.95)),
                    "max": float(e.max()),
                }
                rows[str(iters)] = row
                print(
                    f"{dtype} {iters:3d} iterations: median {row['median']:.2e} p95 {row['p95']:.2e} "
                    f"max {row['max']:.2e}",
                    flush=True,
                )
            table[dtype] = rows
    out = {"run": info.finish(), "default": sw.QUANTILE_ITERS, "settings": settings, "relative_error": table}
    _common.atomic_write_json(_common.result_path("quantile_iters", scale=args.scale), out)


if __name__ == "__main__":
    main()
