# student c04: TensorFlow ops, sigma = exp(log_var / 2), small constant added inside the logs for stability
import tensorflow as tf


def reparameterize(z_mean, z_log_var, epsilon):
    sigma = tf.exp(z_log_var / 2)
    return z_mean + sigma * epsilon


def kl_divergence(z_mean, z_log_var):
    variance = tf.exp(z_log_var)
    kl_per_dim = -0.5 * (1 + z_log_var - z_mean ** 2 - variance)
    return tf.reduce_sum(kl_per_dim, axis=-1)


def reconstruction_loss(x, x_decoded):
    eps = 1e-7
    log_p = tf.math.log(x_decoded + eps)
    log_one_minus_p = tf.math.log(1 - x_decoded + eps)
    bce = -(x * log_p + (1 - x) * log_one_minus_p)
    return tf.reduce_sum(bce, axis=-1)
