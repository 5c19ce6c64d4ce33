"""Plausible wrong answers lose points, and only where they should.

For every exercise we keep a few mistakes students really make (padding counted once,
a missing bias, pooling at the wrong stride, batch norm that always uses the batch's
statistics...). Each one replaces the solution region of its cell in the instructor
notebook; the test cells then run in a kernel in grading mode and are scored with
nbgrader's own rule (`nbgrader.utils.determine_grade`: an error or any stderr output
gives zero). The test checks that

- exactly the listed test cells lose their points (a test cell that also fails for an
  unrelated exercise would punish a student twice for one mistake, or hide a bug), and
- the failure message contains a phrase that helps the student find the mistake.

Only the setup cell, the solution cells and the graded test cells run (the notebook
conventions require test cells to depend on nothing else), so one kernel per notebook
checks every wrong answer in seconds. One wrong answer per notebook also goes through a
real `nbgrader autograde` (see `wrong_submission`, used by test_notebooks.py).
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass

import nbformat
import pytest
from conftest import SOLUTIONS, assignments
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade, is_solution

pytestmark = pytest.mark.notebooks


@dataclass(frozen=True)
class WrongAnswer:
    name: str  # what the mistake is, as a test id
    cell: str  # grade_id of the solution cell whose region it replaces
    code: str  # the wrong solution region
    fails: frozenset[str]  # grade_ids of the test cells that must score zero
    message: str  # a phrase the failure messages must contain (regex)
    region: int = 0  # which solution region of the cell, if it has several


def wrong(
    name: str, cell: str, code: str, fails: set[str], message: str, region: int = 0
) -> WrongAnswer:
    code = textwrap.dedent(code).strip("\n")
    return WrongAnswer(name, cell, code, frozenset(fails), message, region)


# Solution regions with a slot for one mistake each (filled by str.format below).
NAIVE_CONV_BODY = """
n, _, h, w = x.shape
c_out, _, kh, kw = weight.shape
xp = F.pad(x, {pad})
h_out = (xp.shape[2] - kh) // stride + 1
w_out = (xp.shape[3] - kw) // stride + 1
out = x.new_zeros(n, c_out, h_out, w_out)
for b in range(n):
    for o in range(c_out):
        for i in range(h_out):
            for j in range(w_out):
                r, c = i * stride, j * stride
                out[b, o, i, j] = (xp[b, :, r : r + kh, c : c + kw] * weight[o]).sum()
return out{bias}
"""
BATCH_NORM_BODY = """
dims = (0, 2, 3) if x.ndim == 4 else (0,)
shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
if training:
    mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased={unbiased})
    m = x.numel() // x.shape[1]
    with torch.no_grad():
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * var{correction})
else:
    mean, var = {eval_stats}
x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
return gamma.view(shape) * x_hat + beta.view(shape)
"""
LENET_TABLE_FILL = """
LENET_TABLE["C1"] = ((6, 28, 28), 156)
LENET_TABLE["S2"] = ({s2}, 0)
LENET_TABLE["C3"] = ((16, 10, 10), {c3})
LENET_TABLE["S4"] = ((16, 5, 5), 0)
LENET_TABLE["F5"] = ((120,), 48120)
LENET_TABLE["F6"] = ((84,), 10164)
LENET_TABLE["F7"] = ((10,), 850)
LENET_TOTAL_PARAMS = sum(params for _, params in LENET_TABLE.values())
"""
LENET_BODY = """
ACTIVATIONS = {{"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}}
POOLS = {{"avg": nn.AvgPool2d, "max": nn.MaxPool2d}}

def __init__(self, num_classes=10, in_channels=1, activation="tanh", pool="avg"):
    super().__init__()
    if activation not in self.ACTIVATIONS:
        raise ValueError(f"activation={{activation!r}}: unknown")
    if pool not in self.POOLS:
        raise ValueError(f"pool={{pool!r}}: unknown")
    act, pooling = self.ACTIVATIONS[activation], self.POOLS[pool]
    self.features = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5{c1}), act(), pooling(2{stride}),
        nn.Conv2d(6, 16, kernel_size=5), act(), pooling(2{stride}),
    )
    self.head = nn.Sequential(
        nn.Flatten(), nn.Linear(400, 120), act(), nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )

def forward(self, x):
    return self.head(self.features(x))
