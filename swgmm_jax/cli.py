"""The ``swgmm`` command line: fit, score, sample, plot and choose K from data files.

A thin wrapper over the package (argparse, standard library only; matplotlib for ``plot``)::

    swgmm fit data.csv --n-components 3 --out model.npz
    swgmm score model.npz data.csv --per-sample scores.csv
    swgmm sample model.npz -n 1000 --out draws.npy
    swgmm plot model.npz data.csv --out fit.png
    swgmm select-k data.csv --k-min 1 --k-max 8 --criterion bic

DATA files: ``.npy`` (a 2-D array), ``.csv`` (comma-separated; a non-numeric first row is a
header and skipped) or any other extension as whitespace-separated text; one point per row.
Models are the ``.npz`` files of :func:`swgmm_jax.save` (``fit`` writes a
:class:`swgmm_jax.GaussianMixture` through :meth:`~swgmm_jax.GaussianMixture.save`). Progress goes
to stderr, results to stdout; a bad file or argument prints one ``swgmm: error: ...`` line and
exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["main", "read_data"]

METHODS = ("sw", "sw+em", "em", "robust")


class CLIError(Exception):
    """A user-facing error: printed as one ``swgmm: error:`` line, exit status 2."""


def _progress(message: str) -> None:
    print(f"swgmm: {message}", file=sys.stderr, flush=True)


def read_data(path: str) -> np.ndarray:
    """``[n, d]`` float64 points from a ``.npy``, ``.csv`` or whitespace-separated text file.

    Examples:
      >>> import pathlib, tempfile
      >>> from swgmm_jax.cli import read_data
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
      >>> _ = path.write_text("a,b\\n1,2\\n3,4\\n")
      >>> path = str(path)
      >>> read_data(path).tolist()
      [[1.0, 2.0], [3.0, 4.0]]
    """
    if not os.path.isfile(path):
        raise CLIError(f"no such data file: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif ext == ".csv":
            with open(path, newline="") as f:
                rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
            if rows and not _numeric(rows[0]):
                rows = rows[1:]  # a header
            arr = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
        else:
            arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError, EOFError) as err:
        raise CLIError(f"cannot read {path} as {ext or 'text'} data: {err}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise CLIError(f"{path}: expected a numeric array, got {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CLIError(f"{path}: expected one point per row ([n, d], n, d >= 1), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CLIError(f"{path}: the data holds NaN or infinite values")
    return arr.astype(np.float64)


def _numeric(row: Sequence[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _write_atomic(path: str, write: Callable[[Any], None], mode: str = "wb") -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"no such folder for the output: {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_array(path: str, arr: np.ndarray, header: str = "") -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        _write_atomic(path, lambda f: np.save(f, arr))
    elif ext in (".csv", ".txt"):
        delimiter = "," if ext == ".csv" else " "
        text = io.StringIO()
        np.savetxt(text, arr, delimiter=delimiter, header=header, comments="", fmt="%.9g")
        _write_atomic(path, lambda f: f.write(text.getvalue()), mode="w")
    else:
        raise CLIError(f"--out must end in .npy, .csv or .txt, got {path}")


def _load_params(path: str) -> Any:
    from swgmm_jax._io import load

    if not os.path.isfile(path):
        raise CLIError(f"no such model file: {path}")
    params = load(path).params
    if params.means.ndim != 2:
        raise CLIError(f"{path} holds batched parameters {params.means.shape}; these commands take one model")
    return params


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {n}")
    return n


# ---- the commands ----


def _cmd_fit(args: argparse.Namespace) -> None:
    from swgmm_jax._config import FitConfig
    from swgmm_jax._estimator import GaussianMixture

    x = read_data(args.data)
    sw_config = None if args.n_steps is None else FitConfig(n_steps=args.n_steps)
    gm = GaussianMixture(
        args.n_components,
        covariance_type=args.covariance_type,
        n_init=args.n_restarts,
        method=args.method,
        random_state=args.seed,
        sw_config=sw_config,
    )
    _progress(
        f"fitting K={args.n_components} (method {args.method}, {args.n_restarts} restart(s)) "
        f"to {x.shape[0]} points in {x.shape[1]} dimensions"
    )
    start = time.perf_counter()
    gm.fit(x)
    _progress(f"fitted in {time.perf_counter() - start:.1f} s; writing {args.out}")
    gm.save(args.out)
    print(f"mean log-likelihood {gm.score(x):.6g}  BIC {gm.bic(x):.6g}  AIC {gm.aic(x):.6g}")


def _cmd_score(args: argparse.Namespace) -> None:
    from swgmm_jax._params import aic, bic, score_samples

    params = _load_params(args.model)
    x = read_data(args.data)
    if x.shape[1] != params.means.shape[-1]:
        raise CLIError(f"{args.data} has {x.shape[1]} columns but the model has {params.means.shape[-1]}")
    xj = np.asarray(x, params.means.dtype)
    scores = np.asarray(score_samples(params, xj), np.float64)
    print(f"n {x.shape[0]}")
    print(f"mean_log_likelihood {scores.mean():.9g}")
    print(f"bic {float(bic(params, xj)):.9g}")
    print(f"aic {float(aic(params, xj)):.9g}")
    if args.per_sample:
        _write_array(args.per_sample, scores[:, None], header="log_likelihood")
        _progress(f"per-sample log-likelihoods written to {args.per_sample}")


def _cmd_sample(args: argparse.Namespace) -> None:
    import jax

    from swgmm_jax._params import sample

    params = _load_params(args.model)
    draws = np.asarray(sample(jax.random.key(args.seed), params, args.n))
    _write_array(args.out, draws)
    _progress(f"{args.n} samples of dimension {draws.shape[1]} written to {args.out}")


def _principal_axes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The data's mean and its first two principal directions ``[d, 2]``."""
    centre = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - centre, full_matrices=False)
    return centre, vt[:2].T


