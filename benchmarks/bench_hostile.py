"""Benchmark: the grader's worst case per megabyte of hand-in — seconds and memory to read a record and run
every check on it, for adversarial records of growing size (the README quotes the worst rate).

Each kind is built to hit one weakness a naive grader has: prose that makes regular expressions backtrack
(long runs of spaces and newlines, brackets, '<your', repeated number phrases, '#' lines), many cells, many
outputs, deep but legal nesting, a large figure of noise, a huge literal in the parameters cell. Each record
is graded alone, in a fresh process (so peak memory is its own), through the self-check the grader runs.
"""

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prose(size):
    unit = ("loss 152.3 " * 50 + " " * 400 + "\n" * 200 + "[" * 100 + "<your" * 40 + "# heading " + " " * 300 + ":\n"
            + "1.5e999 ELBO 152.31 nats, " * 20 + "](" * 50)
    return (unit * (size // len(unit) + 1))[:size]


def notebook(kind, size):
    """An otherwise ordinary record of about SIZE bytes, made hostile in one way."""
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": 1, "outputs": [],
              "source": "STUDENT_ID = 's01'\nSEED = 7\nDATASET = 'mnist'\nEPOCHS = 2\nTRAIN_IMAGES = None"}]
    if kind == "prose":
        cells += [{"cell_type": "markdown", "metadata": {}, "source": "## Observation"},
                  {"cell_type": "markdown", "metadata": {"tags": ["answer"]}, "source": prose(size // 2)},
                  {"cell_type": "markdown", "metadata": {}, "source": "## Result"},
                  {"cell_type": "markdown", "metadata": {"tags": ["answer"]}, "source": prose(size // 2)}]
    elif kind == "printed history":
        text = ("Epoch 1/2  1.0 s  loss 1.00  " + "kl_loss 9" * 40 + "\n") * (size // 400)
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "train()",
                      "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]})
    elif kind == "many cells":
        count = min(1999, max(1, size // 600))
        cells += [{"cell_type": "markdown", "metadata": {}, "source": "# x " + " " * 500 + "\n"}] * count
    elif kind == "many outputs":
        outputs = [{"output_type": "stream", "name": "stdout", "text": "x" * 900}] * 1000
        cells += [{"cell_type": "code", "metadata": {}, "execution_count": 2 + index, "source": "print()",
                   "outputs": outputs} for index in range(max(1, size // 1_000_000))]
    elif kind == "nesting":
        depth = 900
        value = "x"
        for _ in range(depth):
            value = [value]
        cells += [{"cell_type": "code", "metadata": {"junk": value}, "execution_count": 2, "source": "x",
                   "outputs": []}] * max(1, size // 3000)
    elif kind == "figure noise":
        noise = base64.b64encode(os.urandom(min(size, 4_000_000))).decode()
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "plot_digit_grid(model)",
                      "outputs": [{"output_type": "display_data", "data": {"image/png": noise}, "metadata": {}}]})
    elif kind == "parameters literal":
        cells[0]["source"] += "\nSEED = 0x" + "f" * min(size, 9_000)
        cells.append({"cell_type": "markdown", "metadata": {}, "source": "x " * (size // 2)})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def grade_one(path):
    """Run in a child process: the self-check of PATH; prints seconds and peak RSS as JSON."""
    from vae_lab.course.grade import self_check

    began = time.perf_counter()
    graded, _ = self_check(path)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "status": graded.status.value if graded else None}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 20], help="megabytes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return grade_one(args.child)
    kinds = ["prose", "printed history", "many cells", "many outputs", "nesting", "figure noise",
             "parameters literal"]
    rows = []
    baseline = None
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.ipynb"
        empty.write_text(json.dumps(notebook("none", 0)))
        baseline = json.loads(subprocess.run([sys.executable, __file__, "--child", str(empty)], capture_output=True,
                                             text=True, check=True).stdout)
        for kind in kinds:
            for megabytes in args.sizes:
                path = Path(folder) / "s01.ipynb"
                path.write_text(json.dumps(notebook(kind, int(megabytes * 2**20))))
                size = path.stat().st_size / 2**20
                result = json.loads(subprocess.run([sys.executable, __file__, "--child", str(path)],
                                                   capture_output=True, text=True, check=True).stdout)
                rows.append({"kind": kind, "mib": round(size, 2), **result,
                             "seconds_per_mib": (result["seconds"] - baseline["seconds"]) / max(size, 1e-9)})
                print(f"{kind:<20} {size:6.2f} MiB  {result['seconds']:7.2f} s  "
                      f"{rows[-1]['seconds_per_mib']:6.3f} s/MiB  peak {result['peak_mib']:7.1f} MiB  "
                      f"{result['status']}", flush=True)
    worst = max(rows, key=lambda row: row["seconds_per_mib"])
    print(f"baseline (an empty record): {baseline['seconds']:.2f} s, peak {baseline['peak_mib']:.0f} MiB")
    print(f"worst: {worst['kind']} at {worst['mib']} MiB: {worst['seconds_per_mib']:.3f} s per MiB; "
          f"largest peak {max(row['peak_mib'] for row in rows):.0f} MiB")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"hostile-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({"baseline": baseline, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
