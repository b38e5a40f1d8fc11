"""A scikit-learn-style estimator over the functional API: :class:`GaussianMixture`.

A drop-in for ``sklearn.mixture.GaussianMixture`` (full covariances): the same
constructor arguments, methods and fitted attributes (NumPy arrays of
scikit-learn's shapes and dtypes), plus ``method`` (which fit of this package
runs) and ``sw_config`` (the SW settings). The module depends on jax, optax
and numpy only: ``get_params``/``set_params``/``__repr__`` read the
constructor's signature, as scikit-learn's ``BaseEstimator`` does, so the
estimator works with ``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV``
without scikit-learn being a dependency of the package.
"""

from __future__ import annotations

import inspect
import numbers
import os
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from swgmm_jax._config import EMConfig, FitConfig
from swgmm_jax._covariances import COVARIANCE_TYPES, covariance_shape
from swgmm_jax._em import fit_em, fit_em_restarts
from swgmm_jax._fit import fit, fit_restarts
from swgmm_jax._init import initialize, standardizer
from swgmm_jax._io import load as load_model
from swgmm_jax._io import save as save_model
from swgmm_jax._params import (
    GMMParams,
    aic,
    bic,
    covariance_type_of,
    from_moments,
    hard_labels,
    point_log_likelihood,
    responsibilities,
    score_samples,
    to_moments,
)
from swgmm_jax._robust import ROBUST_FIT_CONFIG, fit_robust
from swgmm_jax._select import select_best
from swgmm_jax._sliced import sliced_wasserstein
from swgmm_jax._validation import check_key, check_sample_weight

__all__ = ["GaussianMixture", "NotFittedError", "ConvergenceWarning"]

METHODS = ("sw", "sw+em", "em", "robust")
_INIT_PARAMS = {"kmeans": "kmeans", "k-means++": "kmeans++", "random_from_data": "random_from_data"}
_COVARIANCE_TYPES = COVARIANCE_TYPES
_SW_EVAL: dict[str, Any] = {
    "n_projections": 128,
    "n_levels": 256,
}  # the fixed directions of sliced_wasserstein_


class NotFittedError(ValueError, AttributeError):
    """Raised when a method needing a fitted model is called before ``fit``.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``NotFittedError``.

    Examples:
      >>> import numpy as np, swgmm_jax as sw
      >>> try:
      ...     sw.GaussianMixture(2).predict(np.zeros((3, 2)))
      ... except sw.NotFittedError as err:
      ...     print(type(err).__name__, isinstance(err, ValueError))
      NotFittedError True
    """


def _not_fitted_error() -> type[NotFittedError]:
    """:class:`NotFittedError`, also scikit-learn's ``NotFittedError`` once scikit-learn is imported.

    scikit-learn's tools (``check_is_fitted``, the estimator checks) catch their own class; the
    package never imports scikit-learn, but where the caller has, the error is both.
    """
    sk = sys.modules.get("sklearn.exceptions")
    base = getattr(sk, "NotFittedError", None)
    if base is None or issubclass(NotFittedError, base):
        return NotFittedError
    if base not in _BOTH:
        _BOTH[base] = type("NotFittedError", (NotFittedError, base), {"__module__": __name__})
    return _BOTH[base]


_BOTH: dict[type, type[NotFittedError]] = {}


class ConvergenceWarning(UserWarning):
    """Warned by :class:`GaussianMixture` when an EM phase stopped at ``max_iter`` before meeting ``tol``.

    Examples:
      >>> import warnings, numpy as np, swgmm_jax as sw
      >>> X = np.random.default_rng(0).normal(size=(100, 2))
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     _ = sw.GaussianMixture(3, method="em", max_iter=1, tol=0.0, random_state=0).fit(X)
      >>> [w.category.__name__ for w in caught]
      ['ConvergenceWarning']
    """


def _mean_ll(params: GMMParams, x: jax.Array, w: Any) -> jax.Array:
    """The (weighted) mean log-likelihood of ``x``."""
    ll = point_log_likelihood(params, x)
    return ll.mean() if w is None else (w @ ll) / jnp.sum(w)


