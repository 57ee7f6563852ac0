"""The grader's pages: one class page (`--report`) and one feedback page per submission (`--feedback`).

Each page is built as a notebook (markdown cells for the text and tables, a display output for the
figure) and written by `pages.write_html` as one self-contained HTML page that needs no network.

Student ids, reasons and flagged pairs come from the handed-in files, which may be hostile: every such
text goes through `_cell`, which turns every character that Markdown, HTML or the page's math could read
as markup (`<`, `>`, `&`, backticks, `|`, `$`, `[`, `*`, `\\` and the like) into a numeric character
reference, newlines into spaces, and breaks `://` so that no address a file wrote becomes a reference.
"""

import base64
import datetime
import io
import math
import re
import unicodedata
from pathlib import Path

from ..data import DATASETS
from .grade import CHECKS, FAIL, PASS, REVIEW

MISSING = "MISSING"
VERDICTS = (PASS, REVIEW, FAIL, MISSING)
HTML_OPTIONS = {"exclude_input": True, "exclude_input_prompt": True, "exclude_output_prompt": True}
MAX_ID = 80  # characters of a student id shown
MAX_REASON = 1500  # characters of a reason shown
MAX_LOSS = 1e6  # a final validation loss beyond this (in nats, either sign) is not drawn
_SAFE = frozenset(" .,-:;/=%+()'?")  # besides letters and digits, the characters left as they are
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

WHAT_TO_DO = {
    PASS: "PASS: nothing for you to do.",
    REVIEW: "REVIEW means a person will look at your record; nothing for you to do unless asked.",
    FAIL: ("FAIL means your record does not meet the lab's requirements as handed in: fix what the reasons "
           "below say (most often: open the notebook you were assigned, leave its parameters as they are, "
           "Restart & Run All, write your own Observation and Result) and hand it in again, or ask your "
           "instructor if you think the verdict is wrong."),
}


# --- text from the files, made inert ------------------------------------------------------------------------

def _cell(value, limit=MAX_REASON):
    """VALUE as inert Markdown text for a table cell or a paragraph (see the module docstring)."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "\u2026"
    parts = []
    for char in text:
        if char.isalnum() and char.isascii() or char in _SAFE:
            parts.append(char)
        elif unicodedata.category(char)[0] in "CZ":  # controls, newlines, separators, invisible format marks
            parts.append(" ")
        elif char.isalnum():  # letters and digits of other scripts are plain text
            parts.append(char)
        else:
            parts.append(f"&#{ord(char)};")
    return "".join(parts).strip().replace("://", ":&#8203;//")


def _student_label(student, file=""):
    if student:
        return _cell(student, MAX_ID)
    return "(no id) " + _cell(Path(file).name, MAX_ID) if file else "(no id)"


def _table(header, body, align=None):
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _now():
    return datetime.datetime.now().astimezone()


def _figure_cell(png, caption):
    import nbformat

    cell = nbformat.v4.new_code_cell(source="")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(png).decode("ascii"), "text/plain": caption})]
    return cell


# --- the class page ---------------------------------------------------------------------------------------------

def _number(value):
    """VALUE when it is a finite, drawable number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and abs(value) <= MAX_LOSS else None


def _dataset_name(value):
    return value if isinstance(value, str) and value in DATASETS else "other"


def final_losses(submissions):
    """{dataset: [final validation loss, ...]} over the submissions whose record printed one."""
    losses = {}
    for submission in submissions:
        metrics = getattr(submission.record, "metrics", None)
        if not isinstance(metrics, dict):
            continue
        value = _number(metrics.get("final_val_loss"))
        if value is not None:
            losses.setdefault(_dataset_name(metrics.get("dataset")), []).append(value)
    return losses


def reference_losses(references, assignments=None, submissions=()):
    """{dataset: [reference run's final validation loss, ...]} from REFERENCES {student_id: entry}."""
    by_student = {s.student_id: s for s in submissions if s.student_id}
    losses = {}
    for student, entry in (references or {}).items():
        if not isinstance(entry, dict) or "error" in entry:
            continue
        try:
            value = _number(entry["history"]["val_loss"][-1])
        except (KeyError, IndexError, TypeError):
            continue
        if value is None:
            continue
        configuration = entry.get("configuration") if isinstance(entry.get("configuration"), dict) else {}
        assignment = (assignments or {}).get(student) or {}
        submission_metrics = getattr(getattr(by_student.get(student), "record", None), "metrics", None) or {}
        dataset = (configuration.get("dataset") or assignment.get("dataset")
                   or (submission_metrics.get("dataset") if isinstance(submission_metrics, dict) else None))
        losses.setdefault(_dataset_name(dataset), []).append(value)
    return losses


