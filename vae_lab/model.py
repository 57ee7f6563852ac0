"""The lab's VAE (784-512-256-2 latent, mirrored decoder), its loss in nats per image, and one training step."""

import random
from dataclasses import dataclass
from typing import Callable, Optional

from .backend import keras, layers, ops, tf
from .config import ConfigError
from .data import IMAGE_SIZE


def reconstruction_loss(x, logits):
    """Bernoulli negative log-likelihood summed over the pixels: sum(softplus(l) - x*l).

    This is binary cross-entropy of x against sigmoid(l), computed from the logits
    so it never takes log(0). Summed, not averaged: the lab sheet's per-pixel mean
    made this term 784 times too small next to the KL term.
    """
    return ops.sum(ops.softplus(logits) - x * logits, axis=-1)


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).

    Kingma & Welling (2014), appendix B. The lab sheet had log(mu^2) in place of
    sigma^2 = exp(log sigma^2), which is -inf at mu = 0 and NaN from epoch 1.
    """
    return 0.5 * ops.sum(ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + sigma * eps with sigma = exp(log sigma^2 / 2): a draw that gradients flow through."""
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def reconstruction_loss_from_probabilities(x, x_decoded):
    """Binary cross-entropy summed over the pixels, from pixel probabilities: -sum(x log p + (1-x) log(1-p)).

    The exercise's reference solution: p is clipped to [1e-7, 1 - 1e-7] first, so a saturated pixel
    costs at most -log(1e-7) = 16.1 nats instead of log(0). `reconstruction_loss` computes the same
    from the logits, without the clip.
    """
    p = ops.clip(x_decoded, 1e-7, 1.0 - 1e-7)
    return -ops.sum(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p), axis=-1)


@dataclass(frozen=True)
class LossFunctions:
    """The three functions a student writes in the exercise, with the package's own as defaults.

    `reparameterize(z_mean, z_log_var, epsilon)` -> z; `kl_divergence(z_mean, z_log_var)` -> KL per image;
    `reconstruction_loss(x, x_decoded)` -> BCE summed over the pixels per image, from pixel
    PROBABILITIES x_decoded = sigmoid(logits). `reconstruction_loss=None` means the package's own,
    computed from the logits (never log(0)). Frozen, so it can key a cache of compiled trainers.
    """

    reparameterize: Callable = reparameterize
    kl_divergence: Callable = kl_divergence
    reconstruction_loss: Optional[Callable] = None

    def __post_init__(self):
        for name in ("reparameterize", "kl_divergence", "reconstruction_loss"):
            value = getattr(self, name)
            if not (callable(value) or (name == "reconstruction_loss" and value is None)):
                raise ConfigError(f"{name} must be a function, not {value!r}: pass the function itself, "
                                 "without calling it")

    def reconstruction(self, x, logits):
        """The reconstruction term of each image, from the decoder's logits."""
        if self.reconstruction_loss is None:
            return reconstruction_loss(x, logits)
        return self.reconstruction_loss(x, ops.sigmoid(logits))


PACKAGE_FUNCTIONS = LossFunctions()


def initializer_seeds(seed, layers=6):
    """The seeds of the model's GlorotUniform initializers, layer by layer (encoder, then decoder).

    They come from the model's own generator, not Keras's draw from Python's global `random`, which
    another thread (Jupyter's, Dask's) may draw from at any moment.
    """
    draws = random.Random(seed)
    return [draws.randint(1, int(1e9)) for _ in range(layers)]  # the draw Keras makes for an unseeded one


def _mlp(input_size, hidden_units, output_size, name, seeds):
    def dense(units, **options):
        initializer = keras.initializers.GlorotUniform(seed=next(seeds))
        return layers.Dense(units, kernel_initializer=initializer, **options)

    stack = [keras.Input(shape=(input_size,))]
    stack += [dense(units, activation="relu") for units in hidden_units]
    stack += [dense(output_size)]
    return keras.Sequential(stack, name=name)


