"""Course mode end to end, with notebooks really executed: assign from an LMS roster, students run their
notebooks, hand-ins come back as Canvas, Moodle and nbgrader deliver them, the grader verifies them against
its own runs, and marks go back to the gradebook. Then an exercise course, in which the students write the
VAE's three functions.

The course runs 2 epochs on the first 1,000 training images (the exercise course 1 epoch) so that the whole
class executes in a few minutes; the real 5-epoch lab is the notebook's own nbval run. Forged records are
built from honest ones the way a student would forge them: by editing the notebook file.
"""

import ast
import csv
import io
import os
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

import records
from vae_lab.course import grade
from vae_lab.course.assign import ANSWER_TAG, EXERCISE_TAG, assign_command, read_assignments
from vae_lab.course.verdicts import FAIL, PASS

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "benchmarks" / "exercise_corpus"
STUDENTS = ["s01", "s02", "s03", "s04"]
OTHER_SETTINGS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
# A Canvas gradebook export (instructure/canvas-lms lib/gradebook_exporter.rb: "Student, ID, SIS User ID,
# SIS Login ID, Section", assignments as "title (id)", a "    Points Possible" row, the test student last).
CANVAS_EXPORT = ("Student,ID,SIS User ID,SIS Login ID,Section,VAE lab (4711)\r\n"
                 "    Points Possible,,,,,10.00\r\n"
                 '"Doe, Jane",12345,s01,jdoe,Section 1,\r\n'
                 '"Smith, John",12346,s02,jsmith,Section 1,\r\n'
                 '"Müller, Jürgen",12347,s03,jmueller,Section 1,\r\n'
                 '"Lee, Ann",12348,s04,alee,Section 2,\r\n'
                 '"Student, Test",99999,,0123456789abcdef0123456789abcdef01234567,Section 1,\r\n')
CANVAS = {"s01": ("doejane", "12345"), "s02": ("smithjohn", "12346"), "s03": ("mullerjurgen", "12347"),
          "s04": ("leeann", "12348")}
# A Moodle grades export (moodle/moodle grade/export, default user fields) of the same class.
MOODLE_EXPORT = ("First name,Last name,ID number,Institution,Department,Email address,Assignment: VAE lab (Real)\n"
                 "Jane,Doe,s01,Uni,Physics,jane@example.edu,-\n"
                 "John,Smith,s02,Uni,Physics,john@example.edu,-\n"
                 "Jürgen,Müller,s03,Uni,Physics,juergen@example.edu,-\n"
                 "Ann,Lee,s04,Uni,Physics,ann@example.edu,-\n")
MOODLE = {"s01": ("Jane Doe", "1001"), "s02": ("John Smith", "1002"), "s03": ("Jürgen Müller", "1003"),
          "s04": ("Ann Lee", "1004")}


def copy_of(notebook):
    """A deep copy of an executed notebook, as reading its file again gives it (texts joined)."""
    return nbformat.reads(nbformat.writes(notebook), as_version=4)


def execute_all(runs, at_once=2):
    """Execute notebooks [(path, run directory, extra environment)], AT_ONCE kernels at a time (one kernel's
    imports and figures overlap another's training on two cores); return the executed notebooks in order."""
    import asyncio

    from nbclient import NotebookClient

    async def one(path, run_dir, environment, gate):
        async with gate:
            notebook = nbformat.read(path, as_version=4)
            client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            await client.async_execute(env={**os.environ, "VAE_LAB_RUN_DIR": str(run_dir), **(environment or {})})
            return notebook

    async def every():
        gate = asyncio.Semaphore(at_once)
        return await asyncio.gather(*(one(*run, gate) for run in runs))

    return asyncio.run(every())


def printed_metrics(notebook):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "application/json" in output.get("data", {}):
                return output["data"]["application/json"]
    raise AssertionError("no metrics output")


def write_answers(notebook, number):
    answers = [cell for cell in notebook.cells if ANSWER_TAG in cell.metadata.get("tags", [])]
    answers[0].source = records.prose(number)
    answers[1].source = records.own_result(number + 1, printed_metrics(notebook))


