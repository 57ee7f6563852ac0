"""Installed like any package: a wheel built from this tree, installed into a fresh environment with the
source tree nowhere on the path, runs `vae-lab --version`, `assign` and `grade` (with the reference notebook's
prose check, which needs the notebook shipped as package data)."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # builds a wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh environment with only the wheel installed; its dependencies come from this test's environment
    through a path file (so nothing is downloaded but the build backend), never the source tree."""
    folder = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(folder / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "Could not find a version" in built.stderr:
        pytest.skip(f"no build backend to be had (offline?): {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((folder / "dist").glob("vae_lab-*.whl"))
    environment = folder / "env"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--quiet", str(wheel)], capture_output=True, text=True, timeout=600)
    if install.returncode != 0:  # pip older than 22.3 has no --python: install with the target's own site path
        install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", site,
                                  str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return python, folder


def run(installed, *arguments):
    python, folder = installed
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(python), "-m", "vae_lab.cli", *arguments], capture_output=True, text=True,
                          cwd=folder, env=environment, timeout=600)


def test_the_wheel_is_what_runs(installed):
    python, folder = installed
    where = subprocess.run([str(python), "-c", "import vae_lab, vae_lab.lab_notebook as n; print(vae_lab.__file__); "
                                               "print(n.lab_notebook_path())"],
                           capture_output=True, text=True, cwd=folder, check=True).stdout.split()
    assert all(str(ROOT) not in line for line in where), where
    assert where[1].endswith("vae_lab/lab_notebooks/vae_mnist.ipynb")


def test_version_assign_and_grade_from_the_wheel(installed):
    import vae_lab

    python, folder = installed
    assert run(installed, "--version").stdout.strip() == f"vae-lab {vae_lab.__version__}"
    (folder / "roster.csv").write_text("student_id\ns01\ns02\n")
    assigned = run(installed, "assign", "roster.csv", "--out", "course")
    assert assigned.returncode == 0, assigned.stderr
    assert sorted(path.name for path in (folder / "course" / "handout").iterdir()) == ["s01.ipynb", "s02.ipynb"]
    shipped = Path(subprocess.run([str(python), "-c", "import vae_lab.lab_notebook as n; print(n.lab_notebook_path())"],
                                  capture_output=True, text=True, cwd=folder, check=True).stdout.strip())
    graded = run(installed, "grade", str(shipped))  # the worked example handed in as it is
    assert "near-copy of the reference notebook's text" in graded.stdout, graded.stdout + graded.stderr
