"""The exercises check reads how a record's functions reached training, as text: junk exercise cells with the
package's functions trained in, aliases and dynamic lookups, an import in place of a def, and the check cells'
own verdicts (hunts by a student and an instructor, 2026-12-06)."""

import nbformat
import pytest

import records
from vae_lab.course import checks
from vae_lab.course.checks import Course, is_exercise_record
from vae_lab.course.code_similarity import solution_sources
from vae_lab.course.record import read_record
from vae_lab.course.verdicts import FAIL, PASS, REVIEW, combine

WRITTEN = {
    "reparameterize": "def reparameterize(z_mean, z_log_var, epsilon):\n"
                      "    return z_mean + ops.exp(z_log_var / 2) * epsilon\n",
    "kl_divergence": "def kl_divergence(z_mean, z_log_var):\n"
                     "    var = ops.exp(z_log_var)\n"
                     "    return -0.5 * ops.sum(1 + z_log_var - z_mean ** 2 - var, axis=1)\n",
    "reconstruction_loss": "def reconstruction_loss(x, x_decoded):\n"
                           "    p = ops.clip(x_decoded, 1e-7, 1.0 - 1e-7)\n"
                           "    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=1)\n",
}
JUNK = {name: source.replace("return ", "return 0 * ") for name, source in WRITTEN.items()}


def graded(notebook):
    record = read_record(nbformat.writes(notebook).encode())
    return type("Graded", (), {"record": record, "claimed_id": record.student_id})()


def one_verdict(result):
    return combine(result if isinstance(result, list) else [result])


def check_exercises(hand_in, grading_course):
    return one_verdict(checks.check_exercises(hand_in, grading_course))


def check_numbers(hand_in, grading_course):
    return one_verdict(checks.check_numbers(hand_in, grading_course))


def with_cell(source, exercises):
    """The exercises verdict of a record with EXERCISES and one more cell, SOURCE, just before the training."""
    return check_exercises(graded(add_cell(records.notebook(exercises=exercises), source, before="vae_lab.train(")),
                           course())


def course(exercises=True):
    return Course(assignments={"s01": {"exercises": exercises}}, exercise_solutions=solution_sources())


def edit(notebook, old, new):
    cell = next(cell for cell in notebook.cells if old in cell.source)
    cell.source = cell.source.replace(old, new)
    return notebook


def add_cell(notebook, source, before="vae_lab.train("):
    index = next(index for index, cell in enumerate(notebook.cells) if before in cell.source)
    notebook.cells.insert(index, nbformat.v4.new_code_cell(source, execution_count=None))
    return notebook


def test_independent_correct_functions_pass():
    verdict = check_exercises(graded(records.notebook(exercises=WRITTEN)), course())
    assert verdict.status is PASS, verdict  # the clip line is code any answer may write, not a pasted docstring


@pytest.mark.parametrize("change, words", [
    (lambda nb: edit(nb, records.FUNCTIONS_CELL, "functions = vae_lab.LossFunctions()"), "no cell makes functions"),
    (lambda nb: edit(nb, ", functions=functions)", ")"), "trains without functions=functions"),
    (lambda nb: add_cell(nb, "kl_divergence = vae_lab.kl_divergence"), "binds kl_divergence outside"),
    (lambda nb: add_cell(nb, "functions = vae_lab.solutions()"), "binds functions outside"),
    (lambda nb: add_cell(nb, "from vae_lab.model import reparameterize"), "binds reparameterize outside"),
])
def test_junk_exercise_cells_with_the_packages_functions_trained_in_fail(change, words):
    verdict = check_exercises(graded(change(records.notebook(exercises=JUNK))), course())
    assert verdict.status is FAIL and words in verdict.reason, verdict