@pytest.fixture(scope="module")
def course(tmp_path_factory, mnist_dir):
    """A Canvas class of four, assigned 2 epochs on 1,000 images; each student's notebook executed (s04 with
    other thread and oneDNN settings) and answered in their own words."""
    folder = tmp_path_factory.mktemp("course")
    (folder / "canvas-export.csv").write_text(CANVAS_EXPORT, encoding="utf-8")
    assign_command(folder / "canvas-export.csv", folder / "course", epochs=2, train_images=1000)
    students = ("s01", "s02", "s04")  # s03 only ever hands in someone else's record
    notebooks = execute_all([(folder / "course" / "handout" / f"{student}.ipynb", folder / "runs" / student,
                              OTHER_SETTINGS if student == "s04" else None) for student in students])
    executed = dict(zip(students, notebooks))
    for number, student in enumerate(students, start=1):
        write_answers(executed[student], 3 * number)
    return folder, executed


def grade_with(course, submissions, **options):
    folder, _ = course
    options = grade.GradingOptions(submissions=tuple(map(Path, submissions)),
                                   assignments=folder / "course" / "assignments.csv",
                                   cache=folder / "cache", data=os.environ.get("VAE_LAB_DATA"), **options)
    return grade.grade(options)


def canvas_zip(path, notebooks, late=(), resubmitted=()):
    """A Canvas "Download Submissions" zip (lib/content_zipper.rb: <sortable name>[_LATE]_<user id>_
    <attachment id>_<file name>; a file uploaded again under the same name gets "-1")."""
    with zipfile.ZipFile(path, "w") as archive:
        for attachment, (student, notebook) in enumerate(notebooks.items(), start=67890):
            sortable, user = CANVAS[student]
            name = f"{student}-1.ipynb" if student in resubmitted else f"{student}.ipynb"
            archive.writestr(f"{sortable}{'_LATE' if student in late else ''}_{user}_{attachment}_{name}",
                             nbformat.writes(notebook))
    return path


def test_assignments_are_personal_and_reproducible(course, tmp_path):
    folder, _ = course
    assignments, roster = read_assignments(folder / "course" / "assignments.csv")
    assert list(assignments) == STUDENTS and len({a["seed"] for a in assignments.values()}) == 4
    assert roster.kind == "canvas" and {"Student", "ID", "SIS User ID"} <= set(roster.identity_columns)
    handout = sorted(path.name for path in (folder / "course" / "handout").iterdir())
    assert handout == [f"{student}.ipynb" for student in STUDENTS]  # only what goes to the students
    assert (folder / "course" / "course.key").stat().st_mode & 0o077 == 0
    again = tmp_path / "again"
    assign_command(folder / "canvas-export.csv", again, key_path=folder / "course" / "course.key", epochs=2,
                   train_images=1000)
    assert read_assignments(again / "assignments.csv")[0] == assignments
    for student, assignment in assignments.items():
        text = (folder / "course" / "handout" / f"{student}.ipynb").read_text()
        assert f"SEED = {assignment['seed']}" in text and "worked_example_note" not in text


@pytest.mark.parametrize("roster, message", [
    ("student_id\ns01\ns01\n", "repeats"),
    ("student_id,name\ns01,Jane\ns02,Doe, John\n", "fields"),
    ("name\nx\n", "not a vae-lab roster"),
])
def test_a_bad_roster_writes_nothing(tmp_path, roster, message):
    (tmp_path / "roster.csv").write_text(roster)
    with pytest.raises(Exception, match=message):
        assign_command(tmp_path / "roster.csv", tmp_path / "course")
    assert not (tmp_path / "course").exists()


