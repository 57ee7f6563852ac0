"""Figures: each plot function returns a Figure; the latent grid's layout matches the lab sheet; legends
sit off the data, epochs are whole numbers, and the axes name what they show."""

import matplotlib

matplotlib.use("Agg")  # tests draw off-screen; the notebook keeps its inline backend

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import vae_lab
from vae_lab import plots

HISTORY_KEYS = ("loss", "val_loss", "reconstruction_loss", "val_reconstruction_loss", "kl_loss", "val_kl_loss")


@pytest.fixture(scope="module")
def model():
    return vae_lab.VAE(latent_dim=2, seed=0)


def history_of(epochs):
    """A made-up history shaped like a real one (training above validation at first, KL rising)."""
    steps = np.arange(epochs, dtype=float)
    return {"loss": list(200 - 40 * np.log1p(steps)), "val_loss": list(173 - 18 * np.log1p(steps)),
            "reconstruction_loss": list(195 - 42 * np.log1p(steps)),
            "val_reconstruction_loss": list(168 - 19 * np.log1p(steps)),
            "kl_loss": list(5.6 + 0.1 * steps), "val_kl_loss": list(4.6 + 0.3 * steps)}


def drawn(figure):
    figure.canvas.draw()
    return figure.canvas.get_renderer()


def displayed_points(line, per_segment=20):
    """A line's points in display coordinates, with points along each segment between them."""
    xy = line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, 1.0, per_segment)[:, None]
    return np.concatenate([start + t * (end - start) for start, end in zip(xy[:-1], xy[1:])])


def inside(bbox, points):
    x, y = points[:, 0], points[:, 1]
    return (x >= bbox.x0) & (x <= bbox.x1) & (y >= bbox.y0) & (y <= bbox.y1)


def visible_ticks(axis):
    low, high = axis.get_xlim()
    return [tick for tick in axis.get_xticks() if low <= tick <= high]


def test_latent_grid_rows_run_z2_from_top_down():
    points = vae_lab.latent_grid(n=10, span=3.0)
    assert points.shape == (100, 2)
    np.testing.assert_allclose(points[0], [-3, 3], atol=1e-6)    # top left
    np.testing.assert_allclose(points[9], [3, 3], atol=1e-6)     # top right
    np.testing.assert_allclose(points[-1], [3, -3], atol=1e-6)   # bottom right
    assert np.all(np.diff(points[::10, 1]) < 0)                  # each row lower than the last


def test_quantile_spacing_covers_equal_prior_mass():
    points = vae_lab.latent_grid(n=10, quantiles=True)
    axis = np.sort(np.unique(points[:, 0]))
    assert axis[0] == pytest.approx(-1.6449, abs=1e-3) and axis[-1] == pytest.approx(1.6449, abs=1e-3)
    assert np.diff(axis)[0] > np.diff(axis)[4]  # wider steps in the tails


def test_digit_grid_decodes_in_one_batched_call(model, monkeypatch):
    calls = []
    original = type(model).decode

    def counting_decode(self, z):
        calls.append(len(z))
        return original(self, z)

    monkeypatch.setattr(type(model), "decode", counting_decode)
    figure = vae_lab.plot_digit_grid(model, n=10)
    assert calls == [100]
    assert figure.axes[0].images[0].get_array().shape == (280, 280)
    plt.close(figure)


def test_digit_grid_axes_say_where_each_tile_is(model):
    """The notebook's words, on the figure: z ∈ [−3, 3]², rows from z₂ = 3 (top) to z₂ = −3 (bottom)."""
    figure = vae_lab.plot_digit_grid(model, n=10, span=3.0)
    axis = figure.axes[0]
    drawn(figure)
    assert "z ∈ [−3, 3]²" in axis.get_title()
    assert "z₂ = 3 (top)" in axis.get_title() and "z₂ = −3 (bottom)" in axis.get_title()
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("z₁", "z₂")
    columns = [label.get_text() for label in axis.get_xticklabels()]
    rows = [label.get_text() for label in axis.get_yticklabels()]
    assert columns[0] == "−3.0" and columns[-1] == "3.0" and len(columns) == 10
    # image rows grow downwards: the first tick (top row) is z2 = 3
    assert rows[0] == "3.0" and rows[-1] == "−3.0" and list(axis.get_yticks()) == sorted(axis.get_yticks())
    plt.close(figure)
    figure = vae_lab.plot_digit_grid(model, n=5, span=3.0)
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["−3.0", "−1.5", "0.0", "1.5", "3.0"]
    plt.close(figure)