"""

# The table keeps each case's cell, expected failures and message on short lines.
# fmt: off
WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    "00_welcome": [
        wrong(
            "softmax-without-max-shift", "softmax",
            """
            exps = logits.exp()  # overflows for large logits
            return exps / exps.sum(dim=dim, keepdim=True)
            """,
            {"test_softmax_stable"}, r"overflow",
        ),
        wrong(
            "softmax-ignores-dim", "softmax",
            """
            shifted = logits - logits.max()
            return shifted.exp() / shifted.exp().sum()
            """,
            {"test_softmax_values", "test_softmax_stable"}, r"values differ",
        ),
    ],
    "01_components": [
        wrong(
            "output-size-padding-once", "conv_output_size",
            """
            if stride < 1:
                raise ValueError(f"stride={stride}: expected a positive int")
            if kernel_size > size + 2 * padding:
                raise ValueError(f"kernel_size={kernel_size} does not fit")
            return (size + padding - kernel_size) // stride + 1
            """,
            # conv2d_naive and conv2d call conv_output_size for their output shape
            {"test_conv_output_size", "test_conv2d_naive", "test_conv2d"}, r"each\* side",
        ),
        wrong(
            "output-size-rounds", "conv_output_size",
            """
            if stride < 1:
                raise ValueError(f"stride={stride}: expected a positive int")
            if kernel_size > size + 2 * padding:
                raise ValueError(f"kernel_size={kernel_size} does not fit")
            return round((size + 2 * padding - kernel_size) / stride) + 1
            """,
            # an odd output size then breaks conv2d_naive's shapes too
            {"test_conv_output_size", "test_conv2d_naive"}, r"round down",
        ),
        wrong(
            "output-size-no-checks", "conv_output_size",
            "return (size + 2 * padding - kernel_size) // stride + 1",
            {"test_conv_output_size"}, r"should raise ValueError",
        ),
        wrong(
            "conv-params-missing-bias", "conv_params",
            """
            kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            return in_channels * kh * kw * out_channels
            """,
            {"test_conv_params"}, r"one bias",
        ),
        wrong(
            "naive-conv-missing-bias", "conv2d_naive",
            NAIVE_CONV_BODY.format(pad="(padding,) * 4", bias=""),
            {"test_conv2d_naive"}, r"values differ",
        ),
        wrong(
            "naive-conv-padding-one-side", "conv2d_naive",
            NAIVE_CONV_BODY.format(pad="(padding, 0, padding, 0)",
                                   bias=" + (0 if bias is None else bias.view(1, -1, 1, 1))"),
            {"test_conv2d_naive"}, r"expected shape",
        ),
        wrong(
            "conv-calls-torch", "conv2d",
            "return F.conv2d(x, weight, bias, stride=stride, padding=padding)",
            {"test_conv2d"}, r"calls torch\.nn\.functional\.conv2d",
        ),
        wrong(
            "conv-calls-reference", "conv2d",
            "return cnncourse.layers.conv2d(x, weight, bias, stride=stride, padding=padding)",
            {"test_conv2d"}, r"calls cnncourse\.layers\.conv2d",
        ),
        wrong(
            "conv-weight-not-flattened-per-filter", "conv2d",
            """
            n, _, h, w = x.shape
            c_out, _, kh, kw = weight.shape
            h_out = conv_output_size(h, kh, stride, padding)
            w_out = conv_output_size(w, kw, stride, padding)
            cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
            # transposing the filter bank scrambles which weights meet which input values
            out = weight.transpose(0, 1).reshape(c_out, -1) @ cols
            if bias is not None:
                out = out + bias.view(1, -1, 1)
            return out.view(n, c_out, h_out, w_out)
            """,
            {"test_conv2d"}, r"values differ",
        ),
        wrong(
            "max-pool-stride-one", "max_pool2d",
            """
            stride = 1 if stride is None else stride
            k = kernel_size
            return x.unfold(2, k, stride).unfold(3, k, stride).amax(dim=(-2, -1))
            """,
            {"test_max_pool2d"}, r"expected shape",
        ),
        wrong(
            "max-pool-averages", "max_pool2d",
            """
            stride = kernel_size if stride is None else stride
            k = kernel_size
            return x.unfold(2, k, stride).unfold(3, k, stride).mean(dim=(-2, -1))
            """,
            {"test_max_pool2d"}, r"values differ",
        ),
        wrong(
            "sigmoid-grad-of-x", "activation_grads",
            "return x * (1 - x)  # the formula applied to x instead of sigmoid(x)",
            {"test_activation_grads"}, r"sigmoid_grad",
        ),
        wrong(
            "relu-grad-one-at-zero", "activation_grads",
            "return (x >= 0).to(x.dtype)",
            {"test_activation_grads"}, r"relu_grad", region=2,
        ),
        wrong(
            "batch-norm-always-batch-stats", "batch_norm",
            BATCH_NORM_BODY.format(unbiased=False, correction=" * m / (m - 1)",
                                   eval_stats="x.mean(dim=dims), x.var(dim=dims, unbiased=False)"),
            {"test_batch_norm_eval"}, r"running statistics",
        ),
        wrong(
            "batch-norm-biased-running-var", "batch_norm",
            BATCH_NORM_BODY.format(unbiased=False, correction="",
                                   eval_stats="running_mean, running_var"),
            {"test_batch_norm_train"}, r"unbiased",
        ),
        wrong(
            "batch-norm-unbiased-normalisation", "batch_norm",
            BATCH_NORM_BODY.format(unbiased=True, correction="",
                                   eval_stats="running_mean, running_var"),
            {"test_batch_norm_train"}, r"values differ",
        ),
    ],
    "02_lenet": [
        wrong(
            "table-c3-without-biases", "lenet_table",
            LENET_TABLE_FILL.format(s2="(6, 14, 14)", c3="16 * 6 * 5 * 5"),
            # the total still adds up the rows, so it is off by 16 as well
            {"test_table_conv", "test_table_total"}, r"forget the 16 biases",
        ),
        wrong(
            "table-shape-with-batch-dim", "lenet_table",
            LENET_TABLE_FILL.format(s2="(1, 6, 14, 14)", c3="2416"),
            {"test_table_pool"}, r"leave out the batch dimension",
        ),
        wrong(
            "lenet-c1-without-bias", "lenet_module",
            LENET_BODY.format(c1=", bias=False", stride=""),
            {"test_lenet_shapes", "test_lenet_function"}, r"biases",
        ),
        wrong(
            "lenet-pool-stride-one", "lenet_module",
            LENET_BODY.format(c1="", stride=", stride=1"),
            {"test_lenet_shapes", "test_lenet_function"}, r"strides",
        ),
        wrong(
            "flat-features-rounds", "flat_features",
            """
            size = image_size
            for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
                size = round((size - kernel) / stride) + 1
                if size < 1:
                    raise ValueError(f"image_size={image_size}: too small")
            return 16 * size * size
            """,
            {"test_flat_features"}, r"rounding down",
        ),
        wrong(
            "flat-features-no-check", "flat_features",
            """
            size = image_size
            for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
                size = (size - kernel) // stride + 1
            return 16 * size * size
            """,
            {"test_flat_features"}, r"should raise ValueError",
        ),
    ],
}
# fmt: on

ASSIGNMENTS = assignments()
CASES = [(a, w) for a in ASSIGNMENTS for w in WRONG_ANSWERS.get(a, [])]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def replace_solution(source: str, code: str, region: int = 0) -> str:
    """Swap solution region number ``region`` of a cell for ``code``, indented like it."""
    pattern = rf"^([ \t]*){re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}[^\n]*"
    matches = list(re.finditer(pattern, source, flags=re.M | re.S))
    assert len(matches) > region, f"the cell has no solution region number {region}"
    match = matches[region]
    body = textwrap.indent(code, match.group(1))
    return source[: match.start()] + body + source[match.end() :]


def _load(assignment: str) -> nbformat.NotebookNode:
    (path,) = sorted((SOLUTIONS / assignment).glob("*.ipynb"))
    return nbformat.read(path, as_version=4)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _error_text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        elif out.output_type == "stream" and out.name == "stderr":
            parts.append(out.text)
    return "\n".join(parts)


class GradingKernel:
    """One kernel in grading mode that runs a notebook's setup, solution and test cells."""

    def __init__(self, assignment: str) -> None:
        self.nb = _load(assignment)
        self.client = NotebookClient(
            self.nb, timeout=120, kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": str(SOLUTIONS / assignment)}},
        )  # fmt: skip
        self.index = {_grade_id(c): i for i, c in enumerate(self.nb.cells) if _grade_id(c)}
        self.solutions = [g for g, i in self.index.items() if is_solution(self.nb.cells[i])]
        self.tests = [g for g, i in self.index.items() if is_grade(self.nb.cells[i])]
        # nbclient stores the executed cell back into the notebook: keep the originals.
        self.sources = {g: self.nb.cells[i].source for g, i in self.index.items()}

    def run(self, grade_id: str, source: str | None = None):
        """Execute a cell, with ``source`` in place of its own if given."""
        i = self.index[grade_id]
        source = self.sources[grade_id] if source is None else source
        cell = nbformat.from_dict({**self.nb.cells[i], "source": source, "outputs": []})
        return self.client.execute_cell(cell, i)

    def scores(self) -> dict[str, tuple[float, float, str]]:
        """Run every test cell; grade_id -> (score, max score, error text)."""
        result = {}
        for grade_id in self.tests:
            cell = self.run(grade_id)
            score, max_score = determine_grade(cell)
            result[grade_id] = (score, max_score, _error_text(cell))
        return result


