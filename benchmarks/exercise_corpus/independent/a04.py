# student a04: tensorflow with tf.keras.backend.epsilon() clipping, xlogy-style terms via tf.math.xlogy, KL with a helper variable
import tensorflow as tf


def reparameterize(z_mean, z_log_var, epsilon):
    # reparameterisation trick: sample eps ~ N(0, I) outside, shift and scale it
    stddev = tf.sqrt(tf.exp(z_log_var))
    z = tf.add(z_mean, tf.multiply(stddev, epsilon))
    return z


def kl_divergence(z_mean, z_log_var):
    # -1/2 * sum(1 + log(sigma^2) - mu^2 - sigma^2), one value per image
    variance = tf.exp(z_log_var)
    mean_sq = tf.square(z_mean)
    inner = 1.0 + z_log_var - mean_sq - variance
    kl = -0.5 * tf.reduce_sum(inner, axis=1)
    return kl


def reconstruction_loss(x, x_decoded):
    # keep probabilities away from exactly 0 and 1 so the logs are finite
    eps = tf.keras.backend.epsilon()
    x_decoded = tf.clip_by_value(x_decoded, eps, 1.0 - eps)
    # xlogy(a, b) = a * log(b)
    cross_ent = -(tf.math.xlogy(x, x_decoded) + tf.math.xlogy(1.0 - x, 1.0 - x_decoded))
    return tf.reduce_sum(cross_ent, axis=1)
