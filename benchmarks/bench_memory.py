"""Benchmark: peak resident memory of `vae-lab train` at its defaults, and of evaluation with many
importance samples, each in a fresh process. Run `python benchmarks/bench_memory.py`; never a test."""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVALUATE_MANY = """
import sys, keras, vae_lab
model = keras.models.load_model(sys.argv[1])
(_, _), (x_test, _) = vae_lab.load_mnist()
print(vae_lab.evaluate(model, x_test[:{images}], iw_samples={samples}))
"""


# A fresh parent per measurement, so RUSAGE_CHILDREN holds that one command's peak alone.
MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_of(command):
    """Run `command` in a fresh process tree; return (peak RSS in MiB, seconds). Linux reports KiB."""
    began = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True)
    return int(output.stdout.split()[-1]) / 1024, time.perf_counter() - began


def main():
    results = {}
    with tempfile.TemporaryDirectory() as run_dir:
        results["train_defaults"] = peak_rss_of([sys.executable, "-m", "vae_lab.cli", "train", "--quiet",
                                                 "--out", run_dir])
        for images, samples in ((2000, 10), (100, 20_000)):
            results[f"evaluate_{images}_images_x_{samples}_samples"] = peak_rss_of(
                [sys.executable, "-c", EVALUATE_MANY.format(images=images, samples=samples),
                 str(Path(run_dir) / "model.keras")])
    for name, (mib, seconds) in results.items():
        print(f"{name:<42} peak RSS {mib:8.0f} MiB   {seconds:6.1f} s")
    out = ROOT / "benchmarks" / "results" / "bench_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: {"peak_rss_mib": v[0], "seconds": v[1]} for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
