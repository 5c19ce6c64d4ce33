"""Plausible wrong answers for 01_components, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

Each function has the exercise's signature; its body is what the student wrote."""

import torch
import torch.nn.functional as F

import cnncourse
from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- conv_output_size


@wrong_answer(
    "conv_output_size",
    # conv2d_naive and conv2d call conv_output_size, but their cells grade them with the
    # reference: one slip costs one exercise
    fails={"test_conv_output_size"},
    says=r"each\* side",
)
def output_size_padding_once(size, kernel_size, stride=1, padding=0):
    if stride < 1:
        raise ValueError(f"stride={stride}: expected a positive int")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size={kernel_size} does not fit")
    return (size + padding - kernel_size) // stride + 1


@wrong_answer("conv_output_size", fails={"test_conv_output_size"}, says=r"round down")
def output_size_rounds(size, kernel_size, stride=1, padding=0):
    if stride < 1:
        raise ValueError(f"stride={stride}: expected a positive int")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size={kernel_size} does not fit")
    return round((size + 2 * padding - kernel_size) / stride) + 1


@wrong_answer("conv_output_size", fails={"test_conv_output_size"}, says=r"should raise ValueError")
def output_size_no_checks(size, kernel_size, stride=1, padding=0):
    return (size + 2 * padding - kernel_size) // stride + 1


@wrong_answer(
    "conv_output_size",
    fails={"test_conv_output_size"},
    says=r"padding=-1\): should raise ValueError",
)
def output_size_accepts_negative_padding(size, kernel_size, stride=1, padding=0):
    if stride < 1:
        raise ValueError(f"stride={stride}: expected a positive int")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size={kernel_size} does not fit")
    return (size + 2 * padding - kernel_size) // stride + 1


@wrong_answer("conv_output_size", fails={"test_conv_output_size"}, says=r"floor once, at the end")
def output_size_floors_each_term(size, kernel_size, stride=1, padding=0):
    if stride < 1:
        raise ValueError(f"stride={stride}: expected a positive int")
    if padding < 0:
        raise ValueError(f"padding={padding}: expected a non-negative int")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size={kernel_size} does not fit")
    return (size - kernel_size) // stride + (2 * padding) // stride + 1


# --------------------------------------------------------------------------- conv_params


@wrong_answer("conv_params", fails={"test_conv_params"}, says=r"one bias")
def conv_params_missing_bias(in_channels, out_channels, kernel_size, bias=True):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return in_channels * kh * kw * out_channels


# Square kernels only: a (K_h, K_w) pair is read as K_h x K_h.
conv_params_square_kernels_only = wrong_edit(
    "conv_params",
    fails={"test_conv_params"},
    says=r"kernel_size=\(3, 5\)",
    replace=[
        (
            "kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size",
            "kh = kw = kernel_size if isinstance(kernel_size, int) else kernel_size[0]",
        )
    ],
)


# --------------------------------------------------------------------------- conv2d_naive


naive_conv_missing_bias = wrong_edit(
    "conv2d_naive",
    fails={"test_conv2d_naive"},
    says=r"values differ",
    replace=[("    if bias is not None:\n        out = out + bias.view(1, -1, 1, 1)\n", "")],
)


