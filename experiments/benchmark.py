"""Speed of swgmm_jax against its peers, measured in one run on one machine.

1. One jitted SW loss+gradient step at N=10,000, d=64, K=10, 128 projections,
   against POT's ``ot.sliced_wasserstein_distance`` (NumPy backend, distance
   only, no gradient) between the data and 10,000 GMM samples on the same
   projections.
2. 100 restarts of K=10 on the ring-square-line data as one ``fit_restarts``
   call, against 100 sequential scikit-learn ``GaussianMixture`` fits
   (``init_params="random_from_data"``, ``max_iter=1000``, ``tol=1e-6``).

Prints a table and writes ``results/benchmark.json``. Timings are medians of
repeats; machines are noisy, so compare the ratios, which are measured in the
same run.

    python experiments/benchmark.py [--repeats 5] [--restarts 100]
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

import swgmm_jax as sw  # noqa: E402
from experiments._common import RESULTS, atomic_write_json, run_info  # noqa: E402
from swgmm_jax._fit import _fit_restarts_jit  # noqa: E402


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), [float(t) for t in times]


def bench_step(repeats: int, n=10_000, d=64, k=10, n_proj=128) -> dict:
    import ot

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.5, 2.0, d).astype(np.float32)
    params = sw.initialize(jax.random.key(0), x, k)
    xj = jnp.asarray(x)
    out = {"N": n, "d": d, "K": k, "n_projections": n_proj}
    for label, n_levels in [("levels_64", 64), ("levels_256", 256), ("all_levels", None)]:
        step = jax.jit(
            jax.value_and_grad(
                lambda p, key, nl=n_levels: sw.sliced_loss(p, xj, key, n_projections=n_proj, n_levels=nl)
            )
        )
        t0 = time.perf_counter()
        jax.block_until_ready(step(params, jax.random.key(1)))
        compile_s = time.perf_counter() - t0
        keys = iter(jax.random.split(jax.random.key(2), repeats))
        med, times = _median_time(lambda: step(params, next(keys)), repeats)
        out[f"swgmm_step_{label}_s"] = med
        out[f"swgmm_step_{label}_compile_s"] = compile_s
    # POT: distance only, same number of projections, NumPy backend.
    y = np.asarray(sw.sample(params, jax.random.key(3), n))
    theta = np.asarray(sw.random_directions(jax.random.key(4), n_proj, d)).T  # [d, L]
    med, _ = _median_time(
        lambda: ot.sliced_wasserstein_distance(x, y, n_projections=n_proj, projections=theta), repeats
    )
    out["pot_numpy_distance_s"] = med
    for label in ("levels_64", "levels_256", "all_levels"):
        out[f"ratio_{label}_vs_pot"] = out[f"swgmm_step_{label}_s"] / med
    return out


def bench_restarts(n_restarts: int, repeats: int) -> dict:
    from sklearn.mixture import GaussianMixture

    x = sw.datasets.ring_square_line()
    cfg = sw.FitConfig()
    keys = jax.random.split(jax.random.key(0), n_restarts)
    xj = jnp.asarray(x)
    t0 = time.perf_counter()
    compiled = _fit_restarts_jit.lower(keys, xj, None, n_components=10, config=cfg).compile()
    compile_s = time.perf_counter() - t0
    key_iter = iter(jax.random.split(jax.random.key(1), repeats))
    ours, _ = _median_time(lambda: compiled(jax.random.split(next(key_iter), n_restarts), xj, None), repeats)

    em_cfg = sw.EMConfig(max_iter=1000, tol=1e-6)
    em_compiled = jax.jit(
        lambda kk, xx: sw._em._fit_em_restarts_jit(kk, xx, None, n_components=10, config=em_cfg)
    ).lower(keys, xj).compile()
    em_iter = iter(jax.random.split(jax.random.key(2), repeats))
    ours_em, _ = _median_time(lambda: em_compiled(jax.random.split(next(em_iter), n_restarts), xj), repeats)

    x64 = x.astype(np.float64)

    def sklearn_all():
        for r in range(n_restarts):
            GaussianMixture(10, init_params="random_from_data", max_iter=1000, tol=1e-6, random_state=r).fit(x64)

    sk, _ = _median_time(sklearn_all, max(1, repeats // 2))
    return {
        "n_restarts": n_restarts,
        "K": 10,
        "N": int(x.shape[0]),
        "sw_config": repr(cfg),
        "swgmm_fit_restarts_s": ours,
        "swgmm_fit_restarts_compile_s": compile_s,
        "swgmm_em_restarts_s": ours_em,
        "sklearn_sequential_s": sk,
        "ratio_swgmm_vs_sklearn": ours / sk,
        "ratio_swgmm_em_vs_sklearn": ours_em / sk,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--restarts", type=int, default=100)
    ap.add_argument("--out", default=str(RESULTS / "benchmark.json"))
    args = ap.parse_args(argv)
    info = run_info("benchmark")
    step = bench_step(args.repeats)
    restarts = bench_restarts(args.restarts, max(1, args.repeats // 2))
    result = {"run": info, "step": step, "restarts": restarts}
    atomic_write_json(args.out, result)
    print(f"\nDevice: {info['device_kind']} ({info['backend']})")
    print("| measurement | ours | peer | ratio (ours/peer) |")
    print("|---|---|---|---|")
    for label in ("levels_64", "levels_256", "all_levels"):
        print(
            f"| SW loss+grad step, N=10k d=64 K=10 L=128, {label} vs POT distance (numpy) "
            f"| {step[f'swgmm_step_{label}_s'] * 1e3:.1f} ms | {step['pot_numpy_distance_s'] * 1e3:.1f} ms "
            f"| {step[f'ratio_{label}_vs_pot']:.2f} |"
        )
    print(
        f"| {args.restarts} SW restarts (fit_restarts, {sw.FitConfig().n_steps} steps) vs sklearn EM sequential "
        f"| {restarts['swgmm_fit_restarts_s']:.1f} s (compile {restarts['swgmm_fit_restarts_compile_s']:.1f} s) "
        f"| {restarts['sklearn_sequential_s']:.1f} s | {restarts['ratio_swgmm_vs_sklearn']:.2f} |"
    )
    print(
        f"| {args.restarts} EM restarts (fit_em_restarts) vs sklearn EM sequential "
        f"| {restarts['swgmm_em_restarts_s']:.1f} s | {restarts['sklearn_sequential_s']:.1f} s "
        f"| {restarts['ratio_swgmm_em_vs_sklearn']:.2f} |"
    )
    return result


if __name__ == "__main__":
    main()
