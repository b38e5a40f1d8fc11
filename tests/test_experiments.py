"""The Figure 3 script end to end at its smoke scale, and the README report built from its JSON."""

import importlib.util
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import _common, embedding_gmm, energy_landscape, report, ring_square_line

# Experiment code (outside the package) is not held to strict rank promotion.
pytestmark = pytest.mark.usefixtures("allow_rank_promotion")

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    with jax.numpy_rank_promotion("allow"):  # module-scoped: the pytestmark fixture is not active yet
        result = ring_square_line.main(["--scale", "smoke", "--n", "150", "--out", str(out)])
    return out, result


@pytest.mark.slow
def test_ring_square_line_writes_every_method(smoke_run):
    out, result = smoke_run
    on_disk = json.loads((out / "ring_square_line_smoke.json").read_text())
    assert (out / "ring_square_line_smoke.png").stat().st_size > 0
    assert not (out / "ring_square_line.json").exists()  # the quick scale's file is left alone
    methods = on_disk["summary"]["methods"]
    for name in (
        "em",
        "em_sklearn",
        "sw",
        "sw+em25",
        "sw+em",
        "sw_reloc",
        "sw_reloc+em",
        "em_reloc",
        "sw_reloc+em_reloc",
    ):
        assert len(on_disk["nll"][name]) == 4, name
        row = methods[name]
        assert row["nll_min"] <= row["nll_median"] <= row["nll_max"]
        assert 0.0 <= row["within_0.5pct"] <= row["within_1pct"] <= 1.0
    # The JAX EM and scikit-learn's agree from the same initial parameters.
    assert (
        max(abs(a - b) for a, b in zip(on_disk["nll"]["em"], on_disk["nll"]["em_sklearn"], strict=False))
        < 1e-3
    )
    # Likelihood-accepted moves never lower the likelihood of the fit they start from.
    assert all(r <= e + 1e-5 for r, e in zip(on_disk["nll"]["em_reloc"], on_disk["nll"]["em"], strict=False))
    assert len(on_disk["relocation_acceptance_rate_per_round"]["sw_reloc"]) == 2
    assert on_disk["summary"] == result["summary"]
    # Fooling rates (Figure 6's ring-square-line row): one per restart, each a balanced error rate.
    for name in ("em", "sw", "sw_reloc+em_reloc"):
        rates = on_disk["fooling_rate"][name]["fooling_rate"]
        assert len(rates) == 4 and all(0.0 <= r <= 1.0 for r in rates), name
    # Selecting SW restarts by their SW distance: shares, and the lowest-SW restart's outcome.
    pick = on_disk["summary"]["select_by_sw"]["sw"]
    assert pick["polished_by"] == "sw+em" and pick["n_lowest_sw"] == 1
    assert 0.0 <= pick["lowest_sw_within_1pct"] <= 1.0
    assert pick["argmin_sw_within_1pct"] == (pick["lowest_sw_within_1pct"] == 1.0)
    # Compile time is part of each call's wall time.
    walls, compiles = on_disk["timing_s_first_call_incl_compile"], on_disk["timing_s_compile"]
    assert set(walls) == set(compiles) and all(0.0 <= compiles[k] <= walls[k] for k in walls)


@pytest.mark.slow
def test_report_renders_results(smoke_run, tmp_path):
    out, _ = smoke_run
    shutil.copy(out / "ring_square_line_smoke.json", tmp_path / "ring_square_line.json")
    shutil.copy(out / "ring_square_line_smoke.json", tmp_path)
    digits = ROOT / "results" / "embedding_digits.json"
    shutil.copy(digits, tmp_path / "embedding_digits.json")
    shutil.copy(digits, tmp_path / "embedding_mnist_paper.json")  # another data set, same layout
    text = report.render(tmp_path)
    assert "| sw_reloc+em_reloc |" in text and "`em_reloc`: EM + 2 merge-and-relocate" in text
    assert text.count("### Embedding study") == 2
    assert text.count("### Figure 3") == 2 and "results/ring_square_line_smoke.png" in text
    assert "| `em` | " in text and "46.83% ± 1.14%" in text  # fooling rates beside the paper's
    assert "picking by SW distance, `sw`" in text
    assert "results/benchmark.json` not produced yet" in text


