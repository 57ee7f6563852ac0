"""The exercise mode's three functions: what the student is asked to write, and the check that runs in the
student's own kernel right after each one.

The check calls the student's function on seeded random inputs and edge cases, eagerly and inside a
compiled (XLA) function as training will, and says `correct` or names the mistake in one sentence by
comparing the output with the catalogued mistakes' outputs (`MISTAKES`). The grader never runs these
functions: it verifies the record's numbers instead (`vae_lab/course/verification.py`), and can re-train
epoch 1 with a catalogued mistake to name the one a record's numbers match.
"""

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 784


@dataclass(frozen=True)
class Mistake:
    """A wrong version of one function: what it computes, and the sentence that tells the student."""

    name: str
    exercise: str  # which function it is a wrong version of
    sentence: str
    function: object  # the wrong function, written with keras.ops like a student's
    trainable: bool = True  # training with it gives numbers a record can show (no NaN at once, no wrong shape)


@dataclass(frozen=True)
class Exercise:
    name: str
    explanation: str  # the markdown above the student's cell
    scaffold: str  # the cell the student completes


def _ops():
    from .backend import ops

    return ops


# --- the catalogued mistakes, written as a student would -------------------------------------------------------

def _kl_without_half(z_mean, z_log_var):
    ops = _ops()
    return -ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def _kl_wrong_sign(z_mean, z_log_var):
    ops = _ops()
    return 0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def _kl_lab_sheet(z_mean, z_log_var):
    ops = _ops()
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.log(ops.square(z_mean)), axis=-1)


def _kl_summed_over_batch(z_mean, z_log_var):
    ops = _ops()
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def _kl_not_summed(z_mean, z_log_var):
    ops = _ops()
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def _kl_with_sigma(z_mean, z_log_var):
    ops = _ops()
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(0.5 * z_log_var), axis=-1)


def _reparameterize_with_variance(z_mean, z_log_var, epsilon):
    ops = _ops()
    return z_mean + ops.exp(z_log_var) * epsilon


def _reparameterize_with_log_variance(z_mean, z_log_var, epsilon):
    return z_mean + z_log_var * epsilon


def _reparameterize_without_sigma(z_mean, z_log_var, epsilon):
    return z_mean + epsilon


def _reparameterize_without_noise(z_mean, z_log_var, epsilon):
    return z_mean + 0.0 * epsilon


def _bce_terms(x, x_decoded, clip=True):
    ops = _ops()
    p = ops.clip(x_decoded, 1e-7, 1.0 - 1e-7) if clip else x_decoded
    return x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p)


def _reconstruction_per_pixel_mean(x, x_decoded):
    return -_ops().mean(_bce_terms(x, x_decoded), axis=-1)


def _reconstruction_unclipped(x, x_decoded):
    return -_ops().sum(_bce_terms(x, x_decoded, clip=False), axis=-1)


def _reconstruction_wrong_sign(x, x_decoded):
    return _ops().sum(_bce_terms(x, x_decoded), axis=-1)


def _reconstruction_summed_over_batch(x, x_decoded):
    return -_ops().sum(_bce_terms(x, x_decoded))


def _reconstruction_without_second_term(x, x_decoded):
    ops = _ops()
    return -ops.sum(x * ops.log(ops.clip(x_decoded, 1e-7, 1.0 - 1e-7)), axis=-1)


def _reconstruction_squared_error(x, x_decoded):
    ops = _ops()
    return ops.sum(ops.square(x - x_decoded), axis=-1)


