"""Command line: `vae-lab train | evaluate | report | lab | assign | grade`.

Thin wrappers over the package. Each command imports only what it needs, so `--help`, usage errors and
missing files answer without loading TensorFlow. An error the user can cause (a `LabError`) is one line;
anything else is a bug and keeps its traceback.
"""

import argparse
import contextlib
import dataclasses
import difflib
import json
import math
import os
import shlex
import sys
from pathlib import Path

from .config import DEFAULT_IW_SAMPLES, TrainConfig
from .data import DATASETS
from .errors import LabError

DESCRIPTION = """The variational-autoencoder lab from the command line.

  vae-lab lab                     run the whole lab into runs/lab (what `make lab` does)
  vae-lab train --epochs 5        train, draw the figures, evaluate; `vae-lab train --help` for the flags
  vae-lab assign roster.csv --out course/      personal notebooks for a class
  vae-lab grade hand-ins.zip --assignments course/assignments.csv --csv grades.csv
"""


def _whole_number(minimum, maximum=None):
    """An argparse type: a whole number of at least MINIMUM (and at most MAXIMUM)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value
    return parse


_at_least_one, _at_least_zero = _whole_number(1), _whole_number(0)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _export(text):
    kind, equals, path = text.partition("=")
    if not equals or kind not in ("canvas", "moodle", "moodle-worksheet", "csv") or not path:
        raise argparse.ArgumentTypeError(f"expected canvas=FILE, moodle=FILE, moodle-worksheet=FILE or csv=FILE, "
                                         f"got {text!r}")
    return kind, Path(path)


def default_run_dir(config):
    """runs/<one name per config>, so two configs never share a directory by accident."""
    short = {"latent_dim": "z", "epochs": "e", "batch_size": "b", "learning_rate": "lr", "seed": "s"}
    parts = [config.dataset] + [f"{short[name]}{getattr(config, name):g}" if name == "learning_rate"
                                else f"{short[name]}{getattr(config, name)}" for name in short]  # s1000001, not s1e+06
    return Path("runs") / "-".join(parts)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless it has none or says it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and "default" not in text and not any(
                action.default is nothing for nothing in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse, suggesting the nearest flag or command for a typo (`--epcohs`: did you mean --epochs?)."""

    def error(self, message):
        subparsers = [action for action in self._actions if isinstance(action, argparse._SubParsersAction)]
        commands = [name for action in subparsers for name in action.choices]
        parsers = [self] + [parser for action in subparsers for parser in action.choices.values()]
        known = sorted({option for parser in parsers for action in parser._actions for option in action.option_strings})
        words = []
        if "unrecognized arguments:" in message:
            words = message.split("unrecognized arguments:", 1)[1].split()
        elif "invalid choice:" in message:
            words = [message.split("invalid choice:", 1)[1].split("'")[1]] if "'" in message else []
        hints = []
        for word in words:
            candidates = known if word.startswith("-") else commands
            close = difflib.get_close_matches(word.split("=")[0], candidates, n=1, cutoff=0.6)
            if close:
                hints.append(f"{word}: did you mean {close[0]}?")
        super().error(message + "".join(f"\n  {hint}" for hint in hints))


def _add_config_flags(parser):
    """One flag per TrainConfig field, with its help text and a type that refuses impossible values."""
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        options = {"default": field.default, "help": field.metadata["help"]}
        if "choices" in field.metadata:
            options["choices"] = sorted(field.metadata["choices"])
        elif field.type in (float, "float"):
            options["type"] = _positive_float
        elif "maximum" in field.metadata:
            options["type"] = _whole_number(field.metadata.get("minimum", 1), field.metadata["maximum"])
        elif field.metadata.get("minimum") == 0:
            options["type"] = _at_least_zero
        else:
            options["type"] = _at_least_one
        parser.add_argument(flag, **options)


