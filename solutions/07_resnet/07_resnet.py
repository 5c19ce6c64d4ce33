# %% [markdown]
# # 07 · ResNet: residual connections
#
# By 2014 the best networks were 19 (VGG) and 22 (GoogLeNet) layers deep. ResNet (He,
# Zhang, Ren and Sun, 2015) won ILSVRC 2015 with **152** layers and a top-5 error of
# 3.57%, and its idea is one line of code: each block adds its input to its output,
# `out = relu(F(x) + x)`. This notebook follows the lecture's argument for that line,
# reproduces the problem it solves on this CPU, and then builds the network.
#
# **In this notebook you will**
# - see what happens when you keep stacking layers on a *plain* network: the deeper one
#   trains worse, and not because it overfits (the *degradation problem*);
# - follow the lecture's reasoning: deeper models can represent more, so the problem is
#   optimisation; what should the deeper model learn to be at least as good as the
#   shallower one?
# - set the weights of a residual block so that it computes the identity, and see why
#   the same layers without the shortcut cannot;
# - measure how the gradient reaches the first layers of a plain and a residual network;
# - write the basic block (two 3×3 convolutions) and the bottleneck block (1×1, 3×3,
#   1×1), checked against `cnncourse.models` with copied weights;
# - count the parameters of ResNet-18, -34 and -50 from their stage configurations;
# - repeat the plain-against-residual experiment with your own blocks.
#
# | section | what happens | points |
# |---|---|---|
# | 1 | ResNet among the ImageNet winners | |
# | 2 | the degradation problem, reproduced | |
# | 3 | the residual mapping: exercise `make_identity` | 4 |
# | 4 | gradient flow at initialisation | |
# | 5 | the basic block: exercise `ResidualBlock` | 8 |
# | 6 | the bottleneck block: exercise `BottleneckBlock` | 6 |
# | 7 | the full architecture: exercise `resnet_params` | 5 |
# | 8 | plain against residual, with your blocks | |
#
# **The lecture's points, and where they are answered:** "A very deep network using
# residual connections" and the ILSVRC chart: section 1. "What happens when we continue
# stacking deeper layers on a 'plain' convolutional neural network?" and "The deeper
# model performs worse, but it's not caused by overfitting!": section 2. "Fact: Deep
# models have more representation power (more parameters) than shallower models",
# "Hypothesis: the problem is an optimization problem, deeper models are harder to
# optimize" and "What should the deeper model learn to be at least as good as the
# shallower model?": sections 2 and 3. "Use network layers to fit a residual mapping
# instead of directly trying to fit a desired underlying mapping" (the skip
# connection): sections 3 to 5. "Full ResNet Architecture" (stack residual blocks, two
# 3×3 conv layers per block, double the filters and downsample with stride 2, a stem,
# no FC layers besides FC 1000, global average pooling, batch norm after every conv, no
# dropout): sections 5 to 7.

# %% nbgrader={"grade_id": "setup", "locked": true}
import functools
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnncourse import data, grading, models, plot, shapes, utils

device = utils.setup_notebook(seed=0)

# %% [markdown]
# ## 1. ResNet among the ImageNet winners
#
# The chart shows the winners' top-5 error and their depth. From AlexNet's 8 layers to
# ResNet's 152, and the error fell below the 5.1% that a trained human annotator
# reached on the same task (Russakovsky et al. 2015).

# %%
plot.ilsvrc_chart(highlight="ResNet")
plt.show()

# %% [markdown]
# ## 2. What happens when we keep stacking layers on a plain network?
#
# A *plain* network is a stack of conv–BN–ReLU layers, as in VGG. The residual networks
# of this notebook are built from blocks of two 3×3 convolutions; `cnncourse.models`
# builds each of them with or without its shortcut (`residual=False`), so that a plain
# network and a residual one differ in nothing else: same layers, same widths, same
# initialisation, same data, same optimiser.
#
# The experiment is the lecture's figure at a small scale: the CIFAR-style networks of
# the paper's section 4.2 (a 3×3 stem, three stages of 8, 16 and 32 channels at full,
# half and quarter resolution, global average pooling, one dense layer), 8 and 32 layers
# deep, trained on the 8×8 handwritten digits (1,294 training images) with Adam for 120
# steps of 64 images. We plot the **training** error: if the deeper network were only
# overfitting, its training error would be *lower*.

# %%
digits_train, _, _ = data.make_loaders("digits", 64, seed=0)
X_train, y_train = (
    torch.cat(t) for t in zip(*digits_train, strict=True)
)  # (1294, 1, 8, 8), (1294,)
STEPS = 3 if utils.grading_mode() else 120
WIDTHS = (8, 16, 32)


