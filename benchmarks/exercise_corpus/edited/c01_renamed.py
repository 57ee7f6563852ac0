# copy of c01: every variable and the constant renamed, docstrings reworded and shortened, shape comments removed
"""Lab 4: VAE helper functions."""

from keras import ops

CLIP_VALUE = 1e-7


def reparameterize(z_mean, z_log_var, epsilon):
    """Sample a latent code using mu + std * noise.

    Inputs are the encoder mean, the encoder log-variance and
    noise drawn from a standard normal; all have the same shape.
    """
    std_dev = ops.exp(0.5 * z_log_var)
    return z_mean + std_dev * epsilon


def kl_divergence(z_mean, z_log_var):
    """Closed-form KL divergence to the standard normal prior, per sample."""
    terms = 1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    return -0.5 * ops.sum(terms, axis=-1)


def reconstruction_loss(x, x_decoded):
    """Summed binary cross-entropy between the input and its reconstruction, per sample."""
    probs = ops.clip(x_decoded, CLIP_VALUE, 1.0 - CLIP_VALUE)
    bernoulli_ll = x * ops.log(probs) + (1.0 - x) * ops.log(1.0 - probs)
    return -ops.sum(bernoulli_ll, axis=-1)
