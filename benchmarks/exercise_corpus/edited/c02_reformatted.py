# copy of c02: reformatted (temporaries merged into single expressions, one call split over lines, comments dropped)
import tensorflow as tf

EPS = 1e-6


def reparameterize(z_mean, z_log_var, epsilon):
    return z_mean + tf.exp(0.5 * z_log_var) * epsilon


def kl_divergence(z_mean, z_log_var):
    kl = -0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var),
                              axis=1, keepdims=True)
    return tf.squeeze(kl, axis=1)


def reconstruction_loss(x, x_decoded):
    p = tf.clip_by_value(x_decoded,
                         EPS,
                         1.0 - EPS)
    log_lik = tf.reduce_sum(
        tf.math.xlogy(x, p) + tf.math.xlogy(1.0 - x, 1.0 - p),
        axis=1,
        keepdims=True,
    )
    return tf.squeeze(-log_lik, axis=1)
