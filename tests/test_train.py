"""Training: run directory, determinism, resume, NaN guard, bad input, existing runs."""

import json

import keras
import numpy as np
import pytest

import vae_lab
from vae_lab.epoch_program import compile_epoch_programs, epoch_means, in_batches
from vae_lab.run_directory import RunDirectoryError
from vae_lab.training import TrainingDiverged, build_model, epoch_order

pytestmark = pytest.mark.slow  # trains models (seconds each): left out of make test-fast


def test_run_directory_and_history(tmp_path, small_data, small_config):
    model, history = vae_lab.train(small_config, tmp_path / "run", data=small_data, verbose=0)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.json", "model.keras", "timing.json"]
    assert json.loads((run / "history.json").read_text()) == history
    assert json.loads((run / "config.json").read_text())["batch_size"] == 64
    assert all(len(values) == 2 for values in history.values())
    assert history["loss"][1] < history["loss"][0]


def test_same_seed_gives_identical_history_and_weights(small_data, small_config):
    first, history_a = vae_lab.train(small_config, data=small_data, verbose=0)
    second, history_b = vae_lab.train(small_config, data=small_data, verbose=0)
    assert history_a == history_b
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    third, history_c = vae_lab.train(vae_lab.TrainConfig(epochs=2, batch_size=64, seed=4),
                                     data=small_data, verbose=0)
    assert history_c != history_a


def interrupt_at(stop_epoch):
    def before_epoch(epoch, model):
        if epoch == stop_epoch:
            raise KeyboardInterrupt
    return before_epoch


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path, small_data):
    config = vae_lab.TrainConfig(epochs=3, batch_size=64, seed=5)
    _, reference = vae_lab.train(config, tmp_path / "whole", data=small_data, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        vae_lab.train(config, tmp_path / "cut", data=small_data, verbose=0, before_epoch=interrupt_at(2))
    saved = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert len(saved["loss"]) == 2  # the finished epochs were kept
    model, resumed = vae_lab.train(config, tmp_path / "cut", data=small_data, verbose=0, resume=True)
    assert resumed == reference
    whole = keras.models.load_model(tmp_path / "whole" / "model.keras")
    for a, b in zip(whole.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resume_trusts_the_model_when_history_is_one_epoch_ahead(tmp_path, small_data):
    config = vae_lab.TrainConfig(epochs=2, batch_size=64, seed=6)
    _, reference = vae_lab.train(config, tmp_path / "whole", data=small_data, verbose=0)
    short = vae_lab.TrainConfig(epochs=1, batch_size=64, seed=6)
    run = tmp_path / "killed"
    vae_lab.train(short, run, data=small_data, verbose=0)
    # a kill between writing history.json and model.keras leaves history one epoch ahead
    (run / "history.json").write_text(json.dumps({k: v * 2 for k, v in reference.items()}))
    _, resumed = vae_lab.train(config, run, data=small_data, verbose=0, resume=True)
    assert resumed == reference


def test_a_resume_leaves_no_earlier_models_outputs_and_never_goes_back(tmp_path, small_data):
    """Code review, 2026-12-06: an interrupted --resume left the 1-epoch run's metrics and figures beside a
    2-epoch model, and --resume --epochs 1 on a 3-epoch run was accepted."""
    from vae_lab.run_directory import OUTPUTS, RunDirectoryError

    run = tmp_path / "run"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    for name in OUTPUTS:
        (run / name).write_text("the 1-epoch model's")
    with pytest.raises(KeyboardInterrupt):
        vae_lab.train(vae_lab.TrainConfig(epochs=3, batch_size=64), run, data=small_data, verbose=0, resume=True,
                      before_epoch=interrupt_at(2))
    assert not [name for name in OUTPUTS if (run / name).exists()]
    with pytest.raises(RunDirectoryError, match="holds 2 trained epochs: resume with --epochs 2 or more"):
        vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0, resume=True)
    assert json.loads((run / "config.json").read_text())["epochs"] == 3  # nothing rewritten


def test_a_run_read_after_a_kill_between_its_two_writes_is_the_models(tmp_path, small_data):
    """history.json one epoch ahead of model.keras: evaluation and figures describe the model, not the history."""
    from vae_lab.run_directory import load_run

    config = vae_lab.TrainConfig(epochs=2, batch_size=64, seed=6)
    _, two = vae_lab.train(config, tmp_path / "whole", data=small_data, verbose=0)
    run = tmp_path / "killed"
    _, one = vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=6), run, data=small_data, verbose=0)
    (run / "history.json").write_text(json.dumps(two))
    _, history = load_run(run)
    assert history == one
    metrics = vae_lab.evaluate_run(run, iw_samples=2, data=small_data)
    assert metrics["epochs"] == 1 and metrics["final_val_loss"] == pytest.approx(one["val_loss"][-1])