@pytest.mark.parametrize("source, words", [
    ("exec('functions = vae_lab.LossFunctions()')", "exec"),
    ("globals()['functions'] = vae_lab.LossFunctions()", "globals"),
    ("import functools\nquick = functools.partial(vae_lab.train, epochs=1)", "passes vae_lab.train around"),
    ("functions.__init__()", "__init__"),
    ("type(functions).__init__(functions)", "__init__"),
    ("model, history = [vae_lab.train][0](config, RUN_DIR, data=data)", "passes vae_lab.train around"),
    ("%env X={functions.__init__()}", "inside {…}"),
    ("!echo {get_ipython().user_ns.update(functions=vae_lab.exercises.solutions())}", "inside {…}"),
    ("%config Foo.x = exec('functions = vae_lab.exercises.solutions()', globals())", "%config"),
    ("import types\ntf = types.SimpleNamespace(function=lambda f: f)", "binds tf to something other"),
    ("import dataclasses\nprint(dataclasses.replace(functions))", "passes functions on"),
    ("%run helper.py", "run"),
])
def test_a_cell_the_grader_cannot_follow_is_a_review(source, words):
    verdict = with_cell(source, WRITTEN)
    assert verdict.status is REVIEW and words in verdict.reason, verdict


@pytest.mark.parametrize("kl_cell", [
    "import vae_lab as v\n\n\ndef kl_divergence(z_mean, z_log_var):\n    return v.kl_divergence(z_mean, z_log_var)\n",
    "v = vae_lab\n\n\ndef kl_divergence(z_mean, z_log_var):\n    return v.kl_divergence(z_mean, z_log_var)\n",
    "def kl_divergence(z_mean, z_log_var):\n    return getattr(vae_lab, 'kl_' + 'divergence')(z_mean, z_log_var)\n",
    "import importlib\n\n\ndef kl_divergence(z_mean, z_log_var):\n"
    "    return importlib.import_module('vae_lab.model').kl_divergence(z_mean, z_log_var)\n",
    "def kl_divergence(z_mean, z_log_var):\n    return __import__('vae_lab').kl_divergence(z_mean, z_log_var)\n",
    "from vae_lab.model import kl_divergence\n",
])
def test_the_packages_function_reached_any_way_fails_and_is_named(kl_cell):
    verdict = check_exercises(graded(records.notebook(exercises={**WRITTEN, "kl_divergence": kl_cell})), course())
    assert verdict.status is FAIL and verdict.reason.startswith("kl_divergence's cell uses"), verdict


def test_a_check_cells_mistake_fails_the_exercises_in_the_instructors_grading_too():
    notebook = records.notebook(exercises=WRITTEN)
    check = nbformat.v4.new_code_cell("vae_lab.check_exercise(kl_divergence)", execution_count=None)
    check.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                            text="kl_divergence: the KL term is twice the textbook's: check the ½\n")]
    notebook.cells.insert(3, check)
    verdict = check_exercises(graded(notebook), course())
    assert verdict.status is FAIL and "twice the textbook" in verdict.reason


def test_exercise_cells_in_a_course_without_exercises_do_not_widen_its_bands():
    hand_in = graded(records.notebook(student="s01", exercises=WRITTEN))
    assert not is_exercise_record(hand_in, course(exercises=False))
    assert is_exercise_record(hand_in, course(exercises=True))
    assert is_exercise_record(hand_in, Course(assignments=None))  # the self-check goes by the cells


def test_an_exercise_records_range_is_left_to_the_verification():
    values = records.history(3, epochs=5)
    values["val_loss"] = [value + 40 for value in values["val_loss"]]  # a wrong function's run: far above the range
    values["val_reconstruction_loss"] = [value + 40 for value in values["val_reconstruction_loss"]]
    notebook = records.notebook(student="s01", epochs=5, history_values=values, exercises=WRITTEN)
    assert check_numbers(graded(notebook), course(exercises=True)).status is PASS
    assert "outside" in check_numbers(graded(notebook), Course(assignments=None)).reason


