"""cnncourse.tamper: hostile code is flagged under the right rule, honest code never is.

The hostile table has at least two snippets per rule, with the aliases and variants a
student would reach for; the honest table has the look-alikes (an attribute read of
``torch.softmax``, ``self.weight = ...``, ``%timeit``, a relative ``open``). Every solution
cell of the course and every wrong answer (an honest mistake) must scan clean.
"""

from __future__ import annotations

import ast
import functools
import textwrap

import nbformat
import pytest
from conftest import SOLUTIONS, assignments, solution_notebook

from cnncourse.authoring import wrong_answers_in
from cnncourse.tamper import HONEST_SHADOWS, RULES, Finding, scan_notebook, scan_source

ASSIGNMENTS = assignments()
notebook = functools.cache(solution_notebook)  # three tests read each instructor notebook

HOSTILE = [
    # magic: every magic but %matplotlib and %time(it), and shell escapes
    ("%%capture out\nrun_tests()", "magic"),
    ("!cat ../../../solutions/x.py", "magic"),
    ("files = !ls ..", "magic"),
    ("%run helper.py", "magic"),
    ("%load ../solutions/01_components/01_components.py", "magic"),
    ("%env NBGRADER_EXECUTION=", "magic"),
    ("%cd ..", "magic"),
    ("%xmode Minimal", "magic"),
    ("%config Application.log_level = 50", "magic"),
    ("if ready:\n    %autoreload 2", "magic"),
    ("%%bash\nls ..", "magic"),
    ("%time %run helper.py", "magic"),
    # ipython
    ("ip = get_ipython(); ip.ast_transformers.append(T())", "ipython"),
    ("get_ipython().input_transformers_post.append(hide)", "ipython"),
    (
        "from IPython import get_ipython as shell\nshell().showtraceback = lambda *a, **k: None",
        "ipython",
    ),
    ("import IPython\nIPython.get_ipython().set_custom_exc((Exception,), quiet)", "ipython"),
    ("get_ipython().events.register('post_run_cell', f)", "ipython"),
    ("if '__IPYTHON__' in dir() or __IPYTHON__: pass", "ipython"),
    ("from IPython.core.interactiveshell import InteractiveShell", "ipython"),
    ("shell.run_cell('x = 1')", "ipython"),
    ("shell.display_pub = Quiet()", "ipython"),
    ("%time get_ipython().showsyntaxerror = f", "ipython"),
    # hooks
    ("import sys\nsys.excepthook = lambda *a: None", "hooks"),
    ("from sys import settrace as st; st(tracer)", "hooks"),
    ("sys.setprofile(f)", "hooks"),
    ("sys.addaudithook(f)", "hooks"),
    ("sys.stderr = open('notes.txt', 'w')", "hooks"),
    ("setattr(sys, 'stdout', io.StringIO())", "hooks"),
    ("caller = sys._getframe(1).f_globals", "hooks"),
    ("import inspect\nframe = inspect.currentframe()", "hooks"),
    ("for f in inspect.stack(): pass", "hooks"),
    ("def f():\n    return frame.f_back.f_locals", "hooks"),
    ("tb = err.__traceback__.tb_frame", "hooks"),
    ("import gc\nfor obj in gc.get_objects(): pass", "hooks"),
    ("import threading\nthreading.Thread(target=f).start()", "hooks"),
    ("import _thread as t\nt.start_new_thread(f, ())", "hooks"),
    ("import atexit\natexit.register(f)", "hooks"),
    ("from concurrent.futures import ThreadPoolExecutor", "hooks"),
    # imports
    ('sys.modules["cnncourse.grading"] = fake', "imports"),
    ("from sys import modules\nmodules.pop('torch')", "imports"),
    ("sys.meta_path.insert(0, Finder())", "imports"),
    ("sys.path_hooks.append(hook)", "imports"),
    ("sys.path.insert(0, '..')", "imports"),
    ("sys.path += ['/tmp']", "imports"),
    ("import importlib\nimportlib.reload(cnncourse.grading)", "imports"),
    ("from importlib import reload", "imports"),
    ("import importlib.util", "imports"),
    ("grading = __import__('cnncourse.grading')", "imports"),
    ("import runpy", "imports"),
    ("import imp", "imports"),
    # builtins
    ("import builtins; builtins.isinstance = f", "builtins"),
    ("import builtins as b\nb.len = lambda x: 0", "builtins"),
    ("__builtins__.print = f", "builtins"),
    ("__builtins__['abs'] = f", "builtins"),
    ("isinstance = lambda *a: True", "builtins"),
    ("def print(*args, **kwargs):\n    pass", "builtins"),
    ("class AssertionError(Exception):\n    pass", "builtins"),
    ("len = lambda x: 3", "builtins"),
    ("for abs in range(3):\n    pass", "builtins"),
    ("from mymodule import all, any", "builtins"),
    ("import numpy as float", "builtins"),
    ("with open('x.txt') as type:\n    pass", "builtins"),
    ("def cheat():\n    global range\n    range = fake_range", "builtins"),
    ("(int := fake_int)", "builtins"),
    ("if True:\n    sum = 0", "builtins"),
    # patch
    ("import torch as t; t.Tensor.any = f", "patch"),
    ("from cnncourse import grading as g; g.check_tensor = f", "patch"),
    ("F.softmax = my_softmax", "patch"),
    ("np.allclose = lambda *a, **k: True", "patch"),
    ("cnncourse.grading.check_tensor = f", "patch"),
    ("from torch import Tensor\nTensor.equal = f", "patch"),
    ("T = torch.Tensor\nT.allclose = f", "patch"),
    ("torch.testing.assert_close.__defaults__ = (1, 1)", "patch"),
    ("del torch.nn.functional.conv2d", "patch"),
    ("torch.Tensor.sum += 0", "patch"),
    ("from cnncourse.grading import check_tensor\ncheck_tensor.calls = 0", "patch"),
    ('setattr(torch, "equal", f)', "patch"),
    ("setattr(F, name, f)", "patch"),
    ("delattr(np, 'isclose')", "patch"),
    ('object.__setattr__(torch, "equal", f)', "patch"),
    ("vars(grading)['check_tensor'] = f", "patch"),
    ("grading.__dict__['check_tensor'] = f", "patch"),
    ("forbid.__code__ = nothing.__code__", "patch"),
    ("check.__globals__['fail'] = print", "patch"),
    ("fn.__closure__[0].cell_contents = 1", "patch"),
    ("out.__class__ = torch.Tensor", "patch"),
    ("for cls in object.__subclasses__(): pass", "patch"),
    ("Fake.__bases__ = (torch.Tensor,)", "patch"),
    ("print(torch.Tensor.__mro__)", "patch"),
    ('globals()["check_tensor"] = f', "patch"),
    ("globals().update(len=f)", "patch"),
    ("torch = FakeTorch()", "patch"),
    ("import numpy_fake as np", "patch"),
    ("def F(x):\n    return x", "patch"),
    # torch
    ("class T(torch.Tensor):\n    pass", "torch"),
    ("from torch import Tensor as Base\nclass T(Base):\n    pass", "torch"),
    ("class P(nn.Parameter):\n    pass", "torch"),
    (
        "class Spy:\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), "
        "kwargs=None):\n        return func(*args, **(kwargs or {}))",
        "torch",
    ),
    (
        "class M:\n    def __torch_dispatch__(self, func, types, args, kwargs):\n        pass",
        "torch",
    ),
    ("with torch._C.DisableTorchFunction():\n    out = F.softmax(x, 1)", "torch"),
    ("with torch._C.DisableTorchFunctionSubclass():\n    pass", "torch"),
    ("torch._C._DisableTorchDispatch()", "torch"),
    ("torch._softmax(x, 1, False)", "torch"),
    ("torch.ops.aten._softmax(x, 1, False)", "torch"),
    ("aten = torch.ops.aten", "torch"),
    ("from torch.overrides import TorchFunctionMode", "torch"),
    ("with torch.overrides.TorchFunctionMode():\n    pass", "torch"),
    ("from torch.utils._python_dispatch import TorchDispatchMode", "torch"),
    ("lib = torch.library.Library('aten', 'IMPL')", "torch"),
    ("y = F._canonical_mask(x)", "torch"),
    ("y = torch.nn.functional._in_projection(x)", "torch"),
    ('c = getattr(torch, "_C")', "torch"),
    ("from torch import _C", "torch"),
    ("torch.Tensor.__torch_function__ = f", "torch"),
    # dynamic
    ("exec(code)", "dynamic"),
    ("eval(expression)", "dynamic"),
    ("e = eval\ne(text)", "dynamic"),
    ("compile(source, 'x', 'exec')", "dynamic"),
    ("getattr(torch, name)", "dynamic"),
    ("getattr(F, op_name)(x)", "dynamic"),
    ("importlib.import_module(name)", "dynamic"),
    ("types.FunctionType(code, globals())", "dynamic"),
    ("import types\ntypes.CodeType(*parts)", "dynamic"),
    ("import pickle\npickle.loads(blob)", "dynamic"),
    ("import marshal\nmarshal.loads(blob)", "dynamic"),
    # files
    ('open("../../../gradebook.db")', "files"),
    ('open("/etc/passwd")', "files"),
    ("open(path)", "files"),
    ('open(f"{folder}/x.py")', "files"),
    ("open(2, 'w')", "files"),
    ("import io\nio.open('/tmp/x')", "files"),
    ("os.open('../x', os.O_RDONLY)", "files"),
    ("from pathlib import Path\nPath('/etc/passwd').read_text()", "files"),
    ("from pathlib import Path\nPath.home()", "files"),
    ("import pathlib\npathlib.Path('..', 'solutions').iterdir()", "files"),
    ("np.load('~/answers.npy')", "files"),
    ("np.save('../leak.npy', a)", "files"),
    ("np.fromfile(name)", "files"),
    ("torch.load('/home/instructor/ref.pt')", "files"),
    ("torch.save(model, '../model.pt')", "files"),
    ("os.listdir('..')", "files"),
    ("for root, dirs, files in os.walk('/'):\n    pass", "files"),
    ("import glob\nglob.glob('../../*/*.ipynb')", "files"),
    ("import shutil\nshutil.copy('../solutions/x.py', 'x.py')", "files"),
    ("os.chdir('..')", "files"),
    ("os.path.expanduser('~')", "files"),
    # process
    ("sys.exit(0)", "process"),
    ("exit()", "process"),
    ("quit()", "process"),
    ("raise SystemExit(0)", "process"),
    ("raise KeyboardInterrupt", "process"),
    ("os._exit(0)", "process"),
    ("from os import _exit\n_exit(0)", "process"),
    ("os.abort()", "process"),
    ("os.kill(os.getpid(), 9)", "process"),
    ("os.killpg(0, 9)", "process"),
    ("signal.signal(signal.SIGINT, signal.SIG_IGN)", "process"),
    ("import signal\nsignal.alarm(1)", "process"),
    ("os.fork()", "process"),
    ("os.system('ls ..')", "process"),
    ("os.popen('cat ../x')", "process"),
    ("os.execv('/bin/sh', ['sh'])", "process"),
    ("os.spawnl(os.P_NOWAIT, '/bin/true')", "process"),
    ("import subprocess\nsubprocess.run(['ls'])", "process"),
    ("from subprocess import Popen", "process"),
    ("import multiprocessing as mp\nmp.Process(target=f).start()", "process"),
    ("import pty", "process"),
    ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 1))", "process"),
    # outside
    ("import socket", "outside"),
    ("import urllib.request\nurllib.request.urlopen(url)", "outside"),
    ("from http.client import HTTPConnection", "outside"),
    ("import requests\nrequests.get(url)", "outside"),
    ("import ctypes\nctypes.CDLL(None)", "outside"),
    ("import cffi", "outside"),
    ("import mmap", "outside"),
    ('os.environ.pop("NBGRADER_EXECUTION")', "outside"),
    ('os.environ["NBGRADER_EXECUTION"] = ""', "outside"),
    ('del os.environ["NBGRADER_EXECUTION"]', "outside"),
    ("os.environ.update(NBGRADER_EXECUTION='')", "outside"),
    ("from os import environ\nenviron.clear()", "outside"),
    ("os.putenv('X', '1')", "outside"),
    ("os.unsetenv('NBGRADER_EXECUTION')", "outside"),
    # code in a string literal is scanned as code
    ('exec("import os; os._exit(0)")', "process"),
    ("eval(\"__import__('os')\")", "imports"),
    ("%timeit -n 1 -r 1 os._exit(0)", "process"),
    ("%%timeit -n 1\nsys.exit(0)", "process"),
    ("%%time\nx = 1\nF.relu = f", "patch"),
    ("%%capture\nsys.excepthook = f", "hooks"),
]

