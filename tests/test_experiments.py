"""The Figure 3 script end to end at its smoke scale, and the README report built from its JSON."""

import json
import pathlib
import shutil

import pytest

from experiments import report, ring_square_line

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    result = ring_square_line.main(["--scale", "smoke", "--n", "150", "--out", str(out)])
    return out, result


def test_ring_square_line_writes_every_method(smoke_run):
    out, result = smoke_run
    on_disk = json.loads((out / "ring_square_line.json").read_text())
    assert (out / "ring_square_line.png").stat().st_size > 0
    methods = on_disk["summary"]["methods"]
    for name in ("em", "em_sklearn", "sw", "sw+em25", "sw+em", "sw_reloc", "sw_reloc+em", "em_reloc",
                 "sw_reloc+em_reloc"):
        assert len(on_disk["nll"][name]) == 4, name
        row = methods[name]
        assert row["nll_min"] <= row["nll_median"] <= row["nll_max"]
        assert 0.0 <= row["within_0.5pct"] <= row["within_1pct"] <= 1.0
    # The JAX EM and scikit-learn's agree from the same initial parameters.
    assert max(abs(a - b) for a, b in zip(on_disk["nll"]["em"], on_disk["nll"]["em_sklearn"])) < 1e-3
    # Likelihood-accepted moves never lower the likelihood of the fit they start from.
    assert all(r <= e + 1e-5 for r, e in zip(on_disk["nll"]["em_reloc"], on_disk["nll"]["em"]))
    assert len(on_disk["relocation_acceptance_rate_per_round"]["sw_reloc"]) == 2
    assert on_disk["summary"] == result["summary"]


def test_report_renders_results(smoke_run, tmp_path):
    out, _ = smoke_run
    shutil.copy(out / "ring_square_line.json", tmp_path)
    digits = ROOT / "results" / "embedding_digits.json"
    shutil.copy(digits, tmp_path / "embedding_digits.json")
    shutil.copy(digits, tmp_path / "embedding_mnist_paper.json")  # another data set, same layout
    text = report.render(tmp_path)
    assert "| sw_reloc+em_reloc |" in text and "`em_reloc`: EM + 2 merge-and-relocate" in text
    assert text.count("### Embedding study") == 2
    assert "results/benchmark.json` not produced yet" in text
