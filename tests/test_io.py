"""Saving and loading (``swgmm_jax._io``): round trips, a committed file, and clear errors."""

import json
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import swgmm_jax as sw
from swgmm_jax import GaussianMixture

DATA = pathlib.Path(__file__).resolve().parent / "data"
V1_FILE = DATA / "model_v1.npz"


def _reference():
    """The model in tests/data/model_v1.npz (written by ``python tests/test_io.py``)."""
    w = np.array([0.25, 0.75])
    m = np.array([[0.0, 0.0], [3.0, 1.0]])
    c = np.stack([np.eye(2), np.array([[2.0, 0.5], [0.5, 1.0]])])
    params = sw.from_moments(w.astype(np.float32), m.astype(np.float32), c.astype(np.float32), 1e-4)
    config = sw.FitConfig(n_steps=50, n_projections=8, learning_rate=0.1, init="kmeans++")
    return params, config, {"data": "tests/test_io.py", "n": 3}


def _assert_identical(a, b):
    for field in sw.GMMParams._fields:
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        assert x.dtype == y.dtype and x.shape == y.shape, field
        np.testing.assert_array_equal(x, y, err_msg=field)


def test_round_trip_is_bit_identical_with_config_and_metadata(tmp_path):
    params, config, metadata = _reference()
    path = tmp_path / "model.npz"
    sw.save(path, params, config=config, metadata=metadata)
    saved = sw.load(path)
    _assert_identical(saved.params, params)
    assert saved.config == config and isinstance(saved.config.slicing, sw.SlicingConfig)
    assert saved.metadata == metadata
    assert saved.format_version == 1 and saved.package_version == sw.__version__
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    with np.load(path, allow_pickle=False) as archive:  # the documented layout, readable without pickle
        assert sorted(archive.files) == ["header", *sorted(f"params/{f}" for f in sw.GMMParams._fields)]
        assert json.loads(str(archive["header"]))["format"] == "swgmm_jax.model"


def test_batched_float64_params_and_em_config_round_trip(tmp_path, x64):
    rng = np.random.default_rng(0)
    batched = sw.GMMParams(
        jnp.asarray(rng.normal(size=(2, 3, 4))),
        jnp.asarray(rng.normal(size=(2, 3, 4, 2))),
        jnp.asarray(rng.normal(size=(2, 3, 4, 2, 2))),
        jnp.full((2, 3), 1e-6),
    )
    config = sw.EMConfig(max_iter=7, tol=1e-5, relocations=2)
    sw.save(str(tmp_path / "r.npz"), batched, config=config)  # a str path, overwritten below
    sw.save(tmp_path / "r.npz", batched, config=config)
    saved = sw.load(tmp_path / "r.npz")
    _assert_identical(saved.params, batched)
    assert saved.params.means.dtype == np.float64 and saved.config == config and saved.metadata == {}


def test_the_committed_version_1_file_still_loads():
    params, config, metadata = _reference()
    saved = sw.load(V1_FILE)
    assert saved.format_version == 1 and saved.config == config and saved.metadata == metadata
    for a, b in zip(sw.to_moments(saved.params), sw.to_moments(params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_bad_files_give_clear_errors(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        sw.load(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"garbage\.npz is not a readable swgmm_jax model file"):
        sw.load(garbage)
    params, _, _ = _reference()
    good = tmp_path / "good.npz"
    sw.save(good, params)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"truncated\.npz is not a readable"):
        sw.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"foreign\.npz is not a swgmm_jax model file"):
        sw.load(foreign)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match=r"array\.npy is not a readable"):
        sw.load(npy)

    def rewrite(name, header=None, drop=None):
        """``good.npz`` with its header changed or an entry dropped."""
        out = tmp_path / name
        with np.load(good, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files if k != drop}
        if header is not None:
            arrays["header"] = np.array(json.dumps({**json.loads(str(arrays["header"])), **header}))
        np.savez(out, **arrays)
        return out

    with pytest.raises(ValueError, match=r"newer\.npz was written in format version 99.*upgrade"):
        sw.load(rewrite("newer.npz", {"format_version": 99}))
    with pytest.raises(ValueError, match=r"other\.npz is not a swgmm_jax model file \(format 'other'\)"):
        sw.load(rewrite("other.npz", {"format": "other"}))
    with pytest.raises(ValueError, match=r"corrupt model file \(no params/means\)"):
        sw.load(rewrite("nomeans.npz", drop="params/means"))
    with pytest.raises(ValueError, match=r"not a swgmm_jax config"):
        sw.load(rewrite("badconfig.npz", {"config": {"type": "os.system", "fields": {}}}))
    with zipfile.ZipFile(tmp_path / "badheader.npz", "w") as z:  # a header that is not JSON
        with z.open("header.npy", "w") as f:
            np.lib.format.write_array(f, np.array("{not json"))
    with pytest.raises(ValueError, match="corrupt header"):
        sw.load(tmp_path / "badheader.npz")


def test_save_validates_its_arguments(tmp_path):
    params, _, _ = _reference()
    with pytest.raises(TypeError, match="params must be GMMParams"):
        sw.save(tmp_path / "a.npz", params.means)
    with pytest.raises(TypeError, match="config must be"):
        sw.save(tmp_path / "a.npz", params, config={"n_steps": 3})
    with pytest.raises(TypeError, match="metadata must"):
        sw.save(tmp_path / "a.npz", params, metadata={"when": object()})
    with pytest.raises(ValueError, match=r"config\.optimizer\.lr_schedule is a callable"):
        sw.save(tmp_path / "a.npz", params, config=sw.FitConfig(lr_schedule=lambda t: 1.0))
    with pytest.raises(FileNotFoundError):
        sw.save(tmp_path / "no_such_folder" / "a.npz", params)
    assert list(tmp_path.iterdir()) == []


def test_estimator_save_and_load(tmp_path):
    x = np.random.default_rng(0).normal(size=(100, 2))  # as the estimator's doctests (compiled once)
    gm = GaussianMixture(2, method="em", random_state=jax.random.key(3)).fit(x)
    gm.set_params(means_init=np.array([[-3.0, 0.0], [3.0, 0.0]]))  # an array argument, to round-trip
    gm.save(tmp_path / "gm.npz")
    again = GaussianMixture.load(tmp_path / "gm.npz")
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        a, b = getattr(again, name), getattr(gm, name)
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
    for name in ("converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
        assert getattr(again, name) == getattr(gm, name), name
    np.testing.assert_array_equal(again.score_samples(x), gm.score_samples(x))
    params = again.get_params()
    np.testing.assert_array_equal(params.pop("means_init"), [[-3.0, 0.0], [3.0, 0.0]])
    key = params.pop("random_state")
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(jax.random.key(3)))
    expected = gm.get_params()
    del expected["means_init"], expected["random_state"]
    assert params == expected
    sw.save(tmp_path / "plain.npz", gm.params_)
    with pytest.raises(ValueError, match=r"plain\.npz holds no GaussianMixture"):
        GaussianMixture.load(tmp_path / "plain.npz")
    with pytest.raises(sw.NotFittedError):
        GaussianMixture(2).save(tmp_path / "unfitted.npz")


if __name__ == "__main__":  # writes the committed reference file (only when the format changes version)
    DATA.mkdir(exist_ok=True)
    params, config, metadata = _reference()
    sw.save(V1_FILE, params, config=config, metadata=metadata)
    print("wrote", V1_FILE)
