"""Figure 3 of the paper: robustness to initialisation on the ring-square-line data.

K = 10 components, ``R`` random initialisations (the same ``R`` initial
parameter sets for every method), fitted by

* ``em``: the package's JAX EM (tol 1e-6, max 1,000 iterations);
* ``em_sklearn``: scikit-learn's ``GaussianMixture`` from the same initial
  parameters (cross-check of the JAX EM);
* ``sw``: pure SW-GMM (the package defaults);
* ``sw+em25``: SW-GMM followed by 25 EM iterations (what the authors' public
  demo silently does);
* ``sw+em``: SW-GMM followed by EM to convergence (tol 1e-6);
* ``sw_fixed_w`` / ``sw_fixed_w+em``: SW with the weights kept at 1/K (the
  authors' 2D demo), pure and followed by EM to convergence;
* ``sw_reloc`` / ``sw_reloc+em``: SW with merge-and-relocate rounds accepted by
  the sliced distance (``FitConfig(relocations=12)`` at the quick scale), pure and followed by EM
  to convergence;
* ``em_reloc``: EM with merge-and-relocate rounds accepted by the likelihood
  (``EMConfig(relocations=20)``, a split-and-merge EM), no SW at all: the
  ablation that shows what the moves do without SW;
* ``sw_reloc+em_reloc``: the two in sequence, from the ``sw_reloc`` fits.

"Optimal" is defined once, for every method alike: a run is optimal when its
final NLL (negative mean log-likelihood) is within 0.5% (resp. 1%) of the best
NLL that any run of any method reached. SW distances are evaluated on the same
fixed 256 directions (all data levels) for every run.

Also reported: the fooling rate of each restart's fit (the paper's Figure 6,
ring-square-line row: its 2-8-16-8 discriminator, trained on the data against
samples of the fit, scored on a fresh draw of the generator), and how well the
SW distance of an SW fit predicts that its EM polish is optimal (selection of
restarts by SW distance).

Writes ``results/ring_square_line.json`` and ``results/ring_square_line.png``
(``ring_square_line_<scale>.*`` at a scale other than ``quick``).

    python experiments/ring_square_line.py [--scale quick|paper] [--data PATH]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import swgmm_jax as sw  # noqa: E402
from experiments._common import RESULTS, Timer, atomic_savefig, atomic_write_json, run_info  # noqa: E402

DISC = dict(epochs=300, batch_size=100, lr=1e-3)  # the fooling-rate discriminator's training
SCALES = {
    "quick": dict(n_restarts=100, sw=dict(n_steps=500), sw_reloc=dict(relocations=12), em_relocations=20, disc=DISC),
    "paper": dict(
        n_restarts=100, sw=dict(n_steps=2000, n_projections=32, n_levels=128),
        sw_reloc=dict(relocations=12), em_relocations=20, disc=DISC,
    ),
    # For the tests only: every code path, in seconds.
    "smoke": dict(
        n_restarts=4, sw=dict(n_steps=20, n_levels=16),
        sw_reloc=dict(relocations=2, relocation_steps=10, relocation_projections=8, relocation_levels=16),
        em_relocations=2, disc=dict(epochs=3, batch_size=100, lr=1e-3),
    ),
}
K = 10


def method_descriptions(reloc_config, em_reloc_config) -> dict:
    r_sw, r_em = reloc_config.relocations, em_reloc_config.relocations
    return {
        "em": "EM (package JAX EM, tol 1e-6) from the random init",
        "em_sklearn": "scikit-learn GaussianMixture from the same init (cross-check)",
        "sw": "pure SW-GMM (the SW config above)",
        "sw+em25": "SW-GMM then 25 EM iterations (the authors' public demo)",
        "sw+em": "SW-GMM then EM to convergence",
        "sw_fixed_w": "SW-GMM with weights fixed at 1/K",
        "sw_fixed_w+em": "SW-GMM with weights fixed at 1/K, then EM to convergence",
        "sw_reloc": f"SW-GMM + {r_sw} merge-and-relocate rounds accepted by SW distance",
        "sw_reloc+em": "sw_reloc then EM to convergence",
        "em_reloc": f"EM + {r_em} merge-and-relocate rounds accepted by likelihood (split-and-merge EM; no SW)",
        "sw_reloc+em_reloc": f"sw_reloc then EM + {r_em} likelihood-accepted rounds",
    }


def load_data(path: str | None, n: int, seed: int) -> np.ndarray:
    """The embedded generator, or any 2-column text / .npy file."""
    if path is None:
        return sw.datasets.ring_square_line(n=n, seed=seed)
    p = pathlib.Path(path)
    x = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, ndmin=2)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"--data must hold a [n, 2] array, got shape {x.shape}")
    return x.astype(np.float32)


# Evaluation of all restarts of a method at once; one compilation serves every method.
_log_likelihoods = jax.jit(jax.vmap(sw.log_likelihood, (0, None)))
_sliced_losses = jax.jit(jax.vmap(
    lambda p, x, key: sw.sliced_loss(p, x, key, n_projections=256, n_levels=None, quantile_iters=24), (0, None, None)
))


def _nll(params, x):
    return -np.asarray(_log_likelihoods(params, x))


def _sw(params, x, key):
    return np.asarray(_sliced_losses(params, x, key))


def run_methods(x, init, sw_config, em_config, reloc_config, em_reloc_config):
    """Every method from the same initial parameters, each as one jitted vmapped call over the restarts.

    Returns ``{name: params}``, ``{name: (wall s, compile s)}`` and extra per-run outputs.
    """
    r = init.means.shape[0]
    key = jax.random.key(1)
    fits, timing = {}, {}

    def timed(name, fn):
        """Run one method's call; record (wall s, compile included; s JAX spent compiling in it)."""
        with Timer() as t:
            out = jax.block_until_ready(fn())
        timing[name] = (t.seconds, t.compile_seconds)
        print(f"{name}: {r} restarts in {t.seconds:.1f} s (compile {t.compile_seconds:.1f} s)", flush=True)
        return out

    em = timed("em", lambda: sw.fit_em_restarts(key, x, K, r, em_config, init=init))
    fits["em"] = em.params

    res = timed("sw", lambda: sw.fit_restarts(key, x, K, r, sw_config, init=init))
    fits["sw"] = res.params
    polish = jax.jit(jax.vmap(sw.polish_em, (0, None, None)), static_argnums=2)
    fits["sw+em25"] = timed("sw+em25", lambda: polish(res.params, x, 25))
    full = timed("sw+em", lambda: sw.fit_em_restarts(key, x, K, r, em_config, init=res.params))
    fits["sw+em"] = full.params

    fixed_cfg = sw.FitConfig(**{**_fields(sw_config), "learn_weights": False})
    resf = timed("sw_fixed_w", lambda: sw.fit_restarts(key, x, K, r, fixed_cfg, init=init))
    fits["sw_fixed_w"] = resf.params
    fullf = timed("sw_fixed_w+em", lambda: sw.fit_em_restarts(key, x, K, r, em_config, init=resf.params))
    fits["sw_fixed_w+em"] = fullf.params

    resr = timed("sw_reloc", lambda: sw.fit_restarts(key, x, K, r, reloc_config, init=init))
    fits["sw_reloc"] = resr.params
    fullr = timed("sw_reloc+em", lambda: sw.fit_em_restarts(key, x, K, r, em_config, init=resr.params))
    fits["sw_reloc+em"] = fullr.params
    emr = timed("em_reloc", lambda: sw.fit_em_restarts(key, x, K, r, em_reloc_config, init=init))
    fits["em_reloc"] = emr.params
    both = timed("sw_reloc+em_reloc", lambda: sw.fit_em_restarts(key, x, K, r, em_reloc_config, init=resr.params))
    fits["sw_reloc+em_reloc"] = both.params
    accepted = {
        "sw_reloc": np.asarray(resr.relocation_accepted).mean(axis=0).tolist(),
        "em_reloc": np.asarray(emr.relocation_accepted).mean(axis=0).tolist(),
        "sw_reloc+em_reloc": np.asarray(both.relocation_accepted).mean(axis=0).tolist(),
    }
    return fits, timing, {"sw": res.loss_history, "em_n_iter": em.n_iter, "accepted": accepted}


