# student b04: keras.ops throughout, elementwise keras.ops.binary_crossentropy (it clips internally) summed over pixels
from keras import ops


def reparameterize(z_mean, z_log_var, epsilon):
    # z = mu + sigma * eps
    z_std = ops.exp(z_log_var / 2.0)
    return ops.add(z_mean, ops.multiply(z_std, epsilon))


def kl_divergence(z_mean, z_log_var):
    # closed-form KL between the diagonal Gaussian posterior and the standard normal prior
    kl = 1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)
    kl = ops.sum(kl, axis=-1)
    return -0.5 * kl


def reconstruction_loss(x, x_decoded):
    # ops.binary_crossentropy returns the per-pixel loss (no reduction) and clips
    # the probabilities with the backend epsilon, so exact 0/1 outputs are fine
    per_pixel = ops.binary_crossentropy(x, x_decoded, from_logits=False)
    return ops.sum(per_pixel, axis=-1)
