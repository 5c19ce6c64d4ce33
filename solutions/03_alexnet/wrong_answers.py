"""Plausible wrong answers for 03_alexnet, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

A function exercise's region is written as the body of a function with its signature; the
AlexNet module's region as the body of a class (here: edits of the solution)."""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- conv_layer


conv_layer_without_bias = wrong_edit(
    "conv_layer",
    fails={"test_conv_layer"},
    says=r"each filter also has one bias",
    replace=[("out_channels * (c * kernel_size * kernel_size + 1)",
              "out_channels * c * kernel_size * kernel_size")],
)  # fmt: skip

# Written for square images: the height computed once and used twice.
conv_layer_square_only = wrong_edit(
    "conv_layer",
    fails={"test_conv_layer"},
    says=r"the input is not square",
    replace=[("w_out = (w + 2 * padding - kernel_size) // stride + 1", "w_out = h_out")],
)

conv_layer_padding_once = wrong_edit(
    "conv_layer",
    fails={"test_conv_layer"},
    says=r"zeros on each side",
    replace=[("(h + 2 * padding - kernel_size)", "(h + padding - kernel_size)"),
             ("(w + 2 * padding - kernel_size)", "(w + padding - kernel_size)")],
)  # fmt: skip

conv_layer_no_check = wrong_edit(
    "conv_layer",
    fails={"test_conv_layer"},
    says=r"should raise ValueError",
    replace=[("""    if kernel_size > min(h, w) + 2 * padding:
        raise ValueError(
            f"kernel_size={kernel_size} does not fit in the padded input "
            f"({h}×{w} with padding {padding})"
        )
""", "")],
)  # fmt: skip


# --------------------------------------------------------------------------- pool_layer


# "Pooling divides by the stride": right when the windows do not overlap (the visible checks),
# wrong for AlexNet's 3×3 windows at stride 2 on 112 or 32 pixels.
pool_layer_divides_by_stride = wrong_edit(
    "pool_layer",
    fails={"test_pool_layer"},
    says=r"windows overlap",
    replace=[("(h - kernel_size) // stride + 1", "h // stride"),
             ("(w - kernel_size) // stride + 1", "w // stride")],
)  # fmt: skip

pool_layer_counts_a_window = wrong_edit(
    "pool_layer",
    fails={"test_pool_layer"},
    says=r"it learns nothing",
    replace=[("(c, h_out, w_out), 0", "(c, h_out, w_out), c * kernel_size * kernel_size")],
)

pool_layer_no_check = wrong_edit(
    "pool_layer",
    fails={"test_pool_layer"},
    says=r"should raise ValueError",
    replace=[("""    if kernel_size > min(h, w):
        raise ValueError(f"kernel_size={kernel_size} does not fit in a {h}×{w} input")
""", "")],
)  # fmt: skip


# --------------------------------------------------------------------------- input_size_for


input_size_one_step_too_many = wrong_edit(
    "input_size_for",
    fails={"test_input_size_for"},
    says=r"output_size - 1 steps",
    replace=[("(output_size - 1) * stride", "output_size * stride")],
)

input_size_ignores_padding = wrong_edit(
    "input_size_for",
    fails={"test_input_size_for"},
    says=r"2\*padding pixels",
    replace=[("kernel_size - 2 * padding", "kernel_size")],
)

input_size_no_padding_check = wrong_edit(
    "input_size_for",
    fails={"test_input_size_for"},
    says=r"should raise ValueError",
    replace=[("""    if size < 1:
        raise ValueError(
            f"padding={padding}: too much padding, even a 1-pixel input gives more than "
            f"{output_size} positions"
        )
""", "")],
)  # fmt: skip


# --------------------------------------------------------------------------- alexnet_table
# Each is the solution with one slip. The test cells replace conv_layer and pool_layer by the
# reference, so a slip must sit in the table itself to cost points here.

table_conv_without_biases = wrong_edit(
    "alexnet_table",
    fails={"test_table_conv"},
    says=r"forget the \d+ biases",
    replace=[
        (
            "shape, params = conv_layer(shape, out_channels, k, s, p)",
            "shape, params = conv_layer(shape, out_channels, k, s, p)\n"
            "        params -= out_channels  # weights only",
        )
    ],
)

