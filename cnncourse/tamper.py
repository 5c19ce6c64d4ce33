"""A static scan of student code for attempts to fool the grader, for the instructor to review.

nbgrader runs a submission's cells in one kernel: the student's cells, then the instructor's
locked test cells, all in the same global namespace. Code in a student cell can therefore
change what a test cell sees: rebind a builtin or a torch function the test calls, hide
errors (an IPython input transformer, a custom exception handler, a swapped ``sys.stderr``),
switch off the ``TorchFunctionMode`` that catches forbidden calls, exit the kernel, read the
instructor's files or unset ``NBGRADER_EXECUTION``. No exercise needs any of that, so this
module flags it and the grading command sends the submission to manual review. A finding
never changes a score by itself.

What is flagged, by rule (``RULES`` has the short form for reports):

- ``magic``: IPython magics and shell escapes other than ``%matplotlib``, ``%time``,
  ``%timeit``, ``%%time``, ``%%timeit`` (the code they time is scanned) and ``?`` help.
- ``ipython``: ``get_ipython``, ``IPython`` (``IPython.display`` is fine), the shell's
  transformers, exception and display hooks, ``run_cell``, ``events.register``.
- ``hooks``: interpreter hooks (``sys.excepthook``, ``settrace``, audit hooks), replacing
  ``sys.stdout``/``sys.stderr``, stack frames (``sys._getframe``, ``f_back``...), the heap
  (``gc.get_objects``), threads, ``asyncio`` and ``atexit``: code that runs during the tests.
- ``imports``: ``sys.modules``, ``sys.meta_path``, changes to ``sys.path``, ``importlib``
  (``importlib.import_module`` of a string literal is fine), ``__import__``, ``runpy``.
- ``builtins``: the ``builtins`` module, ``__builtins__``, and rebinding a builtin name
  (``isinstance = ...``, ``def print``) at module level, where the test cells would use it.
- ``patch``: assigning, deleting or ``setattr`` on attributes of torch, numpy, cnncourse or
  another module the tests use (``F.softmax = f``), rebinding ``torch``, ``np``, ``F``,
  ``nn``, ``grading`` themselves, writing through ``globals()``, and dunder plumbing
  (``__dict__``, ``__code__``, ``__globals__``, ``__class__ =``, ``__subclasses__``...).
- ``torch``: defining ``__torch_function__``/``__torch_dispatch__``, subclassing
  ``torch.Tensor``, torch's function and dispatch modes, ``torch.overrides``, ``torch.ops``,
  ``torch.library`` and any private name reached from the torch module (``torch._C``).
- ``dynamic``: ``exec``/``eval``/``compile``/``importlib.import_module`` of a computed
  string, ``getattr`` on a module with a computed name, ``types.FunctionType``/``CodeType``,
  ``pickle``/``marshal`` loads. A string literal given to ``exec``, ``eval`` or ``compile``
  is not flagged as such: it is scanned as code, with every rule.
- ``files``: ``open``, ``os``/``shutil``/``glob``/``pathlib`` file calls, ``np.load``,
  ``torch.save``... with a path that is absolute, has a ``..`` part, starts with ``~`` or
  is not a string literal (``open("notes.txt", "w")`` is fine).
- ``process``: ``sys.exit``, ``exit()``, ``raise SystemExit``, ``os._exit``, ``os.kill``,
  ``signal``, ``os.system``, ``os.exec*``, ``subprocess``, ``multiprocessing``, ``pty``...
- ``outside``: the network (``socket``, ``urllib``, ``requests``...), ``ctypes``, ``cffi``,
  ``mmap``, and writes to ``os.environ`` (``os.environ.pop("NBGRADER_EXECUTION")``).

Names are resolved through imports and simple aliases (``import torch as t``,
``from cnncourse import grading as g``, ``ip = get_ipython()``, ``getattr(torch, "_C")``)
over the names a setup cell binds (``torch``, ``np``, ``F``, ``nn``, ``cnncourse`` and its
modules), scope by scope, so ``self.weight = ...`` or a parameter named ``data`` is local.
:func:`scan_notebook` carries each cell's top-level names to the next, so a name a student
rebinds (``signal = torch.sin(t)``) stops counting as the module. A cell that does not
parse is not flagged: it fails when graded anyway.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

__all__ = ["RULES", "Finding", "scan_notebook", "scan_source"]


@dataclass(frozen=True)
class Finding:
    """One line of student code that looks like an attempt to fool the grader."""

    rule: str  # a key of RULES
    cell: str  # the cell's nbgrader grade_id, else "cell <index>"
    line: int  # 1-based line in the cell's source
    code: str  # that line, stripped
    why: str  # one sentence for the instructor


RULES: dict[str, str] = {
    "magic": "IPython magic or shell escape other than %matplotlib, %time, %timeit",
    "ipython": "reaches into the IPython shell (get_ipython, its transformers and hooks)",
    "hooks": "interpreter hooks, stdout/stderr swaps, stack frames, the heap, threads, atexit",
    "imports": "the module table or the import machinery (sys.modules, sys.path, importlib)",
    "builtins": "the builtins module, or a builtin name rebound for the whole notebook",
    "patch": "changes torch, numpy or cnncourse in place, or uses dunder plumbing",
    "torch": "torch internals: __torch_function__, Tensor subclasses, modes, private names",
    "dynamic": "code or names computed at run time (exec, eval, computed getattr, pickle)",
    "files": "files outside the assignment folder (absolute, .., ~ or computed paths)",
    "process": "exits the kernel, handles signals or starts processes",
    "outside": "the network, C-level access, or writes to environment variables",
}


def _table(text: str) -> dict[str, tuple[str, str]]:
    """Parse "rule: why" lines, each followed by indented lines of names, into
    {name: (rule, why)}."""
    table: dict[str, tuple[str, str]] = {}
    entry = ("", "")
    for line in text.strip().splitlines():
        if line[:1].isspace():
            table.update(dict.fromkeys(line.split(), entry))
        else:
            rule, why = line.split(": ", 1)
            entry = (rule, why)
    return table


# Dotted names, after aliases are resolved, flagged wherever they are used; a name covers
# everything under it (signal covers signal.signal and signal.SIGINT).
NAMES = _table("""
ipython: reaches into the IPython shell, which can hide errors from the test cells
    get_ipython __IPYTHON__ IPython ipykernel InteractiveShell
