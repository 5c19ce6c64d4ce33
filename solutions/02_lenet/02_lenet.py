# %% [markdown]
# # 02 · LeNet: putting the parts together
#
# In [`01_components`](../01_components/01_components.ipynb) you built the parts of a
# convolutional network one at a time: convolution, pooling, dense layers and activation
# functions. A network is what you get when you stack them so that each layer's output is
# the next layer's input. LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) is the
# classic example, and it is small enough that you can follow every number through it by
# hand: its whole stack has about sixty thousand parameters, which is a thousand times
# fewer than AlexNet, the subject of the next notebook.
#
# **In this notebook you will**
# - see how LeNet-5 turns a 32×32 image into ten class scores, stage by stage;
# - write LeNet-5 as a PyTorch module whose activation and pooling you can swap;
# - write the function that says how many numbers reach the first dense layer for any
#   input size, and see why 28×28 MNIST digits are enlarged to 32×32 first;
# - write its layer table (output shape and parameter count of every layer) as a function
#   of the input channels, image size and number of classes, from the formulas, and check
#   it against a summary the library measures;
# - train your LeNet on handwritten digits, look at its mistakes, its filters and its
#   feature maps;
# - answer two of the lecture's questions with experiments: sigmoid, tanh or ReLU?
#   Average or max pooling?
#
# | section | what happens | points |
# |---|---|---|
# | 1 | LeNet-5, layer by layer, and how our version differs from the paper | |
# | 2 | exercise: the `LeNet5` module | 15 |
# | 3 | exercise: how many features reach F5? | 5 |
# | 4 | exercise: the layer table | 10 |
# | 5 | training LeNet on digits | |
# | 6 | experiments: activations and pooling | |

# %% nbgrader={"grade_id": "setup", "locked": true}
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, models, plot, shapes, train, utils

device = utils.setup_notebook(seed=0)


# %% [markdown]
# ## 1. LeNet-5, layer by layer
#
# LeNet-5 was built to read handwritten characters, and a version of it read the amounts
# on bank cheques in the United States in the late 1990s. The lecture sums up its design
# in two lines:
#
# - the convolution filters are 5×5, applied at stride 1 (and without padding);
# - the subsampling (pooling) layers are 2×2, applied at stride 2.
#
# The paper names its layers with a letter for the kind (C for convolution, S for
# subsampling, F for fully connected) and a number for the position. Starting from a
# single-channel 32×32 image:
#
# | layer | what it does |
# |---|---|
# | input | one grey-level image of 32×32 |
# | C1 | 6 filters of 5×5, stride 1, no padding: 6 feature maps |
# | S2 | 2×2 subsampling of each map, stride 2 |
# | C3 | 16 filters of 5×5 over the 6 maps of S2: 16 feature maps |
# | S4 | 2×2 subsampling, stride 2: 16 maps of 5×5 |
# | F5 | 120 units (the paper's "C5", see below) |
# | F6 | 84 units |
# | output | one unit per class: 10 scores |
#
# How large are the maps of C1, S2 and C3? That is yours to work out in section 4.
#
# Each convolution shrinks the maps a little, because a 5×5 window fits in fewer places
# than there are pixels, and each pooling layer halves them. The sizes follow the formula
# from `01_components`: for an input of side $n$, kernel $k$, stride $s$ and padding $p$,
#
# $$n_{\text{out}} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .$$
#
# While the maps get smaller, they get more numerous (1, then 6, then 16): the network
# trades *where* for *what*. Early layers respond to local strokes at precise positions;
# later layers respond to combinations of strokes and care less about exactly where they
# are, which is what lets the network recognise a 7 that is shifted by a pixel or two.
#
# **Why F5 is a dense layer.** In the paper, the layer after S4 is a convolution, "C5",
# with 120 filters of 5×5. But S4's maps are themselves only 5×5, so each filter fits in
# exactly one place and produces a single number: every one of the 120 outputs looks at
# every input value, which is what a fully connected layer does. Flattening S4's 16 maps
# of 5×5 into one vector and applying a dense layer computes the same thing with the same
# weights. (On a larger input, C5 would produce maps bigger than 1×1 and the two would
# differ: that is one of the further questions at the end.)

# %% [markdown]
# ### Our LeNet-5 and the paper's
#
# The model in `cnncourse.models.lenet5`, and the one you will write, is the "classic
# form" of LeNet-5 found in most textbooks and courses. It keeps the layer sizes above
# and simplifies three details of the 1998 paper:
#
# 1. **C3 sees all of S2.** In the paper, each of the 16 C3 maps reads only a subset of
#    the 6 S2 maps, chosen by a fixed connection table (60 of the 96 possible map pairs).
#    The authors did this to save computation and parameters, and to push different maps
#    to learn different features. In our version every C3 filter spans all six input maps.
# 2. **Plain pooling.** The paper's subsampling layers add up each 2×2 block, multiply
#    the sum by a trainable coefficient, add a trainable bias and pass the result through
#    the activation function. We use plain average pooling (or max pooling), which has no
#    parameters.
# 3. **A linear output layer.** The paper's output units are Euclidean radial basis
#    function (RBF) units that compare F6's 84 numbers with a fixed 7×12 bitmap drawing
#    of each class. We use an ordinary dense layer that gives one score (logit) per class,
#    trained with the cross-entropy loss.
#
# The paper also uses a scaled hyperbolic tangent, $f(a) = 1.7159 \tanh(\tfrac{2}{3} a)$,
# as its activation; ours lets you choose between `tanh`, `sigmoid` and `relu`. With
# these changes our model has **61,706** parameters for a 1×32×32 input and ten classes,
# the "61K" the lecture quotes when it compares LeNet with AlexNet; the paper's own
# version has about 60,000. In section 4 you will find out where every one of them sits.

# %% [markdown]
# ## 2. Exercise: the `LeNet5` module (15 points)
#
# Write LeNet-5 as a subclass of `nn.Module`. Build the layers in `__init__` and register
# them in two `nn.Sequential` containers:
#
# - `self.features`: the convolutional part, C1 → activation → S2 → C3 → activation → S4;
# - `self.head`: the dense part, flatten → F5 → activation → F6 → activation → output.
#
# `forward(x)` runs the two in turn. The output layer has no activation: it returns raw
# scores (logits), and `nn.CrossEntropyLoss` applies the softmax itself.
#
# The constructor takes the activation and the pooling by name, so that section 6 can
# compare them: `activation` is `"tanh"`, `"sigmoid"` or `"relu"` (the modules `nn.Tanh`,
# `nn.Sigmoid`, `nn.ReLU`), and `pool` is `"avg"` or `"max"` (`nn.AvgPool2d`,
# `nn.MaxPool2d`). Any other value must raise a `ValueError` whose message names the
# argument, so a typo such as `activation="Relu"` fails at once with a clear message
# instead of somewhere deep inside training. A dictionary from names to classes keeps
# this short. Create a new activation module for each of the four places (`act()` each
# time): sharing one instance would compute the same, since activations hold no weights,
# but separate modules keep `print(model)`, the summary and hooks one row per layer.
#
# **How it is graded.** The first test cell checks the output shape, the dtype and the
# parameter count. The second checks what your model *computes*: it copies the weights
# of the reference model `models.lenet5(...)` into yours with `grading.copy_weights` and
# compares the outputs on random images, in float32 and, after `.double()`, in float64
# (so nothing in `forward` may force a dtype). `copy_weights` pairs the two models'
# weights by the order in which the layers were registered, so build them in the order of
# the docstring (convolutions and dense layers with their biases, as `nn.Conv2d` and
# `nn.Linear` have by default).