@pytest.fixture(scope="module")
def kernels():
    """grading-mode kernels, started on first use and shut down after the module."""
    started: dict[str, tuple[GradingKernel, object]] = {}

    def get(assignment: str) -> GradingKernel:
        if assignment not in started:
            gk = GradingKernel(assignment)
            previous = os.environ.get("NBGRADER_EXECUTION")
            os.environ["NBGRADER_EXECUTION"] = "autograde"  # the kernel inherits it
            try:
                ctx = gk.client.setup_kernel()
                ctx.__enter__()
            finally:
                if previous is None:
                    os.environ.pop("NBGRADER_EXECUTION")
                else:
                    os.environ["NBGRADER_EXECUTION"] = previous
            gk.run("setup")
            for grade_id in gk.solutions:
                gk.run(grade_id)
            baseline = gk.scores()
            lost = {g: s for g, s in baseline.items() if s[0] != s[1]}
            assert not lost, f"{assignment}: the solution itself loses points: {lost}"
            started[assignment] = (gk, ctx)
        return started[assignment][0]

    yield get
    for _, ctx in started.values():
        ctx.__exit__(None, None, None)


@pytest.mark.parametrize(("assignment", "answer"), CASES, ids=[f"{a}:{w.name}" for a, w in CASES])
def test_wrong_answer_loses_points(kernels, assignment, answer):
    gk = kernels(assignment)
    assert answer.cell in gk.solutions, f"{assignment} has no solution cell {answer.cell!r}"
    assert answer.fails <= set(gk.tests), f"unknown test cells: {answer.fails - set(gk.tests)}"
    original = gk.sources[answer.cell]
    try:
        gk.run(answer.cell, replace_solution(original, answer.code, answer.region))
        scores = gk.scores()
    finally:
        gk.run(answer.cell)  # put the right answer back for the next case
    lost = {g for g, (score, max_score, _) in scores.items() if score != max_score}
    assert lost == answer.fails, (
        f"{answer.name}: expected exactly {sorted(answer.fails)} to lose points, "
        f"got {sorted(lost)}; errors: { {g: scores[g][2][-300:] for g in lost} }"
    )
    assert all(scores[g][0] == 0 for g in answer.fails), "a failing cell gave partial credit"
    said = "\n".join(scores[g][2] for g in sorted(answer.fails))
    assert re.search(answer.message, said), (
        f"{answer.name}: the failure messages do not say {answer.message!r}; "
        f"they said: {said[-800:]}"
    )