# MACs taken as "one multiply per weight": what a dense layer costs, not a convolution.
table_conv_macs_are_params = wrong_edit(
    "alexnet_table",
    fails={"test_table_conv"},
    says=r"multiply by H_out·W_out",
    replace=[("(shape, params, math.prod(shape) * c_in * k * k)", "(shape, params, params)")],
)

# Pooling "halves the map": right at 55, 27 and 13 (the paper's sizes), wrong elsewhere. The
# convolutions and fc6 follow correctly from the wrong pooling rows, so only those lose points.
table_pool_halves = wrong_edit(
    "alexnet_table",
    fails={"test_table_pool"},
    says=r"windows at stride 2 overlap",
    replace=[
        (
            "shape, params = pool_layer(shape, 3, 2)",
            "shape, params = (shape[0], shape[1] // 2, shape[2] // 2), 0",
        )
    ],
)

table_thousand_classes = wrong_edit(
    "alexnet_table",
    fails={"test_table_dense"},
    says=r"one unit per class",
    replace=[('("fc8", num_classes)', '("fc8", 1000)')],
)

# fc6 copied from the paper: 256 maps of 6×6, whatever the convolutions and the input.
table_fc6_always_9216 = wrong_edit(
    "alexnet_table",
    fails={"test_table_dense"},
    says=r"depends on the convolutions",
    replace=[("n_in = math.prod(shape)  # pool5's maps, flattened", "n_in = 256 * 6 * 6")],
)

table_dense_macs_count_biases = wrong_edit(
    "alexnet_table",
    fails={"test_table_dense"},
    says=r"biases are added",
    replace=[("n_out * (n_in + 1), n_out * n_in)", "n_out * (n_in + 1), n_out * (n_in + 1))")],
)


# --------------------------------------------------------------------------- AlexNet module

# Normalising before the ReLU: the squares of negative responses then count too.
alexnet_lrn_before_relu = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"check the order",
    replace=[
        ("nn.ReLU(inplace=True)]  # fmt: skip", "]  # fmt: skip"),
        (
            "k=2.0))\n",
            "k=2.0))\n            layers.append(nn.ReLU(inplace=True))\n",
        ),
    ],
)

# The paper's alpha typed straight into PyTorch's layer (which divides it by size).
alexnet_lrn_paper_alpha = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"LRN",
    replace=[("nn.LocalResponseNorm(5, alpha=5e-4,", "nn.LocalResponseNorm(5, alpha=1e-4,")],
)

# LeNet-style pooling: 2×2 at stride 2. At 32×32 the head's adaptive pooling hides it in the
# shapes and the parameter count; only the computation shows it.
alexnet_pool_two_by_two = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"check the pooling",
    replace=[("nn.MaxPool2d(3, stride=2)", "nn.MaxPool2d(2, stride=2)")],
)

# Dropout after the dense layers instead of before: eval mode is right, train mode is not.
alexnet_dropout_after_dense = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"dropout before fc6",
    replace=[
        (
            """            nn.Dropout(dropout),
            nn.Linear(channels * pool_size * pool_size, hidden),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(inplace=True),""",
            """            nn.Linear(channels * pool_size * pool_size, hidden),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),""",
        )
    ],
)

alexnet_no_relu_after_fc7 = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"look at self.head",
    replace=[
        (
            """            nn.Linear(hidden, hidden),  # fc7
            nn.ReLU(inplace=True),""",
            """            nn.Linear(hidden, hidden),  # fc7""",
        )
    ],
)

# `lrn` accepted but never used: right for every version without normalisation.
alexnet_ignores_lrn = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_shapes", "test_alexnet_function"},
    says=r"LocalResponseNorm",
    replace=[("if lrn and i < 2:", "if False:")],
)

alexnet_ten_classes = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_shapes", "test_alexnet_function"},
    says=r"number of parameters",
    replace=[("nn.Linear(hidden, num_classes)", "nn.Linear(hidden, 10)")],
)

alexnet_forward_casts_to_float = wrong_edit(
    "alexnet_module",
    fails={"test_alexnet_function"},
    says=r"keep the input's dtype",
    replace=[("x = self.features(x)", "x = self.features(x.float())")],
)

