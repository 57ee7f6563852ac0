"""Read a handed-in lab notebook as data, never as code: its parameters, executions, printed history,
metrics, figures, exercise cells and prose.

A hand-in is hostile until proven otherwise. Every value is checked for its type and range before any
arithmetic touches it, every scan is linear in its input, and the bytes come already bounded
(`lms.HandIn.read`). Any file gives a Record or an `Unreadable` with one sentence; nothing here executes,
imports or unpickles what a file holds (`ast` only parses the parameters cell and exercise cells).
"""

import ast
import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field

from ..data import DATASETS
from ..errors import LabError
from ..record_format import HISTORY_KEYS, LAB_FIGURES, METRIC_KEYS, parse_epoch_line
from ..exercises import EXERCISE_NAMES
from .assign import ANSWER_TAG, EXERCISE_TAG, PARAMETERS_TAG, QUESTIONS_TAG
from .code_similarity import quiet_parse
from .exercise_code import bindings, exercise_source
from .prose import markdown_sections

MAX_BYTES = 50 * 2**20  # an executed lab record is about 1 MB; a bigger file is not one
MAX_OUTPUTS_PER_CELL = 1000
MAX_CELLS = 2000
# JSON arrays and objects in a hand-in: each costs Python ~60 times its bytes once parsed, so a 50 MB file of
# brackets could take gigabytes. An executed lab record holds a few hundred.
MAX_CONTAINERS = 400_000
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')  # possessive: linear, no backtracking state kept
MAX_PARAMETERS_SOURCE = 10_000  # characters of the parameters cell that are parsed
MAX_EXERCISE_SOURCE = 20_000  # characters of one exercise cell that are kept
MAX_EXERCISE_CELLS = 12  # exercise functions or cells kept of one record (three are asked for)
MAX_CODE = 200_000  # characters of code kept of an exercise record, to read how training got its functions
MAX_FIGURE_BYTES = 5 * 2**20  # one figure's PNG
MAX_SECTION = 100_000  # characters of an Observation or Result that are checked (a real one is ~2,000)
METRIC_LIMIT = 1e6  # nats; a metric beyond this (either sign) is no lab metric
MAX_EPOCHS = 1000


class Unreadable(LabError, ValueError):
    """The file is not a lab notebook the grader can read."""


def _whole(low, high):
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


# The parameters cell's names: (test of a valid value, what a valid value is). Checked before any use.
PARAMETER_RULES = {
    "STUDENT_ID": (lambda value: isinstance(value, str) and 0 < len(value) <= 128, "a short text"),
    "SEED": (_whole(0, 2**31 - 1), "a whole number from 0 to 2147483647"),
    "DATASET": (lambda value: isinstance(value, str) and value in DATASETS, f"one of {', '.join(DATASETS)}"),
    "EPOCHS": (_whole(1, MAX_EPOCHS), f"a whole number from 1 to {MAX_EPOCHS}"),
    "TRAIN_IMAGES": (lambda value: value is None or _whole(1, 60_000)(value), "None or a whole number up to 60000"),
}
PARAMETER_NAMES = tuple(PARAMETER_RULES)
# The metrics output's bookkeeping values, checked like the parameters (the numbers are METRIC_KEYS).
METRIC_FIELD_RULES = {
    "seed": PARAMETER_RULES["SEED"][0],
    "dataset": PARAMETER_RULES["DATASET"][0],
    "epochs": PARAMETER_RULES["EPOCHS"][0],
    "iw_samples": _whole(1, 100_000),
}


@dataclass
class Figure:
    """One figure output: the PNG's bytes as decoded from the notebook, and where it was found."""

    png: bytes
    cell: int  # index of the code cell that drew it
    facts: object = None  # figures.FigureFacts, once the figure check has looked at it


