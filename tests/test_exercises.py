"""The check a student runs on each function they write: `correct`, or one sentence that says what to change,
including for the slips the catalogued mistakes don't cover (no `return`, a cast, noise of its own); and the
self-check, which reads what those check cells printed."""

import json
from pathlib import Path

import pytest

from vae_lab.exercises import MISTAKES, diagnose

ROOT = Path(__file__).resolve().parents[1]


def _ops():
    from vae_lab.backend import ops

    return ops


def kl_divergence_without_return(z_mean, z_log_var):
    ops = _ops()
    kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)  # noqa: F841


def reconstruction_loss_in_float64(x, x_decoded):
    ops = _ops()
    p = ops.clip(x_decoded, 1e-7, 1.0 - 1e-7)
    return ops.cast(-ops.sum(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p), axis=-1), "float64")


def reparameterize_with_noise_of_its_own(z_mean, z_log_var, epsilon):
    from vae_lab.backend import tf

    return z_mean + _ops().exp(0.5 * z_log_var) * tf.random.normal(tf.shape(z_mean))


def kl_divergence_textbook_order(z_mean, z_log_var):
    ops = _ops()
    return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=-1)


def kl_divergence_over_the_batch(z_mean, z_log_var):
    ops = _ops()
    return 0.5 * ops.sum(ops.exp(z_log_var) + ops.square(z_mean) - 1.0 - z_log_var, axis=0)


@pytest.mark.parametrize("name, function, words", [
    ("kl_divergence", kl_divergence_without_return, "returns None: end the function with `return`"),
    ("reconstruction_loss", reconstruction_loss_in_float64, "returns float64 numbers where training uses float32"),
    ("reparameterize", reparameterize_with_noise_of_its_own, "use the epsilon it is given"),
    ("kl_divergence", MISTAKES["kl_without_half"].function, MISTAKES["kl_without_half"].sentence),
    ("kl_divergence", kl_divergence_textbook_order, "correct"),
    ("kl_divergence", kl_divergence_over_the_batch, "one value per latent dimension: it sums over the batch (axis 0)"),
])
def test_each_slip_gets_its_own_sentence(name, function, words):
    verdict = diagnose(name, function)
    assert words in verdict and (verdict == "correct") == (words == "correct"), verdict


def test_the_self_check_fails_a_function_its_own_check_cell_called_wrong(tmp_path):
    from vae_lab.course.grade import self_check

    notebook = json.loads((ROOT / "notebooks" / "vae_mnist_exercises.ipynb").read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "check_exercise(kl_divergence)" in "".join(cell["source"]):
            cell["outputs"][0]["text"] = ["kl_divergence: " + MISTAKES["kl_without_half"].sentence + "\n"]
    (tmp_path / "mine.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    graded, table = self_check(tmp_path / "mine.ipynb")
    reason = graded.checks["exercises"].reason
    assert "kl_divergence: its check cell says" in reason and "Restart & Run All" in reason
    assert "reparameterize: its check cell" not in reason  # the other two printed 'correct'


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    from vae_lab.course.grade import self_check

    (tmp_path / "s01.ipynb").write_bytes(b"")
    graded, _ = self_check(tmp_path / "s01.ipynb")
    assert "the file is empty" in graded.checks["readable"].reason


def test_training_with_an_unwritten_or_raising_function_is_one_sentence_before_anything_is_written(tmp_path):
    import vae_lab
    from vae_lab.config import ConfigError

    def kl_divergence(z_mean, z_log_var):
        raise NotImplementedError("write kl_divergence")

    def reconstruction_loss(x, x_decoded):
        return _ops().sum(x, axis=-1, keep_dims=True)  # a misspelled keyword

    for functions, words in ((vae_lab.LossFunctions(kl_divergence=kl_divergence), "kl_divergence is not written yet"),
                             (vae_lab.LossFunctions(reconstruction_loss=reconstruction_loss),
                              "reconstruction_loss raises TypeError")):
        with pytest.raises(ConfigError, match=words):
            vae_lab.train(vae_lab.TrainConfig(epochs=1), tmp_path / "run", functions=functions, data=((), ()))
        assert not (tmp_path / "run").exists()


def kl_divergence_not_summed(z_mean, z_log_var):
    ops = _ops()
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))  # one value per latent dimension


