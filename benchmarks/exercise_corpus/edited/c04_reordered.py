# copy of c04: functions reordered, docstrings added, eps moved to a module constant, log terms computed in the other order, helper for 1 - x
import tensorflow as tf

EPS = 1e-7


def kl_divergence(z_mean, z_log_var):
    """Per-image KL(q(z|x) || N(0, I))."""
    mean_sq = z_mean ** 2
    variance = tf.exp(z_log_var)
    kl_per_dim = -0.5 * (1 + z_log_var - mean_sq - variance)
    return tf.reduce_sum(kl_per_dim, axis=-1)


def reconstruction_loss(x, x_decoded):
    """Per-image binary cross-entropy summed over pixels."""
    log_one_minus_p = tf.math.log(1 - x_decoded + EPS)
    log_p = tf.math.log(x_decoded + EPS)
    one_minus_x = 1 - x
    bce = -(one_minus_x * log_one_minus_p + x * log_p)
    return tf.reduce_sum(bce, axis=-1)


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + exp(log_var / 2) * epsilon."""
    sigma = tf.exp(z_log_var / 2)
    return sigma * epsilon + z_mean
