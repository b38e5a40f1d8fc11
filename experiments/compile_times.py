"""Compile times and compilation counts of the fits when settings change.

On the paper's ring-square-line data (K = 10, package defaults): the first ``sw.fit`` call
(tracing and compiling), the same config with a new key, then configs that change one numeric
hyperparameter (learning rate, ``reg_covar``, schedule end value; traced: no new compilation
expected), then one that changes the structure (``n_steps``: a new compilation); the same for
``sw.fit_em`` (``tol``) and ``sw.fit_restarts``. Each row: wall seconds of the call (median of
``--repeats`` fresh processes is up to the caller) and the number of XLA compilations it caused
(``jax.monitoring`` backend-compile events).

Run: ``python -m experiments.compile_times`` (about a minute on 2 CPU cores); writes
``results/compile_times.json``.
"""

from __future__ import annotations

import time

import jax
import numpy as np

import swgmm_jax as sw
from experiments import _common

SCALES = {"quick": {"n_steps": 500}, "smoke": {"n_steps": 20}}
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def main(argv=None) -> dict:
    parser = _common.argument_parser(__doc__)
    _common.add_scale_argument(parser, SCALES)
    args = parser.parse_args(argv)
    settings = _common.scale_settings(SCALES, args.scale)
    info = _common.run_info(args.scale)
    compiles: list[str] = []

    def listener(name, duration, **kwargs):
        if name == COMPILE_EVENT:
            compiles.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    x = np.asarray(sw.datasets.ring_square_line())
    base = sw.FitConfig(n_steps=settings["n_steps"])
    rows = []

    def measure(label, fn):
        before = len(compiles)
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        rows.append(
            {"call": label, "seconds": time.perf_counter() - t0, "compilations": len(compiles) - before}
        )
        print(
            f"{label:55s} {rows[-1]['seconds']:7.2f} s  {rows[-1]['compilations']} compilations", flush=True
        )

    measure("fit: first call", lambda: sw.fit(jax.random.key(0), x, 10, base))
    measure("fit: new key", lambda: sw.fit(jax.random.key(1), x, 10, base))
    measure(
        "fit: learning_rate 0.05 -> 0.1",
        lambda: sw.fit(jax.random.key(1), x, 10, base.replace(learning_rate=0.1)),
    )
    measure(
        "fit: reg_covar 1e-6 -> 1e-4", lambda: sw.fit(jax.random.key(1), x, 10, base.replace(reg_covar=1e-4))
    )
    measure(
        "fit: lr_final_fraction 0.01 -> 0.1",
        lambda: sw.fit(jax.random.key(1), x, 10, base.replace(lr_final_fraction=0.1)),
    )
    measure(
        "fit: n_steps + 1 (structure)",
        lambda: sw.fit(jax.random.key(1), x, 10, base.replace(n_steps=base.n_steps + 1)),
    )
    measure("fit_restarts(8): first call", lambda: sw.fit_restarts(jax.random.key(0), x, 10, 8, base))
    measure(
        "fit_restarts(8): learning_rate 0.05 -> 0.1",
        lambda: sw.fit_restarts(jax.random.key(0), x, 10, 8, base.replace(learning_rate=0.1)),
    )
    em = sw.EMConfig(max_iter=200)
    measure("fit_em: first call", lambda: sw.fit_em(jax.random.key(0), x, 10, em))
    measure(
        "fit_em: tol 1e-3 -> 1e-6",
        lambda: sw.fit_em(jax.random.key(0), x, 10, sw.EMConfig(max_iter=200, tol=1e-6)),
    )
    out = {"run": info.finish(), "settings": settings, "rows": rows}
    _common.atomic_write_json(_common.result_path("compile_times", scale=args.scale), out)
    return out


if __name__ == "__main__":
    main()