def train_steps(model: nn.Module, steps: int = STEPS, seed: int = 0) -> list[float]:
    """Adam for `steps` batches of 64 training images; returns the error of every batch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    errors = []
    for _ in range(steps):
        idx = torch.randint(len(X_train), (64,), generator=gen)
        logits = model(X_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append((logits.argmax(1) != y_train[idx]).float().mean().item())
    return errors


def training_error(model: nn.Module) -> float:
    """Error on the whole training set, in eval mode."""
    model.eval()
    with torch.no_grad():
        return (model(X_train).argmax(1) != y_train).float().mean().item()


def smooth(values: list[float], window: int = 15) -> list[float]:
    out = []
    for i in range(len(values)):
        recent = values[max(0, i - window + 1) : i + 1]
        out.append(sum(recent) / len(recent))
    return out


curves, final = {}, {}
for residual in (False, True):
    for blocks in (1, 5):
        torch.manual_seed(0)
        net = models.resnet_small(
            in_channels=1, blocks_per_stage=blocks, widths=WIDTHS, residual=residual
        )
        name = f"{'ResNet' if residual else 'plain'}-{6 * blocks + 2}"
        start = time.perf_counter()
        curves[name] = train_steps(net)
        final[name] = training_error(net)
        print(f"{name:<10} {shapes.count_params(net):>7,} parameters   training error "
              f"{final[name]:.1%}   ({time.perf_counter() - start:.1f} s)")  # fmt: skip

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, facecolor="white")
for ax, kind in zip(axes, ("plain", "ResNet"), strict=True):
    for name, errors in curves.items():
        if name.startswith(kind):
            ax.plot(smooth(errors), label=f"{name} ({final[name]:.0%} at the end)",
                    lw=2 if name.endswith("32") else 1.2)  # fmt: skip
    ax.set(title=f"{kind} networks", xlabel="training step", facecolor="white")
    ax.legend()
axes[0].set_ylabel("training error (batches, smoothed)")
fig.tight_layout()
plt.show()


# %% [markdown]
# **What we measured.** With seeds 0, 1 and 2 (the cell runs seed 0), the error on the
# whole training set after 120 steps was:
#
# | network | seed 0 | seed 1 | seed 2 |
# |---|---|---|---|
# | plain-8 | 6.0% | 12.0% | 10.6% |
# | plain-32 | 68.8% | 66.5% | 70.0% |
# | ResNet-8 | 3.2% | 5.0% | 2.7% |
# | ResNet-32 | 1.6% | 1.2% | 0.8% |
#
# The 32-layer plain network is far *worse* on the data it is trained on than the 8-layer
# one, in all three runs: it has four times the layers and more parameters, so it is not
# a lack of capacity, and a higher *training* error is the opposite of overfitting. With
# shortcuts, the same 32 layers train better than 8. This is the lecture's figure (the
# paper's figure 1: 20 and 56 layers on CIFAR-10) in 120 steps instead of 64,000, so it
# mixes two things the paper separates: at this budget deeper plain networks are also
# simply *slower* to train. The paper's point is that they stay worse even after
# training converges, and that batch norm is in every layer, so the signal does not
# vanish in the forward pass.
#
# **Fact:** a deeper model has more representational power. Take the 8-layer network
# and add 24 layers: if the added layers computed the identity, the deeper model would
# compute exactly what the shallow one does. So a 32-layer network at least as good as
# the 8-layer one *exists*.
#
# **Hypothesis:** the problem is optimisation: the solver does not find it.
#
# **Question:** what should the deeper model learn to be at least as good as the
# shallower model? Think about it before you read the next section.

# %% [markdown]
# ## 3. The residual mapping
#
# Answer: **the identity**, for the layers it has in excess. For a stack of
# conv–BN–ReLU layers the identity is a very particular point: every filter has to
# become a "pass the centre pixel through" kernel and every batch norm has to undo its
# own normalisation. ResNet moves that point to where it is easy to reach. A block
# computes
#
# $$y = \mathrm{ReLU}\big(F(x) + x\big),$$
# $$F(x) = \mathrm{BN}(W_2 * \mathrm{ReLU}(\mathrm{BN}(W_1 * x))),$$
#
# so its layers fit the **residual** $F(x) = H(x) - x$ of the mapping $H$ they stand
# for, instead of $H$ itself. To be the identity, a block only needs $F(x) = 0$: all it
# takes is zero weights somewhere, which weight decay pulls towards anyway. The input of
# a block comes out of a ReLU, so $x \ge 0$ and the final ReLU passes $x$ through
# unchanged.
#
# ## Exercise: `make_identity` (4 points)
#
# Write `make_identity(block)`: it takes a `cnncourse.models.BasicBlock` or
# `Bottleneck` and changes, in place, as few parameters as it needs so that the block
# computes $y = x$ for every input $x \ge 0$, in train mode and in eval mode, whatever
# the other weights and the batch norm statistics are. Hint: which layer ends $F$, and
# what does it output when its two parameters are zero? `block.last_bn()` returns it.
#
# A block whose shortcut is a projection (a 1×1 convolution, used when the block changes
# the shape) cannot be the identity, nor can a block without a shortcut
# (`block.residual` is False): raise a `ValueError` naming `block`. Leave the
# convolutions alone, and keep every parameter trainable.

# %% nbgrader={"grade_id": "make_identity", "solution": true}
def make_identity(block: nn.Module) -> nn.Module:
    """Set a residual block's parameters in place so that block(x) == x for x >= 0.

    block: a cnncourse.models.BasicBlock or Bottleneck with an identity shortcut
    (block.shortcut is an nn.Identity). Changes only what it must (the convolutions stay
    as they are, all parameters keep requires_grad) and returns the block.

    Raises:
        ValueError: if the block has no shortcut (block.residual is False) or a
            projection shortcut (the message names block).
    """
    ### BEGIN SOLUTION
    if not getattr(block, "residual", False):
        raise ValueError("block: a plain block (no shortcut) cannot become the identity")
    if not isinstance(block.shortcut, nn.Identity):
        raise ValueError("block: its shortcut is a projection, so block(x) != x")
    bn = block.last_bn()  # F(x) = bn(...): with gamma = beta = 0 it is 0 for any input
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()
    return block
    ### END SOLUTION


# %%
demo = models.BasicBlock(8, 8)
x = torch.relu(torch.randn(4, 8, 6, 6))
make_identity(demo)
print("largest |block(x) - x|:", (demo(x) - x).abs().max().item())

# %% nbgrader={"grade": true, "grade_id": "test_make_identity", "locked": true, "points": 4}
# Tests for make_identity (4 points).
from cnncourse.grading import check_raises, check_tensor, fail, randomise_weights, run_exercise
from cnncourse.models import BasicBlock as _Basic
from cnncourse.models import Bottleneck as _Bottleneck

if "make_identity" not in globals():
    fail("make_identity", "not defined yet", hint="write the function and run its cell")
_gen = torch.Generator().manual_seed(71)


def _check_identity(block, label, shape, dtype=torch.float32):
    block = randomise_weights(block, _gen).to(dtype)
    convs = {n: p.detach().clone() for n, p in block.named_parameters() if ".bn" not in n
             and not n.startswith("bn")}  # fmt: skip
    out = run_exercise(make_identity, block, name=f"make_identity({label})", may_change={"block"})
    if out is not block:
        fail(f"make_identity({label})", "expected the same block back (changed in place)",
             hint="change the parameters of the block you were given and return it")  # fmt: skip
    for n, p in block.named_parameters():
        if not p.requires_grad:
            fail(f"make_identity({label})", f"parameter {n} no longer requires grad",
                 hint="change the values (under torch.no_grad()), not requires_grad")  # fmt: skip
        if n in convs and not torch.equal(p, convs[n]):
            fail(f"make_identity({label})", f"{n} changed",
                 hint="leave the convolutions alone: the last batch norm ends F")  # fmt: skip
    x = torch.relu(torch.randn(*shape, generator=_gen, dtype=dtype))
    for train_mode in (False, True):
        block.train(train_mode)
        with torch.no_grad():
            y = block(x.clone())
        mode = "train" if train_mode else "eval"
        hint = "F(x) ends with a batch norm: what does it output when gamma and beta are 0?"
        if train_mode:
            hint = ("in train mode batch norm uses the batch's statistics, not the running "
                    "ones: only gamma = beta = 0 makes its output 0 whatever they are")  # fmt: skip
        try:
            check_tensor(y, x, f"{label} after make_identity, {mode} mode, on x >= 0",
                         rtol=1e-5, atol=1e-6)  # fmt: skip
        except AssertionError as err:
            fail(f"make_identity({label})", str(err).split(": ", 1)[-1], hint=hint)


_check_identity(_Basic(8, 8), "BasicBlock(8, 8)", (4, 8, 6, 6))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check_identity(_Basic(5, 5), "BasicBlock(5, 5)", (3, 5, 7, 4))
_check_identity(_Basic(3, 3), "BasicBlock(3, 3)", (2, 3, 1, 1))  # 1×1 maps
_check_identity(_Bottleneck(16, 4), "Bottleneck(16, 4)", (2, 16, 5, 5))
_check_identity(_Basic(4, 4), "BasicBlock(4, 4) in float64", (2, 4, 3, 5), torch.float64)
check_raises(make_identity, _Basic(4, 8), argument="block",
             why="a block from 4 to 8 channels has a projection shortcut")  # fmt: skip
check_raises(make_identity, _Basic(4, 4, stride=2), argument="block",
             why="a block with stride 2 has a projection shortcut")  # fmt: skip
check_raises(make_identity, _Basic(4, 4, residual=False), argument="block",
             why="a plain block has no shortcut")  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# **Why the same layers without the shortcut cannot.** A plain block computes
# $y = \mathrm{ReLU}(\mathrm{BN}(W_2 * \mathrm{ReLU}(\mathrm{BN}(W_1 * x))))$. In train
# mode its last batch norm forces every channel of its output to have mean $\beta$ and
# standard deviation $\gamma$ over the batch, before the ReLU. The identity would have
# to pass on the input's own mean and spread, which differ from channel to channel and
# from batch to batch, so no setting of the parameters gives $y = x$ for every batch.
# (In eval mode it can be done, but only at one precise point: both filters must become
# "copy the centre pixel" kernels and both batch norms must undo their running
# statistics exactly.) The cell below lets both blocks, from random weights, *learn* the
# identity on random non-negative inputs for 150 steps of Adam.

# %%
torch.manual_seed(0)
learners = {"residual block": models.BasicBlock(8, 8),
            "plain block": models.BasicBlock(8, 8, residual=False)}  # fmt: skip
fit_steps = 5 if utils.grading_mode() else 150
gen = torch.Generator().manual_seed(0)
for name, block in learners.items():
    opt = torch.optim.Adam(block.parameters(), lr=1e-2)
    losses = []
    for _ in range(fit_steps):
        x = torch.relu(torch.randn(32, 8, 6, 6, generator=gen))
        loss = F.mse_loss(block(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"{name:<15} mean squared error: first step {losses[0]:.3f}, last {losses[-1]:.4f}")


# %% [markdown]
# Both blocks get closer to the identity, but the residual block only has to shrink
# $F$, and ends about three times closer: on this machine the mean squared error fell
# from 0.59 to 0.0028 for the residual block and from 0.65 to 0.0096 for the plain one.
# In a deep network the gap compounds: 24 blocks that each miss the identity a little
# are far from it together, while 24 residual blocks with $F \approx 0$ are not.

# %% [markdown]
# ## 4. Gradient flow at initialisation
#
# The shortcut also changes the backward pass. For $y = x + F(x)$,
# $\frac{\partial y}{\partial x} = I + \frac{\partial F}{\partial x}$: the gradient
# arriving at a block's output reaches its input at least through the identity, however
# small $\partial F / \partial x$ is. In a plain stack the gradient is a product of the
# Jacobians of all layers above, and a product of many factors drifts far from 1.
#
# Below: one backward pass through the freshly initialised 32-layer networks of section
# 2, on one batch, and the norm of the gradient of every convolution's weights, from the
# input (left) to the output (right).

# %%
def conv_gradient_norms(net: nn.Module) -> list[float]:
    net.zero_grad()
    net.train()
    F.cross_entropy(net(X_train[:256]), y_train[:256]).backward()
    return [m.weight.grad.norm().item() for m in net.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]  # fmt: skip


fig, ax = plt.subplots(figsize=(7, 3.4), facecolor="white")
for residual in (False, True):
    torch.manual_seed(0)
    net = models.resnet_small(in_channels=1, blocks_per_stage=5, widths=WIDTHS, residual=residual)
    norms = conv_gradient_norms(net)
    label = "ResNet-32" if residual else "plain-32"
    ax.semilogy(range(1, len(norms) + 1), norms, "o-", ms=3, label=label)
    print(f"{label}: gradient norm of the first 3×3 conv / of the last: "
          f"{norms[0] / norms[-1]:.2f}")  # fmt: skip
ax.set(xlabel="3×3 convolution (input → output)", ylabel="‖∂loss/∂W‖", facecolor="white",
       title="gradient norm per layer at initialisation")  # fmt: skip
ax.legend()
fig.tight_layout()
plt.show()


# %% [markdown]
# Measured here: in the plain network the gradient of the first 3×3 convolution is 9.5
# times that of the last one; in the residual network 2.1 times. With batch norm in
# every layer the gradient of a deep plain network does not vanish: it *grows* towards
# the input, layer after layer (Yang et al. 2019 show that this explosion at
# initialisation is a property of batch norm in plain stacks), so the lower layers take
# much larger steps than the upper ones. The shortcuts keep the layers' gradients of one
# size, because each block passes the gradient on through $I + \partial F/\partial x$.
# This is why the paper calls degradation an optimisation problem rather than one of
# vanishing signals.

# %% [markdown]
# ## 5. The basic block
#
# The lecture's block: two 3×3 convolutions, batch norm after each, a ReLU after the
# first and after the sum (not before it: $F$ must be able to take negative values, or
# a block could only ever add to its input).
#
# | layer | output |
# |---|---|
# | conv 3×3, stride $s$, padding 1, no bias; BN; ReLU | $(N, C_{out}, H/s, W/s)$ |
# | conv 3×3, stride 1, padding 1, no bias; BN: this is $F(x)$ | $(N, C_{out}, H/s, W/s)$ |
# | shortcut: $x$ itself, or conv 1×1 with stride $s$ (no bias) and BN | $(N, C_{out}, H/s, W/s)$ |
# | ReLU of the sum | $(N, C_{out}, H/s, W/s)$ |
#
# The convolutions have no bias, because the batch norm after each subtracts the mean
# and adds its own shift $\beta$. When the block halves the resolution (stride 2) or
# changes the channels, $x$ and $F(x)$ have different shapes and cannot be added: the
# shortcut then *projects* $x$ with a strided 1×1 convolution (the paper's option B, as
# in torchvision; option A pads with zero channels instead).
#
# ## Exercise: `ResidualBlock` (8 points)
#
# Write `ResidualBlock(in_channels, out_channels, stride=1, residual=True)` with the
# attributes of the docstring, registered in that order (the tests copy the weights of
# `cnncourse.models.BasicBlock` into yours by position). With `residual=False` it is
# the plain block of section 2: the same layers, no shortcut (`self.shortcut = None`)
# and no sum. It is graded with random weights and batch norm statistics copied in, in
# eval and train mode (outputs, running statistics, gradients), with identity and
# projection shortcuts, in float32 and float64.

# %% nbgrader={"grade_id": "residual_block", "solution": true}
class ResidualBlock(nn.Module):
    """The basic residual block: (N, in_channels, H, W) -> (N, out_channels, H/s, W/s).

    ResidualBlock(in_channels, out_channels, stride=1, residual=True)

    Attributes, registered in this order:
        conv1: nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        bn1:   nn.BatchNorm2d(out_channels)
        conv2: nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        bn2:   nn.BatchNorm2d(out_channels)
        shortcut: nn.Identity() if stride == 1 and in_channels == out_channels, else
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                          nn.BatchNorm2d(out_channels));
            None if residual is False.
    forward: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), without the
    "+ shortcut(x)" if residual is False. x itself is left unchanged.
    """

    ### BEGIN SOLUTION
    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if not residual:
            self.shortcut = None
        elif stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:  # the shapes differ: project x to (N, out_channels, H/s, W/s)
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # (N, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (N, C_out, H/s, W/s): F(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x, before the ReLU
        return torch.relu(out)

    ### END SOLUTION


# %%
block = ResidualBlock(16, 32, stride=2)
print(block)
print("output:", tuple(block(torch.zeros(2, 16, 8, 8)).shape))

# %% nbgrader={"grade": true, "grade_id": "test_residual_block", "locked": true, "points": 8}
# Tests for ResidualBlock: weights of cnncourse.models.BasicBlock copied in (8 points).
from cnncourse.grading import check_module, copy_weights, fail, randomise_weights, run_exercise
from cnncourse.models import BasicBlock as _RefBlock

if "ResidualBlock" not in globals():
    fail("ResidualBlock", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(72)


def _check_block(
    args, kwargs, shape, dtype=torch.float32, grads=False, modes=(False, True), scale=1.0
):
    shown = [*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    call = f"ResidualBlock({', '.join(shown)})"
    mine = run_exercise(ResidualBlock, *args, name=call, **kwargs)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    ref = randomise_weights(_RefBlock(*args, **kwargs), _gen)
    mine_shapes = [(k.split(".")[-1], tuple(t.shape)) for k, t in mine.state_dict().items()]
    ref_shapes = [(k.split(".")[-1], tuple(t.shape)) for k, t in ref.state_dict().items()]
    if mine_shapes != ref_shapes:
        fail(call, f"weights and buffers {mine_shapes}, expected {ref_shapes}",
             hint="conv1 (3×3, the block's stride), bn1, conv2 (3×3), bn2, then the shortcut: "
                  "nn.Identity() when the shape is unchanged, else a 1×1 conv with the stride "
                  "and a BN; no biases; None if residual is False")  # fmt: skip
    mine, ref = copy_weights(ref, mine).to(dtype), ref.to(dtype)
    x = (scale * torch.randn(*shape, generator=_gen, dtype=dtype)).requires_grad_(grads)
    hint = "relu(bn1(conv1(x))), then bn2(conv2(.)), add shortcut(x), and only then the ReLU"
    if not kwargs.get("residual", True):
        hint = "a plain block: relu(bn2(conv2(relu(bn1(conv1(x)))))), with no sum"
    for train in modes:
        check_module(mine, ref, x, call, train=train, grads=grads and train, generator=_gen,
                     hint=hint)  # fmt: skip


_check_block((8, 8), {}, (2, 8, 6, 6))
_check_block((8, 16), {"stride": 2}, (2, 8, 6, 6))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check_block((4, 4), {}, (3, 4, 7, 5), grads=True)  # identity shortcut: gradients
_check_block((4, 6), {"stride": 2}, (2, 4, 9, 7), grads=True)  # projection: gradients
_check_block((5, 7), {}, (2, 5, 4, 4))  # more channels at stride 1: a projection too
_check_block((6, 6), {"stride": 2}, (2, 6, 8, 8))  # same channels, stride 2: a projection
_check_block((3, 3), {}, (1, 3, 1, 1), modes=(False,))  # batch of 1, 1×1 maps (eval only:
# in train mode batch norm needs two values per channel)
_check_block((4, 8), {"residual": False}, (2, 4, 5, 6), grads=True)
_check_block((6, 6), {"stride": 2, "residual": False}, (2, 6, 7, 7))
_check_block((4, 6), {"stride": 2}, (2, 4, 6, 6), dtype=torch.float64, grads=True)
_check_block((4, 6), {"stride": 2}, (2, 4, 6, 6), scale=1e3)  # large inputs in float32
### END HIDDEN TESTS

# %% [markdown]
# ## 6. The bottleneck block
#
# ResNet-50, -101 and -152 use a cheaper block for their depth. Where the basic block
# has two 3×3 convolutions on $C$ channels, the **bottleneck** block first reduces the
# channels with a 1×1 convolution, does its 3×3 convolution on the reduced `width`, and
# expands again with a second 1×1 convolution to $4 \times$ `width` channels: the same
# 1×1 trick as in NiN (05) and in GoogLeNet's Inception modules (06). A block of
# ResNet-50 with 256 channels at its input and output (width 64) has
# $256 \cdot 64 + 9 \cdot 64 \cdot 64 + 64 \cdot 256 = 69{,}632$ convolution weights;
# two 3×3 convolutions on 256 channels would have $2 \cdot 9 \cdot 256^2 = 1{,}179{,}648$.
#
# Where the stride goes: the paper puts it on the first 1×1 convolution; torchvision
# (and `cnncourse.models`) put it on the 3×3 convolution ("ResNet v1.5"), which then
# reads every input position instead of skipping three quarters of them. It costs a
# little more compute (4.1 G multiply-adds for ResNet-50 instead of 3.8 G) and is a
# little more accurate.
#
# ## Exercise: `BottleneckBlock` (6 points)
#
# Write `BottleneckBlock(in_channels, width, stride=1)` as in the docstring (the output
# has `4 * width` channels). It is graded like `ResidualBlock`, against
# `cnncourse.models.Bottleneck`.

# %% nbgrader={"grade_id": "bottleneck_block", "solution": true}
class BottleneckBlock(nn.Module):
    """The bottleneck block: (N, in_channels, H, W) -> (N, 4 * width, H/s, W/s).

    BottleneckBlock(in_channels, width, stride=1)

    Attributes, registered in this order (out = 4 * width):
        conv1: nn.Conv2d(in_channels, width, 1, bias=False);         bn1: BatchNorm2d(width)
        conv2: nn.Conv2d(width, width, 3, stride, padding=1, bias=False); bn2: BatchNorm2d(width)
        conv3: nn.Conv2d(width, out, 1, bias=False);                  bn3: BatchNorm2d(out)
        shortcut: nn.Identity() if stride == 1 and in_channels == out, else
            nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False),
                          nn.BatchNorm2d(out))
    forward: relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)).
    """

    ### BEGIN SOLUTION
    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out = 4 * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)  # reduce
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, bias=False)  # v1.5 stride
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)  # expand
        self.bn3 = nn.BatchNorm2d(out)
        if stride == 1 and in_channels == out:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))  # (N, width, H, W)
        out = torch.relu(self.bn2(self.conv2(out)))  # (N, width, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (N, 4 * width, H/s, W/s): F(x)
        return torch.relu(out + self.shortcut(x))

    ### END SOLUTION


# %%
block = BottleneckBlock(256, 64)
print("parameters of a ResNet-50 block with 256 channels:", shapes.count_params(block))

# %% nbgrader={"grade": true, "grade_id": "test_bottleneck_block", "locked": true, "points": 6}
# Tests for BottleneckBlock: weights of cnncourse.models.Bottleneck copied in (6 points).
from cnncourse.grading import check_module, copy_weights, fail, randomise_weights, run_exercise
from cnncourse.models import Bottleneck as _RefBottleneck

if "BottleneckBlock" not in globals():
    fail("BottleneckBlock", "not defined yet", hint="write the class and run its cell")
_gen = torch.Generator().manual_seed(73)


def _check_bottleneck(
    args, kwargs, shape, dtype=torch.float32, grads=False, modes=(False, True), scale=1.0
):
    shown = [*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    call = f"BottleneckBlock({', '.join(shown)})"
    mine = run_exercise(BottleneckBlock, *args, name=call, **kwargs)
    if not isinstance(mine, nn.Module):
        fail(call, f"expected an nn.Module, got {type(mine).__name__}")
    ref = randomise_weights(_RefBottleneck(*args, **kwargs), _gen)
    mine_shapes = [(k.split(".")[-1], tuple(t.shape)) for k, t in mine.state_dict().items()]
    ref_shapes = [(k.split(".")[-1], tuple(t.shape)) for k, t in ref.state_dict().items()]
    if mine_shapes != ref_shapes:
        fail(call, f"weights and buffers {mine_shapes}, expected {ref_shapes}",
             hint="1×1 from in_channels to width, 3×3 (with the stride) on width, 1×1 to "
                  "4 * width, a BN after each, no biases; then the shortcut")  # fmt: skip
    mine, ref = copy_weights(ref, mine).to(dtype), ref.to(dtype)
    x = (scale * torch.randn(*shape, generator=_gen, dtype=dtype)).requires_grad_(grads)
    hint = ("a ReLU after bn1 and after bn2, none after bn3 before the sum; the stride on the "
            "3×3 convolution (v1.5), not on the first 1×1")  # fmt: skip
    for train in modes:
        check_module(mine, ref, x, call, train=train, grads=grads and train, generator=_gen,
                     hint=hint)  # fmt: skip


_check_bottleneck((16, 4), {}, (2, 16, 5, 5))
_check_bottleneck((8, 4), {"stride": 2}, (2, 8, 6, 6))
print("visible checks passed")
### BEGIN HIDDEN TESTS
_check_bottleneck((16, 4), {}, (3, 16, 4, 6), grads=True)  # identity shortcut
_check_bottleneck((8, 3), {"stride": 2}, (2, 8, 7, 9), grads=True)  # projection, odd sizes
_check_bottleneck((6, 2), {}, (2, 6, 5, 5))  # 6 -> 8 channels at stride 1: a projection
_check_bottleneck((12, 3), {"stride": 2}, (2, 12, 8, 8))  # same channels, stride 2
_check_bottleneck((8, 2), {}, (1, 8, 1, 1), modes=(False,))  # batch of 1, 1×1 maps
_check_bottleneck((8, 4), {"stride": 2}, (2, 8, 6, 5), dtype=torch.float64, grads=True)
_check_bottleneck((8, 4), {"stride": 2}, (2, 8, 6, 5), scale=1e3)  # large inputs in float32
### END HIDDEN TESTS

# %% [markdown]
# ## 7. The full architecture
#
# The lecture's list, with the numbers of the ImageNet models (`cnncourse.models.resnet18`
# to `resnet152`; the 32×32 networks of this notebook differ only in the stem):
#
# - **stack residual blocks**, in four *stages* (the paper's conv2_x to conv5_x);
# - **every residual block has two 3×3 conv layers** (ResNet-18 and -34; from ResNet-50
#   on, the bottleneck block of section 6);
# - **periodically, double the number of filters and downsample spatially with stride
#   2**: the first block of stages 2, 3 and 4 has stride 2, and the stages have 64, 128,
#   256 and 512 channels (four times that with bottleneck blocks) at 56, 28, 14 and 7
#   pixels for a 224×224 image;
# - **an additional conv layer at the beginning (the stem)**: a 7×7 convolution with 64
#   filters and stride 2, batch norm, ReLU, and a 3×3 max pool with stride 2: 224 → 56;
# - **no FC layers besides the final FC 1000** to the classes, after
# - **a global average pooling layer** after the last convolution (NiN's idea, notebook 05);
# - **batch normalisation after every conv layer**, and **no dropout**.
#
# | model | block | blocks per stage | parameters |
# |---|---|---|---|
# | ResNet-18 | basic | 2, 2, 2, 2 | 11.7M |
# | ResNet-34 | basic | 3, 4, 6, 3 | 21.8M |
# | ResNet-50 | bottleneck | 3, 4, 6, 3 | 25.6M |
# | ResNet-101 | bottleneck | 3, 4, 23, 3 | 44.5M |
# | ResNet-152 | bottleneck | 3, 8, 36, 3 | 60.2M |
#
# The depth counts the layers with weights: the stem, two or three per block, and the
# FC layer, e.g. $1 + 2 \cdot (3 + 4 + 6 + 3) + 1 = 34$ (the projections are not counted).
#
# ## Exercise: `resnet_params` (5 points)
#
# Write `resnet_params(block, layers, num_classes=1000, in_channels=3)`: the number of
# parameters of the ImageNet ResNet with `block` ("basic" or "bottleneck") and
# `layers[i]` blocks in stage `i` (any number of stages: stage $i$ has
# $64 \cdot 2^i$ channels, four times that for bottleneck blocks, and the network ends
# with one linear layer to `num_classes`). Count with the formulas: convolution
# weights (no biases), the two parameters per channel of every batch norm, the
# projection shortcuts (a 1×1 convolution and its batch norm, wherever a block changes
# the shape, including the first block of stage 1 with bottleneck blocks: 64 → 256
# channels), and the linear layer with its bias. `cnncourse.shapes.conv_params`,
# `batch_norm_params` and `linear_params` may help; building a network may not (the
# test forbids it). It is graded on configurations you have not seen, such as a
# ResNet-26. Raise a `ValueError` naming `block` for another block name, and naming
# `layers` if it is empty or holds a number below 1.

# %% nbgrader={"grade_id": "resnet_params", "solution": true}
def resnet_params(block: str, layers, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Parameters of the ImageNet ResNet with stages of layers[i] blocks of type block.

    block: "basic" (two 3×3 convs, expansion 1) or "bottleneck" (1×1, 3×3, 1×1,
    expansion 4). Stage i has width 64 * 2**i, and outputs expansion * width channels;
    its first block has stride 1 in stage 0, else 2. Stem: 7×7 conv from in_channels to
    64 (no bias) and its BN. Head: linear from the last stage's channels to num_classes.

    Raises:
        ValueError: for an unknown block (names block), or layers empty or holding a
            number below 1 (names layers).
    """
    ### BEGIN SOLUTION
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"block={block!r}: expected 'basic' or 'bottleneck'")
    layers = tuple(layers)
    if not layers or any(n < 1 for n in layers):
        raise ValueError(f"layers={layers!r}: expected one or more stages of at least 1 block")
    expansion = 1 if block == "basic" else 4
    total = shapes.conv_params(in_channels, 64, 7, bias=False) + shapes.batch_norm_params(64)
    channels = 64
    for i, num_blocks in enumerate(layers):
        width = 64 * 2**i
        out = expansion * width
        for j in range(num_blocks):
            stride = 2 if i > 0 and j == 0 else 1
            if block == "basic":
                total += shapes.conv_params(channels, out, 3, bias=False)
                total += shapes.conv_params(out, out, 3, bias=False)
                total += 2 * shapes.batch_norm_params(out)
            else:
                total += shapes.conv_params(channels, width, 1, bias=False)
                total += shapes.conv_params(width, width, 3, bias=False)
                total += shapes.conv_params(width, out, 1, bias=False)
                total += 2 * shapes.batch_norm_params(width) + shapes.batch_norm_params(out)
            if stride != 1 or channels != out:  # projection shortcut
                total += shapes.conv_params(channels, out, 1, bias=False)
                total += shapes.batch_norm_params(out)
            channels = out
    return total + shapes.linear_params(channels, num_classes)
    ### END SOLUTION


