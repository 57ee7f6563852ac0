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


def later_drift(key, epoch):
    """The largest drift measured between machines for KEY at EPOCH (2 and on)."""
    kind = "kl" if key.endswith("kl_loss") else "loss-like"
    return LATER_DRIFT[kind][min(epoch, 5) - 2]


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


def verify(history, metrics, reference):
    """The 'verified numbers' Verdict of a record's printed history and metrics against REFERENCE."""
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
        return failed("epoch 1 is not a run of your assigned seed", f"{first_where}")
    worst, where = 0.0, ""
    for key in HISTORY_KEYS:
        for epoch, (printed, expected) in enumerate(zip(history[key][1:], expected_history[key][1:]), start=2):
            ratio = gap(printed, expected) / later_drift(key, epoch)
            if ratio > worst:
                worst, where = ratio, f"epoch {epoch} {key} {printed:.2f}, reference {expected:.2f}"
    for key, drift in METRIC_DRIFT.items():
        ratio = gap(metrics[key], reference["metrics"][key]) / drift
        if ratio > worst:
            worst, where = ratio, f"{key} {metrics[key]:.2f}, reference {reference['metrics'][key]:.2f}"
    if worst > BAND_FACTOR:
        return failed(f"a number lies {worst:.1f} times further from the grader's run than machines ever drift "
                      "(edited?)", where)
    if first > 1:
        return review("epoch 1 lies further from the grader's run than one seed drifts between machines, nearer "
                      "than most other seeds", first_where)
    if worst > 1:
        return review("a number lies further from the grader's run than measured drift between machines", where)
    if first == 0 and worst == 0:
        return passed("reproduced to every printed digit")
    return passed("within the drift measured between machines")
