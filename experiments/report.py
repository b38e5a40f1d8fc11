"""Regenerate the README's results section from ``results/*.json``.

Every number in the README's results section is written by this script from
the JSON files the experiment scripts produce; nothing is typed by hand.

    python experiments/report.py
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from experiments._common import RESULTS, ROOT, atomic_write_bytes, load_json  # noqa: E402

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _pct(v):
    return f"{100 * v:.0f}%"


def ring_square_line(d) -> list[str]:
    s = d["summary"]
    paper = {"em": "29%", "sw": "100%"}
    lines = [
        f"### Figure 3: robustness to initialisation (`experiments/ring_square_line.py`, scale `{d['run']['scale']}`)",
        "",
        f"{d['data']}, K={d['K']}, {d['n_restarts']} random initialisations shared by all methods; "
        f"device: {d['run']['device_kind']} ({d['run']['backend']}). Optimal = {d['optimal_definition']} "
        f"(best NLL found: {s['best_nll']:.4f}). SW config: `{d['sw_config']}`.",
        "",
        "| method | NLL min / median / max | within 0.5% | within 1% | paper (optimal NLL) | SW median (IQR/median) | wall s (incl. compile) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in s["methods"].items():
        swtxt = f"{row['sw_median']:.5f} ({row['sw_iqr_over_median']:.2f})" if "sw_median" in row else "–"
        t = d["timing_s_first_call_incl_compile"].get(name)
        lines.append(
            f"| {name} | {row['nll_min']:.4f} / {row['nll_median']:.4f} / {row['nll_max']:.4f} | "
            f"{_pct(row['within_0.5pct'])} | {_pct(row['within_1pct'])} | {paper.get(name, '–')} | {swtxt} | "
            f"{'–' if t is None else f'{t:.1f}'} |"
        )
    methods = d.get("methods", {})
    if methods:
        lines += [""] + [f"- `{name}`: {text}" for name, text in methods.items() if name in s["methods"]]
    rates = d.get("relocation_acceptance_rate_per_round", {})
    if rates:
        lines += [""] + [
            f"- moves kept per round, `{name}`: " + ", ".join(f"{100 * r:.0f}%" for r in v) for name, v in rates.items()
        ]
    lines += ["", "![ring-square-line](results/ring_square_line.png)", ""]
    return lines


def energy(d) -> list[str]:
    lines = [
        f"### Figure 1: energy landscapes (`experiments/energy_landscape.py`, scale `{d['run']['scale']}`)",
        "",
        f"Local minima ({d['minima_rule']}):",
        "",
        "| scenario | energy | minima | minima modulo label swap |",
        "|---|---|---|---|",
    ]
    for sc, label in (("a", "(a) 1D, μ"), ("b", "(b) 2-component, (μ1, μ2)")):
        for energy_name, c in d["counts"][sc].items():
            if isinstance(c, dict):
                raw = c.get("raw", c.get("count"))
                mod = c.get("modulo_swap", c.get("mod_swap", raw))
            else:
                raw, mod = c, c
            lines.append(f"| {label} | {energy_name} | {raw} | {mod} |")
    lines += ["", "![energy landscapes](results/energy_landscape.png)", ""]
    return lines


def embedding(d, stem: str = "embedding_digits") -> list[str]:
    s, paper = d["summary"], d["paper"]
    n_seeds = len(d.get("seeds", []))
    lines = [
        f"### Embedding study (`experiments/embedding_gmm.py`, {d['settings'].get('dataset', 'digits')}, "
        f"scale `{d['run_info']['scale']}`, {n_seeds} seeds)",
        "",
        "| method | component purity (mean ± std) | fooling rate (mean ± std) |",
        "|---|---|---|",
    ]
    for name, row in s.items():
        pur, fool = row.get("purity"), row.get("fooling_rate")
        f = lambda m: "–" if m is None else f"{100 * m['mean']:.2f}% ± {100 * m['std']:.2f}%"  # noqa: E731
        lines.append(f"| {name} | {f(pur)} | {f(fool)} |")
    mn = paper.get("fooling_rate", {}).get("MNIST", {})
    pu = paper.get("purity", {})
    if mn and pu:
        lines.append(
            f"| paper, MNIST EM | {100 * pu['em']:.2f}% | {100 * mn['em'][0]:.2f}% ± {100 * mn['em'][1]:.2f}% |"
        )
        lines.append(
            f"| paper, MNIST SW | {100 * pu['sw']:.2f}% | {100 * mn['sw'][0]:.2f}% ± {100 * mn['sw'][1]:.2f}% |"
        )
    if (ROOT / "results" / f"{stem}_samples.png").exists():
        lines += ["", f"![decoded samples per component](results/{stem}_samples.png)"]
    return lines + [""]


def benchmark(d) -> list[str]:
    st, rs, run = d["step"], d["restarts"], d["run"]
    lines = [
        f"### Speed (`experiments/benchmark.py`, device: {run['device_kind']} ({run['backend']}), medians)",
        "",
        "| measurement | ours | peer | ratio ours/peer |",
        "|---|---|---|---|",
    ]
    for label in ("levels_64", "levels_256", "all_levels"):
        lines.append(
            f"| SW loss+grad step, N={st['N']} d={st['d']} K={st['K']} L={st['n_projections']} ({label}) "
            f"vs POT `sliced_wasserstein_distance` (numpy, distance only) | {1e3 * st[f'swgmm_step_{label}_s']:.1f} ms "
            f"| {1e3 * st['pot_numpy_distance_s']:.1f} ms | {st[f'ratio_{label}_vs_pot']:.2f} |"
        )
    lines.append(
        f"| {rs['n_restarts']} SW restarts, K={rs['K']}, ring-square-line, one `fit_restarts` call "
        f"(compile {rs['swgmm_fit_restarts_compile_s']:.1f} s) vs sequential scikit-learn EM "
        f"| {rs['swgmm_fit_restarts_s']:.1f} s | {rs['sklearn_sequential_s']:.1f} s | {rs['ratio_swgmm_vs_sklearn']:.2f} |"
    )
    lines.append(
        f"| {rs['n_restarts']} EM restarts, one `fit_em_restarts` call vs sequential scikit-learn EM "
        f"| {rs['swgmm_em_restarts_s']:.1f} s | {rs['sklearn_sequential_s']:.1f} s | {rs['ratio_swgmm_em_vs_sklearn']:.2f} |"
    )
    return lines + [""]


SECTIONS = [
    ("ring_square_line.json", ring_square_line),
    ("energy_landscape.json", energy),
    ("embedding_digits.json", embedding),
    ("benchmark.json", benchmark),
]


def render(results_dir=RESULTS) -> str:
    out = []
    for fname, fn in SECTIONS:
        d = load_json(pathlib.Path(results_dir) / fname)
        if d is None:
            out.append(f"_`results/{fname}` not produced yet._\n")
            continue
        try:
            out.extend(fn(d))
        except (KeyError, TypeError) as err:
            out.append(f"_`results/{fname}` could not be summarised ({type(err).__name__}: {err})._\n")
    done = set(dict(SECTIONS))
    # Embedding runs on other data (real MNIST, an image folder), at any scale.
    for path in sorted(pathlib.Path(results_dir).glob("embedding_*.json")):
        if re.fullmatch(r"embedding_(mnist|images)(_\w+)?\.json", path.name):
            done.add(path.name)
            try:
                out.extend(embedding(load_json(path), path.stem))
            except (KeyError, TypeError) as err:
                out.append(f"_`results/{path.name}` could not be summarised ({type(err).__name__}: {err})._\n")
    extra = sorted(p.name for p in pathlib.Path(results_dir).glob("*.json") if p.name not in done)
    if extra:
        out.append("Other results files: " + ", ".join(f"`results/{e}`" for e in extra) + ".\n")
    return "\n".join(out)


def update_readme(readme=ROOT / "README.md", results_dir=RESULTS) -> None:
    text = pathlib.Path(readme).read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} lacks the {BEGIN} / {END} markers")
    body = (
        "Generated by `python experiments/report.py` from `results/*.json` (regenerate everything with "
        "`python experiments/run_all.py`).\n\n" + render(results_dir)
    )
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{body}\n{END}", text, flags=re.S)
    atomic_write_bytes(readme, new.encode())


if __name__ == "__main__":
    update_readme()
    print("README results section regenerated")
