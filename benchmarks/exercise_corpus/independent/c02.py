# student c02: plain TensorFlow; Bernoulli log-likelihood via tf.math.xlogy, reduce_sum(keepdims=True) then squeeze
import tensorflow as tf

EPS = 1e-6


def reparameterize(z_mean, z_log_var, epsilon):
    std = tf.exp(0.5 * z_log_var)
    z = z_mean + std * epsilon
    return z


def kl_divergence(z_mean, z_log_var):
    kl = 1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var)
    kl = tf.reduce_sum(kl, axis=1, keepdims=True)  # (batch, 1)
    kl = -0.5 * kl
    return tf.squeeze(kl, axis=1)  # (batch,)


def reconstruction_loss(x, x_decoded):
    # clip so that log(0) never happens, xlogy gives 0 where the weight is 0
    p = tf.clip_by_value(x_decoded, EPS, 1.0 - EPS)
    log_lik = tf.math.xlogy(x, p) + tf.math.xlogy(1.0 - x, 1.0 - p)
    log_lik = tf.reduce_sum(log_lik, axis=1, keepdims=True)  # (batch, 1)
    return tf.squeeze(-log_lik, axis=1)  # (batch,)