hooks: replaces an interpreter hook, which then runs on every error, output or line of the tests
    sys.excepthook sys.displayhook sys.settrace sys.setprofile sys.addaudithook sys.monitoring
    sys.breakpointhook sys.unraisablehook threading.settrace threading.setprofile os.dup2
    threading.excepthook
hooks: reads stack frames or the heap, which reach the test cells' own variables
    sys._getframe inspect.currentframe inspect.stack inspect.getouterframes inspect.trace
    inspect.getinnerframes gc.get_objects gc.get_referrers gc.get_referents
hooks: starts code that can keep running while the test cells run
    threading _thread concurrent asyncio sched atexit
imports: changes the module table or the import machinery, which decide what the tests import
    sys.modules sys.meta_path sys.path_hooks sys.path_importer_cache importlib __import__
    runpy imp zipimport pkgutil
builtins: reaches into the builtins that every cell, the test cells too, shares
    builtins __builtins__ __builtin__
torch: uses torch's override machinery, which can switch off the checks for forbidden calls
    torch.overrides torch.ops torch.library torch.utils._python_dispatch TorchFunctionMode
    TorchDispatchMode DisableTorchFunction DisableTorchFunctionSubclass _DisableTorchDispatch
dynamic: builds code or objects at run time, which neither a reader nor this scan can see
    types.FunctionType types.CodeType types.LambdaType marshal pickle.load pickle.loads
    pickle.Unpickler dill cloudpickle shelve
process: exits the kernel or the process, so the test cells may never run
    sys.exit exit quit os._exit os.abort os.kill os.killpg os.fork os.forkpty signal
    faulthandler
process: starts another program, which can read or change anything the kernel can
    os.system os.popen subprocess multiprocessing torch.multiprocessing pty resource
    os.execl os.execle os.execlp os.execlpe os.execv os.execve os.execvp os.execvpe
    os.spawnl os.spawnle os.spawnlp os.spawnlpe os.spawnv os.spawnve os.spawnvp os.spawnvpe
    os.posix_spawn os.posix_spawnp
outside: talks to the network, which no exercise needs
    socket ssl urllib http requests httpx aiohttp ftplib smtplib telnetlib xmlrpc webbrowser
    torch.hub
outside: reaches below Python (C calls, raw memory), where nothing checks it
    ctypes cffi mmap
outside: changes environment variables, such as NBGRADER_EXECUTION that the grading code reads
    os.putenv os.unsetenv
files: reaches the home folder, outside the assignment
    pathlib.Path.home os.path.expanduser
""")
# Under a flagged name but fine: importing importlib to call import_module("...") (the call
# is checked), and IPython's display helpers.
_ALLOWED = {"importlib", "importlib.import_module", "IPython.display"}

# Attribute names flagged whatever they are read from (frame.f_back, shell.run_cell).
ATTRS = _table("""
ipython: reaches into the IPython shell, which can hide errors from the test cells
    ast_transformers input_transformers_cleanup input_transformers_post showtraceback
    input_transformer_manager showsyntaxerror set_custom_exc run_cell run_cell_async
    display_pub displayhook user_ns user_global_ns InteractiveShell
