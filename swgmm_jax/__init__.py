"""swgmm_jax: Gaussian mixture models fitted by minimising the sliced Wasserstein distance.

Kolouri, Rohde and Hoffmann, "Sliced Wasserstein Distance for Learning Gaussian
Mixture Models", CVPR 2018. The modules follow the method's pipeline, and each
imports only modules above it:

* ``_validation``: argument checks at the Python boundary;
* ``_covariances``: the covariance types (full, diagonal, spherical, tied): per-type arithmetic;
* ``_params``: GMM parameters as pytrees, densities, sampling;
* ``_projections``: random directions, slices of data and of the GMM;
* ``_sort``: sorting the slices (NumPy on the host on the CPU, XLA elsewhere);
* ``_transport1d``: 1D mixture quantiles and quantile transport;
* ``_mesh``: device meshes (projections and restarts split across devices);
* ``_sliced``: the sliced Wasserstein loss, sharded or not;
* ``_config``: the fit's settings, composed by concern, numeric ones traced;
* ``_init``: data statistics and random initialisations;
* ``_relocate``: merge-and-relocate moves out of local minima;
* ``_fit``: the public ``init``/``step`` pair and the fit loops;
* ``_em``: the EM baseline;
* ``_select``: picking the best restart;
* ``_robust``: one call for the robust fit (SW restarts, then EM, then the best);
* ``_choose``: choosing the number of components (BIC, AIC or held-out SW per ``K``);
* ``_io``: saving and loading fitted models (a versioned ``.npz`` format, no pickle);
* ``_estimator``: ``GaussianMixture``, the scikit-learn-style estimator over the fits;
* ``_stream``: fits on host data streamed to the device in minibatches;
* ``_distributed``: multi-process start-up;
* ``_metrics``: component purity and fooling rate of the embedding study;
* ``datasets``, ``plotting``: data generators and figures;
* ``cli``: the ``swgmm`` command line, a wrapper over all of the above.
"""

from swgmm_jax import datasets
from swgmm_jax._choose import ComponentSelection, select_n_components
from swgmm_jax._config import (
    EMConfig,
    FitConfig,
    InitConfig,
    OptimizerConfig,
    RelocationConfig,
    SlicingConfig,
)
from swgmm_jax._distributed import initialize_distributed
from swgmm_jax._em import EMResult, em_step, fit_em, fit_em_restarts, polish_em
from swgmm_jax._estimator import ConvergenceWarning, GaussianMixture, NotFittedError
from swgmm_jax._fit import (
    FitResult,
    FitState,
    FitStep,
    Progress,
    fit,
    fit_restarts,
    make_fit_step,
    run_steps,
)
from swgmm_jax._init import initialize, standardizer
from swgmm_jax._io import SavedModel, load, save
from swgmm_jax._mesh import make_projection_mesh
from swgmm_jax._metrics import component_purity, fooling_rate
from swgmm_jax._params import (
    COVARIANCE_TYPES,
    DiagGMMParams,
    GMMParams,
    SphericalGMMParams,
    TiedGMMParams,
    aic,
    bic,
    component_log_prob,
    from_moments,
    full_covariances,
    log_likelihood,
    n_parameters,
    predict,
    predict_proba,
    sample,
    score_samples,
    to_moments,
)
from swgmm_jax._projections import project_data, project_gmm, random_directions
from swgmm_jax._relocate import merge_relocate
from swgmm_jax._robust import RobustResult, fit_robust
from swgmm_jax._select import Selection, select_best
from swgmm_jax._sliced import slice_costs, sliced_loss, sliced_wasserstein, sort_slices
from swgmm_jax._stream import fit_stream, host_minibatches
from swgmm_jax._transport1d import (
    QUANTILE_ITERS,
    midpoint_levels,
    mixture_cdf,
    mixture_logpdf,
    mixture_quantile,
    mixture_sf,
    stratified_levels,
    transport_cost,
)

__version__ = "0.1.0"

__all__ = [
    "QUANTILE_ITERS",
    "ComponentSelection",
    "ConvergenceWarning",
    "EMConfig",
    "EMResult",
    "FitConfig",
    "FitResult",
    "FitState",
    "FitStep",
    "COVARIANCE_TYPES",
    "DiagGMMParams",
    "GMMParams",
    "GaussianMixture",
    "InitConfig",
    "NotFittedError",
    "OptimizerConfig",
    "Progress",
    "RelocationConfig",
    "RobustResult",
    "Selection",
    "SavedModel",
    "SlicingConfig",
    "SphericalGMMParams",
    "TiedGMMParams",
    "aic",
    "bic",
    "component_log_prob",
    "component_purity",
    "datasets",
    "em_step",
    "fit",
    "fit_em",
    "fit_em_restarts",
    "fit_restarts",
    "fit_robust",
    "fit_stream",
    "fooling_rate",
    "from_moments",
    "full_covariances",
    "host_minibatches",
    "initialize",
    "initialize_distributed",
    "load",
    "log_likelihood",
    "make_fit_step",
    "make_projection_mesh",
    "merge_relocate",
    "midpoint_levels",
    "mixture_cdf",
    "mixture_logpdf",
    "mixture_quantile",
    "mixture_sf",
    "n_parameters",
    "polish_em",
    "predict",
    "predict_proba",
    "project_data",
    "project_gmm",
    "random_directions",
    "run_steps",
    "sample",
    "save",
    "score_samples",
    "select_best",
    "select_n_components",
    "slice_costs",
    "sliced_loss",
    "sliced_wasserstein",
    "sort_slices",
    "standardizer",
    "stratified_levels",
    "to_moments",
    "transport_cost",
]