def test_a_canvas_class_round_trip(course, tmp_path):
    """Canvas gradebook export -> assign -> the students' notebooks in a Canvas zip -> grade -> a gradebook
    import whose student rows and ids are the export's own."""
    folder, executed = course
    foreign = copy_of(executed["s02"])  # s02's record, handed in by s03
    hand_ins = canvas_zip(tmp_path / "submissions.zip", {"s01": executed["s01"], "s02": executed["s02"],
                                                         "s04": executed["s04"]}, late={"s04"}, resubmitted={"s01"})
    draft = copy_of(executed["s01"])
    next(cell for cell in draft.cells if ANSWER_TAG in cell.metadata.get("tags", [])).source = "To do."
    with zipfile.ZipFile(hand_ins, "a") as archive:  # s01's first upload (a draft), and s03 handing in s02's notebook
        archive.writestr("doejane_12345_67000_s01.ipynb", nbformat.writes(draft))
        archive.writestr("mullerjurgen_12347_67999_mine.ipynb", nbformat.writes(foreign))
    out = tmp_path / "out"
    code = grade.grade_command(grade.GradingOptions(
        submissions=(hand_ins,), assignments=folder / "course" / "assignments.csv", cache=folder / "cache",
        data=os.environ.get("VAE_LAB_DATA"), assignment_title="VAE lab (4711)", csv=out / "grades.csv",
        exports=(("canvas", out / "canvas.csv"),), feedback=out / "feedback", report=out / "class.html"))
    assert code == 1  # s03's hand-in is REVIEW
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    for student in ("s01", "s04"):
        assert rows[student]["verdict"] == "PASS", rows[student]["reasons"]
        assert rows[student]["identity"] == "PASS" and rows[student]["verified numbers"] == "PASS"
    assert rows["s04"]["late"] == "late" and rows["s01"]["late"] == ""
    assert "also handed in" in rows["s01"]["notes"]  # the older upload is listed, the newest graded
    assert rows["s03"]["verdict"] == "REVIEW" and "s03's, its STUDENT_ID says s02" in rows["s03"]["reasons"]
    # s02's own record is honest, but the same file came from s03 too: both are the instructor's to decide
    assert rows["s02"]["identity"] == "PASS" and rows["s02"]["verified numbers"] == "PASS"
    assert rows["s02"]["verdict"] == "REVIEW" and "the same printed history as another hand-in" in rows["s02"]["reasons"] \
        and "(s03)" in rows["s02"]["reasons"]
    exported = list(csv.reader(io.StringIO((out / "canvas.csv").read_text(encoding="utf-8"))))
    export = list(csv.reader(io.StringIO(CANVAS_EXPORT)))
    assert exported[0][:5] == export[0][:5] and exported[0][5] == "VAE lab (4711)"
    assert exported[1][0].strip() == "Points Possible" and float(exported[1][5]) == 10
    students = [row for row in exported[2:]]
    marked = [row[:5] for row in export[2:6] if row[2] in ("s01", "s04")]
    assert [row[:5] for row in students] == marked  # the export's own rows and ids
    marks = {row[2]: row[5] for row in students}
    # s02 and s03 withheld: left out, so Canvas keeps what it has for them (a blank cell would remove it)
    assert marks == {"s01": "10", "s04": "10"}
    uploads = sorted(path.name for path in (out / "feedback").rglob("*.html"))
    assert "doejane_12345_67890_s01-1_feedback.html" in uploads  # Canvas's bulk upload reads the user id


def test_a_moodle_class_from_both_download_layouts(course, tmp_path):
    folder, executed = course
    (tmp_path / "moodle-grades.csv").write_text(MOODLE_EXPORT, encoding="utf-8")
    assign_command(tmp_path / "moodle-grades.csv", tmp_path / "moodle", key_path=folder / "course" / "course.key",
                   epochs=2, train_images=1000)  # the same key: the same seeds as the Canvas course
    for layout in ("folders", "flat"):
        path = tmp_path / f"{layout}.zip"
        with zipfile.ZipFile(path, "w") as archive:  # mod/assign/classes/downloader.php
            for student in ("s01", "s02", "s04"):
                name, participant = MOODLE[student]
                entry = (f"{name}_{participant}_assignsubmission_file/lab.ipynb" if layout == "folders"
                         else f"{name}_{participant}_assignsubmission_file_lab.ipynb")
                archive.writestr(entry, nbformat.writes(executed[student]))
        out = tmp_path / layout
        grade.grade_command(grade.GradingOptions(
            submissions=(path,), assignments=tmp_path / "moodle" / "assignments.csv",
            key=folder / "course" / "course.key", cache=folder / "cache", data=os.environ.get("VAE_LAB_DATA"),
            exports=(("moodle", out / "moodle.csv"),), feedback=out / "feedback"))
        exported = list(csv.DictReader((out / "moodle.csv").open(encoding="utf-8")))
        assert {row[next(iter(row))] for row in exported} >= {"s01", "s02", "s04"}
        assert all(float(row[list(row)[1]]) == 10 for row in exported)
        folders = {path.parent.name for path in (out / "feedback").rglob("*.html")}
        assert "Jane Doe_1001_assignsubmission_file_" in folders


