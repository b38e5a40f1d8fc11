"""Large data: a streamed fit (`sw.fit_stream`) from a memmap, bounded memory, vs a full-data fit.

Data: ``n`` points in ``d`` dimensions from a known ``K``-component GMM, written
to a raw float32 file in chunks (never held whole in memory) and read back as
a ``numpy.memmap``. The streamed fit draws ``batch`` points per step on the
host and sends ``chunk`` steps at a time to the device; its peak resident
memory (``ru_maxrss``) is set by those settings, not by ``n``. Where
``n <= --full-max``, the same data is also loaded and fitted with all points
every step (``sw.fit``, ``batch_size=None``) from the same initialisation, and
both fits are scored on held-out points (mean log-likelihood, and SW_2^2 on
fixed directions).

    python -m experiments.large_data                  # quick: n=50,000, two batch sizes + full
    python -m experiments.large_data --scale large    # n=10,000,000, streamed only (writes a 640 MB file)
    python -m experiments.large_data --n 200000       # any n (the scale's other settings)

Writes ``results/large_data.json`` (one entry per ``n``; at the smoke scale
``results/large_data_smoke.json``).
"""

from __future__ import annotations

import os
import pathlib
import resource
import tempfile
import time

import jax
import numpy as np

import swgmm_jax as sw
from experiments import _common

