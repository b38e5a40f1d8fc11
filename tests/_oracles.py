"""Independent float64 reference implementations (NumPy / SciPy only), shared by the tests."""

import numpy as np
from scipy import optimize, special, stats


def cdf_oracle(t, w, m, s):
    """Mixture CDF ``sum_k w_k Phi((t - m_k) / s_k)``, broadcasting over ``t``."""
    return np.sum(w * special.ndtr((np.asarray(t)[..., None] - m) / s), axis=-1)


def sf_oracle(t, w, m, s):
    """Mixture survival function, accurate in the upper tail."""
    return np.sum(w * special.ndtr((m - np.asarray(t)[..., None]) / s), axis=-1)


def pdf_oracle(t, w, m, s):
    return np.sum(w * stats.norm.pdf(np.asarray(t)[..., None], m, s), axis=-1)


def quantile_oracle(z, w, m, s):
    """scipy.optimize.brentq on log F (z <= 1/2) or on log S (z > 1/2) of the mixture."""
    w, m, s = (np.asarray(a, np.float64) for a in (w, m, s))
    z = float(z)
    zc = 1.0 - z
    lo, hi = np.min(m - 40 * s), np.max(m + 40 * s)
    if z <= 0.5:
        fun = lambda t: np.log(cdf_oracle(t, w, m, s)) - np.log(z)  # noqa: E731
    else:
        fun = lambda t: np.log(zc) - np.log(sf_oracle(t, w, m, s))  # noqa: E731
    with np.errstate(divide="ignore"):
        return optimize.brentq(fun, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def slice_gmm(theta, weights, means, covs):
    """1D mixtures of the GMM along each direction: ``(w[K], m[L, K], s[L, K])``."""
    m = theta @ means.T
    s = np.sqrt(np.einsum("li,kij,lj->lk", theta, covs, theta))
    return np.asarray(weights), m, s