# --------------------------------------------------------------------------- dropout


@wrong_answer("dropout", fails={"test_dropout"}, says=r"scale the kept values")
def dropout_without_scaling(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if not training:
        return x
    return x * (torch.rand_like(x) >= p).to(x.dtype)


# p read as the probability of keeping: the same as the right answer at p = 0.5.
@wrong_answer("dropout", fails={"test_dropout"}, says=r"drop with probability p, keep 1 - p")
def dropout_keeps_p(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) < p).to(x.dtype) / (1 - p)


@wrong_answer("dropout", fails={"test_dropout"}, says=r"evaluation mode")
def dropout_also_at_test_time(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)


@wrong_answer("dropout", fails={"test_dropout"}, says=r"with p = 1")
def dropout_divides_by_zero(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if not training:
        return x
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)


# One mask per feature, shared by every row of the batch.
@wrong_answer("dropout", fails={"test_dropout"}, says=r"one random number per element")
def dropout_one_mask_per_batch(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = (torch.rand_like(x[:1]) >= p).to(x.dtype)
    return x * keep / (1 - p)


@wrong_answer("dropout", fails={"test_dropout"}, says=r"leave the inputs alone")
def dropout_in_place(x, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: not a probability")
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_((torch.rand_like(x) >= p).to(x.dtype) / (1 - p))


@wrong_answer("dropout", fails={"test_dropout"}, says=r"write it yourself")
def dropout_calls_torch(x, p=0.5, training=True):
    return F.dropout(x, p, training)


@wrong_answer("dropout", fails={"test_dropout"}, says=r"should raise ValueError")
def dropout_no_check(x, p=0.5, training=True):
    if not training or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)


# `.data` to "just get the numbers": the output is right and cut off from the graph.
dropout_through_data = wrong_edit(
    "dropout",
    fails={"test_dropout"},
    says=r"no gradient reaches x",
    replace=[("return x * keep / (1.0 - p)", "return x.data * keep / (1.0 - p)")],
)


# --------------------------------------------------------------------------- LRN


@wrong_answer("lrn", fails={"test_lrn"}, says=r"the paper's alpha multiplies the sum")
def lrn_pytorch_alpha(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    if size < 1:
        raise ValueError(f"size={size}: too small")
    sq = F.pad(x * x, (0, 0, 0, 0, size // 2, (size - 1) // 2))
    window = sum(sq[:, j : j + x.shape[1]] for j in range(size))
    return x / (k + alpha / size * window) ** beta


# A window of size//2 channels on each side: right for odd sizes, one channel too many for
# even ones.
@wrong_answer("lrn", fails={"test_lrn"}, says=r"for an even size the window")
def lrn_symmetric_window(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    if size < 1:
        raise ValueError(f"size={size}: too small")
    half = size // 2
    sq = F.pad(x * x, (0, 0, 0, 0, half, half))
    window = sum(sq[:, j : j + x.shape[1]] for j in range(2 * half + 1))
    return x / (k + alpha * window) ** beta


# Normalising by the energy of all channels, not of the neighbours.
@wrong_answer("lrn", fails={"test_lrn"}, says=r"values differ from the reference")
def lrn_all_channels(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    if size < 1:
        raise ValueError(f"size={size}: too small")
    return x / (k + alpha * (x * x).sum(dim=1, keepdim=True)) ** beta


@wrong_answer("lrn", fails={"test_lrn"}, says=r"write it yourself")
def lrn_calls_torch(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return F.local_response_norm(x, size, alpha * size, beta, k)


@wrong_answer("lrn", fails={"test_lrn"}, says=r"should raise ValueError")
def lrn_no_check(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    sq = F.pad(x * x, (0, 0, 0, 0, size // 2, (size - 1) // 2))
    window = sum(sq[:, j : j + x.shape[1]] for j in range(size))
    return x / (k + alpha * window) ** beta


# The normaliser treated as a constant: right values, wrong gradient (the denominator
# depends on x too, through every channel in the window).
lrn_constant_denominator = wrong_edit(
    "lrn",
    fails={"test_lrn"},
    says=r"gradient with respect to x",
    replace=[("(k + alpha * window) ** beta", "(k + alpha * window).detach() ** beta")],
)
