"""The house rules a maintainer relies on: no import cycle in the package, nothing in it from tests/ and no
browser-driving code, every error a user can cause one line from the command line and a bug a traceback."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import records
from vae_lab import cli

PACKAGE = Path(__file__).resolve().parents[1] / "vae_lab"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every vae_lab module PATH imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {target for target in found if target in modules and target != name}


def test_the_package_imports_no_cycle():
    graph = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
    graph["vae_lab"] = set()  # __init__ maps names to modules lazily; importing it imports none of them

    def cycle_from(start, seen):
        for target in graph.get(start, ()):
            if target in seen:
                return seen[seen.index(target):] + [target]
            found = cycle_from(target, seen + [target])
            if found:
                return found
        return None

    for module in graph:
        assert cycle_from(module, [module]) is None, cycle_from(module, [module])


def test_the_package_takes_nothing_from_tests_and_drives_no_browser():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        assert not any(name.split(".")[0] in ("tests", "conftest", "browser", "records") for name in imported), path
        assert not any(word in text.lower() for word in ("chromium", "--headless", "<script")), path


@pytest.fixture
def places(tmp_path):
    (tmp_path / "empty").mkdir()
    records.write(tmp_path, records.notebook(), "s01.ipynb")
    (tmp_path / "bad.toml").write_text("[marks]\nnonsense = 3\n")
    (tmp_path / "roster.csv").write_text("student_id\ns01\n")
    (tmp_path / "a-file").write_text("")
    return tmp_path


ERRORS = [  # (arguments, words of the one line); {t} is the test's folder
    (["evaluate", "{t}/missing"], "no such run directory"),
    (["evaluate", "{t}/empty"], "is not a run yet"),
    (["report", "{t}/empty"], "is not a run yet"),
    (["train", "--out", "{t}/a-file"], "is a file"),
    (["train", "--data", "{t}/nowhere", "--out", "{t}/run"], "does not exist"),
    (["assign", "{t}/missing.csv", "--out", "{t}/course"], "no such roster"),
    (["assign", "{t}/a-file", "--out", "{t}/course"], "empty"),
    (["assign", "{t}/roster.csv", "--out", "{t}/course", "--notebook", "{t}/missing.ipynb"], "reference notebook"),
    (["grade", "{t}/missing.ipynb"], "no such hand-in"),
    (["grade", "{t}/empty"], "no notebook"),
    (["grade", "{t}/s01.ipynb", "--assignments", "{t}/missing.csv"], "no such assignments file"),
    (["grade", "{t}/s01.ipynb", "--assignments", "{t}/roster.csv"], "not an assignments file"),
    (["grade", "{t}/s01.ipynb", "--rubric", "{t}/bad.toml"], "is no check"),
    (["lab", "--notebook", "{t}/missing.ipynb", "--out", "{t}/lab"], "no lab notebook"),
]


@pytest.mark.parametrize("arguments, words", ERRORS)
def test_every_error_a_user_can_cause_is_one_line(places, capsys, arguments, words):
    code = cli.main([argument.format(t=places) for argument in arguments])
    error = capsys.readouterr().err.strip()
    assert code == 1 and error.count("\n") == 0, error
    assert error.startswith(f"vae-lab {arguments[0]}: error:") and words in error, error


def test_nothing_is_created_when_a_run_fails_before_training(places, capsys):
    assert cli.main(["train", "--data", str(places / "nowhere"), "--out", str(places / "run")]) == 1
    assert not (places / "run").exists()


def test_a_bug_keeps_its_traceback(places, monkeypatch):
    from vae_lab.course import grade

    def broken(options):
        raise ZeroDivisionError("a bug, not a user's mistake")

    monkeypatch.setattr(grade, "grade_command", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["grade", str(places / "s01.ipynb")])


@pytest.mark.parametrize("arguments, hint, usage", [
    (["train", "--epcohs", "3"], "did you mean --epochs?", "usage: vae-lab train"),
    (["trian"], "did you mean train?", "usage: vae-lab [-h]"),
    (["grade", "x.ipynb", "--rubrik", "r.toml"], "did you mean --rubric?", "usage: vae-lab grade"),
])
def test_a_typo_gets_a_suggestion_and_its_commands_usage(capsys, arguments, hint, usage):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(arguments)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and hint in error and error.startswith(usage), error


def test_version(capsys):
    import vae_lab

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"vae-lab {vae_lab.__version__}"


def test_a_missing_roster_answers_before_any_heavy_import(tmp_path):
    code = (f"import sys\nfrom vae_lab import cli\ncli.main(['assign', {str(tmp_path / 'missing.csv')!r}, '--out', "
            f"{str(tmp_path / 'c')!r}])\nprint(sorted(m for m in ('nbformat', 'tensorflow', 'nbclient') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]" and "no such roster" in result.stderr


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_names_what_differs(tmp_path, small_data, monkeypatch, capsys):
    import vae_lab.data

    monkeypatch.setattr(vae_lab.data, "load_dataset", lambda name, data_dir=None: small_data)
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--batch-size", "64", "--out", str(out), "--quiet",
                     "--iw-samples", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "2", "--batch-size", "64", "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "epochs 1 (now 2)" in error and "--resume --epochs 2" in error and "batch_size" not in error
    assert cli.main(["train", "--epochs", "1", "--batch-size", "32", "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "batch_size 64 (now 32)" in error and "--resume" not in error


def test_a_dry_run_too_small_to_show_anything_is_warned_at_assign(tmp_path, capsys):
    from vae_lab.course.assign import assign_command, dry_run_warning

    assert dry_run_warning(2000, 2) and dry_run_warning(20000, 1)
    assert dry_run_warning(20000, 2) is None and dry_run_warning(None, 1) is None
    (tmp_path / "roster.csv").write_text("student_id\ns01\n")
    assign_command(tmp_path / "roster.csv", tmp_path / "course", epochs=2, train_images=2000)
    assert "warning:" in capsys.readouterr().out


def test_each_notebook_run_gets_its_own_folder_beside_the_notebook(tmp_path, monkeypatch):
    from vae_lab import run_directory
    from vae_lab.run_directory import notebook_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAE_LAB_RUN_DIR", raising=False)
    monkeypatch.setattr(run_directory, "_NOTEBOOK_RUN_DIRS", {})
    first = notebook_run_dir("s01")
    first.mkdir(parents=True)
    assert notebook_run_dir("s01") == first  # the first cell run again in the same kernel: the same folder
    monkeypatch.setattr(run_directory, "_NOTEBOOK_RUN_DIRS", {})  # a fresh kernel
    second = notebook_run_dir("s01")
    assert first.parent == second.parent == __import__("pathlib").Path("runs") and first != second
    assert first.name.startswith("s01-") and notebook_run_dir("../../evil").name.startswith(".._.._evil")
    monkeypatch.setenv("VAE_LAB_RUN_DIR", str(tmp_path / "lab"))
    assert notebook_run_dir("s01") == tmp_path / "lab"


def test_records_that_cannot_be_verified_cost_no_reference_run(tmp_path, monkeypatch):
    from vae_lab.course import grade, parallel

    course_dir, assignments = records.course(tmp_path, ["s01", "s02"])
    honest, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    never_run = records.notebook("s02", assignments["s02"]["seed"], metrics_values={}, result=records.prose(5))
    for cell in never_run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    records.write(tmp_path / "hand-ins", honest, "s01.ipynb")
    records.write(tmp_path / "hand-ins", never_run, "s02.ipynb")
    asked = []

    def fake_runs(assignments_to_run, **options):
        asked.append(set(assignments_to_run))
        return {student: reference for student in assignments_to_run}, []

    monkeypatch.setattr(parallel, "reference_runs", fake_runs)
    grading = grade.grade(grade.GradingOptions(submissions=(tmp_path / "hand-ins",),
                                               assignments=course_dir / "assignments.csv", cache=tmp_path / "cache"))
    assert asked == [{"s01"}]
    verdicts = {graded.student_id: graded.checks for graded in grading.batch}
    assert "nothing to verify" in verdicts["s02"]["verified numbers"].reason
    assert verdicts["s02"]["executed"].reason.startswith("6 of the 6 code cells were never run")
