"""Figures: each plot function returns a Figure; the latent grid's layout matches the lab sheet."""

import matplotlib

matplotlib.use("Agg")  # tests draw off-screen; the notebook keeps its inline backend

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import vae_lab


@pytest.fixture(scope="module")
def model():
    return vae_lab.VAE(latent_dim=2, seed=0)


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


def test_each_plot_returns_a_figure(model, small_data):
    (x, y), (xt, yt) = small_data
    history = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "reconstruction_loss": [2.5, 1.8],
               "val_reconstruction_loss": [3.0, 2.2], "kl_loss": [0.5, 0.2], "val_kl_loss": [0.5, 0.3]}
    figures = [vae_lab.plot_latent_scatter(model, xt, yt, class_names=[f"c{k}" for k in range(10)]),
               vae_lab.plot_reconstructions(model, xt, count=6),
               vae_lab.plot_learning_curves(history),
               vae_lab.plot_interpolation(model, xt[0], xt[1], steps=7),
               vae_lab.plot_prior_samples(model, rows=2, cols=5)]
    assert all(isinstance(figure, Figure) for figure in figures)
    colorbar_labels = [label.get_text() for label in figures[0].axes[1].get_yticklabels()]
    assert colorbar_labels == [f"c{k}" for k in range(10)]
    assert figures[1].axes[0].images[0].get_array().shape == (56, 6 * 28)
    for figure in figures:
        plt.close(figure)


def test_save_lab_figures_writes_four_pngs(tmp_path, model, small_data):
    (_, _), (xt, yt) = small_data
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), tmp_path, data=small_data, verbose=0)
    paths = vae_lab.save_lab_figures(tmp_path, xt, yt)
    assert sorted(path.name for path in paths.values()) == sorted(
        ["latent_scatter.png", "digit_grid.png", "reconstructions.png", "learning_curves.png"])
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in paths.values())
