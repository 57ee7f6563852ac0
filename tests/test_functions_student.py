"""A student's reparameterize, kl_divergence and reconstruction_loss, passed to the model and both training paths."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import vae_lab
from vae_lab.model import LossFunctions, reconstruction_loss_from_probabilities
from vae_lab.training import build_model

pytestmark = pytest.mark.slow  # trains models (seconds each): left out of make test-fast

# The small run of tests/conftest.py's small_data (TrainConfig(epochs=2, batch_size=64, seed=3)) as the
# package trained it before functions became arguments (2026-12, the 2-core Intel Xeon, AVX-512). On
# that machine the defaults gave these values bit for bit; elsewhere the last digits may differ.
HISTORY_BEFORE = {"loss": [481.51711082458496, 356.35150623321533],
                  "val_loss": [381.9074401855469, 343.3793821334839]}


def kl_without_its_half(z_mean, z_log_var):
    """A student's KL that forgot the 1/2: twice the true value."""
    return ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)


def kl_written_out(z_mean, z_log_var):
    """The package's own formula, retyped by a student: the same operations in the same order."""
    return 0.5 * ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)


def no_noise(z_mean, z_log_var, epsilon):
    """A student's reparameterize that drops the noise."""
    return z_mean


def one_batch(small_data):
    (x, _), test = small_data
    return (x[:64], None), test


def fit_first_batch(small_data, functions):
    """fit()'s metrics after one step of batch 64 (computed before that step's update)."""
    (x, _), _ = small_data
    vae_lab.set_seed(7)
    model = build_model(vae_lab.TrainConfig(batch_size=64, seed=7), functions=functions)
    return model.fit(x[:64], batch_size=64, epochs=1, shuffle=False, verbose=0).history


def fast_first_batch(small_data, functions):
    """The one-program epoch's metrics for one batch of 64: again before the update."""
    _, history = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=7), data=one_batch(small_data),
                               verbose=0, functions=functions)
    return {key: values[0] for key, values in history.items()}


@pytest.mark.parametrize("first_batch", [fit_first_batch, fast_first_batch], ids=["fit", "fast_path"])
def test_a_kl_without_its_half_is_what_training_reports(small_data, first_batch):
    package = first_batch(small_data, None)
    student = first_batch(small_data, LossFunctions(kl_divergence=kl_without_its_half))
    assert np.ravel(student["kl_loss"])[0] == pytest.approx(2 * np.ravel(package["kl_loss"])[0], rel=1e-6)
    assert np.ravel(student["reconstruction_loss"])[0] == pytest.approx(np.ravel(package["reconstruction_loss"])[0],
                                                                         rel=1e-6)


@pytest.mark.parametrize("first_batch", [fit_first_batch, fast_first_batch], ids=["fit", "fast_path"])
def test_a_reconstruction_from_probabilities_gets_probabilities(small_data, first_batch):
    """Called with sigmoid(logits): the clipped BCE equals the package's from the logits (with logits it
    would take the log of negative numbers: NaN)."""
    package = first_batch(small_data, None)
    student = first_batch(small_data, LossFunctions(reconstruction_loss=reconstruction_loss_from_probabilities))
    for key in ("reconstruction_loss", "kl_loss"):
        assert np.ravel(student[key])[0] == pytest.approx(np.ravel(package[key])[0], rel=1e-5), key


def test_a_reparameterize_without_noise_changes_the_run(small_data):
    package = fast_first_batch(small_data, None)
    student = fast_first_batch(small_data, LossFunctions(reparameterize=no_noise))
    assert student["kl_loss"] == pytest.approx(package["kl_loss"], rel=1e-6)  # the same encoder: only z differs
    assert student["reconstruction_loss"] != package["reconstruction_loss"]


def test_the_package_defaults_are_unchanged(small_data, small_config):
    """No functions, the package's own passed explicitly, and a retyped copy of its KL: one run, bit for bit."""
    first, history = vae_lab.train(small_config, data=small_data, verbose=0)
    explicit, history_explicit = vae_lab.train(small_config, data=small_data, verbose=0, functions=LossFunctions(
        reparameterize=vae_lab.reparameterize, kl_divergence=vae_lab.kl_divergence, reconstruction_loss=None))
    retyped, history_retyped = vae_lab.train(small_config, data=small_data, verbose=0,
                                             functions=LossFunctions(kl_divergence=kl_written_out))
    assert history == history_explicit == history_retyped
    for a, b, c in zip(first.get_weights(), explicit.get_weights(), retyped.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    for key, values in HISTORY_BEFORE.items():
        assert history[key] == pytest.approx(values, rel=1e-4), key


def test_a_saved_model_holds_no_functions(tmp_path, small_data):
    """model.keras keeps the weights; a loaded model trains and samples with the package's own functions."""
    config = vae_lab.TrainConfig(epochs=1, batch_size=64, seed=1)
    model, _ = vae_lab.train(config, tmp_path / "run", data=small_data, verbose=0,
                             functions=LossFunctions(kl_divergence=kl_without_its_half))
    assert model.functions.kl_divergence is kl_without_its_half
    assert "functions" not in json.dumps(model.get_config())
    loaded = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert loaded.functions == LossFunctions()
    for ours, theirs in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_a_resumed_run_takes_the_functions_again(tmp_path, small_data):
    functions = LossFunctions(kl_divergence=kl_without_its_half)
    config = vae_lab.TrainConfig(epochs=2, batch_size=64, seed=2)
    _, whole = vae_lab.train(config, data=small_data, verbose=0, functions=functions)
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=2), tmp_path / "run", data=small_data,
                  verbose=0, functions=functions)
    _, resumed = vae_lab.train(config, tmp_path / "run", data=small_data, verbose=0, resume=True,
                               functions=functions)
    assert resumed == whole


def test_reconstruction_from_probabilities_is_the_clipped_bce():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(4, 784)).astype(np.float32)
    logits = rng.normal(scale=3, size=(4, 784)).astype(np.float32)
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.sum(x * np.log(probabilities) + (1 - x) * np.log(1 - probabilities), axis=-1)
    ours = np.asarray(reconstruction_loss_from_probabilities(x, ops.sigmoid(logits)))
    np.testing.assert_allclose(ours, expected, rtol=1e-4)
    np.testing.assert_allclose(ours, np.asarray(vae_lab.reconstruction_loss(x, logits)), rtol=1e-4)
    saturated = np.asarray(reconstruction_loss_from_probabilities(np.array([[1.0, 0.0]], np.float32),
                                                                  np.array([[0.0, 1.0]], np.float32)))
    # clipped: finite, -log(1e-7) = 16.1 nats for p = 0, and for p = 1 the float32 nearest 1 - 1e-7
    assert saturated[0] == pytest.approx(-np.log(1e-7) - np.log(1 - np.float32(1 - 1e-7)), rel=1e-4)


def test_functions_must_be_functions():
    with pytest.raises(ValueError, match="without calling it"):
        LossFunctions(kl_divergence=kl_without_its_half(np.zeros((1, 2)), np.zeros((1, 2))))
    with pytest.raises(ValueError, match="reparameterize"):
        LossFunctions(reparameterize=None)
