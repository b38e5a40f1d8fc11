"""Run every experiment of the README at one scale, then regenerate the README's results section.

    python -m experiments.run_all [--scale quick|paper] [--skip NAME ...]

Each script runs as ``python -m experiments.NAME --scale SCALE`` from the
repository root, in its own process; ``benchmark`` always runs at its quick
scale (which already has the paper's 100 restarts), ``quality_suite`` at ``full``
for ``paper``. Then ``report`` rewrites the
README's results section from ``results/*.json``.
"""

from __future__ import annotations

import subprocess
import sys

from experiments import _common, report

# Script -> whether it takes run_all's --scale (True), or its own name for each of run_all's scales.
SCRIPTS = {
    "energy_landscape": True,
    "ring_square_line": True,
    "embedding_gmm": True,
    "quality_suite": {"quick": "quick", "paper": "full"},
    "robust_calls": {"quick": "quick", "paper": "quick"},
    "benchmark": False,
}


def main(argv=None):
    ap = _common.argument_parser(__doc__)
    ap.add_argument("--scale", default=_common.DEFAULT_SCALE, choices=["quick", "paper"])
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(SCRIPTS))
    args = ap.parse_args(argv)
    for name, scaled in SCRIPTS.items():
        if name in args.skip:
            continue
        scale = scaled.get(args.scale) if isinstance(scaled, dict) else (args.scale if scaled else None)
        extra = [] if scale is None else ["--scale", scale]
        print(f"== python -m experiments.{name} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, "-m", f"experiments.{name}", *extra], check=True, cwd=_common.ROOT)
    report.update_readme()
    print("README results section regenerated")


if __name__ == "__main__":
    main()
