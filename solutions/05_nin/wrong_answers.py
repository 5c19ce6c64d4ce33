"""Plausible wrong answers for 05_nin, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

Most are one slip in the solution (``wrong_edit``); a mistake that changes the whole
approach is written as a function body (``wrong_answer``).
"""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- conv1x1

# reshape to (N, H*W, C) "so that channels come last": reshape does not move an axis, it
# reads the memory in (C, H, W) order and mixes channels.
conv1x1_reshape_scrambles = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"reshape does not move the channel axis",
    replace=[(
        "    out = weight.reshape(c_out, c_in) @ x.reshape(n, c_in, h * w)  # (N, C_out, H*W)",
        "    out = (x.reshape(n, h * w, c_in) @ weight.reshape(c_out, c_in).T).reshape(n, c_out, "
        "h * w)",
    )],
)  # fmt: skip

# .view instead of .reshape: fine on a fresh tensor, fails on a transposed or channels-last
# input, which is just as legal.
conv1x1_view = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"use reshape, not view",
    replace=[("x.reshape(n, c_in, h * w)", "x.view(n, c_in, h * w)")],
)

# The bias forgotten.
conv1x1_no_bias = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"add bias\[o\] to every pixel",
    replace=[("        out = out + bias.reshape(1, c_out, 1)", "        pass")],
)

# The bias broadcast along the last axis (the pixels) instead of the channels: a shape
# error, or wrong values when H*W equals C_out.
conv1x1_bias_on_pixels = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"check the shapes in your matrix product",
    replace=[("out + bias.reshape(1, c_out, 1)", "out + bias")],
)


# A loop over the pixels: right, and hundreds of times slower.
@wrong_answer("conv1x1", fails={"test_conv1x1"}, says=r"Vectorise")
def conv1x1_pixel_loop(x, weight, bias=None):
    if x.dim() != 4:
        raise ValueError(f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1):
        raise ValueError(f"weight: expected (C_out, C_in, 1, 1), got {tuple(weight.shape)}")
    n, c_in, h, w = x.shape
    if weight.shape[1] != c_in:
        raise ValueError(f"weight: expects {weight.shape[1]} input channels, x has {c_in}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},)")
    rows = []
    for i in range(h):
        row = []
        for j in range(w):
            pixel = x[:, :, i, j] @ weight[:, :, 0, 0].T  # (N, C_out)
            row.append(pixel if bias is None else pixel + bias)
        rows.append(torch.stack(row, dim=-1))
    return torch.stack(rows, dim=-2)


# F.conv2d itself.
@wrong_answer("conv1x1", fails={"test_conv1x1"}, says=r"Write it yourself")
def conv1x1_calls_conv2d(x, weight, bias=None):
    return F.conv2d(x, weight, bias)


# Computed in float32 whatever the input: float64 in, float32 out.
conv1x1_float32 = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"keep the input's dtype",
    replace=[("@ x.reshape(n, c_in, h * w)", "@ x.float().reshape(n, c_in, h * w)")],
)

# The weights read through .data ("they are parameters, not inputs"): the values are right,
# but no gradient reaches the weight.
conv1x1_weight_data = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"no gradient reaches weight",
    replace=[("out = weight.reshape(c_out, c_in)", "out = weight.data.reshape(c_out, c_in)")],
)

# No check that the channels agree (the matrix product fails with its own error).
conv1x1_no_channel_check = wrong_edit(
    "conv1x1",
    fails={"test_conv1x1"},
    says=r"should raise ValueError",
    replace=[(
        """    if weight.shape[1] != c_in:
        raise ValueError(f"weight: expects {weight.shape[1]} input channels, x has {c_in}")
""",
        "",
    )],
)  # fmt: skip

# --------------------------------------------------------------------------- conv_cost

# A "valid" convolution's output size: the padding forgotten.
cost_no_padding = wrong_edit(
    "conv_cost",
    fails={"test_conv_cost"},
    says=r"'same' padding keeps the output",
    replace=[(
        "return height * width * out_channels",
        "return (height - kernel_size + 1) * (width - kernel_size + 1) * out_channels",
    )],
)

# k instead of k² weights per input channel.
cost_k_not_k_squared = wrong_edit(
    "conv_cost",
    fails={"test_conv_cost"},
    says=r"k·k weights per input channel",
    replace=[("kernel_size * kernel_size * in_channels", "kernel_size * in_channels")],
)

# The filter's depth forgotten: one k×k filter per output channel.
cost_forgets_depth = wrong_edit(
    "conv_cost",
    fails={"test_conv_cost"},
    says=r"as deep as the input",
    replace=[("kernel_size * kernel_size * in_channels", "kernel_size * kernel_size")],
)


