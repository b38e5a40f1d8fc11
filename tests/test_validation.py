"""Argument validation at the Python boundary: clear errors naming the argument, before
anything is traced or compiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import swgmm_jax as sw
from _helpers import COMPILE_EVENT, TRACE_EVENT, count_compilations

KEY = jax.random.key(0)
GOOD_X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
PARAMS = sw.from_moments(np.ones(2), np.zeros((2, 2), np.float32), np.stack([np.eye(2)] * 2))


def _x_with(value):
    x = GOOD_X.copy()
    x[3, 1] = value
    return x


# Every entry point that takes data x, as f(x); each must validate x.
DATA_ENTRY_POINTS = {
    "fit": lambda x: sw.fit(KEY, x, 2, sw.FitConfig(n_steps=2)),
    "fit_restarts": lambda x: sw.fit_restarts(KEY, x, 2, 2, sw.FitConfig(n_steps=2)),
    "fit_em": lambda x: sw.fit_em(KEY, x, 2),
    "fit_em_restarts": lambda x: sw.fit_em_restarts(KEY, x, 2, 2),
    "initialize": lambda x: sw.initialize(KEY, x, 2),
    "sliced_wasserstein": lambda x: sw.sliced_wasserstein(KEY, PARAMS, x),
    "polish_em": lambda x: sw.polish_em(PARAMS, x, 1),
}

BAD_DATA = {
    "nan": (_x_with(np.nan), ValueError, r"x contains non-finite"),
    "inf": (_x_with(np.inf), ValueError, r"x contains non-finite"),
    "-inf": (_x_with(-np.inf), ValueError, r"x contains non-finite"),
    "rank1": (GOOD_X[:, 0], ValueError, r"x must have shape \[n, d\]"),
    "rank3": (GOOD_X[None], ValueError, r"x must have shape \[n, d\]"),
    "strings": (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), TypeError, r"x must hold real numbers"),
    "mixed": ([[1.0, "a"], [2.0, 3.0], [4.0, 5.0]], TypeError, r"x must hold real numbers"),
    "objects": ([[1.0, None], [2.0, 3.0], [4.0, 5.0]], TypeError, r"x must hold real numbers"),
    "complex": (GOOD_X * 1j, TypeError, r"x must hold real numbers"),
    "ragged": ([[1.0, 2.0], [3.0]], TypeError, r"^x "),
    "empty": (np.zeros((0, 2)), ValueError, r"^x "),
}


def raises_before_tracing(call, err, match):
    """``call()`` raises ``err`` matching ``match``, before anything is traced or compiled.

    The first call may compile small eager conversions at the boundary (cached
    afterwards); a second, identical call must then trigger no trace and no
    compilation at all (a check that ran inside a traced function would re-trace).
    """
    with pytest.raises(err, match=match):
        call()
    with count_compilations((TRACE_EVENT, COMPILE_EVENT)) as events:
        with pytest.raises(err, match=match):
            call()
    assert events == [], events


@pytest.mark.parametrize("bad", sorted(BAD_DATA))
@pytest.mark.parametrize("entry", sorted(DATA_ENTRY_POINTS))
def test_bad_data_is_rejected(entry, bad):
    x, err, match = BAD_DATA[bad]
    raises_before_tracing(lambda: DATA_ENTRY_POINTS[entry](x), err, match)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sw.log_likelihood(PARAMS, GOOD_X[:, 0]),
        lambda: sw.predict_proba(PARAMS, GOOD_X[None]),
    ],
)
def test_density_functions_check_rank(call):
    raises_before_tracing(call, ValueError, r"x must have shape \[n, d\]")


@pytest.mark.parametrize("fn", [sw.log_likelihood, sw.predict_proba, sw.predict])
def test_density_functions_reject_strings_naming_x(fn):
    raises_before_tracing(lambda: fn(PARAMS, np.array([["a", "b"], ["c", "d"]])), TypeError, r"\bx\b")


@pytest.mark.parametrize(
    "call",
    [
        lambda: sw.log_likelihood(PARAMS, np.ones((5, 3))),
        lambda: sw.predict_proba(PARAMS, np.ones((5, 3))),
        lambda: sw.predict(PARAMS, np.ones((5, 1))),
        lambda: sw.sliced_wasserstein(KEY, PARAMS, np.ones((5, 3))),
        lambda: sw.polish_em(PARAMS, np.ones((5, 3)), 1),
    ],
)
def test_dimension_mismatch_params_vs_data(call):
    raises_before_tracing(call, ValueError, r"x has dimension \d+ but params have dimension 2")


@pytest.mark.parametrize(
    "call",
    [
        lambda: sw.fit(KEY, GOOD_X[:2], 3, sw.FitConfig(n_steps=2)),
        lambda: sw.fit_restarts(KEY, GOOD_X[:2], 3, 2, sw.FitConfig(n_steps=2)),
        lambda: sw.fit_em(KEY, GOOD_X[:2], 3),
        lambda: sw.fit_em_restarts(KEY, GOOD_X[:2], 3, 2),
        lambda: sw.initialize(KEY, GOOD_X[:2], 3),
    ],
)
def test_fewer_points_than_components(call):
    raises_before_tracing(call, ValueError, r"x has 2 points, fewer than n_components=3")


@pytest.mark.parametrize(
    "value,err", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError)]
)
@pytest.mark.parametrize(
    "call",
    [
        lambda k: sw.fit(KEY, GOOD_X, k, sw.FitConfig(n_steps=2)),
        lambda k: sw.fit_restarts(KEY, GOOD_X, k, 2, sw.FitConfig(n_steps=2)),
        lambda k: sw.fit_em(KEY, GOOD_X, k),
        lambda k: sw.fit_em_restarts(KEY, GOOD_X, k, 2),
        lambda k: sw.initialize(KEY, GOOD_X, k),
    ],
)
def test_n_components(call, value, err):
    raises_before_tracing(lambda: call(value), err, "n_components")


@pytest.mark.parametrize(
    "value,err", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (None, TypeError)]
)
def test_n_projections(value, err):
    raises_before_tracing(lambda: sw.FitConfig(n_projections=value), err, "n_projections")
    raises_before_tracing(
        lambda: sw.sliced_wasserstein(KEY, PARAMS, GOOD_X, n_projections=value), err, "n_projections"
    )


@pytest.mark.parametrize("value", [0.5, 0.0, -2.0, float("nan")])
def test_p_below_one(value):
    raises_before_tracing(lambda: sw.FitConfig(p=value), ValueError, r"\bp must be")
    raises_before_tracing(
        lambda: sw.sliced_wasserstein(KEY, PARAMS, GOOD_X, p=value), ValueError, r"\bp must be"
    )


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(n_steps=0), "n_steps"),
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(rmsprop_decay=1.0), "rmsprop_decay"),
        (dict(momentum=1.5), "momentum"),
        (dict(n_levels=0), "n_levels"),
        (dict(quantile_iters=0), "quantile_iters"),
        (dict(batch_size=0), "batch_size"),
        (dict(reg_covar=0.0), "reg_covar"),
        (dict(init="bogus"), "init"),
        (dict(init_cov_scale=-1.0), "init_cov_scale"),
        (dict(sort="quick"), "sort"),
    ],
)
def test_fit_config_fields(kwargs, name):
    raises_before_tracing(lambda: sw.FitConfig(**kwargs), (ValueError, TypeError), name)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(max_iter=0), "max_iter"),
        (dict(tol=-1.0), "tol"),
        (dict(reg_covar=-1e-6), "reg_covar"),
        (dict(init="x"), "init"),
    ],
)
def test_em_config_fields(kwargs, name):
    raises_before_tracing(lambda: sw.EMConfig(**kwargs), (ValueError, TypeError), name)


@pytest.mark.parametrize(
    "call,err,match",
    [
        (lambda: sw.fit(0, GOOD_X, 2), TypeError, "key"),
        (lambda: sw.fit_em(None, GOOD_X, 2), TypeError, "key"),
        (lambda: sw.sliced_wasserstein(123, PARAMS, GOOD_X), TypeError, "key"),
        (lambda: sw.fit(KEY, GOOD_X, 2, sw.EMConfig()), TypeError, "config"),
        (lambda: sw.fit_em(KEY, GOOD_X, 2, sw.FitConfig()), TypeError, "config"),
        (lambda: sw.fit_restarts(KEY, GOOD_X, 2, 0), ValueError, "n_restarts"),
        (lambda: sw.fit_em_restarts(KEY, GOOD_X, 2, -1), ValueError, "n_restarts"),
        (lambda: sw.fit(KEY, GOOD_X, 3, init=PARAMS), ValueError, r"init\.means"),
        (lambda: sw.fit(KEY, GOOD_X, 2, init=(1, 2)), TypeError, "init"),
        (lambda: sw.fit_restarts(KEY, GOOD_X, 2, 3, init=PARAMS), ValueError, r"init\.means"),
        (lambda: sw.polish_em(PARAMS, GOOD_X, -1), ValueError, "n_steps"),
        (lambda: sw.sample(KEY, PARAMS, -1), ValueError, r"\bn must"),
        (lambda: sw.initialize(KEY, GOOD_X, 2, method="bogus"), ValueError, "method"),
        (lambda: sw.sliced_wasserstein(KEY, PARAMS, GOOD_X, n_levels=0), ValueError, "n_levels"),
        (lambda: sw.sliced_wasserstein(KEY, PARAMS, GOOD_X, quantile_iters=0), ValueError, "quantile_iters"),
        (
            lambda: sw.from_moments(np.ones(3), np.zeros((2, 2)), np.stack([np.eye(2)] * 2)),
            ValueError,
            "weights",
        ),
        (lambda: sw.from_moments(np.ones(2), np.zeros((2, 2)), np.eye(2)), ValueError, "covariances"),
        (lambda: sw.from_moments(np.ones(2), np.zeros(2), np.eye(2)), ValueError, "means"),
        (
            lambda: sw.from_moments(np.ones(2), np.zeros((2, 2)), np.stack([np.eye(2)] * 2), reg_covar=-1.0),
            ValueError,
            "reg_covar",
        ),
    ],
)
def test_other_arguments(call, err, match):
    raises_before_tracing(call, err, match)


# Issue 13, item 5: non-finite settings and parameters.
def _params_with(field, value, index=0):
    a = np.array(getattr(PARAMS, field))
    a.flat[index] = value
    return PARAMS._replace(**{field: a})


# Every entry point that takes params, as f(params); each must validate them.
PARAMS_ENTRY_POINTS = {
    "log_likelihood": lambda p: sw.log_likelihood(p, GOOD_X),
    "predict": lambda p: sw.predict(p, GOOD_X),
    "predict_proba": lambda p: sw.predict_proba(p, GOOD_X),
    "sample": lambda p: sw.sample(KEY, p, 5),
    "sliced_wasserstein": lambda p: sw.sliced_wasserstein(KEY, p, GOOD_X, n_projections=4),
    "polish_em": lambda p: sw.polish_em(p, GOOD_X, 1),
}

BAD_PARAMS = {
    "nan-mean": (_params_with("means", np.nan), ValueError, r"params\.means contains non-finite"),
    "inf-logit": (_params_with("logits", np.inf), ValueError, r"params\.logits contains non-finite"),
    "-inf-logit": (_params_with("logits", -np.inf), ValueError, r"params\.logits contains non-finite"),
    "nan-tril": (_params_with("scale_tril", np.nan), ValueError, r"params\.scale_tril contains non-finite"),
    "nan-reg": (_params_with("reg_covar", np.nan), ValueError, r"params\.reg_covar contains non-finite"),
    "negative-reg": (_params_with("reg_covar", -1.0), ValueError, r"params\.reg_covar must be >= 0"),
    "tuple": (tuple(PARAMS), TypeError, r"params must be GMMParams"),
    "tril-shape": (PARAMS._replace(scale_tril=np.zeros((2, 3, 3))), ValueError, r"params\.scale_tril must"),
    "logits-shape": (
        PARAMS._replace(logits=np.zeros(3)),
        ValueError,
        r"params\.logits must have shape \[2\]",
    ),
    "reg-shape": (
        PARAMS._replace(reg_covar=np.zeros(2)),
        ValueError,
        r"params\.reg_covar must have shape \[\]",
    ),
    "strings": (PARAMS._replace(logits=np.array(["a", "b"])), TypeError, r"params\.logits must hold real"),
}


@pytest.mark.parametrize("bad", sorted(BAD_PARAMS))
@pytest.mark.parametrize("entry", sorted(PARAMS_ENTRY_POINTS))
def test_bad_params_are_rejected(entry, bad):
    params, err, match = BAD_PARAMS[bad]
    raises_before_tracing(lambda: PARAMS_ENTRY_POINTS[entry](params), err, match)


@pytest.mark.parametrize(
    "bad", ["nan-mean", "inf-logit", "nan-tril", "tril-shape", "logits-shape", "reg-shape", "tuple"]
)
@pytest.mark.parametrize("fit", ["fit", "fit_em"])
def test_bad_init_is_rejected(fit, bad):
    params, err, match = BAD_PARAMS[bad]
    match = match.replace("params", "init", 1)
    call = {
        "fit": lambda: sw.fit(KEY, GOOD_X, 2, sw.FitConfig(n_steps=2), init=params),
        "fit_em": lambda: sw.fit_em(KEY, GOOD_X, 2, init=params),
    }[fit]
    raises_before_tracing(call, err, match)


def test_value_checks_are_skipped_under_jit_shape_checks_are_not():
    nan_params = BAD_PARAMS["nan-mean"][0]
    # Traced: finiteness is not checked (the result is NaN, the caller's business) ...
    assert np.isnan(float(jax.jit(lambda p: sw.log_likelihood(p, GOOD_X))(nan_params)))
    w = jax.jit(lambda w: sw.from_moments(w, np.zeros((2, 2)), np.stack([np.eye(2)] * 2)).weights)
    assert np.all(np.isfinite(np.asarray(w(np.array([1.0, -1.0])))))
    # ... but shapes, dtypes and keys are.
    with pytest.raises(ValueError, match=r"params\.scale_tril must"):
        jax.jit(lambda p: sw.log_likelihood(p, GOOD_X))(BAD_PARAMS["tril-shape"][0])
    with pytest.raises(TypeError, match="key must be a single PRNG key"):
        jax.jit(lambda k: sw.sample(k, PARAMS, 3))(jax.random.split(KEY, 2))
    # vmap over keys and params works (the per-example key and params are checked).
    keys = jax.random.split(KEY, 3)
    assert jax.vmap(lambda k: sw.sample(k, PARAMS, 4))(keys).shape == (3, 4, 2)
    batched = jax.tree.map(lambda a: jnp.stack([a] * 3), PARAMS)
    assert jax.vmap(lambda p: sw.log_likelihood(p, GOOD_X))(batched).shape == (3,)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, np.float32(np.inf), "jnp-inf"])
@pytest.mark.parametrize(
    "field", ["learning_rate", "p", "reg_covar", "init_cov_scale", "lr_final_fraction", "momentum"]
)
def test_fit_config_rejects_non_finite(field, value):
    value = jnp.asarray(np.inf) if isinstance(value, str) else value
    with pytest.raises((ValueError, TypeError), match=rf"\b{field}\b"):
        sw.FitConfig(**{field: value})


@pytest.mark.parametrize("value", [np.inf, np.nan, "jnp-inf"])
@pytest.mark.parametrize("field", ["reg_covar", "init_cov_scale", "tol", "relocation_temperature"])
def test_em_config_rejects_non_finite(field, value):
    value = jnp.asarray(np.inf) if isinstance(value, str) else value
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        sw.EMConfig(**{field: value})


E2 = np.stack([np.eye(2)] * 2)


@pytest.mark.parametrize(
    "args,kwargs,err,match",
    [
        (
            (np.ones(2), np.zeros((2, 2)), E2 + np.array([[0.0, 1.0], [0.0, 0.0]])),
            {},
            ValueError,
            r"covariances must be symmetric: covariances\[0\]",
        ),
        ((np.array([1.0, -1.0]), np.zeros((2, 2)), E2), {}, ValueError, "weights must be >= 0"),
        ((np.zeros(2), np.zeros((2, 2)), E2), {}, ValueError, "weights must not all be zero"),
        ((np.array([1.0, np.nan]), np.zeros((2, 2)), E2), {}, ValueError, "weights contains non-finite"),
        ((np.ones(2), np.full((2, 2), np.nan), E2), {}, ValueError, "means contains non-finite"),
        (
            (np.ones(2), np.zeros((2, 2)), np.where(E2 > 0, np.inf, 0.0)),
            {},
            ValueError,
            "covariances contains non-finite",
        ),
        ((np.ones(2), np.zeros((2, 2)), E2), {"reg_covar": np.inf}, ValueError, "reg_covar must be finite"),
        ((np.ones(2), np.zeros((2, 2)), E2), {"reg_covar": "1"}, TypeError, "reg_covar must be a real"),
        ((np.ones(2), np.zeros((2, 2)), E2 * 1j), {}, TypeError, "covariances must hold real numbers"),
    ],
)
def test_from_moments_rejects_bad_moments(args, kwargs, err, match):
    with pytest.raises(err, match=match):
        sw.from_moments(*args, **kwargs)


def test_from_moments_accepts_rounding_asymmetry_and_a_zero_weight():
    a = np.random.default_rng(0).normal(size=(2, 2, 5)).astype(np.float32)
    c = a @ np.swapaxes(a, -1, -2)
    c[:, 0, 1] *= 1 + 1e-6  # float32 rounding-level asymmetry
    params = sw.from_moments(np.array([1.0, 0.0]), np.zeros((2, 2)), c)
    assert np.all(np.isfinite(np.asarray(sw.to_moments(params)[2])))


# Issue 13, item 6: dtypes, flags, keys, counts.
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", ">f4", ">f8", "int32", "bool"])
def test_half_precision_and_big_endian_data_are_computed_in_float32(dtype):
    x = (GOOD_X > 0) if dtype == "bool" else GOOD_X.astype(jnp.bfloat16 if dtype == "bfloat16" else dtype)
    assert np.isfinite(float(sw.log_likelihood(PARAMS, x)))
    assert np.isfinite(float(sw.sliced_wasserstein(KEY, PARAMS, x, n_projections=4)))
    res = sw.fit_em(KEY, x, 2, sw.EMConfig(max_iter=3))
    assert res.params.means.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(res.params.means)))


def test_half_precision_params_are_computed_in_float32():
    half = jax.tree.map(lambda a: np.asarray(a, np.float16), PARAMS)
    assert sw.sample(KEY, half, 4).dtype == jnp.float32
    assert np.isfinite(float(sw.log_likelihood(half, GOOD_X)))
    params = sw.from_moments(np.ones(2, np.float16), np.zeros((2, 2), ">f4"), E2.astype(jnp.bfloat16))
    assert params.means.dtype == jnp.float32


@pytest.mark.parametrize(
    "kwargs,err,name",
    [
        (dict(learn_weights=1), TypeError, "learn_weights must be a bool"),
        (dict(standardize="yes"), TypeError, "standardize must be a bool"),
        (dict(centered=1), TypeError, "centered must be a bool"),
        (dict(p=True), TypeError, r"\bp must be a real"),
        (dict(p="2"), TypeError, r"\bp must be a real"),
        (dict(rmsprop_decay="0.5"), TypeError, "rmsprop_decay must be a real"),
        (dict(learning_rate=1j), TypeError, "learning_rate must be a real"),
    ],
)
def test_fit_config_types(kwargs, err, name):
    raises_before_tracing(lambda: sw.FitConfig(**kwargs), err, name)


def test_numpy_scalars_are_accepted_as_settings():
    cfg = sw.FitConfig(p=np.float32(2.0), learn_weights=np.bool_(False), centered=np.True_)
    assert cfg.p == 2.0 and cfg.learn_weights is False and cfg.centered is True


@pytest.mark.parametrize(
    "key,match",
    [
        (None, "key must be a JAX PRNG key"),
        (np.zeros(2, np.uint32), "key must be a JAX PRNG key"),
        (
            jnp.zeros(3, jnp.uint32),
            r"raw uint32\[2\] key data\), got an array of dtype uint32 and shape \[3\]",
        ),
        (jnp.zeros(2, jnp.float32), "got an array of dtype float32"),
        (jnp.asarray(0), "got an array of dtype int32 and shape \\[\\]"),
        (
            jax.random.split(KEY, 2),
            r"key must be a single PRNG key \(shape \[\]\), got a key array of shape \[2\]",
        ),
        (jnp.zeros((2, 2), jnp.uint32), r"shape \[2, 2\]"),
    ],
    ids=["none", "numpy", "uint32[3]", "float32[2]", "scalar", "batched", "batched-raw"],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda k: sw.sample(k, PARAMS, 3),
        lambda k: sw.fit(k, GOOD_X, 2, sw.FitConfig(n_steps=2)),
        lambda k: sw.fit_em(k, GOOD_X, 2),
        lambda k: sw.sliced_wasserstein(k, PARAMS, GOOD_X),
        lambda k: sw.initialize(k, GOOD_X, 2),
    ],
    ids=["sample", "fit", "fit_em", "sliced_wasserstein", "initialize"],
)
def test_keys_of_the_wrong_shape_or_dtype(call, key, match):
    raises_before_tracing(lambda: call(key), TypeError, match)


def test_raw_uint32_keys_are_accepted():
    assert sw.sample(jax.random.PRNGKey(0), PARAMS, 3).shape == (3, 2)


@pytest.mark.parametrize("n,err", [(None, TypeError), (1.5, TypeError), ("3", TypeError), (-1, ValueError)])
def test_sample_count(n, err):
    raises_before_tracing(lambda: sw.sample(KEY, PARAMS, n), err, r"\bn must")
