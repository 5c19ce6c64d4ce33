"""Plausible wrong answers for 07_resnet, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.
"""

from torch import nn

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- make_identity

# gamma zeroed, beta forgotten: F(x) = beta, a constant added to every pixel.
identity_keeps_beta = wrong_edit(
    "make_identity",
    fails={"test_make_identity"},
    says=r"F\(x\) ends with a batch norm",
    replace=[("        bn.bias.zero_()\n", "")],
)

# The first batch norm zeroed: relu(bn1(.)) = 0, but bn2 of zeros is not zero.
identity_first_bn = wrong_edit(
    "make_identity",
    fails={"test_make_identity"},
    says=r"gamma and beta",
    replace=[("bn = block.last_bn()", "bn = block.bn1")],
)

# The last convolution zeroed instead (and beta): bn2 of zeros is -gamma * mean / std in
# eval mode; and a convolution changed that did not need to.
identity_zero_conv = wrong_edit(
    "make_identity",
    fails={"test_make_identity"},
    says=r"leave the convolutions alone",
    replace=[("        bn.weight.zero_()\n", "        block.conv2.weight.zero_()\n")],
)

# Frozen on the way: the block can never learn again.
identity_frozen = wrong_edit(
    "make_identity",
    fails={"test_make_identity"},
    says=r"no longer requires grad",
    replace=[("    return block\n", "    bn.requires_grad_(False)\n    return block\n")],
)

# No checks: a projection or a plain block is "made the identity" silently.
identity_no_checks = wrong_edit(
    "make_identity",
    fails={"test_make_identity"},
    says=r"should raise ValueError",
    replace=[
        ('    if not getattr(block, "residual", False):\n', "    if False:\n"),
        ("    if not isinstance(block.shortcut, nn.Identity):\n", "    if False:\n"),
    ],
)

# --------------------------------------------------------------------------- ResidualBlock

# ReLU on F(x) before the sum: the block can only add to its input.
block_relu_before_sum = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"only then the ReLU",
    replace=[("out = self.bn2(self.conv2(out))", "out = torch.relu(self.bn2(self.conv2(out)))")],
)

# A projection without its batch norm.
block_projection_without_bn = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"a 1×1 conv with the stride\s+and a BN",
    replace=[(
        "                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),\n"
        "                nn.BatchNorm2d(out_channels),\n",
        "                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),\n",
    )],
)  # fmt: skip

# Projection only when the stride changes: more channels at stride 1 cannot be added.
block_projection_on_stride_only = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"nn.Identity\(\) when the shape is unchanged",
    replace=[("elif stride == 1 and in_channels == out_channels:", "elif stride == 1:")],
)

# The stride on the second convolution.
block_stride_on_conv2 = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"relu\(bn1\(conv1\(x\)\)\)",
    replace=[
        ("nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)",
         "nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)"),
        ("nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)",
         "nn.Conv2d(out_channels, out_channels, 3, stride, padding=1, bias=False)"),
    ],
)  # fmt: skip

# residual=False ignored: the plain block keeps its shortcut.
block_residual_flag_ignored = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"None if residual is False",
    replace=[
        ("        if not residual:\n            self.shortcut = None\n        elif", "        if")
    ],
)

# The shortcut detached "to save memory": same values, but no gradient through it.
block_detached_shortcut = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"gradient",
    replace=[("out = out + self.shortcut(x)", "out = out + self.shortcut(x).detach()")],
)

# Cast to float32 "to be safe": a float64 model returns float32.
block_float32 = wrong_edit(
    "residual_block",
    fails={"test_residual_block"},
    says=r"dtype",
    replace=[("        return torch.relu(out)\n", "        return torch.relu(out).float()\n")],
)


