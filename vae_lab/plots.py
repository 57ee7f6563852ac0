"""Figures of the lab; each function returns a matplotlib Figure and the caller shows or saves it."""

import os
from pathlib import Path
from statistics import NormalDist

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

from .data import IMAGE_SIDE

# The figures a run saves: name -> (file in the run directory, caption in the report).
LAB_FIGURES = {
    "latent_scatter": ("latent_scatter.png", "Latent means of the test images, coloured by their true class."),
    "digit_grid": ("digit_grid.png", "Images decoded from a 10x10 grid over z in [-3, 3]^2 (top row: z2 = 3)."),
    "reconstructions": ("reconstructions.png", "Test images (top) and their reconstructions (bottom)."),
    "learning_curves": ("learning_curves.png", "Negative ELBO per epoch, and its reconstruction and KL terms."),
}


def _tile(images, rows, cols):
    """Lay (rows*cols, 784) images out as one (rows*28, cols*28) picture, row-major."""
    grid = images.reshape(rows, cols, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1, 3)
    return grid.reshape(rows * IMAGE_SIDE, cols * IMAGE_SIDE)


def _show_images(axis, picture, title):
    axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
    axis.set_axis_off()
    axis.set_title(title)


def latent_grid(n=10, span=3.0, quantiles=False):
    """Latent points of the digit grid, row-major: rows run z2 from +span down to -span.

    With `quantiles`, points are spaced at equal steps of probability under N(0, 1)
    (the 5%..95% quantiles), so each tile covers as much prior mass as the next.
    """
    if quantiles:
        axis = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    else:
        axis = np.linspace(-span, span, n)
    z1, z2 = np.meshgrid(axis, axis[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)


def _decode_points(model, points):
    """Decode 2-D points; any further latent dimensions are held at 0, the prior's mean."""
    z = np.zeros((len(points), model.latent_dim), dtype=np.float32)
    shared = min(2, model.latent_dim)
    z[:, :shared] = points[:, :shared]
    return np.asarray(model.decode(z))


def plot_latent_scatter(model, x, labels, class_names=None, title="Latent space of the test set"):
    """Scatter of z_mean (first two dimensions), coloured by class, with a labelled colour bar."""
    z_mean = np.asarray(model.encode(x)[0])
    class_names = class_names or [str(k) for k in range(10)]
    figure, axis = plt.subplots(figsize=(7, 6))
    second = z_mean[:, 1] if z_mean.shape[1] > 1 else np.zeros(len(z_mean))
    points = axis.scatter(z_mean[:, 0], second, c=labels, cmap="tab10", vmin=-0.5, vmax=9.5,
                          s=2, alpha=0.6)
    colorbar = figure.colorbar(points, ax=axis, ticks=range(10))
    colorbar.ax.set_yticklabels(class_names)
    colorbar.set_label("class")
    axis.set_xlabel("z[0] (mean of q(z|x))")
    axis.set_ylabel("z[1]")
    axis.set_title(title)
    return figure


def plot_digit_grid(model, n=10, span=3.0, quantiles=False):
    """The n x n images decoded from a grid over the latent plane, in one batched call."""
    picture = _tile(_decode_points(model, latent_grid(n, span, quantiles)), n, n)
    figure, axis = plt.subplots(figsize=(8, 8))
    spacing = "Gaussian quantiles 5%-95%" if quantiles else f"z in [-{span:g}, {span:g}]²"
    _show_images(axis, picture, f"Images decoded from a {n}x{n} latent grid ({spacing})")
    return figure


def plot_reconstructions(model, x, count=10):
    """Test images (top row) over their reconstructions from z = mean of q(z|x) (bottom row)."""
    originals = np.asarray(x[:count])
    reconstructed = np.asarray(model.decode(model.encode(originals)[0]))
    figure, axis = plt.subplots(figsize=(count, 2.3))
    _show_images(axis, _tile(np.concatenate([originals, reconstructed]), 2, count),
                 "Test images (top) and their reconstructions (bottom)")
    return figure


def plot_learning_curves(history):
    """Loss per epoch, train and validation, and its split into reconstruction and KL."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, style in (("loss", "-o"), ("val_loss", "--o")):
        if key in history:
            left.plot(epochs, history[key], style, label=key)
    for key, style in (("reconstruction_loss", "-o"), ("val_reconstruction_loss", "--o")):
        if key in history:
            right.plot(epochs, history[key], style, color="tab:blue", label=key)
    kl_axis = right.twinx()
    for key, style in (("kl_loss", "-s"), ("val_kl_loss", "--s")):
        if key in history:
            kl_axis.plot(epochs, history[key], style, color="tab:red", label=key)
    left.set(title="Negative ELBO", xlabel="epoch", ylabel="nats per image")
    right.set(title="Reconstruction (left axis) and KL (right axis)", xlabel="epoch",
              ylabel="reconstruction, nats")
    kl_axis.set_ylabel("KL, nats", color="tab:red")
    left.legend()
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = right.get_legend_handles_labels()[0] + kl_axis.get_legend_handles_labels()[0]
    right.legend(handles=handles, loc="center right")
    figure.tight_layout()
    return figure


def plot_interpolation(model, x_start, x_end, steps=10):
    """Images decoded along the straight line between two images' latent means."""
    z_mean = np.asarray(model.encode(np.stack([x_start, x_end]))[0])
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    path = (1.0 - weights) * z_mean[0] + weights * z_mean[1]
    figure, axis = plt.subplots(figsize=(steps, 1.4))
    _show_images(axis, _tile(np.asarray(model.decode(path)), 1, steps),
                 "Latent interpolation between two test images")
    return figure


def plot_prior_samples(model, rows=4, cols=10, seed=0):
    """Images decoded from z drawn from the prior N(0, I)."""
    z = np.random.default_rng(seed).standard_normal((rows * cols, model.latent_dim)).astype(np.float32)
    figure, axis = plt.subplots(figsize=(cols, rows + 0.4))
    _show_images(axis, _tile(np.asarray(model.decode(z)), rows, cols), "Samples decoded from z ~ N(0, I)")
    return figure


def save_lab_figures(run_dir, x_test, y_test):
    """Draw the lab figures from the model saved in `run_dir` and write them there as PNGs.

    The figures are drawn from the saved model, never from one passed in, so they always show the
    model that `metrics.json` measures. Returns {figure name: path}.
    """
    from . import run_directory
    from .data import DATASETS
    from .errors import NoTrainedModel

    run_dir = Path(run_dir)
    if not (run_dir / run_directory.MODEL).exists():
        raise NoTrainedModel(f"{run_dir} holds no trained model yet: run the training first (in the notebook, "
                             f"the Step 5 cell; on the command line, vae-lab train --out {run_dir})")
    model = run_directory.load_model(run_dir / run_directory.MODEL)
    history = run_directory.read_json(run_dir / run_directory.HISTORY)
    class_names = DATASETS[run_directory.read_config(run_dir).dataset].class_names
    figures = {
        "latent_scatter": plot_latent_scatter(model, x_test, y_test, class_names),
        "digit_grid": plot_digit_grid(model),
        "reconstructions": plot_reconstructions(model, x_test),
        "learning_curves": plot_learning_curves(history),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = run_dir / LAB_FIGURES[name][0]
        temporary = paths[name].with_name("partial-" + paths[name].name)
        figure.savefig(temporary, dpi=100, bbox_inches="tight")
        plt.close(figure)
        os.replace(temporary, paths[name])
    return paths
