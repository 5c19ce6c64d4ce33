"""Plausible wrong answers for 08_resnext, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

Small slips are edits of the solution (``wrong_edit``); a mistake that changes the whole
approach is written as a function or class body (``wrong_answer``).
"""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- grouped_conv2d

# The filters dealt out to the groups in turn (filter o to group o % g) by a reshape with
# the axes swapped: right shapes, wrong pairing of filters and input channels.
grouped_filters_dealt = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"consecutive blocks",
    replace=[(
        "    filters = weight.reshape(groups, c_out // groups, per_group, kh, kw)",
        "    filters = weight.reshape(c_out // groups, groups, per_group, kh, kw).transpose(0, 1)",
    )],
)  # fmt: skip

# The stride forgotten: every window, one pixel apart.
grouped_no_stride = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"check the padding and the stride",
    replace=[(
        "padded.unfold(2, kh, stride).unfold(3, kw, stride)",
        "padded.unfold(2, kh, 1).unfold(3, kw, 1)",
    )],
)  # fmt: skip

# The padding on one side only.
grouped_pad_one_side = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"padded input",
    replace=[(
        "F.pad(x, (padding, padding, padding, padding))",
        "F.pad(x, (0, 2 * padding, 0, 2 * padding))",
    )],
)  # fmt: skip

# The bias forgotten.
grouped_no_bias = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"add bias\[o\] to every pixel",
    replace=[("        out = out + bias.reshape(1, c_out, 1, 1)", "        pass")],
)

# Computed in float32 whatever the input.
grouped_float32 = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"keep the input's dtype",
    replace=[("windows, filters)  # (N, g,", "windows.float(), filters.float())  # (N, g,")],
)

# The weights read through .data: right values, no gradient for the weight.
grouped_weight_data = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"no gradient reaches weight",
    replace=[("filters = weight.reshape(", "filters = weight.data.reshape(")],
)

# Padding written into the input in place (zeros where padding would go) instead of a
# padded copy: x changes.
grouped_changes_input = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"changed its argument x in place",
    replace=[("    padded = F.pad(x, (padding, padding, padding, padding))",
              "    padded = F.pad(x.mul_(1.0 + 1e-3), (padding, padding, padding, padding))")],
)  # fmt: skip

# No check that groups divides the channels.
grouped_no_groups_check = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"should raise ValueError",
    replace=[("    if groups < 1 or c_in % groups or c_out % groups:", "    if groups < 1:")],
)

# No check of the filters' depth.
grouped_no_weight_check = wrong_edit(
    "grouped_conv2d",
    fails={"test_grouped_conv2d"},
    says=r"should raise ValueError",
    replace=[("    if per_group != c_in // groups:", "    if per_group > c_in:")],
)


# F.conv2d itself.
@wrong_answer("grouped_conv2d", fails={"test_grouped_conv2d"}, says=r"Write it yourself")
def grouped_calls_conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups)


# A loop over the output pixels: right, and hundreds of calls.
@wrong_answer("grouped_conv2d", fails={"test_grouped_conv2d"}, says=r"Vectorise")
def grouped_pixel_loop(x, weight, bias=None, stride=1, padding=0, groups=1):
    if x.dim() != 4:
        raise ValueError(f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight: expected 4-D, got {tuple(weight.shape)}")
    n, c_in, h, w = x.shape
    c_out, per_group, kh, kw = weight.shape
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups}: must divide C_in and C_out")
    if per_group != c_in // groups:
        raise ValueError("weight: wrong number of channels per filter")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError("bias: expected (C_out,)")
    padded = F.pad(x, (padding, padding, padding, padding))
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    filters = weight.reshape(groups, c_out // groups, per_group * kh * kw)
    rows = []
    for r in range(h_out):
        row = []
        for s in range(w_out):
            patch = padded[:, :, r * stride : r * stride + kh, s * stride : s * stride + kw]
            patch = patch.reshape(n, groups, per_group * kh * kw, 1)
            row.append((filters @ patch).reshape(n, c_out))
        rows.append(torch.stack(row, dim=-1))
    out = torch.stack(rows, dim=-2)
    return out if bias is None else out + bias.reshape(1, c_out, 1, 1)


# ------------------------------------------------------------------------ grouped_conv_cost

# The groups ignored: an ordinary convolution's weights and MACs.
cost_ignores_groups = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"g times fewer weights",
    replace=[(
        "    per_filter = in_channels // groups * kh * kw",
        "    per_filter = in_channels * kh * kw",
    )],
)  # fmt: skip

