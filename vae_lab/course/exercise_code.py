"""How an exercise record's functions reached training, read as text and never run.

The package's own functions give the grader's reference numbers, so a record whose exercise cells are junk but
whose training used the package's functions verifies. What the numbers can't show, the code must: the notebook
makes `functions` from the three names and passes it to `train`, and nothing a student wrote binds those names
or reaches the package's solution some other way. Cells identical to the handout's are the package's and are
trusted; every other cell is read. A binding or an import that swaps in the package's functions is a FAIL; a
way of reaching them that reading can't follow (`getattr`, `exec`, an alias of the package, a name made outside
the exercise cells, a shell command or magic) is a REVIEW, so an instructor looks.
"""

import ast
import builtins
import functools
import re

from ..exercises import EXERCISE_NAMES
from .code_similarity import quiet_parse
from .verdicts import failed, review

PACKAGE_FUNCTIONS = {*EXERCISE_NAMES, "reconstruction_loss_from_probabilities", "LossFunctions", "solutions",
                     "PACKAGE_FUNCTIONS"}
# Names a student's cell must not bind: what training takes its functions from.
PROTECTED = {"functions", "LossFunctions", "solutions", *EXERCISE_NAMES}
# Calls and attributes through which code reaches what it never names.
DYNAMIC_CALLS = {"exec", "eval", "compile", "getattr", "setattr", "delattr", "globals", "locals", "vars",
                 "__import__", "get_ipython"}
DYNAMIC_ATTRIBUTES = {"import_module", "attrgetter", "methodcaller", "run_cell", "reload", "f_globals", "f_locals",
                      "settrace", "setprofile", "_getframe", "system", "popen", "get_referrers", "user_ns"}
# Double-underscore attributes that only describe an object; any other (__dict__, __code__, __defaults__,
# __setattr__, __class__ …) reaches inside one.
DESCRIPTIVE_DUNDERS = {"__name__", "__doc__", "__version__", "__file__", "__qualname__", "__module__"}
DYNAMIC_MODULES = {"importlib", "inspect", "ctypes", "pickle", "marshal", "dill", "cloudpickle", "builtins"}
# Where a function called kl_divergence is not the package's: Keras's and TensorFlow Probability's.
OTHER_KL = re.compile(r"(?:^|\.)(?:losses|distributions|tfd)$")
# Names an exercise function may use without making them: the handout's libraries and Python's builtins.
LIBRARIES = {"ops", "keras", "tf", "tensorflow", "np", "numpy", "math", "jnp", "jax", "torch", "functools"}
KNOWN_GLOBALS = LIBRARIES | set(dir(builtins))
LIBRARY_MODULES = {"keras", "tensorflow", "numpy", "math", "jax", "torch", "functools", "scipy",
                   "tensorflow_probability"}
BUILTIN_NAMES = set(dir(builtins))
# IPython magics that run no code of their own, and those whose argument is Python the grader reads.
# (%config is not: it runs its line as Python.) A magic's or command's line with {…} in it runs that Python first.
QUIET_MAGICS = {"matplotlib", "who", "whos", "pwd", "ls", "precision", "xmode", "autoreload", "pinfo", "pinfo2",
                "psearch", "pdoc", "pdef", "psource", "pfile", "history", "lsmagic", "magic", "env", "notebook", "page"}
QUIET_EXTENSIONS = {"autoreload"}  # %load_ext of anything else imports and runs a module
# What a student's own cell may import: the libraries a lab uses. Anything else (gc, __main__, IPython's shell,
# a module the notebook just wrote, a module of the package itself) can reach the notebook's namespace.
IMPORTABLE = LIBRARY_MODULES | {"matplotlib", "pandas", "seaborn", "time", "random", "statistics", "collections",
                                "itertools", "typing", "datetime", "pathlib", "warnings", "pprint", "tqdm", "sklearn",
                                "PIL", "sys", "os", "json", "csv", "dataclasses", "timeit", "platform", "tensorflow_datasets",
                                "re", "string", "textwrap", "numbers", "fractions", "decimal", "copy", "heapq", "bisect",
                                "enum", "cmath", "struct", "hashlib", "base64", "io", "glob", "operator", "traceback",
                                "logging", "contextlib", "h5py", "skimage", "cv2", "plotly", "umap"}