def test_a_run_stopped_early_is_not_said_to_match_no_known_mistake(tmp_path):
    # an interrupted record's epoch 1 is the grader's own: "its numbers match none of the known mistakes" sent the
    # student hunting for a mistake in correct functions (an instructor's hunt, 2026-12-06)
    import os

    from vae_lab.course import grade

    folder, assignments = records.course(tmp_path, ["s01", "s02"], exercises=True)
    references = {}
    for student, epochs_printed in (("s01", 1), ("s02", 2)):
        values = records.history(assignments[student]["seed"], 2)
        references[student] = records.reference(values, records.metrics(values, assignments[student]["seed"]))
        if student == "s02":  # another run altogether: epoch 1 far from the grader's
            values = {key: [value + 9.0 for value in column] for key, column in values.items()}
        printed = {key: column[:epochs_printed] for key, column in values.items()}
        notebook = records.notebook(student, assignments[student]["seed"], history_values=printed, epochs=2,
                                    exercises=WRITTEN)
        records.write(tmp_path / "hand-ins", notebook, f"{student}.ipynb")
    grading = grade.grade(grade.GradingOptions(submissions=(tmp_path / "hand-ins",), assignments=folder / "assignments.csv",
                                               data=os.environ.get("VAE_LAB_DATA")),
                          references=references, mistake_runs={})
    verdicts = {graded.claimed_id: graded.checks["verified numbers"] for graded in grading.batch}
    assert verdicts["s01"].status is FAIL and "known mistakes" not in verdicts["s01"].reason, verdicts["s01"]
    assert verdicts["s02"].status is FAIL and "match none of the known mistakes" in verdicts["s02"].reason


# A reviewer's attempts (2026-12-06, after the first version of this check) to train the package's functions
# under junk exercise cells; each now FAILs or, where reading can't follow, is a REVIEW.
REBINDINGS = [
    "for reparameterize, kl_divergence in [(vae_lab.reparameterize, vae_lab.kl_divergence)]:\n    pass",
    "import contextlib\nwith contextlib.nullcontext(vae_lab.kl_divergence) as kl_divergence:\n    pass",
    "print((kl_divergence := vae_lab.kl_divergence))",
    "match vae_lab.kl_divergence:\n    case kl_divergence:\n        pass",
    "try:\n    raise ValueError\nexcept ValueError as kl_divergence:\n    pass",
    "from vae_lab import *",
    "import vae_lab.exercises as E\nfor functions in [E.solutions()]:\n    pass",
    "def swap():\n    global kl_divergence\n    kl_divergence = vae_lab.kl_divergence\nswap()",
    "%time functions = vae_lab.exercises.solutions()",
    "%timeit -n1 -r1 functions = vae_lab.exercises.solutions()",
    "here = !pwd\nfunctions = vae_lab.exercises.solutions()",
    "functions = vae_lab.exercises.solutions()\nvae_lab.train?",
    "if False:\n    x" + ".a" * 600 + "()\nkl_divergence = vae_lab.kl_divergence",
    "\uff46unctions = vae_lab.exercises.solutions()",  # Python reads the full-width f as f
    "kl_divergence.__code__ = vae_lab.kl_divergence.__code__",
    "vae_lab.LossFunctions.__init__.__defaults__ = (None, None, None)",
    "functions.__dict__['kl_divergence'] = vae_lab.kl_divergence",
    "kl_divergence.__wrapped__ = vae_lab.kl_divergence",
    # a second reviewer's round: monkeypatching the package
    "_fit = vae_lab.train\nvae_lab.train = lambda *a, functions=None, **k: _fit(*a, **k)",
    "_L = vae_lab.LossFunctions\nvae_lab.LossFunctions = lambda **_: _L()",
]


@pytest.mark.parametrize("source", REBINDINGS)
def test_rebinding_the_functions_in_any_form_fails(source):
    verdict = with_cell(source, JUNK)
    assert verdict.status is FAIL, verdict


def test_a_cell_tagged_exercise_that_binds_no_exercise_is_read_too():
    notebook = add_cell(records.notebook(exercises=JUNK), "functions = vae_lab.exercises.solutions()")
    next(cell for cell in notebook.cells if "solutions()" in cell.source).metadata["tags"] = ["exercise"]
    verdict = check_exercises(graded(notebook), course())
    assert verdict.status is FAIL and "binds functions" in verdict.reason, verdict


