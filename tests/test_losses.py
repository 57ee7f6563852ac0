"""The loss terms against NumPy references: the first thing to pin down."""

import numpy as np
import pytest

from vae_lab import kl_divergence, reconstruction_loss


def numpy_kl(z_mean, z_log_var):
    return -0.5 * np.sum(1 + z_log_var - z_mean ** 2 - np.exp(z_log_var), axis=-1)


def lab_sheet_kl(z_mean, z_log_var):
    """The original sheet's term, with log(mu^2) where exp(log sigma^2) belongs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -0.5 * np.sum(1 + z_log_var - z_mean ** 2 - np.log(z_mean ** 2), axis=-1)


def numpy_bce_sum(x, logits):
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    return -np.sum(x * np.log(probabilities) + (1 - x) * np.log(1 - probabilities), axis=-1)


def test_kl_is_zero_when_posterior_equals_prior():
    zeros = np.zeros((3, 2), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(kl_divergence(zeros, zeros)), np.zeros(3))


def test_kl_matches_closed_form_elsewhere():
    rng = np.random.default_rng(0)
    z_mean = rng.normal(size=(16, 2)).astype(np.float32)
    z_log_var = rng.normal(size=(16, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(kl_divergence(z_mean, z_log_var)), numpy_kl(z_mean, z_log_var),
                               rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(kl_divergence(z_mean, z_log_var)) >= 0)


def test_lab_sheet_formula_would_fail_these_checks():
    zeros = np.zeros((1, 2))
    assert not np.isfinite(lab_sheet_kl(zeros, zeros)).all()
    z_mean, z_log_var = np.full((1, 2), 0.5), np.full((1, 2), -1.0)
    assert not np.allclose(lab_sheet_kl(z_mean, z_log_var), numpy_kl(z_mean, z_log_var))


def test_kl_of_known_gaussian():
    # KL(N(1, e^0) || N(0, 1)) = 1/2 * mu^2 = 0.5 per dimension
    value = kl_divergence(np.array([[1.0, 1.0]], np.float32), np.zeros((1, 2), np.float32))
    assert float(value[0]) == pytest.approx(1.0)


def test_reconstruction_matches_binary_cross_entropy_summed_over_pixels():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(4, 784)).astype(np.float32)
    logits = rng.normal(scale=3, size=(4, 784)).astype(np.float32)
    ours = np.asarray(reconstruction_loss(x, logits))
    np.testing.assert_allclose(ours, numpy_bce_sum(x, logits), rtol=1e-5)
    per_pixel_mean = numpy_bce_sum(x, logits) / 784  # the lab sheet's scale
    np.testing.assert_allclose(ours / per_pixel_mean, 784, rtol=1e-5)


def test_reconstruction_is_finite_for_extreme_logits():
    x = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    logits = np.array([[-200.0, 200.0, 200.0, -200.0]], np.float32)
    value = np.asarray(reconstruction_loss(x, logits))
    assert np.isfinite(value).all()
    assert value[0] == pytest.approx(400.0, rel=1e-5)  # the two wrong pixels cost 200 nats each