# %% nbgrader={"grade_id": "lenet_module", "solution": true}
class LeNet5(nn.Module):
    """LeNet-5 for 32×32 images: (N, in_channels, 32, 32) -> logits (N, num_classes).

    LeNet5(num_classes=10, in_channels=1, activation="tanh", pool="avg")

    Layers, registered in this order (the tests copy reference weights in by position):

    self.features, an nn.Sequential:
        C1   conv 5×5, in_channels -> 6, stride 1, no padding
             activation
        S2   pool 2×2, stride 2
        C3   conv 5×5, 6 -> 16, stride 1, no padding
             activation
        S4   pool 2×2, stride 2                                    (N, 16, 5, 5)
    self.head, an nn.Sequential:
             flatten                                               (N, 400)
        F5   linear 400 -> 120, then activation                    (N, 120)
        F6   linear 120 -> 84, then activation                     (N, 84)
        F7   linear 84 -> num_classes, no activation (logits)      (N, num_classes)

    Args:
        num_classes: number of output scores.
        in_channels: channels of the input images (1 for grey digits, 3 for colour).
        activation: "tanh", "sigmoid" or "relu": nn.Tanh, nn.Sigmoid or nn.ReLU, used
            after C1, C3, F5 and F6.
        pool: "avg" or "max": nn.AvgPool2d or nn.MaxPool2d, used for S2 and S4.

    Raises:
        ValueError: for any other ``activation`` or ``pool``, with a message that names
            the argument, e.g. "activation='Relu': expected 'tanh', 'sigmoid' or 'relu'".
    """

    ### BEGIN SOLUTION
    ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
    POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "tanh",
        pool: str = "avg",
    ) -> None:
        super().__init__()
        if activation not in self.ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r}: expected one of {list(self.ACTIVATIONS)}"
            )
        if pool not in self.POOLS:
            raise ValueError(f"pool={pool!r}: expected one of {list(self.POOLS)}")
        act, pooling = self.ACTIVATIONS[activation], self.POOLS[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: (N, 6, 28, 28)
            act(),
            pooling(kernel_size=2, stride=2),  # S2: (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: (N, 16, 10, 10)
            act(),
            pooling(kernel_size=2, stride=2),  # S4: (N, 16, 5, 5)
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # (N, 400)
            nn.Linear(16 * 5 * 5, 120),  # F5
            act(),
            nn.Linear(120, 84),  # F6
            act(),
            nn.Linear(84, num_classes),  # F7: logits, no activation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 16, 5, 5)
        return self.head(x)  # (N, num_classes)
    ### END SOLUTION


# %% [markdown]
# Before you run the tests, push a batch of blank images through your model one layer at
# a time and look at the shape after each layer (keep these in mind for section 4). This
# cell is yours to change.

# %%
net = LeNet5()
x = torch.zeros(2, 1, 32, 32)
print(f"{'input':<22}{tuple(x.shape)}")
for part in ("features", "head"):
    for i, layer in enumerate(getattr(net, part)):
        x = layer(x)
        print(f"{part}.{i} {type(layer).__name__:<14}{tuple(x.shape)}")
print("parameters:", shapes.count_params(net))

# %% [markdown]
# The first test cell checks the shape and dtype of the output and the parameter count
# (5 points); its hidden part tries a batch of one image, every activation and pooling
# together with other numbers of input channels and classes, and misspelt names.

# %% nbgrader={"grade": true, "grade_id": "test_lenet_shapes", "locked": true, "points": 5}
# Tests for LeNet5: output shape, dtype and parameter count (5 points).
from cnncourse.grading import check_number, check_raises, check_shape, fail, run_exercise

if "LeNet5" not in globals():
    fail("LeNet5", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(20)


def _shape_check(kwargs, x):
    """Build LeNet5(**kwargs), count its parameters, run x through it, check the logits'
    shape and dtype."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    label = f"LeNet5({args})(x) for x of shape {tuple(x.shape)}"
    model = run_exercise(LeNet5, name=f"LeNet5({args})", **kwargs)
    if not isinstance(model, nn.Module):
        fail(f"LeNet5({args})", f"expected an nn.Module, got {type(model).__name__}")
    check_number(shapes.count_params(model), shapes.count_params(models.lenet5(**kwargs)),
                 f"number of parameters of LeNet5({args})",
                 hint="compare your layers with the docstring (kernel sizes, channels, biases): "
                      "C1 reads in_channels input maps, the output layer has num_classes units")
    try:
        with torch.no_grad():  # through a function of x: run_exercise checks x is unchanged
            out = run_exercise(lambda x: model(x), x, name=f"LeNet5({args}).forward")
    except RuntimeError as err:
        fail(label, f"failed ({err})",
             hint="compare each layer with the docstring (kernel sizes, strides, padding)")
    expected = (len(x), kwargs.get("num_classes", 10))
    if isinstance(out, torch.Tensor) and tuple(out.shape) == expected[1:]:
        fail(label, f"expected shape {expected}, got {tuple(out.shape)}",
             hint="keep the batch dimension, also for a batch of one image (no .squeeze())")
    check_shape(out, expected, label)
    if out.dtype != x.dtype:
        fail(label, f"expected dtype {x.dtype}, got {out.dtype}")
    return model


_model = _shape_check({}, torch.randn(4, 1, 32, 32, generator=_gen))  # 61,706 parameters
print("visible checks passed")
### BEGIN HIDDEN TESTS
for _attr in ("features", "head"):
    if not isinstance(getattr(_model, _attr, None), nn.Sequential):
        fail("LeNet5()", f"expected an nn.Sequential attribute `{_attr}`",
             hint="register the layers in self.features and self.head, as the docstring asks")
# A batch of one image still gives a batch of logits, shape (1, num_classes).
_shape_check({}, torch.randn(1, 1, 32, 32, generator=_gen))
_shape_check({"num_classes": 7, "in_channels": 3}, torch.randn(1, 3, 32, 32, generator=_gen))
# Every activation and pooling, with other numbers of input channels and classes at the same
# time: C1 takes in_channels maps, the output layer has num_classes units.
_sizes = [(1, 10), (3, 7), (2, 4), (3, 10), (1, 2), (4, 7)]
_combos = [(_a, _p) for _a in ("tanh", "sigmoid", "relu") for _p in ("avg", "max")]
for (_act, _pool), (_c, _k) in zip(_combos, _sizes, strict=True):
    _kwargs = {"num_classes": _k, "in_channels": _c, "activation": _act, "pool": _pool}
    _shape_check(_kwargs, torch.randn(3, _c, 32, 32, generator=_gen))
# Unknown names raise ValueError and say which argument is wrong.
_bad = (({"activation": "swish"}, "activation"), ({"activation": "Relu"}, "activation"),
        ({"pool": "min"}, "pool"))
for _kwargs, _arg in _bad:
    check_raises(LeNet5, argument=_arg, why=f"{_kwargs[_arg]!r} is not a valid {_arg}",
                 **_kwargs)
### END HIDDEN TESTS

# %% [markdown]
# The second test cell checks the computation (10 points). The visible part tests the
# default model (tanh and average pooling) in eval mode; the hidden part tests every
# activation and pooling together with other numbers of input channels and classes, train
# mode, float64, inputs of large magnitude, and the gradients with respect to the input
# images and every parameter.

# %% nbgrader={"grade": true, "grade_id": "test_lenet_function", "locked": true, "points": 10}
# Tests for LeNet5 by function: with the reference's weights copied in, your model must
# compute the reference's logits (10 points).
from cnncourse.grading import check_grads, check_tensor, copy_weights, fail, run_exercise

if "LeNet5" not in globals():
    fail("LeNet5", "not defined yet", hint="write the class and run its cell")


def _pair(kwargs, gen):
    """The reference with random weights (biases too), and the student's model with a copy."""
    ref = models.lenet5(**kwargs)
    with torch.no_grad():
        for p in ref.parameters():
            scale = p[0].numel() ** -0.5 if p.dim() > 1 else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    mine = run_exercise(LeNet5, name=f"LeNet5(**{kwargs})", **kwargs)
    return ref, copy_weights(ref, mine)


def _label(kwargs, mode, inputs=""):
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"LeNet5({args}) in {mode} mode{inputs}, reference weights copied in"


def _forward(model, x, label):
    """model(x) through run_exercise (x must stay unchanged), failing readably."""
    try:
        return run_exercise(lambda x: model(x), x, name=label)
    except RuntimeError as err:
        hint = ("keep the input's dtype: nothing in forward may call .float() or ask for "
                "torch.float32" if x.dtype == torch.float64 else
                "compare each layer with the docstring (kernel sizes, strides, padding)")
        fail(label, f"the forward pass failed ({err})", hint=hint)


def _compare(mine, ref, x, label):
    """mine(x) against ref(x): self.features (C1 to S4) first, then the logits."""
    with torch.no_grad():
        out, expected = _forward(mine, x, label), ref(x)
        if isinstance(getattr(mine, "features", None), nn.Module):
            check_tensor(mine.features(x), ref.features(x), f"{label}: self.features(x)")
            label += " (self.features(x) matches, so look at self.head)"
    check_tensor(out, expected, f"{label}: the logits")


_gen = torch.Generator().manual_seed(21)
_ref, _mine = _pair({}, _gen)
_ref.eval()
_mine.eval()
_compare(_mine, _ref, torch.randn(8, 1, 32, 32, generator=_gen), _label({}, "eval"))
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Every activation and pooling, each with other numbers of input channels and classes.
_sizes = [(1, 10), (3, 7), (2, 4), (3, 10), (1, 2), (4, 7)]
_combos = [(_a, _p) for _a in ("tanh", "sigmoid", "relu") for _p in ("avg", "max")]
for (_act, _pool), (_c, _k) in zip(_combos, _sizes, strict=True):
    _kwargs = {"num_classes": _k, "in_channels": _c, "activation": _act, "pool": _pool}
    _ref, _mine = _pair(_kwargs, _gen)
    _x = torch.randn(5, _c, 32, 32, generator=_gen)
    for _mode in ("eval", "train"):
        _ref.train(_mode == "train")
        _mine.train(_mode == "train")
        _compare(_mine, _ref, _x, _label(_kwargs, _mode))
# The dtype follows the input: converted with .double(), the model computes in float64.
for _kwargs in ({}, {"num_classes": 7, "in_channels": 3, "activation": "relu", "pool": "max"}):
    _ref, _mine = _pair(_kwargs, _gen)
    _ref.double().eval()
    _mine.double().eval()
    _x = torch.randn(4, _kwargs.get("in_channels", 1), 32, 32, generator=_gen, dtype=torch.float64)
    _compare(_mine, _ref, _x, _label(_kwargs, "eval", ", converted with .double(), on float64 "
                                     "images"))
# Inputs of large magnitude (float32): saturated sigmoids, large ReLU outputs.
for _kwargs in ({"activation": "relu", "pool": "max"},
                {"in_channels": 2, "activation": "sigmoid", "pool": "avg"}):
    _ref, _mine = _pair(_kwargs, _gen)
    _x = 1000 * torch.randn(4, _kwargs.get("in_channels", 1), 32, 32, generator=_gen)
    _compare(_mine, _ref, _x, _label(_kwargs, "train", " on large inputs (randn × 1000)"))
# Gradients flow back to the input and to every parameter exactly as through the reference.
for _kwargs in ({}, {"num_classes": 7, "in_channels": 3, "activation": "relu", "pool": "max"},
                {"activation": "sigmoid"}):
    _ref, _mine = _pair(_kwargs, _gen)
    _xm = torch.randn(3, _kwargs.get("in_channels", 1), 32, 32, generator=_gen,
                      requires_grad=True)
    _xr = _xm.detach().clone().requires_grad_(True)
    _pairs = {"the input": (_xm, _xr)}
    for (_n, _pm), _pr in zip(_mine.named_parameters(), _ref.parameters(), strict=True):
        _pairs[f"parameter {_n}"] = (_pm, _pr)
    _label_grad = _label(_kwargs, "train")
    check_grads(_forward(_mine, _xm, _label_grad), _ref(_xr), _pairs, _label_grad,
                generator=_gen)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Exercise: how many features reach F5? (5 points)
#
# F5 is a dense layer, so its weight matrix has one column per number it receives: the
# 16 maps that leave S4, flattened. How many that is depends on the size of the input
# image, and it must match exactly, or the matrix multiplication fails with a shape
# error. (This is the most common error message when one adapts a CNN to a new image
# size: "mat1 and mat2 shapes cannot be multiplied".)
#
# **Why 32×32?** MNIST's digits are 28×28 pixels, and the handwriting itself fits in a
# 20×20 box at their centre, yet LeNet-5 takes 32×32 images. The paper pads the digits
# with background so that the input is larger than the largest character. The reason is
# the border: a 5×5 convolution without padding sees a corner pixel in only one window
# position, any other pixel on the edge in five, and a pixel in the middle in 25. By
# adding a margin, the strokes of the digit, even their end points and corners near the
# edge of the box, sit where the filters of C1 and C3 look at them from every side, and
# near the centre of what the high-level units see. It also fixes the size of everything
# downstream. In this course the data loader *resizes* the images to 32×32
# (`image_size=32`) rather than padding them, which has the same effect on the shapes.
#
# Write `lenet_flat_features(image_size)`, which returns the number of values that enter
# F5 for a square single-channel input of side `image_size`. Follow the side length
# through the four stages with the output-size formula; pooling rounds *down* (floor),
# as PyTorch does by default, so an odd side loses its last row and column. If the input
# is too small for some stage (its window would not fit, so a side would fall below 1),
# raise a `ValueError` whose message names `image_size`.

# %% nbgrader={"grade_id": "flat_features", "solution": true}
def lenet_flat_features(image_size: int) -> int:
    """Number of values that enter F5 for a 1×image_size×image_size input.

    LeNet's features: C1 (5×5 conv, stride 1, no padding), S2 (2×2 pool, stride 2),
    C3 (5×5 conv, stride 1, no padding), S4 (2×2 pool, stride 2). Each stage maps the side
    length n to floor((n - k) / s) + 1; S4's 16 maps of h×w are flattened into 16·h·w
    numbers.

    Example: lenet_flat_features(32) == 400, the 16 maps of 5×5 the docstring of LeNet5
    shows.

    Raises:
        ValueError: if the image is too small for the layers (some stage's side would be
            below 1); the message names ``image_size``.
    """
    ### BEGIN SOLUTION
    size = image_size
    for stage, kernel, stride in (("C1", 5, 1), ("S2", 2, 2), ("C3", 5, 1), ("S4", 2, 2)):
        size = (size - kernel) // stride + 1  # floor division: rounds down, like torch
        if size < 1:
            raise ValueError(
                f"image_size={image_size}: too small for LeNet, the {kernel}×{kernel} window "
                f"of {stage} does not fit in its input"
            )
    return 16 * size * size
    ### END SOLUTION


# %%
for side in (32, 40, 64):
    print(f"{side}×{side} input: {lenet_flat_features(side)} values reach F5")

# %% nbgrader={"grade": true, "grade_id": "test_flat_features", "locked": true, "points": 5}
# Tests for lenet_flat_features (5 points).
from cnncourse.grading import check_number, check_raises, fail, run_exercise


def _check_flat(size, expected):
    out = run_exercise(lenet_flat_features, size, name=f"lenet_flat_features({size})")
    if isinstance(out, bool) or not isinstance(out, int):
        fail(f"lenet_flat_features({size})", f"expected an int, got {type(out).__name__} "
             f"({out!r})", hint="use // for a division that rounds down")
    check_number(out, expected, f"lenet_flat_features({size})",
                 hint="each 5×5 conv takes 4 off the side; each 2×2/2 pool halves it, "
                      "rounding down at every stage")


_check_flat(32, 400)
check_raises(lenet_flat_features, 10, why="a 10×10 image is too small for LeNet's layers")
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Other sizes, odd ones where pooling rounds down, the smallest that fits (16: S4 is 1×1),
# and large ones; measured by running the reference's layers on a blank image.
_features = models.lenet5().features.eval()
for _size in (28, 33, 35, 37, 47, 16, 17, 64, 100, 227):
    with torch.no_grad():
        _check_flat(_size, _features(torch.zeros(1, 1, _size, _size)).numel())
for _size in (15, 12, 8, 1, 0, -3):
    check_raises(lenet_flat_features, _size, argument="image_size",
                 why=f"nothing is left of a {_size}×{_size} image after S4")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Exercise: the layer table (10 points)
#
# Where do the 61,706 parameters sit, and what happens to the shapes when the input
# changes? Write `lenet_table(in_channels, image_size, num_classes)`: LeNet-5's layer table
# for inputs of `in_channels` maps of `image_size`×`image_size` pixels and `num_classes`
# classes. It returns a dict that maps each layer, `"C1"`, `"S2"`, `"C3"`, `"S4"`, `"F5"`,
# `"F6"` and `"F7"` (the output layer), to a pair: its output shape **without** the batch
# dimension, and its number of learnable parameters. Write shapes as tuples of ints:
# `(C, H, W)` for a stack of feature maps, `(features,)` for a vector (a one-element tuple
# needs the comma).
#
# The formulas you need:
#
# - a convolution with $C_{\text{in}}$ input maps, $C_{\text{out}}$ filters of $k \times k$
#   and a bias per filter has
#   $$C_{\text{out}} \cdot (C_{\text{in}} \cdot k \cdot k + 1)$$
#   parameters: each filter spans *all* input maps, and each has one bias;
# - a dense layer from $n_{\text{in}}$ to $n_{\text{out}}$ units has
#   $n_{\text{out}} \cdot (n_{\text{in}} + 1)$ parameters: a weight per input and output,
#   and a bias per output;
# - pooling (in our version) learns nothing;
# - spatial sizes follow $n_{\text{out}} = \lfloor (n + 2p - k)/s \rfloor + 1$.
#
# Work the numbers out from the arguments with these formulas, as arithmetic or with the
# calculators from `01_components`: `shapes.conv_output_size`, `shapes.pool_output_size`,
# `shapes.conv_params` and `shapes.linear_params`. Your `lenet_flat_features` from section
# 3 is there to be used too. The cells after the tests print your table next to the one
# `shapes.summary` measures on the real model, and draw it.
#
# The table is graded in three parts, on inputs and numbers of classes you have not seen
# (odd sizes included): the convolutions C1 and C3 (4 points), the pooling layers S2 and
# S4 (2 points) and the dense layers F5, F6 and F7 (3 points). A row counts as right when
# it matches the reference, or when it follows correctly from your own row before it, so
# one slip costs one part. The visible checks only look at the format. The total comes
# after them (1 point).

# %% nbgrader={"grade_id": "lenet_table", "solution": true}
def lenet_table(in_channels: int = 1, image_size: int = 32, num_classes: int = 10) -> dict:
    """LeNet-5's layer table for (in_channels, image_size, image_size) inputs and
    num_classes classes.

    Returns {layer: (output shape without the batch dimension, number of parameters)} for
    the layers "C1", "S2", "C3", "S4", "F5", "F6", "F7" of LeNet5's docstring (activations
    and the flatten are left out): {"C1": ((C, H, W), n), ..., "F7": ((features,), n)},
    every entry an int. Parameters count weights and biases. image_size is at least 16,
    the smallest input LeNet's layers fit in.
    """
    ### BEGIN SOLUTION
    c1 = shapes.conv_output_size(image_size, 5)  # 5×5, stride 1, no padding: 4 off the side
    s2 = shapes.pool_output_size(c1, 2, stride=2)  # halves the side, rounding down
    c3 = shapes.conv_output_size(s2, 5)
    s4 = shapes.pool_output_size(c3, 2, stride=2)
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),  # each filter spans all input maps
        "S2": ((6, s2, s2), 0),  # pooling learns nothing
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (lenet_flat_features(image_size) + 1)),  # S4, flattened
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_table_conv", "locked": true, "points": 4}
# Tests for lenet_table: the convolutions C1 and C3 (4 points).
from cnncourse.grading import (
    check_shape_answer,
    fail,
    run_exercise,
    table_row,
    window_shape,
    with_reference,
)

