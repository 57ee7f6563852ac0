# student b01: PyTorch-style, plain tf.* ops with explicit intermediates, clips x_decoded to [1e-7, 1 - 1e-7]
import tensorflow as tf

EPS = 1e-7


def reparameterize(z_mean, z_log_var, epsilon):
    # std = exp(0.5 * logvar), like torch.exp(0.5 * logvar)
    std = tf.exp(0.5 * z_log_var)
    z = z_mean + std * epsilon
    return z


def kl_divergence(z_mean, z_log_var):
    # KL(N(mu, sigma^2) || N(0, 1)), summed over latent dims -> one value per image
    mu_sq = tf.square(z_mean)
    var = tf.exp(z_log_var)
    kl_per_dim = 1.0 + z_log_var - mu_sq - var
    kl = -0.5 * tf.reduce_sum(kl_per_dim, axis=1)
    return kl


def reconstruction_loss(x, x_decoded):
    # binary cross-entropy summed over pixels (like F.binary_cross_entropy(..., reduction='sum') but per image)
    x_hat = tf.clip_by_value(x_decoded, EPS, 1.0 - EPS)
    log_p = tf.math.log(x_hat)
    log_1mp = tf.math.log(1.0 - x_hat)
    bce = -(x * log_p + (1.0 - x) * log_1mp)
    loss = tf.reduce_sum(bce, axis=1)
    return loss
