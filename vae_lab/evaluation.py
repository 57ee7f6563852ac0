"""Test-set metrics in nats per image: Monte-Carlo negative ELBO and the importance-weighted NLL."""

import math
import time
import weakref
from pathlib import Path

import numpy as np

from . import run_directory
from .backend import Quiet, keras, ops
from .config import DEFAULT_EVALUATION_SEED, DEFAULT_IW_SAMPLES, ConfigError
from .data import load_dataset
from .errors import NoTrainedModel, UnfinishedRun
from .model import kl_divergence, reconstruction_loss, reparameterize

LOG_2PI = math.log(2.0 * math.pi)
ROWS_PER_CHUNK = 8192  # decoder rows per call: bounds memory whatever iw_samples is


def log_density_terms(model, x, epsilon):
    """For z = mu + sigma*eps, return (log p(x|z), log p(z), log q(z|x)), each of shape (B, K).

    x is (B, 784) and epsilon (B, K, latent_dim): K draws of z per image.
    """
    z_mean, z_log_var = model.encode(x)
    return _terms_given_posterior(model, x, z_mean, z_log_var, epsilon)


def _log_mean_exp(values, axis):
    peak = np.max(values, axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.mean(np.exp(values - peak), axis=axis))


def batch_terms(model, x, elbo_epsilon, iw_epsilon):
    """One batch's evaluation terms from one pass of the encoder: KL per image (B,), log p(x|z) of the
    ELBO's draws (B, elbo_draws), and `log_density_terms` of the importance draws (each (B, K))."""
    z_mean, z_log_var = model.encode(x)
    log_px_z_elbo = _terms_given_posterior(model, x, z_mean, z_log_var, elbo_epsilon)[0]
    return (kl_divergence(z_mean, z_log_var), log_px_z_elbo,
            *_terms_given_posterior(model, x, z_mean, z_log_var, iw_epsilon))


def _terms_given_posterior(model, x, z_mean, z_log_var, epsilon):
    z = reparameterize(z_mean[:, None, :], z_log_var[:, None, :], epsilon)
    batch, draws = ops.shape(epsilon)[0], ops.shape(epsilon)[1]
    logits = ops.reshape(model.decoder(ops.reshape(z, (batch * draws, -1))), (batch, draws, -1))
    log_px_z = -reconstruction_loss(x[:, None, :], logits)
    log_pz = -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=-1)
    log_qz_x = -0.5 * ops.sum(ops.square(epsilon) + LOG_2PI + z_log_var[:, None, :], axis=-1)
    return log_px_z, log_pz, log_qz_x


def _compiled_programs(model):
    """`(batch_terms, log_density_terms)` for `model`, each one fused XLA program on TensorFlow.

    Built once per model and kept in a table keyed weakly by the model, so evaluating the same model
    again (a grader's reused trainer, a second `evaluate` call) compiles nothing; the programs reach
    the model through a weak reference, so they never keep it alive.
    """
    programs = _PROGRAMS.get(model)
    if programs is not None:
        return programs
    model_ref = weakref.ref(model)

    def batch(x, elbo_epsilon, iw_epsilon):
        return batch_terms(model_ref(), x, elbo_epsilon, iw_epsilon)

    def terms(x, epsilon):
        return log_density_terms(model_ref(), x, epsilon)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # plain tensor code: nothing for autograph to convert
        batch, terms = (Quiet(tf.function(function, jit_compile=True, autograph=False)) for function in (batch, terms))
    _PROGRAMS[model] = programs = (batch, terms)
    return programs


_PROGRAMS = weakref.WeakKeyDictionary()


