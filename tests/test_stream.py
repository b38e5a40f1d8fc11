"""Streamed fits (:func:`swgmm_jax.fit_stream`): chunking, sources, quality."""

import jax
import numpy as np
import pytest

import swgmm_jax as sw

CFG = sw.FitConfig(n_steps=60, batch_size=256, n_projections=8, n_levels=32)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6000, 3)).astype(np.float32)
    x[:3000] += 5.0
    return rng.permutation(x)


def test_result_does_not_depend_on_chunking(blobs):
    a = sw.fit_stream(jax.random.key(0), blobs, 2, CFG, chunk_steps=60)
    b = sw.fit_stream(jax.random.key(0), blobs, 2, CFG, chunk_steps=25)  # 25 + 25 + 10
    np.testing.assert_allclose(a.params.means, b.params.means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-5, atol=1e-6)
    assert a.loss_history.shape == (60,)


def test_memmap_source_equals_array(blobs, tmp_path):
    path = tmp_path / "x.f32"
    blobs.tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=blobs.shape)
    # Memmaps are read with pread: same rows as indexing the array, for the
    # whole map, a row slice (offset) and a column slice (rows of 2 values at a
    # 4-byte file offset, 12-byte stride).
    for src, ref_x in ((mm, blobs), (mm[1000:], blobs[1000:]), (mm[:, 1:], blobs[:, 1:])):
        batches = [b for b, _ in zip(sw.host_minibatches(7, src, 100), range(5), strict=False)]
        ref = [b for b, _ in zip(sw.host_minibatches(7, ref_x, 100), range(5), strict=False)]
        np.testing.assert_array_equal(np.stack(batches), np.stack(ref))
    mm_off = np.memmap(path, dtype=np.float32, mode="r", shape=(5000, 3), offset=12 * 1000)
    got = np.stack([b for b, _ in zip(sw.host_minibatches(8, mm_off, 64), range(3), strict=False)])
    want = np.stack([b for b, _ in zip(sw.host_minibatches(8, blobs[1000:], 64), range(3), strict=False)])
    np.testing.assert_array_equal(got, want)
    a = sw.fit_stream(jax.random.key(0), mm, 2, CFG, chunk_steps=30)
    b = sw.fit_stream(jax.random.key(0), blobs, 2, CFG, chunk_steps=30)
    np.testing.assert_array_equal(a.params.means, b.params.means)


def test_iterator_source_and_quality(blobs):
    # Same init for both: the comparison is about the estimator, not the seed.
    init = sw.initialize(jax.random.key(3), blobs, 2, method="kmeans++")
    cfg = sw.FitConfig(n_steps=200, batch_size=256, n_projections=8, n_levels=32)
    batches = sw.host_minibatches(1, blobs, cfg.batch_size)
    streamed = sw.fit_stream(jax.random.key(4), batches, 2, cfg, init=init, chunk_steps=100)
    full = sw.fit(jax.random.key(4), blobs, 2, cfg, init=init, mesh=None)
    order_s = np.argsort(np.asarray(streamed.params.means)[:, 0])
    order_f = np.argsort(np.asarray(full.params.means)[:, 0])
    np.testing.assert_allclose(
        np.asarray(streamed.params.means)[order_s], np.asarray(full.params.means)[order_f], atol=0.25
    )
    np.testing.assert_allclose(np.asarray(streamed.params.means)[order_s], [[0.0] * 3, [5.0] * 3], atol=0.25)


def test_stream_errors(blobs):
    with pytest.raises(ValueError, match="batch_size"):
        sw.fit_stream(jax.random.key(0), blobs, 2, sw.FitConfig(n_steps=5))
    few = [blobs[:256]] * 3
    with pytest.raises(ValueError, match="ran out"):
        sw.fit_stream(jax.random.key(0), few, 2, sw.FitConfig(n_steps=5, batch_size=256), chunk_steps=5)
    with pytest.raises(ValueError, match="batch_size"):
        sw.fit_stream(jax.random.key(0), [blobs[:100]] * 5, 2, sw.FitConfig(n_steps=5, batch_size=256))


STREAM_CFG = sw.FitConfig(n_steps=12, batch_size=64, n_projections=4, n_levels=8)


def _batches(n, bad_batch=None, value=np.inf):
    rng = np.random.default_rng(1)
    for i in range(n):
        b = rng.normal(size=(64, 2)).astype(np.float32)
        if i == bad_batch:
            b[3, 1] = value
        yield b


@pytest.mark.parametrize("bad_batch", [0, 5, 11])  # first batch, mid-chunk, the last chunk
def test_stream_checks_every_batch_for_non_finite_values(bad_batch):
    # Issue 13: only the first batch was checked; an inf in batch 5 gave all-NaN parameters.
    with pytest.raises(ValueError, match=rf"data batch {bad_batch} \(0-based\) contains non-finite"):
        sw.fit_stream(jax.random.key(0), _batches(12, bad_batch), 2, STREAM_CFG, chunk_steps=4)


def test_stream_nan_row_of_an_array_is_caught():
    # Issue 13: one NaN in row 700 of 900 gave all-NaN parameters and no error.
    x = np.random.default_rng(2).normal(size=(900, 2)).astype(np.float32)
    x[700, 0] = np.nan
    with pytest.raises(ValueError, match=r"data batch \d+ \(0-based\) contains non-finite"):
        sw.fit_stream(jax.random.key(0), x, 2, STREAM_CFG.replace(batch_size=900), chunk_steps=6)


def test_stream_clean_batches_still_fit():
    res = sw.fit_stream(jax.random.key(0), _batches(12), 2, STREAM_CFG, chunk_steps=5)
    assert np.all(np.isfinite(np.asarray(res.params.means)))


@pytest.mark.parametrize(
    "data,err,match",
    [
        ("abcdef", TypeError, "data must be a 2-D host array or an iterable"),
        (b"abcdef", TypeError, "data must be a 2-D host array or an iterable"),
        (np.ones((100, 2)) * 1j, TypeError, "data must hold real numbers"),
        (np.ones((100, 2)).astype(object), TypeError, "data must hold real numbers"),
        ([np.ones((64, 2)) * 1j] * 12, TypeError, "data batch 0 must hold real numbers"),
        ([np.ones((64, 2))] * 3 + [np.ones((64, 3))] * 9, ValueError, r"data batch 3 has \[64, 3\]"),
        ([np.ones(64)] * 12, ValueError, r"data batch 0 must be a \[b, d\] array"),
    ],
    ids=["str", "bytes", "complex", "object", "complex-batches", "ragged-batches", "1d-batches"],
)
def test_stream_rejects_non_real_or_malformed_data(data, err, match):
    with pytest.raises(err, match=match):
        sw.fit_stream(jax.random.key(0), data, 2, STREAM_CFG, chunk_steps=6)
