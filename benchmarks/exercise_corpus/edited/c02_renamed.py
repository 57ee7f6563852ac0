# copy of c02: all local variables and the constant renamed, comments reworded
import tensorflow as tf

TINY = 1e-6


def reparameterize(z_mean, z_log_var, epsilon):
    sd = tf.exp(0.5 * z_log_var)
    sample = z_mean + sd * epsilon
    return sample


def kl_divergence(z_mean, z_log_var):
    div = 1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var)
    div = tf.reduce_sum(div, axis=1, keepdims=True)  # one column per image
    div = -0.5 * div
    return tf.squeeze(div, axis=1)


def reconstruction_loss(x, x_decoded):
    # keep probabilities strictly inside (0, 1); xlogy returns 0 when its first argument is 0
    q = tf.clip_by_value(x_decoded, TINY, 1.0 - TINY)
    ll_pix = tf.math.xlogy(x, q) + tf.math.xlogy(1.0 - x, 1.0 - q)
    ll_pix = tf.reduce_sum(ll_pix, axis=1, keepdims=True)
    return tf.squeeze(-ll_pix, axis=1)
