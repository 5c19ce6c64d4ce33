# %% [markdown]
# # 09 · Review: eight architectures side by side
#
# The lecture asked, before LeNet: "How should we put them together?" The course answered
# with seven families, each a different answer: LeNet-5, AlexNet, VGG, NiN, GoogLeNet,
# ResNet and ResNeXt. This closing notebook puts them side by side, measured in one run
# on the machine in front of you, and ends with one figure to keep.
#
# **The eight architectures.** The seven families of `cnncourse.models.SMALL_MODELS`, each
# sized for 32×32 images, plus an eighth: the *plain twin* of the small ResNet,
# `models.resnet_small(residual=False)`, the same layers without the shortcut connections.
# It is there so that the one idea of ResNet (the shortcut) can be seen on its own.
#
# **In this notebook you will**
# - recall in one table what each architecture introduced;
# - compare the ImageNet-size models at 224×224 (parameters and multiply-accumulates,
#   checked against the papers' figures) and place them on the ILSVRC chart;
# - write `count_macs`, which counts a model's multiply-accumulates with forward hooks;
# - measure the eight small models at 32×32 on this CPU: parameters, MACs, inference time
#   per image, and accuracy after the same short training;
# - write `pareto_front`, which finds the models that no other model beats on both cost
#   and accuracy, and apply it to the measurements;
# - draw the figure that sums up the course, and read what it does and does not say.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | what each architecture introduced; the ILSVRC chart | |
# | 2 | the ImageNet-size models at 224×224: parameters and MACs against the papers | |
# | 3 | counting MACs with forward hooks: exercise `count_macs` | 7 |
# | 4 | the eight small models at 32×32, measured on this CPU | |
# | 5 | which models are worth considering: exercise `pareto_front` | 5 |
# | 6 | the figure to keep, and what it says | |
#
# **The lecture's points, and where they are answered:** "How should we put them
# together?": sections 1 and 6 (the table of ideas, and the figure). The ILSVRC winners'
# chart, shown three times in the lecture: sections 1 and 6. The costs the lecture quoted
# per network ("60M parameters" for AlexNet, "138M" for VGG-16, "only 5 million" for
# GoogLeNet, the Inception module's operation counts): section 2, with the measured
# figures. ResNet's "residual connections" against a plain stack: section 4 (the plain
# twin). ResNeXt's "g pathways for computational efficiency (why?)": sections 3 and 4
# (a grouped convolution's MACs, and what they cost in time on a CPU).

# %% nbgrader={"grade_id": "setup", "locked": true}
import functools
import math
import statistics
import time

import matplotlib.pyplot as plt
import matplotlib.ticker
import torch
import torch.nn as nn

import cnncourse
from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)

# %% [markdown]
# ## 1. What each architecture introduced
#
# | year | network | layers | what it brought |
# |---|---|---|---|
# | 1998 | LeNet-5 | 5 | the pattern: convolution, pooling, convolution, pooling, dense |
# | 2012 | AlexNet | 8 | that pattern scaled up: ReLU, dropout, augmentation, GPUs, big data |
# | 2014 | VGG | 16, 19 | only 3×3 convolutions, stacked; channels double at each pool |
# | 2013 | NiN | 12 | 1×1 convolutions; global average pooling instead of dense layers |
# | 2014 | GoogLeNet | 22 | Inception modules, 1×1 bottlenecks, auxiliary classifiers |
# | 2015 | ResNet | 18-152 | residual connections $F(x) + x$, batch norm everywhere, GAP |
# | 2016 | ResNeXt | 50, 101 | cardinality: the 3×3 split into parallel paths (grouped conv) |
#
# In a sentence each: LeNet-5 showed that shared filters trained end to end by
# backpropagation read images. AlexNet made the same recipe work at ImageNet's scale,
# with ReLU (which trains faster than tanh), dropout in its big dense layers, data
# augmentation, two GPUs and 1.2 million labelled images. VGG replaced large filters by
# stacks of 3×3s (two see 5×5, three see 7×7, with fewer parameters and more
# non-linearities). NiN put a small dense network at every pixel (the 1×1 convolution)
# and let each class's score be the average of one feature map. GoogLeNet ran several
# filter sizes side by side and made that affordable with 1×1 reductions. ResNet let each
# block learn only a correction to its input, so that adding blocks cannot make the
# network worse to start with. ResNeXt made GoogLeNet's parallel paths uniform inside
# ResNet's block, which is one grouped convolution.
#
# (NiN came out between AlexNet and VGG; it is listed after VGG because the course met
# it there.) Each row keeps what worked before it: every network from AlexNet on uses
# ReLU, every one from NiN on ends with global average pooling except VGG, and ResNeXt is
# ResNet with GoogLeNet's many paths made uniform.
#
# The competition results the lecture showed three times: the ImageNet (ILSVRC) winners'
# top-5 error by year. The architectures of this course are in red.

# %%
plot.ilsvrc_chart(highlight=["AlexNet", "VGG", "GoogLeNet", "ResNet"])
plt.show()

# %% [markdown]
# Two of the eight are not on it: LeNet-5 predates ImageNet by a decade, and NiN was not
# a competition entry (its paper reports CIFAR-10, CIFAR-100, SVHN and MNIST). ResNeXt
# came second in ILSVRC 2016 with a top-5 error of 3.03% (the ILSVRC 2016 results; the
# winner, Trimps-Soushen, had 2.99%); the final figure adds it. From 28.2% in 2010 to about
# 3% in 2016: the error fell by a factor of nine in six years, and below the one human
# annotator's 5.1% in 2015.
#
# ## 2. The ImageNet-size models at 224×224
#
# What did each network cost? Each model of `cnncourse.models` at its ImageNet size
# (LeNet-5 at its own 32×32 grey input) is built on PyTorch's `meta` device, which keeps
# shapes but allocates no memory, and `shapes.summary` runs one image through it and adds
# up the parameters and the multiply-accumulates (MACs) of every layer. For ResNet and
# ResNeXt we take the 50-layer versions, which the papers compare with each other. Beside
# each count is the figure its paper (or the earlier notebooks) quote.