def _cmd_plot(args: argparse.Namespace) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError('plot needs matplotlib: pip install "swgmm_jax[plot]"') from None
    from swgmm_jax._params import from_moments, full_covariances, sample, to_moments
    from swgmm_jax.plotting import plot_gmm

    params = _load_params(args.model)
    d = params.means.shape[-1]
    x = None if args.data is None else read_data(args.data)
    if x is not None and x.shape[1] != d:
        raise CLIError(f"{args.data} has {x.shape[1]} columns but the model has {d}")
    title = f"K={params.means.shape[-2]}"
    if d == 1:
        raise CLIError("plot draws 2-D mixtures (or the first two principal axes of d > 2); this one is 1-D")
    if d > 2:
        import jax

        # The first two principal axes of the data (of draws from the model when no data is given).
        basis_x = x if x is not None else np.asarray(sample(jax.random.key(0), params, 2000), np.float64)
        centre, axes = _principal_axes(basis_x)
        w, m = (np.asarray(a, np.float64) for a in to_moments(params)[:2])
        c = np.asarray(full_covariances(params), np.float64)
        c2 = np.einsum("di,kde,ej->kij", axes, c, axes)  # the covariances seen in those axes
        params = from_moments(w, (m - centre) @ axes, c2, float(params.reg_covar))
        x = None if x is None else (x - centre) @ axes
        title += f", first two principal axes of {d} dimensions"
    fig, ax = plt.subplots(figsize=(5, 5))
    plot_gmm(ax, params, x, mark_means=True)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    if ext not in ("png", "pdf", "svg"):
        raise CLIError(f"--out must end in .png, .pdf or .svg, got {args.out}")
    _write_atomic(args.out, lambda f: fig.savefig(f, format=ext, dpi=120, bbox_inches="tight"))
    plt.close(fig)
    _progress(f"figure written to {args.out}")


def _cmd_select_k(args: argparse.Namespace) -> None:
    import jax

    from swgmm_jax._choose import select_n_components
    from swgmm_jax._config import FitConfig

    if args.k_max < args.k_min:
        raise CLIError(f"--k-max ({args.k_max}) must be >= --k-min ({args.k_min})")
    x = read_data(args.data)
    ks = range(args.k_min, args.k_max + 1)
    _progress(
        f"fitting K = {args.k_min}..{args.k_max} (method {args.method}, {args.n_restarts} restarts each)"
    )
    config = None if args.n_steps is None else FitConfig(n_steps=args.n_steps)
    start = time.perf_counter()
    sel = select_n_components(
        jax.random.key(args.seed),
        np.asarray(x, np.float32),
        ks,
        criterion=args.criterion,
        method=args.method,
        n_restarts=args.n_restarts,
        config=config,
    )
    _progress(f"done in {time.perf_counter() - start:.1f} s")
    sw_col = sel.sw if sel.sw is not None else [float("nan")] * len(ks)
    print(f"{'K':>3} {'bic':>14} {'aic':>14} {'log_lik':>12} {'sw_heldout':>12}")
    for i, k in enumerate(sel.n_components):
        mark = "  <- best" if k == sel.best_n_components else ""
        print(
            f"{k:>3} {sel.bic[i]:>14.6g} {sel.aic[i]:>14.6g} {sel.log_likelihood[i]:>12.6g} "
            f"{sw_col[i]:>12.6g}{mark}"
        )
    print(f"best K by {sel.criterion}: {sel.best_n_components}")