def test_every_exercise_has_a_wrong_answer():
    """A new exercise needs at least one wrong answer here, so its tests are shown to bite."""
    missing = []
    for assignment in ASSIGNMENTS:
        cells = [c for c in _load(assignment).cells if is_solution(c) and not is_grade(c)]
        covered = {w.cell for w in WRONG_ANSWERS.get(assignment, [])}
        missing += [f"{assignment}:{_grade_id(c)}" for c in cells if _grade_id(c) not in covered]
    assert not missing, f"solution cells with no wrong answer in WRONG_ANSWERS: {missing}"


# One wrong answer per notebook also goes through a real `nbgrader autograde`, as a third
# submission in test_notebooks.py's round trip: only its test cells may lose points.
ROUND_TRIP = {a: WRONG_ANSWERS[a][0] for a in ASSIGNMENTS if WRONG_ANSWERS.get(a)}


def wrong_submission(assignment: str) -> tuple[nbformat.NotebookNode, WrongAnswer]:
    """The instructor notebook with the first wrong answer for it swapped in."""
    answer = ROUND_TRIP[assignment]
    nb = _load(assignment)
    for cell in nb.cells:
        if _grade_id(cell) == answer.cell:
            cell.source = replace_solution(cell.source, answer.code, answer.region)
    return nb, answer