# Every scale runs the same sequence of fits, so that peak RSS compares across n.
_FIT = dict(d=16, k=20, batch=(512, 4096), steps=500, chunk=50, projections=16, levels=64)
SCALES = {
    "quick": dict(n=50_000, **_FIT),
    "large": dict(n=10_000_000, **_FIT),
    "smoke": dict(n=5_000, d=4, k=3, batch=(256,), steps=20, chunk=10, projections=8, levels=16),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def true_gmm(d, k, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(k, d))
    a = rng.normal(size=(k, d, d)) / np.sqrt(d)
    covs = 0.5 * (a @ np.swapaxes(a, 1, 2)) + 0.1 * np.eye(d)
    weights = rng.dirichlet(np.full(k, 5.0))
    return weights, means, covs


def sample_into(f, n, gmm, seed, chunk=250_000):
    """Write ``n`` float32 points of the GMM to the open file ``f``, ``chunk`` at a time."""
    weights, means, covs = gmm
    chol = np.linalg.cholesky(covs)
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        lab = rng.choice(len(weights), size=m, p=weights)
        eps = rng.standard_normal((m, means.shape[1]))
        x = np.empty((m, means.shape[1]), np.float32)
        for j in range(len(weights)):
            sel = lab == j
            x[sel] = means[j] + eps[sel] @ chol[j].T
        x.tofile(f)


def sample(n, gmm, seed):
    with tempfile.TemporaryFile() as f:
        sample_into(f, n, gmm, seed)
        f.seek(0)
        return np.fromfile(f, np.float32).reshape(n, -1)


def score(params, x_test, eval_key, ll_true):
    ll = float(sw.log_likelihood(params, x_test))
    swd = float(sw.sliced_wasserstein(eval_key, params, x_test, n_projections=256, n_levels=256))
    return {"test_loglik": ll, "test_loglik_gap_to_truth": ll_true - ll, "test_sw2": swd}


def main(argv=None):
    ap = _common.argument_parser(__doc__)
    _common.add_scale_argument(ap, SCALES)
    ap.add_argument("--n", type=int, default=None, help="points (default per scale)")
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="minibatch sizes (default per scale)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--projections", type=int, default=None)
    ap.add_argument("--levels", type=int, default=None)
    ap.add_argument("--full-max", type=int, default=300_000, help="also fit on all points when n <= this")
    ap.add_argument("--data-dir", default=tempfile.gettempdir())
    ap.add_argument("--out", default=None, help="results JSON (default results/large_data[_smoke].json)")
    ap.add_argument(
        "--force", action="store_true", help="overwrite a corrupt results JSON instead of stopping"
    )
    args = ap.parse_args(argv)
    # One file for the quick and large scales (an entry per n, to compare across n); smoke runs apart.
    json_path = args.out or _common.result_path(
        "large_data", scale="smoke" if args.scale == "smoke" else None
    )
    _common.load_results(json_path, force=args.force)  # a corrupt file stops the run before the compute
    s = _common.scale_settings(SCALES, args.scale)
    for name in ("n", "d", "k", "batch", "steps", "chunk", "projections", "levels"):
        if getattr(args, name) is None:
            setattr(args, name, s[name])
    full = args.n <= args.full_max
    batches = list(args.batch)

    info = _common.run_info(args.scale)
    jax.numpy.zeros(1).block_until_ready()
    rss = {"after_start_peak_mb": peak_rss_mb()}
    gmm = true_gmm(args.d, args.k)
    x_test = sample(20_000, gmm, seed=2)
    w, m, c = (jax.numpy.asarray(a, jax.numpy.float32) for a in gmm)
    ll_true = float(sw.log_likelihood(sw.from_moments(w, m, c), x_test))

    path = pathlib.Path(args.data_dir) / f"swgmm_large_{args.n}_{args.d}.f32"
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        sample_into(f, args.n, gmm, seed=1)
    gen_s = time.perf_counter() - t0
    data = np.memmap(path, dtype=np.float32, mode="r", shape=(args.n, args.d))
    rss["after_data_peak_mb"] = peak_rss_mb()
    print(
        f"data: {args.n} x {args.d} float32 ({path.stat().st_size / 2**20:.0f} MiB file) in {gen_s:.1f} s; "
        f"peak RSS {rss['after_data_peak_mb']:.0f} MB",
        flush=True,
    )

    # Same initialisation for every fit and every n: k-means++ on 20,000 fresh
    # points of the same distribution (fixed seed), so runs at different n differ
    # by their data only.
    init_sample = sample(20_000, gmm, seed=3)
    init = sw.initialize(jax.random.key(3), init_sample, args.k, method="kmeans++")
    eval_key = jax.random.key(99)
    out = {
        "run": info,
        "n": args.n,
        "d": args.d,
        "k": args.k,
        "steps": args.steps,
        "chunk_steps": args.chunk,
        "n_projections": args.projections,
        "n_levels": args.levels,
        "data_seconds": gen_s,
        "data_file_mb": path.stat().st_size / 2**20,
        "truth_test_loglik": ll_true,
        "fits": {},
    }
    out["fits"]["init"] = score(init, x_test, eval_key, ll_true)
    out["fits"]["truth"] = score(
        sw.from_moments(w, m, c), x_test, eval_key, ll_true
    )  # noise floor of test_sw2

    for b in batches:
        cfg = sw.FitConfig(
            n_steps=args.steps, n_projections=args.projections, n_levels=args.levels, batch_size=b
        )
        t0 = time.perf_counter()
        res = sw.fit_stream(jax.random.key(4), data, args.k, cfg, init=init, chunk_steps=args.chunk)
        res.params.means.block_until_ready()
        secs = time.perf_counter() - t0
        entry = {
            "seconds": secs,
            "batch_size": b,
            "peak_rss_mb": peak_rss_mb(),
            "rss_mb": current_rss_mb(),
            "device_batch_mb_per_chunk": args.chunk * b * args.d * 4 / 2**20,
            "final_loss": float(np.mean(np.asarray(res.loss_history)[-50:])),
            **score(res.params, x_test, eval_key, ll_true),
        }
        out["fits"][f"stream_b{b}"] = entry
        print(
            f"stream b={b}: {secs:.1f} s, peak RSS {entry['peak_rss_mb']:.0f} MB, "
            f"test loglik {entry['test_loglik']:.3f} (truth {ll_true:.3f}), test SW2 {entry['test_sw2']:.4f}",
            flush=True,
        )

    if full:
        x = np.array(data)  # in memory from here on
        cfg = sw.FitConfig(n_steps=args.steps, n_projections=args.projections, n_levels=args.levels)
        t0 = time.perf_counter()
        res = sw.fit(jax.random.key(4), x, args.k, cfg, init=init, mesh=None)
        res.params.means.block_until_ready()
        secs = time.perf_counter() - t0
        entry = {
            "seconds": secs,
            "batch_size": None,
            "peak_rss_mb": peak_rss_mb(),
            "final_loss": float(np.mean(np.asarray(res.loss_history)[-50:])),
            **score(res.params, x_test, eval_key, ll_true),
        }
        out["fits"]["full"] = entry
        print(
            f"full data: {secs:.1f} s, test loglik {entry['test_loglik']:.3f}, "
            f"test SW2 {entry['test_sw2']:.4f}",
            flush=True,
        )
    out["rss"] = rss
    del data
    path.unlink()

    info.finish()
    results = _common.load_results(json_path, force=args.force) or {}
    results[str(args.n)] = out
    _common.atomic_write_json(json_path, results)
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
