"""Scaling of one SW loss+gradient step with N, d, K and L, and peers on the same sizes.

For each axis (points ``N``, dimension ``d``, components ``K``, projections
``L``) the other three stay at a base point; each point times a jitted
``value_and_grad`` of :func:`swgmm_jax.sliced_loss` (defaults of
:class:`swgmm_jax.FitConfig`: its stratified levels per slice and quantile
iterations, ``sort="auto"``), separately reporting the compile time and the
median step time, and the log-log slope of step time against each axis.

Peers along the ``N`` axis (same ``d`` and ``L``; sample-based SW between the
data and ``N`` samples of the GMM, so not the same task: they sort both point
clouds and never solve a mixture quantile):

* ott-jax ``ott.tools.sliced.sliced_wasserstein``, jitted, value and gradient
  with respect to the samples;
* POT ``ot.sliced_wasserstein_distance``, NumPy backend (distance only), and
  JAX backend (jitted value and gradient when that works, else eager distance).

    python -m experiments.benchmark_scaling                     # CPU quick grid
    python -m experiments.benchmark_scaling --scale gpu         # larger grid
    python -m experiments.benchmark_scaling --point 1000000 128 64 1024   # one step

Writes ``results/benchmark_scaling.json`` (``benchmark_scaling_<scale>.json`` at
another scale, ``benchmark_scaling_point.json`` with ``--point``; ``--out`` to
change). Timings are medians of ``--repeats`` runs after one warm-up call.
"""

from __future__ import annotations

import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

import swgmm_jax as sw
from experiments import _common

SCALES = {
    # base (N, d, K, L) and the values of each axis
    "quick": {
        "base": (10_000, 16, 10, 64),
        "N": [2_500, 10_000, 40_000],
        "d": [4, 16, 64],
        "K": [5, 10, 20],
        "L": [16, 64, 256],
    },
    "gpu": {
        "base": (100_000, 64, 16, 256),
        "N": [25_000, 100_000, 400_000, 1_600_000],
        "d": [16, 64, 256],
        "K": [4, 16, 64],
        "L": [64, 256, 1024, 4096],
    },
    "smoke": {"base": (1_000, 4, 3, 16), "N": [500, 1_000], "d": [2, 4], "K": [2, 3], "L": [8, 16]},
}
AXES = ("N", "d", "K", "L")


def _median(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), [float(t) for t in times]


def _problem(n, d, k, seed=0):
    kx, kp = jax.random.split(jax.random.key(seed))
    # Generated on the device: no host copy of N x d values.
    scale = jnp.linspace(0.5, 2.0, d, dtype=jnp.float32)
    x = jax.random.normal(kx, (n, d), jnp.float32) * scale
    params = sw.initialize(kp, x[: min(n, 20_000)], k)
    return x, params


def time_step(n, d, k, n_proj, repeats, config=None):
    """Compile time and median time of one jitted SW loss+grad step."""
    config = sw.FitConfig() if config is None else config
    x, params = _problem(n, d, k)

    def loss(p, xx, key):
        return sw.sliced_loss(
            key,
            p,
            xx,
            n_projections=n_proj,
            n_levels=config.n_levels,
            quantile_iters=config.quantile_iters,
            sort=config.sort,
        )

    step = jax.jit(jax.value_and_grad(loss))
    key = jax.random.key(1)
    t0 = time.perf_counter()
    compiled = step.lower(params, x, key).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(params, x, key))
    first_s = time.perf_counter() - t0
    keys = iter(jax.random.split(jax.random.key(2), repeats))
    med, times = _median(lambda: compiled(params, x, next(keys)), repeats)
    return {
        "N": n,
        "d": d,
        "K": k,
        "L": n_proj,
        "n_levels": config.n_levels,
        "quantile_iters": config.quantile_iters,
        "compile_s": compile_s,
        "first_call_s": first_s,
        "step_s": med,
        "step_times_s": times,
    }


def slope(points, axis):
    xs = np.log([p[axis] for p in points])
    ys = np.log([p["step_s"] for p in points])
    return float(np.polyfit(xs, ys, 1)[0]) if len(points) > 1 else float("nan")