# %%
for name, args in {"ResNet-18": ("basic", (2, 2, 2, 2)), "ResNet-34": ("basic", (3, 4, 6, 3)),
                   "ResNet-50": ("bottleneck", (3, 4, 6, 3))}.items():  # fmt: skip
    print(f"{name}: {resnet_params(*args):,} parameters")

# %% nbgrader={"grade": true, "grade_id": "test_resnet_params", "locked": true, "points": 5}
# Tests for resnet_params, against cnncourse.models.ResNet built on the meta device
# (5 points).
from cnncourse.grading import ForbiddenCallError, check_number, check_raises, fail, run_exercise
from cnncourse.models import BasicBlock as _Basic
from cnncourse.models import Bottleneck as _Bottleneck
from cnncourse.models import ResNet as _ResNet

if "resnet_params" not in globals():
    fail("resnet_params", "not defined yet", hint="write the function and run its cell")


def _reference_count(block, layers, num_classes=1000, in_channels=3):
    expansion = 1 if block == "basic" else 4
    make = _Basic if block == "basic" else (lambda i, o, s: _Bottleneck(i, o // 4, s))
    widths = [expansion * 64 * 2**i for i in range(len(layers))]
    with torch.device("meta"):
        net = _ResNet(make, layers, widths, num_classes, in_channels)
    return sum(p.numel() for p in net.parameters())


def _no_networks(*args, **kwargs):
    raise ForbiddenCallError("resnet_params builds a network: count with the formulas instead")


def _check_count(block, layers, **kwargs):
    call = f"resnet_params({block!r}, {layers}{''.join(f', {k}={v}' for k, v in kwargs.items())})"
    expected = _reference_count(block, layers, **kwargs)
    saved = nn.Module.__init__
    nn.Module.__init__ = _no_networks  # no nn.Module may be built inside the call
    try:
        out = run_exercise(resnet_params, block, layers, name=call, **kwargs)
    finally:
        nn.Module.__init__ = saved
    if isinstance(out, bool) or not isinstance(out, int):
        fail(call, f"expected an int, got {type(out).__name__} ({out!r})")
    hint = (
        "count every conv (no biases), two parameters per BN channel, a projection "
        "(1×1 conv + BN) wherever a block changes the shape, and the FC with its bias"
    )
    check_number(out, expected, call, hint=hint)


_check_count("basic", (2, 2, 2, 2))
print("visible checks passed")
### BEGIN HIDDEN TESTS
check_number(_reference_count("basic", (2, 2, 2, 2)), 11_689_512, "reference ResNet-18")
_check_count("basic", (3, 4, 6, 3))  # ResNet-34
_check_count("bottleneck", (3, 4, 6, 3))  # ResNet-50
_check_count("bottleneck", (2, 2, 2, 2))  # ResNet-26
_check_count("basic", (1, 1, 1, 1), num_classes=10, in_channels=1)  # ResNet-10 on digits
_check_count("bottleneck", (3, 4, 23, 3), num_classes=100)  # ResNet-101
_check_count("basic", (2, 3), num_classes=7)  # two stages
_check_count("bottleneck", (1,), in_channels=4)  # one stage: its projection 64 -> 256
_check_count("basic", (1, 1, 1, 1, 1))  # five stages
check_raises(resnet_params, "plain", (2, 2, 2, 2), argument="block", why="an unknown block")
check_raises(resnet_params, "basic", (), argument="layers", why="no stages")
check_raises(resnet_params, "bottleneck", (3, 0, 6, 3), argument="layers",
             why="a stage with no blocks")  # fmt: skip
### END HIDDEN TESTS

# %% [markdown]
# Where the parameters of ResNet-50 are: the last stage alone, at 7×7 pixels, holds
# more than half of them, and the single FC layer (2048 → 1000) about 2M. Compare VGG-16
# (notebook 04): 138M parameters, 102M of them in its first dense layer. Global average
# pooling is what lets ResNet-152, 8 times deeper than VGG-16, have less than half its
# parameters.

# %%
with torch.device("meta"):
    resnet50 = models.resnet50()
per_part = {"stem": resnet50.stem, **{f"stage {i + 1}": s for i, s in enumerate(resnet50.stages())},
            "FC": resnet50.head}  # fmt: skip
total = shapes.count_params(resnet50)
for name, part in per_part.items():
    n = shapes.count_params(part)
    print(f"{name:<8} {n:>11,}  {n / total:5.1%}")
print(f"{'total':<8} {total:>11,}")

# %% [markdown]
# ## 8. Plain against residual, with your blocks
#
# `cnncourse.models.ResNet` builds a network from any block factory
# `(in_channels, out_channels, stride) -> block`, so your `ResidualBlock` plugs straight
# in. Below, 20-layer networks (three blocks per stage) of your blocks, with and
# without shortcuts, trained exactly as in section 2.

# %%
mine = {}
for residual in (False, True):
    torch.manual_seed(0)
    make_block = functools.partial(ResidualBlock, residual=residual)
    net = models.ResNet(make_block, (3, 3, 3), WIDTHS, num_classes=10, in_channels=1,
                        stem_channels=WIDTHS[0], small_input=True)  # fmt: skip
    name = f"{'residual' if residual else 'plain'}-20 (your blocks)"
    curves[name] = train_steps(net)
    mine[name] = training_error(net)
    print(f"{name:<26} training error {mine[name]:.1%}")

fig, ax = plt.subplots(figsize=(6, 3.4), facecolor="white")
for name in mine:
    ax.plot(smooth(curves[name]), label=f"{name}: {mine[name]:.0%}")
ax.set(xlabel="training step", ylabel="training error (smoothed)", facecolor="white")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# With seeds 0, 1 and 2 the reference blocks gave, at 20 layers, a training error of 36%,
# 17% and 32% without shortcuts against 0.6%, 0.9% and 0.9% with them (and 6%, 12% and
# 11% for plain-8): the gap is smaller than at 32 layers, as degradation grows with
# depth, but it is there in every run. Your blocks should give the same numbers as the
# reference ones, since they compute the same thing.
#
# ## Summary
#
# - Stacking more layers on a plain network makes it *train* worse (the degradation
#   problem): 69% training error at 32 layers against 6% at 8 layers, here, after the
#   same training.
# - A deeper model can represent the shallower one (extra layers as the identity), so
#   the problem is optimisation. A residual block $y = \mathrm{ReLU}(F(x) + x)$ makes the
#   identity easy to reach, $F = 0$ (your `make_identity`), and passes the gradient on
#   through the shortcut.
# - The basic block: two 3×3 conv + BN; the bottleneck block: 1×1, 3×3, 1×1 with
#   expansion 4, for the deeper models; projection shortcuts where the shape changes.
# - The architecture: a stem, stages that double the filters and halve the size with
#   stride 2, batch norm after every conv, no dropout, global average pooling and one
#   FC layer: 11.7M parameters for ResNet-18, 25.6M for ResNet-50.
#
# **Further questions.** (1) The paper's option A pads the shortcut with zero channels
# instead of projecting it: how many parameters does that save in ResNet-34? (2) He et
# al. 2016b ("Identity mappings in deep residual networks") move batch norm and ReLU
# *before* each convolution, so that the shortcut path has no ReLU at all: why would
# that help a 1001-layer network? (3) `zero_init_residual=True` starts every block as
# the identity, exactly what `make_identity` does: try it on the plain-32 network of
# section 2 — what happens, and why?