# %%
IMAGENET_MODELS = {  # name: (factory, input size, the paper's parameters, the paper's MACs)
    "LeNet-5": (models.lenet5, (1, 32, 32), 60_000, None),
    "AlexNet": (models.alexnet, (3, 224, 224), 60_000_000, None),
    "VGG-16": (models.vgg16, (3, 224, 224), 138_000_000, None),
    "NiN": (models.nin, (3, 224, 224), 7_600_000, None),
    "GoogLeNet": (models.googlenet, (3, 224, 224), 6_800_000, 1_500_000_000),
    "ResNet-50": (models.resnet50, (3, 224, 224), 25_500_000, 4_100_000_000),
    "ResNeXt-50": (models.resnext50_32x4d, (3, 224, 224), 25_000_000, 4_200_000_000),
}
imagenet = {}  # name: (parameters, MACs)
with torch.device("meta"):
    for name, (factory, size, _, _) in IMAGENET_MODELS.items():
        table = shapes.summary(factory(), size, verbose=False)
        imagenet[name] = (table.total_params, table.total_macs)
print(f"{'network':<11} {'parameters':>13} {'paper':>7} {'MACs per image':>16} {'paper':>6}")
for name, (params, macs) in imagenet.items():
    _, _, paper_params, paper_macs = IMAGENET_MODELS[name]
    paper_macs = "-" if paper_macs is None else f"{paper_macs / 1e9:.1f}G"
    print(f"{name:<11} {params:>13,} {paper_params / 1e6:>6.2f}M {macs:>16,} {paper_macs:>6}")

# %% [markdown]
# **The counts against the papers.** LeNet-5 has 61,706 parameters (LeCun et al. 1998:
# "60,000 trainable parameters"); AlexNet 61,100,840 (torchvision's one-GPU variant, whose
# count ours matches; the paper says 60 million); VGG-16 138,357,544 (the paper's 138M);
# NiN 7,595,176 (the 7.6M of the authors' ImageNet model); GoogLeNet 6,998,552 (Table 1's
# layer sizes give 7.0M; the lecture's "5 million" is too low, notebook 06); ResNet-50
# 25,557,032 and ResNeXt-50 25,028,904 (the ResNeXt paper's Table 1: 25.5M and 25.0M). The
# MACs: GoogLeNet 1.58 billion, near the paper's budget of 1.5; ResNet-50 4.09 billion and
# ResNeXt-50 4.23 billion against Table 1's 4.1 and 4.2 (the papers write "FLOPs" but
# count multiply-adds). AlexNet's 0.71 and VGG-16's 15.5 billion are not stated in their
# papers; 15.5 is the figure usually quoted for VGG-16. Notice the spread: VGG-16 needs
# 22 times AlexNet's arithmetic and 20 times GoogLeNet's parameters, while ResNeXt-50
# matches ResNet-50 on both by design.
#
# The cost chart of notebook 06 with the two networks that came after: MACs per image
# against the competition's top-5 error, marker area proportional to the parameters. The
# errors are those of the competition entries (several networks and many crops per
# image; ResNet's 3.57% came from an ensemble with 152-layer members), so the chart is a
# picture of the trend, not a measurement of these exact models.

# %%
plot.cost_chart({name: imagenet[name] for name in ("AlexNet", "VGG-16", "GoogLeNet", "ResNet-50")})
plt.show()


# %% [markdown]
# From AlexNet to VGG the error halved for 22 times the arithmetic; GoogLeNet did better
# still for a tenth of VGG's; ResNet-50 did better again for 2.6 times GoogLeNet's. Lower
# error has not always meant more arithmetic: it has meant arithmetic better spent.
#
# ## 3. Counting multiply-accumulates with forward hooks
#
# `shapes.summary` finds the MACs of any model, branches and shortcuts included, without
# reading its code. How? It runs one image through the model and, with a *forward hook* on
# each layer, looks at what each layer produced. A forward hook is a function that PyTorch
# calls right after a module's `forward`, with the module, its inputs and its output:
#
# ```python
# def hook(module, inputs, output):
#     print(type(module).__name__, tuple(output.shape))
#
# handle = layer.register_forward_hook(hook)
# model(x)          # hook runs every time layer runs
# handle.remove()   # and no more after this
# ```
#
# The cost of a layer follows from its output. Every value a convolution outputs is a dot
# product of one filter with the window under it: $C_\text{in}/g \cdot k_H \cdot k_W$
# multiply-accumulates, where $g$ is the number of groups (a grouped convolution's filter
# sees only the $C_\text{in}/g$ channels of its group; ResNeXt's paths are such groups).
# A dense layer's output value is a dot product of length `in_features`. So
#
# $$\text{MACs}_\text{conv} = \underbrace{C_\text{out} H_\text{out} W_\text{out}}_\text{output
# values} \cdot \frac{C_\text{in}}{g} k_H k_W, \qquad
# \text{MACs}_\text{linear} = (\text{output values}) \cdot \text{in\_features}.$$
#
# Stride, padding and dilation need no formula of their own: they are already in the
# output's size. As in the lecture, bias additions are not counted, and neither are
# pooling, activations and batch norm (the convolutions and dense layers dominate: they
# are some 99% of the arithmetic of every network here).
#
# ## Exercise: `count_macs` (7 points)
#
# Write `count_macs(model, input_size)`: the multiply-accumulates of the `nn.Conv2d` and
# `nn.Linear` layers of `model` for one image of `input_size = (C, H, W)`, an exact int.
# Put a forward hook on every such layer, however deeply it is nested (look at
# `model.modules()`), run one input of zeros of shape `(1, C, H, W)` through the model,
# and add up each layer's cost from its output, every time it runs (a layer called twice
# costs twice). Leave the model as you found it:
#
# - make the input with the dtype and on the device of the model's parameters (float32 on
#   the CPU if it has none), so a float64 model works, and so does one on the `meta`
#   device;
# - run in eval mode without gradients (in training mode, batch norm would update its
#   running statistics), then put the model back in the mode it was in;
# - remove your hooks afterwards, even if the forward pass fails (`try` / `finally`).
#
# If `input_size` is not three positive ints, raise a `ValueError` that names
# `input_size`. `shapes.summary` and `shapes.conv_macs` are the references it is graded
# against: do not call them.

