"""Plausible wrong answers for 06_googlenet, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

A function exercise's region is written as the body of a function with its signature, a
module's region as the body of a class; small slips as edits of the solution.
"""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- shapes

# The concatenation counts the three convolutions' filters only: the pool branch "has no
# filters", so its channels are forgotten (the lecture's 28×28×416 instead of ×672).
shapes_concat_without_pool = wrong_edit(
    "inception_shapes",
    fails={"test_inception_shapes"},
    says=r"the pool branch's too",
    replace=[(
        'out["concat"] = (sum(c for c, _, _ in out.values()), height, width)',
        'out["concat"] = (ch1x1 + ch3x3 + ch5x5, height, width)',
    )],
)  # fmt: skip

# Convolutions without padding ("valid"): each k×k branch loses k - 1 rows and columns.
shapes_valid_convolutions = wrong_edit(
    "inception_shapes",
    fails={"test_inception_shapes"},
    says=r"pad the 3x3 convolution by 1",
    replace=[
        ('"3x3": (ch3x3, height, width)', '"3x3": (ch3x3, height - 2, width - 2)'),
        ('"5x5": (ch5x5, height, width)', '"5x5": (ch5x5, height - 4, width - 4)'),
    ],
)

# pool_proj ignored: the pool branch keeps in_channels even after its 1×1 projection.
shapes_pool_proj_ignored = wrong_edit(
    "inception_shapes",
    fails={"test_inception_shapes"},
    says=r"sets the channels to pool_proj",
    replace=[(
        "pool = in_channels if pool_proj is None else pool_proj",
        "pool = in_channels",
    )],
)  # fmt: skip

# The promised errors left out.
shapes_no_checks = wrong_edit(
    "inception_shapes",
    fails={"test_inception_shapes"},
    says=r"should raise ValueError",
    replace=[(
        """        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
""",
        "        pass\n",
    )],
)  # fmt: skip

# --------------------------------------------------------------------------- naive MACs

# The max pool counted as if it were a 3×3 convolution with one filter per channel.
naive_macs_counts_pool = wrong_edit(
    "naive_inception_macs",
    fails={"test_naive_inception_macs"},
    says=r"multiplies nothing",
    replace=[(
        "return height * width * per_position",
        "return height * width * (per_position + 3 * 3 * in_channels)",
    )],
)  # fmt: skip

# k·k MACs per output value, as if each filter saw one channel.
naive_macs_forgets_in_channels = wrong_edit(
    "naive_inception_macs",
    fails={"test_naive_inception_macs"},
    says=r"dot product over all in_channels",
    replace=[(
        "per_position = in_channels * (1 * 1 * ch1x1 + 3 * 3 * ch3x3 + 5 * 5 * ch5x5)",
        "per_position = 1 * 1 * ch1x1 + 3 * 3 * ch3x3 + 5 * 5 * ch5x5",
    )],
)  # fmt: skip

# Written for square maps only: an (h, w) pair breaks it.
naive_macs_square_only = wrong_edit(
    "naive_inception_macs",
    fails={"test_naive_inception_macs"},
    says=r"size may be an int or a \(height, width\) pair",
    replace=[(
        "height, width = (size, size) if isinstance(size, int) else size",
        "height = width = size",
    )],
)  # fmt: skip

# --------------------------------------------------------------------------- MACs

# Only the convolutions of the naive module counted, now on the reduced inputs: the 1×1
# reductions "are cheap" and left out.
macs_forget_reductions = wrong_edit(
    "inception_macs",
    fails={"test_inception_macs"},
    says=r"the 1×1 reductions are convolutions too",
    replace=[
        ("        + in_channels * ch3x3red  # 1×1 reduction ...\n", ""),
        ("        + in_channels * ch5x5red\n", ""),
    ],
)

# The 3×3 convolution reads the module's input, as in the naive module.
macs_3x3_reads_input = wrong_edit(
    "inception_macs",
    fails={"test_inception_macs"},
    says=r"reads the ch3x3red reduced channels",
    replace=[("+ 3 * 3 * ch3x3red * ch3x3", "+ 3 * 3 * in_channels * ch3x3")],
)

