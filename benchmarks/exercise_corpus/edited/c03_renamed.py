# copy of c03: constant and local variables renamed, comments reworded
from keras import ops

N_PIXELS = 28 * 28  # image is 28 by 28


def reparameterize(z_mean, z_log_var, epsilon):
    # sigma = square root of exp(log variance)
    spread = ops.sqrt(ops.exp(z_log_var))
    return z_mean + spread * epsilon


def kl_divergence(z_mean, z_log_var):
    # closed-form divergence from the unit Gaussian prior, added up over latent units
    return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=1)


def reconstruction_loss(x, x_decoded):
    # elementwise cross-entropy (probabilities get clipped inside keras)
    pixel_losses = ops.binary_crossentropy(x, x_decoded)
    # average * count gives the total over the image
    return ops.mean(pixel_losses, axis=-1) * N_PIXELS