# Divided by g twice ("g groups of C_out/g filters of C_in/g channels", the last g again).
cost_divides_twice = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"divide by g once",
    replace=[(
        "    params = out_channels * per_filter + (out_channels if bias else 0)\n"
        "    return params, h * w * out_channels * per_filter",
        "    params = out_channels * per_filter // groups + (out_channels if bias else 0)\n"
        "    return params, h * w * out_channels * per_filter // groups",
    )],
)  # fmt: skip

# The bias never counted.
cost_forgets_bias = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"each of the C_out filters has one bias",
    replace=[(" + (out_channels if bias else 0)", "")],
)

# The bias counted as one MAC per output.
cost_bias_macs = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"count no MACs for it",
    replace=[(
        "    return params, h * w * out_channels * per_filter",
        "    return params, h * w * out_channels * (per_filter + (1 if bias else 0))",
    )],
)  # fmt: skip

# True division: floats, which lose digits on huge counts.
cost_float = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"keep the arithmetic in ints",
    replace=[("in_channels // groups * kh * kw", "in_channels / groups * kh * kw")],
)

# The library's counts, which the exercise asks to write out.
cost_calls_reference = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"Write the formula yourself",
    replace=[(
        "    return params, h * w * out_channels * per_filter",
        "    return params, shapes.conv_macs(in_channels, out_channels, (kh, kw), (h, w), "
        "groups=groups)",
    )],
)  # fmt: skip

# No check that groups divides the channels.
cost_no_divisibility_check = wrong_edit(
    "grouped_conv_cost",
    fails={"test_grouped_conv_cost"},
    says=r"should raise ValueError",
    replace=[("    if in_channels % groups or out_channels % groups:", "    if False:")],
)

# ------------------------------------------------------------------------- split_last_conv

# The filters split instead of the input channels.
split_filters = wrong_edit(
    "split_last_conv",
    fails={"test_split_last_conv"},
    says=r"split the input channels \(dim 1\), not the filters",
    replace=[(
        "    return weight.reshape(c_out, cardinality, d, 1, 1).transpose(0, 1)",
        "    return torch.stack(weight.chunk(cardinality, dim=0))",
    )],
)  # fmt: skip

# Every C-th channel to a path (a reshape with the axes the other way round).
split_interleaved = wrong_edit(
    "split_last_conv",
    fails={"test_split_last_conv"},
    says=r"consecutive input channels",
    replace=[(
        "    return weight.reshape(c_out, cardinality, d, 1, 1).transpose(0, 1)",
        "    return weight.reshape(c_out, d, cardinality, 1, 1).permute(2, 0, 1, 3, 4)",
    )],
)  # fmt: skip

# "Aggregate" read as the mean of the paths.
split_averaged = wrong_edit(
    "split_last_conv",
    fails={"test_split_last_conv"},
    says=r"added, not averaged",
    replace=[(".transpose(0, 1)", ".transpose(0, 1) / cardinality")],
)

# The slices taken from .data: right values, no gradient.
split_data = wrong_edit(
    "split_last_conv",
    fails={"test_split_last_conv"},
    says=r"no gradient reaches weight",
    replace=[("    return weight.reshape(c_out,", "    return weight.data.reshape(c_out,")],
)

# No check that the cardinality divides the channels.
split_no_check = wrong_edit(
    "split_last_conv",
    fails={"test_split_last_conv"},
    says=r"should raise ValueError",
    replace=[("    if cardinality < 1 or channels % cardinality:", "    if cardinality < 1:")],
)

# --------------------------------------------------------------------------- matched_width

# The largest width within the budget, not the closest.
width_within_budget = wrong_edit(
    "matched_width",
    fails={"test_matched_width"},
    says=r"may be a little above the budget",
    replace=[(
        "    if weights(d) < budget and weights(d + 1) - budget < budget - weights(d):",
        "    if False:",
    )],
)  # fmt: skip