@wrong_answer("conv2d_naive", fails={"test_conv2d_naive"}, says=r"expected shape")
def naive_conv_padding_one_side(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    xp = F.pad(x, (padding, 0, padding, 0))  # zeros on the left and top only
    h_out = (xp.shape[2] - kh) // stride + 1
    w_out = (xp.shape[3] - kw) // stride + 1
    out = x.new_zeros(n, c_out, h_out, w_out)
    for b in range(n):
        for o in range(c_out):
            for i in range(h_out):
                for j in range(w_out):
                    r, c = i * stride, j * stride
                    out[b, o, i, j] = (xp[b, :, r : r + kh, c : c + kw] * weight[o]).sum()
    return out + (0 if bias is None else bias.view(1, -1, 1, 1))


naive_conv_float32_buffer = wrong_edit(
    "conv2d_naive",
    fails={"test_conv2d_naive"},
    says=r"expected dtype torch.float64",
    replace=[("x.new_zeros(n, c_out, h_out, w_out)", "torch.zeros(n, c_out, h_out, w_out)")],
)


naive_conv_through_item = wrong_edit(
    "conv2d_naive",
    fails={"test_conv2d_naive"},
    says=r"no gradient reaches x",
    replace=[("(patch * weight[o]).sum()", "(patch * weight[o]).sum().item()")],
)


# --------------------------------------------------------------------------- conv2d


@wrong_answer("conv2d", fails={"test_conv2d"}, says=r"calls torch\.nn\.functional\.conv2d")
def conv_calls_torch(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


@wrong_answer("conv2d", fails={"test_conv2d"}, says=r"calls cnncourse\.layers\.conv2d")
def conv_calls_reference(x, weight, bias=None, stride=1, padding=0):
    return cnncourse.layers.conv2d(x, weight, bias, stride=stride, padding=padding)


@wrong_answer("conv2d", fails={"test_conv2d"}, says=r"conv2d calls conv2d_naive")
def conv_calls_the_loops(x, weight, bias=None, stride=1, padding=0):
    return conv2d_naive(x, weight, bias, stride=stride, padding=padding)


@wrong_answer("conv2d", fails={"test_conv2d"}, says=r"values differ")
def conv_weight_not_flattened_per_filter(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, stride, padding)
    w_out = conv_output_size(w, kw, stride, padding)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    # transposing the filter bank scrambles which weights meet which input values
    out = weight.transpose(0, 1).reshape(c_out, -1) @ cols
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(n, c_out, h_out, w_out)


# --------------------------------------------------------------------------- max_pool2d


@wrong_answer("max_pool2d", fails={"test_max_pool2d"}, says=r"expected shape")
def max_pool_stride_one(x, kernel_size, stride=None):
    stride = 1 if stride is None else stride
    k = kernel_size
    return x.unfold(2, k, stride).unfold(3, k, stride).amax(dim=(-2, -1))


@wrong_answer("max_pool2d", fails={"test_max_pool2d"}, says=r"values differ")
def max_pool_averages(x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    k = kernel_size
    return x.unfold(2, k, stride).unfold(3, k, stride).mean(dim=(-2, -1))


# Detached "to save memory": the values are right, but no gradient flows back to x.
max_pool_detached = wrong_edit(
    "max_pool2d",
    fails={"test_max_pool2d"},
    says=r"no gradient reaches x",
    replace=[("return windows.amax(dim=(-2, -1))", "return windows.amax(dim=(-2, -1)).detach()")],
)


# --------------------------------------------------------------------------- activation grads


@wrong_answer("activation_grads", fails={"test_activation_grads"}, says=r"sigmoid_grad")
def sigmoid_grad_of_x(x):
    return x * (1 - x)  # the formula applied to x instead of sigmoid(x)


@wrong_answer("activation_grads", region=2, fails={"test_activation_grads"}, says=r"relu_grad")
def relu_grad_one_at_zero(x):
    return (x >= 0).to(x.dtype)


@wrong_answer("activation_grads", fails={"test_activation_grads"}, says=r"nan")
def sigmoid_grad_from_exp(x):
    e = torch.exp(-x)  # overflows to inf for x below about -88 in float32: inf / inf
    return e / (1 + e) ** 2


@wrong_answer(
    "activation_grads", region=2, fails={"test_activation_grads"}, says=r"dtype torch.float64"
)
def relu_grad_always_float32(x):
    return (x > 0).float()


@wrong_answer("activation_grads", fails={"test_activation_grads"}, says=r"argument x in place")
def sigmoid_grad_in_place(x):
    s = x.sigmoid_()  # overwrites the caller's x
    return s * (1 - s)


# --------------------------------------------------------------------------- batch norm
# Each is the solution with one slip (wrong_edit: (old, new) swaps inside the region).

batch_norm_always_batch_stats = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_eval"},
    says=r"running statistics",
    replace=[
        (
            "mean, var = running_mean, running_var",
            "mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)",
        )
    ],
)

batch_norm_biased_running_var = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_train"},
    says=r"unbiased",
    replace=[("momentum * var * m / (m - 1)", "momentum * var")],
)

batch_norm_unbiased_normalisation = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_train"},
    says=r"values differ",
    replace=[
        ("x.var(dim=dims, unbiased=False)", "x.var(dim=dims, unbiased=True)"),
        ("momentum * var * m / (m - 1)", "momentum * var"),
    ],
)

batch_norm_eps_outside_sqrt = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_train", "test_batch_norm_eval"},
    says=r"eps",
    replace=[("torch.sqrt(var.view(shape) + eps)", "(torch.sqrt(var.view(shape)) + eps)")],
)

# The statistics, not just the running update, computed without their graph.
batch_norm_statistics_without_grad = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_train"},
    says=r"gradient with respect to x",
    replace=[
        (
            "        mean = x.mean(dim=dims)\n        var = x.var(dim=dims, unbiased=False)\n"
            "        m = x.numel() // x.shape[1]\n        with torch.no_grad():\n",
            "        with torch.no_grad():\n            mean = x.mean(dim=dims)\n"
            "            var = x.var(dim=dims, unbiased=False)\n"
            "            m = x.numel() // x.shape[1]\n",
        )
    ],
)

