"""The contract between the lab and the grader, with no data: the history line round trip, the figures,
the metric keys."""

import math

from hypothesis import given
from hypothesis import strategies as st

from vae_lab.record_format import (HISTORY_KEYS, LAB_FIGURES, METRIC_KEYS, METRIC_LABELS, REQUIRED_FIGURES,
                                   format_epoch_line, parse_epoch_line)

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(epoch=st.integers(1, 999), extra=st.integers(0, 99), seconds=st.floats(0, 1e5),
       logs=st.fixed_dictionaries({key: values for key in HISTORY_KEYS}))
def test_every_printed_line_parses_back_to_its_printed_digits(epoch, extra, seconds, logs):
    line = format_epoch_line(epoch, epoch + extra, seconds, logs)
    parsed_epoch, epochs, parsed = parse_epoch_line(line)
    assert (parsed_epoch, epochs) == (epoch, epoch + extra)
    assert set(parsed) == set(HISTORY_KEYS)
    assert all(abs(parsed[key] - logs[key]) <= 0.005 + 1e-9 * abs(logs[key]) for key in HISTORY_KEYS)


def test_non_finite_values_parse_as_such():
    line = format_epoch_line(1, 5, 2.0, {"loss": math.nan, "kl_loss": math.inf})
    assert math.isnan(parse_epoch_line(line)[2]["loss"]) and parse_epoch_line(line)[2]["kl_loss"] == math.inf


def test_lines_that_are_no_history_are_not_read():
    for line in ("", "Epoch", "Epoch 1/5", "Epoch ²/5  1.0 s  loss 1.00", "Epoch 1/5  x s  loss 1.00",
                 "epoch 1/5  1.0 s  loss 1.00", "Epoch 1/5  1.0 s  loss " + "9" * 5000,
                 "Epoch 1/5  1.0 s  " + "loss 1.00 " * 200):
        parsed = parse_epoch_line(line)
        assert parsed is None or "loss" not in parsed[2] or len(line) < 1000


def test_a_value_that_is_no_plain_decimal_is_left_out():
    assert parse_epoch_line("Epoch 1/2  1.0 s  loss 1e999  kl_loss ١٢  val_loss 3.25")[2] == {"val_loss": 3.25}


def test_the_lab_figures_and_metric_keys():
    assert {name: figure.file for name, figure in LAB_FIGURES.items()} == {
        "latent_scatter": "latent_scatter.png", "digit_grid": "digit_grid.png",
        "reconstructions": "reconstructions.png", "learning_curves": "learning_curves.png"}
    assert REQUIRED_FIGURES == ("latent_scatter", "digit_grid")
    assert all(figure.caption and figure.plot_function.startswith("plot_") for figure in LAB_FIGURES.values())
    assert METRIC_KEYS == (*METRIC_LABELS, "final_val_loss")


def test_every_figure_has_its_plot_function():
    from vae_lab import plots

    assert all(callable(getattr(plots, figure.plot_function)) for figure in LAB_FIGURES.values())
