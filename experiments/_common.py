"""What every experiment script shares: run scales, output paths, run metadata, atomic writes, timing.

Scripts are run from the repository root as modules, ``python -m experiments.NAME``
(``--help`` for the options), and import this module as ``from experiments import _common``.

* Run scales: each script has a ``SCALES`` dict, ``{scale name: settings}``, and a
  ``--scale`` option (:func:`add_scale_argument`); ``quick`` is the default, ``paper``
  the paper's sizes where they apply, ``smoke`` a seconds-long run for the tests.
* Outputs: ``results/`` (:data:`RESULTS`), names from :func:`result_path`.
* Metadata: :func:`run_info` (scale, argv, date, git commit, JAX version, backend and
  devices); :meth:`RunInfo.finish` adds the wall time.
* Writes: :func:`atomic_write_json`, :func:`atomic_savefig`, :func:`atomic_write_bytes`
  (a temporary file in the same folder, then ``os.replace``: an interrupted run, by an
  exception, Ctrl-C or SIGTERM, never leaves half a file nor a stray temporary one).
  Files get the permissions of the umask, as ``open`` would give them.
* Reads: :func:`load_results` (for ``--resume`` and for merging into an existing file)
  refuses a corrupt or non-object JSON file unless ``force``, and never overwrites one
  silently.
* Optional dependencies: :func:`require` at the start of a script, so that a missing
  matplotlib (say) is reported before the compute rather than after it.

JAX is imported only by the functions that need it, so that ``report`` and ``run_all``
do not load it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
DEFAULT_SCALE = "quick"

# The paper's numbers that the experiments reproduce (Section 4; Figure 6's table), as fractions.
PAPER = {
    "optimal_nll": {"dataset": "Ring-Square-Line, K=10, 100 random inits", "em": 0.29, "sw": 1.0},
    "purity": {"dataset": "MNIST, K=10, 128-d code", "em": 0.8048, "sw": 0.8698},
    "fooling_rate": {  # mean, std
        "MNIST": {"em": [0.2487, 0.0839], "sw": [0.4191, 0.0235]},
        "CelebA": {"em": [0.1037, 0.0322], "sw": [0.3183, 0.0124]},
        "Ring-Square-Line": {"em": [0.4683, 0.0114], "sw": [0.4756, 0.0086]},
    },
}


# --------------------------------------------------------------------------- command line and scales


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` that prints ``description`` (a script's docstring) as written."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_scale_argument(parser: argparse.ArgumentParser, scales: dict, default: str = DEFAULT_SCALE) -> None:
    """Add ``--scale {names of scales}`` (default ``quick``) to ``parser``."""
    if default not in scales:
        raise ValueError(f"default scale {default!r} is not among {sorted(scales)}")
    parser.add_argument(
        "--scale",
        choices=sorted(scales),
        default=default,
        help=f"run size (default {default}): " + ", ".join(sorted(scales)),
    )


def scale_settings(scales: dict, scale: str) -> dict:
    """A copy of ``scales[scale]`` that the caller may override."""
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; known: {sorted(scales)}")
    return dict(scales[scale])


def result_path(stem: str, ext: str = "json", *, scale: str | None = None, out_dir=None) -> pathlib.Path:
    """``<out_dir>/<stem>[_<scale>].<ext>``, ``out_dir`` defaulting to ``results/``.

    The scale is part of the name unless it is ``None`` or ``quick``, so that a run at
    another scale leaves the quick scale's results (the README's) alone.
    """
    out_dir = RESULTS if out_dir is None else pathlib.Path(out_dir)
    suffix = "" if scale in (None, DEFAULT_SCALE) else f"_{scale}"
    return out_dir / f"{stem}{suffix}.{ext.lstrip('.')}"


# --------------------------------------------------------------------------- run metadata


def git_commit() -> dict:
    """``{"git_commit": sha or None, "git_dirty": bool or None}`` of the repository's checkout."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout

    try:
        sha = git("rev-parse", "HEAD").strip() or None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": sha, "git_dirty": dirty}


def describe_backend() -> dict:
    """Print and return the JAX backend and devices this run uses (this starts the backend)."""
    import jax

    devices = jax.devices()
    info = {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "n_devices": len(devices),
        "jax_version": jax.__version__,
        "x64": bool(jax.config.jax_enable_x64),
    }
    print(f"JAX {info['jax_version']} backend={info['backend']} devices={info['devices']}", flush=True)
    return info


