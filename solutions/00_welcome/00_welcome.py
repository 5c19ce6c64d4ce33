# %% [markdown]
# # 00 · Welcome to cnncourse
#
# This course walks from the parts of a convolutional network to the architectures that
# won ImageNet: LeNet, AlexNet, VGG, Network in Network, GoogLeNet, ResNet and ResNeXt.
# You will write the key layers and the shape arithmetic yourself, and every exercise
# tells you at once whether it is right.
#
# **In this notebook you will**
# - check that your environment works and see which device (CPU or GPU) PyTorch uses;
# - meet the two datasets that work without a network, and the three that need one;
# - watch a first small network train, with a progress bar and a learning curve;
# - solve one small exercise (the softmax function) and see how grading works;
# - learn how to validate a notebook before you hand it in.
#
# | notebook | what it covers |
# |---|---|
# | `00_welcome` | how the course works (this one) |
# | `01_components` | convolution, pooling, dense layers, activations, batch normalisation |
# | `02_lenet` | LeNet-5: putting the parts together |
# | `03_alexnet` | AlexNet: ReLU, dropout, going big; "why is the output 55?" |
# | `04_vgg` | VGG: stacks of 3×3 convolutions and their receptive field |
# | `05_nin` | Network in Network: 1×1 convolutions and global average pooling |
# | `06_googlenet` | GoogLeNet: the Inception module and its bottlenecks |
# | `07_resnet` | ResNet: residual connections and very deep networks |
# | `08_resnext` | ResNeXt: grouped convolutions and cardinality |

# %% [markdown]
# ## How to work through a notebook
#
# Run the cells from top to bottom (<kbd>Shift</kbd>+<kbd>Enter</kbd>). Cells you are meant
# to change say so and contain `raise NotImplementedError()`; replace that line with your
# code. Some cells are **locked**: they set things up or test your answers, and nbgrader
# restores them before grading, so editing them changes nothing.
#
# The first code cell of every notebook is the same: it imports what the notebook needs,
# seeds the random number generators (so your numbers match the text) and hides a few
# harmless warnings. Always run it first, and again after restarting the kernel.

# %% nbgrader={"grade_id": "setup", "locked": true}
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnncourse
from cnncourse import data, grading, plot, train, utils

device = utils.setup_notebook(seed=0)

# %% [markdown]
# ## 1. Your environment
#
# `cnncourse.utils.get_device()` picks the fastest device it finds: an NVIDIA GPU
# (`cuda`), then an Apple GPU (`mps`), then the CPU. Everything in the course runs on a
# laptop CPU in about a minute per notebook; a GPU only makes training faster. To force a
# device, set the environment variable `CNNCOURSE_DEVICE=cpu` before starting JupyterLab.

# %%
for key, value in utils.environment_report().items():
    print(f"{key:>12}: {value}")

# %% [markdown]
# ## 2. Datasets that work offline
#
# Every notebook trains on data that needs no download, so the course works on a train
# or behind a firewall:
#
# - **`digits`**: 1,797 handwritten digits of 8×8 pixels that ship with scikit-learn,
#   a miniature MNIST. Pass `image_size=32` to upsample them for LeNet.
# - **`sprites`**: colour images of 32×32 pixels drawn by a program: ten kinds of shape at
#   random positions, sizes, rotations and colours, on noisy backgrounds with small
#   distracting blobs. You choose how many images to draw, and the same `seed` always
#   draws the same ones. A linear model or a small dense network does poorly on it; a
#   good convolutional network does well, which is exactly what this course is about.
#
# `data.load_dataset(name, split)` returns one split (`"train"`, `"val"` or `"test"`) as
# normalised tensors; `data.make_loaders(name, batch_size)` returns the three
# `DataLoader`s at once.

# %%
digits = data.load_dataset("digits", "train")
print(digits)
plot.show_images(digits.images[:16], digits.labels[:16], dataset=digits, title="digits (8×8)");

# %%
sprites = data.load_dataset("sprites", "train", num_samples=2000)
print(sprites)
plot.show_images(sprites.images[:24], sprites.labels[:24], dataset=sprites, ncols=8,
                 title="sprites (3×32×32, ten classes)");

