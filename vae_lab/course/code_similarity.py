"""How alike two students' exercise code is, with names, comments, docstrings and layout set aside.

Code is read as text (Python's `ast`), never run. Each record's exercise code becomes a set of choices the
student made, per function (the three exercises by name, any other as a helper, whatever its name): the
library calls (`ops.exp`, `tf.clip_by_value`), their keyword arguments
(`axis=1`), the numbers (1e-7, 784, 28 * 28 via a constant), and the operators. Renaming, reformatting,
reordering and moving a factor change none of these. Choices that many students make are worth little:
each is weighted by its rarity (inverse document frequency) among the students of a built-in corpus of
independent solutions (`code_corpus.json`, from benchmarks/bench_code_similarity.py) together with the
class being graded, and the choices of the package's own solution, which everyone may share, are worth
nothing. Two records score the weighted share of the smaller one's choices that the other made too, once
the smaller one has enough choices of its own to tell (MIN_EVIDENCE).
"""

import ast
import json
import math
import warnings
from pathlib import Path

# A pair scoring at least this is flagged: mid-gap between the most alike independent solutions written blind
# (0.885, 0 of 66 pairs flagged) and disguised copies (1.00; benchmarks/bench_code_similarity.py). Copies of
# code that makes only the package's own choices score 0: they can't be told from an independent student
# who wrote it the same way.
COPY_THRESHOLD = 0.94
# Two records are compared only when the smaller one's own choices (those not the package's) weigh at least
# this much: two minimal textbook solutions that differ from the package only in writing axis=1 share
# 1.27 and scored 1.00 (a hunt, 2026-12-06); the disguised copies flagged in the benchmark weigh 4.61-15.47.
MIN_EVIDENCE = 3.0
MAX_SOURCE = 60_000  # characters read of one record's exercise code
CORPUS = Path(__file__).with_name("code_corpus.json")



def quiet_parse(source):
    """ast.parse of a student's cell without Python's SyntaxWarnings ("invalid escape sequence"), which
    Python 3.12 and later print to the grader's stderr, unescaped, once per bad escape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)

def features(source):
    """The set of choices in SOURCE, per function: (function, kind, detail); empty where it doesn't parse."""
    try:
        tree = quiet_parse(source[:MAX_SOURCE])
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return frozenset()
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                try:
                    constants[node.targets[0].id] = _arithmetic(node.value)
                except (ValueError, RecursionError):
                    pass
    from ..exercises import EXERCISE_NAMES  # any other function is a helper, whatever its name

    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    helpers = {function.name for function in functions if function.name not in EXERCISE_NAMES}
    found = set()
    for function in functions:
        for node in ast.walk(function):
            found |= _choices(function.name if function.name in EXERCISE_NAMES else "helper", node, constants, helpers)
    return frozenset(found)


def _arithmetic(node):
    """The value of a small constant expression such as 28 * 28; ValueError otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub)):
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if max(abs(left), abs(right)) > 1e6:
            raise ValueError("too large")
        return {ast.Mult: left * right, ast.Add: left + right, ast.Sub: left - right}[type(node.op)]
    raise ValueError("not arithmetic")


def _number(value):
    try:
        return f"{float(value):.6g}"
    except (OverflowError, ValueError):  # an integer too large for a float is a choice like any other, and
        return f"int:{value.bit_length()}-bit"  # one of 4,300 digits or more has no decimal text in Python


def _written(node, limit):
    """NODE as the student wrote it, cut to LIMIT characters (a literal Python can't print is named by kind)."""
    try:
        return ast.unparse(node)[:limit]
    except (ValueError, RecursionError, OverflowError):
        return type(node).__name__


def _choices(name, node, constants, helpers=frozenset()):
    if isinstance(node, ast.Call):
        called = _written(node.func, 60) if isinstance(node.func, (ast.Attribute, ast.Name)) else "call"
        if isinstance(node.func, ast.Name) and node.func.id in helpers:
            called = "helper"
        found = {(name, "call", called)}
        for keyword in node.keywords:
            found.add((name, "keyword", f"{keyword.arg}={_written(keyword.value, 30)}"))
        return found
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return {(name, "number", _number(node.value))}
    if isinstance(node, ast.Name) and isinstance(constants.get(node.id), (int, float)):
        return {(name, "number", _number(constants[node.id]))}
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return {(name, "operator", type(node.op).__name__)}
    return set()


def solution_sources():
    """{name: source} of the package's own exercise solutions, read from vae_lab/model.py as text (importing
    it would load TensorFlow, which grading never does)."""
    from importlib.util import find_spec

    text = Path(find_spec("vae_lab.model").origin).read_text(encoding="utf-8")
    wanted = {"reparameterize": "reparameterize", "kl_divergence": "kl_divergence",
              "reconstruction_loss_from_probabilities": "reconstruction_loss"}
    return {wanted[node.name]: ast.get_source_segment(text, node).replace(node.name, wanted[node.name], 1)
            for node in ast.parse(text).body if isinstance(node, ast.FunctionDef) and node.name in wanted}


def common_ground():
    """The choices of the package's own solution: every student may make them."""
    return features("\n\n".join(solution_sources().values()))


class Weights:
    """Each choice's weight: log((N + 1) / (n + 1)) over N students of the corpus and the class, n of whom
    made it; zero for the common ground."""

    def __init__(self, class_features=(), corpus=None, common=None):
        corpus = corpus if corpus is not None else json.loads(CORPUS.read_text(encoding="utf-8"))
        self.count = corpus["students"] + len(class_features)
        self.frequency = {tuple(key.split("\x1f")): value for key, value in corpus["frequency"].items()}
        for found in class_features:
            for feature in found:
                self.frequency[feature] = self.frequency.get(feature, 0) + 1
        self.common = common if common is not None else common_ground()

    def __call__(self, feature):
        if feature in self.common:
            return 0.0
        return math.log((self.count + 1) / (self.frequency.get(feature, 0) + 1))


def similarity(first, second, weights):
    """Weighted share of the smaller record's choices that the other made too, in [0, 1]."""
    total_first, total_second = sum(map(weights, first)), sum(map(weights, second))
    if min(total_first, total_second) < MIN_EVIDENCE:  # too few choices of its own to tell a copy from a coincidence
        return 0.0
    return sum(map(weights, first & second)) / min(total_first, total_second)


def similar_pairs(codes, threshold=COPY_THRESHOLD, corpus=None):
    """(id_a, id_b, score) for every pair of CODES {id: source} at or above THRESHOLD, highest first."""
    found = {key: _features_or_none(source) for key, source in codes.items() if source}
    weights = Weights(list(found.values()), corpus)
    keys = [key for key, value in found.items() if value]
    pairs = []
    for index, first in enumerate(keys):
        for second in keys[index + 1:]:
            score = similarity(found[first], found[second], weights)
            if score >= threshold:
                pairs.append((first, second, score))
    return sorted(pairs, key=lambda pair: -pair[2])


def _features_or_none(source):
    """features(SOURCE), or none where reading it failed in a way not foreseen: that record is left out of the
    comparison, never the whole class's copies check."""
    try:
        return features(source)
    except Exception:  # noqa: BLE001 - a student's text must not stop the class's check
        return frozenset()


def corpus_frequencies(sources):
    """The corpus file's content from independent solutions' sources: {students, frequency}."""
    frequency = {}
    for source in sources:
        for feature in features(source):
            key = "\x1f".join(feature)
            frequency[key] = frequency.get(key, 0) + 1
    return {"students": len(sources), "frequency": dict(sorted(frequency.items()))}