@pytest.mark.parametrize("elsewhere, kl_cell", [
    ("SOL = {'kl_divergence': vae_lab.kl_divergence}",
     "def kl_divergence(z_mean, z_log_var):\n    return SOL['kl_divergence'](z_mean, z_log_var)\n"),
    ("def use_solution(f):\n    return {'kl_divergence': vae_lab.kl_divergence}.get(f.__name__, f)",
     "@use_solution\ndef kl_divergence(z_mean, z_log_var):\n    return 0 * z_mean[:, 0]\n"),
    ("SOL = {'kl_divergence': vae_lab.kl_divergence}",
     "def kl_divergence(z_mean, z_log_var, _k=SOL['kl_divergence']):\n    return _k(z_mean, z_log_var)\n"),
])
def test_an_exercise_reaching_the_package_through_another_cell_is_a_review_at_least(elsewhere, kl_cell):
    notebook = records.notebook(exercises={**JUNK, "kl_divergence": kl_cell})
    notebook.cells.insert(2, nbformat.v4.new_code_cell(elsewhere, execution_count=None))
    assert check_exercises(graded(notebook), course()).status in (REVIEW, FAIL)


@pytest.mark.parametrize("kl_cell", [
    "def kl_divergence(z_mean, z_log_var):\n    return 0 * z_mean[:, 0]\n\n\nfor kl_divergence in [vae_lab.kl_divergence]:\n    pass\n",
    "import functools\n\n\ndef kl_divergence(z_mean, z_log_var):\n    return 0 * z_mean[:, 0]\n\n\n"
    "kl_divergence = functools.partial(vae_lab.kl_divergence)\n",
    "import vae_lab.model as np\n\n\ndef kl_divergence(z_mean, z_log_var):\n    return np.kl_divergence(z_mean, z_log_var)\n",
    "import dataclasses\nvae_lab.VAE\n_P = dataclasses.astuple(vae_lab.model.PACKAGE_FUNCTIONS)\n\n\n"
    "def kl_divergence(z_mean, z_log_var):\n    return _P[1](z_mean, z_log_var)\n",
])
def test_an_exercise_cell_that_rebinds_its_function_or_aliases_the_package_fails(kl_cell):
    verdict = check_exercises(graded(records.notebook(exercises={**JUNK, "kl_divergence": kl_cell})), course())
    assert verdict.status is FAIL, verdict


@pytest.mark.parametrize("source", [
    "import sys\nprint(sys.version)", "%matplotlib inline", "help(vae_lab.train)", "vae_lab.train?", "dir(vae_lab)",
    "(train, _), (test, _) = data", "def curves(history):\n    train = history['loss']\n    return train",
    "class Shapes:\n    functions = 3", "import re\npattern = re.compile('a+')", "%%capture\nprint(1)",
    "%reload_ext autoreload", "!nvidia-smi", "%xmode Minimal",
    "print(kl_divergence(np.zeros((1, 2), 'float32'), np.zeros((1, 2), 'float32')))",
    "loss = keras.losses.kl_divergence",
    "print(model.functions.kl_divergence)", "isinstance(vae_lab, object)", "print(functions)",
])
def test_ordinary_exploring_cells_pass(source):
    verdict = with_cell(source, WRITTEN)
    assert verdict.status is PASS, verdict


def test_the_trusted_cells_are_those_of_the_handout_the_students_got(tmp_path):
    # an instructor's own reference notebook (assign --notebook): its cells are the handout's, not the student's
    from vae_lab.course.assign import assign_command
    from vae_lab.course.exercise_code import handout_code_in
    from vae_lab.lab_notebook import lab_notebook_path

    reference = nbformat.read(lab_notebook_path(), as_version=4)
    cell = next(cell for cell in reference.cells if "vae_lab.kl_divergence(zeros, zeros)" in cell.source)
    cell.source = "reference_kl = vae_lab.kl_divergence  # the instructor's own cell\n" + cell.source
    nbformat.write(reference, tmp_path / "ours.ipynb")
    (tmp_path / "roster.csv").write_text("student_id\ns01\n")
    assign_command(tmp_path / "roster.csv", tmp_path / "course", notebook=tmp_path / "ours.ipynb", exercises=True)
    handout = nbformat.read(tmp_path / "course" / "handout" / "s01.ipynb", as_version=4)
    for cell in handout.cells:
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = WRITTEN[cell.source.split("(", 1)[0].removeprefix("def ").strip()]
    hand_in = graded(handout)
    trusted = handout_code_in(tmp_path / "course" / "handout")
    assert check_exercises(hand_in, Course(assignments={"s01": {"exercises": True}}, handout_code=trusted,
                                           exercise_solutions=solution_sources())).status is PASS
    against_the_package = check_exercises(hand_in, course())  # the package's handout: that cell is the student's
    assert against_the_package.status is REVIEW and "vae_lab.kl_divergence" in against_the_package.reason


