"""Command line: `vae-lab train | evaluate | report | lab | assign | grade`.

Thin wrappers over the package. Each command imports only what it needs, so `--help`, usage
errors, `assign` and `grade` answer without loading TensorFlow.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from .config import DEFAULT_IW_SAMPLES, TrainConfig
from .data import DATASETS


DESCRIPTION = """The variational-autoencoder lab from the command line.

  vae-lab lab                     run the whole lab into runs/lab (what `make lab` does)
  vae-lab train --epochs 5        train, draw the figures, evaluate; `vae-lab train --help` for the flags
  vae-lab assign roster.csv --out course/      personal notebooks for a class
  vae-lab grade course/handed-in/ --assignments course/assignments.csv --csv grades.csv
"""


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


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless it has none or says it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and "default" not in text and not any(
                action.default is nothing for nothing in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def build_parser():
    defaults = TrainConfig()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser = argparse.ArgumentParser(prog="vae-lab", description=DESCRIPTION, parents=[common], formatter_class=_Formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):
        return commands.add_parser(name, parents=[common], help=help_text, description=help_text,
                                   formatter_class=_Formatter)

    run = command("train", "train a VAE, draw the figures and evaluate it on the test set")
    run.add_argument("--dataset", choices=sorted(DATASETS), default=defaults.dataset, help="images to train on")
    run.add_argument("--epochs", type=_at_least_one, default=defaults.epochs, help="passes over the training set")
    run.add_argument("--batch-size", type=_at_least_one, default=defaults.batch_size, help="images per step")
    run.add_argument("--latent-dim", type=_at_least_one, default=defaults.latent_dim, help="size of z")
    run.add_argument("--learning-rate", type=_positive_float, default=defaults.learning_rate, help="Adam's step size")
    run.add_argument("--seed", type=int, default=defaults.seed, help="seeds weights, shuffles and draws of z")
    run.add_argument("--data", metavar="DIR", help="folder with the four IDX files or an .npz "
                     "(default: $VAE_LAB_DATA, then Keras's cache/download)")
    run.add_argument("--out", metavar="RUN_DIR", type=Path, help="run directory (default: runs/<config>)")
    run.add_argument("--iw-samples", type=_at_least_one, default=DEFAULT_IW_SAMPLES,
                     help="importance samples per test image for the final evaluation")
    run.add_argument("--resume", action="store_true", help="continue the run in --out up to --epochs")
    run.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")

    score = command("evaluate", "evaluate a trained run on its test set and write RUN_DIR/metrics.json")
    score.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory written by vae-lab train")
    score.add_argument("--iw-samples", type=_at_least_one, default=DEFAULT_IW_SAMPLES,
                       help="importance samples per test image for the NLL bound")
    score.add_argument("--elbo-draws", type=_at_least_one, default=1, help="draws of z per image for the ELBO")
    score.add_argument("--data", metavar="DIR", help="data folder (default: as for train)")

    report = command("report", "write RUN_DIR/report.html, one self-contained page")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory written by vae-lab train")

    lab = command("lab", "run the whole lab: execute the notebook, its HTML page, the report and the self-check")
    lab.add_argument("--out", metavar="RUN_DIR", type=Path, default=Path("runs/lab"), help="where it all goes")
    lab.add_argument("--notebook", type=Path, default=None,
                     help="the lab notebook to execute (default: the repository's notebooks/vae_mnist.ipynb)")
    lab.add_argument("--timeout", type=_at_least_one, default=1800, help="seconds one notebook cell may take")

    assign = command("assign", "write one personal lab notebook per student of a roster")
    assign.add_argument("roster", type=Path, metavar="ROSTER.csv", help="a CSV with a student_id column")
    assign.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the notebooks")
    assign.add_argument("--key", type=Path, default=Path("vae-lab-course.key"), metavar="KEYFILE",
                        help="the instructor's secret key (created when absent; never hand it out)")
    assign.add_argument("--dataset", choices=[*sorted(DATASETS), "both"], default="mnist",
                        help="'both' alternates the datasets down the roster")
    assign.add_argument("--epochs", type=_at_least_one, default=defaults.epochs, help="epochs each student trains")
    assign.add_argument("--train-images", type=_at_least_one, default=None, metavar="N",
                        help="train on the first N images only: a quick dry run of the course (default: all 60,000)")
    assign.add_argument("--notebook", type=Path, default=None,
                        help="the reference notebook (default: the repository's notebooks/vae_mnist.ipynb)")

    grade = command("grade", "grade handed-in lab notebooks (never runs their code)")
    grade.add_argument("notebooks", nargs="+", type=Path, metavar="SUBMISSION",
                       help="notebooks, or folders searched for *.ipynb")
    grade.add_argument("--assignments", type=Path, metavar="CSV",
                       help="DIR/assignments.csv from vae-lab assign: verify each record against a reference run "
                            "(without it: the student's self-check, numbers not verified)")
    grade.add_argument("--key", type=Path, default=Path("vae-lab-course.key"), metavar="KEYFILE",
                       help="the key vae-lab assign used, to check that the seeds in the CSV are its own")
    grade.add_argument("--csv", type=Path, metavar="FILE", help="write one row per student here")
    grade.add_argument("--report", type=Path, metavar="FILE.html", help="write the class page here")
    grade.add_argument("--feedback", type=Path, metavar="DIR", help="write one page per student here")
    grade.add_argument("--cache", type=Path, default=Path("runs/reference-cache"), metavar="DIR",
                       help="reference runs, kept by configuration and versions")
    grade.add_argument("--data", metavar="DIR", help="data folder for the reference runs (default: as for train)")
    grade.add_argument("--jobs", type=_at_least_one, default=1,
                       help="worker processes for the reference runs (more than 1 needs vae-lab[class])")
    grade.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler to send the runs to")
    grade.add_argument("--timeout", type=_positive_float, default=1800, help="seconds one reference run may take")
    return parser


def _train(args):
    from .data import load_dataset
    from .run_directory import make_writable

    config = TrainConfig(dataset=args.dataset, latent_dim=args.latent_dim, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    run_dir = args.out or default_run_dir(config)
    make_writable(run_dir)  # a bad --out fails here, before the data are read
    data = load_dataset(config.dataset, args.data)  # bad data fail here, before TensorFlow loads
    from .evaluation import evaluate_run
    from .plots import save_lab_figures
    from .progress import Progress
    from .training import train

    try:
        train(config, run_dir, data=data, resume=args.resume, overwrite=args.overwrite,
              verbose=0 if args.quiet else 1)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished epochs are saved in {run_dir}; continue with:\n"
              f"  vae-lab train --out {run_dir} --resume --epochs {config.epochs} "
              f"{_flags(config)}", file=sys.stderr)
        return 130
    (_, _), (x_test, y_test) = data
    save_lab_figures(run_dir, x_test, y_test)
    try:
        metrics = evaluate_run(run_dir, iw_samples=args.iw_samples, data=data,
                               progress=None if args.quiet else Progress("evaluating the test set"))
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
    defaults = TrainConfig().as_dict()
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in config.as_dict().items()
                    if key != "epochs" and value != defaults[key])


def _evaluate(args):
    from .evaluation import evaluate_run
    from .progress import Progress

    metrics = evaluate_run(args.run_dir, iw_samples=args.iw_samples, elbo_draws=args.elbo_draws,
                           data_dir=args.data, progress=Progress("evaluating the test set"))
    print(json.dumps({key: value for key, value in metrics.items() if key != "versions"}, indent=2))
    return 0


def _report(args):
    from .report import write_report

    print(write_report(args.run_dir))
    return 0


def _lab(args):
    from .lab import run_lab

    return run_lab(args.out, notebook=args.notebook, timeout=args.timeout)


def _assign(args):
    from .course.assign import assign_command

    return assign_command(args.roster, args.out, key_path=args.key, dataset=args.dataset, epochs=args.epochs,
                          notebook=args.notebook, train_images=args.train_images)


def _grade(args):
    from .course.grade import grade_command

    return grade_command(args.notebooks, assignments=args.assignments, key_path=args.key, csv_path=args.csv,
                         report_path=args.report, feedback_dir=args.feedback, cache_dir=args.cache,
                         data_dir=args.data, jobs=args.jobs, scheduler=args.scheduler, timeout=args.timeout)


COMMANDS = {"train": _train, "evaluate": _evaluate, "report": _report, "lab": _lab, "assign": _assign,
            "grade": _grade}


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, RuntimeError) as error:  # a user's mistake: one line, no traceback
        if args.debug:
            raise
        print(f"vae-lab {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