# A float result (math.pow), which loses digits on large counts.
@wrong_answer("conv_cost", fails={"test_conv_cost"}, says=r"keep the arithmetic in ints")
def cost_float(in_channels, out_channels, kernel_size, height, width):
    arguments = {"in_channels": in_channels, "out_channels": out_channels,
                 "kernel_size": kernel_size, "height": height, "width": width}  # fmt: skip
    for name, value in arguments.items():
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
    return height * width * out_channels * math.pow(kernel_size, 2) * in_channels


# The library's count, which the exercise asks to write out.
cost_calls_reference = wrong_edit(
    "conv_cost",
    fails={"test_conv_cost"},
    says=r"Write the formula yourself",
    replace=[(
        "    return height * width * out_channels * kernel_size * kernel_size * in_channels",
        "    return shapes.conv_macs(in_channels, out_channels, kernel_size, (height, width))",
    )],
)  # fmt: skip

# The promised errors left out.
cost_no_checks = wrong_edit(
    "conv_cost",
    fails={"test_conv_cost"},
    says=r"should raise ValueError",
    replace=[("        if value < 1:\n", "        if value < -10**9:\n")],
)

# --------------------------------------------------------------------------- bottleneck_cost

# Only the k×k convolution counted: "the 1×1 layer is free".
bottleneck_forgets_reduction = wrong_edit(
    "bottleneck_cost",
    fails={"test_bottleneck_cost"},
    says=r"the 1×1 convolution costs something too",
    replace=[("    return reduce + conv_cost(", "    return conv_cost(")],
)

# The k×k convolution counted on the full input, as if there were no bottleneck.
bottleneck_reads_input = wrong_edit(
    "bottleneck_cost",
    fails={"test_bottleneck_cost"},
    says=r"reads the bottleneck's mid_channels",
    replace=[(
        "conv_cost(mid_channels, out_channels, kernel_size",
        "conv_cost(in_channels, out_channels, kernel_size",
    )],
)

# The 1×1 convolution sent to out_channels.
bottleneck_reduces_to_out = wrong_edit(
    "bottleneck_cost",
    fails={"test_bottleneck_cost"},
    says=r"outputs mid_channels channels",
    replace=[(
        "conv_cost(in_channels, mid_channels, 1, height, width)",
        "conv_cost(in_channels, out_channels, 1, height, width)",
    )],
)

# --------------------------------------------------------------------------- global average pool

# The mean over the wrong axes (channels and height).
gap_wrong_axes = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"average over H and W",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "x.mean(dim=(1, 2), keepdim=True)")],
)

# (N, C) instead of (N, C, 1, 1).
gap_drops_dims = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"keepdim=True",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "x.mean(dim=(2, 3))")],
)

# Sum instead of mean.
gap_sum = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"average, not sum",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "x.sum(dim=(2, 3), keepdim=True)")],
)

# Divided by H·H: right for square maps only.
gap_square_only = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"not H·H",
    replace=[(
        "x.mean(dim=(2, 3), keepdim=True)",
        "x.sum(dim=(2, 3), keepdim=True) / (x.shape[2] * x.shape[2])",
    )],
)

# Max instead of mean: global *max* pooling.
gap_max = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"average, not maximum",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "x.amax(dim=(2, 3), keepdim=True)")],
)

# The input divided in place, then summed: the caller's tensor is changed.
gap_in_place = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"changed its argument x in place",
    replace=[(
        "    return x.mean(dim=(2, 3), keepdim=True)",
        "    x /= x.shape[2] * x.shape[3]\n    return x.sum(dim=(2, 3), keepdim=True)",
    )],
)

# The mean taken in float32 "for precision": float64 in, float32 out.
gap_float32 = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"keep the input's dtype",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "x.float().mean(dim=(2, 3), keepdim=True)")],
)

# The library's pooling, which the exercise asks to replace.
gap_adaptive_pool = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"Write it yourself",
    replace=[("x.mean(dim=(2, 3), keepdim=True)", "F.adaptive_avg_pool2d(x, 1)")],
)

# No check of the input's dimensions.
gap_no_check = wrong_edit(
    "global_avg_pool2d",
    fails={"test_global_avg_pool2d"},
    says=r"should raise ValueError",
    replace=[("    if x.dim() != 4:", "    if x.dim() < 0:")],
)

# --------------------------------------------------------------------------- dense head

# Weights only.
head_no_biases = wrong_edit(
    "dense_head_params",
    fails={"test_dense_head_params"},
    says=r"count the biases too",
    replace=[("n_out * (n_in + 1)", "n_out * n_in")],
)

# The first dense layer reads one number per channel (as if a GAP came first).
head_reads_channels = wrong_edit(
    "dense_head_params",
    fails={"test_dense_head_params"},
    says=r"channels · height · width numbers",
    replace=[("widths = [channels * height * width,", "widths = [channels,")],
)

