"""vae_lab: a variational autoencoder on MNIST, as a reproducible lab experiment.

Importing this package registers the VAE with Keras, so `keras.models.load_model`
reads a saved `model.keras` without `custom_objects`.
"""

import os
import sys


def _import_tensorflow_quietly():
    """Import TensorFlow with file descriptor 2 closed: its C++ start-up lines (CUDA probing)
    are written there before any Python setting can stop them. TF_CPP_MIN_LOG_LEVEL=0 shows them."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

from .data import DATASETS, load_dataset, load_mnist, read_idx, read_npz
from .evaluation import evaluate, evaluate_run, metrics_table
from .model import VAE, kl_divergence, reconstruction_loss
from .plots import (latent_grid, plot_digit_grid, plot_interpolation, plot_latent_scatter,
                    plot_learning_curves, plot_prior_samples, plot_reconstructions, save_lab_figures)
from .training import TrainConfig, build_model, TrainingDiverged, RunDirectoryError, set_seed, train

__all__ = [
    "DATASETS", "load_dataset", "load_mnist", "read_idx", "read_npz",
    "evaluate", "evaluate_run", "metrics_table",
    "VAE", "kl_divergence", "reconstruction_loss",
    "latent_grid", "plot_digit_grid", "plot_interpolation", "plot_latent_scatter",
    "plot_learning_curves", "plot_prior_samples", "plot_reconstructions", "save_lab_figures",
    "TrainConfig", "build_model", "TrainingDiverged", "RunDirectoryError", "set_seed", "train",
]