HONEST = [
    "probs = torch.softmax(x, dim=1)",
    "f = torch.softmax",
    "x.exp_()\nx.add_(1)",
    "class Block(nn.Module):\n"
    "    def __init__(self, c: int) -> None:\n"
    "        super().__init__()\n"
    "        self.weight = nn.Parameter(torch.zeros(c, c, 3, 3))\n"
    "        self.bias = nn.Parameter(torch.zeros(c)) if True else None\n"
    "        self.layers = nn.ModuleList()\n"
    "        self.layers.append(nn.ReLU())\n"
    "\n"
    "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
    "        x = F.conv2d(x, self.weight, self.bias, padding=1)  # (N, C, H, W)\n"
    "        return getattr(self, 'layers')[0](x)",
    "model = models.lenet5()\nmodel.fc = nn.Linear(84, 10)\nmodel.features[0].weight.data.zero_()",
    "net = LeNet5()\nnet.head = nn.Sequential()",
    "compile_time = 3.2\neval_loss = 0.1\nexec_count = 2",
    'open("notes.txt", "w").write("hi")',
    'with open("results/run1.json") as f:\n    results = f.read()',
    'print("accuracy", 0.9)\nprint(f"{0.5:.1%}")',
    "%matplotlib inline\nimport matplotlib.pyplot as plt",
    "%timeit f(x)",
    "%timeit -n 3 -r 2 conv2d(x, w)",
    "%time history = train.fit(model, loader, epochs=1)",
    "%%time\nhistory = train.fit(model, loader, epochs=1)",
    "%%timeit -n 2\nconv2d(x, w)",
    "nn.Conv2d?",
    "rng = np.random.default_rng(0)\nnp.random.seed(0)",
    "torch.manual_seed(0)\ntorch.set_num_threads(1)",
    "torch.backends.cudnn.deterministic = True",
    "def build(name):\n    return getattr(self, name)",
    "value = getattr(model, name, None)\nsetattr(model, name, value)",
    "squares = [n * n for n in range(10)]\nlens = {k: len(v) for k, v in d.items()}",
    "shapes_seen = [len for len in range(3)]",
    "for input, target in loader:\n    pass\nid = 3",
    "x = torch.zeros(3)\nx.requires_grad = True\nx.grad = None",
    "def run(model, eval=False, compile=False):\n    if eval:\n        model.eval()",
    "layers = []\nlayers.append(nn.ReLU())",
    "data = data.load_dataset('digits', 'train')\ndata.images = data.images.float()",
    "def f(data, train):\n    data.x = 1\n    train.y = 2",
    "signal = torch.sin(torch.linspace(0, 6, 100))\nsignal.abs()",
    "print(type(x).__name__, x.__class__.__name__)",
    "isinstance(x, torch.Tensor) and issubclass(type(m), nn.Module)",
    "with torch.no_grad():\n    out = model(x)",
    "import math\nimport time\nstart = time.perf_counter()\nmath.sqrt(2)",
    "from torch.utils.data import DataLoader, TensorDataset",
    "import torch.nn.functional as F\nimport numpy as np\nimport torch\nfrom torch import nn",
    "os.path.join('a', 'b')\nos.environ.get('HOME')\nsys.stdout.flush()",
    "import importlib\nimportlib.import_module('math')",
    'eval("1 + 1")',
    "from IPython.display import display, Markdown\ndisplay(Markdown('**hi**'))",
    "plt.savefig('figure.png')\nnp.save('weights.npy', w)\ntorch.save(model.state_dict(), 'm.pt')",
    "from pathlib import Path\nPath('out').mkdir(exist_ok=True)",
    "object.__setattr__(self, 'x', 1)",
    "try:\n    f()\nexcept ValueError as err:\n    print(err)",
    "raise ValueError('stride must be positive')",
    "torch.Tensor.add(x, y)",
    "model.register_forward_hook(lambda m, i, o: None)",
    "x = 1 % 2\ny = (a\n     % b)",
    "this is not python (",
]