# The hidden layers forgotten: one dense layer from the maps to the classes.
head_ignores_hidden = wrong_edit(
    "dense_head_params",
    fails={"test_dense_head_params"},
    says=r"n_in · n_out weights and n_out biases",
    replace=[("widths = [channels * height * width, *hidden, num_classes]",
              "widths = [channels * height * width, num_classes]")],
)  # fmt: skip

# --------------------------------------------------------------------------- MLPConv

# The 1×1 convolutions given the block's kernel size (and padding) too.
mlpconv_all_kernels = wrong_edit(
    "mlpconv",
    fails={"test_mlpconv"},
    says=r"1×1 from mid to mid",
    replace=[
        ("nn.Conv2d(mid, mid, kernel_size=1)", "nn.Conv2d(mid, mid, kernel_size, 1, padding)"),
        ("nn.Conv2d(mid, out_channels, kernel_size=1)",
         "nn.Conv2d(mid, out_channels, kernel_size, 1, padding)"),
    ],
)  # fmt: skip

# The stride applied to every convolution of the block.
mlpconv_stride_everywhere = wrong_edit(
    "mlpconv",
    fails={"test_mlpconv"},
    says=r"only the first convolution has the kernel size, stride",
    replace=[
        ("nn.Conv2d(mid, mid, kernel_size=1)", "nn.Conv2d(mid, mid, 1, stride)"),
        ("nn.Conv2d(mid, out_channels, kernel_size=1)", "nn.Conv2d(mid, out_channels, 1, stride)"),
    ],
)

# No ReLU at the end of the block.
mlpconv_no_last_relu = wrong_edit(
    "mlpconv",
    fails={"test_mlpconv"},
    says=r"a ReLU after each of the three convolutions",
    replace=[(
        """            nn.Conv2d(mid, out_channels, kernel_size=1),
            nn.ReLU(inplace=True),""",
        """            nn.Conv2d(mid, out_channels, kernel_size=1),""",
    )],
)  # fmt: skip

# mid_channels ignored: every convolution is out_channels wide.
mlpconv_ignores_mid = wrong_edit(
    "mlpconv",
    fails={"test_mlpconv"},
    says=r"k×k from in_channels to mid",
    replace=[("out_channels if mid_channels is None else mid_channels", "out_channels")],
)

# The padding not passed on.
mlpconv_no_padding = wrong_edit(
    "mlpconv",
    fails={"test_mlpconv"},
    says=r"only the first convolution has the kernel size, stride and padding",
    replace=[("nn.Conv2d(in_channels, mid, kernel_size, stride, padding)",
              "nn.Conv2d(in_channels, mid, kernel_size, stride)")],
)  # fmt: skip

# --------------------------------------------------------------------------- NiNNet

# Pooling that rounds down: 16 -> 7 instead of 8.
nin_pool_rounds_down = wrong_edit(
    "nin_net",
    fails={"test_nin_shapes", "test_nin_function"},
    says=r"rounds up",
    replace=[("nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)",
              "nn.MaxPool2d(kernel_size=3, stride=2)")],
)  # fmt: skip

# 2×2 pools: the same sizes as 3×3/2 rounding up, other values.
nin_pool_2x2 = wrong_edit(
    "nin_net",
    fails={"test_nin_function"},
    says=r"3×3/2 max pool",
    replace=[("nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)",
              "nn.MaxPool2d(kernel_size=2, stride=2)")],
)  # fmt: skip

# No dropout in the head: the same in eval mode, not in train mode.
nin_no_dropout = wrong_edit(
    "nin_net",
    fails={"test_nin_function"},
    says=r"use nn.Dropout\(dropout\)",
    replace=[("            nn.Dropout(dropout),\n", "")],
)

# Global max pooling at the end.
nin_global_max = wrong_edit(
    "nin_net",
    fails={"test_nin_function"},
    says=r"then the average pool",
    replace=[("nn.AdaptiveAvgPool2d(1),", "nn.AdaptiveMaxPool2d(1),")],
)

# The head's MLPConv as wide as the classes inside (head_channels ignored).
nin_head_width = wrong_edit(
    "nin_net",
    fails={"test_nin_shapes", "test_nin_function"},
    says=r"head_channels wide inside|check the layer sizes",
    replace=[("MLPConv(channels, num_classes, 3, padding=1, mid_channels=head_channels)",
              "MLPConv(channels, num_classes, 3, padding=1)")],
)  # fmt: skip

# The empty configuration not rejected.
nin_no_check = wrong_edit(
    "nin_net",
    fails={"test_nin_shapes"},
    says=r"should raise ValueError",
    replace=[("        if len(blocks) == 0:", "        if blocks is None:")],
)