def evaluate(model, x, *, elbo_draws=1, iw_samples=100, seed=DEFAULT_EVALUATION_SEED, progress=None):
    """Means over `x` of neg_elbo, reconstruction_loss, kl_loss (Monte Carlo over `elbo_draws` draws of z)
    and nll_iw, the importance-weighted bound on -log p(x) with `iw_samples` draws (Burda et al. 2016).

    With grey-level pixels the Bernoulli likelihood is not a normalised density, so these numbers
    compare only with other grey-level binary-cross-entropy numbers. `progress(done, total)`, if
    given, is called after each batch of images. The terms are the package's own (`model.py`),
    whatever functions the model was trained with: this is the measuring instrument.
    """
    if elbo_draws < 1 or iw_samples < 1:
        raise ConfigError("elbo_draws and iw_samples must be at least 1")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ConfigError("no images to evaluate: x is empty")
    batch_program, terms_program = _compiled_programs(model)
    # Images per batch and draws per decoder call, so that images * draws <= ROWS_PER_CHUNK.
    batch_size = max(1, min(1024, ROWS_PER_CHUNK // max(iw_samples, elbo_draws)))
    batch_size = min(batch_size, len(x))
    calls = math.ceil(iw_samples * batch_size / ROWS_PER_CHUNK)
    draws_per_call = math.ceil(iw_samples / calls)
    totals = {"reconstruction_loss": 0.0, "kl_loss": 0.0, "nll_iw": 0.0}
    for start in range(0, len(x), batch_size):
        images = x[start:start + batch_size]
        count = len(images)
        elbo_epsilon = rng.standard_normal((count, elbo_draws, model.latent_dim), dtype=np.float32)
        iw_epsilon = [rng.standard_normal((count, draws_per_call, model.latent_dim), dtype=np.float32)
                      for _ in range(calls)]
        # The last, short batch is padded to the full size, so one compiled shape serves every batch.
        padded = [_pad(array, batch_size) for array in (images, elbo_epsilon, iw_epsilon[0])]
        kl, log_px_z_elbo, *first = (np.asarray(value)[:count] for value in batch_program(*padded))
        log_weights = [_log_weights(*first)]
        for epsilon in iw_epsilon[1:]:
            values = terms_program(padded[0], _pad(epsilon, batch_size))
            log_weights.append(_log_weights(*(np.asarray(value)[:count] for value in values)))
        totals["kl_loss"] += float(np.sum(kl, dtype=np.float64))
        totals["reconstruction_loss"] -= float(np.sum(np.mean(log_px_z_elbo, axis=1, dtype=np.float64)))
        log_weights = np.concatenate(log_weights, axis=1)[:, :iw_samples]
        totals["nll_iw"] -= float(np.sum(_log_mean_exp(log_weights, axis=1)))
        if progress:
            progress(start + count, len(x))
    metrics = {key: value / len(x) for key, value in totals.items()}
    metrics["neg_elbo"] = metrics["reconstruction_loss"] + metrics["kl_loss"]
    return metrics


def _pad(array, rows):
    """`array` with zero rows appended up to `rows` (their results are dropped)."""
    missing = rows - len(array)
    return array if missing == 0 else np.concatenate([array, np.zeros((missing, *array.shape[1:]), array.dtype)])


def _log_weights(log_px_z, log_pz, log_qz_x):
    """log p(x|z) + log p(z) - log q(z|x) in float64, where the log-mean-exp is taken."""
    return log_px_z.astype(np.float64) + log_pz - log_qz_x


def metrics_record(result, config, history, *, iw_samples, elbo_draws, seed):
    """What metrics.json holds about one run, less its timings and versions: the test metrics of
    `evaluate` (`result`) as test_*, the evaluation's settings, and the run's config and final val_loss."""
    metrics = {f"test_{key}": value for key, value in result.items()}
    metrics.update(
        iw_samples=iw_samples, elbo_draws=elbo_draws, evaluation_seed=seed, epochs=len(history["loss"]),
        latent_dim=config.latent_dim, seed=config.seed, dataset=config.dataset,
        final_val_loss=history["val_loss"][-1])
    return metrics


def evaluate_run(run_dir, *, iw_samples=DEFAULT_IW_SAMPLES, elbo_draws=1, seed=DEFAULT_EVALUATION_SEED,
                 data=None, data_dir=None, progress=None):
    """Evaluate a run directory's model on its test set and write `metrics.json`; return the metrics."""
    run_dir = Path(run_dir)
    if not (run_dir / run_directory.MODEL).exists():
        raise NoTrainedModel(f"{run_dir} holds no trained model yet: run the training first (in the notebook, "
                             f"the Step 5 cell; on the command line, vae-lab train --out {run_dir})")
    config = run_directory.read_config(run_dir)
    model, history = run_directory.load_run(run_dir)
    done = len(history.get("loss", []))
    if done < config.epochs:  # a training cell run again and stopped: the figures of it refuse, and so does this
        raise UnfinishedRun(f"{run_dir} holds a run that stopped after {done} of its {config.epochs} epochs (the "
                            "training was interrupted, or run again and did not finish): run the training to the "
                            f"end (in the notebook, the Step 5 cell; on the command line, vae-lab train --out "
                            f"{run_dir} --resume), then evaluate")
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    x_test = data[1][0]
    began = time.perf_counter()
    result = evaluate(model, x_test, elbo_draws=elbo_draws, iw_samples=iw_samples, seed=seed, progress=progress)
    evaluation_seconds = time.perf_counter() - began
    timing_path = run_dir / run_directory.TIMING
    epoch_seconds = run_directory.read_json(timing_path).get("epoch_seconds", []) if timing_path.exists() else []
    metrics = metrics_record(result, config, history, iw_samples=iw_samples, elbo_draws=elbo_draws, seed=seed)
    metrics.update(train_seconds=round(sum(epoch_seconds), 2), evaluation_seconds=round(evaluation_seconds, 2),
                   versions=run_directory.machine_and_versions())
    run_directory.write_json(run_dir / run_directory.METRICS, metrics, indent=2)
    return metrics