@pytest.mark.parametrize(("source", "rule"), HOSTILE, ids=[f"{r}:{s[:40]}" for s, r in HOSTILE])
def test_hostile_code_is_flagged(source, rule):
    findings = scan_source(source)
    assert rule in {f.rule for f in findings}, f"{source!r}: expected {rule}, got {findings}"


def test_every_rule_has_hostile_cases():
    counts = {rule: sum(r == rule for _, r in HOSTILE) for rule in RULES}
    assert all(n >= 2 for n in counts.values()), counts


@pytest.mark.parametrize("source", HONEST, ids=[s[:40] for s in HONEST])
def test_honest_code_is_not_flagged(source):
    assert scan_source(source) == []


def test_findings_say_where_and_why():
    source = "x = 1\n%matplotlib inline\n\nimport os\nos._exit(0)  # bye\n"
    (finding,) = scan_source(source, "my_cell")
    assert finding == Finding("process", "my_cell", 5, "os._exit(0)  # bye", finding.why)
    assert finding.why.endswith("never run") and finding.rule in RULES
    # The body of a cell magic keeps its line numbers.
    (finding,) = scan_source("%%time\nx = 1\nsys.exit(0)")
    assert (finding.line, finding.code) == (3, "sys.exit(0)")
    # One finding per rule and line, even when a line matches several ways.
    assert len(scan_source("torch._C._DisableTorchDispatch()")) == 1


