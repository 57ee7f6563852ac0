"""Test-set metrics in nats per image: Monte-Carlo negative ELBO and the importance-weighted NLL."""

import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from . import run_directory
from .config import DEFAULT_EVALUATION_SEED, DEFAULT_IW_SAMPLES
from .data import load_dataset
from .errors import NoTrainedModel
from .model import kl_divergence, reconstruction_loss, reparameterize

LOG_2PI = math.log(2.0 * math.pi)
ROWS_PER_CHUNK = 8192  # decoder rows per call: bounds memory whatever iw_samples is


def log_density_terms(model, x, epsilon):
    """For z = mu + sigma*eps, return (log p(x|z), log p(z), log q(z|x)), each of shape (B, K).

    x is (B, 784) and epsilon (B, K, latent_dim): K draws of z per image.
    """
    z_mean, z_log_var = model.encode(x)
    z = reparameterize(z_mean[:, None, :], z_log_var[:, None, :], epsilon)
    batch, draws = epsilon.shape[0], epsilon.shape[1]
    logits = ops.reshape(model.decoder(ops.reshape(z, (batch * draws, -1))), (batch, draws, -1))
    log_px_z = -reconstruction_loss(x[:, None, :], logits)
    log_pz = -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=-1)
    log_qz_x = -0.5 * ops.sum(ops.square(epsilon) + LOG_2PI + z_log_var[:, None, :], axis=-1)
    return log_px_z, log_pz, log_qz_x


def _log_mean_exp(values, axis):
    peak = np.max(values, axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.mean(np.exp(values - peak), axis=axis))


def _compiled_terms(model):
    """`log_density_terms` as one fused XLA program on TensorFlow, so the many small ops of a chunk run as one."""
    def terms(x, epsilon):
        return log_density_terms(model, x, epsilon)

    if keras.backend.backend() != "tensorflow":
        return terms
    import tensorflow as tf

    return tf.function(terms, jit_compile=True, autograph=False)  # plain tensor code: nothing to convert


def evaluate(model, x, *, elbo_draws=1, iw_samples=100, seed=DEFAULT_EVALUATION_SEED, progress=None):
    """Means over `x` of neg_elbo, reconstruction_loss, kl_loss (Monte Carlo over `elbo_draws` draws of z)
    and nll_iw, the importance-weighted bound on -log p(x) with `iw_samples` draws (Burda et al. 2016).

    With grey-level pixels the Bernoulli likelihood is not a normalised density, so these numbers
    compare only with other grey-level binary-cross-entropy numbers. `progress(done, total)`, if
    given, is called after each batch of images.
    """
    if elbo_draws < 1 or iw_samples < 1:
        raise ValueError("elbo_draws and iw_samples must be at least 1")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    terms = _compiled_terms(model)
    # Images per batch and draws per decoder call, so that images * draws <= ROWS_PER_CHUNK.
    batch_size = max(1, min(1024, ROWS_PER_CHUNK // max(iw_samples, elbo_draws)))
    calls = math.ceil(iw_samples * batch_size / ROWS_PER_CHUNK)
    draws_per_call = math.ceil(iw_samples / calls)
    totals = {"reconstruction_loss": 0.0, "kl_loss": 0.0, "nll_iw": 0.0}
    for start in range(0, len(x), batch_size):
        images = x[start:start + batch_size]
        z_mean, z_log_var = model.encode(images)
        totals["kl_loss"] += float(ops.sum(kl_divergence(z_mean, z_log_var)))
        epsilon = rng.standard_normal((len(images), elbo_draws, model.latent_dim), dtype=np.float32)
        log_px_z, _, _ = terms(images, epsilon)
        totals["reconstruction_loss"] -= float(ops.sum(ops.mean(log_px_z, axis=1)))
        log_weights = []
        for _ in range(calls):
            epsilon = rng.standard_normal((len(images), draws_per_call, model.latent_dim), dtype=np.float32)
            log_px_z, log_pz, log_qz_x = terms(images, epsilon)
            log_weights.append(np.asarray(log_px_z + log_pz - log_qz_x, dtype=np.float64))
        log_weights = np.concatenate(log_weights, axis=1)[:, :iw_samples]
        totals["nll_iw"] -= float(np.sum(_log_mean_exp(log_weights, axis=1)))
        if progress:
            progress(min(start + batch_size, len(x)), len(x))
    metrics = {key: value / len(x) for key, value in totals.items()}
    metrics["neg_elbo"] = metrics["reconstruction_loss"] + metrics["kl_loss"]
    return metrics


def evaluate_run(run_dir, *, iw_samples=DEFAULT_IW_SAMPLES, elbo_draws=1, seed=DEFAULT_EVALUATION_SEED,
                 data=None, data_dir=None, progress=None):
    """Evaluate a run directory's model on its test set and write `metrics.json`; return the metrics."""
    run_dir = Path(run_dir)
    if not (run_dir / run_directory.MODEL).exists():
        raise NoTrainedModel(f"{run_dir} holds no trained model yet: run the training first (in the notebook, "
                             f"the Step 5 cell; on the command line, vae-lab train --out {run_dir})")
    config = run_directory.read_config(run_dir)
    model = run_directory.load_model(run_dir / run_directory.MODEL)
    if data is None:
        data = load_dataset(config.dataset, data_dir)
    x_test = data[1][0]
    began = time.perf_counter()
    result = evaluate(model, x_test, elbo_draws=elbo_draws, iw_samples=iw_samples, seed=seed, progress=progress)
    evaluation_seconds = time.perf_counter() - began
    timing_path = run_dir / run_directory.TIMING
    epoch_seconds = run_directory.read_json(timing_path)["epoch_seconds"] if timing_path.exists() else []
    history = run_directory.read_json(run_dir / run_directory.HISTORY)
    metrics = {f"test_{key}": value for key, value in result.items()}
    metrics.update(
        iw_samples=iw_samples, elbo_draws=elbo_draws, evaluation_seed=seed, epochs=len(history["loss"]),
        latent_dim=config.latent_dim, seed=config.seed, dataset=config.dataset,
        final_val_loss=history["val_loss"][-1],
        train_seconds=round(sum(epoch_seconds), 2), evaluation_seconds=round(evaluation_seconds, 2),
        versions=run_directory.machine_and_versions())
    run_directory.write_json(run_dir / run_directory.METRICS, metrics, indent=2)
    return metrics
