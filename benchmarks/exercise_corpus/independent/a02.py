# student a02: keras.ops, sigma = sqrt(exp(log_var)); reconstruction via keras.losses.binary_crossentropy (pixel mean) rescaled by the pixel count
import keras
from keras import ops


def reparameterize(z_mean, z_log_var, epsilon):
    # standard deviation from the log-variance
    std = ops.sqrt(ops.exp(z_log_var))
    z = z_mean + std * epsilon
    return z


def kl_divergence(z_mean, z_log_var):
    # closed form KL between N(mu, sigma^2) and N(0, 1), summed over latent dims
    var = ops.exp(z_log_var)
    kl_per_dim = 1 + z_log_var - ops.square(z_mean) - var
    return -0.5 * ops.sum(kl_per_dim, axis=1)


def reconstruction_loss(x, x_decoded):
    # keras' binary_crossentropy averages over the last axis (and clips internally),
    # so multiply back by the number of pixels to get the sum
    n_pixels = ops.shape(x)[-1]
    mean_bce = keras.losses.binary_crossentropy(x, x_decoded)
    return mean_bce * ops.cast(n_pixels, mean_bce.dtype)
