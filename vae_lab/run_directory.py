"""A run directory: what one training run leaves on disk, and the rules for reusing or resuming it.

Every file is written to a temporary name and then renamed, so a kill leaves the old file or the
new one, never half of one. Nothing here imports TensorFlow until a model is saved or loaded.
"""

import json
import os
import platform
from pathlib import Path

from .atomic import atomic_path, atomic_write_text
from .config import TrainConfig
from .errors import LabError, NoTrainedModel
from .record_format import LAB_FIGURES

CONFIG = "config.json"
HISTORY = "history.json"
TIMING = "timing.json"
METRICS = "metrics.json"
MODEL = "model.keras"
REPORT = "report.html"
# What a finished run's model gives: removed when training starts again or resumes, so an older model's
# figures, metrics or report never pass for this one's.
OUTPUTS = (METRICS, REPORT, *(figure.file for figure in LAB_FIGURES.values()))
# Replaced by a fresh start.
TRAINING_FILES = (MODEL, HISTORY, TIMING, *OUTPUTS)



class RunDirectoryError(LabError, ValueError):
    """A run directory holds another run, cannot be resumed, or cannot be written."""


def write_json(path, value, indent=1):
    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_model(model, path):
    """`model.save` through a temporary name and a rename."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def load_model(path):
    """Load a saved VAE (importing `vae_lab.model` registers the class with Keras)."""
    from . import model  # registers the VAE class with Keras

    return model.keras.models.load_model(path)


_NOTEBOOK_RUN_DIRS = {}  # student_id -> this kernel's folder


def notebook_run_dir(student_id="lab"):
    """Where a notebook's run goes: $VAE_LAB_RUN_DIR (set by `vae-lab lab`), else a new folder
    runs/<student_id>-<date>-<time> beside the notebook, so no run replaces another's; the same folder again
    in the same kernel, so running the first cell again leaves the trained model and its folder together."""
    import time

    if os.environ.get("VAE_LAB_RUN_DIR"):
        return Path(os.environ["VAE_LAB_RUN_DIR"])
    if student_id in _NOTEBOOK_RUN_DIRS:
        return _NOTEBOOK_RUN_DIRS[student_id]
    stem = "".join(char if char.isalnum() or char in "._-" else "_" for char in str(student_id))[:64] or "lab"
    base = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir, number = base, 1
    while run_dir.exists():
        number += 1
        run_dir = base.with_name(f"{base.name}-{number}")
    _NOTEBOOK_RUN_DIRS[student_id] = run_dir
    return run_dir


def read_config(run_dir):
    """The run's TrainConfig; a missing folder and a folder that holds no run yet are told apart."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NoTrainedModel(f"no such run directory: {run_dir}" + (" (it is a file)" if run_dir.exists() else ""))
    path = run_dir / CONFIG
    if not path.exists():
        raise NoTrainedModel(f"{run_dir} is not a run yet (no {CONFIG}): train first (vae-lab train --out {run_dir})")
    return _config_in(path)


def _config_in(path):
    """The TrainConfig that PATH holds; one sentence naming the file when it holds none a run could use."""
    from .config import ConfigError

    try:
        return TrainConfig.from_dict(read_json(path))
    except (ConfigError, ValueError, TypeError) as error:
        raise RunDirectoryError(f"{path} holds no settings a run could use ({error}): train into another folder, "
                                "or pass --overwrite to replace that run") from None


