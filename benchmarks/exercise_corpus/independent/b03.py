# student b03: textbook formulas taken literally: sigma^2 = square(sigma), KL = 0.5*sum(mu^2 + sigma^2 - log sigma^2 - 1), log(max(p, 1e-8))
import tensorflow as tf
from keras import ops

# floor for the arguments of the logs so that log(0) never happens
SMALL = 1e-8


def reparameterize(z_mean, z_log_var, epsilon):
    """Reparameterisation trick: z = mu + sigma * eps with sigma = exp(log(sigma^2) / 2)."""
    sigma = ops.exp(0.5 * z_log_var)
    return z_mean + sigma * epsilon


def kl_divergence(z_mean, z_log_var):
    """KL( N(mu, sigma^2) || N(0, I) ) = 1/2 * sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)."""
    sigma = ops.exp(0.5 * z_log_var)
    sigma_sq = ops.square(sigma)
    terms = ops.square(z_mean) + sigma_sq - z_log_var - 1.0
    return 0.5 * ops.sum(terms, axis=1)


def reconstruction_loss(x, x_decoded):
    """Bernoulli negative log-likelihood: -sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)]."""
    log_p = tf.math.log(tf.maximum(x_decoded, SMALL))
    log_one_minus_p = tf.math.log(tf.maximum(1.0 - x_decoded, SMALL))
    return -tf.reduce_sum(x * log_p + (1.0 - x) * log_one_minus_p, axis=1)
