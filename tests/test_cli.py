"""The ``swgmm`` command line (``swgmm_jax.cli``): in a subprocess (as installed) and in-process."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import swgmm_jax as sw
from swgmm_jax.cli import main, read_data

RNG = np.random.default_rng(0)
X2 = np.concatenate([RNG.normal(c, 0.5, (30, 2)) for c in ([-4.0, 0.0], [4.0, 0.0])])


def _run(*args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "swgmm_jax.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def _model(tmp_path, d=2):
    """A saved 2-component model (no fit needed)."""
    means = np.zeros((2, d))
    means[:, 0] = [-4.0, 4.0]
    params = sw.from_moments(
        np.ones(2), means.astype(np.float32), np.stack([np.eye(d, dtype=np.float32)] * 2)
    )
    path = tmp_path / f"model{d}.npz"
    sw.save(path, params)
    return params, str(path)


@pytest.mark.slow  # three subprocesses, each importing JAX, and an EM fit: 25 s on 2 cores shared 3.5x over
def test_help_fit_and_errors_in_a_subprocess(tmp_path):
    help_ = _run("--help", cwd=tmp_path)
    assert help_.returncode == 0
    for command in ("fit", "score", "sample", "plot", "select-k"):
        assert command in help_.stdout
    np.savetxt(tmp_path / "x.csv", X2, delimiter=",", header="a,b", comments="")
    fit = _run("fit", "x.csv", "--n-components", "2", "--method", "em", "--out", "m.npz", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "swgmm: fitting K=2" in fit.stderr and "BIC" in fit.stdout
    gm = sw.GaussianMixture.load(tmp_path / "m.npz")
    assert gm.method == "em" and gm.means_.shape == (2, 2)
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [-4.0, 4.0], atol=0.5)
    bad = _run("fit", "missing.csv", "-k", "2", "--out", "a.npz", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["swgmm: error: no such data file: missing.csv"]


def test_score_sample_and_plot(tmp_path, capsys):
    params, model = _model(tmp_path)
    data = tmp_path / "x.csv"
    np.savetxt(data, X2, delimiter=",", header="a,b", comments="")
    per_sample = tmp_path / "s.csv"
    assert main(["score", model, str(data), "--per-sample", str(per_sample)]) == 0
    out = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    x = X2.astype(np.float32)
    assert int(out["n"]) == len(X2)
    np.testing.assert_allclose(float(out["mean_log_likelihood"]), sw.log_likelihood(params, x), rtol=1e-6)
    np.testing.assert_allclose(float(out["bic"]), sw.bic(params, x), rtol=1e-6)
    np.testing.assert_allclose(float(out["aic"]), sw.aic(params, x), rtol=1e-6)
    np.testing.assert_allclose(read_data(str(per_sample))[:, 0], sw.score_samples(params, x), rtol=1e-6)
    for name in ("d.npy", "d.csv"):
        assert main(["sample", model, "-n", "50", "--seed", "3", "--out", str(tmp_path / name)]) == 0
    draws = read_data(str(tmp_path / "d.npy"))
    np.testing.assert_array_equal(draws, np.asarray(sw.sample(jax.random.key(3), params, 50)))
    np.testing.assert_allclose(read_data(str(tmp_path / "d.csv")), draws, rtol=1e-6)
    assert main(["plot", model, str(data), "--out", str(tmp_path / "f.png")]) == 0
    _, model3 = _model(tmp_path, d=3)  # d > 2: the first two principal axes of the data
    np.save(tmp_path / "x3.npy", np.concatenate([X2, RNG.normal(size=(len(X2), 1))], axis=1))
    assert main(["plot", model3, str(tmp_path / "x3.npy"), "--out", str(tmp_path / "f3.png")]) == 0
    for fig in ("f.png", "f3.png"):
        assert (tmp_path / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_k_prints_the_table(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X2)
    args = ["select-k", str(tmp_path / "x.npy"), "--k-min", "1", "--k-max", "2", "--method", "em"]
    assert main([*args, "--n-restarts", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["K", "bic", "aic", "log_lik", "sw_heldout"]
    assert out.strip().endswith("best K by bic: 2")


def test_read_data_formats(tmp_path):
    (tmp_path / "plain.csv").write_text("1,2\n3,4\n")
    (tmp_path / "header.csv").write_text("x,y\n1,2\n\n3,4\n")
    (tmp_path / "space.txt").write_text("1 2\n3\t4\n")
    np.save(tmp_path / "col.npy", np.array([1.0, 3.0]))
    for name in ("plain.csv", "header.csv", "space.txt"):
        assert read_data(str(tmp_path / name)).tolist() == [[1.0, 2.0], [3.0, 4.0]], name
    assert read_data(str(tmp_path / "col.npy")).tolist() == [[1.0], [3.0]]


@pytest.mark.parametrize(
    "files,args,message",
    [
        ({"x.csv": "1,2\n3,oops\n"}, ["score", "{model}", "x.csv"], "cannot read x.csv as .csv data"),
        ({"x.csv": "1,2,3\n"}, ["score", "{model}", "x.csv"], "x.csv has 3 columns but the model has 2"),
        ({"x.csv": "1,nan\n"}, ["score", "{model}", "x.csv"], "NaN or infinite"),
        (
            {"m.npz": "text"},
            ["sample", "m.npz", "-n", "3", "--out", "d.npy"],
            "not a readable swgmm_jax model",
        ),
        ({}, ["sample", "{model}", "-n", "3", "--out", "d.json"], "--out must end in .npy, .csv or .txt"),
        ({}, ["sample", "{model}", "-n", "0", "--out", "d.npy"], "expected an integer >= 1, got 0"),
        ({"x.csv": "1,2\n"}, ["select-k", "x.csv", "--k-min", "3", "--k-max", "2"], "--k-max (2) must be >="),
        ({}, ["fit", "x.csv", "-k", "2", "--method", "kmeans", "--out", "m.npz"], "invalid choice: 'kmeans'"),
    ],
)
def test_errors_are_one_line_with_status_2(tmp_path, capsys, monkeypatch, files, args, message):
    _, model = _model(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = [a.format(model=model) for a in args]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's errors exit
        status = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("swgmm: error: "), err
    assert message in err[0]