def test_each_plot_returns_a_figure(model, small_data):
    (x, y), (xt, yt) = small_data
    names = [f"c{k}" for k in range(10)]
    figures = [vae_lab.plot_latent_scatter(model, xt, yt, class_names=names),
               vae_lab.plot_digit_grid(model, n=4),
               vae_lab.plot_reconstructions(model, xt, count=6),
               vae_lab.plot_learning_curves(history_of(2)),
               vae_lab.plot_interpolation(model, xt[0], xt[1], steps=7),
               vae_lab.plot_prior_samples(model, rows=2, cols=5)]
    assert all(isinstance(figure, Figure) for figure in figures)
    assert figures[2].axes[0].images[0].get_array().shape == (56, 6 * 28)
    for figure in figures:
        plt.close(figure)


def test_latent_scatter_has_a_legend_of_the_classes_off_the_data(model, small_data):
    (_, _), (xt, yt) = small_data
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"]
    figure = vae_lab.plot_latent_scatter(model, xt, yt, class_names=names)
    renderer = drawn(figure)
    assert len(figure.axes) == 1  # no colour bar
    axis = figure.axes[0]
    legend = axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == names
    # legend markers large and opaque, though the points are small and translucent
    points = axis.collections[0]
    assert points.get_alpha() < 1 and np.max(points.get_sizes()) <= 10
    for handle in legend.legend_handles:
        assert handle.get_alpha() in (None, 1.0) and handle.get_markersize() >= 7
    # each class its own colour, in the scatter and the legend alike
    colours = [tuple(matplotlib.colors.to_rgb(handle.get_color())) for handle in legend.legend_handles]
    assert len(set(colours)) == 10
    assert tuple(points.get_facecolors()[0][:3]) == pytest.approx(colours[int(yt[0])])
    # the legend is outside the axes: over no point and no part of the plotting area
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(axis.get_window_extent(renderer))
    offsets = points.get_offset_transform().transform(points.get_offsets())
    assert not inside(box, offsets).any()
    assert axis.get_xlabel().startswith("z₁") and axis.get_ylabel().startswith("z₂")
    plt.close(figure)


def test_latent_scatter_names_digits_by_default(model, small_data):
    (_, _), (xt, yt) = small_data
    figure = vae_lab.plot_latent_scatter(model, xt, yt)
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == [str(k) for k in range(10)]
    plt.close(figure)


def test_class_colours_keep_crowding_classes_apart():
    """The pairs the lab's text calls crowded (MNIST 3/5/8, 4/9; Fashion-MNIST shirt, T-shirt, pullover,
    coat) and the other close neighbours get clearly different colours: no two within 50 in CIE L*a*b*
    (tab10 in its own order has coat/shirt and sandal/sneaker at 28)."""

    def lab(colour):
        linear = np.array(matplotlib.colors.to_rgb(colour))
        linear = np.where(linear <= 0.04045, linear / 12.92, ((linear + 0.055) / 1.055) ** 2.4)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
        f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    colours = plots.CLASS_COLOURS
    assert len(set(colours)) == 10
    # MNIST 3/5/8 and 4/7/9; Fashion-MNIST T-shirt/pullover/coat/shirt and sandal/sneaker/ankle boot
    for group in ((3, 5, 8), (4, 7, 9), (0, 2, 4, 6), (5, 7, 9)):
        for i in group:
            for j in group:
                if i < j:
                    assert np.linalg.norm(lab(colours[i]) - lab(colours[j])) > 50, (i, j)


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_learning_curves_show_whole_epochs_and_a_legend_off_the_data(epochs):
    figure = vae_lab.plot_learning_curves(history_of(epochs))
    renderer = drawn(figure)
    axes = figure.axes
    assert len(axes) == 3
    for axis in axes:
        assert visible_ticks(axis) == list(range(1, epochs + 1))
        low, high = axis.get_xlim()
        assert [label.get_text() for tick, label in zip(axis.get_xticks(), axis.get_xticklabels())
                if low <= tick <= high] == [str(k) for k in range(1, epochs + 1)]
        assert axis.get_xlabel() == "epoch" and axis.get_ylabel().endswith("nats per image")
        assert len(axis.lines) == 2
    (legend,) = figure.legends
    assert [text.get_text().split(" ")[0] for text in legend.get_texts()] == ["training", "validation"]
    box = legend.get_window_extent(renderer)
    for axis in axes:
        # clear of the plotting area, its tick labels, axis labels and title ...
        assert not box.overlaps(axis.get_window_extent(renderer))
        assert not box.overlaps(axis.get_tightbbox(renderer))
        # ... and of every plotted point and line
        for line in axis.lines:
            assert not inside(box, displayed_points(line)).any()
    plt.close(figure)


