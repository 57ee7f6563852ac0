"""Train the VAE from one small config into a run directory, one checkpoint per epoch."""

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import keras
import numpy as np

from .data import DATASETS, load_dataset
from .model import VAE

# Speed settings, measured with benchmarks/bench_train.py on a 2-core CPU (README, Performance):
# XLA fuses Adam and the element-wise work into the matmuls; 16 steps per call cut the Python
# overhead per batch. Losses are then checked for NaN every 16 batches. One validation batch size
# that divides 10,000 saves an XLA compile.
JIT_COMPILE = True
STEPS_PER_EXECUTION = 16
VALIDATION_BATCH_SIZE = 1000


@dataclass
class TrainConfig:
    """The lab's hyperparameters; each field is a `vae-lab train` flag."""

    dataset: str = "mnist"
    latent_dim: int = 2
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self):
        """Raise ValueError for values no run could use."""
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, not {self.dataset!r}")
        for name in ("latent_dim", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, not {self.learning_rate}")
        return self

    @classmethod
    def from_dict(cls, values):
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


RUN_FILES = ("model.keras", "history.json", "timing.json", "metrics.json")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class RunDirectoryError(ValueError):
    """A run directory holds another run, or cannot be resumed."""


def set_seed(seed):
    """Seed Python, NumPy and the backend in one place, first thing in every front door."""
    keras.utils.set_random_seed(int(seed))


def check_images(x, name="images"):
    """Refuse input a Bernoulli decoder cannot model: not finite, or outside [0, 1]."""
    x = np.asarray(x)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty (N, 784) array, got shape {x.shape}")
    low, high = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} hold NaN or infinite values")
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must be pixel intensities in [0, 1], found [{low:g}, {high:g}]; "
                         "divide 8-bit images by 255")


def build_model(config):
    """A fresh, compiled VAE for `config`."""
    model = VAE(latent_dim=config.latent_dim, seed=config.seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  jit_compile=JIT_COMPILE, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def epoch_order(seed, epoch, count):
    """The shuffle of one epoch, a function of (seed, epoch) alone, so a resumed run sees the same."""
    return np.random.default_rng([seed, epoch]).permutation(count)


class _Progress(keras.callbacks.Callback):
    """Per-epoch progress bar and a NaN guard that stops on the first bad batch."""

    def __init__(self, epoch, epochs, steps, verbose):
        super().__init__()
        self.epoch, self.epochs, self.steps, self.verbose = epoch, epochs, steps, verbose
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose:
            print(f"Epoch {self.epoch + 1}/{self.epochs}")
            self.bar = keras.utils.Progbar(self.steps, interval=1.0,  # few redraws: a small notebook
                                           stateful_metrics=["loss", "reconstruction_loss", "kl_loss"])

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} in epoch {self.epoch + 1}, by batch {batch + 1}. Likely causes: a "
                "learning rate too high for this model (the lab uses 1e-3), or input not scaled to [0, 1]. "
                "The last finished epoch's model is still in the run directory.")
        if self.bar is not None:
            self.bar.update(batch + 1, [(key, float(value)) for key, value in logs.items()])

    def on_epoch_end(self, epoch, logs=None):
        bad = {key: value for key, value in logs.items() if not math.isfinite(float(value))}
        if bad:
            raise TrainingDiverged(f"{', '.join(bad)} became non-finite at the end of epoch {self.epoch + 1}")
        if self.bar is not None:
            self.bar.update(self.steps, [(key, float(value)) for key, value in logs.items()], finalize=True)


def atomic_write_text(path, text):
    """Write to a temporary name, then rename: a kill leaves the old file or the new, never half."""
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def _atomic_save_model(model, path):
    temporary = path.with_name("partial-" + path.name)  # Keras insists on the .keras suffix
    model.save(temporary)
    os.replace(temporary, path)


def read_json(path):
    return json.loads(Path(path).read_text())


def _check_run_directory(config, run_dir, resume, overwrite):
    """Create `run_dir` or check that it holds this run; return True when there is one to resume."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        if resume:
            raise RunDirectoryError(f"{run_dir} holds no run to resume (no config.json)")
        return False
    old = TrainConfig.from_dict(read_json(config_path))
    same_run = asdict(old) | {"epochs": 0} == asdict(config) | {"epochs": 0}
    if resume and not same_run:
        raise RunDirectoryError(f"{run_dir} holds a run with another config ({asdict(old)}); "
                                "resume with the same flags, changing only --epochs")
    if not resume and not (same_run and old.epochs == config.epochs) and not overwrite:
        raise RunDirectoryError(f"{run_dir} holds a run with another config ({asdict(old)}); "
                                "choose another --out, or pass --overwrite to replace it")
    return resume and (run_dir / "model.keras").exists()


def _load_checkpoint(run_dir, steps):
    """The last finished epoch's model, with history and timing cut to match it."""
    model = keras.models.load_model(run_dir / "model.keras")
    # history.json is written before model.keras, so it may be one epoch ahead: trust the model.
    done = int(model.optimizer.iterations.numpy()) // steps
    records = []
    for name in ("history.json", "timing.json"):
        path = run_dir / name
        values = read_json(path) if path.exists() else {}
        records.append({key: column[:done] for key, column in values.items()})
    return model, *records


def train(config=None, run_dir=None, *, data=None, data_dir=None, resume=False, overwrite=False,
          verbose=1, callbacks=()):
    """Train a VAE; return `(model, history)` with history as {Keras key: list per epoch}.

    With `run_dir`, writes config.json first, then after each epoch history.json and model.keras
    (each atomically), so an interruption leaves the last finished epoch loadable and resumable.
    """
    config = (config or TrainConfig()).validate()
    run_dir = Path(run_dir) if run_dir is not None else None
    resuming = _check_run_directory(config, run_dir, resume, overwrite) if run_dir else False
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    (x_train, _), (x_test, _) = data
    check_images(x_train, "training images")
    check_images(x_test, "test images")

    set_seed(config.seed)
    steps = math.ceil(len(x_train) / config.batch_size)
    if resuming:
        model, history, timing = _load_checkpoint(run_dir, steps)
    else:
        model, history, timing = build_model(config), {}, {}
        if run_dir:  # a fresh start: never leave an older run's checkpoint beside the new config
            for name in RUN_FILES:
                (run_dir / name).unlink(missing_ok=True)
    if run_dir:
        atomic_write_text(run_dir / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    for epoch in range(len(history.get("loss", [])), config.epochs):
        began = time.perf_counter()
        order = epoch_order(config.seed, epoch, len(x_train))
        progress = _Progress(epoch, config.epochs, steps, verbose)
        logs = model.fit(x_train[order], batch_size=config.batch_size, epochs=epoch + 1,
                         initial_epoch=epoch, shuffle=False, validation_data=(x_test,),
                         validation_batch_size=VALIDATION_BATCH_SIZE, verbose=0, callbacks=[progress, *callbacks]).history
        for key, values in logs.items():
            history.setdefault(key, []).extend(float(value) for value in values)
        timing.setdefault("epoch_seconds", []).append(time.perf_counter() - began)
        if run_dir:
            atomic_write_text(run_dir / "history.json", json.dumps(history, indent=1) + "\n")
            _atomic_save_model(model, run_dir / "model.keras")
            atomic_write_text(run_dir / "timing.json", json.dumps(timing) + "\n")
    return model, history
