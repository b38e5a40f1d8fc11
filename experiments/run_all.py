"""Run every experiment at the quick scale, then regenerate the README's results table.

    python experiments/run_all.py [--scale quick|paper] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = {
    "energy_landscape": ["energy_landscape.py"],
    "ring_square_line": ["ring_square_line.py"],
    "embedding_gmm": ["embedding_gmm.py"],
    "benchmark": ["benchmark.py"],
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="quick", choices=["quick", "paper"])
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(SCRIPTS))
    args = ap.parse_args(argv)
    for name, cmd in SCRIPTS.items():
        if name in args.skip:
            continue
        extra = [] if name == "benchmark" else ["--scale", args.scale]
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / cmd[0]), *extra], check=True)
    subprocess.run([sys.executable, str(HERE / "report.py")], check=True)


if __name__ == "__main__":
    main()