IMPORTABLE_DOTTED = {"IPython.display"}
# Roots a student's cell may change the insides of without building them: plotting and table settings.
STORE_ROOTS = {"plt", "matplotlib", "mpl", "pd", "os", "np", "sns"}
PACKAGE_MODULES = {"atomic", "backend", "cli", "compile_cache", "config", "course", "data", "epoch_program", "errors",
                   "evaluation", "exercises", "lab", "lab_notebook", "model", "pages", "plots", "progress",
                   "record_format", "report", "run_directory", "training", "typeset"}
CODE_MAGICS = {"time", "timeit", "prun", "capture", "debug"}
QUIET_COMMANDS = {"ls", "pwd", "nvidia-smi", "cat", "head", "tail", "nproc", "free", "df", "du", "lscpu", "which",
                  "echo", "date", "uname", "whoami", "hostname", "wc", "file", "nvcc"}
LOOKING = {"dir", "help", "print", "type", "repr", "id", "str", "isinstance", "display"}  # calls that show the package, never rebind it
MAX_DEPTH = 30  # attribute chains longer than this are named by their kind (a deep chain is no lab code)


@functools.lru_cache(maxsize=1)
def handout_code():
    """The normalized sources of the exercise handout's code cells other than the parameters and the exercises
    (the cells every student gets), as `vae-lab assign --exercises` makes them from the package's notebook."""
    import nbformat

    from ..lab_notebook import lab_notebook_path
    from .assign import EXAMPLE, student_notebook

    return _trusted(student_notebook(nbformat.read(lab_notebook_path(), as_version=4), EXAMPLE, exercises=True))


def handout_code_in(folder):
    """handout_code() of the handout `vae-lab assign --exercises` wrote into FOLDER, the one the students got
    (from whatever reference notebook the instructor chose); None where FOLDER holds no exercise notebook."""
    import nbformat

    from pathlib import Path

    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            notebook = nbformat.read(path, as_version=4)
        except (OSError, ValueError):
            continue
        if notebook.metadata.get("vae_lab", {}).get("exercises"):
            return _trusted(notebook)
    return None


def _trusted(notebook):
    from .assign import EXERCISE_TAG, PARAMETERS_TAG

    return frozenset(normalized(cell.source) for cell in notebook.cells if cell.cell_type == "code"
                     and not {EXERCISE_TAG, PARAMETERS_TAG} & set(cell.metadata.get("tags", [])))


def normalized(source):
    """SOURCE with trailing spaces and tabs and blank ends removed, split where Python splits lines (\\n, \\r\\n,
    \\r) and nowhere else: str.splitlines() would also split at a form feed, so a comment hiding a whole cell
    behind \\x0c would read as the handout's cell."""
    return "\n".join(line.rstrip(" \t") for line in re.split(r"\r\n|\r|\n", source.strip(" \t\r\n")))


def dotted(node):
    """'a.b.c' for an attribute chain or name, without recursion; '' for anything else."""
    parts = []
    for _ in range(MAX_DEPTH):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return ""
    return ""


def package_use(tree):
    """The first use in TREE of the package's own solution: an import from vae_lab, an attribute named like a
    package function (of anything but Keras's or TFP's KL), or a lookup the grader can't follow; else None."""
    checks = {id(node.func.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
              and dotted(node.func) == "vae_lab.check_exercise"}  # a check run in the exercise's own cell
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "vae_lab" and id(node) not in checks:
            return "vae_lab (an exercise has no use for the package)"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "vae_lab":
            return f"{node.module}.{node.names[0].name}"
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "vae_lab" for alias in node.names):
            return next(alias.name for alias in node.names if alias.name.split(".")[0] == "vae_lab")
        if isinstance(node, ast.Attribute) and node.attr in PACKAGE_FUNCTIONS and not _elsewhere(node):
            return f"{dotted(node.value) or 'an expression'}.{node.attr}"
        dynamic = _dynamic(node)
        if dynamic:
            return dynamic
    return None