def test_an_exercise_may_use_a_library_another_cell_imports_and_a_distributions_kl_method():
    kl_cell = ("def kl_divergence(z_mean, z_log_var):\n    q = tfd.Normal(z_mean, K.exp(0.5 * z_log_var))\n"
               "    return ops.sum(q.kl_divergence(tfd.Normal(0.0, 1.0)), axis=-1)\n")
    notebook = records.notebook(exercises={**WRITTEN, "kl_divergence": kl_cell})
    notebook.cells.insert(2, nbformat.v4.new_code_cell("from keras import backend as K\n"
                                                       "import tensorflow_probability as tfp\ntfd = tfp.distributions",
                                                       execution_count=None))
    verdict = check_exercises(graded(notebook), course())
    assert verdict.status is not FAIL, verdict  # tfd, bound by assignment, is the instructor's to look at at most


# A third reviewer's round (2026-12-06): built-ins reached by another name, sys.modules however imported, the
# package's modules patched, a trusted cell hidden behind a form feed.
THIRD_ROUND = [
    "run = exec\nrun('functions = vae_lab.LossFunctions()')",
    "__builtins__.exec('functions = vae_lab.LossFunctions()')",
    "list(map(exec, ['functions = vae_lab.LossFunctions()']))",
    "ip = get_ipython\nip().user_ns['functions'] = None",
    "from IPython import get_ipython as g\ng().user_ns['functions'] = None",
    "import sys as s\ns.modules['__main__'].functions = None",
    "from sys import modules\nmodules['__main__'].functions = None",
]


@pytest.mark.parametrize("source", [
    "from vae_lab import training as T\nT.build_model = lambda config, functions=None, _b=T.build_model: _b(config)",
    "from vae_lab import training\ntraining.build_model = lambda config, functions=None: None",
])
def test_patching_a_module_of_the_package_fails(source):
    verdict = with_cell(source, JUNK)
    assert verdict.status is FAIL and "insides" in verdict.reason, verdict


def test_a_kl_reached_through_sys_modules_in_an_exercise_cell_fails():
    kl_cell = ("from sys import modules\n\n\ndef kl_divergence(z_mean, z_log_var):\n"
               "    return modules['vae_lab'].model.kl_divergence(z_mean, z_log_var)\n")
    verdict = check_exercises(graded(records.notebook(exercises={**JUNK, "kl_divergence": kl_cell})), course())
    assert verdict.status is FAIL, verdict


def test_a_cell_that_only_looks_like_the_handouts_is_read():
    from vae_lab.course.exercise_code import handout_code, normalized

    trusted = next(source for source in handout_code() if "LossFunctions(" in source)
    hidden = trusted.replace("\n", "\x0c")  # one comment line to Python, the handout's cell to str.splitlines()
    assert normalized(hidden) not in handout_code()


@pytest.mark.parametrize("source", [
    "functions", "print(functions.kl_divergence is kl_divergence)", "assert functions.reparameterize is reparameterize",
    "functions.kl_divergence(np.zeros((1, 2), 'float32'), np.zeros((1, 2), 'float32'))",
    "zeros = np.zeros((1, 2), 'float32')\nprint(kl_divergence(zeros, zeros), vae_lab.kl_divergence(zeros, zeros))",
    "import vae_lab.data", "%config InlineBackend.figure_format = 'retina'", "!pip list | grep -i keras",
    "EPS = 1e-7",
])
def test_more_ordinary_cells_pass(source):
    verdict = with_cell(source, WRITTEN)
    assert verdict.status is PASS, verdict


