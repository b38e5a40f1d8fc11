"""Argument validation at the Python boundary: clear errors naming the argument, before
anything is traced or compiled."""

import jax
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