def check_writable(run_dir):
    """Raise one sentence naming the path when RUN_DIR could not be a run directory; creates nothing."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is a file, not a directory: choose another --out")
    existing = next(folder for folder in (run_dir, *run_dir.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise RunDirectoryError(f"cannot write the run directory {run_dir}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"cannot write the run directory {run_dir}: {existing} is not writable")
    return run_dir


def make_writable(run_dir):
    """Create `run_dir`, or raise one sentence naming the path and what is wrong with it."""
    run_dir = check_writable(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "write-test") as probe:
            probe.write_bytes(b"")
        (run_dir / "write-test").unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise RunDirectoryError(f"cannot write the run directory {run_dir}: {reason}") from None
    return run_dir


def prepare(run_dir, config, *, resume=False, overwrite=False, create=True):
    """Check that `run_dir` is free or holds this run (creating it unless CREATE is False); return True when
    there is a model to resume. Names only the settings that differ, and suggests --resume where it applies.
    """
    run_dir = make_writable(run_dir) if create else check_writable(run_dir)
    config_path = run_dir / CONFIG
    if not config_path.exists():
        if resume:
            raise RunDirectoryError(f"{run_dir} holds no run to resume (no {CONFIG})")
        return False
    try:
        old = _config_in(config_path)
    except RunDirectoryError:
        if overwrite and not resume:  # settings no run could use are replaced like any others
            return False
        raise
    differences = old.differences(config)
    described = ", ".join(f"{name} {was} (now {now})" for name, (was, now) in differences.items())
    only_epochs = set(differences) == {"epochs"}
    if resume and set(differences) - {"epochs"}:
        raise RunDirectoryError(f"{run_dir} holds a run with other settings: {described}; resume with the same "
                                "flags, changing only --epochs")
    if not resume and differences and not overwrite:
        hint = (f"continue it with --resume --epochs {config.epochs}, " if only_epochs and config.epochs > old.epochs
                else "")
        raise RunDirectoryError(f"{run_dir} holds a run with other settings: {described}; {hint}choose another "
                                "--out, or pass --overwrite to replace it")
    return resume and (run_dir / MODEL).exists()


def start_fresh(run_dir, config):
    """Remove an older run's training files and write this run's config."""
    remove(run_dir, TRAINING_FILES)
    write_json(Path(run_dir) / CONFIG, config.as_dict(), indent=2)


def remove(run_dir, names):
    for name in names:
        (Path(run_dir) / name).unlink(missing_ok=True)


def save_epoch(run_dir, model, history, timing):
    """The checkpoint after one epoch; history first, so the model is never ahead of it."""
    run_dir = Path(run_dir)
    write_json(run_dir / HISTORY, history)
    save_model(model, run_dir / MODEL)
    write_json(run_dir / TIMING, timing, indent=None)


def load_checkpoint(run_dir, steps_per_epoch=None):
    """The last finished epoch's model, with its history and timing cut to match it."""
    run_dir = Path(run_dir)
    model = load_model(run_dir / MODEL)
    return (model, *_records_of(run_dir, model, steps_per_epoch))


def run_token(run_dir):
    """The token of the run RUN_DIR holds (`train` writes it as the run starts), or None."""
    path = Path(run_dir) / TIMING
    try:
        return read_json(path).get("run") if path.exists() else None
    except (OSError, ValueError, AttributeError):
        return None


def load_run(run_dir):
    """(model, history) of a run directory, the history cut to the epochs the model has (a kill between the
    two writes of a checkpoint leaves history.json one epoch ahead)."""
    model, history, _ = load_checkpoint(run_dir)
    return model, history


def _records_of(run_dir, model, steps_per_epoch):
    timing_path = run_dir / TIMING
    timing = read_json(timing_path) if timing_path.exists() else {}
    steps_per_epoch = steps_per_epoch or timing.get("steps_per_epoch")
    history = read_json(run_dir / HISTORY) if (run_dir / HISTORY).exists() else {}
    if not steps_per_epoch:  # a run an earlier release wrote: its history as it is
        return history, timing
    # history.json is written before model.keras, so it may be one epoch ahead: trust the model.
    done = int(model.optimizer.iterations.numpy()) // steps_per_epoch
    return [{key: column[:done] if isinstance(column, list) else column for key, column in values.items()}
            for values in (history, timing)]


def _processor_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_and_versions():
    """What a lab record states next to its numbers: the versions and the machine that made them."""
    import numpy

    from .backend import keras
    from .backend import tf as tensorflow

    from . import __version__

    return {"vae_lab": __version__, "python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "machine": f"{_processor_name()}, {os.cpu_count()} CPUs", "platform": platform.platform()}