# %% [markdown]
# **MNIST, Fashion-MNIST and CIFAR-10** are loaded through `torchvision` when your
# computer is online: the first call downloads them into a cache folder
# (`~/.cache/cnncourse`, or the folder in the environment variable `CNNCOURSE_DATA`), later
# calls read them from there. Offline, the call fails with a message that says what to do
# instead. The cell below asks for MNIST without allowing a download, so it shows that
# message unless MNIST is already in your cache.

# %%
print("available:", data.available_datasets())
try:
    mnist = data.load_dataset("mnist", "test", download=False)
    print("MNIST is in your cache:", mnist)
except data.DatasetUnavailableError as err:
    print("DatasetUnavailableError:", err)

# %% [markdown]
# ## 3. A first training run
#
# `train.fit(model, train_loader, val_loader, epochs)` is the training loop every notebook
# uses: for each batch it computes the loss, backpropagates and takes an optimiser step;
# after each epoch it measures loss and accuracy on the validation set. It shows a
# progress bar while it works and returns a `History` that `plot.plot_history` draws.
#
# Below, a dense network (which sees the image as one long vector of 3,072 numbers) and a
# small convolutional network train on the same 4,000 `sprites` images for the same
# number of epochs. Compare their validation accuracy: the rest of the course explains
# why the convolutional one wins.
#
# When nbgrader grades your notebook it sets `utils.grading_mode()` to `True`, and
# `fit` then trains on a handful of batches only, so grading takes seconds. Nothing you are
# graded on depends on how well a model trained.

# %%
train_loader, val_loader, test_loader = data.make_loaders("sprites", batch_size=64, num_train=4000)

def dense_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Linear(128, 10))

def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 32×16×16
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 64×8×8
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 64×4×4
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10),
    )

epochs = 1 if utils.grading_mode() else 4
histories = {}
for name, make in [("dense", dense_net), ("cnn", small_cnn)]:
    utils.seed_everything(0)
    print(f"-- {name}")
    histories[name] = train.fit(make(), train_loader, val_loader, epochs=epochs, lr=2e-3)
plot.plot_history(histories, title="dense network vs. small CNN on sprites");


# %% [markdown]
# ## 4. How an exercise works
#
# An exercise is a function with its signature and a docstring that states what goes in,
# what comes out (with shapes) and the formula. You write the body. Below it sits a
# locked **test cell** worth some points: run it after your solution. If it finishes
# silently, the visible checks passed. If not, the error message says what differs.
#
# The test cell holds more checks than you see: when your notebook is graded, **hidden
# tests** try your function on cases you have not seen (other shapes, other dtypes, edge
# cases). Write the general function, not one that fits the visible examples.
#
# Some exercises ask you to build something *from scratch*; their test cells fail if
# your code calls the PyTorch function that already does the job, so the point of the
# exercise is kept.
#
# ### Exercise: softmax (10 points)
#
# A classifier's last layer produces one score, a *logit*, per class. Softmax turns the
# logits $z_1, \dots, z_K$ into probabilities that are positive and sum to one:
#
# $$\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_{j=1}^{K} e^{z_j}}.$$
#
# Implement `softmax(logits, dim)` that applies this along dimension `dim` of a tensor of
# any shape, using basic tensor operations (`exp`, `sum`, `max`, arithmetic);
# `torch.softmax` and its relatives are off limits here.
#
# One property will matter for the second test cell: adding the same constant $c$ to
# every logit does not change the result, because
# $e^{z_i + c} / \sum_j e^{z_j + c} = e^{c} e^{z_i} / (e^{c} \sum_j e^{z_j})$.