# ---- the parser ----


class _Parser(argparse.ArgumentParser):
    """Argument errors as one ``swgmm: error:`` line (exit status 2), pointing at ``--help``."""

    def error(self, message: str) -> Any:
        self.exit(2, f"swgmm: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="swgmm",
        description=(
            "Gaussian mixtures fitted by sliced Wasserstein distance (swgmm_jax). DATA files are .npy, "
            ".csv (a non-numeric first row is skipped as a header) or whitespace-separated text, one "
            "point per row; MODEL files are the .npz written by 'swgmm fit' or swgmm_jax.save."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "fit", help="fit a mixture to DATA and save it", description="Fit a mixture and save it."
    )
    p.add_argument("data", metavar="DATA", help="the points (.npy, .csv or text)")
    p.add_argument("--n-components", "-k", type=_positive, required=True, help="number of components K")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="sw",
        help="sw: the paper's fit (default); sw+em: then EM; em: EM only; robust: SW restarts, EM, the best",
    )
    p.add_argument("--n-restarts", type=_positive, default=1, help="restarts, vmapped; the best is kept")
    p.add_argument("--n-steps", type=_positive, default=None, help="SW steps (default: the package's)")
    p.add_argument(
        "--covariance-type",
        choices=("full", "diag", "spherical", "tied"),
        default="full",
        help="scikit-learn's covariance types (default full)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", "-o", required=True, help="the model file to write (.npz)")
    p.set_defaults(run=_cmd_fit)

    p = sub.add_parser(
        "score",
        help="mean log-likelihood, BIC and AIC of DATA under MODEL",
        description="Print n, the mean log-likelihood per point, BIC and AIC (lower is better).",
    )
    p.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    p.add_argument("data", metavar="DATA", help="the points (.npy, .csv or text)")
    p.add_argument("--per-sample", metavar="OUT", help="also write each point's log-likelihood (.csv/.npy)")
    p.set_defaults(run=_cmd_score)

    p = sub.add_parser("sample", help="draw points from MODEL", description="Draw points from a model.")
    p.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    p.add_argument("-n", type=_positive, required=True, help="number of points")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", "-o", required=True, help="where to write them (.npy, .csv or .txt)")
    p.set_defaults(run=_cmd_sample)

    p = sub.add_parser(
        "plot",
        help="draw MODEL's ellipses over DATA",
        description=(
            "Draw each component's 2-standard-deviation ellipse over the data; for d > 2, in the first "
            "two principal axes of the data (of draws from the model when no DATA is given)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    p.add_argument("data", metavar="DATA", nargs="?", help="optional points to draw under the ellipses")
    p.add_argument("--out", "-o", required=True, help="the figure (.png, .pdf or .svg)")
    p.set_defaults(run=_cmd_plot)

    p = sub.add_parser(
        "select-k",
        help="fit K = k-min..k-max and print the table",
        description=(
            "Fit each K (restarts vmapped) and print BIC, AIC, log-likelihood and (for --criterion sw) "
            "the SW distance to a held-out 20%% of DATA; the best K by the criterion is marked."
        ),
    )
    p.add_argument("data", metavar="DATA", help="the points (.npy, .csv or text)")
    p.add_argument("--k-min", type=_positive, default=1, help="smallest K (default 1)")
    p.add_argument("--k-max", type=_positive, default=8, help="largest K (default 8)")
    p.add_argument("--criterion", choices=("bic", "aic", "sw"), default="bic", help="default bic")
    p.add_argument("--method", choices=METHODS, default="sw", help="the fit of each K (default sw)")
    p.add_argument("--n-restarts", type=_positive, default=4, help="restarts per K (default 4)")
    p.add_argument("--n-steps", type=_positive, default=None, help="SW steps (default: the package's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=_cmd_select_k)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``swgmm`` command line; returns the exit status (0, or 2 after an error).

    Examples:
      >>> from swgmm_jax.cli import main
      >>> main(["sample", "no_such_model.npz", "-n", "3", "--out", "x.npy"])
      2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CLIError as err:
        print(f"swgmm: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"swgmm: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
