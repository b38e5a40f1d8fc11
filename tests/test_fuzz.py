"""Property-based fuzzing of the public API (hypothesis).

Every call either raises a ValueError/TypeError whose message names the bad
argument, or returns a valid result: finite parameters, weights on the simplex,
covariances whose smallest eigenvalue (of the matrix as stored) is >= the
floor, a finite log-likelihood and finite samples.

Compilation dominates the cost, so shapes are drawn from small fixed sets (each
compiled program is reused across examples) while values -- offsets and
spreads from 1e-6 to 1e6, duplicates, constant columns, n == K, dtypes, bad
values -- vary freely. Profiles: ``ci`` (the default; the whole file in about a
minute on 2 cores) and ``long`` (``SWGMM_FUZZ_PROFILE=long python -m pytest
tests/test_fuzz.py``).
"""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import swgmm_jax as sw  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,  # the first example of each shape compiles
    derandomize=True,  # the same examples every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SWGMM_FUZZ_PROFILE", "ci"))

KEY = jax.random.key(0)
# (n, d, K): n == K, one column, the common case. Few shapes: one compilation each.
SHAPES = [(3, 2, 3), (16, 1, 2), (16, 2, 2)]
CFG = sw.FitConfig(n_steps=3, n_projections=4, n_levels=8)
EM_CFG = sw.EMConfig(max_iter=4)
DTYPES = ["float32", "float64", "float16", "bfloat16", ">f4", "int32"]


def _cast(x, dtype):
    if dtype == "bfloat16":
        return x.astype(jnp.bfloat16)
    if dtype == "int32":
        return np.round(np.clip(x, -2e9, 2e9)).astype(np.int32)
    with np.errstate(over="ignore"):
        return x.astype(dtype)