# The 3×3 convolution counted as an ordinary one.
width_ungrouped = wrong_edit(
    "matched_width",
    fails={"test_matched_width"},
    says=r"the 3×3 convolution is grouped",
    replace=[("grouped_conv_cost(width, width, 3, 1, groups=cardinality)",
              "grouped_conv_cost(width, width, 3, 1)")],
)  # fmt: skip

# The 1×1 convolutions counted for one path (to d channels), the middle for all paths.
width_thin_1x1 = wrong_edit(
    "matched_width",
    fails={"test_matched_width"},
    says=r"all C paths side by side",
    replace=[
        ("grouped_conv_cost(channels, width, 1, 1)", "grouped_conv_cost(channels, d, 1, 1)"),
        ("grouped_conv_cost(width, channels, 1, 1)", "grouped_conv_cost(d, channels, 1, 1)"),
    ],
)

# The promised errors left out.
width_no_checks = wrong_edit(
    "matched_width",
    fails={"test_matched_width"},
    says=r"the message should name the argument 'cardinality'",
    replace=[("        if value < 1:", "        if value < -1:")],
)

# ---------------------------------------------------------------------------- ResNeXtBlock

# An ordinary 3×3 convolution: no groups.
block_no_groups = wrong_edit(
    "resnext_block",
    fails={"test_resnext_layers", "test_resnext_function"},
    says=r"groups=cardinality",
    replace=[("padding=1, groups=cardinality,", "padding=1,")],
)

# No projection: the shortcut is always the identity.
block_no_projection = wrong_edit(
    "resnext_block",
    fails={"test_resnext_layers", "test_resnext_function"},
    says=r"the shortcut must (match|give) the branch's shape",
    replace=[("        if stride == 1 and in_channels == out_channels:", "        if True:")],
)

# A projection also when the shapes agree.
block_always_projection = wrong_edit(
    "resnext_block",
    fails={"test_resnext_layers", "test_resnext_function"},
    says=r"the shortcut is the identity",
    replace=[("        if stride == 1 and in_channels == out_channels:", "        if False:")],
)

# The stride on the first 1×1 convolution (the original ResNet's place), not on the 3×3.
block_stride_on_conv1 = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"the stride goes on the grouped 3×3 convolution",
    replace=[
        ("self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)",
         "self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride, bias=False)"),
        ("3, stride=stride, padding=1, groups=cardinality,", "3, padding=1, groups=cardinality,"),
    ],
)  # fmt: skip

# No ReLU after the sum.
block_no_final_relu = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"a ReLU last",
    replace=[(
        "        return F.relu(out + self.shortcut(x))",
        "        return out + self.shortcut(x)",
    )],
)  # fmt: skip

# A ReLU on the branch before the sum too.
block_relu_before_sum = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"no ReLU on the branch before the sum",
    replace=[(
        "        out = self.bn3(self.conv3(out))",
        "        out = F.relu(self.bn3(self.conv3(out)))",
    )],
)  # fmt: skip

# The shortcut forgotten in forward.
block_no_shortcut_sum = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"add the shortcut",
    replace=[("        return F.relu(out + self.shortcut(x))", "        return F.relu(out)")],
)

# The sum written in place into the shortcut's output: with the identity shortcut that
# is x itself, so the block changes its input.
block_sum_into_input = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"changed its argument .{0,4} in place",
    replace=[(
        "        return F.relu(out + self.shortcut(x))",
        "        short = self.shortcut(x)\n        short += out\n        return F.relu(short)",
    )],
)  # fmt: skip

# Computed in float32 whatever the input.
block_float32 = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"keep the input's dtype",
    replace=[(
        "        return F.relu(out + self.shortcut(x))",
        "        return F.relu(out + self.shortcut(x)).float()",
    )],
)  # fmt: skip

# Batch norm in train mode always: the running statistics are never used.
block_bn_always_batch_stats = wrong_edit(
    "resnext_block",
    fails={"test_resnext_function"},
    says=r"conv1, bn1, ReLU",
    replace=[(
        "        out = F.relu(self.bn1(self.conv1(x)))",
        "        h = self.conv1(x)\n"
        "        out = F.relu(F.batch_norm(h, None, None, self.bn1.weight, self.bn1.bias, True))",
    )],
)  # fmt: skip