for _args in ((), (3, 36, 7)):  # filled in, in the right format
    _table = run_exercise(lenet_table, *_args, name=f"lenet_table{_args}")
    for _name in ("C1", "C3"):
        table_row(_table, _name, table_name=f"lenet_table{_args}")
print("visible checks passed")
### BEGIN HIDDEN TESTS
from cnncourse.models.lenet import lenet5_flat_features, lenet5_rows

_CONFIGS = [(1, 32, 10), (3, 36, 7), (2, 33, 5), (1, 35, 10), (4, 47, 3), (1, 16, 1)]


def _follows(table, prev, k, s, channels=None):  # your row `prev`, through the window
    entry = table.get(prev)
    return window_shape(entry[0] if isinstance(entry, tuple) and entry else None, k, s, channels)


for _c, _s, _k in _CONFIGS:
    _call = f"lenet_table(in_channels={_c}, image_size={_s}, num_classes={_k})"
    with with_reference(globals(), lenet_flat_features=lenet5_flat_features):
        _table = run_exercise(lenet_table, in_channels=_c, image_size=_s, num_classes=_k,
                              name=_call)
    _expected = lenet5_rows(_c, _s, _k)
    for _name, _c_in, _own in (("C1", _c, None), ("C3", 6, _follows(_table, "S2", 5, 1, 16))):
        _shape, _params = table_row(_table, _name, table_name=_call)
        _r = _expected[_name]
        if _shape != _own:
            check_shape_answer(_shape, _r.output_shape, f"{_call}, row {_name}",
                               "each 5×5 convolution without padding takes 4 pixels off the "
                               "height and width")
        if _params != _r.params:
            _c_out, _hint = _r.output_shape[0], ""
            if _params == _r.params - _c_out:
                _hint = f"did you forget the {_c_out} biases?"
            elif _params in (_c_out * 25, _c_out * 26) and _c_in > 1:
                _hint = f"each filter spans all {_c_in} input maps, so it has {_c_in}×5×5 weights"
            elif _params in (_r.macs, _r.macs + _c_out):
                _hint = "that counts multiply-accumulates; filters are shared over all positions"
            fail(f"{_call}, row {_name}", f"expected {_r.params} parameters, got {_params}",
                 hint=_hint)
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_table_pool", "locked": true, "points": 2}
# Tests for lenet_table: the pooling layers S2 and S4 (2 points).
from cnncourse.grading import (
    check_shape_answer,
    fail,
    run_exercise,
    table_row,
    window_shape,
    with_reference,
)

