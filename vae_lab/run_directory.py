"""A run directory: what one training run leaves on disk, and the rules for reusing or resuming it.

Every file is written to a temporary name and then renamed, so a kill leaves the old file or the
new one, never half of one. Nothing here imports TensorFlow until a model is saved or loaded.
"""

import json
import os
import platform
from pathlib import Path

from .config import TrainConfig
from .errors import NoTrainedModel

CONFIG = "config.json"
HISTORY = "history.json"
TIMING = "timing.json"
METRICS = "metrics.json"
MODEL = "model.keras"
TRAINING_FILES = (MODEL, HISTORY, TIMING, METRICS)  # replaced by a fresh start

# The test-set metrics that `evaluation.evaluate_run` writes, with the words a table uses for them.
METRIC_LABELS = {
    "test_neg_elbo": "Negative ELBO (loss)",
    "test_reconstruction_loss": "Reconstruction term",
    "test_kl_loss": "KL term",
    "test_nll_iw": "Importance-weighted NLL",
}
METRIC_KEYS = (*METRIC_LABELS, "final_val_loss")
HISTORY_KEYS = ("loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss", "val_kl_loss")


class RunDirectoryError(ValueError):
    """A run directory holds another run, cannot be resumed, or cannot be written."""


def atomic_write_text(path, text):
    """Write `text` to `path` through a temporary name and a rename."""
    path = Path(path)
    temporary = path.with_name(path.name + ".partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path, value, indent=1):
    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_model(model, path):
    """`model.save` through a temporary name (Keras insists on the .keras suffix, so it goes in front)."""
    path = Path(path)
    temporary = path.with_name("partial-" + path.name)
    model.save(temporary)
    os.replace(temporary, path)


def load_model(path):
    """Load a saved VAE (importing `vae_lab.model` registers the class with Keras)."""
    import keras

    from . import model  # noqa: F401  (registers the VAE class with Keras)

    return keras.models.load_model(path)


def read_config(run_dir):
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise NoTrainedModel(f"{run_dir} holds no run (no {CONFIG}): train first (vae-lab train --out {run_dir})")
    return TrainConfig.from_dict(read_json(path))


def make_writable(run_dir):
    """Create `run_dir`, or raise one sentence naming the path and what is wrong with it."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is a file, not a directory: choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test.partial"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise RunDirectoryError(f"cannot write the run directory {run_dir}: {reason}") from None
    return run_dir


def prepare(run_dir, config, *, resume=False, overwrite=False):
    """Create `run_dir` or check that it holds this run; return True when there is a model to resume.

    A fresh start removes an older run's files, so a new config never sits beside an old checkpoint.
    """
    run_dir = make_writable(run_dir)
    config_path = run_dir / CONFIG
    if not config_path.exists():
        if resume:
            raise RunDirectoryError(f"{run_dir} holds no run to resume (no {CONFIG})")
        return False
    old = TrainConfig.from_dict(read_json(config_path))
    same_run = old.as_dict() | {"epochs": 0} == config.as_dict() | {"epochs": 0}
    if resume and not same_run:
        raise RunDirectoryError(f"{run_dir} holds a run with another config ({old.as_dict()}); "
                                "resume with the same flags, changing only --epochs")
    if not resume and not (same_run and old.epochs == config.epochs) and not overwrite:
        raise RunDirectoryError(f"{run_dir} holds a run with another config ({old.as_dict()}); "
                                "choose another --out, or pass --overwrite to replace it")
    return resume and (run_dir / MODEL).exists()


def start_fresh(run_dir, config):
    """Remove an older run's training files and write this run's config."""
    for name in TRAINING_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)
    write_json(Path(run_dir) / CONFIG, config.as_dict(), indent=2)


def save_epoch(run_dir, model, history, timing):
    """The checkpoint after one epoch; history first, so the model is never ahead of it."""
    run_dir = Path(run_dir)
    write_json(run_dir / HISTORY, history)
    save_model(model, run_dir / MODEL)
    write_json(run_dir / TIMING, timing, indent=None)


def load_checkpoint(run_dir, steps_per_epoch):
    """The last finished epoch's model, with its history and timing cut to match it."""
    run_dir = Path(run_dir)
    model = load_model(run_dir / MODEL)
    # history.json is written before model.keras, so it may be one epoch ahead: trust the model.
    done = int(model.optimizer.iterations.numpy()) // steps_per_epoch
    records = []
    for name in (HISTORY, TIMING):
        path = run_dir / name
        values = read_json(path) if path.exists() else {}
        records.append({key: column[:done] for key, column in values.items()})
    return model, *records


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
    import keras
    import numpy
    import tensorflow

    from . import __version__

    return {"vae_lab": __version__, "python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "machine": f"{_processor_name()}, {os.cpu_count()} CPUs", "platform": platform.platform()}