def loss_histogram(losses, references=None):
    """PNG bytes: one histogram per dataset of LOSSES, REFERENCES marked as dashed lines; None if empty."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    references = references or {}
    datasets = [name for name in (*DATASETS, "other") if name in losses]
    if not datasets:
        return None
    figure = Figure(figsize=(5.0 * len(datasets), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for axis, name in zip(axes, datasets):
        values = losses[name]
        marks = references.get(name, [])
        low, high = min(values + marks), max(values + marks)
        pad = max(0.5, 0.05 * (high - low))  # so that a reference line at either end stays visible
        span = (low - pad, high + pad)
        axis.hist(values, bins=min(30, max(5, len(values))), range=span, color="tab:blue", alpha=0.8,
                  label=f"submissions ({len(values)})")
        for index, mark in enumerate(marks):
            axis.axvline(mark, color="tab:red", linestyle="--", linewidth=1.2,
                         label=f"reference runs ({len(marks)})" if index == 0 else None)
        axis.set_title(name, usetex=False)
        axis.set_xlabel("final validation loss (nats per image)")
        axis.set_ylabel("submissions")
        axis.yaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _verdict_section(rows):
    header = rows[0]
    checks = list(header[2:2 + len(CHECKS)])
    body = []
    for row in rows[1:]:
        student, verdict, marks, reasons = row[0], row[1], row[2:2 + len(checks)], row[2 + len(checks)]
        file = row[3 + len(checks)] if len(row) > 3 + len(checks) else ""
        shown = _cell(verdict, 20)
        body.append([_student_label(student, file), f"**{shown}**" if verdict in (FAIL, MISSING) else shown,
                     *(_cell(mark, 20) for mark in marks), _cell(reasons)])
    return "## Verdicts\n\n" + _table(["student", "verdict", *map(_cell, checks), "reasons"], body)


def _pass_rates(submissions):
    graded = len(submissions)
    body = []
    for name in CHECKS:
        verdicts = [s.checks[name][0] for s in submissions if name in s.checks]
        counts = [sum(v == verdict for v in verdicts) for verdict in (PASS, REVIEW, FAIL)]
        rate = f"{100 * counts[0] / graded:.0f}%" if verdicts else "not run"
        body.append([_cell(name), *map(str, counts), str(graded - len(verdicts)), rate])
    return ("## Pass rate per check\n\nOver the " + str(graded) + " graded submissions (missing students not "
            "counted); a check that was not run on a submission (an earlier check failed, or no assignments "
            "were given) counts as not passed.\n\n"
            + _table(["check", "PASS", "REVIEW", "FAIL", "not checked", "pass rate"], body,
                     ["---", "---:", "---:", "---:", "---:", "---:"]))


def _pairs_section(pairs):
    if not pairs:
        return "## Similar prose\n\nNo pair of submissions was flagged for similar prose."
    body = []
    for a, b, title, score in sorted(pairs, key=lambda pair: -(_number(pair[3]) or 0.0)):
        number = _number(score)
        body.append([_student_label(a), _student_label(b), _cell(title, 40),
                     f"{number:.2f}" if number is not None else _cell(score, 20)])
    return (f"## Similar prose\n\n{len(pairs)} pair(s) flagged (both records marked REVIEW under copies), most "
            "similar first.\n\n" + _table(["student", "student", "section", "similarity"], body,
                                           ["---", "---", "---", "---:"]))


def build_class_report(submissions, rows, pairs, assignments=None, references=None):
    """The class page as a notebook object."""
    import nbformat

    from .grade import csv_rows

    rows = rows if rows else csv_rows(submissions, assignments)
    md = nbformat.v4.new_markdown_cell
    counts = {verdict: sum(s.verdict == verdict for s in submissions) for verdict in (PASS, REVIEW, FAIL)}
    counts[MISSING] = sum(row[1] == MISSING for row in rows[1:])
    mode = ("numbers verified against the grader's reference runs" if assignments is not None
            else "self-check: numbers not verified, no roster")
    cells = [
        md(f"# VAE lab: class grades, {_now():%Y-%m-%d %H:%M %Z}\n\n"
           + " · ".join(f"**{counts[verdict]} {verdict}**" for verdict in VERDICTS)
           + f" ({len(submissions)} submissions graded; {mode}).\n\n"
           "PASS: the record meets every check. REVIEW: a person should look. FAIL: a check failed, with its "
           "reason. MISSING: a student on the roster handed nothing in."),
        md(_verdict_section(rows)),
        md(_pass_rates(submissions)),
        md("## Final validation losses"),
    ]
    losses, marks = final_losses(submissions), reference_losses(references, assignments, submissions)
    png = loss_histogram(losses, marks)
    if png is None:
        cells.append(md("No submission printed a final validation loss to plot."))
    else:
        unplotted = len(submissions) - sum(map(len, losses.values()))
        caption = ("The class's final validation losses per dataset" + (
            "; dashed red lines: the reference runs' final validation losses." if marks else
            " (no reference runs given).") + (
            f" {unplotted} submission(s) printed no usable final validation loss and are not drawn."
            if unplotted else ""))
        cells += [md(f"*{caption}*"), _figure_cell(png, caption)]
    cells.append(md(_pairs_section(pairs)))
    return nbformat.v4.new_notebook(cells=cells)


def write_class_report(submissions, rows, pairs, assignments, path, references=None):
    """Write the class page to PATH and return its path.

    ROWS are `grade.csv_rows(...)` (header first; MISSING rows for students with no submission); PAIRS are
    (student_a, student_b, section title, similarity); REFERENCES, if given, {student_id: reference entry}
    whose `entry["history"]["val_loss"][-1]` is marked on the histogram.
    """
    from ..pages import write_html

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_html(build_class_report(submissions, rows, pairs, assignments, references), path, **HTML_OPTIONS)


# --- feedback pages -----------------------------------------------------------------------------------------------

def safe_name(name, fallback="submission"):
    """NAME made a file name: only letters, digits, '.', '_' and '-'; no leading dot; at most 100 characters."""
    name = _UNSAFE_NAME.sub("_", str(name or "")).lstrip(".")[:100]
    return name or fallback


def build_feedback(submission):
    """One submission's feedback page as a notebook object."""
    import nbformat

    md = nbformat.v4.new_markdown_cell
    who = _student_label(submission.student_id, submission.path)
    verdict = submission.verdict
    names = [name for name in CHECKS if name in submission.checks]
    names += [name for name in submission.checks if name not in CHECKS]
    body = [[_cell(name), f"**{_cell(submission.checks[name][0], 20)}**" if submission.checks[name][0] != PASS
             else _cell(submission.checks[name][0], 20), _cell(submission.checks[name][1])] for name in names]
    cells = [
        md(f"# VAE lab feedback: {who}\n\n## Verdict: {_cell(verdict, 20)}\n\n{WHAT_TO_DO.get(verdict, '')}"),
        md(f"File: {_cell(Path(submission.path).name, 200)}, graded {_now():%Y-%m-%d %H:%M %Z}."),
        md("## Checks\n\n" + (_table(["check", "verdict", "reason"], body) if body else
                              "No check could be run on this file.")),
    ]
    return nbformat.v4.new_notebook(cells=cells)


def write_feedback(submissions, directory):
    """Write DIRECTORY/<student_id or file stem>.html for each submission; return DIRECTORY.

    Names are made safe (`safe_name`); two submissions that would share a name get -2, -3, ... so none
    overwrites another (compared without case, for case-insensitive file systems).
    """
    from ..pages import write_html

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    taken = set()
    for submission in submissions:
        stem = safe_name(submission.student_id or Path(submission.path).stem)
        name, number = stem, 1
        while name.lower() in taken:
            number += 1
            name = f"{stem}-{number}"
        taken.add(name.lower())
        write_html(build_feedback(submission), directory / f"{name}.html", **HTML_OPTIONS)
    return directory
