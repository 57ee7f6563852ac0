# student c01: keras.ops throughout, clipped probabilities and explicit Bernoulli log-likelihood, docstrings with shapes
"""VAE exercise: reparameterisation trick, KL term and reconstruction loss."""

from keras import ops

# Keeps the decoder probabilities away from exactly 0 and 1 so that log() stays finite.
EPSILON = 1e-7


def reparameterize(z_mean, z_log_var, epsilon):
    """Draw z ~ q(z|x) with the reparameterisation trick.

    Args:
        z_mean: mean of q(z|x), shape (batch, latent_dim).
        z_log_var: log-variance of q(z|x), shape (batch, latent_dim).
        epsilon: standard normal noise, shape (batch, latent_dim).

    Returns:
        z = mu + sigma * epsilon, shape (batch, latent_dim).
    """
    sigma = ops.exp(0.5 * z_log_var)  # (batch, latent_dim)
    return z_mean + sigma * epsilon  # (batch, latent_dim)


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) in closed form, one value per image.

    Args:
        z_mean: shape (batch, latent_dim).
        z_log_var: shape (batch, latent_dim).

    Returns:
        Tensor of shape (batch,).
    """
    per_dim = 1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)  # (batch, latent_dim)
    return -0.5 * ops.sum(per_dim, axis=-1)  # (batch,)


def reconstruction_loss(x, x_decoded):
    """Binary cross-entropy summed over the pixels, one value per image.

    Args:
        x: original images, grey levels in [0, 1], shape (batch, 784).
        x_decoded: decoder probabilities in [0, 1], shape (batch, 784).

    Returns:
        Tensor of shape (batch,) in nats.
    """
    p = ops.clip(x_decoded, EPSILON, 1.0 - EPSILON)  # (batch, 784)
    log_likelihood = x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p)  # (batch, 784)
    return -ops.sum(log_likelihood, axis=-1)  # (batch,)
