"""swgmm_jax.GaussianMixture against scikit-learn's GaussianMixture, and scikit-learn's tools on it.

``sklearn.utils.estimator_checks.check_estimator`` passes every check for ``method="em"`` and
``method="sw"`` (scikit-learn 1.9), except ``check_array_api_input``, which
scikit-learn itself skips unless ``SCIPY_ARRAY_API=1`` is set (the estimator does not claim
array-API support), and ``check_sample_weights_pandas_series``, skipped without pandas. With
``fit(X, y=None, sample_weight=None)`` the checks include scikit-learn's sample-weight checks
(shapes, lists, all-zero weights, weights not overwritten, integer weights equal to repeated
rows). The ``"sw"`` run compiles an SW fit for each of the checks' data shapes (about a minute on
2 cores), the ``"em"`` run 15-30 s; both are marked ``slow``.
"""

import pickle
import warnings

import jax
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import swgmm_jax as sw
from swgmm_jax import FitConfig, GaussianMixture

SW_FAST = FitConfig(n_steps=30)

FITTED = [
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "lower_bounds_",
    "n_features_in_",
]


def _blobs(n_per=60, dtype=np.float64, seed=0):
    """Three well-separated clusters in 2-D."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    scales = np.array([[1.0, 0.5], [0.7, 1.2], [0.6, 0.6]])
    x = np.concatenate([c + s * rng.normal(size=(n_per, 2)) for c, s in zip(centres, scales, strict=True)])
    return rng.permutation(x).astype(dtype)


@pytest.fixture(scope="module")
def x():
    return _blobs()


@pytest.fixture(scope="module")
def fitted_sw(x):
    return GaussianMixture(3, random_state=0, sw_config=SW_FAST).fit(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_em_matches_sklearn_from_the_same_init(x64, dtype):
    x = _blobs(dtype=dtype)
    rng = np.random.default_rng(1)
    init = dict(
        weights_init=np.full(3, 1 / 3),
        means_init=x[rng.choice(len(x), 3, replace=False)].astype(np.float64),
        precisions_init=np.stack([np.eye(2) * 0.5] * 3),
    )
    kw = dict(n_components=3, tol=1e-8, max_iter=300, **init)
    sk = SkGaussianMixture(**kw, random_state=0).fit(x)
    ours = GaussianMixture(**kw, method="em", random_state=0).fit(x)
    tol = 1e-8 if dtype == np.float64 else 1e-4
    assert ours.score(x) == pytest.approx(sk.score(x), abs=tol * 10)
    assert ours.lower_bound_ == pytest.approx(sk.lower_bound_, abs=tol * 10)
    np.testing.assert_allclose(ours.means_, sk.means_, atol=1e-3)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, atol=1e-3)
    np.testing.assert_allclose(ours.precisions_cholesky_, sk.precisions_cholesky_, rtol=1e-3, atol=1e-3)
    if dtype == np.float64:
        assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_array_equal(ours.predict(x), sk.predict(x))
    np.testing.assert_allclose(ours.score_samples(x), sk.score_samples(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["em", "sw"])
def test_every_attribute_has_sklearns_shape_and_dtype(dtype, method):
    x = _blobs(dtype=dtype)
    sk = SkGaussianMixture(3, random_state=0).fit(x)
    ours = GaussianMixture(3, method=method, random_state=0, sw_config=SW_FAST).fit(x)
    assert ours.score(x) == pytest.approx(sk.score(x), abs=0.05)  # the same optimum, well separated
    for name in FITTED:
        a, b = getattr(ours, name), getattr(sk, name)
        assert type(a) is type(b), name
        if isinstance(b, np.ndarray):
            assert a.shape == b.shape and a.dtype == b.dtype, name
        elif isinstance(b, list):  # lower_bounds_: one NumPy scalar per iteration
            assert {type(v) for v in a} == {type(v) for v in b}, name
        else:
            assert np.asarray(a).dtype == np.asarray(b).dtype, name
    for meth in ("predict", "predict_proba", "score_samples"):
        a, b = getattr(ours, meth)(x), getattr(sk, meth)(x)
        assert a.shape == b.shape and a.dtype == b.dtype, meth
    assert isinstance(ours.score(x), float)
    xs, ys = ours.sample(7)
    xs_sk, ys_sk = sk.sample(7)
    assert xs.shape == xs_sk.shape and xs.dtype == xs_sk.dtype
    assert ys.shape == ys_sk.shape and ys.dtype == ys_sk.dtype
    assert np.all(np.diff(ys) >= 0)  # grouped by component, as scikit-learn's
    assert isinstance(ours.params_, sw.GMMParams)


def test_precisions_follow_sklearns_convention(fitted_sw):
    u = fitted_sw.precisions_cholesky_.astype(np.float64)
    assert np.allclose(u, np.triu(u))  # upper triangular
    np.testing.assert_allclose(u @ np.swapaxes(u, 1, 2), fitted_sw.precisions_, rtol=1e-6)
    eye = fitted_sw.covariances_ @ fitted_sw.precisions_
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(2), eye.shape), atol=1e-6)


def test_bic_and_aic_equal_sklearns_on_the_same_parameters(x, fitted_sw):
    sk = SkGaussianMixture(3)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(sk, name, getattr(fitted_sw, name))
    assert fitted_sw.score(x) == pytest.approx(sk.score(x), rel=1e-6)
    assert fitted_sw.bic(x) == pytest.approx(sk.bic(x), rel=1e-6)
    assert fitted_sw.aic(x) == pytest.approx(sk.aic(x), rel=1e-6)


def test_sw_methods_report_their_sw_distance(x, fitted_sw):
    key = jax.random.key(0)
    assert fitted_sw.n_iter_ == SW_FAST.n_steps and fitted_sw.converged_
    assert np.isfinite(fitted_sw.sliced_wasserstein_) and fitted_sw.sliced_wasserstein_ > 0
    # n_init > 1 for "sw": the restart of smallest SW distance on the fixed directions
    many = GaussianMixture(3, n_init=3, random_state=key, sw_config=SW_FAST).fit(x)
    assert np.isfinite(many.sliced_wasserstein_)
    both = GaussianMixture(3, method="sw+em", random_state=key, sw_config=SW_FAST).fit(x)
    assert both.score(x) >= many.score(x) - 1e-4  # EM after SW raises the likelihood
    assert GaussianMixture(3, method="em", random_state=0).fit(x).sliced_wasserstein_ is None


def test_robust_method_is_fit_robust(x):
    gm = GaussianMixture(3, method="robust", n_init=2, random_state=0, sw_config=SW_FAST).fit(x)
    assert gm.converged_ and np.isfinite(gm.sliced_wasserstein_)
    assert gm.lower_bound_ == pytest.approx(gm.score(x), abs=1e-5)


def test_random_state_kinds_and_determinism(x):
    a = GaussianMixture(3, method="em", random_state=3).fit(x)
    b = GaussianMixture(3, method="em", random_state=3).fit(x)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.sample(5)[0], a.sample(5)[0])  # an int: the same draw
    for rs in (np.random.default_rng(0), np.random.RandomState(0), jax.random.key(1), None):
        assert GaussianMixture(3, method="em", random_state=rs).fit(x).means_.shape == (3, 2)
    gen = GaussianMixture(3, method="em", random_state=np.random.default_rng(0)).fit(x)
    assert not np.array_equal(gen.sample(5)[0], gen.sample(5)[0])  # a generator advances


def test_warm_start_continues_from_the_previous_fit(x):
    gm = GaussianMixture(3, method="em", warm_start=True, tol=1e-6, max_iter=500, random_state=0).fit(x)
    first = gm.lower_bound_
    gm.fit(x)
    assert gm.n_iter_ <= 2 and gm.lower_bound_ == pytest.approx(first, abs=1e-5)


def test_clone_get_params_set_params_round_trip():
    gm = GaussianMixture(4, method="sw+em", reg_covar=1e-4, sw_config=SW_FAST, random_state=2)
    params = gm.get_params()
    assert params["n_components"] == 4 and params["sw_config"] is SW_FAST
    twin = clone(gm)
    assert twin is not gm and twin.get_params() == params
    assert GaussianMixture().set_params(**params).get_params() == params
    assert repr(gm).startswith("GaussianMixture(method='sw+em', n_components=4")
    with pytest.raises(ValueError, match="Invalid parameter 'n_clusters'"):
        gm.set_params(n_clusters=3)


def test_pipeline_and_grid_search_over_n_components(x):
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", GaussianMixture(method="em", random_state=0))])
    search = GridSearchCV(pipe, {"gmm__n_components": [1, 3]}, cv=3).fit(x)
    assert search.best_params_ == {"gmm__n_components": 3}
    assert search.best_estimator_.predict(x).shape == (len(x),)


def test_pickle_round_trip_gives_identical_predictions(x, fitted_sw):
    again = pickle.loads(pickle.dumps(fitted_sw))
    np.testing.assert_array_equal(again.predict(x), fitted_sw.predict(x))
    np.testing.assert_array_equal(again.score_samples(x), fitted_sw.score_samples(x))
    np.testing.assert_array_equal(again.means_, fitted_sw.means_)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"covariance_type": "diagonal"}, ValueError, "covariance_type"),
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": 2.5}, ValueError, "n_components"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"reg_covar": 0.0}, ValueError, "reg_covar"),
        ({"reg_covar": "big"}, TypeError, "reg_covar"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"init_params": "random"}, ValueError, "init_params='random'"),
        ({"init_params": "kmeanz"}, ValueError, "init_params"),
        ({"method": "gd"}, ValueError, "method"),
        ({"sw_config": {"n_steps": 3}}, TypeError, "sw_config"),
        ({"random_state": "seed"}, TypeError, "random_state"),
        ({"random_state": -1}, ValueError, "random_state"),
        ({"warm_start": 1}, TypeError, "warm_start"),
        ({"means_init": np.zeros((2, 2))}, ValueError, "means_init"),
    ],
)
def test_bad_arguments_raise_at_fit_naming_them(x, kwargs, error, match):
    gm = GaussianMixture(**{"n_components": 3, "method": "em", **kwargs})  # the constructor only stores
    with pytest.raises(error, match=match):
        gm.fit(x)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros(10), "2D array"),
        (np.zeros((2, 3, 2)), "2D array"),
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "NaN"),
        (np.array([[0.0, 1.0]]), "1 sample"),
        (np.zeros((2, 2)), "n_samples >= n_components"),
        (np.zeros((5, 0)), "0 feature"),
    ],
)
def test_bad_data_raises_before_anything_compiles(data, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, method="em").fit(data)


def test_predict_checks_fit_and_features(x, fitted_sw):
    with pytest.raises(sw.NotFittedError, match="not fitted"):
        GaussianMixture(3).predict(x)
    with pytest.raises(AttributeError):  # as scikit-learn's NotFittedError
        GaussianMixture(3).score_samples(x)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        fitted_sw.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fitted_sw.score(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="n_samples"):
        fitted_sw.sample(0)


def test_convergence_warning(x):
    with pytest.warns(sw.ConvergenceWarning, match="max_iter=1"):
        GaussianMixture(3, method="em", max_iter=1, tol=0.0, random_state=0).fit(x)


def _check(estimator):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        results = check_estimator(estimator, on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert not failed, failed
    # check_sample_weights_pandas_series needs pandas, which is not a test dependency.
    assert skipped <= {"check_array_api_input", "check_sample_weights_pandas_series"}


@pytest.mark.slow
def test_sklearn_check_estimator_em():
    _check(GaussianMixture(method="em", random_state=0))


@pytest.mark.slow
def test_sklearn_check_estimator_sw():
    _check(GaussianMixture(method="sw", random_state=0, sw_config=FitConfig(n_steps=20)))


class _Frame:
    """The two things the estimator reads of a pandas DataFrame (pandas is not a test dependency)."""

    def __init__(self, values, columns):
        self.values, self.columns = values, columns

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype)


def test_feature_names_are_kept_and_checked(x):
    gm = GaussianMixture(3, method="em", random_state=0).fit(_Frame(x, ["a", "b"]))
    assert gm.feature_names_in_.tolist() == ["a", "b"]
    # Warnings point at the caller (package warnings are errors in this suite: see pyproject.toml).
    with pytest.warns(UserWarning, match="does not have valid feature names") as caught:
        gm.score(x)
    assert caught[0].filename == __file__
    with pytest.raises(ValueError, match="feature names should match"):
        gm.predict(_Frame(x, ["b", "a"]))
    with pytest.warns(sw.ConvergenceWarning) as caught:
        GaussianMixture(3, method="em", max_iter=1, tol=0.0, random_state=0).fit_predict(x)
    assert caught[0].filename == __file__
    assert not hasattr(GaussianMixture(3, method="em", random_state=0).fit(x), "feature_names_in_")


def test_verbose_2_reports_the_sw_steps(capsys):
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    GaussianMixture(2, random_state=0, sw_config=SW_FAST, verbose=2).fit(x)
    captured = capsys.readouterr()
    steps = [line for line in captured.err.splitlines() if line.startswith("swgmm sw: step ")]
    assert len(steps) == 15 and steps[-1].startswith("swgmm sw: step 30/30")  # every ceil(30 / 20) steps
    assert "GaussianMixture(method='sw')" in captured.out