def test_notebook_skips_locked_cells_and_labels_by_grade_id():
    def code(source, **nbgrader):
        cell = nbformat.v4.new_code_cell(source)
        if nbgrader:
            cell.metadata["nbgrader"] = {"grade": False, "locked": False, "solution": False,
                                         **nbgrader}  # fmt: skip
        return cell

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code("import torch\nimport signal as sg", grade_id="setup", locked=True),
        nbformat.v4.new_markdown_cell("os._exit(0)"),
        code("def softmax(x):\n    sg.alarm(1)", grade_id="softmax", solution=True),
        code("os._exit(0)"),  # added by the student: no metadata
        code("sys.exit(1)", grade_id="test_softmax", grade=True, locked=True, points=5),
        code("exit()", locked=True),  # claims to be locked, but nbgrader cannot restore it
    ]
    found = [(f.cell, f.rule, f.line) for f in scan_notebook(nb)]
    assert found == [("softmax", "process", 2), ("cell 3", "process", 1), ("cell 5", "process", 1)]
    # With the instructor's locked ids, only those are skipped.
    assert {f.cell for f in scan_notebook(nb, locked={"setup"})} >= {"test_softmax"}


def test_notebook_carries_names_between_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from cnncourse import grading as g\nsignal = [1, 2]"),
        nbformat.v4.new_code_cell("g.check_tensor = None\nsignal.append(3)"),
    ]
    assert [(f.cell, f.rule, f.line) for f in scan_notebook(nb)] == [("cell 1", "patch", 1)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_course_solutions_are_clean(assignment):
    nb = notebook(assignment)
    assert scan_notebook(nb) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_wrong_answers_are_clean(assignment):
    """Wrong answers are honest mistakes: the cell with one swapped in scans clean."""
    path = SOLUTIONS / assignment / "wrong_answers.py"
    answers = wrong_answers_in(path) if path.is_file() else []
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in notebook(assignment).cells}
    for answer in answers:
        source = answer.apply(cells[answer.cell].source)
        assert scan_source(source, answer.cell) == [], answer.name
        if answer.code:
            assert scan_source(textwrap.dedent(answer.code), answer.cell) == [], answer.name


def test_honest_shadows_are_not_used_by_the_course_tests():
    """Rebinding a builtin in HONEST_SHADOWS is not flagged, so no test cell may use one."""
    used = set()
    for assignment in ASSIGNMENTS:
        for cell in notebook(assignment).cells:
            if (
                cell.get("metadata", {}).get("nbgrader", {}).get("locked")
                and cell.cell_type == "code"
            ):
                used |= {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
    assert not used & HONEST_SHADOWS