for _args in ((), (3, 36, 7)):
    _table = run_exercise(lenet_table, *_args, name=f"lenet_table{_args}")
    for _name in ("S2", "S4"):
        table_row(_table, _name, table_name=f"lenet_table{_args}")
print("visible checks passed")
### BEGIN HIDDEN TESTS
from cnncourse.models.lenet import lenet5_flat_features, lenet5_rows

_CONFIGS = [(1, 32, 10), (3, 36, 7), (2, 33, 5), (1, 35, 10), (4, 47, 3), (1, 16, 1)]


def _follows(table, prev, k, s, channels=None):  # your row `prev`, through the window
    entry = table.get(prev)
    return window_shape(entry[0] if isinstance(entry, tuple) and entry else None, k, s, channels)


for _c, _s, _k in _CONFIGS:
    _call = f"lenet_table(in_channels={_c}, image_size={_s}, num_classes={_k})"
    with with_reference(globals(), lenet_flat_features=lenet5_flat_features):
        _table = run_exercise(lenet_table, in_channels=_c, image_size=_s, num_classes=_k,
                              name=_call)
    _expected = lenet5_rows(_c, _s, _k)
    for _name, _prev in (("S2", "C1"), ("S4", "C3")):
        _shape, _params = table_row(_table, _name, table_name=_call)
        _r = _expected[_name]
        if _shape != _follows(_table, _prev, 2, 2):
            _hint = "a 2×2 pool at stride 2 halves the height and the width, rounding down"
            if _shape == _follows(_table, _prev, 1, 1):
                _hint += " (you wrote the shape of the convolution before it)"
            check_shape_answer(_shape, _r.output_shape, f"{_call}, row {_name}", _hint)
        if _params != 0:
            fail(f"{_call}, row {_name}", f"expected 0 parameters, got {_params}",
                 hint="our pooling only averages (or takes the maximum): it learns nothing")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "test_table_dense", "locked": true, "points": 3}
