# copy of c02: KL moved first, docstrings added, helper variables for the variance and for 1 - p, negation moved before the sum
"""Loss functions and sampling for the VAE lab."""
import tensorflow as tf

EPS = 1e-6


def kl_divergence(z_mean, z_log_var):
    """KL divergence to N(0, I), returns shape (batch,)."""
    var = tf.exp(z_log_var)
    kl = 1.0 + z_log_var - tf.square(z_mean) - var
    kl = -0.5 * kl
    kl = tf.reduce_sum(kl, axis=1, keepdims=True)  # (batch, 1)
    return tf.squeeze(kl, axis=1)  # (batch,)


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + sigma * eps."""
    std = tf.exp(0.5 * z_log_var)
    z = std * epsilon + z_mean
    return z


def reconstruction_loss(x, x_decoded):
    """Summed binary cross-entropy, returns shape (batch,)."""
    p = tf.clip_by_value(x_decoded, EPS, 1.0 - EPS)
    one_minus_p = 1.0 - p
    nll = -(tf.math.xlogy(1.0 - x, one_minus_p) + tf.math.xlogy(x, p))
    nll = tf.reduce_sum(nll, axis=1, keepdims=True)  # (batch, 1)
    return tf.squeeze(nll, axis=1)  # (batch,)