MISTAKES = {mistake.name: mistake for mistake in (
    Mistake("kl_without_half", "kl_divergence",
            "the KL term is twice the textbook's: check the ½ in −½ Σ(1 + log σ² − μ² − σ²)", _kl_without_half),
    Mistake("kl_wrong_sign", "kl_divergence",
            "the KL term has the wrong sign: a KL divergence is never negative", _kl_wrong_sign,
            trainable=False),  # training diverges within epoch 1 (benchmarks/bench_exercises.py)
    Mistake("kl_lab_sheet", "kl_divergence",
            "this is the lab sheet's formula with log(μ²), which is −∞ at μ = 0: the formula has σ² = exp(log σ²)",
            _kl_lab_sheet, trainable=False),
    Mistake("kl_summed_over_batch", "kl_divergence",
            "the KL is summed over the whole batch into one number: sum over the latent dimensions only "
            "(axis=-1), one value per image", _kl_summed_over_batch, trainable=False),
    Mistake("kl_not_summed", "kl_divergence",
            "the KL is not summed over the latent dimensions: it has one value per dimension, not one per image",
            _kl_not_summed, trainable=False),
    Mistake("kl_with_sigma", "kl_divergence",
            "the KL uses σ = exp(½ log σ²) where the formula has σ² = exp(log σ²)", _kl_with_sigma),
    Mistake("reparameterize_with_variance", "reparameterize",
            "z is scaled by σ² = exp(log σ²), the variance: the standard deviation is σ = exp(½ log σ²)",
            _reparameterize_with_variance),
    Mistake("reparameterize_with_log_variance", "reparameterize",
            "z is scaled by log σ² itself: the standard deviation is σ = exp(½ log σ²)",
            _reparameterize_with_log_variance),
    Mistake("reparameterize_without_sigma", "reparameterize",
            "ε is not scaled by σ: z = μ + σ·ε with σ = exp(½ log σ²)", _reparameterize_without_sigma),
    Mistake("reparameterize_without_noise", "reparameterize",
            "z = μ: without σ·ε the model is a plain autoencoder and the KL term has nothing to act on",
            _reparameterize_without_noise),
    Mistake("reconstruction_per_pixel_mean", "reconstruction_loss",
            "the reconstruction term is a per-pixel mean, 784 times too small next to the KL term: sum over the "
            "pixels (the lab sheet's mistake; the decoder then collapses to one average image)",
            _reconstruction_per_pixel_mean),
    Mistake("reconstruction_unclipped", "reconstruction_loss",
            "a probability of exactly 0 or 1 gives log(0) = −∞: clip the probabilities (e.g. to [1e-7, 1 − 1e-7])",
            _reconstruction_unclipped, trainable=False),
    Mistake("reconstruction_wrong_sign", "reconstruction_loss",
            "the reconstruction term has the wrong sign: binary cross-entropy is −Σ[x log x̂ + (1 − x) log(1 − x̂)] ≥ 0",
            _reconstruction_wrong_sign, trainable=False),
    Mistake("reconstruction_summed_over_batch", "reconstruction_loss",
            "the reconstruction term is summed over the whole batch into one number: sum over the pixels only "
            "(axis=-1), one value per image", _reconstruction_summed_over_batch, trainable=False),
    Mistake("reconstruction_without_second_term", "reconstruction_loss",
            "the reconstruction term lacks (1 − x)·log(1 − x̂): dark pixels cost nothing, so the decoder learns to "
            "paint everything white", _reconstruction_without_second_term),
    Mistake("reconstruction_squared_error", "reconstruction_loss",
            "this is a squared error, not the Bernoulli likelihood's binary cross-entropy", _reconstruction_squared_error),
)}


EXERCISES = {exercise.name: exercise for exercise in (
    Exercise("reparameterize",
             "**The reparameterisation trick.** Draw z from q(z|x) = N(μ, σ²) as a function of μ and log σ², so that "
             "gradients flow through the draw: $z = \\mu + \\sigma\\odot\\varepsilon$ with $\\sigma = "
             "\\exp(\\tfrac12\\log\\sigma^2)$; ε is given, already drawn from N(0, I).",
             'def reparameterize(z_mean, z_log_var, epsilon):\n'
             '    """z = mu + sigma * epsilon, where sigma is the standard deviation of q(z|x).\n\n'
             '    All three have shape (batch, latent_dim); return z with the same shape.\n'
             '    """\n'
             '    raise NotImplementedError("write reparameterize")\n'),
    Exercise("kl_divergence",
             "**The KL term.** $\\mathrm{KL}\\big(q(z\\mid x)\\,\\|\\,\\mathcal N(0, I)\\big) = -\\tfrac12\\sum_j "
             "\\big(1 + \\log\\sigma_j^2 - \\mu_j^2 - \\sigma_j^2\\big)$, one value per image.",
             'def kl_divergence(z_mean, z_log_var):\n'
             '    """KL(q(z|x) || N(0, I)) of each image.\n\n'
             '    z_mean and z_log_var have shape (batch, latent_dim); return shape (batch,).\n'
             '    """\n'
             '    raise NotImplementedError("write kl_divergence")\n'),
    Exercise("reconstruction_loss",
             "**The reconstruction term.** The binary cross-entropy of the image $x$ against the decoder's pixel "
             "probabilities $\\hat x$, **summed** over the 784 pixels: $-\\sum_i \\big[x_i\\log\\hat x_i + "
             "(1-x_i)\\log(1-\\hat x_i)\\big]$, one value per image. A probability can be exactly 0 or 1 in "
             "floating point: your loss must stay finite.",
             'def reconstruction_loss(x, x_decoded):\n'
             '    """Binary cross-entropy of each image, summed over its 784 pixels.\n\n'
             '    x (the images) and x_decoded (pixel probabilities in [0, 1]) have shape (batch, 784);\n'
             '    return shape (batch,).\n'
             '    """\n'
             '    raise NotImplementedError("write reconstruction_loss")\n'),
)}
# The functions a student writes, in LossFunctions' order (the grader reads them by these names).
EXERCISE_NAMES = tuple(EXERCISES)