def _origin(node):
    """The name an expression starts from, through attributes, items and calls (`vae_lab` of
    vae_lab.LossFunctions().kl_divergence), or ''."""
    for _ in range(MAX_DEPTH):
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return node.id if isinstance(node, ast.Name) else ""
    return ""


def _elsewhere(node):
    """Whether attribute NODE, named like a package function, is someone else's: the functions the notebook made
    (`functions.kl_divergence`, `model.functions.…`), or a KL method of Keras or TensorFlow Probability
    (`keras.losses.kl_divergence`, `q.kl_divergence(p)` on a distribution)."""
    base = dotted(node.value)
    if base in ("functions", "model.functions"):
        return True
    return node.attr == "kl_divergence" and (OTHER_KL.search(base) or
                                             _origin(node) not in ("vae_lab", "", "model", "exercises"))


def _dynamic(node):
    """What NODE uses to reach code it does not name: exec, getattr, get_ipython… named at all (called, aliased
    or passed), a reaching dunder, sys.modules (however imported), importlib and the like; else None."""
    if isinstance(node, ast.Name) and node.id in DYNAMIC_CALLS | {"__builtins__"}:
        return f"{node.id} (a lookup the grader can't follow)"
    if isinstance(node, ast.Attribute) and (node.attr in DYNAMIC_ATTRIBUTES | {"get_ipython", "modules"}
                                            or (node.attr.startswith("__") and node.attr.endswith("__")
                                                and node.attr not in DESCRIPTIVE_DUNDERS)):
        return f"{node.attr} (a lookup the grader can't follow)"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
        found = [module for module in modules if module.split(".")[0] in DYNAMIC_MODULES]
        if isinstance(node, ast.ImportFrom):
            found += [alias.name for alias in node.names if alias.name in DYNAMIC_CALLS | {"modules"}]
        if found:
            return f"{found[0]} (a lookup the grader can't follow)"
    return None


def _root(node):
    """The name at the bottom of an attribute or subscript chain (`functions` of functions.x[0].y), or ''."""
    for _ in range(MAX_DEPTH):
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else ""
    return ""


def _literal(node):
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _literal_config(line):
    """Whether a %config line sets one option to a plain value (`InlineBackend.figure_format = 'retina'`):
    IPython runs the line as Python, so anything else may run code."""
    target, equals, value = line.partition("=")
    if not equals or not re.fullmatch(r"\s*[A-Za-z_][\w.]*\s*", target):
        return not line.strip() or re.fullmatch(r"\s*[A-Za-z_][\w.]*\s*", line) is not None  # shows options
    try:
        ast.literal_eval(value.strip())
        return True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _passed_on(node, parents):
    """Whether the object NODE names is handed on: bound to another name, put in a container, returned, or given
    to a call (other than as train's functions=, or to look at it). Comparing it, asserting on it, showing it or
    calling its own functions hands nothing on."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.keyword):
        return parent.arg != "functions"
    if isinstance(parent, ast.Call):
        return node is not parent.func and dotted(parent.func) not in LOOKING | {"vae_lab.check_exercise"}
    if isinstance(parent, ast.Starred):
        return True
    return isinstance(parent, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.Return, ast.Yield,
                               ast.YieldFrom, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Lambda, ast.withitem,
                               ast.For, ast.comprehension, ast.IfExp, ast.BoolOp))


def _imports_library(statement):
    if isinstance(statement, ast.Import):
        return all(alias.name.split(".")[0] in LIBRARY_MODULES for alias in statement.names)
    return isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] in LIBRARY_MODULES


def makes_functions(statement):
    """Whether STATEMENT is `functions = ….LossFunctions(…)` with each of the three functions given by its name."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == "functions"
            and isinstance(statement.value, ast.Call) and dotted(statement.value.func).split(".")[-1] == "LossFunctions"):
        return False
    call = statement.value
    given = dict(zip(EXERCISE_NAMES, call.args))
    given.update({keyword.arg: keyword.value for keyword in call.keywords})
    return set(given) == set(EXERCISE_NAMES) and all(isinstance(value, ast.Name) and value.id == name
                                                     for name, value in given.items())