def _fields(cfg):
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def sklearn_em(x, init, em_config):
    from sklearn.mixture import GaussianMixture

    w, m, c = (np.asarray(a, np.float64) for a in jax.vmap(sw.to_moments)(init))
    nll = []
    with Timer() as t:
        for i in range(w.shape[0]):
            g = GaussianMixture(
                K, max_iter=em_config.max_iter, tol=em_config.tol, reg_covar=em_config.reg_covar,
                weights_init=w[i] / w[i].sum(), means_init=m[i], precisions_init=np.linalg.inv(c[i]),
            ).fit(np.asarray(x, np.float64))
            nll.append(-g.score(np.asarray(x, np.float64)))
    return np.array(nll), (t.seconds, 0.0)


# Figure 6's ring-square-line row: the paper's discriminator (2 -> 8 -> 16 -> 8 -> 2 dense layers;
# one logit here), trained per restart to tell the data from samples of the fitted GMM.
FOOLING_METHODS = ("em", "sw", "sw+em25", "sw_reloc+em_reloc")


def fooling_rates(key, x, x_test, fits, disc: dict) -> dict:
    """Per method and restart: the balanced error of a discriminator trained on ``x`` against
    samples of the fit, on held-out real points ``x_test`` and fresh samples (as many as real)."""
    from experiments import _nets

    spec = _nets.mlp_spec((8, 16, 8))
    mu, sd = x.mean(0), x.std(0)
    scale = lambda a: (a - mu) / sd  # noqa: E731  (the real data's statistics, as in the embedding study)
    draw = jax.jit(jax.vmap(sw.sample, (0, 0, None)), static_argnums=2)
    logits = jax.jit(jax.vmap(lambda p, a: _nets.apply_net(p, spec, a)[:, 0], (0, None)))
    logits_own = jax.jit(jax.vmap(lambda p, a: _nets.apply_net(p, spec, a)[:, 0]))
    out = {}
    for i, name in enumerate(m for m in FOOLING_METHODS if m in fits):
        k_tr, k_te, k_disc = jax.random.split(jax.random.fold_in(key, i), 3)
        r = fits[name].means.shape[0]
        fake_tr = draw(fits[name], jax.random.split(k_tr, r), x.shape[0])
        fake_te = draw(fits[name], jax.random.split(k_te, r), x_test.shape[0])
        nets, _ = _nets.train_binary_many(k_disc, scale(x), scale(fake_tr), spec, **disc)
        rate, _, on_fake = jax.vmap(sw.fooling_rate, (0, 0, None))(
            logits(nets, scale(x_test)), logits_own(nets, scale(fake_te)), 0.0)
        out[name] = {"fooling_rate": np.asarray(rate).tolist(), "disc_error_on_fake": np.asarray(on_fake).tolist()}
    return out