def test_resume_extends_a_finished_run(tmp_path, small_data):
    run = tmp_path / "run"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    _, history = vae_lab.train(vae_lab.TrainConfig(epochs=2, batch_size=64), run, data=small_data,
                               verbose=0, resume=True)
    assert len(history["loss"]) == 2


def poison_weights(epoch, model):
    """Make the loss NaN from the first batch of the second epoch."""
    if epoch == 1:
        kernel = model.decoder.layers[-1].kernel
        kernel.assign(np.full(kernel.shape, np.nan, np.float32))


def test_nan_loss_stops_at_once_and_keeps_last_good_epoch(tmp_path, small_data, small_config):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"epoch 2, at batch 1 of 8.*learning rate") as error:
        vae_lab.train(small_config, run, data=small_data, verbose=0, before_epoch=poison_weights)
    assert "[0, 1]" in str(error.value)
    kept = keras.models.load_model(run / "model.keras")
    assert all(np.isfinite(w).all() for w in kept.get_weights())
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 1


@pytest.mark.parametrize("scale, message", [(255.0, r"\[0, 1\]"), (np.nan, "NaN")])
def test_input_outside_unit_interval_is_refused_before_training(small_data, scale, message, tmp_path):
    (x, y), test = small_data
    with pytest.raises(ValueError, match=message):
        vae_lab.train(vae_lab.TrainConfig(epochs=1), tmp_path / "run", data=((x * scale, y), test), verbose=0)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_nan_in_the_first_epoch_says_no_model_was_kept(tmp_path, small_data, small_config):
    poison_first = lambda epoch, model: poison_weights(epoch + 1, model)  # noqa: E731
    with pytest.raises(TrainingDiverged, match="epoch 1, at batch 1 of 8.*No epoch finished, so no model was kept"):
        vae_lab.train(small_config, tmp_path / "run", data=small_data, verbose=0, before_epoch=poison_first)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_loss_that_diverges_on_the_test_set_keeps_no_model_of_it(tmp_path, small_data, small_config, monkeypatch):
    """The epoch's last step can make the model NaN with every training batch finite: its validation says so,
    and that epoch is not saved as finished (code review, 2026-12-06: it was, with an infinite val_loss)."""
    import vae_lab.training as training

    compile_programs = training.compile_epoch_programs

    def poisoned_validation(model):
        train_epoch, validation_epoch = compile_programs(model)

        def validation(*arguments):
            poison_weights(1, model)
            return validation_epoch(*arguments)
        return train_epoch, validation

    monkeypatch.setattr(training, "compile_epoch_programs", poisoned_validation)
    with pytest.raises(TrainingDiverged, match="on the test set after epoch 1.*No epoch finished"):
        vae_lab.train(small_config, tmp_path / "run", data=small_data, verbose=0)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_divergence_with_the_students_functions_names_them_first(tmp_path, small_data, small_config):
    from vae_lab.model import kl_divergence

    functions = vae_lab.LossFunctions(kl_divergence=lambda z_mean, z_log_var: kl_divergence(z_mean, z_log_var))
    with pytest.raises(TrainingDiverged, match=r"Likely causes: your kl_divergence \(vae_lab.check_exercise"):
        vae_lab.train(small_config, tmp_path / "run", data=small_data, verbose=0, before_epoch=poison_weights,
                      functions=functions)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("latent_dim", 0), ("batch_size", -1),
                                          ("learning_rate", 0.0), ("learning_rate", float("nan")),
                                          ("dataset", "cifar")])
def test_impossible_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        vae_lab.TrainConfig(**{field: value}).checked()


def test_a_dataset_typo_is_one_sentence_where_the_config_is_made():
    """The notebook's Parameters cell with Debian's folder name: one sentence listing the choices, in the cell that
    makes the config (code review, 2026-12-06: a bare KeyError from the next line)."""
    from vae_lab.config import ConfigError

    with pytest.raises(ConfigError, match="dataset must be one of mnist, fashion_mnist, not 'fashion-mnist'") as error:
        vae_lab.TrainConfig(dataset="fashion-mnist", epochs=5, seed=0)
    assert error.value._render_traceback_() == [f"ConfigError: {error.value}"]


def test_existing_run_with_other_config_is_refused_unless_overwrite(tmp_path, small_data, small_config):
    run = tmp_path / "run"
    vae_lab.train(small_config, run, data=small_data, verbose=0)
    before = (run / "model.keras").read_bytes()
    other = vae_lab.TrainConfig(epochs=2, batch_size=32, seed=3)
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        vae_lab.train(other, run, data=small_data, verbose=0)
    with pytest.raises(RunDirectoryError, match="only --epochs"):
        vae_lab.train(other, run, data=small_data, verbose=0, resume=True)
    assert (run / "model.keras").read_bytes() == before  # nothing touched
    vae_lab.train(other, run, data=small_data, verbose=0, overwrite=True)
    assert json.loads((run / "config.json").read_text())["batch_size"] == 32