# %% nbgrader={"grade_id": "count_macs", "solution": true}
def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-accumulates of model's Conv2d and Linear layers on one (C, H, W) image.

    Conv2d: (output values) * in_channels / groups * kH * kW; Linear: (output values) *
    in_features; each call of a layer counts; biases, pools, activations, norms count 0.
    The model is run once, in eval mode, without gradients, on zeros of shape
    (1, C, H, W) with its parameters' dtype and device; its mode is restored and the
    hooks removed.

    Raises:
        ValueError: if input_size is not three positive ints (the message names it).
    """
    ### BEGIN SOLUTION
    if (
        not isinstance(input_size, (tuple, list))
        or len(input_size) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)
    ):
        raise ValueError(f"input_size={input_size!r}: expected (C, H, W), three positive ints")
    total = 0

    def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        else:  # nn.Linear: one dot product of length in_features per output value
            total += output[0].numel() * module.in_features

    first = next(model.parameters(), None)
    dtype = torch.float32 if first is None else first.dtype
    device = torch.device("cpu") if first is None else first.device
    x = torch.zeros(1, *input_size, dtype=dtype, device=device)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
    ### END SOLUTION


# %%
example = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
print(f"{count_macs(example, (1, 6, 6)):,} MACs (4·4·4 outputs · 9, plus 64 · 10)")

# %% nbgrader={"grade": true, "grade_id": "test_count_macs", "locked": true, "points": 7}
# Tests for count_macs (7 points).
import math

import torch
import torch.nn as nn

import cnncourse.shapes as _shapes_module
from cnncourse import models as _models
from cnncourse.grading import banned, check_number, check_raises, fail, run_exercise

if "count_macs" not in globals():
    fail("count_macs", "not defined yet", hint="write the function and run its cell")
_summary, _conv_macs = _shapes_module.summary, _shapes_module.conv_macs
_gen = torch.Generator().manual_seed(90)


class _Twice(nn.Module):
    """A stem, a nested block, one convolution used twice, and a dense layer applied at
    every position of the map (a Linear on an (N, H*W, C) tensor)."""

    def __init__(self, c: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(c, 8, (3, 5), stride=(2, 1), padding=(1, 2))
        self.block = nn.Sequential(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4), nn.ReLU()),
            nn.BatchNorm2d(8),
        )
        self.shared = nn.Conv2d(8, 8, 1, bias=False)
        self.mix = nn.Linear(8, 6)

    def forward(self, x):
        x = self.shared(self.shared(self.block(self.stem(x))))  # the same 1×1 conv twice
        return self.mix(x.flatten(2).transpose(1, 2))  # (N, H*W, 6)


def _reference_macs(model, size):
    return _summary(model, size, verbose=False).total_macs


def _macs_hint(model, size, out):
    """What a wrong count most likely did, from the reference's rows."""
    rows = _summary(model, size, verbose=False)
    modules = dict(model.named_modules())
    convs = sum(r.macs for r in rows if r.kind == "Conv2d")
    linears = sum(r.macs for r in rows if r.kind == "Linear")
    total = convs + linears
    biases = sum(
        math.prod(r.output_shape)
        for r in rows
        if r.kind in ("Conv2d", "Linear") and modules[r.name].bias is not None
    )
    ungrouped = sum(
        r.macs * (modules[r.name].groups if r.kind == "Conv2d" else 1)
        for r in rows
        if r.kind in ("Conv2d", "Linear")
    )
    once = {}
    for r in rows:
        once[r.name] = r.macs
    top = sum(r.macs for r in rows if "." not in r.name and r.kind in ("Conv2d", "Linear"))
    per_vector = sum(
        (modules[r.name].in_features * modules[r.name].out_features if r.kind == "Linear"
         else r.macs)
        for r in rows
    )  # fmt: skip
    if linears and out == convs:
        return "nn.Linear layers count too: in_features MACs per output value"
    if convs and out == linears:
        return "count the nn.Conv2d layers too"
    if biases and out == total + biases:
        return "leave out the bias additions, as the lecture does"
    if ungrouped != total and out == ungrouped:
        return (
            "a grouped convolution's filter sees only in_channels / groups channels: divide "
            "by module.groups"
        )
    if sum(once.values()) != total and out == sum(once.values()):
        return "a layer that runs twice costs twice: add up every call of the hook"
    if top != total and out == top:
        return (
            "layers inside nested modules count too: hook every module of model.modules(), "
            "not only model.children()"
        )
    if per_vector != total and out == per_vector:
        return (
            "a dense layer applied at every position costs in_features MACs per output value: "
            "use the size of its output"
        )
    return (
        "each layer costs (its output values) · (in_channels / groups · kH · kW) for a "
        "convolution, (its output values) · in_features for a linear layer; stride, padding "
        "and dilation are in the output's size"
    )


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def _check_macs(model, size, what, expected=None, train_mode=True):
    call = f"count_macs({what}, {size!r})"
    model.train(train_mode)
    modes = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items() if v.device.type != "meta"}
    hooks = _hooks(model)
    try:
        out = run_exercise(count_macs, model, size, name=call)
    except (RuntimeError, TypeError) as err:
        fail(
            call,
            f"raised {type(err).__name__}: {' '.join(str(err).split())[:300]}",
            hint="make the input with the dtype and on the device of the model's parameters "
            "(next(model.parameters())), float32 on the CPU for a model without any",
        )
    except StopIteration:
        fail(call, "raised StopIteration", hint="a model may have no parameters at all: "
             "use next(model.parameters(), None) and float32 on the CPU then")  # fmt: skip
    if _hooks(model) != hooks:
        fail(call, f"{_hooks(model) - hooks} forward hook(s) left on the model",
             hint="remove your hooks afterwards (handle.remove()), in a finally block")  # fmt: skip
    if [m.training for m in model.modules()] != modes:
        fail(call, f"the model was in {'training' if train_mode else 'eval'} mode before and "
             "is not any more", hint="put the model back in the mode it was in: "
             "was_training = model.training, then model.train(was_training)")  # fmt: skip
    for k, v in model.state_dict().items():
        if k in state and not torch.equal(v, state[k]):
            fail(call, f"{k} changed", hint="run the model in eval mode: in training mode "
                 "batch norm updates its running statistics")  # fmt: skip
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})",
             hint="add up ints (numel() and the layers' sizes are ints)")  # fmt: skip
    if expected is None:
        expected = _reference_macs(model, size)
    if out != expected:
        check_number(out, expected, call, hint=_macs_hint(model, size, out))


