# student a03: keras.ops, clips with ops.clip and a small EPSILON, log1p(-p) for the second log term; KL written as 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)
from keras import ops

# small constant so that log(0) never happens
EPSILON = 1e-7


def reparameterize(z_mean, z_log_var, epsilon):
    sigma = ops.exp(z_log_var / 2.0)
    return ops.add(z_mean, ops.multiply(sigma, epsilon))


def kl_divergence(z_mean, z_log_var):
    # KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    sigma_sq = ops.exp(z_log_var)
    terms = ops.square(z_mean) + sigma_sq - 1.0 - z_log_var
    return 0.5 * ops.sum(terms, axis=-1)


def reconstruction_loss(x, x_decoded):
    # clip first so both log arguments stay strictly positive
    x_hat = ops.clip(x_decoded, EPSILON, 1.0 - EPSILON)
    log_p = ops.log(x_hat)
    log_one_minus_p = ops.log1p(-x_hat)
    per_pixel = x * log_p + (1.0 - x) * log_one_minus_p
    return -ops.sum(per_pixel, axis=-1)