def test_overwrite_never_mixes_old_checkpoint_with_new_config(tmp_path, small_data, small_config):
    run = tmp_path / "run"
    vae_lab.train(small_config, run, data=small_data, verbose=0)
    other = vae_lab.TrainConfig(epochs=2, batch_size=32, seed=3)
    with pytest.raises(KeyboardInterrupt):
        vae_lab.train(other, run, data=small_data, verbose=0, overwrite=True, before_epoch=interrupt_at(0))
    assert not (run / "model.keras").exists()  # the old run's model is not left to be resumed
    _, history = vae_lab.train(other, run, data=small_data, verbose=0, resume=True)
    _, fresh = vae_lab.train(other, tmp_path / "fresh", data=small_data, verbose=0)
    assert history == fresh


def test_resume_without_a_run_is_refused(tmp_path, small_data, small_config):
    with pytest.raises(RunDirectoryError, match="no run to resume"):
        vae_lab.train(small_config, tmp_path / "empty", data=small_data, verbose=0, resume=True)


def test_in_batches_covers_every_image_once_and_masks_the_padding():
    order = np.random.default_rng(0).permutation(130)
    indices, mask = in_batches(order, 64)
    assert indices.shape == mask.shape == (3, 64)
    assert mask.sum() == 130 and mask[2, 2:].sum() == 0
    np.testing.assert_array_equal(indices.ravel()[:130], order)


def test_compiled_validation_sums_only_the_real_images(small_data):
    """The masked, padded batches give the same sums as the real images alone, batch by batch."""
    (_, _), (x_test, _) = small_data
    x = x_test[:100]
    model = build_model(vae_lab.TrainConfig(seed=2))
    _, validation_epoch = compile_epoch_programs(model)
    state = model.seed_generator.state.numpy()
    model.reset_metrics()
    steps = validation_epoch(x, *in_batches(np.arange(100), 64))
    totals = [model.reconstruction_tracker.total.numpy(), model.kl_tracker.total.numpy()]
    model.seed_generator.state.assign(state)  # replay the same draws of z, eagerly
    expected = np.zeros(2)
    for start in (0, 64):
        batch = np.concatenate([x[start:start + 64], np.repeat(x[:1], 28 if start else 0, axis=0)])
        logits, z_mean, z_log_var = model(batch, training=True)
        real = min(64, 100 - start)
        expected += (np.asarray(vae_lab.reconstruction_loss(batch, logits))[:real].sum(),
                     np.asarray(vae_lab.kl_divergence(z_mean, z_log_var))[:real].sum())
    assert int(steps) == 2 and model.kl_tracker.count.numpy() == 100
    # XLA and the eager kernels round differently (about 1e-4 here); counting the 28 padded
    # images would be about 30 % off.
    np.testing.assert_allclose(totals, expected, rtol=1e-3)


def test_fit_and_the_fast_path_give_the_same_first_epoch(small_data):
    """Keras's fit() calling train_step batch by batch, and the one-program epoch, fed the same batches."""
    (x, _), _ = small_data
    x = x[:500]  # 8 batches of 64, the last one short: padded and weighted 0 in the fast path
    config = vae_lab.TrainConfig(epochs=1, batch_size=64, seed=7)
    ordered = x[epoch_order(config.seed, 0, len(x))]
    vae_lab.set_seed(config.seed)
    model = build_model(config)
    # XLA draws other normal numbers than TensorFlow's kernels from the same seed: compile fit's
    # step with XLA too, so both paths draw the same z.
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=True)
    with_fit = model.fit(ordered, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    vae_lab.set_seed(config.seed)
    model = build_model(config)
    train_epoch, _ = compile_epoch_programs(model)
    model.reset_metrics()
    train_epoch(x, *in_batches(epoch_order(config.seed, 0, len(x)), 64))
    fast = epoch_means(model)
    for key in ("loss", "reconstruction_loss", "kl_loss"):
        assert fast[key] == pytest.approx(with_fit[key][0], rel=1e-3), key


def test_a_folder_whose_config_no_run_could_use_is_named_and_can_be_replaced(tmp_path, small_data):
    from vae_lab.run_directory import RunDirectoryError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"dataset": "fashion-mnist", "epochs": 1}')  # edited by hand
    with pytest.raises(RunDirectoryError, match=r"config.json holds no settings a run could use .*--overwrite"):
        vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0, overwrite=True)
    assert json.loads((run / "config.json").read_text())["dataset"] == "mnist"