def bindings(tree):
    """(name, statement) for every name TREE binds in the notebook's namespace: in every binding form (=,
    augmented and annotated =, for and with targets, :=, except … as, match captures, imports, def, class, del),
    inside if/for/while/with/try/match too, and `global` inside a function; never a function's or a class's own
    locals, nor a comprehension's variables."""
    found, stack = [], [(tree, None)]
    while stack:
        node, owner = stack.pop()
        for child in ast.iter_child_nodes(node):
            statement = child if isinstance(child, ast.stmt) else owner
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append((child.name, child))
                found += [(name, child) for inner in ast.walk(child) if isinstance(inner, ast.Global)
                          for name in inner.names]
                continue
            if isinstance(child, ast.Lambda):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found += [(alias.asname or alias.name.split(".")[0], child) for alias in child.names]
                continue
            if isinstance(child, ast.comprehension):  # its target is the comprehension's own
                stack += [(part, statement) for part in (child.iter, *child.ifs)]
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                found.append((child.id, statement))
            elif isinstance(child, ast.ExceptHandler) and child.name:
                found.append((child.name, statement))
            elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
                found.append((child.name, statement))
            elif isinstance(child, ast.MatchMapping) and child.rest:
                found.append((child.rest, statement))
            stack.append((child, statement))
    return found


def exercise_source(source):
    """An exercise cell's Python: without a leading `%%time`-like line (the rest of the cell is the code it times)
    and without `name?` lines (they only show help)."""
    lines = source.split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is not None and re.fullmatch(r"\s*%%(\w+)\b.*", lines[first]) and \
            re.fullmatch(r"\s*%%(\w+)\b.*", lines[first]).group(1) in CODE_MAGICS:
        lines = lines[first + 1:]
    return "\n".join(line for line in lines if not re.fullmatch(r"\s*[\w.]+\?\??\s*", line))