def _peer(name, fn, repeats, out):
    try:
        t0 = time.perf_counter()
        jax.block_until_ready(fn())  # warm-up (and compile, for jitted peers)
        first = time.perf_counter() - t0
        med, _ = _median(fn, repeats)
        out[name] = {"step_s": med, "first_call_s": first}
    except Exception as e:  # a missing or broken peer is recorded, not fatal
        out[name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
        traceback.print_exc(limit=1)


# Host (NumPy / eager) peers above this many projected values per cloud would
# take minutes per call; they are skipped there and recorded as skipped.
HOST_PEER_MAX_VALUES = 3e7


def time_peers(n, d, k, n_proj, repeats):
    x, params = _problem(n, d, k)
    y = sw.sample(jax.random.key(3), params, n)
    theta = sw.random_directions(jax.random.key(4), n_proj, d)
    out = {"N": n, "d": d, "K": k, "L": n_proj}
    try:
        from ott.tools import sliced as ott_sliced

        # Data passed as arguments, never closed over: a captured array is a
        # constant that XLA tries to fold (sort included) at compile time.
        def ott_loss(yy, xx, key):
            return ott_sliced.sliced_wasserstein(xx, yy, n_proj=n_proj, rng=key)[0]

        ott_step = jax.jit(jax.value_and_grad(ott_loss))
        _peer("ott_jax_value_and_grad", lambda: ott_step(y, x, jax.random.key(5)), repeats, out)
    except ImportError as e:
        out["ott_jax_value_and_grad"] = {"error": f"not installed: {e}"}
    try:
        import ot

        host_ok = n * n_proj <= HOST_PEER_MAX_VALUES
        if host_ok:
            xn, yn, tn = np.asarray(x), np.asarray(y), np.asarray(theta).T
            _peer(
                "pot_numpy_distance",
                lambda: ot.sliced_wasserstein_distance(xn, yn, n_projections=n_proj, projections=tn),
                repeats,
                out,
            )
        else:
            out["pot_numpy_distance"] = {"skipped": f"N*L > {HOST_PEER_MAX_VALUES:g}"}
        tj = theta.T

        def pot_jax_loss(yy, xx, tt):
            return ot.sliced_wasserstein_distance(xx, yy, n_projections=n_proj, projections=tt)

        pot_step = jax.jit(jax.value_and_grad(pot_jax_loss))
        _peer("pot_jax_value_and_grad", lambda: pot_step(y, x, tj), repeats, out)
        if "error" in out["pot_jax_value_and_grad"] and host_ok:
            _peer("pot_jax_distance_eager", lambda: pot_jax_loss(y, x, tj), repeats, out)
    except ImportError as e:
        out["pot"] = {"error": f"not installed: {e}"}
    return out


def run_grid(scale, repeats, peers=True):
    grid = _common.scale_settings(SCALES, scale)
    base = dict(zip(AXES, grid["base"], strict=True))
    cache, axes = {}, {}
    for axis in AXES:
        pts = []
        for v in grid[axis]:
            cfg = {**base, axis: v}
            key = tuple(cfg[a] for a in AXES)
            if key not in cache:
                cache[key] = time_step(*key, repeats)
                r = cache[key]
                print(
                    f"N={key[0]:>9} d={key[1]:>4} K={key[2]:>4} L={key[3]:>5}: "
                    f"step {r['step_s'] * 1e3:9.2f} ms (compile {r['compile_s']:.1f} s)",
                    flush=True,
                )
            pts.append(cache[key])
        axes[axis] = {"points": pts, "loglog_slope": slope(pts, axis)}
    out = {"base": base, "axes": axes}
    if peers:
        out["peers"] = []
        for n in grid["N"]:
            p = time_peers(n, base["d"], base["K"], base["L"], repeats)
            ours = cache[(n, base["d"], base["K"], base["L"])]["step_s"]
            p["swgmm_step_s"] = ours
            out["peers"].append(p)
            summary = ", ".join(
                f"{k} {v['step_s'] * 1e3:.1f} ms"
                for k, v in p.items()
                if isinstance(v, dict) and "step_s" in v
            )
            print(f"peers N={n}: swgmm {ours * 1e3:.1f} ms, {summary}", flush=True)
        for name in ("ott_jax_value_and_grad", "pot_numpy_distance", "pot_jax_value_and_grad"):
            pts = [
                {"N": p["N"], "step_s": p[name]["step_s"]}
                for p in out["peers"]
                if "step_s" in p.get(name, {})
            ]
            out.setdefault("peer_slopes_N", {})[name] = slope(pts, "N") if len(pts) > 1 else None
    return out


def main(argv=None):
    ap = _common.argument_parser(__doc__)
    _common.add_scale_argument(ap, SCALES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--point", type=int, nargs=4, metavar=("N", "d", "K", "L"), help="time one step only")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--floor-ms", type=float, default=None, help="reference step time to record next to --point"
    )
    ap.add_argument(
        "--out",
        default=None,
        help="results JSON (default results/benchmark_scaling[_<scale>].json, _point with --point)",
    )
    args = ap.parse_args(argv)
    label = args.scale if args.point is None else "point"
    out = args.out or _common.result_path("benchmark_scaling", scale=label)
    info = _common.run_info(label)
    result = {"run": info}
    if args.point is not None:
        r = time_step(*args.point, args.repeats)
        r["floor_ms"] = args.floor_ms
        result["point"] = r
        print(
            f"step N={args.point[0]} d={args.point[1]} K={args.point[2]} L={args.point[3]}: "
            f"{r['step_s'] * 1e3:.1f} ms (median of {args.repeats}), compile {r['compile_s']:.1f} s, "
            f"first call {r['first_call_s']:.2f} s" + (f"; floor {args.floor_ms} ms" if args.floor_ms else "")
        )
    else:
        result["scale"] = args.scale
        result["grid"] = run_grid(args.scale, args.repeats, peers=not args.no_peers)
        g = result["grid"]
        print(
            "\nlog-log slopes of step time: "
            + ", ".join(f"{a} {g['axes'][a]['loglog_slope']:.2f}" for a in AXES)
        )
        if "peer_slopes_N" in g:
            print(
                "peer slopes in N: "
                + ", ".join(f"{k} {v:.2f}" for k, v in g["peer_slopes_N"].items() if v is not None)
            )
    info.finish()
    _common.atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
