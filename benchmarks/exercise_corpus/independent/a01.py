# student a01: plain tf.math everywhere, sigma = exp(0.5 * log_var), log terms clipped with tf.clip_by_value
import tensorflow as tf

EPS = 1e-7


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + sigma * eps, with sigma = exp(log_var / 2)."""
    sigma = tf.math.exp(0.5 * z_log_var)
    return z_mean + sigma * epsilon


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) for each image -> shape (batch,)."""
    kl = -0.5 * tf.math.reduce_sum(
        1.0 + z_log_var - tf.math.square(z_mean) - tf.math.exp(z_log_var),
        axis=-1,
    )
    return kl


def reconstruction_loss(x, x_decoded):
    """Binary cross-entropy summed over the 784 pixels -> shape (batch,)."""
    p = tf.clip_by_value(x_decoded, EPS, 1.0 - EPS)
    bce = -(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p))
    return tf.math.reduce_sum(bce, axis=-1)