# Tests for lenet_table: the dense layers F5, F6 and F7 (3 points).
from cnncourse.grading import (
    check_shape_answer,
    fail,
    run_exercise,
    table_row,
    window_shape,
    with_reference,
)

for _args in ((), (3, 36, 7)):
    _table = run_exercise(lenet_table, *_args, name=f"lenet_table{_args}")
    for _name in ("F5", "F6", "F7"):
        table_row(_table, _name, table_name=f"lenet_table{_args}")
print("visible checks passed")
### BEGIN HIDDEN TESTS
from cnncourse.models.lenet import lenet5_flat_features, lenet5_rows

_CONFIGS = [(1, 32, 10), (3, 36, 7), (2, 33, 5), (1, 35, 10), (4, 47, 3), (1, 16, 1)]


def _follows(table, prev, k, s, channels=None):  # your row `prev`, through the window
    entry = table.get(prev)
    return window_shape(entry[0] if isinstance(entry, tuple) and entry else None, k, s, channels)


for _c, _s, _k in _CONFIGS:
    _call = f"lenet_table(in_channels={_c}, image_size={_s}, num_classes={_k})"
    with with_reference(globals(), lenet_flat_features=lenet5_flat_features):
        _table = run_exercise(lenet_table, in_channels=_c, image_size=_s, num_classes=_k,
                              name=_call)
    _expected = lenet5_rows(_c, _s, _k)
    _s4 = _follows(_table, "S4", 1, 1)  # your S4 row, if it is a (C, H, W) shape
    for _name in ("F5", "F6", "F7"):
        _shape, _params = table_row(_table, _name, table_name=_call)
        _r = _expected[_name]
        _n_out = _r.output_shape[0]
        _n_in = _r.params // _n_out - 1
        _hint = ("a dense layer outputs a vector: write (features,)" if len(_shape) != 1
                 else "the output layer has one unit per class" if _name == "F7" else "")
        check_shape_answer(_shape, _r.output_shape, f"{_call}, row {_name}", _hint)
        _right = {_r.params}
        if _name == "F5" and _s4 is not None:  # F5 reads your S4, flattened
            _right.add(_n_out * (_s4[0] * _s4[1] * _s4[2] + 1))
        if _params not in _right:
            _hint = ""
            if _params == _r.params - _n_out:
                _hint = f"did you forget the {_n_out} biases?"
            elif _name == "F5" and _params == _n_out * (400 + 1):
                _hint = ("F5 reads S4's maps flattened, and how many values that is depends "
                         "on image_size (section 3)")
            elif _name == "F5" and _params in (_n_out * 17, _n_out * 16):
                _hint = "F5 reads all 16 maps of S4, flattened into one vector"
            fail(f"{_call}, row {_name}", f"expected {_r.params} parameters "
                 f"({_n_out} × ({_n_in} + 1)), got {_params}", hint=_hint)