def test_one_epoch_shows_every_curve_s_point():
    """With one epoch each curve is one marker: visible (inside the axes) and not hidden by another curve's."""
    history = history_of(1)
    history["val_kl_loss"] = history["kl_loss"]  # the worst case: two markers at the same place
    figure = vae_lab.plot_learning_curves(history)
    renderer = drawn(figure)
    for axis in figure.axes:
        training, validation = axis.lines
        assert training.get_marker() != validation.get_marker()
        # validation's marker is drawn later, larger and hollow, so training's shows inside it
        assert validation.get_zorder() >= training.get_zorder()
        assert validation.get_markerfacecolor() == "none"
        assert validation.get_markersize() > training.get_markersize() + 2
        area = axis.get_window_extent(renderer)
        for line in axis.lines:
            (point,) = line.get_transform().transform(np.column_stack(line.get_data()))
            assert area.x0 < point[0] < area.x1 and area.y0 < point[1] < area.y1
    plt.close(figure)


def test_learning_curves_without_validation():
    history = {key: value for key, value in history_of(3).items() if not key.startswith("val_")}
    figure = vae_lab.plot_learning_curves(history)
    assert [len(axis.lines) for axis in figure.axes] == [1, 1, 1]
    assert [text.get_text().split(" ")[0] for text in figure.legends[0].get_texts()] == ["training"]
    plt.close(figure)


class FixedDecoder:
    """Stands in for a model in grid_variety: decodes each latent point to a given image."""

    latent_dim = 2

    def __init__(self, image_of):
        self.image_of = image_of

    def decode(self, z):
        return np.stack([self.image_of(point) for point in np.asarray(z)]).astype(np.float32)


def test_grid_variety_is_zero_for_one_repeated_image_and_grows_with_difference():
    blob = np.full(784, 0.3, dtype=np.float32)
    assert plots.grid_variety(FixedDecoder(lambda point: blob)) == pytest.approx(0.0, abs=1e-6)
    # half the tiles black, half white: 2,500 of the 4,950 pairs differ by 1 in every pixel
    halves = FixedDecoder(lambda point: np.full(784, float(point[0] > 0), dtype=np.float32))
    assert plots.grid_variety(halves) == pytest.approx(2500 / 4950, abs=1e-6)
    assert 0.0 < plots.GRID_VARIETY_THRESHOLD < 2500 / 4950


def test_save_lab_figures_writes_four_pngs(tmp_path, model, small_data):
    (_, _), (xt, yt) = small_data
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), tmp_path, data=small_data, verbose=0)
    paths = vae_lab.save_lab_figures(tmp_path, xt, yt)
    assert sorted(path.name for path in paths.values()) == sorted(
        ["latent_scatter.png", "digit_grid.png", "reconstructions.png", "learning_curves.png"])
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in paths.values())


