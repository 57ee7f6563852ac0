"""Evaluation: the importance-weighted bound's properties, and metrics.json."""

import json

import numpy as np
import pytest

import vae_lab
from vae_lab import evaluation
from vae_lab.evaluation import log_density_terms

pytestmark = pytest.mark.slow  # trains models (seconds each): left out of make test-fast


@pytest.fixture(scope="module")
def trained(small_data):
    model, _ = vae_lab.train(vae_lab.TrainConfig(epochs=2, batch_size=64, seed=0), data=small_data, verbose=0)
    return model, small_data[1][0]


def test_one_draw_gives_the_single_sample_elbo(trained):
    model, x = trained
    x = x[:16]
    epsilon = np.random.default_rng(0).standard_normal((16, 1, 2)).astype(np.float32)
    log_px_z, log_pz, log_qz_x = (np.asarray(t)[:, 0] for t in log_density_terms(model, x, epsilon))
    # NumPy reference: -ELBO_1 = BCE(x, decoder(z)) + log q(z|x) - log p(z) for the same z
    z_mean, z_log_var = (np.asarray(t, np.float64) for t in model.encode(x))
    z = z_mean + np.exp(0.5 * z_log_var) * epsilon[:, 0]
    p = 1 / (1 + np.exp(-np.asarray(model.decoder(z.astype(np.float32)), np.float64)))
    bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    log_q = np.sum(-0.5 * (epsilon[:, 0] ** 2 + np.log(2 * np.pi) + z_log_var), axis=1)
    log_p = np.sum(-0.5 * (z ** 2 + np.log(2 * np.pi)), axis=1)
    np.testing.assert_allclose(-(log_px_z + log_pz - log_qz_x), bce + log_q - log_p, rtol=1e-4)


def test_iw_bound_falls_with_more_samples_and_stays_below_elbo(trained):
    model, x = trained
    results = [vae_lab.evaluate(model, x, iw_samples=k, elbo_draws=20, seed=1) for k in (1, 20, 200)]
    nll = [r["nll_iw"] for r in results]
    assert nll[0] > nll[1] > nll[2]
    assert nll[2] <= results[2]["neg_elbo"]
    # one draw: the same expectation as the ELBO (MC noise only)
    assert nll[0] == pytest.approx(results[0]["neg_elbo"], rel=0.02)
    assert results[0]["neg_elbo"] == pytest.approx(results[0]["reconstruction_loss"] + results[0]["kl_loss"])


def test_same_seed_same_numbers(trained):
    model, x = trained
    a = vae_lab.evaluate(model, x, iw_samples=30, seed=3)
    assert a == vae_lab.evaluate(model, x, iw_samples=30, seed=3)
    assert a != vae_lab.evaluate(model, x, iw_samples=30, seed=4)


def test_many_samples_go_through_in_bounded_chunks(trained, monkeypatch):
    model, x = trained
    seen = []
    original = model.decoder.__class__.__call__

    def spy(layer, z, *args, **kwargs):
        seen.append(z.shape[0])
        return original(layer, z, *args, **kwargs)

    monkeypatch.setattr(model.decoder.__class__, "__call__", spy)
    monkeypatch.setattr(evaluation, "_compiled_programs", lambda m: (
        lambda xb, elbo_eps, iw_eps: evaluation.batch_terms(m, xb, elbo_eps, iw_eps),
        lambda xb, eps: log_density_terms(m, xb, eps)))
    monkeypatch.setattr(evaluation, "ROWS_PER_CHUNK", 512)
    result = vae_lab.evaluate(model, x[:4], iw_samples=3000)
    assert np.isfinite(result["nll_iw"])
    assert max(seen) <= 512


def test_evaluation_compiles_once_per_model(trained):
    """One compiled program per model, kept between calls; the last, short batch is padded to the same shape."""
    model, x = trained
    batch_program, _ = evaluation._compiled_programs(model)
    traced = batch_program.experimental_get_tracing_count()  # other tests' shapes
    first = vae_lab.evaluate(model, x, iw_samples=100, seed=5)  # 81 images a batch: 81 + 47 (padded)
    assert vae_lab.evaluate(model, x, iw_samples=100, seed=5) == first
    assert evaluation._compiled_programs(model)[0] is batch_program
    assert batch_program.experimental_get_tracing_count() == traced + 1


def test_padding_rows_do_not_reach_the_real_images(trained):
    """The compiled batch program, fed 19 images padded to 81, gives those 19 images' own terms."""
    model, x = trained
    rng = np.random.default_rng(0)
    images = x[:19]
    elbo_epsilon, iw_epsilon = (rng.standard_normal((19, draws, 2), dtype=np.float32) for draws in (1, 30))
    batch_program, _ = evaluation._compiled_programs(model)
    padded = batch_program(*(evaluation._pad(array, 81) for array in (images, elbo_epsilon, iw_epsilon)))
    alone = evaluation.batch_terms(model, images, elbo_epsilon, iw_epsilon)  # eager, unpadded
    assert [tuple(value.shape)[1:] for value in padded] == [(), (1,), (30,), (30,), (30,)]
    for compiled, eager in zip(padded, alone):
        np.testing.assert_allclose(np.asarray(compiled)[:19], np.asarray(eager), rtol=1e-5, atol=1e-4)


def test_evaluate_run_writes_metrics(tmp_path, small_data):
    run = tmp_path / "run"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    metrics = vae_lab.evaluate_run(run, iw_samples=5, data=small_data)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == metrics
    for key in ("test_neg_elbo", "test_reconstruction_loss", "test_kl_loss", "test_nll_iw", "iw_samples",
                "epochs", "latent_dim", "seed", "dataset", "train_seconds", "evaluation_seconds"):
        assert key in saved
    assert set(saved["versions"]) >= {"python", "tensorflow", "keras", "numpy"}
    assert "| Importance-weighted NLL |" in vae_lab.metrics_table(saved)


def test_evaluate_run_without_model_says_train_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="training first"):
        vae_lab.evaluate_run(tmp_path)


def test_evaluate_run_refuses_a_run_that_stopped_before_its_last_epoch(tmp_path, small_data):
    # a training cell run again and interrupted leaves a shorter run in RUN_DIR: the figure cells refused it and
    # the evaluation cell measured it silently (an instructor's hunt, 2026-12-06)
    from vae_lab.errors import UnfinishedRun

    run = tmp_path / "run"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 3}))  # as a 3-epoch re-run stopped after 1
    with pytest.raises(UnfinishedRun, match="stopped after 1 of its 3 epochs"):
        vae_lab.evaluate_run(run, iw_samples=2, data=small_data)
    assert not (run / "metrics.json").exists()
