# copy of c01: reformatted (wrapped argument lists, extra temporaries, merged return in reparameterize, single-quoted docstrings)
'''VAE exercise: reparameterisation trick, KL term and reconstruction loss.'''

from keras import ops

# Keeps the decoder probabilities away from exactly 0 and 1 so that log() stays finite.
EPSILON = 1e-7


def reparameterize(
    z_mean,
    z_log_var,
    epsilon,
):
    '''Draw z ~ q(z|x) with the reparameterisation trick.

    Args:
        z_mean: mean of q(z|x), shape (batch, latent_dim).
        z_log_var: log-variance of q(z|x), shape (batch, latent_dim).
        epsilon: standard normal noise, shape (batch, latent_dim).

    Returns:
        z = mu + sigma * epsilon, shape (batch, latent_dim).
    '''
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def kl_divergence(
    z_mean,
    z_log_var,
):
    '''KL(q(z|x) || N(0, I)) in closed form, one value per image.

    Returns:
        Tensor of shape (batch,).
    '''
    mean_sq = ops.square(z_mean)
    var = ops.exp(z_log_var)
    per_dim = (1.0
               + z_log_var
               - mean_sq
               - var)
    total = ops.sum(per_dim, axis=-1)
    return -0.5 * total


def reconstruction_loss(
    x,
    x_decoded,
):
    '''Binary cross-entropy summed over the pixels, one value per image.

    Returns:
        Tensor of shape (batch,) in nats.
    '''
    p = ops.clip(
        x_decoded,
        EPSILON,
        1.0 - EPSILON,
    )
    term_on = x * ops.log(p)
    term_off = (1.0 - x) * ops.log(1.0 - p)
    log_likelihood = term_on + term_off
    return -ops.sum(
        log_likelihood,
        axis=-1,
    )