torch.manual_seed(0)
_check_macs(
    nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 25, 3)),
    (2, 5, 5),
    "conv 3×3 then linear",
)
print("visible checks passed")
### BEGIN HIDDEN TESTS
_shapes_module.summary = banned("shapes.summary", "count_macs", "Count them yourself")
_shapes_module.conv_macs = banned("shapes.conv_macs", "count_macs", "Count them yourself")
try:
    torch.manual_seed(1)
    _cases = [
        (_Twice(), (3, 9, 14), "a nested model with a shared conv (7×13 input)"),
        (_Twice(2), (2, 1, 1), "the same on a 1×1 image"),
        (
            nn.Sequential(
                nn.Conv2d(6, 12, 3, stride=2, padding=1, groups=3),
                nn.Conv2d(12, 12, 3, padding=1, groups=12),  # depthwise
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(12 * 4 * 3, 7),
            ),
            (6, 16, 11),
            "grouped, depthwise and linear layers on 16×11",
        ),
        (
            nn.Sequential(nn.Sequential(nn.Sequential(nn.Conv2d(1, 3, 2, stride=3, bias=False)))),
            (1, 11, 7),
            "a conv three Sequentials deep",
        ),
        (nn.Sequential(nn.MaxPool2d(2), nn.ReLU()), (3, 4, 4), "a model with no parameters"),
        (_models.resnext_small(in_channels=2, num_classes=5), (2, 12, 20), "resnext_small"),
        (_models.googlenet_small(), (3, 32, 32), "googlenet_small"),
        (
            nn.Sequential(nn.Conv2d(3, 5, 3, stride=2), nn.Flatten(), nn.Linear(45, 4)).double(),
            (3, 7, 7),
            "a float64 model",
        ),
    ]
    for _model, _size, _what in _cases:
        _check_macs(_model, _size, _what)
    _check_macs(_Twice(), (3, 6, 6), "a nested model in eval mode", train_mode=False)
    # on the meta device: exact big ints (ResNeXt-50 at 224×224)
    with torch.device("meta"):
        _big = _models.resnext50_32x4d()
    _check_macs(_big, (3, 224, 224), "resnext50_32x4d on the meta device")
    _small = nn.Sequential(nn.Conv2d(1, 1, 1))
    for _bad in [(3, 32), (0, 8, 8), (3, -1, 4), (1, 8, 8, 8), "3x32x32", (3.0, 32, 32)]:
        check_raises(count_macs, _small, _bad, argument="input_size",
                     why="input_size must be three positive ints (C, H, W)")  # fmt: skip
finally:
    _shapes_module.summary, _shapes_module.conv_macs = _summary, _conv_macs
### END HIDDEN TESTS

# %% [markdown]
# Your function on the ImageNet-size models of section 2 (on the meta device), against
# `shapes.summary`:

# %%
with torch.device("meta"):
    for name, (factory, size, _, _) in IMAGENET_MODELS.items():
        mine = count_macs(factory(), size)
        same = "same as summary" if mine == imagenet[name][1] else "DIFFERS from summary"
        print(f"{name:<11} {mine:>16,} MACs  {same}")

# %% [markdown]
# ## 4. The eight small models at 32×32, measured on this CPU
#
# Now the models you can train here. The small variants keep each family's idea at a size
# that fits 32×32 images and a CPU: LeNet-5 as it was (tanh and average pooling); AlexNet's
# and VGG's layouts shrunk (VGG without batch norm, with dropout, as in the paper); NiN and
# GoogLeNet at a quarter and an eighth of their widths, with batch norm; ResNet-8 (three
# stages of one basic block, 16, 32 and 64 channels); its plain twin; and a ResNeXt with
# the same stages, cardinality 8. We train them on the offline `digits` (grey 8×8 digits
# upsampled to 32×32: 1,294 training and 359 test images), so each model takes one input
# channel, which changes its first layer only.
#
# **The training budget: the same steps for every model.** Each model sees the same
# 41 batches of 32 images in the same order (one epoch of `digits`), with Adam at a
# learning rate of 0.003. The alternative, the same wall-clock time for every model,
# asks a practical question (what does a CPU second buy?), but its answer changes with
# how busy the machine is, so two runs of this notebook would rank the models
# differently. With equal steps the accuracies are the same on every machine (up to
# floating-point noise) and the time each model needed is reported beside them. (A
# safety limit of 20 seconds per model stops a very slow run; the table says if it did.)
# Under nbgrader the training shrinks to two batches: nothing is graded on it.
#
# **Inference time** is measured per image on a batch of 64 (8 under nbgrader), with
# `torch.inference_mode()`, after one warm-up pass, as the median of seven passes (two
# under nbgrader). All models are measured in one run, one after the other, so they share
# the machine's state.