def test_an_nbgrader_tree(course, tmp_path):
    folder, executed = course
    for student in ("s01", "s02"):  # nbgrader's exchange: submitted/<student>/<assignment>/
        target = tmp_path / "submitted" / student / "vae"
        target.mkdir(parents=True)
        nbformat.write(executed[student], target / "vae_mnist.ipynb")
        (target / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    grading = grade_with(course, [tmp_path / "submitted"])
    assert {graded.student_id: graded.status for graded in grading.batch} == {"s01": PASS, "s02": PASS}


def edited(notebook, old, new):
    copy = copy_of(notebook)
    for cell in copy.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout" and old in output["text"]:
                output["text"] = output["text"].replace(old, new, 1)
    return copy


def test_forged_records_fail(course, tmp_path):
    folder, executed = course
    honest = executed["s01"]
    epoch_line = next(line for cell in honest.cells for output in cell.get("outputs", [])
                      if output.get("name") == "stdout" for line in output["text"].splitlines()
                      if line.startswith("Epoch 2/2"))
    loss = re.search(r"  loss (\d+\.\d\d)", epoch_line).group(1)
    kl = re.search(r"  kl_loss (\d+\.\d\d)", epoch_line).group(1)
    improved = f"{float(loss) - 3:.2f}"
    consistent = edited(edited(honest, f"  loss {loss}", f"  loss {improved}"), f"reconstruction_loss {float(loss) - float(kl):.2f}",
                        f"reconstruction_loss {float(improved) - float(kl):.2f}")
    counts = copy_of(honest)
    counts.cells[[i for i, c in enumerate(counts.cells) if c.cell_type == "code"][3]].execution_count = 99
    path = tmp_path / "forged"
    records.write(path / "edited", edited(honest, f"  loss {loss}", f"  loss {improved}"), "s01.ipynb")
    records.write(path / "consistent", consistent, "s01.ipynb")
    records.write(path / "counts", counts, "s01.ipynb")
    for case, check in (("edited", "numbers consistent"), ("consistent", "verified numbers"), ("counts", "executed")):
        grading = grade_with(course, [path / case])
        assert grading.batch[0].checks[check].status is FAIL, (case, grading.batch[0].checks)


def test_thread_settings_change_no_printed_digit(course):
    """s04 ran with one thread and oneDNN off: its record verifies to every printed digit."""
    folder, executed = course
    path = Path(folder) / "s04-record"
    records.write(path, executed["s04"], "s04.ipynb")
    graded = grade_with(course, [path]).batch[0]
    assert graded.checks["verified numbers"].reason == "reproduced to every printed digit", graded.checks


def test_two_dask_workers_give_the_serial_verdicts(course, tmp_path):
    pytest.importorskip("distributed")
    folder, executed = course
    for student in executed:
        records.write(tmp_path / "hand-ins", executed[student], f"{student}.ipynb")
    workers = grade.grade(grade.GradingOptions(
        submissions=(tmp_path / "hand-ins",), assignments=folder / "course" / "assignments.csv",
        cache=tmp_path / "fresh-cache", data=os.environ.get("VAE_LAB_DATA"), jobs=2))
    verdicts = {graded.student_id: (graded.status, graded.checks["verified numbers"].reason) for graded in workers.batch}
    assert verdicts == {student: (PASS, "reproduced to every printed digit") for student in executed}, verdicts


# --- the exercise course -------------------------------------------------------------------------------------

def functions_of(path):
    """{function name: source of a cell that defines it}, each with the file's imports and constants."""
    text = Path(path).read_text()
    tree = ast.parse(text)
    header = "\n".join(ast.get_source_segment(text, node) for node in tree.body if not isinstance(node, ast.FunctionDef)
                       and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)))
    return {node.name: header + "\n\n\n" + ast.get_source_segment(text, node)
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def without_docstring(source):
    """A function's source as a student who wrote the same code would have it: no docstring of ours."""
    tree = ast.parse(source)
    function = tree.body[0]
    if isinstance(function.body[0], ast.Expr) and isinstance(function.body[0].value, ast.Constant):
        function.body = function.body[1:]
    return ast.unparse(tree) + "\n"


def fill(notebook, functions):
    for cell in notebook.cells:
        if EXERCISE_TAG in cell.metadata.get("tags", []):
            name = cell.source.split("(", 1)[0].removeprefix("def ").strip()
            cell.source = functions[name]
    return notebook


@pytest.fixture(scope="module")
def exercise_course(tmp_path_factory, mnist_dir):
    """Five students write the three functions: our solution, two independent correct solutions written blind,
    a KL without its ½, and a disguised copy of one of the independent solutions."""
    from vae_lab.course.code_similarity import solution_sources
    from vae_lab.exercises import MISTAKES

    folder = tmp_path_factory.mktemp("exercises")
    students = ["e1", "e2", "e3", "e4", "e5"]
    (folder / "roster.csv").write_text("student_id\n" + "\n".join(students) + "\n")
    assign_command(folder / "roster.csv", folder / "course", epochs=1, train_images=1000, exercises=True)
    ours = {name: "from keras import ops\n\n\n" + without_docstring(source) for name, source in solution_sources().items()}
    mistaken = dict(ours)
    mistaken["kl_divergence"] = ("from keras import ops\n\n\ndef kl_divergence(z_mean, z_log_var):\n"
                                 "    return -ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)\n")
    assert MISTAKES["kl_without_half"]
    code = {"e1": ours, "e2": functions_of(CORPUS / "independent" / "c02.py"),
            "e3": functions_of(CORPUS / "independent" / "b01.py"), "e4": mistaken,
            "e5": functions_of(CORPUS / "edited" / "c02_renamed.py")}
    executed, outputs = {}, {}
    for student in students:
        path = folder / "course" / "handout" / f"{student}.ipynb"
        nbformat.write(fill(nbformat.read(path, as_version=4), code[student]), path)
    notebooks = execute_all([(folder / "course" / "handout" / f"{student}.ipynb", folder / "runs" / student, None)
                             for student in students])
    for number, (student, notebook) in enumerate(zip(students, notebooks), start=1):
        executed[student] = notebook
        write_answers(executed[student], 2 * number + 3)
        outputs[student] = ["".join(output.get("text", "") for output in cell.get("outputs", [])).strip()
                            for cell in executed[student].cells if "check_exercise" in cell.source]
        records.write(folder / "hand-ins", executed[student], f"{student}.ipynb")
    return folder, executed, outputs


def test_the_check_cells_say_correct_or_name_the_mistake_in_the_students_kernel(exercise_course):
    _, _, outputs = exercise_course
    for student in ("e1", "e2", "e3", "e5"):
        assert len(outputs[student]) == 3 and all(text.endswith(": correct") for text in outputs[student]), \
            outputs[student]
    assert any("twice the textbook's" in text for text in outputs["e4"]), outputs["e4"]


def test_an_exercise_class_is_graded_without_running_a_line_of_student_code(exercise_course, tmp_path):
    from vae_lab.course.code_similarity import solution_sources

    folder, executed, _ = exercise_course
    hand_ins = folder / "hand-ins"
    trap = tmp_path / "ran.txt"  # a record whose exercise cell would write this file if the grader ran it
    trapped = copy_of(executed["e1"])
    exercise = next(cell for cell in trapped.cells if EXERCISE_TAG in cell.metadata.get("tags", []))
    exercise.source = f"open({str(trap)!r}, 'w').write('ran')\n" + exercise.source
    records.write(tmp_path / "trap", trapped, "e1.ipynb")
    imported = copy_of(executed["e1"])
    cells = [cell for cell in imported.cells if EXERCISE_TAG in cell.metadata.get("tags", [])]
    cells[1].source = "from vae_lab import kl_divergence\n\n\ndef kl_divergence(z_mean, z_log_var):\n" \
                      "    return vae_lab.kl_divergence(z_mean, z_log_var)\n"
    records.write(tmp_path / "imported", imported, "e1.ipynb")
    pasted = copy_of(executed["e1"])
    cells = [cell for cell in pasted.cells if EXERCISE_TAG in cell.metadata.get("tags", [])]
    cells[1].source = "from keras import ops\n\n\n" + solution_sources()["kl_divergence"]
    records.write(tmp_path / "pasted", pasted, "e1.ipynb")
    out = tmp_path / "out"
    options = grade.GradingOptions(submissions=(hand_ins,), assignments=folder / "course" / "assignments.csv",
                                   cache=folder / "cache", data=os.environ.get("VAE_LAB_DATA"),
                                   report=out / "class.html", feedback=out / "feedback", csv=out / "grades.csv")
    grade.grade_command(options)
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    for student in ("e1", "e3"):  # the package's code written by a student, and an independent solution
        assert rows[student]["verdict"] == "PASS", rows[student]["reasons"]
    for student in ("e2", "e5"):  # correct, but one's code is the other's renamed
        assert rows[student]["verified numbers"] == "PASS" and rows[student]["exercises"] == "PASS"
    assert rows["e4"]["verified numbers"] == "FAIL" and "twice the textbook's" in rows["e4"]["reasons"]
    # the exercise course's default rubric: exercises 3, executed 1, figures 1, numbers 1, verified 2, prose 2
    assert (rows["e1"]["marks: exercises"], rows["e1"]["total"]) == ("3", "10")
    # a wrong function costs the exercises' marks (its check cell said so, as the self-check reads it) and the
    # verified numbers'; "numbers consistent" leaves the range to the verification
    assert rows["e4"]["exercises"] == "FAIL" and "kl_divergence" in rows["e4"]["reasons"]
    assert rows["e4"]["numbers consistent"] == "PASS"
    assert (rows["e4"]["marks: verified numbers"], rows["e4"]["total"]) == ("0", "5")
    assert rows["e2"]["copies"] == "REVIEW" and rows["e5"]["copies"] == "REVIEW"
    assert "exercise code like another hand-in's" in rows["e2"]["reasons"] and "(e5)" in rows["e2"]["reasons"]
    page = (out / "class.html").read_text()
    assert "Mistakes in the exercises" in page and "twice the textbook" in page
    assert "Similar exercise code, side by side" in page and page.count("kl_divergence") >= 2
    feedback = (out / "feedback" / "e4.html").read_text()
    assert "kl_divergence" in feedback and "<pre" in feedback and "twice the textbook" in feedback
    for case in ("trap", "imported", "pasted"):
        grading = grade.grade(grade.GradingOptions(submissions=(tmp_path / case,), cache=folder / "cache",
                                                   assignments=folder / "course" / "assignments.csv",
                                                   data=os.environ.get("VAE_LAB_DATA")))
        if case in ("imported", "pasted"):
            verdict = grading.batch[0].checks["exercises"]
            assert verdict.status is FAIL and "package's own" in verdict.reason, verdict
    assert not trap.exists()  # the grader never executed the exercise cell


def test_the_committed_exercise_example_is_what_assign_writes():
    from vae_lab.course.assign import exercise_example

    committed = nbformat.read(ROOT / "notebooks" / "vae_mnist_exercises.ipynb", as_version=4)
    expected = exercise_example()
    assert [cell.source for cell in committed.cells] == [cell.source for cell in expected.cells]
