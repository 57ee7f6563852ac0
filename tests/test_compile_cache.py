"""The compile cache: programs loaded from it compute bit for bit what a fresh compile does, quietly, and a
damaged, foreign or unsafe folder never reaches TensorFlow."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from vae_lab import compile_cache
from vae_lab.compile_cache import DIGEST_SUFFIX, PROCESS_PREFIX, TENSORFLOW_FLAG

RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from conftest import synthetic_images
    import vae_lab
    data = synthetic_images(512, seed=1), synthetic_images(128, seed=2)
    values = {{}}
    for seed in (0, 1, 2):
        config = vae_lab.TrainConfig(epochs=2, batch_size=64, seed=seed)
        model, history = vae_lab.train(config, data=data, verbose=0)
        metrics = vae_lab.evaluate(model, data[1][0], iw_samples=5, seed=1)
        values[seed] = [value.hex() for column in history.values() for value in column]
        values[seed] += [float(metrics[key]).hex() for key in sorted(metrics)]
    print(json.dumps(values))
""")


def run_lab_code(cache, **environment):
    code = RUN.format(tests=os.path.dirname(__file__))
    env = {**os.environ, compile_cache.ENVIRONMENT_VARIABLE: str(cache), **environment}
    env.pop("TF_XLA_FLAGS", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stderr


def entries(cache):
    return sorted(path.name for path in cache.glob("*/" + compile_cache.ENTRY_PATTERN))


@pytest.mark.slow
def test_programs_loaded_from_the_cache_compute_what_a_fresh_compile_does(tmp_path):
    cache = tmp_path / "cache"
    fresh, _ = run_lab_code(cache)
    published = entries(cache)
    assert any(name.endswith(DIGEST_SUFFIX) for name in published)
    assert len([name for name in published if not name.endswith(DIGEST_SUFFIX)]) >= 3  # train, validation, evaluation
    assert not list(cache.glob("*/" + PROCESS_PREFIX + "*"))  # the private folder is gone at exit
    # Loaded: TensorFlow says so at its verbose level, and the values are the fresh compile's, bit for bit
    loaded, stderr = run_lab_code(cache, TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_executable_persistor=3")
    assert "Loading cached entry" in stderr
    assert loaded == fresh
    assert entries(cache) == published  # nothing compiled again
    # At the default level a load writes nothing a student would read as an error
    quiet, stderr = run_lab_code(cache)
    assert quiet == fresh
    assert "XlaSerializedCacheEntry" not in stderr and "prefer-no" not in stderr and "E0000" not in stderr, stderr
    # Off: compiled as before, the same values
    off, _ = run_lab_code(tmp_path / "unused", VAE_LAB_XLA_CACHE="off")
    assert off == fresh and not (tmp_path / "unused").exists()


def make_entry(folder, name, content):
    path = folder / f"xla_compile_cache__{name}__XLA_CPU_JIT.pb"
    path.write_bytes(content)
    return path


def test_entries_are_published_whole_with_their_digest_and_a_damaged_one_is_replaced(tmp_path):
    shared, private = tmp_path / "shared", tmp_path / "shared" / ".process-private"
    private.mkdir(parents=True)
    make_entry(private, "1", b"compiled code")
    compile_cache.publish(private, shared)
    published = shared / "xla_compile_cache__1__XLA_CPU_JIT.pb"
    assert published.read_bytes() == b"compiled code" and compile_cache._intact(published)
    assert not private.exists()
    published.write_bytes(b"compiled")  # damaged: a truncated write, a bad disk
    assert not compile_cache._intact(published)
    private.mkdir()
    make_entry(private, "1", b"compiled code")
    compile_cache.publish(private, shared)
    assert published.read_bytes() == b"compiled code" and compile_cache._intact(published)


def test_an_entry_without_its_digest_is_not_intact(tmp_path):
    assert not compile_cache._intact(make_entry(tmp_path, "2", b"written by something else"))


def test_the_oldest_entries_go_beyond_the_size_limit(tmp_path):
    private = tmp_path / ".process-x"
    for index in range(4):
        private.mkdir()
        path = make_entry(private, str(index), bytes(100))
        os.utime(path, (1000 + index, 1000 + index))
        compile_cache.publish(private, tmp_path)
    compile_cache._trim(tmp_path, maximum_bytes=250)
    assert [path.name.split("__")[1] for path in sorted(tmp_path.glob("*.pb"))] == ["2", "3"]
    assert len(list(tmp_path.glob("*" + DIGEST_SUFFIX))) == 2


def test_a_folder_others_can_write_is_not_used(tmp_path):
    folder = tmp_path / "cache"
    assert compile_cache._safe_folder(folder)
    folder.chmod(0o777)
    assert not compile_cache._safe_folder(folder)
    link = tmp_path / "link"
    folder.chmod(0o700)
    link.symlink_to(folder)
    assert not compile_cache._safe_folder(link)


def test_a_private_folder_inherited_from_a_parent_process_is_dropped_and_the_users_own_kept():
    inherited = f"{TENSORFLOW_FLAG}=/home/a/.cache/vae_lab/xla/tf-x/{PROCESS_PREFIX}host-12-ab_c"
    assert compile_cache._without_inherited_folder(f"--tf_xla_auto_jit=0 {inherited}") == "--tf_xla_auto_jit=0"
    own = f"{TENSORFLOW_FLAG}=/scratch/my-cache"
    assert compile_cache._without_inherited_folder(f"{inherited} {own}") == own


def test_the_private_folders_of_ended_processes_are_removed(tmp_path):
    host = socket.gethostname()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"{PROCESS_PREFIX}{host}-{int(ended.stdout)}-abc"
    running = tmp_path / f"{PROCESS_PREFIX}{host}-{os.getpid()}-def"
    elsewhere = tmp_path / f"{PROCESS_PREFIX}another-host-{os.getpid()}-ghi"
    for folder in (gone, running, elsewhere):
        folder.mkdir()
    compile_cache._remove_abandoned(tmp_path)
    assert not gone.exists() and running.exists() and elsewhere.exists()


def test_the_key_names_the_processor_and_tensorflow(monkeypatch):
    key = compile_cache.machine_key()
    assert key.startswith("tf") and len(key.split("-")[-1]) == 16
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    assert compile_cache.machine_key() != key  # other code generation, another folder


def test_the_key_reads_tensorflows_version_from_whichever_distribution_installed_it(monkeypatch):
    """tensorflow-cpu (or -macos) installs the `tensorflow` package under another name: its version still
    names the folder, so an upgrade never reuses code compiled by another TensorFlow (code review, 2026-12-06)."""
    import importlib.metadata as metadata

    def version(name):
        if name == "tensorflow-cpu":
            return "9.9.9"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "packages_distributions", lambda: {"tensorflow": ["tensorflow-cpu"]})
    monkeypatch.setattr(metadata, "version", version)
    assert compile_cache.machine_key().startswith("tf9.9.9-")