# %%
FACTORIES = {
    "LeNet-5": models.SMALL_MODELS["lenet5"],
    "AlexNet": models.SMALL_MODELS["alexnet"],
    "VGG": models.SMALL_MODELS["vgg"],
    "NiN": models.SMALL_MODELS["nin"],
    "GoogLeNet": models.SMALL_MODELS["googlenet"],
    "ResNet-8": models.SMALL_MODELS["resnet"],
    "plain-8": functools.partial(models.resnet_small, residual=False),
    "ResNeXt": models.SMALL_MODELS["resnext"],
}
STEPS = 2 if utils.grading_mode() else 41  # one epoch of digits in batches of 32
TIME_BATCH, REPEATS = (8, 2) if utils.grading_mode() else (64, 7)
EVAL_BATCHES = 1 if utils.grading_mode() else None  # None: the whole split
INPUT = (1, 32, 32)


def time_per_image(model: nn.Module, batch: int = TIME_BATCH, repeats: int = REPEATS) -> float:
    """Median seconds per image of model on a batch of random inputs, in eval mode."""
    x = torch.randn(batch, *INPUT)
    model.eval()
    with torch.inference_mode():
        model(x)  # warm-up: the first pass allocates and chooses kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) / batch


measured = {}  # name: dict of the measurements
for name, factory in FACTORIES.items():
    # fresh loaders and seed for each model: the same first weights' draw, and the same
    # batches in the same order
    train_loader, val_loader, test_loader = data.make_loaders("digits", 32, image_size=32)
    utils.seed_everything(0)
    net = factory(num_classes=10, in_channels=1)
    history = train.fit(
        net, train_loader, epochs=1, lr=3e-3, max_batches=STEPS, time_budget=20,
        progress=False, verbose=False,
    )  # fmt: skip
    measured[name] = {
        "params": shapes.count_params(net),
        "macs": count_macs(net, INPUT),
        "seconds": time_per_image(net),
        "train time": sum(history.epoch_time),
        "train loss": history.train_loss[-1],
        "stopped": history.stopped_early,
        "accuracy": train.evaluate(net, test_loader, max_batches=EVAL_BATCHES)["acc"],
        "val accuracy": train.evaluate(net, val_loader, max_batches=EVAL_BATCHES)["acc"],
    }
print(
    f"{'model':<10} {'parameters':>10} {'MACs':>11} {'ms/image':>9} {'train s':>8} "
    f"{'loss':>6} {'test acc':>8} {'val acc':>8}"
)
for name, m in measured.items():
    note = "  (stopped by the time limit)" if m["stopped"] else ""
    print(
        f"{name:<10} {m['params']:>10,} {m['macs']:>11,} {m['seconds'] * 1e3:>9.3f} "
        f"{m['train time']:>8.1f} {m['train loss']:>6.3f} {m['accuracy']:>8.3f} "
        f"{m['val accuracy']:>8.3f}{note}"
    )


# %% [markdown]
# **What came out** on this machine (2 CPU cores, no GPU, shared with other work while we
# measured). The accuracies and losses were the same in every run; the times are the
# range over our runs and will differ on yours, by up to two times on a busy machine.
# "loss" is the mean training loss over the 41 steps (ln 10 = 2.30 is a uniform guess):
#
# | model | parameters | MACs | ms per image | training (s) | loss | test acc. | val. acc. |
# |---|---|---|---|---|---|---|---|
# | LeNet-5 | 61,706 | 416,520 | 0.06 | 0.5-0.6 | 0.96 | 91.1% | 90.3% |
# | AlexNet | 301,018 | 11,788,928 | 0.46-0.55 | 1.9-2.1 | 2.22 | 46.5% | 43.1% |
# | VGG | 481,354 | 8,604,160 | 0.28-0.36 | 1.3-1.8 | 1.91 | 73.5% | 77.1% |
# | NiN | 388,914 | 7,665,664 | 0.24-0.27 | 1.8-2.8 | 0.94 | 85.2% | 86.8% |
# | GoogLeNet | 96,258 | 1,941,888 | 0.72-0.86 | 5.8-6.6 | 1.92 | 50.1% | 47.9% |
# | ResNet-8 | 77,754 | 12,206,720 | 0.28-0.44 | 1.8-3.5 | 1.89 | 49.6% | 50.7% |
# | plain-8 | 75,002 | 11,944,576 | 0.31-0.54 | 1.9-2.5 | 1.92 | 39.8% | 42.4% |
# | ResNeXt | 18,490 | 3,392,128 | 0.40-0.78 | 4.4-5.3 | 2.18 | 40.9% | 38.2% |
#
# (359 test and 144 validation images: one test image is 0.28 points, one validation
# image 0.69; chance is 10%.) Three things stand out.
#
# - **MACs do not predict time.** GoogLeNet does a sixth of ResNet-8's arithmetic (1.9
#   against 12.2 million MACs) and takes two to three times as long per image; ResNeXt
#   does a quarter and takes about one and a half times as long. Nine Inception modules
#   of four branches, or eight-way grouped convolutions, are many small operations, and
#   on a CPU each one has an overhead that its few MACs do not pay for. This is the
#   lecture's "g pathways for computational efficiency (why?)" seen from the other side:
#   grouped convolutions save MACs and parameters (ResNeXt has a quarter of ResNet-8's
#   parameters), but whether they save time depends on the hardware and the library; on
#   this CPU they do not.
# - **After one short epoch the oldest model wins.** LeNet-5 (tanh, average pooling, 62
#   thousand parameters) reaches 91.1%, ahead of every modern model, and it is the
#   fastest by a factor of four. The mean losses show why: LeNet-5 and NiN (85.2%, with
#   batch norm and global average pooling) have left the uniform guess far behind, while
#   the other six are still near it (1.9 to 2.2 against 2.30): they have barely started.
#   Their ranking after 41 steps says how fast each starts, not how far it would go.
# - **The shortcuts help from the start.** ResNet-8 is about ten points ahead of its plain
#   twin on both the test and the validation images (49.6% and 50.7% against 39.8% and
#   42.4%), from one seed and one short run, so take the size of the gap loosely. He et
#   al. saw the same early on: their plain and residual 18-layer networks end close on
#   ImageNet, but the residual one converges faster at the start; the plain network falls
#   behind for good from 34 layers, where it trains *worse* than its shallower version
#   (notebook 07 looks at deeper twins).
#
# ## 5. Which models are worth considering?
#
# If one model is both cheaper and more accurate than another, the other is never the
# right choice, whatever you value. The models that no other model beats are the *Pareto
# front*: a model A *beats* (dominates) a model B if A costs no more than B and is at
# least as accurate, and is strictly better in one of the two. Everything else is a
# trade-off, and choosing among the front needs a budget.
#
# ## Exercise: `pareto_front` (5 points)
#
# Write `pareto_front(points)`: `points` maps a model's name to `(cost, accuracy)`
# (numbers; lower cost is better, higher accuracy is better). Return the list of the
# names that no other point beats, sorted by cost, cheapest first (equal points by name).
# Two identical points do not beat each other: both are on the front. Raise a
# `ValueError` naming `points` if the mapping is empty, and one naming the model if a
# cost is negative. Leave `points` unchanged.

