"""The command line: a smoke run on small data, usage errors, and user mistakes as one line."""

import json
import os
import subprocess
import sys

import pytest

import vae_lab.data
import vae_lab.evaluation
import vae_lab.training
from vae_lab import cli

FIGURES = {"latent_scatter.png", "digit_grid.png", "reconstructions.png", "learning_curves.png"}


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vae_lab.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.slow
def test_train_smoke_on_small_data(tmp_path, small_data, monkeypatch, capsys):
    monkeypatch.setattr(vae_lab.data, "load_dataset", lambda name, data_dir=None: small_data)
    out = tmp_path / "run"
    code = cli.main(["train", "--epochs", "1", "--batch-size", "64", "--out", str(out),
                     "--iw-samples", "5", "--quiet"])
    assert code == 0
    assert FIGURES | {"model.keras", "config.json", "history.json", "metrics.json"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iw_samples"] == 5 and metrics["epochs"] == 1
    assert "importance-weighted NLL" in capsys.readouterr().out
    # same flags again: the same run, retrained; other flags: refused, nothing changed
    before = (out / "model.keras").stat().st_mtime_ns
    assert cli.main(["train", "--epochs", "2", "--batch-size", "64", "--out", str(out), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.keras").stat().st_mtime_ns == before


def test_resume_hint_on_ctrl_c(tmp_path, small_data, monkeypatch, capsys):
    monkeypatch.setattr(vae_lab.data, "load_dataset", lambda name, data_dir=None: small_data)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vae_lab.training, "train", interrupted)
    code = cli.main(["train", "--epochs", "3", "--seed", "2", "--out", str(tmp_path / "r")])
    assert code == 130
    assert f"vae-lab train --out {tmp_path / 'r'} --resume --epochs 3 --seed 2" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_during_evaluation_keeps_the_model(tmp_path, small_data, monkeypatch, capsys):
    monkeypatch.setattr(vae_lab.data, "load_dataset", lambda name, data_dir=None: small_data)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vae_lab.evaluation, "evaluate_run", interrupted)
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--batch-size", "64", "--out", str(out), "--quiet"]) == 130
    assert f"vae-lab evaluate {out}" in capsys.readouterr().err
    assert (out / "model.keras").exists()


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--latent-dim", "0"], ["--batch-size", "-4"],
                                   ["--learning-rate", "nan"], ["--epochs", "many"], ["--seed", "4294967296"]])
def test_impossible_values_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *flags])
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_missing_data_is_one_line_without_traceback(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "nowhere" in result.stderr and "does not exist" in result.stderr


def test_corrupt_data_is_one_line_and_debug_shows_traceback(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    result = run_cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "mnist.npz" in result.stderr
    debug = run_cli("train", "--debug", "--data", str(tmp_path), "--out", str(tmp_path / "run"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unwritable_out_is_one_line(tmp_path, mnist_dir):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("train", "--epochs", "1", "--out", str(blocker / "run"), "--data", str(mnist_dir))
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert str(blocker) in result.stderr


def test_real_mnist_one_epoch(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = run_cli("train", "--epochs", "1", "--out", str(out), "--iw-samples", "2", "--quiet",
                     "--data", str(mnist_dir))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert 150 < metrics["test_neg_elbo"] < 200  # after one epoch of the lab's model
    assert FIGURES <= {p.name for p in out.iterdir()}


def test_a_reader_that_leaves_early_costs_no_file(tmp_path):
    """`vae-lab grade … --csv grades.csv | head`: the table goes unread, the CSV is still written, no traceback."""
    import records

    hand_in = records.write(tmp_path, records.notebook(), "s01.ipynb")
    process = subprocess.Popen([sys.executable, "-m", "vae_lab.cli", "grade", str(hand_in), "--csv",
                                str(tmp_path / "grades.csv")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader has gone before the first line
    _, error = process.communicate(timeout=600)
    assert process.returncode == 0, error.decode()
    assert "Traceback" not in error.decode() and "BrokenPipe" not in error.decode()
    assert "s01" in (tmp_path / "grades.csv").read_text()


def test_a_default_run_folder_names_each_seed_whole():
    """Seeds that assign hands out are ten digits: 's1e+06' would give two seeds one folder (code review)."""
    from vae_lab.config import TrainConfig

    names = {cli.default_run_dir(TrainConfig(seed=seed)).name for seed in (1_000_000, 1_000_001, 1_061_993_015)}
    assert names == {"mnist-z2-e5-b256-lr0.001-s1000000", "mnist-z2-e5-b256-lr0.001-s1000001",
                     "mnist-z2-e5-b256-lr0.001-s1061993015"}


def test_the_resume_hint_keeps_the_data_folder(tmp_path, small_data, monkeypatch, capsys):
    monkeypatch.setattr(vae_lab.data, "load_dataset", lambda name, data_dir=None: small_data)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vae_lab.training, "train", interrupted)
    (tmp_path / "mnist").mkdir()
    assert cli.main(["train", "--epochs", "3", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "mnist")]) == 130
    assert capsys.readouterr().err.rstrip().endswith(f"--resume --epochs 3 --data {tmp_path / 'mnist'}")
