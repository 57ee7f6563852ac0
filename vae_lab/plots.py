"""Figures of the lab; each function returns a matplotlib Figure and the caller shows or saves it."""

import io
from pathlib import Path
from statistics import NormalDist

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
import numpy as np

from . import record_format
from .atomic import atomic_path, atomic_write_bytes
from .data import IMAGE_SIDE

# One colour per class (index = label), for MNIST and Fashion-MNIST alike: tab10 re-ordered so that the
# classes that crowd each other in the latent space (MNIST 4/9, 3/5/8, 7/9, 2/3; Fashion-MNIST T-shirt,
# pullover, coat and shirt, sandal/sneaker, trouser/dress) get the most different colours, with tab10's grey,
# which is close to every other tab10 colour, replaced by near-black. In tab10's own order 3/5 (red/brown)
# and coat/shirt (purple/pink) are hard to tell apart.
CLASS_COLOURS = ("tab:orange", "tab:red", "#222222", "tab:cyan", "tab:green",
                 "tab:olive", "tab:purple", "tab:blue", "tab:brown", "tab:pink")

# grid_variety below this: the digit grid shows no recognisable digit (at most a few blurred blobs), so the
# lab's figures show nothing learned. Chosen by eye on the grids benchmarks/bench_dry_run.py draws.
GRID_VARIETY_THRESHOLD = 0.15


def _tile(images, rows, cols):
    """Lay (rows*cols, 784) images out as one (rows*28, cols*28) picture, row-major."""
    grid = images.reshape(rows, cols, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1, 3)
    return grid.reshape(rows * IMAGE_SIDE, cols * IMAGE_SIDE)


def _show_images(axis, picture, title):
    axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
    axis.set_axis_off()
    axis.set_title(title)


def _signed(value, digits=1):
    """A tick label with a true minus sign, and no "−0.0"."""
    text = f"{value:.{digits}f}"
    return (text.lstrip("-") if float(text) == 0 else text).replace("-", "−")


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