def build_parser():
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser = _Parser(prog="vae-lab", description=DESCRIPTION, parents=[common], formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"vae-lab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name, help_text):
        return commands.add_parser(name, parents=[common], help=help_text, description=help_text,
                                   formatter_class=_Formatter)

    run = command("train", "train a VAE, draw the figures and evaluate it on the test set")
    _add_config_flags(run)
    run.add_argument("--data", metavar="DIR", help="folder with the four IDX files or an .npz, or the .npz (default: "
                     "$VAE_LAB_DATA, for Fashion-MNIST $VAE_LAB_FASHION_DATA or Debian's /usr/share/datasets/"
                     "fashion-mnist, then Keras's cache/download)")
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
                     help="the lab notebook to execute, e.g. your own from vae-lab assign; the executed copy in "
                          "RUN_DIR keeps its name (default: the one installed with vae_lab, as vae_mnist.ipynb)")
    lab.add_argument("--timeout", type=_at_least_one, default=1800, help="seconds one notebook cell may take")

    assign = command("assign", "write one personal lab notebook per student of a roster")
    assign.add_argument("roster", type=Path, metavar="ROSTER.csv",
                        help="a CSV with a student_id column, a Canvas gradebook export or a Moodle grades export")
    assign.add_argument("--out", type=Path, required=True, metavar="COURSE",
                        help="course folder: COURSE/handout/ goes to the students, COURSE/assignments.csv "
                             "and the key stay with you")
    assign.add_argument("--key", type=Path, default=None, metavar="KEYFILE",
                        help="the instructor's secret key, created when absent (default: COURSE/course.key)")
    assign.add_argument("--id-column", metavar="NAME", default=None,
                        help="the roster column that holds student ids (default: student_id; Canvas: SIS User "
                             "ID, else ID; Moodle: ID number, else Email address)")
    assign.add_argument("--dataset", choices=[*sorted(DATASETS), "both"], default="mnist",
                        help="'both' alternates the datasets down the roster")
    assign.add_argument("--epochs", type=_at_least_one, default=TrainConfig.epochs, help="epochs each student trains")
    assign.add_argument("--exercises", action="store_true",
                        help="students write reparameterize, kl_divergence and reconstruction_loss themselves")
    assign.add_argument("--train-images", type=_at_least_one, default=None, metavar="N",
                        help="train on the first N images only: a quick dry run of the course (default: all 60,000)")
    assign.add_argument("--notebook", type=Path, default=None,
                        help="the reference notebook (default: the one installed with vae_lab)")

    grade = command("grade", "grade handed-in lab notebooks (never runs their code)")
    grade.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                       help="notebooks, folders, or the zip an LMS gives (Canvas, Moodle, Gradescope, nbgrader)")
    options = GRADE_FLAGS
    grade.add_argument("--assignments", type=Path, metavar="CSV", help=options["assignments"])
    grade.add_argument("--key", type=Path, default=None, metavar="KEYFILE", help=options["key"])
    grade.add_argument("--csv", type=Path, metavar="FILE", help=options["csv"])
    grade.add_argument("--report", type=Path, metavar="FILE.html", help=options["report"])
    grade.add_argument("--feedback", type=Path, metavar="DIR", help=options["feedback"])
    grade.add_argument("--rubric", type=Path, metavar="FILE.toml", help=options["rubric"])
    grade.add_argument("--decisions", type=Path, metavar="FILE.csv", help=options["decisions"])
    grade.add_argument("--export", dest="exports", type=_export, action="append", default=None, metavar="KIND=FILE",
                       help=options["exports"])
    grade.add_argument("--assignment-title", default="VAE lab", help=options["assignment_title"])
    grade.add_argument("--cache", type=Path, default=None, metavar="DIR", help=options["cache"])
    grade.add_argument("--data", metavar="DIR", help=options["data"])
    grade.add_argument("--jobs", type=_at_least_one, default=1, help=options["jobs"])
    grade.add_argument("--scheduler", metavar="ADDRESS", help=options["scheduler"])
    grade.add_argument("--timeout", type=_positive_float, default=1800, help=options["timeout"])
    return parser


# The grade command's flags, one per GradingOptions field (tests check that they match).
GRADE_FLAGS = {
    "assignments": "COURSE/assignments.csv from vae-lab assign: verify each record against a reference run "
                   "(without it: the student's self-check, numbers not verified)",
    "key": "the key vae-lab assign used (default: course.key beside the assignments file)",
    "csv": "write one row per student here, marks included (default: not written)",
    "report": "write the class page here (default: not written)",
    "feedback": "write one page per hand-in here, named so the LMS's bulk upload matches them (default: none)",
    "rubric": "marks per check, as TOML (default: the built-in rubric, a record out of 10)",
    "decisions": "your decisions on REVIEWs: grading writes the open ones here and applies those you filled in "
                 "(default: none kept)",
    "exports": "grades for the LMS: canvas=FILE (gradebook import), moodle-worksheet=FILE (the assignment's "
               "grading worksheet upload), moodle=FILE (gradebook import) or csv=FILE; may be repeated (default: "
               "no export)",
    "assignment_title": "the assignment's title in the Canvas export's column",
    "cache": "reference runs, kept by configuration and versions (default: your user cache folder)",
    "data": "data folder for the reference runs (default: as for train)",
    "jobs": "worker processes for the reference runs (more than 1 needs vae-lab[class])",
    "scheduler": "an existing Dask scheduler to send the runs to (default: none: --jobs decides)",
    "timeout": "seconds one reference run may take",
}


