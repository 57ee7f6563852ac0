"""What a lab record prints and the grader reads back, defined once: the history line, the metric keys,
and the figures a record must show.

The training loop writes the history line with `format_epoch_line`; the grader reads it with
`parse_epoch_line`. Both live here so that changing one without the other fails a test
(`tests/test_record_format.py`), not a class's grading.
"""

from dataclasses import dataclass

HISTORY_KEYS = ("loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss", "val_kl_loss")

# The test-set metrics that `evaluation.evaluate_run` writes, with the words a table uses for them.
METRIC_LABELS = {
    "test_neg_elbo": "Negative ELBO (loss)",
    "test_reconstruction_loss": "Reconstruction term",
    "test_kl_loss": "KL term",
    "test_nll_iw": "Importance-weighted NLL",
}
METRIC_KEYS = (*METRIC_LABELS, "final_val_loss")

# A printed line longer than this is no history line (the real one is about 160 characters).
MAX_EPOCH_LINE = 1000


@dataclass(frozen=True)
class LabFigure:
    """One figure of the lab: its file in a run directory, its caption, and the plot function that
    draws it (the grader finds the figure in a record by the cell that calls that function)."""

    file: str
    caption: str
    plot_function: str
    required: bool  # a record must show it


LAB_FIGURES = {
    "latent_scatter": LabFigure("latent_scatter.png",
                                "Latent means (z₁, z₂) of the test images, coloured by their true class.",
                                "plot_latent_scatter", True),
    "digit_grid": LabFigure("digit_grid.png", "Images decoded from a 10×10 grid of latent points z ∈ [−3, 3]², rows "
                            "running from z₂ = 3 (top) to z₂ = −3 (bottom).", "plot_digit_grid", True),
    "reconstructions": LabFigure("reconstructions.png", "Test images (top) and their reconstructions (bottom).",
                                 "plot_reconstructions", False),
    "learning_curves": LabFigure("learning_curves.png", "Negative ELBO per epoch in nats per image, training and "
                                 "validation, and its reconstruction and KL terms.",
                                 "plot_learning_curves", False),
}
REQUIRED_FIGURES = tuple(name for name, figure in LAB_FIGURES.items() if figure.required)


def figure_label(name):
    """How a person reads a figure's name: 'latent scatter' for 'latent_scatter'."""
    return name.replace("_", " ")


def format_epoch_line(epoch, epochs, seconds, logs):
    """The line the training prints after each epoch (`epoch` counts from 1); `logs` maps keys to values."""
    return f"Epoch {epoch}/{epochs}  {seconds:.1f} s  " + "  ".join(f"{key} {value:.2f}" for key, value in logs.items())


def parse_epoch_line(line):
    """`(epoch, epochs, {key: value})` from one printed line, or None when it is not a history line.

    Splits on whitespace (linear in the line, whatever it holds); a value that is not a plain decimal
    number, nan or inf is left out, and so is any key not in HISTORY_KEYS.
    """
    if len(line) > MAX_EPOCH_LINE:
        return None
    words = line.split()
    if len(words) < 4 or words[0] != "Epoch" or words[3] != "s" or not _is_decimal(words[2]):
        return None
    done, slash, total = words[1].partition("/")
    if not (slash and _digits(done) and _digits(total) and len(done) <= 4 and len(total) <= 4):
        return None
    values = {}
    for key, value in zip(words[4::2], words[5::2]):
        if key in HISTORY_KEYS and key not in values and (_is_decimal(value) or value in ("nan", "inf", "-inf")):
            values[key] = float(value)
    return int(done), int(total), values


def _is_decimal(text):
    """Whether TEXT is a plain decimal number such as -12.34 (at most 20 characters)."""
    digits = text[1:] if text.startswith("-") else text
    whole, _, fraction = digits.partition(".")
    return 0 < len(digits) <= 20 and _digits(whole) and (fraction == "" or _digits(fraction))


def _digits(text):
    return text.isascii() and text.isdigit()  # str.isdigit alone accepts '²', which float() refuses