def solutions():
    """The package's own three functions in the exercise's form (reconstruction from probabilities)."""
    from .model import LossFunctions, kl_divergence, reconstruction_loss_from_probabilities, reparameterize

    return LossFunctions(reparameterize=reparameterize, kl_divergence=kl_divergence,
                         reconstruction_loss=reconstruction_loss_from_probabilities)


def _inputs(name, seed=0, batch=16, latent=3):
    """Seeded inputs for one exercise's function (latent 3, so a hard-coded 2 shows)."""
    rng = np.random.default_rng(seed)
    if name == "reconstruction_loss":
        x = rng.uniform(0.0, 1.0, (batch, IMAGE_SIZE)).astype(np.float32)
        x[:, :100] = np.round(x[:, :100])  # some pixels exactly 0 or 1, as in MNIST
        x_decoded = rng.uniform(0.01, 0.99, (batch, IMAGE_SIZE)).astype(np.float32)
        return x, x_decoded
    z_mean = rng.normal(0.0, 1.0, (batch, latent)).astype(np.float32)
    z_log_var = rng.normal(0.0, 0.7, (batch, latent)).astype(np.float32)
    if name == "reparameterize":
        return z_mean, z_log_var, rng.standard_normal((batch, latent)).astype(np.float32)
    return z_mean, z_log_var


def _call(function, arguments, compiled=False):
    """The function's output as a NumPy array, or raise what it raised."""
    from .backend import Quiet, tf

    tensors = [tf.constant(argument) for argument in arguments]
    if compiled:
        return np.asarray(Quiet(tf.function(function, jit_compile=True))(*tensors))  # as the epoch program compiles it
    value = function(*tensors)
    if value is None:
        raise _ReturnedNone
    return np.asarray(value)


class _ReturnedNone(Exception):
    """The student's function ended without `return`."""