class RunInfo(dict):
    """Run metadata: a plain ``dict`` (written as is into the results JSON) that knows when it started."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._t0 = time.perf_counter()

    def finish(self) -> RunInfo:
        """Record ``wall_s``, the seconds since :func:`run_info` made this, and the load average
        (timings taken while other work shared the CPU read as such); returns ``self``."""
        self["wall_s"] = time.perf_counter() - self._t0
        self["load_avg_end"] = _load_avg()
        return self


def _load_avg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the platform has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_info(scale: str, *, backend: bool = True) -> RunInfo:
    """Metadata of this run: scale, argv, date, Python, git commit and (``backend=True``) the JAX backend.

    Call :meth:`RunInfo.finish` before the last write to add the wall time.
    """
    info = RunInfo(
        scale=scale,
        argv=sys.argv,
        time=time.strftime("%Y-%m-%d %H:%M:%S"),
        python=sys.version.split()[0],
        cpu_count=os.cpu_count(),
        load_avg_start=_load_avg(),
        **git_commit(),
    )
    if backend:
        info.update(describe_backend())
    return info


# --------------------------------------------------------------------------- atomic writes


class _Terminated(BaseException):
    """SIGTERM arrived during an atomic write (re-delivered once the temporary file is gone)."""


@contextlib.contextmanager
def _sigterm_raises():
    """Inside the block, SIGTERM raises :class:`_Terminated`, so that ``except`` clauses clean up;
    after it the default handler is back, and a SIGTERM that arrived terminates the process.

    Only where SIGTERM has its default action (which kills the process without running any
    cleanup): a handler installed by the caller is left in charge, as is an ignored SIGTERM.
    """
    main = threading.current_thread() is threading.main_thread()  # handlers: main thread only
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    received = []

    def handler(signum, frame):
        received.append(signum)
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            signal.raise_signal(signal.SIGTERM)  # the default action: terminate


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets mode ``0o666 & ~umask`` (``mkstemp`` alone would give ``0o600``). On any
    interruption, SIGTERM included, the temporary file is removed and ``path`` is untouched.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_raises():
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o666 & ~_umask())
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise


def atomic_write_json(path, obj) -> None:
    """Atomically write ``obj`` as indented JSON (NumPy and JAX scalars and arrays become lists)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def atomic_savefig(fig, path, **kwargs) -> None:
    """Atomically save a matplotlib figure, in the format of ``path``'s suffix (PNG by default)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=pathlib.Path(path).suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def load_json(path, default=None):
    """The JSON at ``path``, or ``default`` when there is no such file."""
    path = pathlib.Path(path)
    if not path.exists():
        return default
    with open(path) as f:
        return json.load(f)


def load_results(path, *, force: bool = False) -> dict | None:
    """The results object (a JSON object) at ``path``; ``None`` when there is no such file.

    A file that is not valid JSON, or whose top level is not an object, is not
    silently overwritten: this exits with a message naming it, unless ``force``
    (``--force``), when it is reported and ``None`` is returned (the caller then
    writes a fresh file over it).
    """
    path = pathlib.Path(path)
    try:
        obj = load_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        problem = f"is not valid JSON ({err})"
    else:
        if obj is None or isinstance(obj, dict):
            return obj
        problem = f"holds a JSON {type(obj).__name__}, not an object"
    if not force:
        raise SystemExit(
            f"{path} {problem}: it may be a corrupt results file (an interrupted or foreign write). "
            "It was left as it is; move it away, or pass --force to overwrite it."
        )
    print(f"warning: {path} {problem}; --force: overwriting it", file=sys.stderr, flush=True)
    return None


# Import name -> pip package, for the messages of `require`.
_PACKAGES = {
    "matplotlib": "matplotlib",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "tqdm": "tqdm",
    "ot": "pot",
    "equinox": "equinox",
    "mlxtend": "mlxtend",
}


def require(*modules: str, why: str = "") -> None:
    """Exit with a clear message, before any compute, unless every module in ``modules`` is importable."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        names = " ".join(_PACKAGES.get(m, m) for m in missing)
        raise SystemExit(
            f"missing optional dependencies: {', '.join(missing)}{f' ({why})' if why else ''}. "
            f'Install them with `pip install {names}` or `pip install -e ".[experiments]"`.'
        )


def _jsonable(o):
    import numpy as np

    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- timing


# JAX's own compile-phase events (jax.monitoring): tracing, lowering to MLIR, XLA compilation.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class Timer:
    """``with Timer() as t: ...``: ``t.seconds`` of wall time, ``t.compile_seconds`` of it spent by
    JAX tracing, lowering and compiling: the union of those events' time spans (``jax.monitoring``;
    a union, because the trace of an outer ``jit`` contains the traces of the ones it calls)."""

    def _listen(self, name, start, end, **kwargs):
        if name in COMPILE_EVENTS:
            self._spans.append((start, end))

    def __enter__(self):
        import jax

        self._spans = []
        jax.monitoring.register_event_time_span_listener(self._listen)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import jax

        self.seconds = time.perf_counter() - self._t0
        jax.monitoring.unregister_event_time_span_listener(self._listen)
        self.compile_seconds, reach = 0.0, float("-inf")
        for start, end in sorted(self._spans):
            self.compile_seconds += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        return False
