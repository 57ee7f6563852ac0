"""Command line: `vae-lab train | evaluate | report | grade`, thin wrappers over the package."""

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

from . import DATASETS, TrainConfig, TrainingDiverged, evaluate_run, load_dataset, save_lab_figures, train
from .evaluation import DEFAULT_IW_SAMPLES


def _at_least_one(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def default_run_dir(config):
    """runs/<one name per config>, so two configs never share a directory by accident."""
    return Path("runs") / (f"{config.dataset}-z{config.latent_dim}-e{config.epochs}-b{config.batch_size}"
                           f"-lr{config.learning_rate:g}-s{config.seed}")


def build_parser():
    defaults = TrainConfig()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser = argparse.ArgumentParser(prog="vae-lab", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("train", parents=[common], help="train, evaluate and draw the figures")
    run.add_argument("--dataset", choices=sorted(DATASETS), default=defaults.dataset)
    run.add_argument("--epochs", type=_at_least_one, default=defaults.epochs)
    run.add_argument("--batch-size", type=_at_least_one, default=defaults.batch_size)
    run.add_argument("--latent-dim", type=_at_least_one, default=defaults.latent_dim)
    run.add_argument("--learning-rate", type=_positive_float, default=defaults.learning_rate)
    run.add_argument("--seed", type=int, default=defaults.seed)
    run.add_argument("--data", metavar="DIR", help="folder with the four IDX files or an .npz "
                     "(default: $VAE_LAB_DATA, then Keras's cache/download)")
    run.add_argument("--out", metavar="RUN_DIR", type=Path, help="run directory (default: runs/<config>)")
    run.add_argument("--iw-samples", type=_at_least_one, default=DEFAULT_IW_SAMPLES,
                     help="importance samples per test image for the final evaluation")
    run.add_argument("--resume", action="store_true", help="continue the run in --out up to --epochs")
    run.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")

    score = commands.add_parser("evaluate", parents=[common], help="write RUN_DIR/metrics.json")
    score.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    score.add_argument("--iw-samples", type=_at_least_one, default=DEFAULT_IW_SAMPLES)
    score.add_argument("--samples", type=_at_least_one, default=1, help="draws of z for the ELBO")
    score.add_argument("--data", metavar="DIR")

    report = commands.add_parser("report", parents=[common], help="write RUN_DIR/report.html")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    grade = commands.add_parser("grade", parents=[common], help="check executed lab notebooks")
    grade.add_argument("notebooks", nargs="+", type=Path, metavar="SUBMISSION.ipynb")
    grade.add_argument("--csv", type=Path, help="write one row per submission here")
    grade.add_argument("--max-val-loss", type=_positive_float, default=None,
                       help="highest acceptable final validation loss (default: the grader's bound)")
    grade.add_argument("--rerun", action="store_true", help="re-execute each submission and compare")
    return parser


def _train(args):
    config = TrainConfig(dataset=args.dataset, latent_dim=args.latent_dim, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    run_dir = args.out or default_run_dir(config)
    data = load_dataset(config.dataset, args.data)  # bad data fails here, before any training
    try:
        model, history = train(config, run_dir, data=data, resume=args.resume, overwrite=args.overwrite,
                               verbose=0 if args.quiet else 1)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished epochs are saved in {run_dir}; continue with:\n"
              f"  vae-lab train --out {run_dir} --resume --epochs {config.epochs} "
              f"{_flags(config)}", file=sys.stderr)
        return 130
    (_, _), (x_test, y_test) = data
    save_lab_figures(model, history, x_test, y_test, run_dir, DATASETS[config.dataset].class_names)
    try:
        metrics = evaluate_run(run_dir, iw_samples=args.iw_samples, data=data)
    except KeyboardInterrupt:
        print(f"\nInterrupted during evaluation; the trained model is saved in {run_dir}. Evaluate it with:\n"
              f"  vae-lab evaluate {run_dir} --iw-samples {args.iw_samples}", file=sys.stderr)
        return 130
    print(f"Run directory: {run_dir}")
    print(f"Test negative ELBO {metrics['test_neg_elbo']:.2f} nats "
          f"(reconstruction {metrics['test_reconstruction_loss']:.2f}, KL {metrics['test_kl_loss']:.2f}); "
          f"importance-weighted NLL ({args.iw_samples} samples) {metrics['test_nll_iw']:.2f} nats")
    return 0


def _flags(config):
    defaults = asdict(TrainConfig())
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in asdict(config).items()
                    if key != "epochs" and value != defaults[key])


def _evaluate(args):
    metrics = evaluate_run(args.run_dir, iw_samples=args.iw_samples, samples=args.samples,
                           data_dir=args.data)
    print(json.dumps({key: value for key, value in metrics.items() if key != "versions"}, indent=2))
    return 0


def _report(args):
    from .report import write_report

    print(write_report(args.run_dir))
    return 0


def _grade(args):
    from .grade import grade_command

    return grade_command(args.notebooks, csv_path=args.csv, max_val_loss=args.max_val_loss, rerun=args.rerun)


COMMANDS = {"train": _train, "evaluate": _evaluate, "report": _report, "grade": _grade}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, TrainingDiverged) as error:  # a user's mistake: one line, no traceback
        if args.debug:
            raise
        print(f"vae-lab {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