hooks: reads stack frames, which reach the test cells' own variables
    f_back f_globals f_locals f_builtins tb_frame gi_frame cr_frame ag_frame _getframe
    currentframe getouterframes get_referrers get_referents
hooks: replaces an interpreter hook, which then runs on every error or line of the tests
    excepthook settrace setprofile addaudithook
patch: uses dunder plumbing, which can rewrite functions, classes or modules in place
    __dict__ __code__ __globals__ __closure__ __defaults__ __kwdefaults__ __subclasses__
    __bases__ __mro__
builtins: reaches into the builtins that every cell, the test cells too, shares
    __builtins__
torch: uses torch's override machinery, which can switch off the checks for forbidden calls
    __torch_function__ __torch_dispatch__ TorchFunctionMode TorchDispatchMode _python_dispatch
    DisableTorchFunction DisableTorchFunctionSubclass _DisableTorchDispatch
    _disabled_torch_function_impl
""")

# Modules the test cells use: changing them in place changes what the tests compute.
PATCH_ROOTS = frozenset(
    "torch torchvision numpy cnncourse math random time sys os io warnings inspect functools "
    "contextlib traceback unittest pytest nbgrader".split()
)
# What the setup cell's usual names mean in a cell that does not bind them. (Any other name
# a rule looks at, such as sys or signal, then means its module.)
DEFAULT_NAMES: dict[str, str] = {
    "np": "numpy",
    "F": "torch.nn.functional",
    "nn": "torch.nn",
    **{m: f"cnncourse.{m}" for m in "data grading layers models plot shapes train utils".split()},
}
_MODULES = frozenset(DEFAULT_NAMES.values())  # modules themselves, not things in them
# Names the test cells take from the notebook: rebinding one at module level to anything but
# its module changes what every later test computes.
PROTECTED = {
    "torch": "torch",
    "np": "numpy",
    "numpy": "numpy",
    "F": "torch.nn.functional",
    "nn": "torch.nn",
    "cnncourse": "cnncourse",
    "grading": "cnncourse.grading",
}

# Builtins IPython adds; they resolve to themselves like the real ones.
_INJECTED = {"get_ipython", "__IPYTHON__", "display", "exit", "quit", "__builtins__"}
_BUILTINS = frozenset(dir(builtins)) | _INJECTED
# Builtins honest code shadows at module level (`for input, target in loader`) that test
# cells have no use for (tests/test_tamper.py checks that the course's do not use them).
HONEST_SHADOWS = frozenset(
    "input id filter format hash help dir bin oct hex license copyright credits".split()
)
REBIND_BUILTINS = frozenset(
    {n for n in _BUILTINS if not n.startswith("_")} - HONEST_SHADOWS - _INJECTED
    | {"__import__", "__build_class__", "get_ipython"}
)

# File calls and the positions of their path arguments (None: every positional argument);
# anything under shutil checks its first two.
FILE_CALLS: dict[str, tuple[int, ...] | None] = {
    **dict.fromkeys(
        "open io.open os.open codecs.open gzip.open bz2.open lzma.open tarfile.open "
        "zipfile.ZipFile sqlite3.connect PIL.Image.open os.listdir os.scandir os.walk "
        "os.chdir os.remove os.unlink os.rmdir os.removedirs os.mkdir os.makedirs os.truncate "
        "os.chmod glob.glob glob.iglob numpy.load numpy.save numpy.savez numpy.fromfile "
        "numpy.savez_compressed numpy.loadtxt numpy.savetxt numpy.genfromtxt numpy.memmap "
        "torch.load torch.from_file matplotlib.pyplot.savefig".split(),
        (0,),
    ),
    **dict.fromkeys("os.rename os.replace os.symlink os.link".split(), (0, 1)),
    "torch.save": (1,),
    **dict.fromkeys("pathlib.Path pathlib.PurePath pathlib.PosixPath".split(), None),
}
_PATH_KEYWORDS = {"file", "f", "fname", "filename", "path", "name", "src", "dst", "top", "fp"}

# Magics a student cell may use (`?` help runs as %pinfo); the rest are flagged.
ALLOWED_MAGICS = {"matplotlib", "time", "timeit", "pinfo", "pinfo2", "psearch"}
_TIMED = {"time", "timeit"}
_TIMEIT_OPTIONS = re.compile(r"^\s*(?:-[nrp]\s*\d+\s+|-[tcqo]\s+)*")
_MAGIC_WHY = {
    "capture": "captures the cell's output, which can hide errors and warnings",
    "run": "runs code from another file, which this scan cannot see",
    "load": "loads code from another file, which this scan cannot see",
    "env": "changes environment variables, such as NBGRADER_EXECUTION",
    "cd": "changes the working folder, so relative paths reach outside the assignment",
    "shell": "runs a shell command, which can read or change files outside the assignment",
}
_SHELL = {"system", "getoutput"}  # what IPython writes for `!cmd` and `x = !cmd`

# Methods that change a container in place (sys.path.append, os.environ.pop); not add or
# remove, which torch and numpy also have as functions.
_MUTATORS = frozenset(
    "append extend insert pop popitem clear update setdefault __setitem__ __delitem__".split()
)
_STREAMS = {"sys.stdout", "sys.stderr", "sys.stdin", "sys.__stdout__", "sys.__stderr__"}
_NAMESPACES = {"globals.()", "locals.()", "vars.()"}
_EXITS = {"SystemExit", "KeyboardInterrupt"}
# Documented settings, not patches: torch.backends.cudnn.deterministic = True.
_SETTINGS = ("torch.backends.",)
_ROOTS = (
    PATCH_ROOTS | {n.split(".")[0] for n in NAMES} | {p.split(".")[0] for p in _MODULES}
)  # the first parts of every dotted name a rule looks at
_MAX_DEPTH = 4  # how deep code in string literals (exec("..."), %time ...) is scanned


# --------------------------------------------------------------------------- names and scopes


def _literal(node: ast.AST | None) -> str | None:
    """The value of a string literal, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Scope:
    """The names one scope binds: a dotted path for an alias of a module (or of something in
    one), None for any other value."""

    def __init__(
        self, names: dict[str, str | None], parent: _Scope | None = None, kind: str = "module"
    ) -> None:
        self.names = names
        self.parent = parent
        self.kind = kind  # module, function, class or comprehension

    def resolve(self, name: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        if name in _BUILTINS or name in _ROOTS:
            return name
        return DEFAULT_NAMES.get(name)


def _qualify(node: ast.AST, scope: _Scope) -> str | None:
    """The dotted path an expression names (``t.Tensor.any`` -> ``torch.Tensor.any``), with a
    ``()`` part for a call's result (``get_ipython.().run_cell``); None for local values."""
    if isinstance(node, ast.Name):
        return scope.resolve(node.id)
    if isinstance(node, ast.Attribute):
        base = _qualify(node.value, scope)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):  # sys.modules["torch"] is the torch module
        key = _literal(node.slice)
        return key if key and _qualify(node.value, scope) == "sys.modules" else None
    if isinstance(node, ast.Call):
        func = _qualify(node.func, scope)
        args = node.args
        if func == "getattr" and len(args) > 1 and _literal(args[1]):
            base = _qualify(args[0], scope)
            return f"{base}.{_literal(args[1])}" if base else None
        if func in ("importlib.import_module", "__import__") and args and _literal(args[0]):
            return _literal(args[0])
        return f"{func}.()" if func else None
    return None


