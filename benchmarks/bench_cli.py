"""Start-up time of the command line where no TensorFlow is needed: --help, a usage error, grade.

Each command runs in a fresh process, several times; prints min / median / max wall seconds.
Usage: python benchmarks/bench_cli.py [--runs 7]
"""

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "vae_mnist.ipynb"
COMMANDS = {
    "vae-lab --help": ["--help"],
    "vae-lab train --help": ["train", "--help"],
    "usage error (train --epochs 0)": ["train", "--epochs", "0"],
    "vae-lab grade NOTEBOOK (self-check)": ["grade", str(NOTEBOOK)],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}; {args.runs} runs each, fresh process per run")
    print(f"{'command':<40} {'min':>6} {'median':>7} {'max':>6}  seconds")
    for name, arguments in COMMANDS.items():
        times = []
        for _ in range(args.runs):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vae_lab.cli", *arguments], capture_output=True)
            times.append(time.perf_counter() - began)
        print(f"{name:<40} {min(times):6.2f} {statistics.median(times):7.2f} {max(times):6.2f}")
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True)
    label = "for scale: import tensorflow"
    print(f"{label:<40} {time.perf_counter() - began:6.2f}")


if __name__ == "__main__":
    main()
