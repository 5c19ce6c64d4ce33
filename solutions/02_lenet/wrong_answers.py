"""Plausible wrong answers for 02_lenet, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

A function exercise's region is written as the body of a function with its signature; the
LeNet5 module's region as the body of a class."""


from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- layer table


@wrong_answer("lenet_table", fails={"test_table_conv"}, says=r"forget the 16 biases")
def table_c3_without_biases(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * 6 * 5 * 5),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


@wrong_answer("lenet_table", fails={"test_table_pool"}, says=r"leave out the batch dimension")
def table_shape_with_batch_dim(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((1, 6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


@wrong_answer(
    "lenet_table", fails={"test_table_conv", "test_table_pool"}, says=r"write the channels first"
)
def table_channels_last(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((c1, c1, 6), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((s2, s2, 6), 0),
        "C3": ((c3, c3, 16), 16 * (6 * 5 * 5 + 1)),
        "S4": ((s4, s4, 16), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


# "No pixel lost": pooling that rounds up. Right for even sides (32, 36), wrong for odd ones;
# C3 and F5 follow correctly from the wrong S2 and S4, so only the pooling rows lose points.
@wrong_answer("lenet_table", fails={"test_table_pool"}, says=r"rounding down")
def table_pool_rounds_up(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = (c1 + 1) // 2
    c3 = s2 - 4
    s4 = (c3 + 1) // 2
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


# Right for grey images only: C1's filters counted with one input map whatever in_channels.
@wrong_answer("lenet_table", fails={"test_table_conv"}, says=r"spans all 3 input maps")
def table_ignores_in_channels(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((6, c1, c1), 6 * (1 * 5 * 5 + 1)),
        "S2": ((6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


# F5 copied from LeNet5's docstring (400 inputs), right only for 32×32 and 33×33 images.
@wrong_answer("lenet_table", fails={"test_table_dense"}, says=r"depends on image_size")
def table_f5_always_400(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (400 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((num_classes,), num_classes * (84 + 1)),
    }


@wrong_answer("lenet_table", fails={"test_table_dense"}, says=r"one unit per class")
def table_ten_classes(in_channels=1, image_size=32, num_classes=10):
    c1 = image_size - 4
    s2 = c1 // 2
    c3 = s2 - 4
    s4 = c3 // 2
    return {
        "C1": ((6, c1, c1), 6 * (in_channels * 5 * 5 + 1)),
        "S2": ((6, s2, s2), 0),
        "C3": ((16, c3, c3), 16 * (6 * 5 * 5 + 1)),
        "S4": ((16, s4, s4), 0),
        "F5": ((120,), 120 * (16 * s4 * s4 + 1)),
        "F6": ((84,), 84 * (120 + 1)),
        "F7": ((10,), 10 * (84 + 1)),
    }


# --------------------------------------------------------------------------- total


@wrong_answer("lenet_total", fails={"test_table_total"}, says=r"pass in_channels, image_size")
def total_ignores_its_arguments(in_channels=1, image_size=32, num_classes=10):
    return sum(params for _, params in lenet_table().values())


# Counting the model's weights is right for 32×32 (and 33×33) images only: the reference
# model's F5 always takes 400 inputs.
@wrong_answer("lenet_total", fails={"test_table_total"}, says=r"image_size")
def total_from_the_model(in_channels=1, image_size=32, num_classes=10):
    return shapes.count_params(models.lenet5(num_classes=num_classes, in_channels=in_channels))


# --------------------------------------------------------------------------- LeNet5 module
# Each is the solution with one slip (wrong_edit: (old, new) swaps inside the region).

lenet_c1_without_bias = wrong_edit(
    "lenet_module",
    fails={"test_lenet_shapes", "test_lenet_function"},
    says=r"biases",
    replace=[
        ("nn.Conv2d(in_channels, 6, kernel_size=5)", "nn.Conv2d(in_channels, 6, 5, bias=False)")
    ],
)

lenet_pool_stride_one = wrong_edit(
    "lenet_module",
    fails={"test_lenet_shapes", "test_lenet_function"},
    says=r"strides",
    replace=[("pooling(kernel_size=2, stride=2)", "pooling(kernel_size=2, stride=1)")],
)

# Pixels scaled in place: x.float() returns the caller's own tensor when it is float32
# already, so div_ changes the images the caller passed in.
lenet_scales_input_in_place = wrong_edit(
    "lenet_module",
    fails={"test_lenet_shapes", "test_lenet_function"},
    says=r"leave the inputs alone",
    replace=[("x = self.features(x)", "x = self.features(x.float().div_(255))")],
)

# The dtype follows the input: a forward that casts to float32 breaks `model.double()`.
lenet_forward_casts_to_float = wrong_edit(
    "lenet_module",
    fails={"test_lenet_function"},
    says=r"keep the input's dtype",
    replace=[("x = self.features(x)", "x = self.features(x.float())")],
)

lenet_squeezes_logits = wrong_edit(
    "lenet_module",
    fails={"test_lenet_shapes"},
    says=r"keep the batch dimension",
    replace=[("return self.head(x)", "return self.head(x).squeeze()")],
)

# nn.ReLU6 picked from the autocomplete list: the same as ReLU below 6, so it only shows on
# inputs of large magnitude.
lenet_relu6 = wrong_edit(
    "lenet_module",
    fails={"test_lenet_function"},
    says=r"large inputs",
    replace=[('"relu": nn.ReLU}', '"relu": nn.ReLU6}')],
)

# Written for grey digits: C1 always reads one input map.
lenet_ignores_in_channels = wrong_edit(
    "lenet_module",
    fails={"test_lenet_shapes", "test_lenet_function"},
    says=r"in_channels input maps",
    replace=[("nn.Conv2d(in_channels, 6, kernel_size=5)", "nn.Conv2d(1, 6, kernel_size=5)")],
)

# The paper's tanh kept in the dense part whatever `activation` says: right for the default
# (tanh) model, wrong for sigmoid and ReLU.
lenet_head_always_tanh = wrong_edit(
    "lenet_module",
    fails={"test_lenet_function"},
    says=r"look at self.head",
    replace=[
        ("act(),\n            nn.Linear(120, 84)", "nn.Tanh(),\n            nn.Linear(120, 84)"),
        (
            "act(),\n            nn.Linear(84, num_classes)",
            "nn.Tanh(),\n            nn.Linear(84, num_classes)",
        ),
    ],
)


# --------------------------------------------------------------------------- flat features


@wrong_answer("flat_features", fails={"test_flat_features"}, says=r"rounding down")
def flat_features_rounds(image_size):
    size = image_size
    for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
        size = round((size - kernel) / stride) + 1
        if size < 1:
            raise ValueError(f"image_size={image_size}: too small")
    return 16 * size * size


@wrong_answer("flat_features", fails={"test_flat_features"}, says=r"should raise ValueError")
def flat_features_no_check(image_size):
    size = image_size
    for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
        size = (size - kernel) // stride + 1
    return 16 * size * size


# Floors only at the end: the side is followed as a float, and 16·h·w rounded at the end.
# Right whenever every division is exact (32, 36), wrong for odd sides (33 gives 441).
@wrong_answer("flat_features", fails={"test_flat_features"}, says=r"rounding down at every stage")
def flat_features_floors_at_the_end(image_size):
    size = image_size
    for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
        size = (size - kernel) / stride + 1
        if size < 1:
            raise ValueError(f"image_size={image_size}: too small")
    return int(16 * size * size)
