# student b02: terse keras.ops one-liners, clipping with keras.backend.epsilon()
import keras
from keras import ops


def reparameterize(z_mean, z_log_var, epsilon):
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def kl_divergence(z_mean, z_log_var):
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def reconstruction_loss(x, x_decoded):
    p = ops.clip(x_decoded, keras.backend.epsilon(), 1 - keras.backend.epsilon())
    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=-1)