# The sum written in place on the shortcut's output, which for nn.Identity *is* x.
@wrong_answer("residual_block", fails={"test_residual_block"}, says=r"changed its argument x")
class block_adds_into_x(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, residual=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if not residual:
            self.shortcut = None
        elif stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.shortcut is None:
            return torch.relu(out)
        identity = self.shortcut(x)
        identity += out
        return torch.relu(identity)


# --------------------------------------------------------------------------- BottleneckBlock

# The paper's v1 placement: the stride on the first 1×1 convolution.
bottleneck_stride_on_conv1 = wrong_edit(
    "bottleneck_block",
    fails={"test_bottleneck_block"},
    says=r"v1\.5",
    replace=[
        ("nn.Conv2d(in_channels, width, 1, bias=False)",
         "nn.Conv2d(in_channels, width, 1, stride, bias=False)"),
        ("nn.Conv2d(width, width, 3, stride, padding=1, bias=False)",
         "nn.Conv2d(width, width, 3, padding=1, bias=False)"),
    ],
)  # fmt: skip

# No expansion: the block outputs width channels.
bottleneck_no_expansion = wrong_edit(
    "bottleneck_block",
    fails={"test_bottleneck_block"},
    says=r"1×1 to\s+4 \* width",
    replace=[("        out = 4 * width\n", "        out = width\n")],
)

# The ReLU after the 3×3 convolution forgotten.
bottleneck_missing_relu = wrong_edit(
    "bottleneck_block",
    fails={"test_bottleneck_block"},
    says=r"a ReLU after bn1 and after bn2",
    replace=[("out = torch.relu(self.bn2(self.conv2(out)))", "out = self.bn2(self.conv2(out))")],
)

# Projection only with a stride: 6 -> 8 channels at stride 1 gets an identity.
bottleneck_projection_on_stride_only = wrong_edit(
    "bottleneck_block",
    fails={"test_bottleneck_block"},
    says=r"then the shortcut",
    replace=[("if stride == 1 and in_channels == out:", "if stride == 1:")],
)

# The branch computed on .data: the right numbers, and no gradient to conv1, bn1, x.
bottleneck_data = wrong_edit(
    "bottleneck_block",
    fails={"test_bottleneck_block"},
    says=r"no gradient reaches|gradient with respect to",
    replace=[("self.bn1(self.conv1(x)))", "self.bn1(self.conv1(x.data)))")],
)

# --------------------------------------------------------------------------- resnet_params

# The first block of stage 1 of a bottleneck ResNet (64 -> 256 channels) left without
# its projection: only the strided blocks get one.
params_projection_on_stride_only = wrong_edit(
    "resnet_params",
    fails={"test_resnet_params"},
    says=r"a projection",
    replace=[("if stride != 1 or channels != out:", "if stride != 1:")],
)

# Batch norm has no parameters, or so one thinks.
params_without_batch_norm = wrong_edit(
    "resnet_params",
    fails={"test_resnet_params"},
    says=r"two parameters per BN channel",
    replace=[("+ shapes.batch_norm_params(64)", ""),
             ("                total += 2 * shapes.batch_norm_params(out)\n", "")],
)  # fmt: skip

# The FC layer without its bias.
params_fc_without_bias = wrong_edit(
    "resnet_params",
    fails={"test_resnet_params"},
    says=r"the FC with its bias",
    replace=[("shapes.linear_params(channels, num_classes)",
              "shapes.linear_params(channels, num_classes, bias=False)")],
)  # fmt: skip

# No argument checks.
params_no_checks = wrong_edit(
    "resnet_params",
    fails={"test_resnet_params"},
    says=r"should raise ValueError",
    replace=[('    if block not in ("basic", "bottleneck"):\n', "    if False:\n"),
             ("    if not layers or any(n < 1 for n in layers):\n", "    if False:\n")],
)  # fmt: skip


# Counting by building the network.
@wrong_answer("resnet_params", fails={"test_resnet_params"}, says=r"count with the formulas")
def params_builds_the_network(block, layers, num_classes=1000, in_channels=3):
    expansion = 1 if block == "basic" else 4

    def make(i, o, s):
        return models.BasicBlock(i, o, s) if block == "basic" else models.Bottleneck(i, o // 4, s)

    widths = [expansion * 64 * 2**i for i in range(len(layers))]
    with torch.device("meta"):
        net = models.ResNet(make, layers, widths, num_classes, in_channels)
    return shapes.count_params(net)