@dataclass
class Record:
    label: str
    cells: list  # each cell's outline (`_outline`): its kind, whether blank, tags, execution count, output kinds
    parameters: dict = field(default_factory=dict)  # valid values only
    parameter_problems: list = field(default_factory=list)
    parameters_source: str = ""
    history: dict = field(default_factory=dict)  # key -> list of printed values (2 decimals)
    history_problem: str = ""
    metrics: dict = None  # valid values only: METRIC_KEYS as floats, METRIC_FIELD_RULES' fields
    metric_problems: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # figure name -> Figure
    sections: dict = field(default_factory=dict)  # Observation / Result -> text written
    exercises: dict = field(default_factory=dict)  # function name -> source of its exercise cell
    exercise_checks: dict = field(default_factory=dict)  # function name -> what its check cell printed last
    code_cells: list = field(default_factory=list)  # exercise records: (code cell number, source, is an exercise
    # cell) of every code cell; None where the record holds more code than is read (MAX_CODE)

    @property
    def student_id(self):
        return self.parameters.get("STUDENT_ID")

    def own_values(self):
        """Every number this record printed: its history and its metrics."""
        values = [value for column in self.history.values() for value in column if math.isfinite(value)]
        return values + [self.metrics[key] for key in METRIC_KEYS if key in (self.metrics or {})]


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    raise Unreadable("a cell's source or output text is neither a string nor a list of strings")


def _cells(notebook):
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise Unreadable("not a Jupyter notebook (no list of cells)")
    if len(notebook["cells"]) > MAX_CELLS:
        raise Unreadable(f"{len(notebook['cells'])} cells: more than any lab record ({MAX_CELLS})")
    cells = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Unreadable("a cell is not a code, markdown or raw cell")
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        outputs = cell.get("outputs", []) if cell["cell_type"] == "code" else []
        if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
            raise Unreadable("a code cell's outputs are not a list of outputs")
        if len(outputs) > MAX_OUTPUTS_PER_CELL:
            raise Unreadable(f"a cell with {len(outputs)} outputs (at most {MAX_OUTPUTS_PER_CELL} are read)")
        count = cell.get("execution_count")
        timing = metadata.get("execution") if isinstance(metadata.get("execution"), dict) else {}
        cells.append({"type": cell["cell_type"], "source": _text(cell.get("source", "")),
                      "tags": [tag for tag in tags if isinstance(tag, str)], "outputs": outputs,
                      "execution_count": count if _whole(0, 10**9)(count) else None,
                      "started": timing.get("iopub.execute_input")})
    return cells


