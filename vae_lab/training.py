"""Train the VAE from one small config, into a run directory with a checkpoint after every epoch."""

import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from . import run_directory
from .config import TrainConfig
from .data import load_dataset
from .epoch_program import compile_epoch_programs, epoch_means, in_batches
from .model import VAE

# Images per validation batch: 10,000 test images in 10 equal batches.
VALIDATION_BATCH_SIZE = 1000


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


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
    """A fresh VAE with its Adam optimizer (compiled, so `model.keras` saves the optimizer too)."""
    model = VAE(latent_dim=config.latent_dim, seed=config.seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    return model


def epoch_order(seed, epoch, count):
    """The shuffle of one epoch, a function of (seed, epoch) alone, so a resumed run sees the same."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def _print_epoch(epoch, epochs, seconds, logs):
    print(f"Epoch {epoch + 1}/{epochs}  {seconds:.1f} s  " + "  ".join(
        f"{key} {value:.2f}" for key, value in logs.items()), flush=True)


def train(config=None, run_dir=None, *, data=None, data_dir=None, resume=False, overwrite=False,
          verbose=1, before_epoch=None):
    """Train a VAE; return `(model, history)` with history as {Keras-style key: list per epoch}.

    With `run_dir`, writes config.json first, then after each epoch history.json and model.keras,
    so an interruption leaves the last finished epoch loadable and resumable.
    `before_epoch(epoch, model)`, if given, is called before each epoch (tests use it).
    """
    config = (config or TrainConfig()).checked()
    run_dir = Path(run_dir) if run_dir is not None else None
    resuming = run_directory.prepare(run_dir, config, resume=resume, overwrite=overwrite) if run_dir else False
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    (x_train, _), (x_test, _) = data
    check_images(x_train, "training images")
    check_images(x_test, "test images")

    set_seed(config.seed)
    steps = math.ceil(len(x_train) / config.batch_size)
    if resuming:
        model, history, timing = run_directory.load_checkpoint(run_dir, steps)
        run_directory.write_json(run_dir / run_directory.CONFIG, config.as_dict(), indent=2)
    else:
        model, history, timing = build_model(config), {}, {}
        if run_dir:
            run_directory.start_fresh(run_dir, config)
    train_epoch, validation_epoch = compile_epoch_programs(model)
    x_train, x_test = ops.convert_to_tensor(x_train), ops.convert_to_tensor(x_test)  # copied once, not per epoch
    validation_batches = in_batches(np.arange(len(x_test)), min(VALIDATION_BATCH_SIZE, len(x_test)))
    for epoch in range(len(history.get("loss", [])), config.epochs):
        if before_epoch:
            before_epoch(epoch, model)
        began = time.perf_counter()
        order = epoch_order(config.seed, epoch, len(x_train))
        model.reset_metrics()
        steps_run = int(train_epoch(x_train, *in_batches(order, config.batch_size)))
        logs = epoch_means(model)
        if not all(math.isfinite(value) for value in logs.values()):
            raise TrainingDiverged(
                f"the loss became NaN or infinite in epoch {epoch + 1}, at batch {steps_run} of {steps}. "
                "Likely causes: a learning rate too high for this model (the lab uses 1e-3), or input not "
                "scaled to [0, 1]. The last finished epoch's model is still in the run directory.")
        model.reset_metrics()
        validation_epoch(x_test, *validation_batches)
        logs.update({"val_" + key: value for key, value in epoch_means(model).items()})
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        timing.setdefault("epoch_seconds", []).append(time.perf_counter() - began)
        if verbose:
            _print_epoch(epoch, config.epochs, timing["epoch_seconds"][-1], logs)
        if run_dir:
            run_directory.save_epoch(run_dir, model, history, timing)
    return model, history
