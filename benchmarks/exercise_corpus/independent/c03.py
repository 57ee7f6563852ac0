# student c03: keras ops.binary_crossentropy per pixel, mean over pixels rescaled by 784; KL written as 0.5*sum(var + mu^2 - 1 - logvar)
from keras import ops

ORIGINAL_DIM = 28 * 28  # number of pixels per image


def reparameterize(z_mean, z_log_var, epsilon):
    # standard deviation is sqrt of the variance
    z_std = ops.sqrt(ops.exp(z_log_var))
    return z_mean + z_std * epsilon


def kl_divergence(z_mean, z_log_var):
    # KL between N(mu, sigma^2) and N(0, 1), summed over the latent dimensions
    return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=1)


def reconstruction_loss(x, x_decoded):
    # per-pixel binary cross-entropy (keras clips the probabilities internally)
    bce = ops.binary_crossentropy(x, x_decoded)
    # mean over the pixels times the number of pixels = sum over the pixels
    return ops.mean(bce, axis=-1) * ORIGINAL_DIM
