"""A record's printed numbers against the grader's own run of the same assignment.

Tolerances in nats, from the same-seed drift and the seed spread measured by benchmarks/bench_drift.py
(README, "How records are verified"). Epoch 1 tells seeds apart: each value's tolerance sits above its
largest same-seed drift and below the closest pair of seeds. From epoch 2 on the two overlap, so later
values only catch edits: PASS within the largest drift, REVIEW up to BAND_FACTOR times it, FAIL beyond.
"""

import math

from ..record_format import HISTORY_KEYS
from .verdicts import failed, passed, review

PRINTED = 0.005  # numbers are printed with 2 decimals: half a unit of the last digit
SLACK = 1e-6  # float rounding on top of PRINTED
EPOCH1_MATCH = {"loss": 0.08, "reconstruction_loss": 0.08, "kl_loss": 0.02,
                "val_loss": 0.40, "val_reconstruction_loss": 0.40, "val_kl_loss": 0.12}
LATER_DRIFT = {"loss-like": (0.42, 0.99, 1.49, 1.49), "kl": (0.07, 0.13, 0.13, 0.20)}  # epochs 2, 3, 4, 5 and on
METRIC_DRIFT = {"test_neg_elbo": 0.97, "test_reconstruction_loss": 0.97, "test_kl_loss": 0.20,
                "test_nll_iw": 0.97, "final_val_loss": 1.49}
EPOCH1_REVIEW_FACTOR = 2.0  # epoch 1 up to this many tolerances away: can't tell drift from a near seed
BAND_FACTOR = 2.5
# Exercise records: a student's correct functions compute the same formulas in another order of operations,
# which moves the later epochs further than machines drift. benchmarks/bench_exercises.py (13 correct
# implementations, 12 of them written blind, x 3 seeds, 5 epochs) measured up to 0.40 / 0.89 / 1.25 / 0.60 nats
# at epochs 2-5 (val_reconstruction), 0.10 / 0.19 / 0.26 / 0.29 of val_KL, 0.67 of a test metric; these bands are
# 1.5 times that, where it exceeds the machines' drift. Epoch 1 still decides: correct functions moved it by
# at most 0.031 nats, every catalogued mistake by 1.69 or more.
EXERCISE_LATER_DRIFT = {"loss-like": (0.60, 1.33, 1.88, 1.88), "kl": (0.15, 0.28, 0.38, 0.44)}
EXERCISE_METRIC_DRIFT = {"test_neg_elbo": 1.01, "test_reconstruction_loss": 1.01, "test_kl_loss": 0.44,
                         "test_nll_iw": 1.01, "final_val_loss": 1.88}


def later_drift(key, epoch, exercise=False):
    """The band for KEY at EPOCH (2 and on): the largest drift measured between machines, or for an exercise
    record between correct implementations, whichever is larger."""
    kind = "kl" if key.endswith("kl_loss") else "loss-like"
    index = min(epoch, 5) - 2
    return max(LATER_DRIFT[kind][index], EXERCISE_LATER_DRIFT[kind][index] if exercise else 0.0)


def metric_drift(key, exercise=False):
    return max(METRIC_DRIFT[key], EXERCISE_METRIC_DRIFT[key] if exercise else 0.0)


def gap(printed, expected):
    """How far a printed value lies beyond what printing with 2 decimals explains (inf for NaN)."""
    if not math.isfinite(printed):
        return math.inf
    return max(0.0, abs(printed - expected) - PRINTED - SLACK)


def epoch_one_ratio(history, expected_history):
    """(ratio, where): the worst epoch-1 value's gap in units of its tolerance, and which value it is."""
    return max((gap(history[key][0], expected_history[key][0]) / tolerance,
                f"epoch 1 {key} {history[key][0]:.2f}, reference {expected_history[key][0]:.2f}")
               for key, tolerance in EPOCH1_MATCH.items())


def verify(history, metrics, reference, exercise=False):
    """The 'verified numbers' Verdict of a record's printed history and metrics against REFERENCE (with the
    wider later-epoch bands of exercise records when EXERCISE)."""
    if not history or not metrics:
        return failed("nothing to verify: no printed history or metrics")
    expected_history = reference["history"]
    if len(history["loss"]) != len(expected_history["loss"]):
        return failed(f"{len(history['loss'])} epochs printed, {len(expected_history['loss'])} assigned")
    missing = [key for key in reference["metrics"] if key in METRIC_DRIFT and key not in metrics]
    if missing:
        return failed(f"metrics missing: {', '.join(missing)}")
    first, first_where = epoch_one_ratio(history, expected_history)
    if first > EPOCH1_REVIEW_FACTOR:
        return failed("epoch 1 is not the grader's run of your assignment (another seed, other parameters or other "
                      "code)" if exercise else "epoch 1 is not a run of your assigned seed", f"{first_where}")
    worst, where = 0.0, ""
    for key in HISTORY_KEYS:
        for epoch, (printed, expected) in enumerate(zip(history[key][1:], expected_history[key][1:]), start=2):
            ratio = gap(printed, expected) / later_drift(key, epoch, exercise)
            if ratio > worst:
                worst, where = ratio, f"epoch {epoch} {key} {printed:.2f}, reference {expected:.2f}"
    for key in METRIC_DRIFT:
        ratio = gap(metrics[key], reference["metrics"][key]) / metric_drift(key, exercise)
        if ratio > worst:
            worst, where = ratio, f"{key} {metrics[key]:.2f}, reference {reference['metrics'][key]:.2f}"
    if worst > BAND_FACTOR:
        return failed(f"a number lies {worst:.1f} times further from the grader's run than machines ever drift "
                      "(edited?)", where)
    if first > 1:
        return review("epoch 1 lies further from the grader's run than one seed drifts between machines, nearer "
                      "than most other seeds", first_where)
    if worst > 1:
        return review("a number lies further from the grader's run than measured drift between machines"
                      + (" and correct implementations" if exercise else ""), where)
    if first == 0 and worst == 0:
        return passed("reproduced to every printed digit")
    return passed("within the drift measured between machines")
