"""Choosing K (``swgmm_jax._choose``): recovery of the true K, the table, and argument errors."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

import swgmm_jax as sw

CENTRES = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
EM_FAST = sw.EMConfig(max_iter=30)


def _sklearn_gmm(params):
    """scikit-learn's GaussianMixture holding ``params``' moments, in float64 NumPy (no fit)."""
    logits = np.asarray(params.logits, np.float64)
    w = np.exp(logits - logits.max())
    tril = np.tril(np.asarray(params.scale_tril, np.float64))
    c = tril @ np.swapaxes(tril, -1, -2) + float(params.reg_covar) * np.eye(tril.shape[-1])
    gm = GaussianMixture(n_components=len(w))
    gm.weights_, gm.means_, gm.covariances_ = w / w.sum(), np.asarray(params.means, np.float64), c
    gm.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(c)).transpose(0, 2, 1)
    gm.precisions_ = np.linalg.inv(c)
    return gm


def _blobs(n_per, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.5, (n_per, 2)) for c in CENTRES]).astype(np.float32)


X = _blobs(50, 0)  # [150, 2], three well-separated clusters
X_VAL = _blobs(20, 1)


@pytest.mark.slow  # one EM compilation per K (5): 38 s with the 2 cores shared 3.5x over, ~10 s alone
def test_select_n_components_recovers_the_true_k(key):
    ks = range(1, 6)
    sel = sw.select_n_components(key, X, ks, method="em", n_restarts=2, em_config=EM_FAST)
    assert sel.best_n_components == 3 and sel.criterion == "bic"
    assert sel.n_components == (1, 2, 3, 4, 5) and sel.sw is None
    assert [p.means.shape for p in sel.params] == [(k, 2) for k in ks]
    np.testing.assert_array_equal(sel.best_params.means, sel.params[2].means)
    for i, params in enumerate(sel.params):  # the table is each K's own criteria (scored padded to K=5)
        sk = _sklearn_gmm(params)
        np.testing.assert_allclose(sel.bic[i], sk.bic(X), rtol=1e-5)
        np.testing.assert_allclose(sel.aic[i], sk.aic(X), rtol=1e-5)
        np.testing.assert_allclose(sel.log_likelihood[i], sk.score(X), rtol=1e-5)
    # By held-out SW distance: the same fits (same keys, compiled already), scored on X_VAL.
    by_sw = sw.select_n_components(
        key, X, ks, criterion="sw", method="em", n_restarts=2, em_config=EM_FAST, x_val=X_VAL
    )
    assert by_sw.best_n_components == 3 and by_sw.sw.shape == (5,)
    np.testing.assert_array_equal(by_sw.bic, sel.bic)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(n_components=3), TypeError, "several K"),
        (dict(n_components=[]), ValueError, "at least one K"),
        (dict(n_components=[1, 2, 2]), ValueError, "repeat"),
        (dict(n_components=[0, 1]), ValueError, r"n_components\[i\]"),
        (dict(n_components=[1, 200]), ValueError, "exceeds"),
        (dict(criterion="loglik"), ValueError, "criterion"),
        (dict(method="kmeans"), ValueError, "method"),
        (dict(n_restarts=0), ValueError, "n_restarts"),
        (dict(config=sw.EMConfig()), TypeError, "config"),
        (dict(criterion="sw", val_fraction=1.0), ValueError, "val_fraction"),
        (dict(x_val=np.zeros((5, 3))), ValueError, "x_val"),
        (dict(sw_rtol=-0.1), ValueError, "sw_rtol"),
    ],
)
def test_select_n_components_validates_its_arguments(key, kwargs, err, match):
    with pytest.raises(err, match=match):
        sw.select_n_components(key, X, **{"n_components": (1, 2), **kwargs})
    with pytest.raises(TypeError, match="key"):
        sw.select_n_components(0, X, (1, 2))