batch_norm_centres_x_in_place = wrong_edit(
    "batch_norm",
    fails={"test_batch_norm_train", "test_batch_norm_eval"},
    says=r"argument x in place",
    replace=[
        (
            "x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)",
            "x_hat = x.sub_(mean.view(shape)).div_(torch.sqrt(var.view(shape) + eps))",
        )
    ],
)


# ---- section 5: putting the parts together


@wrong_answer("net_from_spec", fails={"test_net_from_spec"}, says=r"pooling rounds down")
def layer_shapes_pool_rounds_up(spec, input_shape):
    shape = tuple(input_shape)
    result = []
    for entry in spec:
        if entry[0] == "conv":
            _, out_channels, k, s, p = entry
            shape = (
                out_channels,
                conv_output_size(shape[1], k, s, p),
                conv_output_size(shape[2], k, s, p),
            )
        elif entry[0] == "pool":
            _, k, s = entry
            # a last, partial window is counted too (ceil instead of floor)
            shape = (shape[0], -(-(shape[1] - k) // s) + 1, -(-(shape[2] - k) // s) + 1)
        elif entry[0] == "dense":
            shape = (entry[1],)
        else:
            raise ValueError(f"unknown layer kind {entry[0]!r}")
        result.append(shape)
    return result


@wrong_answer("net_from_spec", region=1, fails={"test_net_from_spec"}, says=r"no bias")
def build_net_conv_bias_before_batch_norm(spec, input_shape, batch_norm=True):
    after = layer_shapes(spec, input_shape)
    modules, shape = [], tuple(input_shape)
    for i, entry in enumerate(spec):
        if entry[0] == "conv":
            _, out_channels, k, s, p = entry
            modules.append(nn.Conv2d(shape[0], out_channels, k, stride=s, padding=p))  # bias kept
            if batch_norm:
                modules.append(nn.BatchNorm2d(out_channels))
            modules.append(nn.ReLU())
        elif entry[0] == "pool":
            modules.append(nn.MaxPool2d(entry[1], stride=entry[2]))
        else:
            if len(shape) == 3:
                modules.append(nn.Flatten())
            in_features = shape[0] * shape[1] * shape[2] if len(shape) == 3 else shape[0]
            modules.append(nn.Linear(in_features, entry[1]))
            if i < len(spec) - 1:
                modules.append(nn.ReLU())
        shape = after[i]
    return nn.Sequential(*modules)


@wrong_answer("net_from_spec", region=1, fails={"test_net_from_spec"}, says=r"logits")
def build_net_relu_on_the_logits(spec, input_shape, batch_norm=True):
    after = layer_shapes(spec, input_shape)
    modules, shape = [], tuple(input_shape)
    for i, entry in enumerate(spec):
        if entry[0] == "conv":
            _, out_channels, k, s, p = entry
            modules.append(
                nn.Conv2d(shape[0], out_channels, k, stride=s, padding=p, bias=not batch_norm)
            )
            if batch_norm:
                modules.append(nn.BatchNorm2d(out_channels))
            modules.append(nn.ReLU())
        elif entry[0] == "pool":
            modules.append(nn.MaxPool2d(entry[1], stride=entry[2]))
        else:
            if len(shape) == 3:
                modules.append(nn.Flatten())
            in_features = shape[0] * shape[1] * shape[2] if len(shape) == 3 else shape[0]
            modules += [nn.Linear(in_features, entry[1]), nn.ReLU()]  # also after the logits
        shape = after[i]
    return nn.Sequential(*modules)


@wrong_answer("net_from_spec", region=1, fails={"test_net_from_spec"}, says=r"in_features")
def build_net_flat_size_ignores_the_convolutions(spec, input_shape, batch_norm=True):
    # the flattened size worked out by hand for "same" convolutions: only the pools shrink
    c, h, w = input_shape
    modules, flat = [], False
    dense = [i for i, entry in enumerate(spec) if entry[0] == "dense"]
    features = None
    for i, entry in enumerate(spec):
        if entry[0] == "conv":
            _, out_channels, k, s, p = entry
            modules.append(nn.Conv2d(c, out_channels, k, stride=s, padding=p, bias=not batch_norm))
            modules += [nn.BatchNorm2d(out_channels)] if batch_norm else []
            modules.append(nn.ReLU())
            c = out_channels
        elif entry[0] == "pool":
            modules.append(nn.MaxPool2d(entry[1], stride=entry[2]))
            h, w = h // entry[2], w // entry[2]
        else:
            if not flat:
                modules.append(nn.Flatten())
                features, flat = c * h * w, True
            modules.append(nn.Linear(features, entry[1]))
            features = entry[1]
            if i != dense[-1]:
                modules.append(nn.ReLU())
    return nn.Sequential(*modules)