# SW fits and the EM polish of the same fits (to convergence), for selection by SW distance.
POLISHED = {"sw": "sw+em", "sw_fixed_w": "sw_fixed_w+em", "sw_reloc": "sw_reloc+em"}


def select_by_sw(nll: dict, swd: dict, best: float, fraction: float = 0.1) -> dict:
    """How well the SW distance of an SW fit predicts that its EM polish is optimal.

    For each SW method: of the ``fraction`` of restarts with the lowest SW distance (fixed
    evaluation directions), the share whose EM polish ends within 1% of the best NLL; and whether
    the single lowest-SW restart (``sw.select_best(..., "sw")``) does. Compare with the share of
    all restarts.
    """
    out = {}
    for fit, polished in POLISHED.items():
        if fit not in swd or polished not in nll:
            continue
        s, ok = np.asarray(swd[fit]), np.asarray(nll[polished]) <= best + 0.01 * abs(best)
        low = np.argsort(s)[: max(1, int(round(fraction * s.size)))]
        out[fit] = {
            "polished_by": polished, "n_lowest_sw": int(low.size),
            "lowest_sw_within_1pct": float(np.mean(ok[low])),
            "argmin_sw_within_1pct": bool(ok[np.argmin(s)]),
            "all_within_1pct": float(np.mean(ok)),
        }
    return out


