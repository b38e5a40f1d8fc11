"""Covariance types: the cost of one fit step against the dimension, and fit quality in high dimension.

Two parts, one run:

1. **Step time against d** for each covariance type (``"full"``, ``"diag"``,
   ``"spherical"``, ``"tied"``): one jitted step of the SW fit
   (:func:`swgmm_jax.make_fit_step` with the default :class:`swgmm_jax.FitConfig`
   but the type: loss, gradient and RMSProp update) at fixed ``N``, ``K`` and
   the config's projections, for ``d`` up to 1,024; compile time and the
   median of ``--repeats`` steps, and the log-log slope of step time against
   ``d`` over the two largest ``d`` (where the fixed costs no longer dominate)
   and over the whole grid. The slice variance is ``|L_k^T theta|^2`` for
   full covariances (``O(L K d^2)`` per step) and ``(theta^2) . s_k^2`` for
   diagonal ones (``O(L K d)``), after the ``O(L N d)`` projection of the data
   that every type shares.
2. **Quality on diagonal data in high dimension**: ``K`` components with
   axis-aligned, strongly anisotropic covariances (standard deviations spread
   over a factor 10) in ``d`` dimensions, fitted with ``"diag"`` and with
   ``"full"`` by the SW fit (defaults) and by EM (k-means init); the held-out
   mean log-likelihood (a test set drawn from the same mixture), its gap to
   the truth's, the share of fits whose means all match the truth (Hungarian
   matching; each fitted mean within ``0.5 sqrt(d)`` times the smallest true
   standard deviation of its true mean, half a standard deviation per
   coordinate) and the wall time per fit.

    python -m experiments.benchmark_covtypes                 # CPU: d to 1,024; quality at d = 100, 300, 1,000
    python -m experiments.benchmark_covtypes --scale full    # larger N, K and n, d to 2,048 (GPU)
    python -m experiments.benchmark_covtypes --scale smoke   # the tests' tiny run

Writes ``results/benchmark_covtypes.json`` (``benchmark_covtypes_<scale>.json``
at another scale; ``--out`` to change).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import swgmm_jax as sw
from experiments import _common

SCALES = {
    "quick": {
        "step_dims": [16, 64, 256, 1024],
        "step_n": 4096,
        "step_k": 8,
        "quality_dims": [100, 300, 1000],
        "quality_k": 5,
        "quality_n": 5000,
        "seeds": 3,
    },
    "full": {
        "step_dims": [16, 64, 256, 1024, 2048],
        "step_n": 65536,
        "step_k": 16,
        "quality_dims": [100, 300, 1000],
        "quality_k": 8,
        "quality_n": 20000,
        "seeds": 5,
    },
    "smoke": {
        "step_dims": [4, 8],
        "step_n": 256,
        "step_k": 3,
        "quality_dims": [6],
        "quality_k": 2,
        "quality_n": 400,
        "seeds": 1,
        "sw_steps": 20,
    },
}
TYPES = sw.COVARIANCE_TYPES


def _median(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), [float(t) for t in times]


def time_step(ct: str, n: int, d: int, k: int, repeats: int) -> dict:
    """Compile time and median time of one jitted SW fit step of type ``ct``."""
    kx, kp = jax.random.split(jax.random.key(d))
    x = jax.random.normal(kx, (n, d), jnp.float32) * jnp.linspace(0.5, 2.0, d, dtype=jnp.float32)
    config = sw.FitConfig(covariance_type=ct, init="random_from_data")
    fit_step = sw.make_fit_step(config)
    state = jax.jit(fit_step.init, static_argnums=2)(kp, x, k)
    step = jax.jit(fit_step.step)
    key = jax.random.key(1)
    t0 = time.perf_counter()
    compiled = step.lower(key, state, x).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(key, state, x))
    keys = iter(jax.random.split(jax.random.key(2), repeats))
    med, times = _median(lambda: compiled(next(keys), state, x), repeats)
    return {
        "type": ct,
        "N": n,
        "d": d,
        "K": k,
        "L": config.n_projections,
        "compile_s": compile_s,
        "step_s": med,
        "step_times_s": times,
    }


def _slope(points, last: int | None = None) -> float:
    pts = points if last is None else points[-last:]
    if len(pts) < 2:
        return float("nan")
    return float(np.polyfit(np.log([p["d"] for p in pts]), np.log([p["step_s"] for p in pts]), 1)[0])


def _diag_problem(d: int, k: int, n: int, seed: int):
    """Well-separated means, axis-aligned anisotropic covariances, weights 1..2 (normalised)."""
    rng = np.random.default_rng(seed)
    stds = np.exp(rng.uniform(np.log(0.1), np.log(1.0), (k, d)))
    means = rng.normal(size=(k, d)) * 1.0  # typical distance sqrt(2 d): many standard deviations
    w = rng.uniform(1.0, 2.0, k)
    truth = sw.from_moments(w / w.sum(), means, stds**2, reg_covar=1e-6, covariance_type="diag")
    x = np.asarray(sw.sample(jax.random.key(seed), truth, n))
    x_test = np.asarray(sw.sample(jax.random.key(seed + 1000), truth, n))
    return truth, x, x_test, stds


def _all_recovered(fitted_means, true_means, tol) -> bool:
    from scipy.optimize import linear_sum_assignment

    cost = np.linalg.norm(np.asarray(fitted_means)[:, None] - true_means[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return bool(np.all(cost[rows, cols] < tol))


def quality(d: int, k: int, n: int, seeds: int, sw_steps: int | None = None) -> dict:
    out = {"d": d, "K": k, "n": n, "methods": {}}
    fits = {f"{kind}_{ct}": (kind, ct) for kind in ("sw", "em") for ct in ("diag", "full")}
    truth_ll = []
    for name, (kind, ct) in fits.items():
        rows = []
        for seed in range(seeds):
            truth, x, x_test, stds = _diag_problem(d, k, n, seed)
            if name == "sw_diag":
                truth_ll.append(float(sw.log_likelihood(truth, x_test)))
            t0 = time.perf_counter()
            if kind == "sw":
                cfg_sw = sw.FitConfig(covariance_type=ct)  # the defaults (the tests' smoke run: fewer steps)
                cfg_sw = cfg_sw if sw_steps is None else cfg_sw.replace(n_steps=sw_steps)
                params = sw.fit(jax.random.key(seed), x, k, cfg_sw).params
            else:
                cfg = sw.EMConfig(covariance_type=ct, init="kmeans", max_iter=300)
                params = sw.fit_em(jax.random.key(seed), x, k, cfg).params
            jax.block_until_ready(params)
            wall = time.perf_counter() - t0
            test_ll = float(sw.log_likelihood(params, x_test))
            tol = 0.5 * float(stds.min()) * np.sqrt(d)
            rows.append(
                {
                    "seed": seed,
                    "wall_s": wall,
                    "test_ll": test_ll,
                    "recovered": _all_recovered(params.means, np.asarray(truth.means), tol),
                }
            )
            print(f"  d={d} {name} seed {seed}: test ll {test_ll:.3f}, {wall:.1f} s", flush=True)
        out["methods"][name] = {
            "runs": rows,
            "test_ll_mean": float(np.mean([r["test_ll"] for r in rows])),
            "recovered": float(np.mean([r["recovered"] for r in rows])),
            "median_wall_s": float(np.median([r["wall_s"] for r in rows])),
        }
    out["truth_test_ll_mean"] = float(np.mean(truth_ll))
    for m in out["methods"].values():
        m["gap_to_truth"] = out["truth_test_ll_mean"] - m["test_ll_mean"]
    return out


def main(argv=None):
    ap = _common.argument_parser(__doc__)
    _common.add_scale_argument(ap, SCALES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    st = _common.scale_settings(SCALES, args.scale)
    out = args.out or _common.result_path("benchmark_covtypes", scale=args.scale)
    info = _common.run_info(args.scale)
    result = {"run": info, "settings": st, "steps": {}, "slopes": {}, "quality": []}
    for ct in TYPES:
        points = []
        for d in st["step_dims"]:
            r = time_step(ct, st["step_n"], d, st["step_k"], args.repeats)
            points.append(r)
            print(
                f"{ct:9s} d={d:5d}: step {r['step_s'] * 1e3:8.2f} ms, compile {r['compile_s']:.1f} s",
                flush=True,
            )
        result["steps"][ct] = points
        result["slopes"][ct] = {"last_two": _slope(points, 2), "all": _slope(points)}
        _common.atomic_write_json(out, result)
    print(
        "log-log slopes of step time in d (two largest d): "
        + ", ".join(f"{ct} {s['last_two']:.2f}" for ct, s in result["slopes"].items()),
        flush=True,
    )
    for d in st["quality_dims"]:
        result["quality"].append(
            quality(d, st["quality_k"], st["quality_n"], st["seeds"], st.get("sw_steps"))
        )
        _common.atomic_write_json(out, result)
    info.finish()
    _common.atomic_write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