def short(value, limit=40):
    """A value from a record as a short, printable text (never the 5,000-digit repr of an integer)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 60:
        return f"a {value.bit_length()}-bit integer"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "…"


def _parameters(cells):
    """The literal assignments of the cell tagged 'parameters' (else the first code cell), never run,
    each checked against PARAMETER_RULES; returns (values, problems, source)."""
    code = [cell for cell in cells if cell["type"] == "code"]
    tagged = [cell for cell in code if PARAMETERS_TAG in cell["tags"]]
    cell = (tagged or code or [None])[0]
    if cell is None:
        return {}, [], ""
    source = cell["source"]
    if len(source) > MAX_PARAMETERS_SOURCE:
        return {}, [f"the parameters cell is {len(source):,} characters long: not the one assigned"], source[:200]
    try:
        tree = quiet_parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return {}, ["the parameters cell is not valid Python"], source
    values, problems = {}, []
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id in PARAMETER_RULES):
            continue
        name = statement.targets[0].id
        try:
            value = ast.literal_eval(statement.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError, OverflowError):
            problems.append(f"{name} is not a plain value")
            continue
        valid, expected = PARAMETER_RULES[name]
        if valid(value):
            values[name] = value
        else:
            problems.append(f"{name} is {short(value)}, not {expected}")
    return values, problems, source


def _history(cells):
    """Per-epoch values from the first code cell that printed history lines; (history, problem)."""
    for cell in cells:
        text = "".join(_text(output.get("text", "")) for output in cell["outputs"]
                       if output.get("output_type") == "stream" and output.get("name") == "stdout")
        lines = [parsed for parsed in map(parse_epoch_line, text.splitlines()) if parsed]
        if not lines:
            continue
        epochs = [epoch for epoch, _, _ in lines]
        if epochs != list(range(1, len(lines) + 1)) or len({total for _, total, _ in lines}) != 1:
            return {}, f"the printed epochs go {epochs[:8]}, not 1, 2, 3, … in one run"
        history = {}
        for _, _, values in lines:
            for key in HISTORY_KEYS:
                history.setdefault(key, []).append(values.get(key, math.nan))
        return history, ""
    return {}, ""


def _metrics(cells):
    """The last metrics output (JSON with test_neg_elbo), checked value by value; (metrics, problems)."""
    found = None
    for cell in cells:
        for output in cell["outputs"]:
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            value = data.get("application/json")
            if isinstance(value, dict) and "test_neg_elbo" in value:
                found = value
    if found is None:
        return None, []
    metrics, problems = {}, []
    for key in METRIC_KEYS:
        value = found.get(key)
        number = _finite_number(value)
        if number is None:
            problems.append(f"{key} is {short(value)}, not a finite number of nats")
        else:
            metrics[key] = number
    for key, valid in METRIC_FIELD_RULES.items():
        if key in found and valid(found[key]):
            metrics[key] = found[key]
        elif key in found:
            problems.append(f"{key} is {short(found[key])}")
    return metrics, problems


def _finite_number(value):
    """VALUE as a float when it is an int or float (not a bool) within ±METRIC_LIMIT, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and value.bit_length() > 64:
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= METRIC_LIMIT else None


def _figures(cells):
    """{figure name: Figure} for the required figures, from the first cell that calls its plot function."""
    figures = {}
    for name, figure in LAB_FIGURES.items():
        for index, cell in enumerate(cells):
            if cell["type"] != "code" or figure.plot_function not in cell["source"]:
                continue
            png = next((png for png in map(_png, cell["outputs"]) if png is not None), None)
            if png is not None:
                figures[name] = Figure(png, index)
                break
    return figures


def _png(output):
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    encoded = data.get("image/png")
    if not isinstance(encoded, (str, list)):
        return None
    try:
        text = _text(encoded)
    except Unreadable:
        return None
    if len(text) > MAX_FIGURE_BYTES * 4 // 3 + 1024:
        return b""  # present, but no figure of the lab's: the figure check says so
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def _sections(cells):
    """The Observation and Result the student wrote: the cells tagged 'answer' under each heading,
    or (tags removed) the text under the heading; the guiding questions are never the student's."""
    from .prose import markdown_heading

    answers, current = {"Observation": [], "Result": []}, None
    for cell in cells:
        if cell["type"] != "markdown":
            continue
        for line in cell["source"].splitlines():
            heading = markdown_heading(line)
            if heading and heading[1] in answers:
                current = heading[1]
        if current and ANSWER_TAG in cell["tags"]:
            kept = [line for line in cell["source"].splitlines()
                    if not (markdown_heading(line) or (0, ""))[1] in answers]
            answers[current].append("\n".join(kept))
    by_heading = markdown_sections([cell["source"] for cell in cells
                                    if cell["type"] == "markdown" and QUESTIONS_TAG not in cell["tags"]])
    return {title: ("\n\n".join(answers[title]).strip() if answers[title] else by_heading.get(title, ""))[:MAX_SECTION]
            for title in answers}


def _exercises(cells):
    """{function name: cell source} of the cells tagged 'exercise', by each name the cell binds at its top level
    (a def, or an import or assignment in place of one); a name bound again later is the later cell's, as in
    the kernel."""
    exercises = {}
    for cell in cells:
        if cell["type"] != "code" or EXERCISE_TAG not in cell["tags"]:
            continue
        source = cell["source"][:MAX_EXERCISE_SOURCE]
        try:
            tree = quiet_parse(exercise_source(source))
            names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
            names += [name for name, _ in bindings(tree) if name not in names and name in EXERCISE_NAMES]
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            names = []
        for name in names or [f"cell {len(exercises) + 1}"]:
            exercises.pop(name, None)
            exercises[name] = source
        if len(exercises) >= MAX_EXERCISE_CELLS:  # three are asked for; a thousand would only cost pages
            break
    return exercises


