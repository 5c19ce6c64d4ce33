"""Plausible wrong answers for 02_lenet, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

A region at the top level of a cell (the table) is written as the body of a function of
no arguments; the LeNet5 module's region as the body of a class."""

from torch import nn

from cnncourse.authoring import wrong_answer

# --------------------------------------------------------------------------- layer table


@wrong_answer(
    "lenet_table",
    # the total still adds up the rows, so it is off by 16 as well
    fails={"test_table_conv", "test_table_total"},
    says=r"forget the 16 biases",
)
def table_c3_without_biases():
    LENET_TABLE["C1"] = ((6, 28, 28), 156)
    LENET_TABLE["S2"] = ((6, 14, 14), 0)
    LENET_TABLE["C3"] = ((16, 10, 10), 16 * 6 * 5 * 5)
    LENET_TABLE["S4"] = ((16, 5, 5), 0)
    LENET_TABLE["F5"] = ((120,), 48120)
    LENET_TABLE["F6"] = ((84,), 10164)
    LENET_TABLE["F7"] = ((10,), 850)
    LENET_TOTAL_PARAMS = sum(params for _, params in LENET_TABLE.values())  # noqa: F841


@wrong_answer("lenet_table", fails={"test_table_pool"}, says=r"leave out the batch dimension")
def table_shape_with_batch_dim():
    LENET_TABLE["C1"] = ((6, 28, 28), 156)
    LENET_TABLE["S2"] = ((1, 6, 14, 14), 0)
    LENET_TABLE["C3"] = ((16, 10, 10), 2416)
    LENET_TABLE["S4"] = ((16, 5, 5), 0)
    LENET_TABLE["F5"] = ((120,), 48120)
    LENET_TABLE["F6"] = ((84,), 10164)
    LENET_TABLE["F7"] = ((10,), 850)
    LENET_TOTAL_PARAMS = sum(params for _, params in LENET_TABLE.values())  # noqa: F841


# --------------------------------------------------------------------------- LeNet5 module


@wrong_answer("lenet_module", fails={"test_lenet_shapes", "test_lenet_function"}, says=r"biases")
class LeNetC1WithoutBias(nn.Module):
    ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
    POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}

    def __init__(self, num_classes=10, in_channels=1, activation="tanh", pool="avg"):
        super().__init__()
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: unknown")
        if pool not in self.POOLS:
            raise ValueError(f"pool={pool!r}: unknown")
        act, pooling = self.ACTIVATIONS[activation], self.POOLS[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, bias=False), act(), pooling(2),
            nn.Conv2d(6, 16, kernel_size=5), act(), pooling(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), act(), nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.head(self.features(x))


@wrong_answer("lenet_module", fails={"test_lenet_shapes", "test_lenet_function"}, says=r"strides")
class LeNetPoolStrideOne(nn.Module):
    ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
    POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}

    def __init__(self, num_classes=10, in_channels=1, activation="tanh", pool="avg"):
        super().__init__()
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: unknown")
        if pool not in self.POOLS:
            raise ValueError(f"pool={pool!r}: unknown")
        act, pooling = self.ACTIVATIONS[activation], self.POOLS[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5), act(), pooling(2, stride=1),
            nn.Conv2d(6, 16, kernel_size=5), act(), pooling(2, stride=1),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), act(), nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.head(self.features(x))


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
