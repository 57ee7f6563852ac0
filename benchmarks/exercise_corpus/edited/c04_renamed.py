# copy of c04: every local variable renamed
import tensorflow as tf


def reparameterize(z_mean, z_log_var, epsilon):
    scale = tf.exp(z_log_var / 2)
    return z_mean + scale * epsilon


def kl_divergence(z_mean, z_log_var):
    v = tf.exp(z_log_var)
    per_latent = -0.5 * (1 + z_log_var - z_mean ** 2 - v)
    return tf.reduce_sum(per_latent, axis=-1)


def reconstruction_loss(x, x_decoded):
    delta = 1e-7
    lp = tf.math.log(x_decoded + delta)
    lq = tf.math.log(1 - x_decoded + delta)
    cross_ent = -(x * lp + (1 - x) * lq)
    return tf.reduce_sum(cross_ent, axis=-1)