# The lecture's slip: the 3×3 term added twice (358M for its example instead of 271M).
macs_3x3_twice = wrong_edit(
    "inception_macs",
    fails={"test_inception_macs"},
    says=r"count each of the six convolutions once",
    replace=[(
        "        + 3 * 3 * ch3x3red * ch3x3  #",
        "        + 3 * 3 * ch3x3red * ch3x3\n        + 3 * 3 * ch3x3red * ch3x3  #",
    )],
)  # fmt: skip

# --------------------------------------------------------------------------- NaiveInception

# nn.MaxPool2d's stride defaults to its kernel size: the pool branch halves the map.
naive_pool_default_stride = wrong_edit(
    "naive_module",
    fails={"test_naive_module"},
    says=r"3×3 max pool at stride 1 with padding 1",
    replace=[("nn.MaxPool2d(3, stride=1, padding=1)", "nn.MaxPool2d(3, padding=1)")],
)

# Padding 1 everywhere: right for the 3×3, two pixels short for the 5×5.
naive_5x5_padding_1 = wrong_edit(
    "naive_module",
    fails={"test_naive_module"},
    says=r"5×5 convolution with padding 2",
    replace=[("ch5x5, 5, padding=2)", "ch5x5, 5, padding=1)")],
)  # fmt: skip

# The pool branch first ("the input's channels, then the new ones").
naive_pool_first = wrong_edit(
    "naive_module",
    fails={"test_naive_module"},
    says=r"in the order branch1, branch2, branch3, branch4",
    replace=[(
        "branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]",
        "branches = [self.branch4(x), self.branch1(x), self.branch2(x), self.branch3(x)]",
    )],
)  # fmt: skip

# One ReLU after the concatenation instead of one per convolution: it also clips the
# pool branch's negative values.
naive_relu_after_concat = wrong_edit(
    "naive_module",
    fails={"test_naive_module"},
    says=r"with nothing after it",
    replace=[("return torch.cat(branches, dim=1)", "return torch.cat(branches, dim=1).relu()")],
)  # fmt: skip

# --------------------------------------------------------------------------- Inception

# Batch norm after the ReLU: the same tensors in the same order, another function.
inception_bn_after_relu = wrong_edit(
    "inception_module",
    fails={"test_inception_function"},
    says=r"batch norm \(if batch_norm, with eps=0.001\), ReLU, in that order",
    replace=[(
        """            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out, eps=0.001))
            return [*layers, nn.ReLU(inplace=True)]""",
        """            layers.append(nn.ReLU(inplace=True))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out, eps=0.001))
            return layers""",
    )],
)  # fmt: skip

# PyTorch's default eps (1e-5) instead of the docstring's 0.001.
inception_bn_default_eps = wrong_edit(
    "inception_module",
    fails={"test_inception_function"},
    says=r"with eps=0.001",
    replace=[("nn.BatchNorm2d(c_out, eps=0.001)", "nn.BatchNorm2d(c_out)")],
)

# torchvision's famous slip: 3×3 filters in the "5×5" branch.
inception_5x5_as_3x3 = wrong_edit(
    "inception_module",
    fails={"test_inception_layers", "test_inception_function"},
    says=r"the kernels are 1, 3 and 5",
    replace=[("*conv(ch5x5red, ch5x5, 5)", "*conv(ch5x5red, ch5x5, 3)")],
)

# The projection before the pool: the same weights, but the pool now sees pool_proj
# channels of projected features instead of the input.
inception_projection_before_pool = wrong_edit(
    "inception_module",
    fails={"test_inception_function"},
    says=r"max pool \(stride 1, padding 1\) first",
    replace=[(
        "nn.MaxPool2d(3, stride=1, padding=1), *conv(in_channels, pool_proj, 1)",
        "*conv(in_channels, pool_proj, 1), nn.MaxPool2d(3, stride=1, padding=1)",
    )],
)  # fmt: skip

# Keeping the biases with batch norm: harmless in function, but not the reference's layers.
inception_bias_with_bn = wrong_edit(
    "inception_module",
    fails={"test_inception_layers", "test_inception_function"},
    says=r"a convolution has no bias",
    replace=[("bias=not batch_norm)", "bias=True)")],
)