def _code_cells(cells):
    """[(code cell number, source, tagged 'exercise')] of every code cell, or None past MAX_CODE."""
    code = [(number, cell["source"], EXERCISE_TAG in cell["tags"])
            for number, cell in enumerate((cell for cell in cells if cell["type"] == "code"), 1)]
    return code if sum(len(source) for _, source, _ in code) <= MAX_CODE else None


def _exercise_checks(cells):
    """{function name: verdict} as the check cells printed them ('kl_divergence: correct'), the last of each."""
    from ..exercises import EXERCISES

    checks = {}
    for cell in cells:
        if cell["type"] != "code" or "check_exercise(" not in cell["source"] or EXERCISE_TAG in cell["tags"]:
            continue
        text = "".join(_text(output.get("text", "")) for output in cell["outputs"]
                       if output.get("output_type") == "stream" and output.get("name") == "stdout")
        for line in text.splitlines():
            name, colon, verdict = line.partition(": ")
            if colon and name in EXERCISES:
                checks[name] = verdict.strip()[:300]
    return checks


def _outline(cells):
    """CELLS without their texts: what the checks read after a record is parsed (kinds, execution counts, start
    times), so a class's records don't hold every output and source in memory until the batch is done."""
    return [{"type": cell["type"], "blank": not cell["source"].strip(), "tags": cell["tags"],
             "outputs": [{key: output[key] for key in ("output_type", "execution_count") if key in output}
                         for output in cell["outputs"]],
             "execution_count": cell["execution_count"], "started": cell["started"]} for cell in cells]


def read_record(data, label="notebook"):
    """The Record of one hand-in's bytes; raises Unreadable with the reason."""
    if len(data) > MAX_BYTES:
        raise Unreadable(f"larger than any lab record (at most {MAX_BYTES // 2**20} MB)")
    if not data.strip():
        raise Unreadable("the file is empty: hand in the saved notebook (File → Save, then upload the .ipynb)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte {error.start}): not a notebook file") from None
    outside_strings = _JSON_STRING.sub('""', text)
    containers = outside_strings.count("[") + outside_strings.count("{")
    del outside_strings
    if containers > MAX_CONTAINERS:
        raise Unreadable(f"{containers:,} JSON arrays and objects: far more than any lab record holds "
                         f"(at most {MAX_CONTAINERS:,} are read)")
    try:
        notebook = json.loads(text)
    except RecursionError:
        raise Unreadable("JSON nested too deeply to be a notebook") from None
    except ValueError as error:
        raise Unreadable(f"not valid JSON ({str(error)[:80]})") from None
    try:
        cells = _cells(notebook)
        parameters, parameter_problems, parameters_source = _parameters(cells)
        history, history_problem = _history(cells)
        metrics, metric_problems = _metrics(cells)
        exercises = _exercises(cells)
        return Record(label=label, cells=_outline(cells), parameters=parameters,
                      parameter_problems=parameter_problems, parameters_source=parameters_source, history=history,
                      history_problem=history_problem, metrics=metrics, metric_problems=metric_problems,
                      figures=_figures(cells), sections=_sections(cells), exercises=exercises,
                      exercise_checks=_exercise_checks(cells), code_cells=_code_cells(cells) if exercises else [])
    except RecursionError:
        raise Unreadable("nested too deeply to be a notebook") from None


def read_record_file(path):
    """The Record of a notebook on disk (a regular file, read up to the limit)."""
    from .lms import read_regular_file

    try:
        data = read_regular_file(path, MAX_BYTES)
    except LabError as error:
        raise Unreadable(str(error)) from None
    return read_record(data, label=str(path))
