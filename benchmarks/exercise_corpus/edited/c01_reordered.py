# copy of c01: functions in a different order, module docstring removed, helper variable for 1 - EPSILON, statements in KL reordered
from keras import ops

EPSILON = 1e-7
UPPER = 1.0 - EPSILON


def reconstruction_loss(x, x_decoded):
    """Binary cross-entropy summed over the pixels, one value per image.

    Args:
        x: original images, grey levels in [0, 1], shape (batch, 784).
        x_decoded: decoder probabilities in [0, 1], shape (batch, 784).

    Returns:
        Tensor of shape (batch,) in nats.
    """
    p = ops.clip(x_decoded, EPSILON, UPPER)  # (batch, 784)
    log_likelihood = (1.0 - x) * ops.log(1.0 - p) + x * ops.log(p)  # (batch, 784)
    return -ops.sum(log_likelihood, axis=-1)  # (batch,)


def kl_divergence(z_mean, z_log_var):
    """KL(q(z|x) || N(0, I)) in closed form, one value per image."""
    variance = ops.exp(z_log_var)  # (batch, latent_dim)
    mean_squared = ops.square(z_mean)  # (batch, latent_dim)
    per_dim = 1.0 + z_log_var - mean_squared - variance  # (batch, latent_dim)
    return -0.5 * ops.sum(per_dim, axis=-1)  # (batch,)


def reparameterize(z_mean, z_log_var, epsilon):
    """Draw z ~ q(z|x) with the reparameterisation trick.

    Returns:
        z = mu + sigma * epsilon, shape (batch, latent_dim).
    """
    sigma = ops.exp(0.5 * z_log_var)  # (batch, latent_dim)
    z = sigma * epsilon + z_mean
    return z