### END HIDDEN TESTS

# %% [markdown]
# The total (1 point): `lenet_total_params` adds up the parameter column of your table for
# the same arguments; with the defaults and a right table it gives the 61,706 of section
# 1. It is graded with the reference's table in place of yours, so a wrong row costs
# points only in the tests above.

# %% nbgrader={"grade_id": "lenet_total", "solution": true}
def lenet_total_params(in_channels: int = 1, image_size: int = 32, num_classes: int = 10) -> int:
    """The number of parameters of LeNet-5 for these arguments: the sum of the parameter
    column of lenet_table(in_channels, image_size, num_classes).
    """
    ### BEGIN SOLUTION
    table = lenet_table(in_channels, image_size, num_classes)
    return sum(params for _, params in table.values())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_table_total", "locked": true, "points": 1}
# Tests for lenet_total_params: the sum of the table (1 point).
from cnncourse.grading import check_number, fail, run_exercise, with_reference


def _check_total(out, expected, call, hint):
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})")
    check_number(out, expected, call, hint=hint)


_total = run_exercise(lenet_total_params, name="lenet_total_params()")
_rows = run_exercise(lenet_table, name="lenet_table()")
_check_total(_total, sum(_params for _, _params in _rows.values()), "lenet_total_params()",
             hint="add up the parameter column of lenet_table() for the same arguments")
print("visible checks passed")
### BEGIN HIDDEN TESTS
from cnncourse.models.lenet import lenet5_rows

_CONFIGS = [(1, 32, 10), (3, 36, 7), (2, 33, 5), (1, 35, 10), (4, 47, 3), (1, 16, 1)]


def _reference_table(in_channels=1, image_size=32, num_classes=10):
    rows = lenet5_rows(in_channels, image_size, num_classes)
    return {name: (r.output_shape, r.params) for name, r in rows.items()}


for _i, (_c, _s, _k) in enumerate(_CONFIGS):
    _call = f"lenet_total_params(in_channels={_c}, image_size={_s}, num_classes={_k})"
    _probes = {"lenet_table": [(_c, _s, _k)]} if _i == 1 else {}  # one note is enough
    with with_reference(globals(), lenet_table=_reference_table, probes=_probes):
        _out = run_exercise(lenet_total_params, in_channels=_c, image_size=_s, num_classes=_k,
                            name=_call)
    _expected = sum(r.params for r in lenet5_rows(_c, _s, _k).values())
    _check_total(_out, _expected, _call,
                 hint="pass in_channels, image_size and num_classes on to lenet_table, and add "
                      "up its parameter column")
### END HIDDEN TESTS

# %% [markdown]
# Now compare your table with the one `shapes.summary` measures by running a blank image
# through the reference model and counting each layer's weights. Where the two disagree,
# go back to the formulas and find out why before changing a number. The summary also
# counts multiply-accumulates (MACs) per image: note how the convolutions, with few
# parameters, do most of the arithmetic, while F5 holds most of the parameters.

# %%
reference = shapes.summary(models.lenet5(), (1, 32, 32))
print()
table = lenet_table()  # yours, for 1×32×32 images and ten classes
kinds = ("Conv2d", "AvgPool2d", "Linear")
measured = [row for row in reference if row.kind in kinds]  # C1, S2, C3, S4, F5, F6, F7
print(f"{'layer':<7}{'your shape':<16}{'your params':>12}    {'measured shape':<16}{'params':>8}")
for (name, (shape, params)), row in zip(table.items(), measured, strict=False):
    mark = "" if (shape, params) == (row.output_shape, row.params) else "   <- differs"
    print(f"{name:<7}{str(shape):<16}{str(params):>12}    {str(row.output_shape):<16}"
          f"{row.params:>8}{mark}")
print(f"{'total':<7}{'':<16}{lenet_total_params():>12}    {'':<16}{reference.total_params:>8}")

# %% [markdown]
# The whole stack at a glance, drawn to scale from your `lenet_table()`: each square is a
# feature map (at most four are drawn per layer), each bar a vector of units.

# %%
stages = [("input", 1, 32)]  # (name, number of maps or None for a vector, side or units)
for name, (shape, _) in lenet_table().items():
    stages.append((name, shape[0], shape[-1]) if len(shape) == 3 else (name, None, shape[0]))
steps = ["conv 5×5", "pool 2×2/2", "conv 5×5", "pool 2×2/2", "flatten\n+ dense", "dense", "dense"]
colours = {"input": "0.85", "C": "C0", "S": "C2", "F": "C1", "F7": "C3"}

