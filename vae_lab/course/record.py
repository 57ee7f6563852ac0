"""Read a handed-in lab notebook as data, never as code: its parameters, executions, printed history,
metrics, figures and prose. Any file, however malformed, huge or hostile, gives a Record or an
`Unreadable` with one sentence; nothing here executes, imports or unpickles what a file holds.
"""

import ast
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..run_directory import HISTORY_KEYS, METRIC_KEYS
from .assign import ANSWER_TAG, PARAMETER_NAMES, PARAMETERS_TAG
from .prose import notebook_sections

MAX_BYTES = 50 * 2**20  # an executed lab record is about 1 MB; a bigger file is not one
MAX_OUTPUTS_PER_CELL = 1000
MAX_CELLS = 2000
FIGURE_CALLS = {"latent scatter": "plot_latent_scatter", "digit grid": "plot_digit_grid"}
_EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\s+[\d.]+ s\s+(.*)$", re.MULTILINE)
_KEY_VALUE = re.compile(r"(\w+) (-?\d+(?:\.\d+)?|nan|inf)")


class Unreadable(ValueError):
    """The file is not a lab notebook the grader can read."""


@dataclass
class Record:
    path: Path
    cells: list
    parameters: dict = field(default_factory=dict)
    parameters_source: str = ""
    history: dict = field(default_factory=dict)  # key -> list of printed values (2 decimals)
    metrics: dict = None
    figures: dict = field(default_factory=dict)  # figure name -> sha256 of its PNG
    sections: dict = field(default_factory=dict)  # Observation / Result -> text written

    @property
    def student_id(self):
        value = self.parameters.get("STUDENT_ID")
        return value if isinstance(value, str) else None

    def own_values(self):
        """Every number this record printed: its history and its metrics."""
        values = [value for column in self.history.values() for value in column]
        values += [self.metrics.get(key) for key in METRIC_KEYS] if self.metrics else []
        return [value for value in values if isinstance(value, (int, float))]


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
        cells.append({"type": cell["cell_type"], "source": _text(cell.get("source", "")),
                      "tags": [tag for tag in tags if isinstance(tag, str)], "outputs": outputs,
                      "execution_count": count if isinstance(count, int) and not isinstance(count, bool) else None,
                      "timing": metadata.get("execution") if isinstance(metadata.get("execution"), dict) else {}})
    return cells


def _parameters(cells):
    """The literal assignments of the cell tagged 'parameters' (else the first code cell), never run."""
    code = [cell for cell in cells if cell["type"] == "code"]
    tagged = [cell for cell in code if PARAMETERS_TAG in cell["tags"]]
    cell = (tagged or code or [None])[0]
    if cell is None:
        return {}, ""
    values = {}
    try:
        tree = ast.parse(cell["source"])
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}, cell["source"]
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id in PARAMETER_NAMES):
            try:
                values[statement.targets[0].id] = ast.literal_eval(statement.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                pass
    return values, cell["source"]


def _history(cells):
    """Per-epoch values from the training cell's printed lines ("Epoch 3/5  1.1 s  loss 160.10 ...")."""
    for cell in cells:
        text = "".join(_text(output.get("text", "")) for output in cell["outputs"]
                       if output.get("output_type") == "stream" and output.get("name") == "stdout")
        lines = _EPOCH_LINE.findall(text)
        if lines:
            history = {}
            for _, _, values in lines:
                pairs = dict(_KEY_VALUE.findall(values))
                for key in HISTORY_KEYS:
                    history.setdefault(key, []).append(float(pairs[key]) if key in pairs else math.nan)
            return history
    return {}


def _metrics(cells):
    found = None
    for cell in cells:
        for output in cell["outputs"]:
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            value = data.get("application/json")
            if isinstance(value, dict) and "test_neg_elbo" in value:
                found = value
    return found


def _figures(cells):
    figures = {}
    for name, call in FIGURE_CALLS.items():
        for cell in cells:
            if cell["type"] != "code" or call not in cell["source"]:
                continue
            for output in cell["outputs"]:
                data = output.get("data") if isinstance(output.get("data"), dict) else {}
                if isinstance(data.get("image/png"), (str, list)):
                    figures[name] = hashlib.sha256(_text(data["image/png"]).encode()).hexdigest()
                    break
    return figures


def _sections(cells):
    """The Observation and Result the student wrote: the cells tagged 'answer' under each heading,
    or (tags removed) the text under the heading."""
    answers, current = {"Observation": [], "Result": []}, None
    for cell in cells:
        if cell["type"] != "markdown":
            continue
        heading = re.search(r"^\s*#+\s*(Observation|Result)\s*:?\s*$", cell["source"], re.MULTILINE)
        if heading:
            current = heading.group(1)
        if current and ANSWER_TAG in cell["tags"]:
            answers[current].append(re.sub(r"^\s*#+\s*(Observation|Result)\s*:?\s*$", "", cell["source"],
                                           flags=re.MULTILINE))
    by_heading = notebook_sections({"cells": [{"cell_type": c["type"], "source": c["source"]} for c in cells
                                              if "questions" not in c["tags"]]})
    return {title: ("\n\n".join(answers[title]).strip() if answers[title] else by_heading.get(title, ""))
            for title in answers}


def read_record(path):
    """The Record of one submission; raises Unreadable with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise Unreadable(f"{size / 2**20:.0f} MB: larger than any lab record (at most {MAX_BYTES // 2**20} MB)")
        raw = path.read_bytes()
    except OSError as error:
        raise Unreadable(f"cannot read the file: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte {error.start}): not a notebook file") from None
    try:
        notebook = json.loads(text)
    except RecursionError:
        raise Unreadable("JSON nested too deeply to be a notebook") from None
    except ValueError as error:
        raise Unreadable(f"not valid JSON ({str(error)[:80]})") from None
    try:
        cells = _cells(notebook)
        parameters, parameters_source = _parameters(cells)
        return Record(path=path, cells=cells, parameters=parameters, parameters_source=parameters_source,
                      history=_history(cells), metrics=_metrics(cells), figures=_figures(cells),
                      sections=_sections(cells))
    except RecursionError:
        raise Unreadable("nested too deeply to be a notebook") from None