def summarise(nll: dict, swd: dict) -> dict:
    best = min(float(np.min(v)) for v in nll.values())
    out = {"best_nll": best, "methods": {}, "select_by_sw": select_by_sw(nll, swd, best)}
    for name, v in nll.items():
        v = np.asarray(v)
        row = {
            "nll_min": float(v.min()), "nll_median": float(np.median(v)), "nll_max": float(v.max()),
            "within_0.5pct": float(np.mean(v <= best + 0.005 * abs(best))),
            "within_1pct": float(np.mean(v <= best + 0.01 * abs(best))),
        }
        if name in swd:
            s = np.asarray(swd[name])
            row.update(sw_median=float(np.median(s)), sw_iqr_over_median=float(np.subtract(*np.percentile(s, [75, 25])) / np.median(s)))
        out["methods"][name] = row
    return out


def _seconds(t) -> str:
    return "-" if t is None else f"{t[0]:.1f} ({t[1]:.1f})"


def _ellipses(ax, params, color):
    from matplotlib.patches import Ellipse

    w, m, c = (np.asarray(a) for a in sw.to_moments(params))
    for k in range(len(w)):
        lam, vec = np.linalg.eigh(c[k])
        angle = np.degrees(np.arctan2(vec[1, 1], vec[0, 1]))
        for nsd in (1, 2):
            ax.add_patch(Ellipse(m[k], *(2 * nsd * np.sqrt(np.maximum(lam[::-1], 0))), angle=angle,
                                 fill=False, color=color, lw=0.8 * (3 - nsd), alpha=float(min(1.0, 0.3 + 0.5 * w[k] * len(w)))))