def _same(output, expected):
    output, expected = np.asarray(output, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return (output.shape == expected.shape and bool(np.all(np.isfinite(output) == np.isfinite(expected)))
            and bool(np.allclose(output[np.isfinite(output)], expected[np.isfinite(expected)], rtol=2e-3, atol=2e-3)))


def diagnose(name, function):
    """'correct', or one sentence saying what is wrong with the student's function NAME."""
    solution = getattr(solutions(), name)
    arguments = _inputs(name)
    try:
        output = _call(function, arguments)
    except NotImplementedError:
        return "not written yet: replace `raise NotImplementedError(...)` with your code"
    except _ReturnedNone:
        return "returns None: end the function with `return` and its result"
    except Exception as error:  # the student's code can raise anything; say it in one line
        return f"raises {type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}"
    expected = _call(solution, arguments)
    if name == "reparameterize" and not _same(output, _call(function, arguments)):
        return ("gives another z each time it is called with the same inputs: use the epsilon it is given, "
                "not noise of its own (training draws epsilon from the run's seed)")
    if not _same(output, expected):
        with np.errstate(all="ignore"):
            for mistake in MISTAKES.values():
                if mistake.exercise == name and _same(output, _call(mistake.function, arguments)):
                    return mistake.sentence
        if output.shape != expected.shape:
            if name == "reparameterize":
                return f"returns shape {output.shape}, not the shape of z_mean {expected.shape}"
            across = arguments[0].shape[-1]  # latent dimensions (KL) or pixels (reconstruction)
            if output.shape == (across,):
                return (f"returns shape {output.shape}, one value per {'latent dimension' if across != IMAGE_SIZE else 'pixel'}"
                        f": it sums over the batch (axis 0); sum over axis=-1 for one value per image, shape "
                        f"{expected.shape}")
            return f"returns shape {output.shape}, but shape {expected.shape} is needed (one value per image)"
        index = np.unravel_index(int(np.argmax(np.abs(np.nan_to_num(output - expected, nan=np.inf)))), output.shape)
        return (f"gives {output[index]:.4g} where the formula gives {expected[index]:.4g} (at index {tuple(map(int, index))} "
                "of seeded random inputs): compare your code with the formula above")
    if output.dtype != expected.dtype:
        return (f"returns {output.dtype} numbers where training uses {expected.dtype}: leave out the cast "
                "(compute with the inputs' own dtype)")
    problem = _edge_cases(name, function)
    if problem:
        return problem
    try:
        compiled = _call(function, arguments, compiled=True)
    except Exception as error:
        return (f"works on its own but not inside the compiled training step ({type(error).__name__}): use ops "
                "(keras.ops) or TensorFlow functions, not NumPy or Python math, on the tensors")
    if not _same(compiled, expected):
        return ("gives other numbers inside the compiled training step than outside it (NaN or inf?): e.g. "
                "log(p + 1e-8) can become log(0) when compiled; clip with ops.clip instead")
    return "correct"


def _edge_cases(name, function):
    """The cases a random input misses: the prior itself, and probabilities of exactly 0 and 1."""
    if name == "kl_divergence":
        zeros = np.zeros((4, 2), np.float32)
        value = _call(function, (zeros, zeros))
        if not np.allclose(value, 0.0, atol=1e-6):
            return f"at μ = 0 and log σ² = 0 (the prior itself) the KL must be 0, yours gives {float(np.ravel(value)[0]):.4g}"
    if name == "reconstruction_loss":
        x = np.array([[0.0, 1.0, 0.5, 0.0] + [0.5] * (IMAGE_SIZE - 4)], np.float32)
        x_decoded = np.array([[1.0, 0.0, 0.0, 0.0] + [0.5] * (IMAGE_SIZE - 4)], np.float32)
        with np.errstate(all="ignore"):
            for compiled in (False, True):
                try:
                    value = _call(function, (x, x_decoded), compiled=compiled)
                except Exception:
                    return None  # reported by the compiled check
                if not np.all(np.isfinite(value)):
                    return MISTAKES["reconstruction_unclipped"].sentence + (" (inside the compiled training step)"
                                                                            if compiled else "")
    return None


def check_exercise(function, images=None):
    """Print whether the student's function (reparameterize, kl_divergence or reconstruction_loss) is correct,
    or which mistake it makes. For the per-pixel mean, with IMAGES, show what it does to training. Returns
    nothing, so a check cell shows its sentence once (`diagnose` gives it as a value)."""
    name = getattr(function, "__name__", "")
    if name not in EXERCISES:
        print(f"check_exercise takes one of {', '.join(EXERCISES)}, not {name or function!r}")
        return
    verdict = diagnose(name, function)
    print(f"{name}: {verdict}")
    if verdict == MISTAKES["reconstruction_per_pixel_mean"].sentence and images is not None:
        from IPython.display import display

        display(collapse_figure(function, images))


def collapse_figure(reconstruction, images, steps=150, seed=0):
    """Digits decoded from a 5×5 latent grid after a short training with the student's reconstruction term,
    beside the same with the correct one: a per-pixel mean makes every tile the same average image."""
    import matplotlib.pyplot as plt

    from .config import TrainConfig
    from .model import LossFunctions
    from .plots import latent_grid
    from .training import build_model, set_seed

    images = np.asarray(images[:steps * 64], dtype=np.float32)
    figure, axes = plt.subplots(1, 2, figsize=(7, 3.6))
    for axis, (title, function) in zip(axes, (("your reconstruction term", reconstruction),
                                             ("summed over the pixels", solutions().reconstruction_loss))):
        set_seed(seed)
        model = build_model(TrainConfig(seed=seed), functions=LossFunctions(reconstruction_loss=function))
        model.fit(images, epochs=1, batch_size=64, verbose=0, shuffle=False)
        tiles = np.asarray(model.decode(latent_grid(5, 2.0)))
        picture = tiles.reshape(5, 5, 28, 28).transpose(0, 2, 1, 3).reshape(140, 140)
        axis.imshow(picture, cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=10)
        axis.set_axis_off()
    figure.suptitle(f"After {steps} training steps: decoded 5×5 latent grid", fontsize=10)
    plt.close(figure)
    return figure