def grid_variety(model, n=10, span=3.0):
    """How different the tiles of the digit grid are: the mean, over all pairs of the n*n tiles, of the
    root-mean-square difference of their pixels (0 when every tile is the same image; pixels in [0, 1]).

    A model that has learned nothing to look at decodes every latent point to the same grey blob, and
    scores near 0; below GRID_VARIETY_THRESHOLD, warn that the figures will show nothing.
    """
    tiles = _decode_points(model, latent_grid(n, span)).astype(np.float64)
    squared = np.sum(tiles ** 2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2.0 * tiles @ tiles.T
    pairs = np.triu_indices(len(tiles), k=1)
    return float(np.mean(np.sqrt(np.maximum(distances[pairs], 0.0) / tiles.shape[1])))


def plot_latent_scatter(model, x, labels, class_names=None, title="Latent space of the test set"):
    """Scatter of z_mean (first two dimensions), coloured by class, with a legend naming the classes."""
    z_mean = np.asarray(model.encode(x)[0])
    class_names = [str(name) for name in (class_names or [str(k) for k in range(10)])]
    colours = [CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(len(class_names))]
    labels = np.asarray(labels).astype(int)
    figure, axis = plt.subplots(figsize=(8, 6), layout="constrained")
    second = z_mean[:, 1] if z_mean.shape[1] > 1 else np.zeros(len(z_mean))
    axis.scatter(z_mean[:, 0], second, c=[colours[k] for k in labels], s=5, alpha=0.6, linewidths=0)
    handles = [Line2D([], [], linestyle="", marker="o", markersize=8, color=colour, alpha=1.0)
               for colour in colours]
    axis.legend(handles, class_names, title="true class", loc="center left", bbox_to_anchor=(1.02, 0.5),
                borderaxespad=0.0)
    axis.set_aspect("equal")  # z1 and z2 are on the same scale
    axis.set_xlabel("z₁ (mean of q(z|x))")
    axis.set_ylabel("z₂ (mean of q(z|x))")
    axis.set_title(title)
    return _of_model(figure, model)


def _of_model(figure, model):
    """FIGURE marked with the run its model came from (`train`'s token), so keep_figure can tell."""
    figure.vae_lab_run = getattr(model, "run_token", None)
    return figure


def _of_another_run(figure, run_dir):
    """Whether FIGURE was drawn from a model, or a history, that RUN_DIR does not hold (figures of a model
    `train` did not make, such as one loaded from a file, are not asked)."""
    from . import run_directory

    token = getattr(figure, "vae_lab_run", None)
    if token is not None and token != run_directory.run_token(run_dir):
        return True
    history = getattr(figure, "vae_lab_history", None)
    path = Path(run_dir) / run_directory.HISTORY
    return history is not None and (not path.exists() or run_directory.read_json(path) != history)


def plot_digit_grid(model, n=10, span=3.0, quantiles=False):
    """The n x n images decoded from a grid over the latent plane, in one batched call; the axes give
    each column's z1 and each row's z2."""
    points = latent_grid(n, span, quantiles)
    picture = _tile(_decode_points(model, points), n, n)
    figure, axis = plt.subplots(figsize=(8, 8.6), layout="constrained")
    axis.imshow(picture, cmap="gray", vmin=0.0, vmax=1.0)
    centres = IMAGE_SIDE * np.arange(n) + (IMAGE_SIDE - 1) / 2
    axis.set_xticks(centres, [_signed(value) for value in points[:n, 0]])
    axis.set_yticks(centres, [_signed(value) for value in points[::n, 1]])
    axis.set_xlabel("z₁", fontsize=13)
    axis.set_ylabel("z₂", fontsize=13, rotation=0, labelpad=12)
    top, bottom = _signed(points[0, 1], 2 if quantiles else 0), _signed(points[-1, 1], 2 if quantiles else 0)
    region = ("z at the 5%–95% quantiles of N(0, 1) on each axis" if quantiles
              else f"z ∈ [{_signed(-span, 0)}, {_signed(span, 0)}]²")
    axis.set_title(f"Images decoded from a {n}×{n} grid of latent points {region}\n"
                   f"rows run from z₂ = {top} (top) to z₂ = {bottom} (bottom)")
    return _of_model(figure, model)


def plot_reconstructions(model, x, count=10):
    """Test images (top row) over their reconstructions from z = mean of q(z|x) (bottom row)."""
    originals = np.asarray(x[:count])
    reconstructed = np.asarray(model.decode(model.encode(originals)[0]))
    figure, axis = plt.subplots(figsize=(count, 2.3))
    _show_images(axis, _tile(np.concatenate([originals, reconstructed]), 2, count),
                 "Test images (top) and their reconstructions (bottom)")
    return _of_model(figure, model)


# The learning curves' panels: (title, history key, y label); "val_" + key is the validation curve.
_CURVES = (("Loss: negative ELBO", "loss", "−ELBO, nats per image"),
           ("Reconstruction term", "reconstruction_loss", "reconstruction (summed BCE), nats per image"),
           ("KL term", "kl_loss", "KL(q(z|x) ‖ N(0, I)), nats per image"))
# Training: filled circles under validation's larger open squares, so neither hides the other, even with
# one epoch (a single point per curve) or where the two curves meet.
_TRAINING = dict(color="tab:blue", linestyle="-", marker="o", markersize=6,
                 label="training (mean over the epoch's batches)")
_VALIDATION = dict(color="tab:orange", linestyle="--", marker="s", markersize=11, markerfacecolor="none",
                   markeredgewidth=1.8, label="validation (test images, after the epoch)")


def plot_learning_curves(history):
    """Loss per epoch, training and validation, and its two terms, in nats per image; one legend below."""
    figure = plt.figure(figsize=(12, 4.2), layout="constrained")
    axes = figure.subplots(1, len(_CURVES))
    count = len(history["loss"])
    epochs = np.arange(1, count + 1)
    handles = {}
    for axis, (title, key, ylabel) in zip(axes, _CURVES):
        for name, style in ((key, _TRAINING), ("val_" + key, _VALIDATION)):
            if name in history:
                (line,) = axis.plot(epochs, history[name], markevery=max(1, count // 15), **style)
                handles.setdefault(style["label"], line)
        axis.set(title=title, xlabel="epoch", ylabel=ylabel, xlim=(0.5, count + 0.5))
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
        axis.margins(y=0.15)
        axis.grid(alpha=0.3)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles))
    figure.vae_lab_history = {key: list(values) for key, values in history.items()}  # for keep_figure
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


def figure_png(figure):
    """`figure` drawn to PNG bytes as Jupyter's inline backend draws it (its own dpi, a tight box)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi, bbox_inches="tight",
                   facecolor=figure.get_facecolor(), edgecolor=figure.get_edgecolor())
    return buffer.getvalue()


def keep_figure(figure, run_dir, name):
    """Draw `figure` once (`figure_png`), write the bytes to `run_dir` as lab figure `name`'s file, and
    return them for the notebook to show: the picture shown and the picture kept are one drawing, so the
    notebook draws each lab figure once, not twice. A figure of a model that `run_dir` no longer holds is
    refused in one sentence."""
    from .config import ConfigError

    if name not in record_format.LAB_FIGURES:
        raise ConfigError(f"{name!r} is not a lab figure; the lab figures are {', '.join(record_format.LAB_FIGURES)}")
    if _of_another_run(figure, run_dir):
        raise ConfigError(f"this figure shows a model {run_dir} does not hold: the training cell was run again and "
                          "did not finish, so the folder holds another run (or none); run the training cell to the "
                          "end, then this cell")
    png = figure_png(figure)
    atomic_write_bytes(_lab_figure_path(run_dir, name), png)
    return png


def describe_figure(figure, name=None):
    """The figure in words, for a page's alt text (what a screen reader says in its place): a lab
    figure's caption, else the figure's titles."""
    if name is not None:
        return record_format.LAB_FIGURES[name].caption
    titles = [figure.get_suptitle()] + [axis.get_title() for axis in figure.axes]
    return "; ".join(" ".join(title.split()) for title in titles if title.strip())


def lab_figure_paths(run_dir):
    """{figure name: path} of the lab figures in `run_dir`; one sentence saying what to run if any is missing."""
    from .errors import LabError

    paths = {name: _lab_figure_path(run_dir, name) for name in record_format.LAB_FIGURES}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise LabError(f"{', '.join(missing)} not in {run_dir}: run the figure cells above first (they keep "
                       "each lab figure they show), or draw them all from the saved model with "
                       "vae_lab.save_lab_figures(RUN_DIR, x_test, y_test)")
    return paths


def _lab_figure_path(run_dir, name):
    return Path(run_dir) / record_format.LAB_FIGURES[name].file


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
    model, history = run_directory.load_run(run_dir)
    class_names = DATASETS[run_directory.read_config(run_dir).dataset].class_names
    figures = {
        "latent_scatter": plot_latent_scatter(model, x_test, y_test, class_names),
        "digit_grid": plot_digit_grid(model),
        "reconstructions": plot_reconstructions(model, x_test),
        "learning_curves": plot_learning_curves(history),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = _lab_figure_path(run_dir, name)
        with atomic_path(paths[name]) as temporary:
            figure.savefig(temporary, dpi=100, bbox_inches="tight")
        plt.close(figure)
    return paths