def plot(x, init, fits, nll, swd, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 10.5))
    show = [0, 1, 2, 3]
    rows = [("em", "tab:red"), ("sw", "tab:blue"), ("sw_reloc+em_reloc", "tab:green")]
    for col, i in enumerate(show):
        for row, (name, color) in enumerate(rows):
            ax = fig.add_subplot(4, 4, 1 + col + 4 * row)
            ax.scatter(x[:, 0], x[:, 1], s=2, c="0.6")
            _ellipses(ax, jax.tree.map(lambda a: a[i], fits[name]), color)
            m0 = np.asarray(init.means[i])
            ax.scatter(m0[:, 0], m0[:, 1], marker="x", c="k", s=15)
            ax.set_title(f"init {i}: {name.upper()} (NLL {nll[name][i]:.3f})", fontsize=9)
            ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
    ax = fig.add_subplot(4, 2, 7)
    names = ["em", "sw", "sw+em", "sw_reloc+em", "em_reloc", "sw_reloc+em_reloc"]
    bins = np.linspace(min(np.min(nll[n]) for n in names), np.percentile(np.concatenate([nll[n] for n in names]), 98), 40)
    for n in names:
        ax.hist(np.clip(nll[n], bins[0], bins[-1]), bins=bins, histtype="step", lw=1.5, label=n)
    ax.set_xlabel("negative log-likelihood"), ax.legend(fontsize=8)
    ax = fig.add_subplot(4, 2, 8)
    sbins = np.linspace(min(np.min(swd[n]) for n in names), np.percentile(np.concatenate([swd[n] for n in names]), 98), 40)
    for n in names:
        ax.hist(np.clip(swd[n], sbins[0], sbins[-1]), bins=sbins, histtype="step", lw=1.5, label=n)
    ax.set_xlabel("sliced Wasserstein distance SW_2^2 (fixed 256 directions)"), ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="quick")
    ap.add_argument("--data", default=None, help="a [n, 2] .npy or text file (default: embedded generator)")
    ap.add_argument("--n", type=int, default=850, help="points of the embedded generator")
    ap.add_argument("--restarts", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args(argv)
    scale = SCALES[args.scale]
    n_restarts = args.restarts or scale["n_restarts"]
    info = run_info(args.scale)
    x = load_data(args.data, args.n, args.seed)
    xj = jnp.asarray(x)
    sw_config = sw.FitConfig(**scale["sw"])
    em_config = sw.EMConfig(max_iter=1000, tol=1e-6)
    reloc_config = sw.FitConfig(**scale["sw"], **scale["sw_reloc"])
    em_reloc_config = sw.EMConfig(max_iter=1000, tol=1e-6, relocations=scale["em_relocations"])
    init = jax.vmap(lambda k: sw.initialize(k, xj, K))(jax.random.split(jax.random.key(args.seed), n_restarts))

    fits, timing, extra = run_methods(xj, init, sw_config, em_config, reloc_config, em_reloc_config)
    nll = {name: _nll(p, xj) for name, p in fits.items()}
    eval_key = jax.random.key(12345)
    swd = {name: _sw(p, xj, eval_key) for name, p in fits.items()}
    if not args.no_sklearn:
        nll["em_sklearn"], timing["em_sklearn"] = sklearn_em(x, init, em_config)
    summary = summarise(nll, swd)
    # Held-out real points for the discriminator: a fresh draw of the generator (none for --data).
    fooling = {}
    if args.data is None:
        x_test = jnp.asarray(sw.datasets.ring_square_line(n=args.n, seed=args.seed + 1))
        with Timer() as t:
            fooling = fooling_rates(jax.random.key(args.seed + 2), xj, x_test, fits, scale["disc"])
        summary["fooling_rate"] = {
            name: {"mean": float(np.mean(v["fooling_rate"])), "std": float(np.std(v["fooling_rate"]))}
            for name, v in fooling.items()
        }
        timing["fooling_rate_all_methods"] = (t.seconds, t.compile_seconds)
    out = pathlib.Path(args.out)
    result = {
        "run": info, "n_points": int(x.shape[0]), "K": K, "n_restarts": n_restarts,
        "data": args.data or f"ring_square_line(n={args.n}, seed={args.seed})",
        "sw_config": repr(sw_config), "em_config": repr(em_config),
        "optimal_definition": "final NLL within 0.5% / 1% of the best NLL found by any run of any method",
        "timing_s_first_call_incl_compile": {k: v[0] for k, v in timing.items()},
        "timing_s_compile": {k: v[1] for k, v in timing.items()},
        "summary": summary,
        "nll": {k: np.asarray(v).tolist() for k, v in nll.items()},
        "sw": {k: np.asarray(v).tolist() for k, v in swd.items()},
        "em_n_iter": np.asarray(extra["em_n_iter"]).tolist(),
        "methods": method_descriptions(reloc_config, em_reloc_config),
        "method_order": [m for m in method_descriptions(reloc_config, em_reloc_config) if m in nll],
        "relocation_acceptance_rate_per_round": extra["accepted"],
        "fooling_rate": fooling,
        "fooling_rate_setup": (
            f"per restart, mlp 2-8-16-8-1 (leaky ReLU) trained on the {x.shape[0]} data points vs as many GMM "
            f"samples ({scale['disc']}), tested on a fresh draw of the generator (seed {args.seed + 1}) vs fresh "
            "samples; balanced error rate" if fooling else "not computed: no held-out data for --data"
        ),
        "sw_reloc_config": repr(reloc_config),
        "em_reloc_config": repr(em_reloc_config),
    }
    stem = "ring_square_line" + ("" if args.scale == "quick" else f"_{args.scale}")
    atomic_write_json(out / f"{stem}.json", result)
    plot(x, init, fits, nll, swd, out / f"{stem}.png")
    print(f"\nring-square-line, N={x.shape[0]}, K={K}, {n_restarts} random inits (same for all methods);"
          f" best NLL found: {summary['best_nll']:.4f}")
    print("| method | NLL min / median / max | within 0.5% | within 1% | SW median (IQR/median) | wall s (compile s) |")
    print("|---|---|---|---|---|---|")
    for name, row in summary["methods"].items():
        swtxt = f"{row['sw_median']:.5f} ({row['sw_iqr_over_median']:.2f})" if "sw_median" in row else "-"
        print(f"| {name} | {row['nll_min']:.4f} / {row['nll_median']:.4f} / {row['nll_max']:.4f} | "
              f"{100 * row['within_0.5pct']:.0f}% | {100 * row['within_1pct']:.0f}% | {swtxt} | {_seconds(timing.get(name))} |")
    for fit, row in summary["select_by_sw"].items():
        print(f"{fit}: the {row['n_lowest_sw']} lowest-SW restarts polish to within 1% in "
              f"{100 * row['lowest_sw_within_1pct']:.0f}% of cases (all restarts: {100 * row['all_within_1pct']:.0f}%); "
              f"the lowest-SW restart does{'' if row['argmin_sw_within_1pct'] else ' not'}")
    for name, row in summary.get("fooling_rate", {}).items():
        print(f"fooling rate {name}: {100 * row['mean']:.2f}% ± {100 * row['std']:.2f}% over {n_restarts} restarts")
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}")
    return result


if __name__ == "__main__":
    main()