# Issue 13, item 7: writes, resumes and optional dependencies of experiments/_common.py.

_SLOW_WRITE = """
import os, sys, time
from experiments import _common
real_fsync = os.fsync
def slow_fsync(fd):
    print("writing", flush=True)
    time.sleep(30)
os.fsync = slow_fsync
_common.atomic_write_json(sys.argv[1], {"a": 1})
"""


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITE, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"  # inside the write, the temporary file exists
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM  # still terminated by the signal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no stray .out.json.*.tmp
    assert json.loads(target.read_text()) == {"old": True}  # the previous file untouched


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        _common.atomic_write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(
    "text,problem", [('{"seeds": {', "is not valid JSON"), ("[1, 2]", "holds a JSON list, not an object")]
)
def test_load_results_refuses_a_corrupt_file_without_force(tmp_path, text, problem, capsys):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(SystemExit, match=rf"{path}.*{problem}.*--force"):
        _common.load_results(path)
    assert path.read_text() == text  # left as it is
    assert _common.load_results(path, force=True) is None
    assert "overwriting" in capsys.readouterr().err
    assert _common.load_results(tmp_path / "missing.json") is None
    path.write_text('{"a": 1}')
    assert _common.load_results(path) == {"a": 1}


def test_resume_with_a_corrupt_results_file_explains_it(tmp_path):
    bad = tmp_path / "embedding.json"
    bad.write_text("[]")
    args = ["--scale", "smoke", "--resume", "--out", str(bad), "--no-progress", "--cache-dir", ""]
    with pytest.raises(SystemExit, match=r"holds a JSON list.*--force"):
        embedding_gmm.main(args)
    assert bad.read_text() == "[]"


@pytest.mark.parametrize(
    "main,argv",
    [
        (ring_square_line.main, ["--scale", "smoke"]),
        (energy_landscape.main, ["--scale", "quick"]),
        (embedding_gmm.main, ["--scale", "smoke", "--no-progress"]),
    ],
    ids=["ring_square_line", "energy_landscape", "embedding_gmm"],
)
def test_missing_matplotlib_is_reported_before_the_compute(monkeypatch, tmp_path, main, argv):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    monkeypatch.setattr(_common, "run_info", lambda *a, **k: pytest.fail("compute started"))
    with pytest.raises(SystemExit, match=r"missing optional dependencies: matplotlib.*pip install"):
        main([*argv, "--out", str(tmp_path / "out")])


@pytest.mark.slow
def test_robust_calls_smoke_and_report(tmp_path):
    """experiments.robust_calls end to end at its smoke scale, and its README section."""
    from experiments import report, robust_calls

    result = robust_calls.main(["--scale", "smoke", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "robust_calls_smoke.json").read_text())
    (row,) = on_disk["datasets"]
    assert row["n"] == 300 and len(row["robust_nll"]) == 3 and len(row["sklearn_nll"]) == 2
    assert row["best_nll"] == min(row["robust_nll"] + row["sklearn_nll"])
    assert 0.0 <= row["robust_within_0.01"] <= 1.0 and row["time_ratio"] > 0
    assert result["datasets"][0]["best_nll"] == row["best_nll"]
    text = "\n".join(report.robust_calls(on_disk))
    assert "| 300 |" in text and "fit_robust within" in text


@pytest.mark.slow
def test_benchmark_covtypes_smoke_and_report(tmp_path):
    """experiments.benchmark_covtypes end to end at its smoke scale, and its README section."""
    from experiments import benchmark_covtypes, report

    benchmark_covtypes.main(["--scale", "smoke", "--repeats", "2", "--out", str(tmp_path / "c.json")])
    d = json.loads((tmp_path / "c.json").read_text())
    assert set(d["steps"]) == {"full", "diag", "spherical", "tied"}
    assert all(p["step_s"] > 0 for pts in d["steps"].values() for p in pts)
    (q,) = d["quality"]
    assert set(q["methods"]) == {"sw_diag", "sw_full", "em_diag", "em_full"}
    assert all(np.isfinite(m["test_ll_mean"]) for m in q["methods"].values())
    text = "\n".join(report.covtypes(d))
    assert "| diag |" in text and "em_full" in text