# %% nbgrader={"grade_id": "softmax", "solution": true}
def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``logits`` along ``dim``.

    Args:
        logits: tensor of any shape, e.g. (N, K) for N examples and K classes.
        dim: the dimension that holds the classes.

    Returns:
        A tensor of the same shape and dtype as ``logits`` whose entries are positive
        and sum to 1 along ``dim``: out_i = exp(z_i) / sum_j exp(z_j).
    """
    ### BEGIN SOLUTION
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # largest logit becomes 0: no overflow
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)
    ### END SOLUTION


# %% [markdown]
# Try your function on a small example before running the tests. This cell is yours:
# change it as you like.

# %%
scores = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
probs = softmax(scores)
print(probs)
print("row sums:", probs.sum(dim=1))

# %% [markdown]
# The first test cell checks the values on ordinary logits (5 points).

# %% nbgrader={"grade": true, "grade_id": "test_softmax_values", "locked": true, "points": 5}
# Tests for softmax: values on ordinary inputs (5 points).
from cnncourse.grading import check_close, check_grads, check_tensor, forbid, run_exercise

_gen = torch.Generator().manual_seed(1)
_x = torch.randn(4, 10, generator=_gen)
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _x)
check_tensor(_out, torch.softmax(_x, dim=-1), "softmax(x) for x of shape (4, 10)")
check_close(_out.sum(dim=-1), torch.ones(4), "row sums of softmax(x)")
print("visible checks passed")
### BEGIN HIDDEN TESTS
# Other dimensions and ranks: the function must honour `dim`, not assume (N, K).
_x3 = torch.randn(2, 5, 3, generator=_gen)
for _dim in (0, 1, 2, -1, -2):
    with forbid("softmax", exercise="softmax"):
        _out = run_exercise(softmax, _x3, dim=_dim)
    check_tensor(_out, torch.softmax(_x3, dim=_dim),
                 f"softmax(x, dim={_dim}) for x of shape (2, 5, 3)")
# A 1-D input and the default dim.
_x1 = torch.randn(7, generator=_gen)
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _x1)
check_tensor(_out, torch.softmax(_x1, dim=0), "softmax(x) for x of shape (7,)")
# The dtype is kept: float64 in, float64 out.
_x64 = torch.randn(3, 6, generator=_gen, dtype=torch.float64)
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _x64, dim=1)
check_tensor(_out, torch.softmax(_x64, dim=1), "softmax(x) for float64 x", rtol=1e-10, atol=1e-12)
# Gradients flow and match autograd through torch.softmax.
_xg = torch.randn(3, 4, generator=_gen, requires_grad=True)
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _xg, dim=1)
check_grads(_out, torch.softmax(_xg, dim=1), {"x": _xg}, "softmax(x, dim=1)", generator=_gen)
# Edge cases: one class (probability 1), ties (uniform), a batch of one.
for _edge in (torch.randn(3, 1, generator=_gen), torch.zeros(2, 5),
              torch.randn(1, 4, generator=_gen)):
    with forbid("softmax", exercise="softmax"):
        _out = run_exercise(softmax, _edge)
    check_tensor(_out, torch.softmax(_edge, dim=-1), f"softmax(x) for x = {_edge.tolist()}")
### END HIDDEN TESTS

# %% [markdown]
# ### Large logits
#
# Logits are not always small. What does `torch.exp` give for 100, and for 1,000? Run the
# cell below. A float32 number cannot exceed about $3.4 \times 10^{38}$, and $e^{89}$ is
# already larger, so `exp` overflows to infinity, and $\infty / \infty$ is `nan`.
#
# Use the property from above (adding a constant to every logit changes nothing) to make
# your `softmax` give the right answer for logits like `[1000, 1001, 1002]` too, then
# run the second test cell (5 points).

# %%
print(torch.exp(torch.tensor([10.0, 100.0, 1000.0])))
print("softmax of large logits:", softmax(torch.tensor([1000.0, 1001.0, 1002.0])))

# %% nbgrader={"grade": true, "grade_id": "test_softmax_stable", "locked": true, "points": 5}
# Tests for softmax: numerically stable for large and very negative logits (5 points).
from cnncourse.grading import check_tensor, forbid, run_exercise

_big = torch.tensor([[1000.0, 1001.0, 1002.0]])
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _big)
check_tensor(_out, torch.softmax(_big, dim=-1),
             "softmax([1000, 1001, 1002]) (inf or nan means exp overflowed)")
print("visible checks passed")
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed(2)
# Very negative logits: naive exp underflows to 0 and 0 / 0 is nan.
_neg = torch.tensor([[-1000.0, -1001.0, -1002.0]])
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _neg)
check_tensor(_out, torch.softmax(_neg, dim=-1), "softmax([-1000, -1001, -1002])")
# Rows with very different offsets, along dim 0 this time.
_mixed = torch.randn(5, 4, generator=_gen) * 3 + torch.tensor([-500.0, 0.0, 300.0, 2000.0])
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _mixed, dim=0)
check_tensor(_out, torch.softmax(_mixed, dim=0), "softmax(x, dim=0) with column offsets up to 2000")
# Huge spread inside one row: one entry takes (almost) all the probability.
_spread = torch.tensor([[-1e4, 0.0, 1e4]])
with forbid("softmax", exercise="softmax"):
    _out = run_exercise(softmax, _spread)
check_tensor(_out, torch.softmax(_spread, dim=-1), "softmax([-1e4, 0, 1e4])")
# A masked logit (-inf, probability 0) beside large ones, in float64 as well.
for _dtype in (torch.float32, torch.float64):
    _masked = torch.tensor([[float("-inf"), 500.0, 501.0], [3.0, float("-inf"), -800.0]],
                           dtype=_dtype)
    with forbid("softmax", exercise="softmax"):
        _out = run_exercise(softmax, _masked)
    check_tensor(_out, torch.softmax(_masked, dim=-1), f"softmax with a -inf logit ({_dtype})")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. What feedback looks like
#
# The test cells use the helpers in `cnncourse.grading`. They check the type, then the
# shape, then the dtype, then the values, and stop at the first difference with a
# message that says what was expected and what came back. Here is one on purpose: a
# "softmax" that forgot to normalise.

# %%
wrong = torch.tensor([[1.0, 2.0, 3.0]]).exp()  # exp without dividing by the sum
try:
    grading.check_close(wrong, torch.softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=-1),
                        "softmax([1, 2, 3])")
except AssertionError as err:
    print("AssertionError:", err)

# %% [markdown]
# ## 6. Validate, then submit
#
# Before you hand in a notebook:
#
# 1. **Restart and run all** (*Kernel → Restart Kernel and Run All Cells…*). A notebook
#    that only works because of a cell you ran earlier and then deleted will fail when
#    graded, since grading starts from a fresh kernel and runs top to bottom.
# 2. **Validate** it: click *Validate* in the notebook's toolbar (it saves the notebook
#    first), or open *Nbgrader → Assignment List* for a Validate button beside every
#    notebook of the course, or in a terminal run
#
#    ```
#    .venv/bin/nbgrader validate notebooks/00_welcome/00_welcome.ipynb
#    ```
#
#    It runs the notebook as the grader will and lists every test cell that fails.
# 3. Submit the `.ipynb` file the way your instructor asked.
#
# When grading, each test cell is worth its points if it runs without an error, and
# nothing if it raises one. A test cell that prints a warning to stderr also counts as
# failed, which is why the setup cell silences known harmless warnings.

# %% [markdown]
# ## Summary
#
# - `make lab` starts JupyterLab on the course notebooks; `utils.setup_notebook()` in the
#   first cell seeds everything and picks the device.
# - `digits` and `sprites` work offline; `mnist`, `fashion-mnist` and `cifar10` download
#   once through torchvision.
# - `train.fit` trains with a progress bar and returns a history to plot; under grading it
#   runs only a few batches.
# - Exercises have visible tests you can run and hidden tests that try unseen cases;
#   a numerically careless solution can pass the first and fail the second.
#
# **Further questions (not graded)**
# 1. Softmax is unchanged by adding a constant to all logits. Is it unchanged by
#    *multiplying* them by a constant? What happens to the probabilities as the factor
#    grows, and as it shrinks towards zero?
# 2. `F.cross_entropy` takes logits, not probabilities. Why might computing
#    `log(softmax(z))` in two steps be a bad idea for very negative logits?
# 3. In the training run above, how many parameters does the dense network have, and how
#    many does the small CNN have? (`sum(p.numel() for p in model.parameters())`.) Which
#    one generalises better, and why might that be?
