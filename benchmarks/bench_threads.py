"""Benchmark: do TensorFlow's intra-op thread counts change a run's numbers, and in which digit?

Run `python benchmarks/bench_threads.py [--threads 1 2] [--epochs 2] [--seed 3]` (needs MNIST: VAE_LAB_DATA).
Each thread count runs in a fresh process with TF_NUM_INTRAOP_THREADS set (and applied through
`tf.config.threading` before TensorFlow starts; 1 inter-op thread): the training of `--epochs` epochs and
the record's evaluation (RECORD_IW_SAMPLES importance samples), through
`vae_lab.training.reference_history_and_metrics`, whose history and metrics equal
`train` + `evaluate_run`'s bit for bit. With `--old`, a child runs `train` into a run directory and
`evaluate_run` instead (for a vae_lab without the trainer, e.g. PYTHONPATH=an older copy). Prints, for
every history value and metric, whether it is identical across the thread counts, else the first
significant digit that differs and the relative difference. A benchmark, never a test.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(args):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import vae_lab
    from vae_lab.config import DEFAULT_EVALUATION_SEED, RECORD_IW_SAMPLES

    data = vae_lab.load_mnist()
    config = vae_lab.TrainConfig(epochs=args.epochs, seed=args.seed)
    if args.old:
        with tempfile.TemporaryDirectory() as run_dir:
            _, history = vae_lab.train(config, run_dir, data=data, verbose=0)
            metrics = vae_lab.evaluate_run(run_dir, iw_samples=RECORD_IW_SAMPLES, seed=DEFAULT_EVALUATION_SEED,
                                           data=data)
    else:
        from vae_lab.training import reference_history_and_metrics

        history, metrics = reference_history_and_metrics(config, data, iw_samples=RECORD_IW_SAMPLES,
                                                         evaluation_seed=DEFAULT_EVALUATION_SEED)
    values = {f"{key}[{epoch + 1}]": value for key, column in history.items() for epoch, value in enumerate(column)}
    values.update({key: value for key, value in metrics.items() if key.startswith("test_")})
    threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    Path(args.result).write_text(json.dumps({"values": values, "threads": threads,
                                             "epoch_seconds": metrics.get("train_seconds")}), encoding="utf-8")


def first_differing_digit(a, b):
    """1-based index of the first significant decimal digit where a and b differ (None: identical)."""
    if a == b:
        return None
    digits_a, digits_b = (f"{value:.16e}".split("e")[0].replace(".", "").lstrip("-") for value in (a, b))
    same_exponent = f"{a:.16e}".split("e")[1] == f"{b:.16e}".split("e")[1]
    if not same_exponent:
        return 1
    return next(index + 1 for index, (x, y) in enumerate(zip(digits_a, digits_b)) if x != y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="train + evaluate_run in the children")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    runs = {}
    for threads in args.threads:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            result = handle.name
        command = [sys.executable, __file__, "--child", "--result", result, "--epochs", str(args.epochs),
                   "--seed", str(args.seed)] + (["--old"] if args.old else [])
        environment = os.environ | {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
        subprocess.run(command, check=True, env=environment, stderr=subprocess.DEVNULL)
        runs[threads] = json.loads(Path(result).read_text(encoding="utf-8"))
        os.unlink(result)
        print(f"{threads} intra-op threads (TensorFlow reports {runs[threads]['threads']}): "
              f"epochs {runs[threads]['epoch_seconds']} s", flush=True)
    first, *others = args.threads
    print(f"\nseed {args.seed}, {args.epochs} epochs, full MNIST; {'train + evaluate_run' if args.old else 'trainer'}; "
          f"each value against {first} thread(s):")
    summary = {}
    for key, value in runs[first]["values"].items():
        cells = []
        for threads in others:
            other = runs[threads]["values"][key]
            digit = first_differing_digit(value, other)
            summary.setdefault(key, {})[threads] = digit
            cells.append("identical" if digit is None else
                         f"digit {digit} differs ({other!r}, relative {abs(other - value) / abs(value):.1e})")
        print(f"  {key:<28} {value!r:<22} " + "; ".join(cells))
    differing = sorted({digit for row in summary.values() for digit in row.values() if digit})
    print("every value identical" if not differing else f"first differing significant digits: {differing}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "first_differing_digit": summary}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