fig, ax = plt.subplots(figsize=(12, 3.4))
x, unit, shift = 0.0, 2.6 / 32, 0.16  # unit: drawing length of one pixel or one dense unit
for i, (name, maps, size) in enumerate(stages):
    colour = colours.get(name, colours.get(name[0]))
    if maps is not None:  # a stack of feature maps, each drawn as a square
        label = f"{name}\n{maps}@{size}×{size}"
        side, layers = size * unit, min(maps, 4)
        for j in range(layers):
            ax.add_patch(plt.Rectangle((x + shift * j, -side / 2 + shift * j), side, side,
                                       facecolor=colour, edgecolor="black", alpha=0.85))
        width = side + shift * (layers - 1)
    else:  # a vector of units, drawn as a bar
        label = f"{name}\n{size}"
        width, height = 0.22, size * unit * 32 / 120
        ax.add_patch(plt.Rectangle((x, -height / 2), width, height,
                                   facecolor=colour, edgecolor="black"))
    ax.text(x + width / 2, -1.75, label, ha="center", va="top", fontsize=9)
    if i < len(steps):
        ax.annotate("", xy=(x + width + 0.75, 0), xytext=(x + width + 0.1, 0),
                    arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.text(x + width + 0.42, 0.12, steps[i], ha="center", va="bottom", fontsize=7.5)
    x += width + 0.85
ax.set(xlim=(-0.2, x - 0.5), ylim=(-2.6, 1.9), aspect="equal",
       title="LeNet-5 to scale, from your lenet_table()")
ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 5. Training LeNet on handwritten digits
#
# Now train your model. By default the notebook uses the offline `digits` dataset:
# scikit-learn's 1,797 handwritten digits of 8×8 pixels, upsampled to 32×32 by the loader
# so that LeNet's shapes work. It is a small and blurry cousin of MNIST, but it trains in
# seconds on a laptop CPU.
#
# If MNIST is already in your dataset cache, the cell below uses a subset of it instead
# (10,000 training images, so the notebook still runs in about a minute). To get MNIST,
# run `data.load_dataset("mnist", "train")` once while you are online: torchvision then
# downloads it (about 12 MB) into `~/.cache/cnncourse`, or into the folder named by the
# environment variable `CNNCOURSE_DATA`, and this notebook picks it up from then on. The
# images are resized from 28×28 to 32×32 on loading (`image_size=32`).
#
# We train with the Adam optimiser (`train.fit` uses it by default), a learning rate of
# $2 \cdot 10^{-3}$ and batches of 32 images, and we choose ReLU and max pooling for this
# first run: the modern defaults, which we compare with the paper's choices in section 6.
# While nbgrader grades the notebook, training is cut to a few batches, so the numbers
# you see then mean nothing.

# %%
try:
    data.load_dataset("mnist", "test", download=False)  # only succeeds if MNIST is cached
    DATASET, NUM_TRAIN, NUM_EVAL, FULL_EPOCHS = "mnist", 10_000, 2_000, 3
except data.DatasetUnavailableError:
    DATASET, NUM_TRAIN, NUM_EVAL, FULL_EPOCHS = "digits", None, None, 10
epochs = 1 if utils.grading_mode() else FULL_EPOCHS
BATCH_SIZE, LR = 32, 2e-3

train_loader, val_loader, test_loader = data.make_loaders(
    DATASET, BATCH_SIZE, image_size=32, num_train=NUM_TRAIN, num_eval=NUM_EVAL
)
test_set = test_loader.dataset
print(f"dataset {DATASET!r}: {len(train_loader.dataset)} train, {len(val_loader.dataset)} val, "
      f"{len(test_set)} test images of shape {test_set.image_shape}; {epochs} epochs")
plot.show_images(test_set.images[:16], test_set.labels[:16], dataset=test_set,
                 title=f"{DATASET} at 32×32");

# %%
utils.seed_everything(0)
model = LeNet5(activation="relu", pool="max")
history = train.fit(model, train_loader, val_loader, epochs=epochs, lr=LR)
plot.plot_history(history, title="LeNet-5 (ReLU, max pooling)");

# %% [markdown]
# The validation set decides nothing here (we do not tune on it), so the test set gives
# an honest estimate of how well the model does on digits it has never seen:

# %%
result = train.evaluate(model, test_loader)
print(f"test accuracy: {result['acc']:.3f} on {result['n']} images (loss {result['loss']:.3f})")

# %% [markdown]
# ### Its mistakes
#
# Which digits does it get wrong? Below are up to 16 misclassified test images, each
# titled with the prediction and, in brackets, the true label. Many of the mistakes on
# `digits` are images a person would hesitate over too: an 8×8 digit carries very little
# detail.

# %%
preds, labels = train.predict(model, test_loader)
wrong = (preds != labels).nonzero().flatten()
print(f"{len(wrong)} of {len(labels)} test images misclassified")
if len(wrong) > 0:
    shown = wrong[:16]
    plot.show_images(test_set.images[shown], labels[shown], predictions=preds[shown],
                     dataset=test_set, title="misclassified: prediction (true label)");

# %% [markdown]
# ### What C1 has learned
#
# The six C1 filters are 5×5 grids of weights, small enough to look at directly. Each is
# drawn scaled to its own range (dark for its most negative weight, bright for its most
# positive). Look
# for filters that respond to an edge or a stroke in one direction: a bright band next to
# a dark one. With so few filters and so little training they are rougher than the
# textbook pictures, but they are not random any more.

# %%
plot.show_filters(model.features[0].weight, ncols=6, title="C1 filters (5×5)");

# %% [markdown]
# ### Feature maps
#
# A feature map shows where in the image a filter found its pattern. Below, one test
# digit passes through the network: the six maps after C1 (and its ReLU) still look like
# the digit, with different strokes highlighted. The sixteen maps after C3 are coarser and
# more abstract: each combines all six maps of S2 (C1's maps, pooled) and responds to a
# larger part of the digit (its receptive field is 14×14 input pixels, as the summary in
# section 4 shows in its last column).

# %%
digit = test_set.images[:1].to(next(model.parameters()).device)
model.eval()
with torch.no_grad():
    after_c1 = model.features[:2](digit)  # C1 + activation
    after_c3 = model.features[:5](digit)  # C1, activation, S2, C3, activation
plot.show_images(test_set.images[:1], test_set.labels[:1], dataset=test_set, title="input")
plot.show_feature_maps(after_c1, ncols=6, title=f"after C1: {tuple(after_c1.shape[1:])}")
plot.show_feature_maps(after_c3, ncols=8, title=f"after C3: {tuple(after_c3.shape[1:])}");

# %% [markdown]
# ## 6. The lecture's questions: which activation, which pooling?
#
# The lecture lists what changed from LeNet to AlexNet, and asks *why* for each. One
# item is "ReLU vs Sigmoid" (LeNet-5 itself used the scaled tanh of section 1, an
# S-shaped "sigmoidal" function like the logistic sigmoid, so we try both). We can answer
# it with an experiment: train the same network with each activation, with everything
# else equal (the same seed, so exactly the same initial weights, since activations and
# pooling own none; the same data in the same order; the same learning rate and number
# of epochs), and compare the validation accuracy epoch by epoch. Then we do the same for
# the pooling, average against max.
#
# First, the three activations and their derivatives, because the derivative is what
# backpropagation multiplies by at every layer:
#
# $$\sigma(z) = \frac{1}{1 + e^{-z}}, \quad \sigma'(z) = \sigma(z)\,(1 - \sigma(z)) \le \tfrac14;
# \qquad \tanh'(z) = 1 - \tanh^2(z) \le 1; \qquad
# \operatorname{ReLU}'(z) = \begin{cases} 1 & z > 0 \\ 0 & z < 0. \end{cases}$$

# %%
z = torch.linspace(-6, 6, 241, requires_grad=True)
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.2))
for name, fn in [("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("ReLU", torch.relu)]:
    out = fn(z)
    (grad,) = torch.autograd.grad(out.sum(), z)  # derivative at every z at once
    ax_f.plot(z.detach(), out.detach(), label=name)
    ax_d.plot(z.detach(), grad, label=name)
ax_f.set(title="activation", xlabel="z", ylim=(-1.2, 2.5))
ax_d.set(title="derivative", xlabel="z", ylim=(-0.05, 1.1))
for ax in (ax_f, ax_d):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()


# %% [markdown]
# Four runs: sigmoid, tanh and ReLU with average pooling (so the activation is the only
# difference), and ReLU with max pooling (so that, against ReLU with average pooling, the
# pooling is the only difference). Each run starts from `utils.seed_everything(0)`, and
# resets the seed of the training loader's shuffling so that every run sees the same
# batches in the same order. (The last run repeats the configuration of section 5, so
# its curve should match the one above.)

# %%
def run(activation: str, pool: str) -> train.History:
    utils.seed_everything(0)  # the same initial weights (for the same layer types) ...
    train_loader.generator.manual_seed(0)  # ... and the same batches in the same order
    net = LeNet5(activation=activation, pool=pool)
    print(f"-- {activation}, {pool} pooling")
    return train.fit(net, train_loader, val_loader, epochs=epochs, lr=LR, verbose=False)


activation_runs = {act: run(act, "avg") for act in ("sigmoid", "tanh", "relu")}
pooling_runs = {"avg": activation_runs["relu"], "max": run("relu", "max")}

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
panels = [("activation (average pooling)", activation_runs), ("pooling (ReLU)", pooling_runs)]
for ax, (title, runs) in zip(axes, panels, strict=True):
    for name, h in runs.items():
        ax.plot(range(1, h.epochs + 1), h.val_acc, "-o", label=name)
    ax.set(title=title, xlabel="epoch", ylim=(0, 1.02))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
axes[0].set_ylabel("validation accuracy")
fig.tight_layout()

rows = {f"{act} + avg pool": h for act, h in activation_runs.items()}
rows["relu + max pool"] = pooling_runs["max"]
print(f"{'run':<18}{'val acc after 1 epoch':>22}{'final val acc':>15}{'time':>8}")
for name, h in rows.items():
    print(f"{name:<18}{h.val_acc[0]:>22.3f}{h.val_acc[-1]:>15.3f}{sum(h.epoch_time):>7.1f}s")

# %% [markdown]
# ### What the curves say
#
# In our runs on `digits` (10 epochs), tanh and ReLU reached 84–91% validation accuracy
# after the first epoch and ended around 97–99%, while sigmoid was still at chance (about
# 10%) after the first epoch, climbed slowly and finished a few points behind, in the
# low-to-mid 90s. The exact numbers change from machine to machine, but that pattern is
# robust.
# Why is sigmoid so slow?
#
# - **Small derivatives.** $\sigma'(z) \le 1/4$ everywhere. Backpropagation multiplies
#   the gradient by the activation's derivative once per layer, so on its way back to C1
#   the gradient passes four sigmoids, whose derivatives multiply to at most
#   $(1/4)^4 = 1/256$. The early layers barely learn at first. This
#   is the *vanishing gradient* problem, and it gets worse with every layer added.
# - **Saturation.** For $|z|$ larger than about 4, $\sigma'(z)$ is nearly 0: a unit whose
#   input is large in either direction passes almost no gradient back at all, and stops
#   learning until something else moves its input.
# - **Not zero-centred.** Sigmoid outputs are always positive (around 0.5 on average).
#   The next layer's inputs all have the same sign, so, for each unit, the gradients of
#   all its weights share a sign too: they can only all grow or all shrink together,
#   which makes the optimiser zig-zag towards the right weights. Tanh is zero-centred and
#   its slope at 0 is 1, four times sigmoid's, which is why LeCun used a (scaled) tanh.
# - **ReLU** has derivative exactly 1 wherever it is active, so gradients pass through
#   unchanged, it never saturates for positive inputs, and it is cheaper to compute. On
#   a network as shallow as LeNet tanh is as good, but in the deep networks of the next
#   notebooks the difference decides whether they train at all. (ReLU's weak spot: a unit
#   whose input is negative for every image gets no gradient, a "dead" unit.)
#
# **Average against max pooling.** On `digits` the two ended within a point or two of
# each other in our runs, and which one came out ahead changed with the learning rate and
# the batch size. With 144 validation images, one image is 0.7 points, so a difference
# that small is noise: this dataset is too easy to separate them. The argument for max
# pooling is about what it passes on. It keeps the *strongest* response in each 2×2
# window: if a stroke is detected anywhere in the window, it goes on at full strength, and
# a shift of the digit by a pixel inside the window does not change the output. Average
# pooling dilutes a strong response with its weaker neighbours (and, after ReLU, with
# zeros), so a feature that is present but small is blurred away. This is why later
# architectures, from AlexNet on, use max pooling inside the network.

# %% [markdown]
# ## Summary
#
# - LeNet-5 stacks two blocks of *convolution → activation → pooling*, which turn a
#   32×32 image into 16 maps of 5×5, and then three dense layers down to one score per
#   class. Maps shrink while their number grows: the network trades position for meaning.
# - Each layer's output size follows $\lfloor (n + 2p - k)/s \rfloor + 1$; a convolution
#   has $C_{\text{out}}(C_{\text{in}}k^2 + 1)$ parameters and a dense layer
#   $n_{\text{out}}(n_{\text{in}} + 1)$. The convolutions do most of the arithmetic; the
#   dense layers hold most of the 61,706 parameters.
# - F5 needs exactly 400 inputs, so the input size is fixed too (32×32; 33×33 would also
#   do, since pooling rounds down): digits are padded or resized to 32×32.
# - Our version differs from the paper in three details: full C3 connections, plain
#   pooling and a linear output layer.
# - In the experiments, sigmoid learned far more slowly than tanh or ReLU (small,
#   saturating derivatives, outputs not centred on zero). Average and max pooling were
#   about equally good on this small dataset; max pooling passes on the strongest
#   response in each window, which is why later networks prefer it.
#
# **Further questions (not graded)**
# 1. AlexNet has about 62 million parameters, LeNet-5 about 61 thousand. Using the
#    formulas above, which of LeNet's layers would grow most if the input were a
#    224×224 colour image and there were 1,000 classes? Where do most of AlexNet's
#    parameters sit?
# 2. Feed 28×28 MNIST digits to LeNet without resizing or padding: `lenet_table(1, 28)`
#    gives the shapes. What must change in the model? Which information at the border of
#    the image does the network see less of?
# 3. Suppose F5 stays a 5×5 convolution with 120 filters (the paper's "C5") instead of a
#    dense layer. What does the network output for a 64×64 image, and how could one use
#    that to find digits in a larger page?
# 4. With the paper's sparse C3 table (each of the 16 maps reads 3, 4 or 6 of the six S2
#    maps, 60 connections in all), how many parameters does C3 have? What else might the
#    sparse table be good for besides saving parameters?
# 5. Train the sigmoid network for more epochs, or with a larger learning rate. Does it
#    catch up? What does that say about *what* is wrong with sigmoid: the model it can
#    express, or how fast gradient descent finds it?
