"""A reused, compiled trainer gives every run bit for bit as a fresh `train` + `evaluate_run` does."""

import numpy as np
import pytest

import vae_lab
from vae_lab import training
from vae_lab.model import LossFunctions
from vae_lab.training import Trainer, build_model, cached_trainer, reference_history_and_metrics, reset_to_seed

pytestmark = pytest.mark.slow  # trains models (seconds each): left out of make test-fast

IW_SAMPLES = 7
TIMINGS = ("train_seconds", "evaluation_seconds")


def fresh_run(config, data, tmp_path):
    """What a record holds today: `train` into a run directory, then `evaluate_run` (model.keras re-loaded)."""
    run_dir = tmp_path / f"fresh-{config.seed}"
    model, history = vae_lab.train(config, run_dir, data=data, verbose=0, overwrite=True)
    metrics = vae_lab.evaluate_run(run_dir, iw_samples=IW_SAMPLES, seed=1, data=data)
    return history, metrics, model.get_weights()


def without_timings(metrics):
    return {key: value for key, value in metrics.items() if key not in (*TIMINGS, "versions")}


@pytest.fixture
def empty_trainer_cache(monkeypatch):
    monkeypatch.setattr(training, "_TRAINERS", type(training._TRAINERS)())


def test_a_reused_trainer_equals_fresh_runs_bit_for_bit(tmp_path, small_data, empty_trainer_cache):
    fresh = {}
    for seed in (11, 12, 13):
        fresh[seed] = fresh_run(vae_lab.TrainConfig(epochs=2, batch_size=64, seed=seed), small_data, tmp_path)
    trainer = None
    for seed in (11, 12, 11, 13):  # interleaved: a seed run again after another
        config = vae_lab.TrainConfig(epochs=2, batch_size=64, seed=seed)
        history, metrics = reference_history_and_metrics(config, small_data, iw_samples=IW_SAMPLES, evaluation_seed=1)
        fresh_history, fresh_metrics, fresh_weights = fresh[seed]
        assert history == fresh_history, seed
        assert without_timings(metrics) == without_timings(fresh_metrics), seed
        assert set(metrics) == set(fresh_metrics) - {"versions"}
        trainer = trainer or cached_trainer(config, 512, 128)
        assert cached_trainer(config, 512, 128) is trainer  # one trainer for the four runs
        for ours, theirs in zip(trainer.model.get_weights(), fresh_weights):
            np.testing.assert_array_equal(ours, theirs)
    assert trainer.train_epoch.experimental_get_tracing_count() == 1  # compiled once
    assert trainer.validation_epoch.experimental_get_tracing_count() == 1


def test_read_only_data_is_converted_once_and_gives_the_same_runs(small_data, empty_trainer_cache):
    (x, y), (xt, yt) = small_data
    x, xt = x.copy(), xt.copy()
    x.setflags(write=False)
    xt.setflags(write=False)
    read_only = ((x, y), (xt, yt))
    config = vae_lab.TrainConfig(epochs=1, batch_size=64, seed=4)
    first = reference_history_and_metrics(config, read_only, iw_samples=3, evaluation_seed=0)
    trainer = cached_trainer(config, 512, 128)
    kept = trainer.tensors(x, xt)
    assert trainer.tensors(x, xt) is kept
    second = reference_history_and_metrics(config, read_only, iw_samples=3, evaluation_seed=0)
    writable = reference_history_and_metrics(config, small_data, iw_samples=3, evaluation_seed=0)
    assert first[0] == second[0] == writable[0]
    assert without_timings(first[1]) == without_timings(second[1]) == without_timings(writable[1])


def test_reset_gives_exactly_a_fresh_models_state(small_data):
    """After training, `reset_to_seed` leaves every variable (weights, Adam's, the seed generator's) as
    `build_model` gives them for that seed, and the same config (seed included) as a fresh model."""
    trainer = Trainer(build_model(vae_lab.TrainConfig(batch_size=64, seed=1)))
    (x_train, _), (x_test, _) = small_data
    trainer.run_epochs(vae_lab.TrainConfig(epochs=1, batch_size=64, seed=1), x_train, x_test, {}, {})
    reset_to_seed(trainer.model, 9)
    fresh = Trainer(build_model(vae_lab.TrainConfig(batch_size=64, seed=9)))
    fresh.model.optimizer.build(fresh.model.trainable_variables)
    ours, theirs = trainer.model, fresh.model
    assert [tuple(v.shape) for v in ours.variables] == [tuple(v.shape) for v in theirs.variables]
    for a, b in zip([*ours.variables, *ours.optimizer.variables, *ours.metrics_variables],
                    [*theirs.variables, *theirs.optimizer.variables, *theirs.metrics_variables], strict=True):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value), err_msg=a.path)
    assert ours.get_config() | {"name": None} == theirs.get_config() | {"name": None}
    assert [layer.kernel_initializer.get_config() for layer in ours.encoder.layers] == \
        [layer.kernel_initializer.get_config() for layer in theirs.encoder.layers]


def test_the_cache_keys_on_the_shape_not_the_seed(empty_trainer_cache):
    config = vae_lab.TrainConfig(seed=1, epochs=3)
    trainer = cached_trainer(config, 512, 128)
    assert cached_trainer(vae_lab.TrainConfig(seed=2, epochs=5), 512, 128) is trainer
    assert cached_trainer(config, 256, 128) is not trainer
    assert cached_trainer(vae_lab.TrainConfig(seed=1, batch_size=32), 512, 128) is not trainer
    functions = LossFunctions(kl_divergence=lambda m, v: vae_lab.kl_divergence(m, v))
    assert cached_trainer(config, 512, 128, functions) is not trainer
    for extra in range(training.TRAINERS_KEPT):
        cached_trainer(vae_lab.TrainConfig(latent_dim=3 + extra), 512, 128)
    assert len(training._TRAINERS) == training.TRAINERS_KEPT
