"""Train the VAE from one small config, into a run directory with a checkpoint after every epoch.

`train` is the front door (notebook, CLI). `Trainer` is the loop it runs: a model with its two
compiled epoch programs, which a grader's worker keeps between students (`cached_trainer`), putting
the model back to a fresh model's exact state in place, so the XLA programs compile once per worker.
"""

import collections
import dataclasses
import math
import secrets
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import run_directory
from .backend import Quiet, as_tensor, keras, ops, tf
from .config import ConfigError, TrainConfig
from .data import IMAGE_SIZE, load_dataset
from .errors import DataError, LabError
from .epoch_program import compile_epoch_programs, epoch_means, in_batches
from .model import PACKAGE_FUNCTIONS, VAE, initializer_seeds
from .record_format import format_epoch_line

# Images per validation batch: 10,000 test images in 10 equal batches.
VALIDATION_BATCH_SIZE = 1000
# Trainers a process keeps (`cached_trainer`): one per configuration shape a grading meets.
TRAINERS_KEPT = 4


class TrainingDiverged(LabError, RuntimeError):
    """The loss became NaN or infinite."""


def set_seed(seed):
    """Seed Python, NumPy and the backend in one place, first thing in every front door."""
    keras.utils.set_random_seed(int(seed))


def check_images(x, name="images"):
    """Refuse input a Bernoulli decoder cannot model: not finite, or outside [0, 1]."""
    x = np.asarray(x)
    if x.ndim != 2 or x.size == 0:
        raise DataError(f"{name} must be a non-empty (N, 784) array, got shape {x.shape}")
    low, high = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{name} hold NaN or infinite values")
    if low < 0.0 or high > 1.0:
        raise DataError(f"{name} must be pixel intensities in [0, 1], found [{low:g}, {high:g}]; "
                         "divide 8-bit images by 255")


def build_model(config, functions=None):
    """A fresh VAE with its Adam optimizer (compiled, so `model.keras` saves the optimizer too).

    `functions` (a `model.LossFunctions`) replace the package's reparameterization, KL and
    reconstruction terms in training; None means the package's own."""
    model = VAE(latent_dim=config.latent_dim, seed=config.seed, functions=functions)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    return model