# %% nbgrader={"grade_id": "pareto_front", "solution": true}
def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """The names of the points no other point beats, sorted by cost (then by name).

    B beats A if cost_B <= cost_A and accuracy_B >= accuracy_A, with at least one of
    the two strict. points: {name: (cost, accuracy)}.

    Raises:
        ValueError: if points is empty (the message names points), or a cost is
            negative (the message names the model).
    """
    ### BEGIN SOLUTION
    if not points:
        raise ValueError("points: expected at least one {name: (cost, accuracy)} entry")
    for name, (cost, _) in points.items():
        if cost < 0:
            raise ValueError(f"points[{name!r}]: the cost {cost} is negative")

    def beaten(a: str) -> bool:
        cost_a, acc_a = points[a]
        return any(
            cost_b <= cost_a and acc_b >= acc_a and (cost_b < cost_a or acc_b > acc_a)
            for b, (cost_b, acc_b) in points.items()
            if b != a
        )

    front = [name for name in points if not beaten(name)]
    return sorted(front, key=lambda name: (points[name][0], name))
    ### END SOLUTION


# %%
print(pareto_front({"small": (1, 0.6), "big": (10, 0.9), "bad": (12, 0.8), "odd": (1, 0.5)}))

# %% nbgrader={"grade": true, "grade_id": "test_pareto_front", "locked": true, "points": 5}
# Tests for pareto_front (5 points).
import copy
import random

from cnncourse.grading import check_raises, fail, run_exercise

if "pareto_front" not in globals():
    fail("pareto_front", "not defined yet", hint="write the function and run its cell")


def _beats(p, q):
    return p[0] <= q[0] and p[1] >= q[1] and (p[0] < q[0] or p[1] > q[1])


def _expected_front(points):
    front = [a for a in points if not any(_beats(points[b], points[a]) for b in points if b != a)]
    return sorted(front, key=lambda a: (points[a][0], a))


def _front_hint(points, out, expected):
    out_set, exp_set = set(out), set(expected)
    if out_set == exp_set:
        return "sort the names by cost, cheapest first (equal points by name)"
    flipped = _expected_front({k: (-c, a) for k, (c, a) in points.items()})
    if out_set == set(flipped):
        return "a lower cost is better: B beats A if B costs no more and is at least as accurate"
    for a in exp_set - out_set:
        if any(points[b] == points[a] for b in points if b != a):
            return "two identical points do not beat each other: keep both"
    for a in out_set - exp_set:
        if any(
            _beats(points[b], points[a]) and (points[b][0] == points[a][0]
                                              or points[b][1] == points[a][1])
            for b in points
        ):  # fmt: skip
            return (
                "a point with the same cost and a higher accuracy (or the same accuracy at a "
                "lower cost) beats it: <= and >= with one of them strict"
            )
    return "keep exactly the names that no other point beats on both cost and accuracy"


def _check_front(points, what):
    call = f"pareto_front({what})"
    before = copy.deepcopy(points)
    out = run_exercise(pareto_front, points, name=call)
    if points != before or list(points) != list(before):
        fail(call, "it changed points", hint="leave the mapping unchanged: work on a copy")
    if not isinstance(out, list):
        fail(call, f"expected a list of names, got {type(out).__name__} ({out!r})"[:200],
             hint="return a list, sorted by cost")  # fmt: skip
    expected = _expected_front(points)
    if out != expected:
        fail(call, f"expected {expected}, got {out}"[:400], hint=_front_hint(points, out, expected))