def kl_divergence_in_numpy(z_mean, z_log_var):
    import numpy as np

    return -0.5 * np.sum(1.0 + z_log_var - np.square(z_mean) - np.exp(z_log_var), axis=-1)


@pytest.mark.parametrize("name, function, words", [
    ("kl_divergence", kl_divergence_without_return, "kl_divergence returns nothing"),
    ("kl_divergence", kl_divergence_not_summed, r"kl_divergence gives float32 of shape \(3, 2\) for a batch of 3"),
    ("reconstruction_loss", reconstruction_loss_in_float64, "reconstruction_loss gives float64"),
    ("kl_divergence", kl_divergence_in_numpy, "kl_divergence works on its own but not inside the compiled"),
])
def test_a_function_that_would_fail_inside_the_compiled_step_is_one_sentence_before_training(tmp_path, name, function,
                                                                                           words):
    """Found by a code review (2026-12-06): each of these passed the check and ended in a 29-33 line traceback."""
    import vae_lab
    from vae_lab.config import ConfigError

    with pytest.raises(ConfigError, match=words):
        vae_lab.train(vae_lab.TrainConfig(epochs=1), tmp_path / "run", functions=vae_lab.LossFunctions(**{name: function}),
                      data=((), ()))
    assert not (tmp_path / "run").exists()


def test_a_check_cell_shows_its_sentence_once(capsys):
    from vae_lab.exercises import check_exercise

    def kl_divergence(z_mean, z_log_var):
        return MISTAKES["kl_without_half"].function(z_mean, z_log_var)

    assert check_exercise(kl_divergence) is None  # no Out[] repeating the printed line
    assert capsys.readouterr().out == f"kl_divergence: {MISTAKES['kl_without_half'].sentence}\n"


def reconstruction_loss_with_a_python_if(x, x_decoded):
    ops = _ops()
    if ops.min(x_decoded) <= 0.0:  # a Python `if` on a tensor: AutoGraph makes it a tf.cond when compiled
        x_decoded = ops.clip(x_decoded, 1e-7, 1 - 1e-7)
    x_decoded = ops.clip(x_decoded, 1e-7, 1 - 1e-7)
    return -ops.sum(x * ops.log(x_decoded) + (1 - x) * ops.log(1 - x_decoded), axis=-1)


def test_a_correct_function_with_a_python_if_is_correct_and_trains():
    """The checks compile as the epoch program does, AutoGraph on (a second review, 2026-12-06: with it off, this
    correct function was refused as 'not inside the compiled training step')."""
    import vae_lab
    from vae_lab.training import check_functions_run

    assert diagnose("reconstruction_loss", reconstruction_loss_with_a_python_if) == "correct"
    check_functions_run(vae_lab.LossFunctions(reconstruction_loss=reconstruction_loss_with_a_python_if), 2)


def test_a_function_fixed_after_functions_was_made_is_refused_before_training():
    # a student fixed kl_divergence and ran its cell again, but not the cell that makes `functions`: training
    # used the old function silently (an instructor's hunt, 2026-12-06)
    import vae_lab
    from vae_lab.config import ConfigError
    from vae_lab.training import refuse_stale_functions

    namespace = {"__name__": "__main__"}
    source = "def kl_divergence(z_mean, z_log_var):\n    return z_mean[:, 0] * 0.0\n"
    exec(compile(source, "<cell 1>", "exec"), namespace)
    functions = vae_lab.LossFunctions(kl_divergence=namespace["kl_divergence"])
    refuse_stale_functions(functions, namespace)  # as made: fine
    exec(compile(source, "<cell 1, run again>", "exec"), namespace)
    with pytest.raises(ConfigError, match="run the cell that makes `functions` again"):
        refuse_stale_functions(functions, namespace)
    refuse_stale_functions(vae_lab.LossFunctions(), namespace)  # the package's own functions are never stale


def test_the_exercise_listing_hides_the_solutions_and_says_which_stub_is_the_students():
    from vae_lab.report import program_listing

    listing = program_listing(exercises=True)
    assert "ops.exp(0.5 * z_log_var)" not in listing and "ops.clip(" not in listing
    assert listing.count("you write this one") == 3 and "as reconstruction_loss(x, x_decoded)" in listing
    assert "from the logits, hidden" in listing
