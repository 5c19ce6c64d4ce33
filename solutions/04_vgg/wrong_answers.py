"""Plausible wrong answers for 04_vgg, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

A function exercise's region is written as the body of a function with its signature; the
VGGNet module's region as the body of a class; the table (a region inside a dict) as edits.
"""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- receptive field


# Every layer widens the field by k - 1, as if all strides were 1: right for VGG's 3×3
# stacks, wrong as soon as a stride (a pool) sits below another layer.
field_ignores_strides = wrong_edit(
    "receptive_field",
    fails={"test_receptive_field"},
    says=r"multiplies the jump",
    replace=[("        jump *= stride\n", "")],
)

# The jump updated before the layer's own window is added: a layer's stride counted for
# itself.
field_own_stride_first = wrong_edit(
    "receptive_field",
    fails={"test_receptive_field"},
    says=r"not for its own window",
    replace=[
        ("        jump *= stride\n", ""),
        (
            "        field += (kernel_size - 1) * jump",
            "        jump *= stride\n        field += (kernel_size - 1) * jump",
        ),
    ],
)

# Adding k instead of k - 1 per layer (the first layer's window already holds its centre).
field_adds_whole_kernel = wrong_edit(
    "receptive_field",
    fails={"test_receptive_field"},
    says=r"sees k×k pixels",
    replace=[("field += (kernel_size - 1) * jump", "field += kernel_size * jump")],
)

# The promised errors left out.
field_no_checks = wrong_edit(
    "receptive_field",
    fails={"test_receptive_field"},
    says=r"should raise ValueError",
    replace=[
        (
            """        if kernel_size < 1:
            raise ValueError(f"kernel_size={kernel_size}: expected at least 1")
        if stride < 1:
            raise ValueError(f"stride={stride}: expected at least 1")
""",
            "",
        ),
    ],
)


# --------------------------------------------------------------------------- stack params


# k·k weights per input channel forgotten: one k×k filter per output channel only.
@wrong_answer(
    "conv_stack_params", fails={"test_conv_stack_params"}, says=r"spans all the input channels"
)
def stack_forgets_input_channels(num_layers, kernel_size, channels, bias=False):
    return num_layers * channels * (kernel_size * kernel_size + (1 if bias else 0))


# The biases counted once for the whole stack.
@wrong_answer("conv_stack_params", fails={"test_conv_stack_params"}, says=r"its own biases")
def stack_bias_once(num_layers, kernel_size, channels, bias=False):
    weights = num_layers * kernel_size**2 * channels**2
    return weights + (channels if bias else 0)


# (k·C)² written with a float exponent: a float, and wrong in the last digits for huge C.
@wrong_answer("conv_stack_params", fails={"test_conv_stack_params"}, says=r"keep the arithmetic")
def stack_float(num_layers, kernel_size, channels, bias=False):
    return num_layers * ((kernel_size * channels) ** 2.0 + (channels if bias else 0))


# --------------------------------------------------------------------------- table

# D and E mixed up: four convolutions in the last three blocks of D.
table_d_like_e = wrong_edit(
    "vgg_table",
    fails={"test_vgg_table"},
    says=r"count the conv3 layers",
    replace=[('"D": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))',
              '"D": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))')],
)  # fmt: skip

# The first block of A read from the next column: two convolutions.
table_a_like_b = wrong_edit(
    "vgg_table",
    fails={"test_vgg_table"},
    says=r"count the conv3 layers",
    replace=[('"A": ((1, 64), (1, 128)', '"A": ((2, 64), (2, 128)')],
)

# Channels doubled once too often: 1024 in the last block.
table_last_block_1024 = wrong_edit(
    "vgg_table",
    fails={"test_vgg_table"},
    says=r"the number after 'conv3-'",
    replace=[("(3, 512), (3, 512))", "(3, 512), (3, 1024))")],
)

# --------------------------------------------------------------------------- VGGNet