@keras.saving.register_keras_serializable(package="vae_lab")
class VAE(keras.Model):
    """Variational autoencoder; `fit()` trains it with `train_step`, and `vae_lab.train` runs the
    same step in a faster loop.

    `functions` (a `LossFunctions`) are the reparameterization, KL and reconstruction terms that
    `sample`, `train_step` and `test_step` use; None means the package's own. A saved model.keras
    holds no functions: a loaded model uses the package's own.
    """

    def __init__(self, latent_dim=2, seed=0, functions=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.seed = seed
        self.functions = functions or PACKAGE_FUNCTIONS
        seeds = iter(initializer_seeds(seed))
        self.encoder = _mlp(IMAGE_SIZE, (512, 256), 2 * latent_dim, "encoder", seeds)
        self.decoder = _mlp(latent_dim, (256, 512), IMAGE_SIZE, "decoder", seeds)  # outputs logits
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def build(self, input_shape=None):
        pass  # encoder and decoder are built in __init__

    def encode(self, x):
        """Return `(z_mean, z_log_var)` of q(z|x)."""
        z_mean, z_log_var = ops.split(self.encoder(x), 2, axis=-1)
        return z_mean, z_log_var

    def sample(self, z_mean, z_log_var):
        """One draw of z from q(z|x), seeded: eps ~ N(0, I), then `reparameterize`."""
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return self.functions.reparameterize(z_mean, z_log_var, epsilon)

    def decode(self, z):
        """Pixel probabilities p(x|z) for latent points z."""
        return ops.sigmoid(self.decoder(z))

    def call(self, x, training=False):
        z_mean, z_log_var = self.encode(x)
        logits = self.decoder(self.sample(z_mean, z_log_var))
        return logits, z_mean, z_log_var

    @property
    def metrics(self):
        return [self.reconstruction_tracker, self.kl_tracker]  # fit() resets them each epoch

    def train_step(self, data):
        """One step of gradient descent on the batch's mean negative ELBO.

        `data` is `x` or `(x, None, weight)`: a weight of 0 marks a padding image, whose loss and
        gradient must not count (the fast loop pads the last batch of an epoch).
        """
        x, _, weight = keras.utils.unpack_x_y_sample_weight(data)
        weight = ops.ones(ops.shape(x)[:1]) if weight is None else weight
        with tf.GradientTape() as tape:
            logits, z_mean, z_log_var = self(x, training=True)
            reconstruction = self.functions.reconstruction(x, logits)
            kl = self.functions.kl_divergence(z_mean, z_log_var)
            loss = (ops.sum(weight * reconstruction) + ops.sum(weight * kl)) / ops.sum(weight)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._track(reconstruction, kl, weight)

    def test_step(self, data):
        """The validation step: the same two terms, no update."""
        x, _, weight = keras.utils.unpack_x_y_sample_weight(data)
        weight = ops.ones(ops.shape(x)[:1]) if weight is None else weight
        logits, z_mean, z_log_var = self(x, training=True)
        return self._track(self.functions.reconstruction(x, logits), self.functions.kl_divergence(z_mean, z_log_var),
                           weight)

    def _track(self, reconstruction, kl, weight):
        self.reconstruction_tracker.update_state(reconstruction, sample_weight=weight)
        self.kl_tracker.update_state(kl, sample_weight=weight)
        reconstruction_mean, kl_mean = self.reconstruction_tracker.result(), self.kl_tracker.result()
        return {"loss": reconstruction_mean + kl_mean, "reconstruction_loss": reconstruction_mean,
                "kl_loss": kl_mean}

    def save_own_variables(self, store):
        # Keras does not save a SeedGenerator's state; without it a resumed run would draw
        # different epsilons from an uninterrupted one.
        store["seed_generator_state"] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        if "seed_generator_state" in store.keys():
            self.seed_generator.state.assign(store["seed_generator_state"])

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, seed=self.seed)
        return config