def _train(args):
    from . import run_directory
    from .data import load_dataset

    config = TrainConfig(**{field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)})
    run_dir = args.out or default_run_dir(config)
    run_directory.check_writable(run_dir)  # a bad --out fails here, before anything is read or created
    run_directory.prepare(run_dir, config, resume=args.resume, overwrite=args.overwrite, create=False)
    data = load_dataset(config.dataset, args.data)  # bad data fail here, before TensorFlow loads
    from .evaluation import evaluate_run
    from .plots import save_lab_figures
    from .progress import Progress
    from .training import train

    try:
        train(config, run_dir, data=data, resume=args.resume, overwrite=args.overwrite,
              verbose=0 if args.quiet else 1)
    except KeyboardInterrupt:
        command = " ".join(filter(None, (f"vae-lab train --out {shlex.quote(str(run_dir))} --resume --epochs "
                                         f"{config.epochs}", config.flags(leave_out=("epochs",)),
                                         f"--data {shlex.quote(str(args.data))}" if args.data else "")))
        print(f"\nInterrupted. Finished epochs are saved in {run_dir}; continue with:\n  {command}", file=sys.stderr)
        return 130
    (_, _), (x_test, y_test) = data
    save_lab_figures(run_dir, x_test, y_test)
    try:
        metrics = evaluate_run(run_dir, iw_samples=args.iw_samples, data=data,
                               progress=None if args.quiet else Progress("evaluating the test set"))
    except KeyboardInterrupt:
        print(f"\nInterrupted during evaluation; the trained model is saved in {run_dir}. Evaluate it with:\n"
              f"  vae-lab evaluate {shlex.quote(str(run_dir))} --iw-samples {args.iw_samples}"
              f"{f' --data {shlex.quote(str(args.data))}' if args.data else ''}", file=sys.stderr)
        return 130
    print(f"Run directory: {run_dir}")
    print(f"Test negative ELBO {metrics['test_neg_elbo']:.2f} nats "
          f"(reconstruction {metrics['test_reconstruction_loss']:.2f}, KL {metrics['test_kl_loss']:.2f}); "
          f"importance-weighted NLL ({args.iw_samples} samples) {metrics['test_nll_iw']:.2f} nats")
    return 0


def _evaluate(args):
    from . import run_directory

    run_directory.read_config(args.run_dir)  # "no such folder" / "not a run yet", before TensorFlow loads
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
    _require_file(args.roster, "roster")
    from .course.assign import assign_command

    return assign_command(args.roster, args.out, key_path=args.key, dataset=args.dataset, epochs=args.epochs,
                          notebook=args.notebook, train_images=args.train_images, exercises=args.exercises,
                          id_column=args.id_column)


def _grade(args):
    for path in args.submissions:
        _require_file(path, "hand-in", folder_ok=True)
    if args.assignments is not None:
        _require_file(args.assignments, "assignments file")
    from .course.grade import GradingOptions, grade_command

    names = {field.name for field in dataclasses.fields(GradingOptions)}
    options = GradingOptions(**{name: getattr(args, name) for name in names if hasattr(args, name)})
    return grade_command(dataclasses.replace(options, submissions=tuple(args.submissions),
                                             exports=tuple(args.exports or ())))


def _require_file(path, what, folder_ok=False):
    """One line for a missing file, before any heavy import."""
    path = Path(path)
    if not path.exists():
        raise LabError(f"no such {what}: {path}")
    if path.is_dir() and not folder_ok:
        raise LabError(f"{path} is a folder; the {what} is a file")


COMMANDS = {"train": _train, "evaluate": _evaluate, "report": _report, "lab": _lab, "assign": _assign,
            "grade": _grade}


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser: its usage line, and the nearest of its own flags
        command = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        command.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with _console_reader_may_leave():
            return COMMANDS[args.command](args)
    except LabError as error:  # a mistake the user can fix: one line, no traceback
        if args.debug:
            raise
        print(f"vae-lab {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C is the user's own choice: no traceback either
        if args.debug:
            raise
        print(f"\nvae-lab {args.command}: interrupted. {INTERRUPTED.get(args.command, '')}".rstrip(), file=sys.stderr)
        return 130


class _QuietWhenReaderLeaves:
    """Standard output that goes quiet when its reader has gone (`vae-lab grade … | head`), so the command
    still finishes its work and writes its files instead of dying on the first line `head` did not read."""

    def __init__(self, stream):
        self._stream = stream

    def _quietly(self, action, *args):
        try:
            return action(*args)
        except BrokenPipeError:  # the reader closed the pipe: what is still buffered or to come goes nowhere
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            return None

    def write(self, text):
        self._quietly(self._stream.write, text)
        return len(text)

    def flush(self):
        self._quietly(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _console_reader_may_leave():
    stream = sys.stdout
    sys.stdout = _QuietWhenReaderLeaves(stream)
    try:
        yield
    finally:
        sys.stdout = stream


# What is kept when a command is interrupted: every file is written whole or not at all (atomic.py).
INTERRUPTED = {
    "grade": "The reference runs already finished are in the cache: the same command goes on from there.",
    "lab": "Run it again to start the notebook over; the files it had finished are whole.",
    "train": "Checkpoints of finished epochs are kept: the same command with --resume goes on from the last one.",
}


if __name__ == "__main__":
    sys.exit(main())