# Batch norm after the ReLU: the same weights in the same order, a different function.
vgg_bn_after_relu = wrong_edit(
    "vgg_module",
    fails={"test_vgg_function"},
    says=r"batch norm \(if batch_norm\), ReLU, in that order",
    replace=[(
        """                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU(inplace=True))""",
        """                layers.append(nn.ReLU(inplace=True))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))""",
    )],
)  # fmt: skip

# No padding: each convolution takes 2 pixels off; the adaptive pool hides it on large
# inputs, not on small ones.
vgg_no_padding = wrong_edit(
    "vgg_module",
    fails={"test_vgg_shapes", "test_vgg_function"},
    says=r"padding 1",
    replace=[("kernel_size=3, padding=1)", "kernel_size=3)")],
)

# Written for RGB images: the first convolution always reads 3 channels.
vgg_ignores_in_channels = wrong_edit(
    "vgg_module",
    fails={"test_vgg_shapes", "test_vgg_function"},
    says=r"previous layer's channels",
    replace=[("blocks, channels = [], in_channels", "blocks, channels = [], 3")],
)

# The head flattens the feature maps directly: right only when they are pool_size² already.
vgg_no_adaptive_pool = wrong_edit(
    "vgg_module",
    fails={"test_vgg_shapes", "test_vgg_function"},
    says=r"AdaptiveAvgPool2d",
    replace=[("            nn.AdaptiveAvgPool2d(pool_size),", "")],
)

# "The bias is redundant before batch norm", so it is left out: a sound idea, but not the
# reference's (or torchvision's) layers.
vgg_no_bias_with_bn = wrong_edit(
    "vgg_module",
    fails={"test_vgg_shapes", "test_vgg_function"},
    says=r"bias",
    replace=[(
        "nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)",
        "nn.Conv2d(channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm)",
    )],
)  # fmt: skip

# A cast "to be safe": float32 in, float32 out, but float64 in is no longer float64 out.
vgg_forward_casts_to_float = wrong_edit(
    "vgg_module",
    fails={"test_vgg_function"},
    says=r"keep the input's dtype",
    replace=[("x = self.features(x)", "x = self.features(x.float())")],
)

# The paper's dropout rate hard-coded: `dropout` ignored.
vgg_dropout_fixed = wrong_edit(
    "vgg_module",
    fails={"test_vgg_function"},
    says=r"look at self.head",
    replace=[("nn.Dropout(dropout)", "nn.Dropout(0.5)")],
)

# --------------------------------------------------------------------------- memory


memory_conv_without_bias = wrong_edit(
    "vgg_memory",
    fails={"test_memory_features"},
    says=r"forget the biases",
    replace=[("out_channels * (channels * 3 * 3 + 1)", "out_channels * channels * 3 * 3")],
)

# "No pixel lost": pools that round up; right whenever every size is even.
memory_pool_rounds_up = wrong_edit(
    "vgg_memory",
    fails={"test_memory_features"},
    says=r"rounding down",
    replace=[("size //= 2", "size = (size + 1) // 2")],
)

# The promised error left out: an image too small for the pools gives rows of size 0.
memory_no_size_check = wrong_edit(
    "vgg_memory",
    fails={"test_memory_features"},
    says=r"should raise ValueError",
    replace=[
        (
            """        if size < 1:
            raise ValueError(f"image_size={image_size}: too small for {len(config)} pools")
""",
            "",
        ),
    ],
)

# fc1 reads the last feature map as it is, forgetting the adaptive pool: right at 224×224
# for VGG-16, wrong whenever the last map is not pool_size × pool_size.
memory_fc1_from_feature_size = wrong_edit(
    "vgg_memory",
    fails={"test_memory_dense"},
    says=r"the adaptive pool",
    replace=[("widths = [channels * pool_size * pool_size,", "widths = [channels * size * size,")],
)

memory_dense_without_bias = wrong_edit(
    "vgg_memory",
    fails={"test_memory_dense"},
    says=r"one bias per unit",
    replace=[("widths[j + 1] * (widths[j] + 1)", "widths[j + 1] * widths[j]")],
)