_check_front({"a": (1, 0.5), "b": (2, 0.7), "c": (3, 0.6)}, "a, b and c")
print("visible checks passed")
### BEGIN HIDDEN TESTS
_rng = random.Random(9)
_cases = [
    ({"only": (5, 0.1)}, "one point"),
    ({"x": (3, 0.9), "y": (1, 0.2), "z": (2, 0.5)}, "all on the front, not in cost order"),
    ({"best": (1, 0.9), "p": (2, 0.8), "q": (3, 0.1), "r": (4, 0.85)}, "one beats them all"),
    ({"a": (2, 0.6), "b": (2, 0.8), "c": (5, 0.9)}, "a tie in cost"),
    ({"a": (1, 0.7), "b": (3, 0.7), "c": (4, 0.95)}, "a tie in accuracy"),
    ({"twin2": (2, 0.5), "twin1": (2, 0.5), "c": (1, 0.1)}, "two identical points"),
    ({"m": (0, 0.0), "n": (0.0, 0.0), "o": (0, 0.3)}, "zero costs"),
    ({"tiny": (1e-9, 0.55), "huge": (3e12, 0.99), "mid": (4e6, 0.56)}, "costs of any size"),
    ({"a": (1, 0.5), "b": (1.0, 0.5), "c": (1, 0.5)}, "three identical points"),
]
for _k in range(6):
    _n = _rng.randint(4, 12)
    _pts = {f"net{i}": (_rng.choice([1, 2, 3, 4, 5, 6]), _rng.choice([0.1, 0.3, 0.5, 0.7]))
            for i in range(_n)}  # fmt: skip
    _cases.append((dict(sorted(_pts.items(), key=lambda _: _rng.random())), f"random set {_k}"))
for _points, _what in _cases:
    _check_front(_points, _what)
check_raises(pareto_front, {}, argument="points", why="an empty mapping has no front")
check_raises(pareto_front, {"ok": (1, 0.5), "tiny_net": (-2, 0.9)}, argument="tiny_net",
             why="a cost cannot be negative")  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# The measured table, through your function: CPU time per image against test accuracy,
# then parameters against test accuracy.

# %%
by_time = pareto_front({n: (m["seconds"], m["accuracy"]) for n, m in measured.items()})
by_params = pareto_front({n: (m["params"], m["accuracy"]) for n, m in measured.items()})
print("worth considering for CPU time:", ", ".join(by_time))
print("worth considering for parameters:", ", ".join(by_params))

# %% [markdown]
# In our runs LeNet-5 alone was the front for time: it was both the fastest and the most
# accurate model, so after one epoch on digits it beats every other one. For parameters
# the front was ResNeXt (18 thousand parameters, 40.9%) and LeNet-5 (62 thousand, 91.1%):
# ResNeXt is the smallest model, so nothing beats it on size, however badly it does. A
# front of one or two models out of eight is what a tiny task and a tiny budget give; on
# ImageNet the front of section 2 is made of the modern networks.
#
# ## 6. The figure to keep
#
# Three panels: the competition's results by year; what the ImageNet-size networks cost
# (parameters against MACs, coloured by their top-5 error); and the small models as
# measured here (CPU time against accuracy, marker area by parameters, the Pareto front
# joined by a line).

# %%
COURSE = {"AlexNet", "VGG", "GoogLeNet", "ResNet", "ResNeXt"}
RESNEXT_2016 = plot.IlsvrcEntry(2016, "ResNeXt", 3.03, 101, "ILSVRC 2016 results, 2nd place")
winners = [*plot.ILSVRC_WINNERS, RESNEXT_2016]
top5 = {e.name: e.top5 for e in winners}
family = {"VGG-16": "VGG", "ResNet-50": "ResNet", "ResNeXt-50": "ResNeXt"}
black = {"color": "black"}

fig, axes = plt.subplots(1, 3, figsize=(17, 5.4), facecolor="white")
for ax in axes:
    ax.set_facecolor("white")  # opaque: the same figure in light and dark themes
    ax.tick_params(colors="black", which="both")
    for spine in ax.spines.values():
        spine.set_color("black")

ax = axes[0]  # (a) the competition by year
bars = ax.bar(
    range(len(winners)),
    [e.top5 for e in winners],
    color=["C3" if e.name in COURSE else "0.6" for e in winners],
)
ax.bar_label(bars, labels=[f"{e.top5:g}%" for e in winners], fontsize=8, **black)
ax.axhline(plot.HUMAN_TOP5, color="C2", ls="--", lw=1.2)
ax.text(len(winners) - 0.5, plot.HUMAN_TOP5 + 0.6, f"human {plot.HUMAN_TOP5}%", color="C2",
        fontsize=8, ha="right")  # fmt: skip
ax.set_xticks(range(len(winners)), [f"{e.year}\n{e.name}" for e in winners], fontsize=7, **black)
ax.set_ylabel("ILSVRC top-5 error (%)", **black)
ax.set_title("(a) ImageNet winners by year (red: in this course)", **black)

ax = axes[1]  # (b) the ImageNet-size models: parameters against MACs
cmap = plt.get_cmap("viridis_r")
offsets = {"NiN": (-8, 4, "right"), "ResNet-50": (-8, -14, "right"), "VGG-16": (-8, 6, "right"),
           "ResNeXt-50": (6, 6, "left")}
for name, (params, macs) in imagenet.items():
    error = top5.get(family.get(name, name))
    colour = "white" if error is None else cmap(error / 17)
    ax.scatter(macs / 1e9, params / 1e6, s=140, color=colour, edgecolors="black", zorder=3)
    label = f"{name}, {error:g}%" if error is not None else f"{name} (no ILSVRC entry)"
    dx, dy, ha = offsets.get(name, (8, -4, "left"))
    ax.annotate(label, (macs / 1e9, params / 1e6), xytext=(dx, dy), textcoords="offset points",
                fontsize=8, ha=ha, **black)  # fmt: skip
ax.set(xscale="log", yscale="log", xlim=(2e-4, 300), ylim=(0.03, 600))
ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
ax.set_xlabel("multiply-accumulates per image (billions, log)", **black)
ax.set_ylabel("parameters (millions, log)", **black)
ax.set_title("(b) at 224×224 (LeNet-5 at 32×32); colour: top-5 error", **black)
scale = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 17))
colourbar = fig.colorbar(scale, ax=ax, pad=0.01)
colourbar.set_label("top-5 error (%)", **black)
colourbar.ax.tick_params(colors="black")