def test_a_kept_figure_is_the_picture_jupyter_shows_and_a_fresh_start_removes_it(tmp_path, model, small_data):
    from IPython.core.pylabtools import print_figure

    from vae_lab.config import ConfigError
    from vae_lab.errors import LabError
    from vae_lab.record_format import LAB_FIGURES

    (_, _), (xt, yt) = small_data
    _, history = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), tmp_path, data=small_data, verbose=0)
    with pytest.raises(LabError, match="latent_scatter.png, digit_grid.png, reconstructions.png, learning_curves.png"):
        vae_lab.lab_figure_paths(tmp_path)
    figure = vae_lab.plot_digit_grid(model)
    shown = print_figure(figure, "png", bbox_inches="tight")  # what the inline backend displays
    kept = vae_lab.keep_figure(figure, tmp_path, "digit_grid")
    plt.close(figure)
    assert kept == shown == (tmp_path / "digit_grid.png").read_bytes()
    with pytest.raises(ConfigError, match="not a lab figure"):
        vae_lab.keep_figure(vae_lab.plot_prior_samples(model), tmp_path, "prior_samples")
    plt.close("all")
    figure = vae_lab.plot_prior_samples(model)  # not kept: drawn the same way, described by its title
    assert vae_lab.figure_png(figure) == print_figure(figure, "png", bbox_inches="tight")
    assert vae_lab.describe_figure(figure) == "Samples decoded from z ~ N(0, I)"
    assert vae_lab.describe_figure(figure, "digit_grid") == LAB_FIGURES["digit_grid"].caption
    plt.close("all")
    for name, draw in (("latent_scatter", lambda: vae_lab.plot_latent_scatter(model, xt, yt)),
                       ("reconstructions", lambda: vae_lab.plot_reconstructions(model, xt)),
                       ("learning_curves", lambda: vae_lab.plot_learning_curves(history))):
        vae_lab.keep_figure(draw(), tmp_path, name)
        plt.close("all")
    assert sorted(vae_lab.lab_figure_paths(tmp_path)) == sorted(LAB_FIGURES)
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=1), tmp_path, data=small_data, verbose=0,
                  overwrite=True)  # a fresh start: the figures of the run before are gone
    assert not any(path.exists() for path in (tmp_path / figure.file for figure in LAB_FIGURES.values()))


def test_a_figure_of_an_older_model_is_not_kept_as_the_runs(tmp_path, small_data):
    """A training cell run again and interrupted leaves the older `model` in the kernel and another run in RUN_DIR:
    the figure cells must not keep its pictures as this run's (code review, 2026-12-06)."""
    import vae_lab
    from vae_lab.config import ConfigError
    from vae_lab.plots import keep_figure, plot_digit_grid

    run = tmp_path / "run"
    older, _ = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    keep_figure(plot_digit_grid(older), run, "digit_grid")  # its own run: kept

    def stop_in_epoch_2(epoch, model):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        vae_lab.train(vae_lab.TrainConfig(epochs=2, batch_size=64, seed=1), run, data=small_data, verbose=0,
                      overwrite=True, before_epoch=stop_in_epoch_2)
    with pytest.raises(ConfigError, match="shows a model .* does not hold: the training cell was run again"):
        keep_figure(plot_digit_grid(older), run, "digit_grid")
    assert not (run / "digit_grid.png").exists()  # the earlier picture went with the fresh start, none came back
    keep_figure(plot_digit_grid(vae_lab.load_model(run / "model.keras")), run, "digit_grid")  # the folder's own


def test_the_learning_curves_of_another_run_are_not_kept_and_a_run_that_trained_nothing_keeps_its_own(tmp_path,
                                                                                                   small_data):
    """A second review (2026-12-06): the curves carried no mark and were kept beside another run; a resume with no
    epoch left wrote no token, so its own figures were refused."""
    import vae_lab
    from vae_lab.config import ConfigError
    from vae_lab.plots import keep_figure, plot_digit_grid, plot_learning_curves

    run = tmp_path / "run"
    model, history = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    keep_figure(plot_learning_curves(history), run, "learning_curves")
    (run / "timing.json").write_text('{"epoch_seconds": [1.0]}')  # a run an earlier release wrote: no token
    model, history = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0,
                                   resume=True)  # nothing left to train
    keep_figure(plot_digit_grid(model), run, "digit_grid")
    other = tmp_path / "other"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=4), other, data=small_data, verbose=0)
    with pytest.raises(ConfigError, match="does not hold"):
        keep_figure(plot_learning_curves(history), other, "learning_curves")