# The reductions as plain linear maps: no batch norm or ReLU after the 1×1 convolutions
# in front of the 3×3 and 5×5 (the parameters are the same, the function is not).
@wrong_answer(
    "inception_module", fails={"test_inception_function"}, says=r"1×1 reduction, then the 3×3"
)
class InceptionNoReluAfterReductions:
    def __init__(
        self,
        in_channels,
        ch1x1,
        ch3x3red,
        ch3x3,
        ch5x5red,
        ch5x5,
        pool_proj,
        batch_norm=False,
    ):
        super().__init__()

        def conv(c_in, c_out, k, activation=True):
            layers = [nn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out, eps=0.001))
            return [*layers, nn.ReLU()] if activation else layers

        self.branch1 = nn.Sequential(*conv(in_channels, ch1x1, 1))
        self.branch2 = nn.Sequential(
            *conv(in_channels, ch3x3red, 1, activation=False), *conv(ch3x3red, ch3x3, 3)
        )
        self.branch3 = nn.Sequential(
            *conv(in_channels, ch5x5red, 1, activation=False), *conv(ch5x5red, ch5x5, 5)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), *conv(in_channels, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)


# --------------------------------------------------------------------------- parameters

params_forget_biases = wrong_edit(
    "inception_params",
    fails={"test_inception_params"},
    says=r"one bias per filter",
    replace=[("if batch_norm else c_out", "if batch_norm else 0")],
)  # fmt: skip

# Batch norm's two parameters added, and the convolution's bias kept.
params_bn_keeps_bias = wrong_edit(
    "inception_params",
    fails={"test_inception_params"},
    says=r"with batch norm a convolution has no bias",
    replace=[("total += 2 * c_out if", "total += 3 * c_out if")],
)  # fmt: skip

# --------------------------------------------------------------------------- loss

# The two auxiliary losses averaged before weighting: 0.3 in total instead of 0.3 each.
loss_aux_mean = wrong_edit(
    "googlenet_loss",
    fails={"test_googlenet_loss"},
    says=r"their sum, not their mean",
    replace=[("+ aux_weight * aux", "+ aux_weight * aux / 2")],
)

# The paper's weight written in: aux_weight ignored.
loss_fixed_weight = wrong_edit(
    "googlenet_loss",
    fails={"test_googlenet_loss"},
    says=r"not a fixed 0.3",
    replace=[("+ aux_weight * aux", "+ 0.3 * aux")],
)

# Written for training mode only: in eval mode the model returns the logits alone.
loss_eval_mode_unhandled = wrong_edit(
    "googlenet_loss",
    fails={"test_googlenet_loss"},
    says=r"handle a plain tensor too",
    replace=[(
        """    if isinstance(outputs, torch.Tensor):  # eval mode, or no auxiliary classifiers
        return F.cross_entropy(outputs, target)
""",
        "",
    )],
)  # fmt: skip


# --------------------------------------------------------------------------- from scratch


# The library's counts, which the exercises ask to write out.
@wrong_answer(
    "naive_inception_macs", fails={"test_naive_inception_macs"}, says=r"Write the formula"
)
def naive_macs_calls_reference(in_channels, size, ch1x1, ch3x3, ch5x5):
    return sum(shapes.conv_macs(in_channels, c, k, size) for c, k in
               ((ch1x1, 1), (ch3x3, 3), (ch5x5, 5)))  # fmt: skip


@wrong_answer("inception_macs", fails={"test_inception_macs"}, says=r"Write the formula")
def macs_calls_summary(in_channels, size, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    h, w = (size, size) if isinstance(size, int) else size
    module = models.Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
    return shapes.summary(module, (in_channels, h, w), verbose=False).total_macs


# --------------------------------------------------------------------------- loss gradients

# The auxiliary logits detached ("they are only helpers"): the same number, but no gradient
# reaches the auxiliary classifiers.
loss_aux_detached = wrong_edit(
    "googlenet_loss",
    fails={"test_googlenet_loss"},
    says=r"no gradient reaches aux1",
    replace=[(
        "aux = F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target)",
        "aux = F.cross_entropy(aux1.detach(), target) + F.cross_entropy(aux2.detach(), target)",
    )],
)  # fmt: skip