def python_of(source):
    """SOURCE with IPython's syntax (magics, !commands, `name?`) turned into the calls IPython makes of it, as
    text; None where even that is not Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - a hostile cell must not stop the check; plain Python is tried as it is
        pass
    try:
        return quiet_parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def _magic(call):
    """(kind, name, code, line) of a `get_ipython().run_line_magic/run_cell_magic/system/getoutput(...)` call, else
    None."""
    if not (isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call)
            and dotted(call.func.value.func) == "get_ipython"):
        return None
    texts = [argument.value for argument in call.args if isinstance(argument, ast.Constant)
             and isinstance(argument.value, str)]
    if call.func.attr in ("system", "getoutput") and texts:
        return "shell", (texts[0].split() or [""])[0], "", texts[0]
    if call.func.attr == "run_line_magic" and len(texts) == 2:
        return "magic", texts[0], re.sub(r"^(?:\s*-\w+(?:\s+\d+)?)*", "", texts[1]), texts[1]
    if call.func.attr == "run_cell_magic" and len(texts) == 3:
        return "magic", texts[0], texts[2], texts[1]
    return "magic", call.func.attr, "", ""


class Reader:
    """The findings about one record's code cells: `read(number, source, is_exercise)` each, then `verdicts()`."""

    def __init__(self, exercise_globals=frozenset(), package_names=frozenset(), plain_names=frozenset(),
                 rebound=frozenset()):
        self.findings, self.made, self.trained = [], False, False
        self.exercise_globals = exercise_globals  # names an exercise may take from outside itself
        self.package_names = package_names | {"vae_lab"}  # names any cell binds to the package or a part of it
        self.plain_names = plain_names  # names some cell binds to a value it builds (a list, a library's object)
        self.rebound = rebound  # builtins a cell binds to something else

    def read(self, number, source, is_exercise, depth=0, tree=None):
        tree = tree if tree is not None else python_of(source)
        if tree is None:  # it ran (the executed check passed), so IPython read it some way this reading doesn't
            self.findings.append(review(f"code cell {number} is not Python the grader can read (a magic typed "
                                        "without %?): check by hand that it changed nothing training uses"))
            return
        try:
            self._bindings(number, tree, is_exercise)
            self._uses(number, tree, is_exercise, depth)
            if is_exercise:
                self._exercise_functions(number, tree)
        except RecursionError:
            self.findings.append(review(f"code cell {number} is nested too deeply to read: check it by hand"))

    def _bindings(self, number, tree, is_exercise):
        for name, statement in bindings(tree):
            if name == "vae_lab" and isinstance(statement, ast.Import) and any(
                    alias.name.split(".")[0] == "vae_lab" and not alias.asname for alias in statement.names):
                continue  # `import vae_lab` (or vae_lab.data) binds the package to its own name
            if name == "functions" and not is_exercise and makes_functions(statement):
                self.made = True
                continue
            if name in EXERCISE_NAMES and is_exercise and isinstance(statement, ast.FunctionDef):
                continue  # the exercise itself (check_exercises reads it)
            if name in PROTECTED or name == "vae_lab":
                self.findings.append(failed(f"code cell {number} binds {name} outside its exercise cell's def: "
                                            "train with your three functions as the notebook makes them"))
            elif name in LIBRARIES and not _imports_library(statement):
                self.findings.append(review(f"code cell {number} binds {name} to something other than the library "
                                            "(an exercise's tf.function or ops may then be anything): check it by hand"))
            if isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] == "vae_lab" and any(
                    alias.name == "*" or alias.name in PACKAGE_FUNCTIONS for alias in statement.names):
                self.findings.append(failed(f"code cell {number} imports the package's own functions "
                                            f"(from {statement.module} import …)"))
            elif isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] == "vae_lab" and any(
                    alias.name in PACKAGE_MODULES for alias in statement.names):
                self.findings.append(review(f"code cell {number} imports a module of the package "
                                            f"({statement.module}.{statement.names[0].name}): check it by hand"))
            elif isinstance(statement, (ast.Import, ast.ImportFrom)) and not _importable(statement):
                module = statement.module if isinstance(statement, ast.ImportFrom) else statement.names[0].name
                self.findings.append(review(f"code cell {number} imports {module}, which can reach the notebook "
                                            "itself: check by hand that it changed nothing training uses"))
            elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and statement.value is not None \
                    and not isinstance(statement.value, ast.Call) and _origin(statement.value) in self.package_names:
                self.findings.append(review(f"code cell {number} binds {name} to part of the package "
                                            f"({dotted(statement.value) or 'an expression'}): check it by hand"))

    def _uses(self, number, tree, is_exercise, depth):
        where = f"code cell {number}"
        handled = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                magic = _magic(node)
                if magic is not None:
                    handled |= {id(node.func.value.func), id(node.func)}  # get_ipython().system: IPython's own
                    self._magic(number, is_exercise, depth, *magic)
                elif dotted(node.func).split(".")[-1] == "train":
                    self.trained = True
                    given = {keyword.arg: keyword.value for keyword in node.keywords}
                    if not (isinstance(given.get("functions"), ast.Name) and given["functions"].id == "functions"):
                        self.findings.append(failed(f"{where} trains without functions=functions: the model trained "
                                                    "with the package's functions, not yours"))
        making = {id(statement.value.func) for statement in ast.walk(tree) if makes_functions(statement)}
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        shown = {id(argument) for node in ast.walk(tree) if isinstance(node, ast.Call) and dotted(node.func) in LOOKING
                 for argument in node.args}  # help(vae_lab.train) only shows it
        for node in ast.walk(tree):
            if isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root(node)
                if root in PROTECTED or root in self.package_names:
                    self.findings.append(failed(f"{where} changes {root}'s insides ({dotted(node) or 'an item'}), "
                                                "part of what training uses"))
                elif root not in STORE_ROOTS | self.plain_names:
                    self.findings.append(review(f"{where} changes the insides of {root or 'an expression'}, which "
                                                "no cell built: check by hand what it is"))
            if isinstance(node, ast.Attribute) and node.attr == "train" and dotted(node.value) == "vae_lab" \
                    and id(node) not in called | shown:
                self._finding(is_exercise, f"{where} passes vae_lab.train around (to call it elsewhere?)")
            if id(node) in handled:
                continue
            dynamic = _dynamic(node)
            if dynamic and not (isinstance(node, ast.Call) and id(node.func) in handled):
                self._finding(is_exercise, f"{where} uses {dynamic}")
            elif isinstance(node, ast.Attribute) and node.attr in PACKAGE_FUNCTIONS and not _elsewhere(node) and (
                    is_exercise or id(node) not in shown | making
                    and not (id(node) in called and node.attr in EXERCISE_NAMES)):  # calling one only compares
                self._finding(is_exercise, f"{where} uses the package's own {dotted(node.value) or 'an expression'}."
                                           f"{node.attr}")
            elif isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "vae_lab" and alias.asname
                                                      for alias in node.names):
                self._finding(is_exercise, f"{where} imports the package under another name")
        parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "functions" and isinstance(node.ctx, ast.Load) \
                    and _passed_on(node, parents):
                self._finding(is_exercise, f"{where} passes functions on otherwise than giving it to train")
            if isinstance(node, ast.Name) and node.id == "vae_lab" and isinstance(node.ctx, ast.Load):
                parent = parents.get(id(node))
                looked_at = isinstance(parent, ast.Call) and dotted(parent.func) in LOOKING
                if not (isinstance(parent, ast.Attribute) and parent.value is node) and not looked_at:
                    self._finding(is_exercise, f"{where} passes the package itself around (an alias of vae_lab?)")

    def _finding(self, is_exercise, sentence):
        # in an exercise cell the function is the student's to write, so reaching the package is a FAIL; in
        # another cell, exploring is allowed and an instructor decides
        self.findings.append(failed(sentence) if is_exercise else
                             review(f"{sentence}: check by hand that training used the exercise cells' functions"))

    def _magic(self, number, is_exercise, depth, kind, name, code, line=""):
        if "{" in line and kind == "shell" or "{" in line and name not in CODE_MAGICS:
            self.findings.append(review(f"code cell {number} runs Python inside {{…}} of a "
                                        f"{'shell command' if kind == 'shell' else f'%{name} line'}: check it by hand"))
            return
        if name == "config" and _literal_config(code):
            return
        if name in ("load_ext", "reload_ext") and code.split() and set(code.split()) <= QUIET_EXTENSIONS:
            return
        if name == "pip" and code.split()[:1] in (["list"], ["show"], ["freeze"]):
            return
        if kind == "shell":
            words = line.split()
            if name == "pip" and words[1:2] in (["list"], ["show"], ["freeze"]):
                return
            if name not in QUIET_COMMANDS:
                self.findings.append(review(f"code cell {number} runs the shell command {name!r}: check by hand "
                                            "that it changed nothing training uses"))
        elif name in CODE_MAGICS and code.strip() and depth < 3:
            self.read(number, code, is_exercise, depth + 1)
        elif name not in QUIET_MAGICS and name not in CODE_MAGICS:
            self.findings.append(review(f"code cell {number} runs the IPython magic %{name}: check by hand that "
                                        "training used the exercise cells' functions"))

    def _exercise_functions(self, number, tree):
        """An exercise function's decorators, defaults and the names it takes from outside the exercise cells."""
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in EXERCISE_NAMES):
            decorators = [dotted(decorator) or "an expression" for decorator in function.decorator_list
                          if _root(decorator.func if isinstance(decorator, ast.Call) else decorator) not in LIBRARIES]
            if decorators:
                self.findings.append(review(f"{function.name} is decorated with {decorators[0]}, which decides what "
                                            "runs in its place: check it by hand"))
            defaults = [value for value in function.args.defaults + function.args.kw_defaults
                        if value is not None and not _literal(value)]
            if defaults:
                self.findings.append(review(f"{function.name} has a default argument that is not a plain value: "
                                            "check by hand what it holds"))
            local = {argument.arg for argument in ast.walk(function.args) if isinstance(argument, ast.arg)}
            local |= {node.id for node in ast.walk(function) if isinstance(node, ast.Name)
                      and isinstance(node.ctx, (ast.Store, ast.Del))}
            local |= {alias.asname or alias.name.split(".")[0] for node in ast.walk(function)
                      if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
            local |= {node.name for node in ast.walk(function) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
            outside = sorted({node.id for node in ast.walk(function) if isinstance(node, ast.Name)
                              and isinstance(node.ctx, ast.Load)} - local - (KNOWN_GLOBALS - self.rebound)
                             - (self.exercise_globals - self.rebound))
            if outside:
                self.findings.append(review(f"{function.name} uses {', '.join(outside[:3])}, made outside the exercise "
                                            "cells: check by hand what it holds"))

    def verdicts(self):
        findings = list(self.findings)
        if not self.made:
            findings.append(failed("no cell makes functions = vae_lab.LossFunctions(reparameterize=reparameterize, "
                                   "kl_divergence=kl_divergence, reconstruction_loss=reconstruction_loss)"))
        if not self.trained:
            findings.append(failed("no cell calls vae_lab.train"))
        return list({finding.reason: finding for finding in findings}.values())


def namespace_facts(parsed):
    """What the cells [(is_exercise, tree)] bind, read once for the Reader: (names an exercise may take from
    outside itself, names bound to the package or a part of it, names bound to a value a cell builds, builtins
    rebound). An exercise may take what the exercise cells make at their top level, the libraries any cell
    imports (`from keras import backend as K`) and the plain values any cell sets (`EPS = 1e-7`); a value is
    built from a literal, a display, a comprehension, or what a library or a builtin makes."""
    exercise, package, plain, rebound = set(), set(), set(), set()
    for is_exercise, tree in parsed:
        if tree is None:
            continue
        for name, statement in bindings(tree):
            assigned = isinstance(statement, ast.Assign)
            if is_exercise or _imports_library(statement) or assigned and _literal(statement.value):
                exercise.add(name)
            if isinstance(statement, (ast.Import, ast.ImportFrom)) and (
                    (statement.module or "") if isinstance(statement, ast.ImportFrom)
                    else statement.names[0].name).split(".")[0] == "vae_lab":
                package.add(name)
            if assigned and _built(statement.value):
                plain.add(name)
            if name in BUILTIN_NAMES:
                rebound.add(name)
    return frozenset(exercise), frozenset(package), frozenset(plain), frozenset(rebound)


def _built(value):
    if _literal(value) or isinstance(value, (ast.List, ast.Dict, ast.Set, ast.Tuple, ast.ListComp, ast.DictComp,
                                             ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and _origin(value) in LIBRARIES | STORE_ROOTS | BUILTIN_NAMES


def _importable(statement):
    modules = ([statement.module or ""] if isinstance(statement, ast.ImportFrom)
               else [alias.name for alias in statement.names])
    return all(module.split(".")[0] in IMPORTABLE | {"vae_lab"} or module in IMPORTABLE_DOTTED
               or any(module.startswith(dotted_name + ".") for dotted_name in IMPORTABLE_DOTTED) for module in modules)


def read_training(code_cells, handout=frozenset()):
    """The Verdicts about how a record's functions reached training, from its code cells [(number, source,
    is_exercise)]; cells identical to the handout's (HANDOUT) are the package's and are not read."""
    if code_cells is None:
        return [review("the record holds more code than the grader reads: check by hand that training used "
                       "the exercise cells' functions")]
    trees = [python_of(source) for _, source, _ in code_cells]  # each cell parsed once
    reader = Reader(*namespace_facts([(is_exercise, tree) for (_, _, is_exercise), tree in zip(code_cells, trees)]))
    for (number, source, is_exercise), tree in zip(code_cells, trees):
        if is_exercise or normalized(source) not in handout:
            reader.read(number, source, is_exercise, tree=tree)
        elif "vae_lab.train(" in source:
            reader.trained = True  # the handout's training cell: functions=functions
        elif "vae_lab.LossFunctions(" in source:
            reader.made = True  # the handout's cell that makes functions
    return reader.verdicts()


def pasted_line(source, solution):
    """A distinctive line of the package's solution's docstring or comments found in SOURCE, or None (its code
    lines are what any correct answer may write)."""
    try:
        tree = quiet_parse(solution)
    except (SyntaxError, ValueError):
        return None
    prose_lines = [line for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   for line in node.value.splitlines()]
    prose_lines += [line.split("#", 1)[1] for line in solution.splitlines() if "#" in line]
    for line in prose_lines:
        line = line.strip()
        if len(line) >= 30 and line in source:
            return line[:60]
    return None