ax = axes[2]  # (c) the small models as measured here
biggest = max(m["params"] for m in measured.values())
for i, (name, m) in enumerate(measured.items()):
    ms = m["seconds"] * 1e3
    ax.scatter(ms, 100 * m["accuracy"], s=30 + 700 * m["params"] / biggest, color=f"C{i}",
               alpha=0.7, edgecolors="black", zorder=3)  # fmt: skip
    ax.annotate(f"{name}\n{m['params'] / 1e3:.0f}K", (ms, 100 * m["accuracy"]), xytext=(8, -4),
                textcoords="offset points", fontsize=8, **black)  # fmt: skip
front = [(measured[n]["seconds"] * 1e3, 100 * measured[n]["accuracy"]) for n in by_time]
front_x, front_y = [x for x, _ in front], [y for _, y in front]
ax.plot(front_x, front_y, color="C3", lw=1.5, marker="x", zorder=4, label="Pareto front")
ax.set_xscale("log")
times = [m["seconds"] * 1e3 for m in measured.values()]
ticks = [t for t in (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5) if min(times) / 1.5 < t < max(times) * 1.8]
ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
ax.set_xlim(min(times) / 1.5, max(times) * 1.8)
ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
ax.set_xlabel("CPU inference time per image (ms, log; this machine)", **black)
ax.set_ylabel(f"test accuracy on digits after {STEPS} steps (%)", **black)
ax.set_title("(c) small models at 32×32, measured here; area: parameters", **black)
ax.legend(loc="upper right", fontsize=8)
for ax in axes:
    ax.grid(alpha=0.3, which="major")
fig.tight_layout()
plt.show()

# %% [markdown]
# **How to read it.** Panel (a) is what the papers achieved, panel (b) what their networks
# cost, panel (c) what happened here. Panel (b) shows two directions of progress: from
# AlexNet to VGG, more of everything (parameters and MACs) for a lower error; from VGG on,
# a lower error with *fewer* parameters (GoogLeNet, ResNet-50 and ResNeXt-50 all sit below
# VGG-16) and with a tenth to a quarter of its arithmetic. The parameters went out of the
# dense layers (NiN's global average pooling) and the arithmetic into cheap, well-placed
# convolutions (1×1 bottlenecks, grouped 3×3s).
#
# **What the ranking at 32×32 does and does not say.** Panel (c) comes from 41 steps of
# training on 1,294 grey 8×8 digits, measured on 2 CPU cores with no GPU. It says how
# quickly each design *starts* to learn an easy task, and what each costs per image on
# this processor. It does not say which architecture is better on ImageNet: there, with
# 1.2 million 224×224 images in 1,000 classes and 90 or more epochs on GPUs, the order
# of the papers holds (panel a), and the small, shallow LeNet-5 would be hopeless (it has
# no capacity for 1,000 classes of natural images). Three of our results are artefacts
# of the setting: LeNet-5 wins because the task is easy and the budget short; VGG and
# AlexNet train with dropout and without batch norm, which slows a short training
# (notebook 04 showed a small VGG without batch norm failing to learn where one with
# batch norm learns); GoogLeNet and ResNeXt are slow because a CPU runs many small or
# grouped convolutions inefficiently, which a GPU and a tuned library would hide in part.
# The lesson that carries over is the method: count (parameters, MACs), measure (time, on
# the hardware you have), and compare at an equal budget, stating which.
#
# ## Summary
#
# - Seven families, seven ideas: LeNet-5's convolution-pooling-dense pattern; AlexNet's
#   ReLU, dropout, data and GPUs; VGG's stacks of 3×3s; NiN's 1×1 convolutions and global
#   average pooling; GoogLeNet's Inception modules with bottlenecks; ResNet's residual
#   connections with batch norm; ResNeXt's cardinality (grouped convolutions).
# - At 224×224 (LeNet-5 at 32×32): 62K, 61.1M, 138.4M, 7.6M, 7.0M, 25.6M and 25.0M
#   parameters; 0.0004, 0.71, 15.5, 1.10, 1.58, 4.09 and 4.23 billion MACs per image,
#   matching the papers' figures. ILSVRC top-5 error fell from 16.4% (AlexNet, 2012) to
#   3.57% (ResNet, 2015) and 3.03% (ResNeXt, 2016).
# - `count_macs` adds up each layer's cost from its output with forward hooks:
#   (output values) · $C_\text{in}/g \cdot k_H k_W$ per convolution, (output values) ·
#   in_features per dense layer.
# - On this CPU, MACs did not predict time: GoogLeNet's and ResNeXt's many small and
#   grouped convolutions ran slowest per MAC. After one epoch on digits LeNet-5 was the
#   most accurate (91.1%) and the fastest: the Pareto front of a tiny task is not the one
#   of ImageNet. ResNet-8 was about ten points ahead of its plain twin: the shortcuts
#   speed up the start of training even at 8 layers.
#
# **Further questions (not graded)**
# 1. Train every model for five epochs instead of one (about two minutes). Which models
#    overtake LeNet-5, and does the Pareto front change?
# 2. Give every model the same wall-clock budget instead (`train.fit(..., time_budget=3)`
#    with `max_batches=None` and several epochs). How do GoogLeNet and ResNeXt fare, and
#    how much do the results change between two runs?
# 3. Replace the VGG by `models.vgg_small(in_channels=1, batch_norm=True, dropout=0.0)`
#    (notebook 04's recipe). How much of the gap to LeNet-5 was dropout and the missing
#    batch norm?
# 4. Time ResNeXt with `groups=1` in its 3×3 convolutions (more MACs). Is it slower or
#    faster per image on this CPU? What does that say about counting MACs?
# 5. Make `resnet_small(blocks_per_stage=3)` (ResNet-20) and its plain twin, and train
#    both for a few epochs. Does the gap between them grow with depth?