def epoch_order(seed, epoch, count):
    """The shuffle of one epoch, a function of (seed, epoch) alone, so a resumed run sees the same."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def reset_to_seed(model, seed):
    """Put a built, compiled VAE in place into exactly the state `build_model` gives for `seed`.

    The same GlorotUniform kernels (seeded from the model's own draws) and zero biases, Adam's
    moments and step count at zero, the seed generator at its start, the trackers empty. In place:
    programs compiled for the model (`compile_epoch_programs`, evaluation's) stay valid.
    """
    layers = [*model.encoder.layers, *model.decoder.layers]
    for layer, layer_seed in zip(layers, initializer_seeds(seed, len(layers)), strict=True):
        layer.kernel_initializer = keras.initializers.GlorotUniform(seed=layer_seed)
        layer.kernel.assign(layer.kernel_initializer(layer.kernel.shape, layer.kernel.dtype))
        layer.bias.assign(ops.zeros(layer.bias.shape, layer.bias.dtype))
    learning_rate = model.optimizer.learning_rate  # the one setting among Adam's variables: kept
    for variable in model.optimizer.variables:
        if variable is not learning_rate:
            variable.assign(ops.zeros(variable.shape, variable.dtype))
    model.seed_generator.state.assign(keras.random.SeedGenerator(seed).state.value)
    model.seed = seed
    model.reset_metrics()


class Trainer:
    """A model and its compiled epoch programs: the training loop of `train` and of the grader.

    `reset(seed)` makes the model a fresh one for another seed without compiling anything again.
    Hold `lock` while using a shared trainer (`cached_trainer`).
    """

    def __init__(self, model):
        self.model = model
        # Adam's variables made now, not inside the first trace, which TensorFlow would then trace again
        model.optimizer.build(model.trainable_variables)
        self.train_epoch, self.validation_epoch = compile_epoch_programs(model)
        self.lock = threading.Lock()
        self._tensors = None  # (x_train, x_test, their tensors): see `tensors`

    def reset(self, seed):
        reset_to_seed(self.model, seed)

    def tensors(self, x_train, x_test):
        """The images checked (`check_images`) and as tensors. Read-only arrays (a worker's cached data,
        `array.setflags(write=False)`) are kept with their tensors: the same arrays again are neither
        checked nor copied again, which saves a 190 MB copy per run on full MNIST."""
        read_only = all(isinstance(x, np.ndarray) and not x.flags.writeable for x in (x_train, x_test))
        kept = self._tensors
        if read_only and kept and kept[0] is x_train and kept[1] is x_test:
            return kept[2]
        check_images(x_train, "training images")
        check_images(x_test, "test images")
        tensors = ops.convert_to_tensor(x_train), ops.convert_to_tensor(x_test)
        self._tensors = (x_train, x_test, tensors) if read_only else None
        return tensors

    def run_epochs(self, config, x_train, x_test, history, timing, *, verbose=0, before_epoch=None,
                   after_epoch=None):
        """Train from epoch `len(history['loss'])` to `config.epochs`, appending to `history` and
        `timing['epoch_seconds']`; `before_epoch(epoch, model)` and `after_epoch()` around each epoch.
        The images are arrays already checked, or the tensors of `tensors`."""
        model = self.model
        x_train, x_test = as_tensor(x_train), as_tensor(x_test)  # once, not per epoch; shared, not copied, if it can
        steps = math.ceil(x_train.shape[0] / config.batch_size)
        validation_batches = in_batches(np.arange(x_test.shape[0]), min(VALIDATION_BATCH_SIZE, x_test.shape[0]))
        timing["steps_per_epoch"] = steps  # so a reader can tell how many epochs the saved model has
        for epoch in range(len(history.get("loss", [])), config.epochs):
            if before_epoch:
                before_epoch(epoch, model)
            began = time.perf_counter()
            order = epoch_order(config.seed, epoch, x_train.shape[0])
            model.reset_metrics()
            steps_run = int(self.train_epoch(x_train, *in_batches(order, config.batch_size)))
            logs = epoch_means(model)
            if not all(math.isfinite(value) for value in logs.values()):
                raise _diverged(model, epoch, f"in epoch {epoch + 1}, at batch {steps_run} of {steps}")
            model.reset_metrics()
            self.validation_epoch(x_test, *validation_batches)
            logs.update({"val_" + key: value for key, value in epoch_means(model).items()})
            if not all(math.isfinite(value) for value in logs.values()):  # the epoch's last step did it
                raise _diverged(model, epoch, f"on the test set after epoch {epoch + 1}")
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            timing.setdefault("epoch_seconds", []).append(time.perf_counter() - began)
            if verbose:
                print(format_epoch_line(epoch + 1, config.epochs, timing["epoch_seconds"][-1], logs), flush=True)
            if after_epoch:
                after_epoch()
        return history


def _diverged(model, epoch, where):
    """TrainingDiverged naming the likely causes: the student's own functions first, when they trained with them."""
    own = [name for name in ("reparameterize", "kl_divergence", "reconstruction_loss")
           if getattr(model.functions, name, None) is not getattr(PACKAGE_FUNCTIONS, name)]
    causes = (f"your {', '.join(own)} (vae_lab.check_exercise on each says whether it is right)" if own else
              "a learning rate too high for this model (the lab uses 1e-3), or input not scaled to [0, 1]")
    kept = ("The last finished epoch's model is still in the run directory." if epoch
            else "No epoch finished, so no model was kept.")
    return TrainingDiverged(f"the loss became NaN or infinite {where}. Likely causes: {causes}. {kept}")


def train(config=None, run_dir=None, *, data=None, data_dir=None, resume=False, overwrite=False,
          verbose=1, before_epoch=None, functions=None):
    """Train a VAE; return `(model, history)` with history as {Keras-style key: list per epoch}.

    With `run_dir`, writes config.json first, then after each epoch history.json and model.keras,
    so an interruption leaves the last finished epoch loadable and resumable.
    `before_epoch(epoch, model)`, if given, is called before each epoch (tests use it).
    `functions` (a `model.LossFunctions`): the student's own terms to train with (None: the
    package's); model.keras does not hold them, so a resumed run needs them passed again.
    """
    config = (config or TrainConfig()).checked()
    if functions is not None:
        refuse_stale_functions(functions)
        check_functions_run(functions, config.latent_dim)  # before anything is written or any seed is set
    run_dir = Path(run_dir) if run_dir is not None else None
    if data is not None:  # images given are checked before the run folder is made
        _check_split_images(data)
    resuming = run_directory.prepare(run_dir, config, resume=resume, overwrite=overwrite) if run_dir else False
    if data is None:
        data = load_dataset(config.dataset, data_dir)
        _check_split_images(data)
    (x_train, _), (x_test, _) = data

    set_seed(config.seed)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    if resuming:
        model, history, timing = run_directory.load_checkpoint(run_dir, steps_per_epoch)
        done = len(history.get("loss", []))
        if config.epochs < done:
            raise run_directory.RunDirectoryError(f"{run_dir} holds {done} trained epochs: resume with --epochs "
                                                  f"{done} or more (or train afresh with --overwrite)")
        model.functions = functions or PACKAGE_FUNCTIONS
        run_directory.remove(run_dir, run_directory.OUTPUTS)  # the earlier model's metrics, figures and report
        run_directory.write_json(run_dir / run_directory.CONFIG, config.as_dict(), indent=2)
    else:
        model, history, timing = build_model(config, functions), {}, {}
        if run_dir:
            run_directory.start_fresh(run_dir, config)
    # one token per run, on the model and in its folder: a figure of an older model of this kernel is never
    # kept as this run's (a training cell run again and interrupted leaves the older `model` in memory)
    timing["run"] = model.run_token = timing.get("run") or secrets.token_hex(8)
    timing["steps_per_epoch"] = steps_per_epoch
    if run_dir:  # at once, not with the first epoch: a resume with no epoch left to train has its token too
        run_directory.write_json(run_dir / run_directory.TIMING, timing, indent=None)
    save = (lambda: run_directory.save_epoch(run_dir, model, history, timing)) if run_dir else None
    Trainer(model).run_epochs(config, x_train, x_test, history, timing, verbose=verbose,
                              before_epoch=before_epoch, after_epoch=save)
    return model, history


def _check_split_images(data):
    (x_train, _), (x_test, _) = data
    check_images(x_train, "training images")
    check_images(x_test, "test images")


def refuse_stale_functions(functions, namespace=None):
    """ConfigError when a function in FUNCTIONS is not the one the notebook's NAMESPACE (the kernel's, by
    default) now holds under its name: its exercise cell was run again, fixed, after `functions` was made,
    and training would silently use the earlier version."""
    if namespace is None:
        main = sys.modules.get("__main__")
        namespace = getattr(main, "__dict__", {})
    for name in (field.name for field in dataclasses.fields(functions)):
        given, current = getattr(functions, name), namespace.get(name)
        if (given is not None and current is not given and callable(current)
                and getattr(current, "__module__", None) == "__main__" and getattr(given, "__name__", None) == name
                and getattr(given, "__module__", None) == "__main__"):
            raise ConfigError(f"{name}'s cell was run again after `functions` was made, so training would use "
                              f"the earlier {name}: run the cell that makes `functions` again (just above), "
                              "then this cell")


def check_functions_run(functions, latent_dim):
    """Call each of the student's functions in FUNCTIONS (a `model.LossFunctions`) on a small batch, eagerly and
    then compiled as the training step compiles it: a function still unwritten, one that raises, returns
    nothing, returns the wrong shape or type, or works only outside the compiled step (NumPy calls) is one
    sentence (ConfigError) before training instead of a long traceback from inside the compiled step."""
    batch = latent_dim + 1  # a batch as wide as the latent space would hide a sum over the wrong axis
    z = tf.zeros((batch, latent_dim))
    pixels = tf.fill((batch, IMAGE_SIZE), 0.5)
    for name, arguments, shape in (("reparameterize", (z, z, z), (batch, latent_dim)),
                                   ("kl_divergence", (z, z), (batch,)),
                                   ("reconstruction_loss", (pixels, pixels), (batch,))):
        function = getattr(functions, name)
        if function is None or function is getattr(PACKAGE_FUNCTIONS, name):
            continue
        where = f"vae_lab.check_exercise({name}) says what to change"
        try:
            value = function(*arguments)
        except NotImplementedError:
            raise ConfigError(f"{name} is not written yet (it raises NotImplementedError): write it and run its "
                              "cell, then run the cell that makes `functions` again, which keeps the function as "
                              "it was when that cell ran") from None
        except Exception as error:  # the student's code can raise anything: one line, and where to look
            raise ConfigError(f"{name} raises {type(error).__name__}: {_first_line(error)}; {where}") from None
        if value is None:
            raise ConfigError(f"{name} returns nothing: end it with `return …`; {where}")
        dtype = str(getattr(getattr(value, "dtype", None), "name", type(value).__name__))
        if dtype != "float32" or tuple(getattr(value, "shape", ())) != shape:
            raise ConfigError(f"{name} gives {dtype} of shape {tuple(getattr(value, 'shape', ()))} for a batch of "
                              f"{batch}, where training needs float32 of shape {shape}; {where}")
        try:
            Quiet(tf.function(function, jit_compile=True))(*arguments)  # AutoGraph on, as in the epoch program
        except Exception as error:  # e.g. NumPy calls, which run on values but not inside a compiled program
            raise ConfigError(f"{name} works on its own but not inside the compiled training step "
                              f"({type(error).__name__}: {_first_line(error)}); use keras.ops or tf, not NumPy; "
                              f"{where}") from None


def _first_line(error):
    return (str(error).strip().splitlines() or [""])[0][:160]


_TRAINERS = collections.OrderedDict()
_TRAINERS_LOCK = threading.Lock()


def trainer_key(config, train_images, test_images, functions=None):
    """What a compiled trainer depends on: the config less its seed and epochs, the data's sizes, the functions."""
    shape = config.as_dict() | {"seed": None, "epochs": None}
    return (tuple(sorted(shape.items())), int(train_images), int(test_images), functions or PACKAGE_FUNCTIONS)


def cached_trainer(config, train_images, test_images, functions=None):
    """This process's trainer for the configuration's shape, built and compiled on first use.

    The last `TRAINERS_KEPT` shapes stay, so a grader's worker compiles once for a class.
    """
    key = trainer_key(config, train_images, test_images, functions)
    with _TRAINERS_LOCK:
        trainer = _TRAINERS.get(key)
        if trainer is None:
            trainer = _TRAINERS[key] = Trainer(build_model(config, functions))
            while len(_TRAINERS) > TRAINERS_KEPT:
                _TRAINERS.popitem(last=False)
        _TRAINERS.move_to_end(key)
        return trainer


def reference_history_and_metrics(config, data, *, iw_samples, evaluation_seed, elbo_draws=1, functions=None):
    """`(history, metrics)` of one run of `config` on `data`, as a lab record prints them, with no run
    directory: no checkpoints, no model saved or loaded.

    The history equals `train(config, run_dir, data=data)`'s and the metrics equal what
    `evaluate_run(run_dir, iw_samples=..., elbo_draws=..., seed=evaluation_seed, data=data)` writes to
    metrics.json, bit for bit, less `versions`; `train_seconds` and `evaluation_seconds` are this
    run's own. Runs on this process's cached trainer (`cached_trainer`): compiled once per shape.
    """
    from .evaluation import evaluate, metrics_record

    config = config.checked()
    (x_train, _), (x_test, _) = data
    trainer = cached_trainer(config, len(x_train), len(x_test), functions)
    with trainer.lock:
        train_tensor, test_tensor = trainer.tensors(x_train, x_test)
        set_seed(config.seed)
        trainer.reset(config.seed)
        history, timing = {}, {}
        trainer.run_epochs(config, train_tensor, test_tensor, history, timing)
        began = time.perf_counter()
        result = evaluate(trainer.model, x_test, elbo_draws=elbo_draws, iw_samples=iw_samples, seed=evaluation_seed)
        evaluation_seconds = time.perf_counter() - began
    metrics = metrics_record(result, config, history, iw_samples=iw_samples, elbo_draws=elbo_draws,
                             seed=evaluation_seed)
    metrics.update(train_seconds=round(sum(timing["epoch_seconds"]), 2),
                   evaluation_seconds=round(evaluation_seconds, 2))
    return history, metrics