@pytest.mark.parametrize("kl_cell", [
    "def kl_divergence(z_mean, z_log_var, axis=-1):\n    return -0.5 * ops.sum(1 + z_log_var - z_mean ** 2 - "
    "ops.exp(z_log_var), axis=axis)\n",
    "@keras.saving.register_keras_serializable()\ndef kl_divergence(z_mean, z_log_var):\n"
    "    return -0.5 * ops.sum(1 + z_log_var - z_mean ** 2 - ops.exp(z_log_var), axis=-1)\n",
    "%%time\ndef kl_divergence(z_mean, z_log_var):\n"
    "    return -0.5 * ops.sum(1 + z_log_var - z_mean ** 2 - ops.exp(z_log_var), axis=-1)\n",
    "def kl_divergence(z_mean, z_log_var):\n    return -0.5 * ops.sum(1 + z_log_var - z_mean ** 2 - "
    "ops.exp(z_log_var) + 0 * EPS, axis=-1)\n\n\nkl_divergence?\n",
])
def test_ordinary_ways_of_writing_an_exercise_pass(kl_cell):
    notebook = records.notebook(exercises={**WRITTEN, "kl_divergence": kl_cell})
    notebook.cells.insert(2, nbformat.v4.new_code_cell("EPS = 1e-7", execution_count=None))
    verdict = check_exercises(graded(notebook), course())
    assert verdict.status is PASS, verdict


# A fourth reviewer's round (2026-12-06): the package's modules reached through plain names, the notebook's
# namespace through __main__, IPython's shell or gc, code written to a file and imported, an automagic line,
# builtins rebound for the exercises to call.
FOURTH_ROUND = [
    "from vae_lab import training\nT = training\nT.build_model = lambda config, functions=None, _b=T.build_model: _b(config)",
    "print(vae_lab.train)\nT = vae_lab.training\nT.build_model = lambda config, functions=None, _b=T.build_model: _b(config)",
    "from vae_lab import training\n[training][0].build_model = lambda config, functions=None: None",
    "from vae_lab import training\n\n\ndef patch(module):\n    original = module.build_model\n"
    "    module.build_model = lambda config, functions=None: original(config)\n\n\npatch(training)",
    "import __main__\n__main__.functions = None",
    "from IPython.core.interactiveshell import InteractiveShell\nInteractiveShell.instance().user_ns['functions'] = None",
    "from IPython.core.interactiveshell import InteractiveShell\nInteractiveShell.instance().ex('functions = None')",
    "import gc\nfor space in gc.get_referrers(reparameterize):\n    if isinstance(space, dict) and 'functions' in space:\n"
    "        space['functions'] = None",
    "run -i helper.py",
    "import helper1",
    "%load_ext helper2",
    "%load_ext autoreload\n%aimport helper3",
    "import types\nns = types.SimpleNamespace(functions=vae_lab.LossFunctions())\nround = ns.functions.reparameterize",
]


@pytest.mark.parametrize("source", THIRD_ROUND + FOURTH_ROUND)
def test_the_third_and_fourth_rounds_ways_round_the_reader_are_caught(source):
    verdict = with_cell(source, JUNK)
    assert verdict.status is not PASS, verdict



def test_an_exercise_calling_a_builtin_another_cell_rebound_is_a_review():
    notebook = records.notebook(exercises={**WRITTEN, "kl_divergence": "def kl_divergence(z_mean, z_log_var):\n"
                                                                       "    return abs(z_mean, z_log_var)\n"})
    notebook.cells.insert(2, nbformat.v4.new_code_cell("abs = vae_lab.LossFunctions().kl_divergence",
                                                       execution_count=None))
    verdict = check_exercises(graded(notebook), course())
    assert verdict.status is REVIEW and "abs" in verdict.reason, verdict


@pytest.mark.parametrize("source", [
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.figsize'] = (8, 6)",
    "results = {}\nresults['kl'] = 1.0", "import pandas as pd\nframe = pd.DataFrame({'a': [1]})\nframe['b'] = 2",
    "from IPython.display import HTML", "import time\nstarted = time.time()",
])
def test_a_students_own_objects_and_settings_may_change(source):
    verdict = with_cell(source, WRITTEN)
    assert verdict.status is PASS, verdict
