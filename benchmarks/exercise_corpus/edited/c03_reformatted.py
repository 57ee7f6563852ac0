# copy of c03: reformatted (KL split into temporaries, reconstruction merged into one line, constant written as 784)
from keras import ops

ORIGINAL_DIM = 784


def reparameterize(z_mean, z_log_var, epsilon):
    z_std = ops.sqrt( ops.exp( z_log_var ) )
    return z_mean + z_std*epsilon


def kl_divergence(z_mean, z_log_var):
    var = ops.exp(z_log_var)
    mu_sq = ops.square(z_mean)
    inner = var + mu_sq - 1.0 - z_log_var
    return 0.5 * ops.sum(inner, axis=1)


def reconstruction_loss(x, x_decoded):
    return ops.mean(ops.binary_crossentropy(x, x_decoded), axis=-1) * ORIGINAL_DIM