@st.composite
def datasets(draw, shapes=SHAPES):
    n, d, k = draw(st.sampled_from(shapes))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).normal(size=(n, d))
    kind = draw(st.sampled_from(["plain", "duplicates", "constant_column", "identical", "outlier"]))
    if kind == "duplicates":
        x = np.repeat(x[: max(1, n // 3)], 3, axis=0)[:n]
        x = np.concatenate([x, x[: n - len(x)]]) if len(x) < n else x
    elif kind == "constant_column":
        x[:, -1] = 1.0
    elif kind == "identical":
        x[:] = x[0]
    elif kind == "outlier":
        x[-1] = 1e4
    spread = 10.0 ** draw(st.floats(-6, 6))
    offset = draw(st.sampled_from([-1.0, 1.0])) * 10.0 ** draw(st.floats(-6, 6))
    dtype = draw(st.sampled_from(DTYPES))
    return _cast(offset + spread * x, dtype), k, (kind, spread, offset, dtype)


def _names(err, names):
    """The error message names one of ``names`` (as a word)."""
    return any(re.search(rf"(?<![\w.]){re.escape(n)}\b", str(err)) for n in names)


def assert_valid_params(params):
    w, m, c = (np.asarray(a, np.float64) for a in sw.to_moments(params))
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(m)) and np.all(np.isfinite(c))
    assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-5
    np.testing.assert_array_equal(c, np.swapaxes(c, -1, -2))
    floor = float(params.reg_covar)
    lam = np.linalg.eigvalsh(c).min(axis=-1)
    assert np.all(lam >= floor), (lam, floor)


def assert_usable(params, x):
    assert_valid_params(params)
    assert np.isfinite(float(sw.log_likelihood(params, x)))
    assert np.all(np.isfinite(np.asarray(sw.sample(KEY, params, 16))))
    labels = np.asarray(sw.predict(params, x))
    assert labels.min() >= 0 and labels.max() < params.n_components


def valid_or_named_error(call, names):
    """``call()``'s result, or ``None`` if it raised a ValueError/TypeError naming one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert _names(err, names), f"error does not name {names}: {err!r}"
        return None


@given(datasets())
def test_fit_gives_valid_params_or_a_named_error(data):
    x, k, _ = data
    res = valid_or_named_error(lambda: sw.fit(KEY, x, k, CFG), ["x"])
    if res is not None:
        assert_usable(res.params, x)


@given(datasets())
def test_fit_em_gives_valid_params_or_a_named_error(data):
    x, k, _ = data
    res = valid_or_named_error(lambda: sw.fit_em(KEY, x, k, EM_CFG), ["x"])
    if res is not None:
        assert_usable(res.params, x)


@st.composite
def moments(draw, k=2, d=2):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.floats(-3, 3))
    w = rng.random(k) * draw(st.sampled_from([1.0, 0.0, -1.0]))
    w[0] = draw(st.sampled_from([1.0, 0.0]))  # zero weights, all-zero weights, negative ones
    m = rng.normal(size=(k, d)) * 10.0 ** draw(st.floats(-6, 6))
    a = rng.normal(size=(k, d, d)) * scale
    rank = draw(st.integers(0, d))
    a[:, :, rank:] = 0.0  # singular covariances, down to zero
    c = a @ np.swapaxes(a, -1, -2)
    if draw(st.booleans()):
        c[:, 0, -1] += draw(st.sampled_from([0.0, 1e-9, 1.0])) * scale**2  # asymmetric
    bad = draw(st.sampled_from([None, "weights", "means", "covariances"]))
    if bad is not None:
        target = {"weights": w, "means": m, "covariances": c}[bad]
        target.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    reg = draw(st.sampled_from([1e-6, 1e-12, 0.1, 0.0]))
    return w, m, c, reg


@given(moments())
def test_from_moments_gives_valid_params_or_a_named_error(mom):
    w, m, c, reg = mom
    params = valid_or_named_error(
        lambda: sw.from_moments(w, m, c, reg_covar=reg), ["weights", "means", "covariances"]
    )
    if params is not None:
        assert_valid_params(params)
        assert np.isfinite(float(sw.log_likelihood(params, m)))


@given(moments(), datasets(shapes=[(16, 2, 2)]))
def test_density_functions_on_any_scales(mom, data):
    w, m, c, reg = mom
    x, _, _ = data
    try:
        params = sw.from_moments(np.abs(np.nan_to_num(w)) + 0.1, np.nan_to_num(m), c + c.T, reg_covar=reg)
    except ValueError:
        return  # non-finite covariances: covered above
    for call in (
        lambda: sw.log_likelihood(params, x),
        lambda: sw.predict_proba(params, x),
        lambda: sw.sliced_wasserstein(KEY, params, x, n_projections=4),
    ):
        out = valid_or_named_error(call, ["x"])
        if out is not None:
            assert np.all(np.isfinite(np.asarray(out)))
    assert np.all(np.isfinite(np.asarray(sw.sample(KEY, params, 8))))


BAD_VALUES = [np.nan, np.inf, -np.inf, 1e300]
PARAMS = sw.from_moments(np.ones(2), np.array([[0.0, 0.0], [3.0, 0.0]]), np.stack([np.eye(2)] * 2))
X = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
ENTRY_POINTS = {
    "fit": lambda x, p: sw.fit(KEY, x, 2, CFG, init=p),
    "fit_em": lambda x, p: sw.fit_em(KEY, x, 2, EM_CFG, init=p),
    "log_likelihood": lambda x, p: sw.log_likelihood(p, x),
    "predict": lambda x, p: sw.predict(p, x),
    "predict_proba": lambda x, p: sw.predict_proba(p, x),
    "sliced_wasserstein": lambda x, p: sw.sliced_wasserstein(KEY, p, x, n_projections=4),
    "polish_em": lambda x, p: sw.polish_em(p, x, 2),
    "sample": lambda x, p: sw.sample(KEY, p, 4),
}
PARAM_NAMES = {"fit": "init", "fit_em": "init"}


@given(
    st.sampled_from(sorted(ENTRY_POINTS)),
    st.sampled_from(["x", "logits", "means", "scale_tril", "reg_covar"]),
    st.sampled_from(BAD_VALUES),
    st.integers(0, 3),
)
def test_a_bad_value_anywhere_is_a_named_error(entry, where, value, index):
    x, params = X.copy(), PARAMS
    if where == "x":
        if entry == "sample":
            return
        with np.errstate(over="ignore"):
            x.flat[index] = value  # 1e300 overflows float32 to inf
        name = "x"
    else:
        leaf = np.array(getattr(params, where), np.float32)
        if where == "scale_tril":
            index = [0, 2, 3, 4][index]  # lower-triangle entries (the upper part is ignored)
        with np.errstate(over="ignore"):
            leaf.flat[index % leaf.size] = value
        params = params._replace(**{where: leaf})
        name = f"{PARAM_NAMES.get(entry, 'params')}.{where}"
    with pytest.raises(ValueError, match=re.escape(name)):
        ENTRY_POINTS[entry](x, params)


@given(
    st.lists(st.sampled_from(["ok", "nan", "inf"]), min_size=3, max_size=3),
    st.sampled_from(["sw", "log_likelihood"]),
)
def test_select_best_picks_a_finite_restart_or_says_none_is(states, criterion):
    batched = jax.tree.map(lambda a: jnp.stack([a] * 3), PARAMS)
    means = np.array(batched.means)
    for r, s in enumerate(states):
        means[r] += r  # distinct restarts
        if s != "ok":
            means[r, 0, 0] = np.nan if s == "nan" else np.inf
    result = sw.FitResult(batched._replace(means=jnp.asarray(means)), jnp.zeros((3, 2)))
    if "ok" not in states:
        with pytest.raises(ValueError, match="result"):
            sw.select_best(result, X, criterion, key=KEY, n_projections=8)
        return
    best, idx, _ = sw.select_best(result, X, criterion, key=KEY, n_projections=8)
    assert states[idx] == "ok"
    assert_valid_params(best.params)


SETTINGS = {
    "learning_rate": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("0.1"), st.none()),
    "p": st.one_of(st.floats(), st.booleans(), st.just("2")),
    "reg_covar": st.floats(),
    "init_cov_scale": st.floats(),
    "lr_final_fraction": st.floats(),
    "rmsprop_decay": st.one_of(st.floats(), st.just("0.5")),
    "n_projections": st.one_of(st.integers(-3, 3), st.floats(0, 3), st.none()),
    "n_levels": st.one_of(st.integers(-3, 3), st.just(1.5)),
    "learn_weights": st.one_of(st.booleans(), st.integers(0, 1), st.just("yes")),
    "centered": st.one_of(st.booleans(), st.integers(0, 1)),
}


@given(st.sampled_from(sorted(SETTINGS)).flatmap(lambda f: st.tuples(st.just(f), SETTINGS[f])))
def test_fit_config_accepts_valid_settings_or_names_the_bad_one(setting):
    field, value = setting
    try:
        cfg = sw.FitConfig(**{field: value})
    except (ValueError, TypeError) as err:
        assert _names(err, [field]), err
        return
    got = getattr(cfg, field)
    if isinstance(got, float):
        assert np.isfinite(got)