def _check_array(X: Any, name: str = "X", min_samples: int = 1) -> np.ndarray:
    """``X`` as a finite 2-D float32/float64 NumPy array (float32 stays float32), or raise."""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array (X.toarray())")
    arr = np.asarray(X)
    if arr.dtype.kind == "O":
        arr = np.asarray(X, dtype=np.float64)  # raises TypeError for non-numeric entries
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for {name} of shape [n_samples, n_features], got shape {arr.shape}. "
            "Reshape your data with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {arr.shape[0]} sample(s) (shape={arr.shape}) while a minimum of "
            f"{min_samples} is required."
        )
    if arr.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Input {name} contains NaN or inf")
    return arr


def _feature_names(X: Any) -> np.ndarray | None:
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(columns, dtype=object)
    return names if names.size and all(isinstance(c, str) for c in names) else None


def _caller_stacklevel() -> int:
    """``stacklevel`` of a warning raised here that points at the first caller outside this module."""
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # arrays, keys: compare as unequal
        return False


class GaussianMixture:
    """Gaussian mixture model with scikit-learn's ``GaussianMixture`` interface.

    ``from swgmm_jax import GaussianMixture`` replaces
    ``from sklearn.mixture import GaussianMixture``; ``method`` chooses the fit:

    * ``"sw"`` (default): the paper's fit, minimising the sliced Wasserstein
      distance (:func:`swgmm_jax.fit`; ``n_init > 1``: :func:`swgmm_jax.fit_restarts`
      and the restart of smallest SW distance on fixed directions, the paper's way);
    * ``"sw+em"``: SW fits, then EM from each (:func:`swgmm_jax.fit_em`); the best
      by log-likelihood;
    * ``"em"``: this package's EM (scikit-learn's updates); the best by log-likelihood;
    * ``"robust"``: :func:`swgmm_jax.fit_robust` with ``n_init`` SW restarts
      (``n_init=4`` is its own default), EM to ``tol``/``max_iter`` and 5
      likelihood-accepted merge-and-relocate rounds; the most likely restart
      without a collapsed component.

    ``tol`` and ``max_iter`` govern the EM phases; an SW phase runs the fixed
    ``sw_config.n_steps`` steps (no stopping test). ``reg_covar`` is in the
    units of the data (scikit-learn's convention) for every method: for the SW
    phases it is converted to the standardised units of :class:`FitConfig`,
    replacing ``sw_config.reg_covar``, and ``init_params`` replaces
    ``sw_config.init``. Computations run in float32 unless x64 is enabled; the
    fitted attributes take the dtype of ``X`` as scikit-learn's do (float32
    for float32 data, float64 otherwise).

    Args:
      n_components: number of components ``K``.
      covariance_type: ``"full"``, ``"diag"``, ``"spherical"`` or ``"tied"``
        (scikit-learn's meanings), in every phase of the fit (it replaces
        ``sw_config.covariance_type``).
      tol: EM's convergence threshold on the mean log-likelihood.
      reg_covar: covariance floor added to the diagonals (data units), > 0.
      max_iter: EM iterations at most.
      n_init: number of initialisations (restarts); the best is kept (see ``method``).
      init_params: ``"kmeans"`` (best of 10 k-means runs), ``"k-means++"`` or
        ``"random_from_data"``.
      weights_init: optional ``[K]`` initial weights (as scikit-learn's).
      means_init: optional ``[K, d]`` initial means.
      precisions_init: optional initial precisions in scikit-learn's shape for
        ``covariance_type`` (``[K, d, d]``, ``[d, d]``, ``[K, d]``, ``[K]``). Parts
        not given come from ``init_params``; with any of them ``n_init`` is 1.
      random_state: ``None`` (a seed drawn from NumPy's global generator), an
        int, a ``numpy.random.Generator``/``RandomState`` or a JAX PRNG key.
      warm_start: start each ``fit`` from the previous fit's parameters (then
        ``n_init`` is 1, as in scikit-learn).
      verbose: ``> 0`` prints one line per fit; ``>= 2`` also reports the SW
        steps on stderr (``progress=True`` of :func:`swgmm_jax.fit`).
      verbose_interval: accepted for compatibility (the SW steps are reported
        20 times per fit; EM has no per-iteration output).
      method: ``"sw"``, ``"sw+em"``, ``"em"`` or ``"robust"``.
      sw_config: :class:`swgmm_jax.FitConfig` of the SW phases; ``None``:
        ``FitConfig()`` (``FitConfig(n_steps=100)`` for ``"robust"``).

    Fitted attributes: ``weights_ [K]``, ``means_ [K, d]``, ``covariances_``,
    ``precisions_``, ``precisions_cholesky_`` (in scikit-learn's shape for the
    covariance type: ``[K, d, d]`` for ``"full"``, ``[d, d]`` for ``"tied"``,
    ``[K, d]`` for ``"diag"``, ``[K]`` for ``"spherical"``; the Cholesky factor
    is the upper-triangular ``U`` with ``precision = U U^T``, scikit-learn's
    convention, and ``1 / sqrt(variance)`` for the diagonal types), ``converged_``,
    ``n_iter_`` (EM iterations of the chosen fit; for ``"sw"`` the SW steps, and
    ``converged_`` is whether its loss stayed finite), ``lower_bound_`` (mean
    log-likelihood: for EM at its last E-step, as scikit-learn; for ``"sw"`` of
    the final fit), ``lower_bounds_`` (list of ``n_iter_`` values, per EM iteration; for
    ``"sw"`` the one value), ``n_features_in_``, ``params_`` (the
    :class:`swgmm_jax.GMMParams`) and ``sliced_wasserstein_`` (``SW_p^p`` of
    the fit, data units, on 128 fixed directions with 256 levels each; ``None``
    for ``"em"``).

    Examples:
      >>> import numpy as np
      >>> from swgmm_jax import FitConfig, GaussianMixture
      >>> rng = np.random.default_rng(0)
      >>> X = np.concatenate([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
      >>> gm = GaussianMixture(2, random_state=0, sw_config=FitConfig(n_steps=50)).fit(X)
      >>> gm.means_.shape, gm.covariances_.dtype, gm.predict(X[:3]).shape
      ((2, 2), dtype('float64'), (3,))
      >>> GaussianMixture(2, method="em", random_state=0).fit(X).converged_
      True
      >>> GaussianMixture(3, method="em")
      GaussianMixture(method='em', n_components=3)
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        method: str = "sw",
        sw_config: FitConfig | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.method = method
        self.sw_config = sw_config

    # ---- scikit-learn's estimator protocol, without scikit-learn ----

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, by name (``deep``: also those of nested estimators).

        Examples:
          >>> from swgmm_jax import GaussianMixture
          >>> GaussianMixture(3).get_params()["n_components"]
          3
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> GaussianMixture:
        """Set constructor arguments by name; returns ``self``.

        Examples:
          >>> from swgmm_jax import GaussianMixture
          >>> GaussianMixture().set_params(n_components=4, method="em").n_components
          4
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in self._get_param_names()
            if not _equal(getattr(self, name), defaults[name])
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        # Only scikit-learn calls this, so scikit-learn is importable here.
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=False),
            non_deterministic=self.random_state is None,
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "params_")

    # ---- validation ----

    def _check_hyperparameters(self) -> None:
        if not _is_integer(self.n_components) or self.n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {self.n_components!r}")
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {_COVARIANCE_TYPES}, got {self.covariance_type!r}"
            )
        for name, low in (("tol", 0.0), ("reg_covar", 0.0)):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not np.isfinite(float(value)) or value < low or (name == "reg_covar" and value == 0):
                raise ValueError(
                    f"{name} must be finite and {'>' if name == 'reg_covar' else '>='} 0, got {value!r}"
                )
        for name in ("max_iter", "n_init"):
            value = getattr(self, name)
            if not _is_integer(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.init_params == "random":
            raise ValueError(
                "init_params='random' (random responsibilities) is not implemented; "
                f"use one of {tuple(_INIT_PARAMS)}"
            )
        if self.init_params not in _INIT_PARAMS:
            raise ValueError(f"init_params must be one of {tuple(_INIT_PARAMS)}, got {self.init_params!r}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool, got {self.warm_start!r}")
        if not _is_integer(self.verbose) or self.verbose < 0:
            raise ValueError(f"verbose must be an integer >= 0, got {self.verbose!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.sw_config is not None and not isinstance(self.sw_config, FitConfig):
            raise TypeError(
                f"sw_config must be a swgmm_jax.FitConfig or None, got {type(self.sw_config).__name__}"
            )

    def _key(self) -> jax.Array:
        rs = self.random_state
        if rs is None:
            return jax.random.key(int(np.random.randint(np.iinfo(np.int32).max)))
        if _is_integer(rs):
            if not 0 <= rs < 2**32:
                raise ValueError(f"random_state must be an integer in [0, 2**32), got {rs}")
            return jax.random.key(int(rs))
        if isinstance(rs, np.random.Generator):
            return jax.random.key(int(rs.integers(np.iinfo(np.int32).max)))
        if isinstance(rs, np.random.RandomState):
            return jax.random.key(int(rs.randint(np.iinfo(np.int32).max)))
        if isinstance(rs, jax.Array):
            check_key(rs, "random_state")
            return rs
        raise TypeError(
            "random_state must be None, an int, a numpy Generator or RandomState, or a JAX PRNG key, "
            f"got {type(rs).__name__}"
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise _not_fitted_error()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )

    def _validate_predict(self, X: Any) -> jax.Array:
        self._check_fitted()
        names = _feature_names(X)
        fitted_names = getattr(self, "feature_names_in_", None)
        if fitted_names is not None and names is None:
            warnings.warn(
                f"X does not have valid feature names, but {type(self).__name__} was fitted with "
                "feature names",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        elif fitted_names is None and names is not None:
            warnings.warn(
                f"X has feature names, but {type(self).__name__} was fitted without feature names",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
        elif fitted_names is not None and names is not None and not np.array_equal(names, fitted_names):
            raise ValueError("The feature names should match those that were passed during fit.")
        arr = _check_array(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return jnp.asarray(arr, self.params_.means.dtype)

    # ---- fitting ----

    def _initial_params(
        self, key: jax.Array, x: jax.Array, k: int, init: str, w: Any = None
    ) -> GMMParams | None:
        if self.warm_start and hasattr(self, "params_"):
            if self.params_.means.shape != (k, x.shape[1]):
                raise ValueError(
                    f"warm_start: the previous fit has shape {self.params_.means.shape}, "
                    f"the new one would have {(k, x.shape[1])}"
                )
            if covariance_type_of(self.params_) != self.covariance_type:
                raise ValueError(
                    f"warm_start: the previous fit has covariance_type={covariance_type_of(self.params_)!r}, "
                    f"this estimator {self.covariance_type!r}"
                )
            return self.params_
        given = (self.weights_init, self.means_init, self.precisions_init)
        if all(g is None for g in given):
            return None
        ct = self.covariance_type
        first = initialize(key, x, k, method=init, sample_weight=w, covariance_type=ct)
        w, m, c = (np.asarray(a, np.float64) for a in to_moments(first))
        p: np.ndarray
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, np.float64)
            if w.shape != (k,):
                raise ValueError(f"weights_init must have shape ({k},), got {w.shape}")
        if self.means_init is not None:
            m = np.asarray(self.means_init, np.float64)
            if m.shape != (k, x.shape[1]):
                raise ValueError(f"means_init must have shape ({k}, {x.shape[1]}), got {m.shape}")
        if self.precisions_init is not None:
            p = np.asarray(self.precisions_init, np.float64)
            want = covariance_shape(ct, k, x.shape[1])
            if p.shape != want:
                raise ValueError(
                    f"precisions_init must have shape {want} for covariance_type={ct!r}, got {p.shape}"
                )
            c = np.linalg.inv(p) if ct in ("full", "tied") else 1.0 / p
        dtype = x.dtype
        return from_moments(
            w.astype(dtype), m.astype(dtype), c.astype(dtype), self.reg_covar, covariance_type=ct
        )

    def _configs(self, x: np.ndarray, w: Any = None) -> tuple[FitConfig, EMConfig]:
        init = _INIT_PARAMS[self.init_params]
        base = self.sw_config
        if base is None:
            base = ROBUST_FIT_CONFIG if self.method == "robust" else FitConfig()
        reg = float(self.reg_covar)
        if base.standardize:  # FitConfig's floor is in units of the standardised data
            reg = reg / float(standardizer(jnp.asarray(x), w)[1]) ** 2
        sw_config = base.replace(reg_covar=reg, init=init, covariance_type=self.covariance_type)
        em_config = EMConfig(
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            reg_covar=float(self.reg_covar),
            init=init,
            relocations=5 if self.method == "robust" else 0,
            covariance_type=self.covariance_type,
        )
        return sw_config, em_config

    def _run(
        self, key: jax.Array, x: jax.Array, sw_config: FitConfig, em_config: EMConfig, init: Any, w: Any
    ):
        """``(params, n_iter, converged, lower_bounds, sw_distance_or_None)`` of the chosen fit."""
        k = int(self.n_components)
        r = 1 if init is not None else int(self.n_init)
        k_fit, k_em, k_eval = jax.random.split(key, 3)
        method = self.method
        progress = True if self.verbose >= 2 else None  # SW steps reported on stderr
        if method == "robust":
            res = fit_robust(
                k_fit, x, k, sw_config, em_config, n_restarts=r, sample_weight=w, progress=progress
            )
            em = jax.tree.map(lambda a: a[res.restart_index], res.em_result)
            return res.params, em.n_iter, em.converged, em.loss_history, k_eval
        if method == "em":
            if r == 1:
                em = fit_em(k_em, x, k, em_config, init, sample_weight=w)
            else:
                many = fit_em_restarts(k_em, x, k, r, em_config, sample_weight=w)
                em = select_best(many, x, "log_likelihood", sample_weight=w).best
            return em.params, em.n_iter, em.converged, em.loss_history, None
        if r == 1:
            sw_res = fit(k_fit, x, k, sw_config, init, sample_weight=w, progress=progress)
        else:
            sw_res = fit_restarts(k_fit, x, k, r, sw_config, sample_weight=w, progress=progress)
        if method == "sw":
            if r > 1:
                p = sw_config.slicing.p
                sw_res = select_best(sw_res, x, "sw", key=k_eval, p=p, sample_weight=w, **_SW_EVAL).best
            ll = _mean_ll(sw_res.params, x, w)
            converged = jnp.all(jnp.isfinite(sw_res.loss_history))
            return sw_res.params, sw_config.n_steps, converged, -ll[None], k_eval
        if r == 1:
            em = fit_em(k_em, x, k, em_config, sw_res.params, sample_weight=w)
        else:
            many = fit_em_restarts(k_em, x, k, r, em_config, sw_res.params, sample_weight=w)
            em = select_best(many, x, "log_likelihood", sample_weight=w).best
        return em.params, em.n_iter, em.converged, em.loss_history, k_eval

    def _fit(self, X: Any, sample_weight: Any = None) -> jax.Array:
        self._check_hyperparameters()
        names = _feature_names(X)
        arr = _check_array(X, min_samples=2)
        k = int(self.n_components)
        if arr.shape[0] < k:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {k}, n_samples = {arr.shape[0]}"
            )
        pw = check_sample_weight(sample_weight, arr.shape[0], dtype=arr.dtype)
        sw_config, em_config = self._configs(arr, pw)
        key = self._key()
        k_init, k_run = jax.random.split(key)
        x = jnp.asarray(arr)
        init = self._initial_params(k_init, x, k, _INIT_PARAMS[self.init_params], pw)
        params, n_iter, converged, nll, k_eval = self._run(k_run, x, sw_config, em_config, init, pw)
        if not bool(np.all(np.isfinite(np.asarray(params.means)))):
            raise ValueError("the fit diverged (non-finite parameters); try a larger reg_covar")
        n_iter = int(n_iter)
        out = np.float32 if arr.dtype == np.float32 else np.float64
        self._set_moments(params, out)
        self.converged_ = bool(converged)
        self.n_iter_ = n_iter
        bounds = -np.asarray(nll, np.float64)[: max(n_iter, 1) if nll.shape[0] > 1 else 1]
        self.lower_bounds_ = [out(b) for b in bounds]  # a list of NumPy scalars, as scikit-learn's
        # fit_robust's merge-and-relocate rounds run after the EM history: score the final fit.
        final = self.method == "robust"
        bound = float(_mean_ll(params, x, pw)) if final else float(bounds[-1])
        self.lower_bound_ = out(bound)  # a NumPy scalar of the data's dtype, as scikit-learn's
        self.n_features_in_ = int(arr.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.sliced_wasserstein_ = (
            None
            if k_eval is None
            else float(
                sliced_wasserstein(k_eval, params, x, p=sw_config.slicing.p, sample_weight=pw, **_SW_EVAL)
            )
        )
        if self.method != "sw" and not self.converged_:
            warnings.warn(
                f"The EM phase did not converge in max_iter={self.max_iter} iterations (tol={self.tol}); "
                "try a larger max_iter or tol",
                ConvergenceWarning,
                stacklevel=_caller_stacklevel(),
            )
        if self.verbose:
            print(
                f"{type(self).__name__}(method={self.method!r}): {n_iter} iterations, "
                f"converged={self.converged_}, mean log-likelihood {self.lower_bound_:.6g}",
                file=sys.stdout,
            )
        return x

    def _set_moments(self, params: GMMParams, out: Any) -> None:
        """``params_`` and the moment attributes derived from it, in the dtype ``out``."""
        w, m, c = (np.asarray(a, np.float64) for a in to_moments(params))
        if covariance_type_of(params) in ("full", "tied"):
            cov_chol = np.linalg.cholesky(c)
            prec_chol = np.swapaxes(np.linalg.inv(cov_chol), -1, -2)  # upper triangular U, precision = U U^T
            precisions = prec_chol @ np.swapaxes(prec_chol, -1, -2)
        else:  # scikit-learn's: 1 / sqrt(variance), and the precisions 1 / variance
            prec_chol = 1.0 / np.sqrt(c)
            precisions = prec_chol * prec_chol
        self.params_ = params
        self.weights_ = w.astype(out)
        self.means_ = m.astype(out)
        self.covariances_ = c.astype(out)
        self.precisions_cholesky_ = prec_chol.astype(out)
        self.precisions_ = precisions.astype(out)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Fit the mixture to ``X [n_samples, n_features]`` (``y`` is ignored); returns ``self``.

        ``sample_weight`` (``[n_samples]``, >= 0, not all 0; only the ratios
        matter) weights the points in every phase of the fit (see
        :func:`swgmm_jax.fit` and :func:`swgmm_jax.fit_em`), and in
        ``lower_bound_`` and ``sliced_wasserstein_``: integer weights fit what
        the data with each row repeated that many times fits.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> GaussianMixture(2, method="em", random_state=0).fit(X).weights_.shape
          (2,)
          >>> w = np.arange(100) % 3  # counts, zeros included
          >>> GaussianMixture(2, method="em", random_state=0).fit(X, sample_weight=w).means_.shape
          (2, 2)
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the ``[n_samples]`` component labels of ``X``.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> GaussianMixture(2, method="em", random_state=0).fit_predict(X).shape
          (100,)
        """
        x = self._fit(X)
        return np.asarray(hard_labels(self.params_, x)).astype(np.int64)

    # ---- inference ----

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[n_samples, K]`` posterior probability of each component.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> gm = GaussianMixture(2, method="em", random_state=0).fit(X)
          >>> np.allclose(gm.predict_proba(X).sum(axis=1), 1.0)
          True
        """
        x = self._validate_predict(X)
        return np.asarray(responsibilities(self.params_, x), self.means_.dtype)

    def predict(self, X: Any) -> np.ndarray:
        """``[n_samples]`` index of the most probable component of each point.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> GaussianMixture(2, method="em", random_state=0).fit(X).predict(X[:4]).dtype
          dtype('int64')
        """
        x = self._validate_predict(X)
        return np.asarray(hard_labels(self.params_, x)).astype(np.int64)

    def score_samples(self, X: Any) -> np.ndarray:
        """``[n_samples]`` log-density of each point under the mixture.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> gm = GaussianMixture(1, method="em", random_state=0).fit(X)
          >>> gm.score_samples(X).shape, bool(np.isclose(gm.score_samples(X).mean(), gm.score(X)))
          ((100,), True)
        """
        x = self._validate_predict(X)
        return np.asarray(score_samples(self.params_, x), np.float64).astype(self.means_.dtype)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per point of ``X`` (``y`` is ignored).

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> isinstance(GaussianMixture(1, method="em", random_state=0).fit(X).score(X), float)
          True
        """
        return float(np.mean(np.asarray(self.score_samples(X), np.float64)))

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X``: ``-2 n score(X) + n_params log n`` (lower is better).

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> gm = GaussianMixture(1, method="em", random_state=0).fit(X)
          >>> bool(np.isclose(gm.bic(X), -2 * 100 * gm.score(X) + 5 * np.log(100)))
          True
        """
        return float(bic(self.params_, self._validate_predict(X)))

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X``: ``-2 n score(X) + 2 n_params`` (lower is better).

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> gm = GaussianMixture(1, method="em", random_state=0).fit(X)
          >>> bool(np.isclose(gm.aic(X), -2 * 100 * gm.score(X) + 2 * 5))
          True
        """
        return float(aic(self.params_, self._validate_predict(X)))

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` points: ``(X [n_samples, d], labels [n_samples])``, grouped by component.

        Uses ``random_state`` as scikit-learn does: an int gives the same draw every call.

        Examples:
          >>> import numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> Xs, ys = GaussianMixture(2, method="em", random_state=0).fit(X).sample(10)
          >>> Xs.shape, ys.shape
          ((10, 2), (10,))
        """
        self._check_fitted()
        if not _is_integer(n_samples) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample."
            )
        n = int(n_samples)
        k_comp, k_noise = jax.random.split(jax.random.fold_in(self._key(), 2))
        comp = np.sort(np.asarray(jax.random.categorical(k_comp, self.params_.logits, shape=(n,))))
        eps = np.asarray(jax.random.normal(k_noise, (n, self.n_features_in_)), np.float64)
        cov = self.covariances_.astype(np.float64)
        ct = covariance_type_of(self.params_)
        if ct == "full":
            noise = np.einsum("nij,nj->ni", np.linalg.cholesky(cov)[comp], eps)
        elif ct == "tied":
            noise = eps @ np.linalg.cholesky(cov).T
        else:
            std = np.sqrt(cov)[comp]
            noise = (std[:, None] if ct == "spherical" else std) * eps
        X = self.means_.astype(np.float64)[comp] + noise
        return X, comp.astype(np.int64)

    # ---- saving ----

    def save(self, path: Any) -> None:
        """Write the fitted model to ``path`` in swgmm_jax's ``.npz`` format (see :func:`swgmm_jax.save`).

        The parameters go in as ``GMMParams``, ``sw_config`` as the config, and the constructor's
        arguments and the fitted scalars (``converged_``, ``n_iter_``, ...) in the metadata. A
        ``random_state`` that is a NumPy generator is saved as ``None`` (its state is not portable);
        a JAX key is saved as its key data.

        Examples:
          >>> import os, tempfile, numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> gm = GaussianMixture(2, method="em", random_state=0).fit(X)
          >>> path = os.path.join(tempfile.mkdtemp(), "gm.npz")
          >>> gm.save(path)
          >>> again = GaussianMixture.load(path)
          >>> again, bool(np.array_equal(again.predict(X), gm.predict(X)))
          (GaussianMixture(method='em', n_components=2, random_state=0), True)
        """
        self._check_fitted()
        constructor = {
            name: _to_json(getattr(self, name), name)
            for name in self._get_param_names()
            if name != "sw_config"
        }
        names = getattr(self, "feature_names_in_", None)
        fitted = {
            "dtype": str(self.means_.dtype),
            "converged_": bool(self.converged_),
            "n_iter_": int(self.n_iter_),
            "lower_bound_": float(self.lower_bound_),
            "lower_bounds_": [float(b) for b in self.lower_bounds_],
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": None if names is None else [str(n) for n in names],
            "sliced_wasserstein_": self.sliced_wasserstein_,
        }
        metadata = {"estimator": _ESTIMATOR_TAG, "constructor": constructor, "fitted": fitted}
        save_model(path, self.params_, config=self.sw_config, metadata=metadata)

    @classmethod
    def load(cls, path: Any) -> GaussianMixture:
        """A fitted estimator read from a file written by :meth:`save`.

        Raises a ValueError naming the file when it holds no ``GaussianMixture`` (e.g. one written
        by :func:`swgmm_jax.save`: read that with :func:`swgmm_jax.load`), and the errors of
        :func:`swgmm_jax.load`.

        Examples:
          >>> import os, tempfile, numpy as np
          >>> from swgmm_jax import GaussianMixture
          >>> X = np.random.default_rng(0).normal(size=(100, 2))
          >>> path = os.path.join(tempfile.mkdtemp(), "gm.npz")
          >>> GaussianMixture(2, method="em", random_state=0).fit(X).save(path)
          >>> GaussianMixture.load(path).means_.shape
          (2, 2)
        """
        saved = load_model(path)
        meta = saved.metadata
        config = saved.config
        if (
            meta.get("estimator") != _ESTIMATOR_TAG
            or saved.params.means.ndim != 2
            or not (config is None or isinstance(config, FitConfig))
        ):
            raise ValueError(
                f"{os.fspath(path)} holds no GaussianMixture (saved with swgmm_jax.save? read it with "
                "swgmm_jax.load)"
            )
        try:
            constructor = {name: _from_json(v) for name, v in meta["constructor"].items()}
            fitted = dict(meta["fitted"])
            est = cls(**constructor, sw_config=config)
            out = np.dtype(fitted["dtype"]).type
            est._set_moments(saved.params, out)
            est.converged_ = bool(fitted["converged_"])
            est.n_iter_ = int(fitted["n_iter_"])
            est.lower_bound_ = out(fitted["lower_bound_"])
            est.lower_bounds_ = [out(b) for b in fitted["lower_bounds_"]]
            est.n_features_in_ = int(fitted["n_features_in_"])
            if fitted["feature_names_in_"] is not None:
                est.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
            est.sliced_wasserstein_ = fitted["sliced_wasserstein_"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{os.fspath(path)}: corrupt GaussianMixture metadata ({err!r})") from err
        return est


_ESTIMATOR_TAG = "swgmm_jax.GaussianMixture"


def _to_json(value: Any, name: str) -> Any:
    """A constructor argument as JSON (arrays and JAX keys tagged, NumPy generators dropped)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    if isinstance(value, (np.random.Generator, np.random.RandomState)):
        return None
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return {"__jax_key__": np.asarray(jax.random.key_data(value)).tolist()}
    if isinstance(value, (np.ndarray, jax.Array, list, tuple)):
        arr = np.asarray(value)
        return {"__array__": arr.tolist(), "dtype": str(arr.dtype)}
    raise TypeError(f"GaussianMixture.save: the constructor argument {name}={value!r} cannot be saved")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=value["dtype"])
    if isinstance(value, dict) and "__jax_key__" in value:
        return jax.random.wrap_key_data(jnp.asarray(value["__jax_key__"], jnp.uint32))
    return value