def _is_alias(path: str | None) -> bool:
    """Whether binding a name to ``path`` makes it an alias (of a module, of something in
    one, or of the IPython shell) rather than a value computed from one."""
    return path is not None and ("()" not in path.split(".") or path.startswith("get_ipython."))


def _statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The statements of one scope, in compound statements too, not in nested functions or
    classes (except handlers and match cases come along)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field in ("cases", "handlers", "finalbody", "orelse", "body"):
                stack.extend(reversed(getattr(node, field, ())))


def _imported(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    """(name, path) for each name an import binds; path None for a relative import."""
    for alias in node.names:
        if isinstance(node, ast.Import):
            top = alias.name.split(".")[0]
            yield alias.asname or top, alias.name if alias.asname else top
        elif alias.name != "*":
            module = node.module if node.level == 0 else None
            yield alias.asname or alias.name, f"{module}.{alias.name}" if module else None


def _sites(body: list[ast.stmt]) -> Iterator[tuple[str, ast.AST, ast.AST | None]]:
    """(name, statement, value) for each name a scope binds by a statement; value is the
    expression of ``name = value``, else None. (The visitor handles ``:=``.)"""
    for node in _statements(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, node, None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name, _ in _imported(node):
                yield name, node, None
        elif isinstance(node, (ast.ExceptHandler, ast.match_case)):
            parts = ast.walk(node.pattern) if isinstance(node, ast.match_case) else [node]
            yield from ((p.name, node, None) for p in parts if getattr(p, "name", None))
        else:
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
                targets = [node.target]
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                targets = [i.optional_vars for i in node.items if i.optional_vars]
            else:
                continue
            value = getattr(node, "value", None) if len(targets) == 1 else None
            for target in targets:
                if isinstance(target, ast.Name) and not isinstance(node, ast.AugAssign):
                    yield target.id, node, value
                elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                    for t, v in zip(target.elts, value.elts, strict=False):  # a, b = x, y
                        if isinstance(t, ast.Name):
                            yield t.id, node, v
                else:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                            yield n.id, node, None


def _bindings(
    body: list[ast.stmt], parent: _Scope, local: Collection[str] = (), kind: str = "module"
) -> _Scope:
    """The scope of ``body`` (``local``: parameters): aliases win over other bindings."""
    names: dict[str, str | None] = dict.fromkeys(local)
    aliases: list[tuple[str, str | ast.AST | None]] = []
    for name, node, value in _sites(body):
        names.setdefault(name, None)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            aliases.append((name, dict(_imported(node))[name]))
        elif value is not None:
            aliases.append((name, value))
    scope = _Scope(names, parent, kind)
    for _ in range(2):  # the second pass resolves aliases of aliases bound further down
        for name, value in aliases:
            path = value if not isinstance(value, ast.AST) else _qualify(value, scope)
            if _is_alias(path):
                names[name] = path
    for node in _statements(body):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                names.pop(name, None)
    return scope


def _module_sites(tree: ast.Module, source: str) -> Iterator[tuple[str, ast.AST, ast.AST | None]]:
    """Bindings of module-level names, also in functions that declare them ``global``."""
    yield from _sites(tree.body)
    if "global" not in source:
        return
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            declared = {
                n for s in _statements(func.body) if isinstance(s, ast.Global) for n in s.names
            }
            yield from (site for site in _sites(func.body) if site[0] in declared)


def _bad_path(node: ast.AST) -> bool:
    """Whether a path argument may leave the assignment folder: not a string literal, or
    absolute, starting with ``~``, or with a ``..`` part."""
    path = _literal(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        path = node.value.decode(errors="replace")
    if path is None:
        return True
    absolute = path.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", path)
    return bool(absolute) or ".." in re.split(r"[\\/]", path)


# --------------------------------------------------------------------------- the visitor


class _Visitor(ast.NodeVisitor):
    """Walks one cell's tree and records (rule, line, why) hits."""

    def __init__(self, scope: _Scope, generated: set[int], depth: int) -> None:
        self.scope = self.module = scope
        self.generated = generated  # ids of the get_ipython() calls IPython wrote for magics
        self.depth = depth
        self.hits: list[tuple[str, int, str]] = []

    def visit(self, node: ast.AST) -> None:
        method = _DISPATCH.get(type(node))
        if method is None:
            method = _DISPATCH[type(node)] = getattr(
                _Visitor, "visit_" + type(node).__name__, _Visitor.generic_visit
            )
        method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def hit(self, rule: str, why: str, node: ast.AST) -> None:
        self.hits.append((rule, node.lineno, why))

    def qualify(self, node: ast.AST) -> str | None:
        return _qualify(node, self.scope)

    def nested(self, code: str, node: ast.AST) -> None:
        """Scan code in a string literal (exec("..."), %time ...) as if it stood here."""
        for f in _scan(code, "", self.scope, self.depth + 1)[0]:
            self.hit(f.rule, f.why, node)

    # ---- dotted names

    def check_path(self, path: str, node: ast.AST) -> bool:
        """Flag a use of ``path``; True if it was flagged."""
        found = _rule_for(path)
        if found:
            self.hit(*found, node)
        return found is not None

    def check_write(self, path: str | None, node: ast.AST, item: bool = False) -> None:
        """Flag a write to ``path``: an attribute assignment or deletion, or (``item``) an
        item assignment or a mutating method call on what ``path`` names."""
        parts = (path or "").split(".")
        if path is None or (item and ("." not in path or path in _MODULES)):  # a list named data
            return
        if _rule_for(path) or path.startswith(_SETTINGS):  # flagged as a use already
            return
        if path in _STREAMS:
            why = "replaces a standard stream, which hides the errors the test cells print"
            self.hit("hooks", why, node)
        elif path == "sys.path":
            self.hit("imports", "changes sys.path, which decides what the tests import", node)
        elif parts[:2] == ["os", "environ"]:
            why = "changes environment variables, such as NBGRADER_EXECUTION that grading reads"
            self.hit("outside", why, node)
        elif path in _NAMESPACES:
            why = "writes the notebook's namespace directly, which can rebind what the tests use"
            self.hit("patch", why, node)
        elif parts[0] in PATCH_ROOTS and "()" not in parts:
            why = f"changes {path} in place, and the test cells use {parts[0]}"
            self.hit("patch", why, node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            path = self.qualify(node)
            if path:
                self.check_path(path, node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self.qualify(node)
        if path and self.check_path(path, node):
            pass
        elif node.attr in ATTRS:
            self.hit(*ATTRS[node.attr], node)
        elif node.attr == "register" and getattr(node.value, "attr", None) == "events":
            why = "registers a callback on IPython's events, which runs around every test cell"
            self.hit("ipython", why, node)
        elif isinstance(node.ctx, (ast.Store, ast.Del)) and node.attr == "__class__":
            self.hit("patch", "changes an object's class, which fools isinstance checks", node)
        elif isinstance(node.ctx, (ast.Store, ast.Del)):
            self.check_write(path, node)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.check_write(self.qualify(node.value), node, item=True)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        name = node.target.id
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent:  # := binds in the scope around it
            scope = scope.parent
        path = self.qualify(node.value)
        scope.names[name] = path if _is_alias(path) else None
        if scope is self.module:
            self.hits += _rebinding(name, path, node.lineno)
        self.visit(node.value)

    # ---- imports, definitions, raise

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_path(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            for alias in node.names:
                name = node.module if alias.name == "*" else f"{node.module}.{alias.name}"
                if not self.check_path(name, node) and alias.name in ATTRS:
                    self.hit(*ATTRS[alias.name], node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            why = f"defines {node.name}, which sees every torch call on its objects and can hide "
            self.hit("torch", why + "forbidden ones", node)
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        annotations = [a.annotation for a in every if a is not None] + [node.returns]
        for child in [*node.decorator_list, *args.defaults, *args.kw_defaults, *annotations]:
            if child is not None:
                self.visit(child)
        self.in_scope(node.body, [a.arg for a in every if a is not None], "function")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        args = node.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        for child in [*args.defaults, *args.kw_defaults]:
            if child is not None:
                self.visit(child)
        outer = self.scope
        self.scope = _Scope(dict.fromkeys(a.arg for a in every if a is not None), outer, "function")
        self.visit(node.body)
        self.scope = outer

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            last = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            path = self.qualify(base) or ""
            if "Tensor" in (last, path.split(".")[-1]) or path == "torch.nn.Parameter":
                why = "subclasses torch.Tensor, whose subclasses see every torch call on them"
                self.hit("torch", why, node)
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        self.in_scope(node.body, (), "class")

    def in_scope(self, body: list[ast.stmt], local: Collection[str], kind: str) -> None:
        """Visit a function's or class's body with the names it binds."""
        outer = self.scope
        # A method does not see its class's names: skip a class scope as the parent.
        parent = outer.parent if outer.kind == "class" and outer.parent else outer
        self.scope = _bindings(body, parent, local, kind)
        for child in body:
            self.visit(child)
        self.scope = outer

    def visit_ListComp(self, node: ast.ListComp) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # evaluated in the scope around the comprehension
        targets = [n for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)]
        outer = self.scope
        self.scope = _Scope(dict.fromkeys(t.id for t in targets), outer, "comprehension")
        for i, g in enumerate(generators):
            for child in [g.iter] * (i > 0) + g.ifs:
                self.visit(child)
        for field in ("elt", "key", "value"):
            if getattr(node, field, None) is not None:
                self.visit(getattr(node, field))
        self.scope = outer

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if exc is not None and self.qualify(exc) in _EXITS:
            why = "raises SystemExit or KeyboardInterrupt, which stops the notebook like exit()"
            self.hit("process", why, node)
        self.generic_visit(node)

    # ---- calls

    def visit_Call(self, node: ast.Call) -> None:
        if id(node) in self.generated:
            self.magic(node)
            return
        func = self.qualify(node.func) or ""
        args = node.args
        first = args[0] if args else None
        module = self.qualify(first) if first is not None else None
        if module and (module.split(".")[0] not in _ROOTS or "()" in module.split(".")):
            module = None  # only modules (and what is in them) count, not their values
        if func in ("exec", "eval", "compile"):
            code = first or next((k.value for k in node.keywords if k.arg == "source"), None)
            if _literal(code) is not None:
                self.nested(_literal(code), node)
            else:
                why = f"runs code built at run time with {func}(), which no reader can check"
                self.hit("dynamic", why, node)
        elif func == "importlib.import_module":
            if _literal(first) is None:
                self.hit("dynamic", "imports a module whose name is computed at run time", node)
            else:
                self.check_path(_literal(first), node)
        elif func == "getattr" and module:
            name = _literal(args[1]) if len(args) > 1 else None
            if name is None:
                why = f"reads an attribute of {module} by a computed name, which reaches anything"
                self.hit("dynamic", why, node)
            else:
                self.check_path(f"{module}.{name}", node)
        elif func in ("setattr", "delattr") and module:
            self.set_attr(node, module, _literal(args[1]) if len(args) > 1 else None)
        elif func.endswith(("__setattr__", "__delattr__")) and isinstance(node.func, ast.Attribute):
            owner = self.qualify(node.func.value)
            target = module if owner in ("object", "type") else owner
            if target and "()" not in target.split(".") and target.split(".")[0] in PATCH_ROOTS:
                self.set_attr(node, target, None)
        elif func == "vars" and module:
            why = f"reads the namespace of {module} through vars(), which can rewrite it in place"
            self.hit("patch", why, node)
        elif func in FILE_CALLS or func.startswith("shutil."):
            self.files(node, func, FILE_CALLS.get(func, (0, 1)))
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            self.check_write(self.qualify(node.func.value), node, item=True)
        self.generic_visit(node)

    def set_attr(self, node: ast.Call, base: str, name: str | None) -> None:
        """setattr, delattr or __setattr__ on ``base``: a write to ``base.<name>``."""
        target = f"{base}.{name}"
        if name is not None and self.check_path(target, node):
            return
        if name is not None and (target in _STREAMS or target in ("sys.path", "os.environ")):
            self.check_write(target, node)
        else:
            why = f"sets or deletes an attribute of {base}, which changes what the tests use"
            self.hit("patch", why, node)

    def files(self, node: ast.Call, func: str, positions: tuple[int, ...] | None) -> None:
        args = node.args
        paths = list(args) if positions is None else [args[i] for i in positions if i < len(args)]
        paths += [k.value for k in node.keywords if k.arg in _PATH_KEYWORDS]
        if any(_bad_path(p) for p in paths):
            why = f"calls {func}() with a path that is not a plain relative literal, which can "
            self.hit("files", why + "reach the solutions or the gradebook", node)

    def magic(self, node: ast.Call) -> None:
        """A get_ipython() call IPython wrote for a magic or a shell escape."""
        values = [_literal(a) or "" for a in node.args]
        if node.func.attr in _SHELL:  # type: ignore[attr-defined]
            self.hit("magic", _MAGIC_WHY["shell"], node)
            return
        name = values[0].lstrip("%") if values else ""
        if name not in ALLOWED_MAGICS:
            why = f"runs the magic %{name}, which can change how the notebook runs"
            self.hit("magic", _MAGIC_WHY.get(name, why), node)
        for code in values[1:] if name in _TIMED else ():
            self.nested(_TIMEIT_OPTIONS.sub("", code, count=1), node)


_DISPATCH: dict[type, object] = {}


def _rule_for(path: str) -> tuple[str, str] | None:
    """(rule, why) for a use of the dotted name ``path``, if it is flagged."""
    parts = path.split(".")
    if parts[0] not in _ROOTS or path in _ALLOWED or path.startswith("IPython.display."):
        return None
    for n in range(len(parts), 0, -1):
        found = NAMES.get(".".join(parts[:n]))
        if found:
            return found
    own = parts[: parts.index("()")] if "()" in parts else parts  # torch.x()._y is a value
    if own[0] == "torch" and any(p[:1] == "_" and p[-2:] != "__" for p in own[1:]):
        return "torch", "uses a private part of torch, where the checks for forbidden calls fail"
    return None


def _rebinding(name: str, path: str | None, line: int) -> list[tuple[str, int, str]]:
    """A hit for binding ``name`` at module level to ``path``, if that fools the tests."""
    if name in REBIND_BUILTINS:
        why = f"rebinds the builtin {name} for the whole notebook, where the test cells use it"
        return [("builtins", line, why)]
    if name in PROTECTED and path != PROTECTED[name]:
        return [("patch", line, f"rebinds {name}, which the test cells use as {PROTECTED[name]}")]
    return []


# --------------------------------------------------------------------------- parsing

_transformer = None


def _to_python(source: str) -> str:
    """IPython's translation of a cell to Python (magics become get_ipython() calls)."""
    global _transformer
    if _transformer is None:
        from IPython.core.inputtransformer2 import TransformerManager

        _transformer = TransformerManager()
    return _transformer.transform_cell(source)


def _parse(source: str) -> tuple[ast.Module, set[int], list[int]] | None:
    """The cell's tree, the ids of the get_ipython() calls IPython wrote for its magics, and
    for each line of the tree the 0-based line of ``source`` it came from."""
    lines = source.splitlines()
    try:
        return ast.parse(source), set(), list(range(len(lines)))
    except (SyntaxError, ValueError):
        pass  # IPython syntax, or not Python at all
    try:
        python = _to_python(source)
        tree = ast.parse(python)
    except Exception:  # IPython's transformers raise more than SyntaxError
        return None
    new = python.splitlines()
    origin = [0] * (len(new) + 1)
    for _, i1, i2, j1, j2 in difflib.SequenceMatcher(None, lines, new).get_opcodes():
        for j in range(j1, j2):
            origin[j] = max(0, min(i1 + j - j1, max(i1, i2 - 1), len(lines) - 1))
    generated = set()
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"run_line_magic", "run_cell_magic"} | _SHELL
            and getattr(getattr(func.value, "func", None), "id", None) == "get_ipython"
            and "get_ipython" not in (lines[origin[node.lineno - 1]] if lines else "")
        ):
            generated.add(id(node))
    return tree, generated, origin


def _cell_magic(source: str) -> tuple[int, str, str, str] | None:
    """(line, name, arguments, body) of a cell that starts with %%name, else None."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None or not lines[start].lstrip().startswith("%%"):
        return None
    name, _, args = lines[start].strip()[2:].partition(" ")
    return start, name, args, "\n".join(lines[start + 1 :])


def _scan(
    source: str, cell: str, context: _Scope, depth: int = 0
) -> tuple[list[Finding], dict[str, str | None]]:
    """Findings for one cell's source, and the module-level names it binds."""
    if depth > _MAX_DEPTH:
        return [], {}
    magic = _cell_magic(source)
    if magic:
        return _scan_cell_magic(source, cell, context, depth, *magic)
    parsed = _parse(source)
    if parsed is None:
        return [], {}
    tree, generated, origin = parsed
    scope = _bindings(tree.body, context)
    visitor = _Visitor(scope, generated, depth)
    visitor.visit(tree)
    hits = visitor.hits
    for name, node, value in _module_sites(tree, source):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            path = dict(_imported(node))[name]
        else:
            path = _qualify(value, scope) if value is not None else None
        hits += _rebinding(name, path, node.lineno)
    lines = source.splitlines()
    findings, seen = [], set()
    for rule, line, why in sorted(hits, key=lambda hit: hit[1]):
        index = origin[line - 1]
        if (rule, index) not in seen:
            seen.add((rule, index))
            code = lines[index].strip() if index < len(lines) else ""
            findings.append(Finding(rule, cell, index + 1, code, why))
    return findings, scope.names


def _scan_cell_magic(
    source: str, cell: str, context: _Scope, depth: int, start: int, name: str, args: str, body: str
) -> tuple[list[Finding], dict[str, str | None]]:
    """A cell that starts with %%name: flag the magic unless allowed, scan its body."""
    header = source.splitlines()[start].strip()
    findings = []
    if name in _TIMED:  # %%timeit -n 3 setup_code
        setup, _ = _scan(_TIMEIT_OPTIONS.sub("", args, count=1), cell, context, depth + 1)
        findings += [Finding(f.rule, cell, start + 1, header, f.why) for f in setup]
    else:
        why = f"runs the cell magic %%{name}, which can change how the cell runs"
        findings.append(Finding("magic", cell, start + 1, header, _MAGIC_WHY.get(name, why)))
    found, names = _scan(body, cell, context, depth + 1)
    findings += [Finding(f.rule, cell, f.line + start + 1, f.code, f.why) for f in found]
    return findings, names


def _names_of(source: str, context: _Scope) -> dict[str, str | None]:
    """The module-level names a cell binds, without scanning it."""
    magic = _cell_magic(source)
    parsed = _parse(magic[3] if magic else source)
    return _bindings(parsed[0].body, context).names if parsed else {}


# --------------------------------------------------------------------------- entry points


def scan_source(source: str, cell: str = "cell") -> list[Finding]:
    """Findings for one cell's source (IPython syntax allowed), labelled ``cell``."""
    return _scan(source, cell, _Scope({}))[0]


def _restored(cell, locked: Collection[str] | None) -> bool:
    """Whether nbgrader replaces the cell with the instructor's copy before grading."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution") or not meta.get("locked"):
        return False
    # nbgrader finds the instructor's copy by grade_id: a cell that only claims to be locked
    # keeps the student's source, so it is scanned.
    grade_id = meta.get("grade_id")
    return bool(grade_id) and (locked is None or grade_id in locked)


def scan_notebook(nb, locked: Collection[str] | None = None) -> list[Finding]:
    """Findings for the student-writable code cells of an nbformat notebook.

    Those are the cells with ``metadata.nbgrader.solution`` true and the cells not marked
    ``locked`` (a cell the student added has no nbgrader metadata). Locked cells are not
    scanned: nbgrader restores them from the instructor's copy. Pass the grade_ids of the
    instructor's locked cells as ``locked`` to skip only those. A finding's cell is the
    grade_id, else ``cell <index>`` with the index in ``nb.cells``. Every code cell's
    top-level names carry over to the cells after it.
    """
    findings = []
    context = _Scope({})
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if _restored(cell, locked):
            names = _names_of(source, context)
        else:
            found, names = _scan(source, label, context)
            findings += found
        context = _Scope({**context.names, **names})
    return findings
