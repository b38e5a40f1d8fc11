"""swgmm_jax: Gaussian mixture models fitted by minimising the sliced Wasserstein distance.

Kolouri, Rohde and Hoffmann, "Sliced Wasserstein Distance for Learning Gaussian
Mixture Models", CVPR 2018. The package follows the method's pipeline:

* ``_params``: GMM parameters as a pytree, densities, sampling;
* ``_projections``: random directions, slices of data and of the GMM;
* ``_transport1d``: 1D mixture quantiles and quantile transport;
* ``_sliced``: the sliced Wasserstein loss;
* ``_fit``: the RMSProp fit loop and restarts; ``_relocate``: merge-and-relocate
  moves out of its local minima; ``_em``: the EM baseline;
* ``_sharding``: projections and restarts split across devices and processes;
* ``_stream``: fits on host data streamed to the device in minibatches;
* ``_metrics``: component purity and fooling rate of the embedding study.
"""

from swgmm_jax._config import EMConfig, FitConfig
from swgmm_jax._em import EMResult, em_step, fit_em, fit_em_restarts, polish_em
from swgmm_jax._fit import FitResult, fit, fit_restarts, select_best, standardizer
from swgmm_jax._init import initialize
from swgmm_jax._params import (
    GMMParams,
    component_log_prob,
    from_moments,
    log_likelihood,
    predict,
    predict_proba,
    sample,
    to_moments,
)
from swgmm_jax._relocate import merge_relocate
from swgmm_jax._projections import project_data, project_gmm, random_directions
from swgmm_jax._sharding import (
    initialize_distributed,
    make_projection_mesh,
    sharded_sliced_loss,
    sharded_sliced_wasserstein,
)
from swgmm_jax._sliced import slice_costs, sliced_loss, sliced_wasserstein, sort_slices
from swgmm_jax._metrics import component_purity, fooling_rate
from swgmm_jax._stream import fit_stream, host_minibatches
from swgmm_jax._transport1d import (
    midpoint_levels,
    mixture_cdf,
    mixture_logpdf,
    mixture_quantile,
    mixture_sf,
    stratified_levels,
    transport_cost,
)
from swgmm_jax import datasets

__version__ = "0.1.0"

__all__ = [
    "EMConfig",
    "EMResult",
    "FitConfig",
    "FitResult",
    "GMMParams",
    "component_log_prob",
    "component_purity",
    "datasets",
    "em_step",
    "fit",
    "fit_em",
    "fit_em_restarts",
    "fit_restarts",
    "fit_stream",
    "fooling_rate",
    "from_moments",
    "initialize",
    "initialize_distributed",
    "host_minibatches",
    "log_likelihood",
    "make_projection_mesh",
    "merge_relocate",
    "midpoint_levels",
    "mixture_cdf",
    "mixture_logpdf",
    "mixture_quantile",
    "mixture_sf",
    "polish_em",
    "predict",
    "predict_proba",
    "project_data",
    "project_gmm",
    "random_directions",
    "sample",
    "select_best",
    "sharded_sliced_loss",
    "sharded_sliced_wasserstein",
    "slice_costs",
    "sliced_loss",
    "sliced_wasserstein",
    "sort_slices",
    "standardizer",
    "stratified_levels",
    "to_moments",
    "transport_cost",
]
