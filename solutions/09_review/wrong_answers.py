"""Plausible wrong answers for 09_review, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde.

Most are one slip in the solution (``wrong_edit``); a mistake that changes the whole
approach is written as a function body (``wrong_answer``).
"""

from cnncourse.authoring import wrong_answer, wrong_edit

# --------------------------------------------------------------------------- count_macs

# A grouped convolution counted as a dense one: every filter "sees all the channels".
macs_ignore_groups = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"divide by module.groups",
    replace=[("(module.in_channels // module.groups)", "module.in_channels")],
)

# Only the convolutions hooked: the dense layers forgotten.
macs_convs_only = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"nn.Linear layers count too",
    replace=[(
        "isinstance(m, (nn.Conv2d, nn.Linear))]",
        "isinstance(m, nn.Conv2d)]",
    )],
)  # fmt: skip

# The top-level layers only: a block nested in a Sequential is never hooked.
macs_children_only = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"not only model.children\(\)",
    replace=[("for m in model.modules() if", "for m in model.children() if")],
)

# One addition per output value for the bias, counted as a MAC.
macs_count_bias = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"leave out the bias additions",
    replace=[
        (
            "* (module.in_channels // module.groups) * kh * kw",
            "* ((module.in_channels // module.groups) * kh * kw + 1)",
        ),
        ("total += output[0].numel() * module.in_features", "total += output[0].numel() * "
         "(module.in_features + 1)"),
    ],
)  # fmt: skip

# A dense layer costs in * out "per image", even when it runs at every position.
macs_linear_per_image = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"a dense layer applied at every position",
    replace=[(
        "total += output[0].numel() * module.in_features",
        "total += module.in_features * module.out_features",
    )],
)  # fmt: skip

# The hooks are never removed: the next forward pass (or call) counts on.
macs_hooks_left = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"remove your hooks afterwards",
    replace=[("            handle.remove()", "            pass")],
)

# The model is left in eval mode.
macs_mode_not_restored = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"put the model back in the mode it was in",
    replace=[("        model.train(was_training)", "        pass")],
)

# Run in the model's current (training) mode: batch norm updates its running statistics.
macs_training_mode = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"run the model in eval mode",
    replace=[("        model.eval()\n", "")],
)

# A float32 CPU input whatever the model: a float64 or meta-device model fails.
macs_float32_input = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"dtype and on the device of the model's parameters",
    replace=[(
        "x = torch.zeros(1, *input_size, dtype=dtype, device=device)",
        "x = torch.zeros(1, *input_size)",
    )],
)  # fmt: skip

# next() without a default: a model without parameters raises StopIteration.
macs_no_parameters = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"a model may have no parameters",
    replace=[("first = next(model.parameters(), None)", "first = next(model.parameters())")],
)

# The promised error left out.
macs_no_check = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"should raise ValueError",
    replace=[(
        'raise ValueError(f"input_size={input_size!r}: expected (C, H, W), three positive ints")',
        "pass",
    )],
)  # fmt: skip


# The library's count, which the exercise asks to write.
@wrong_answer("count_macs", fails={"test_count_macs"}, says=r"Count them yourself")
def macs_calls_summary(model, input_size):
    if not (isinstance(input_size, (tuple, list)) and len(input_size) == 3):
        raise ValueError(f"input_size={input_size!r}: expected (C, H, W)")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size):
        raise ValueError(f"input_size={input_size!r}: expected positive ints")
    return shapes.summary(model, tuple(input_size), verbose=False).total_macs


# The cost from the layer's input size, as if every layer kept its input's height and
# width: wrong as soon as a stride (or padding, or dilation) changes the size.
macs_from_input_size = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"are in the output's size",
    replace=[(
        "total += output[0].numel() * (module.in_channels // module.groups) * kh * kw",
        "total += (inputs[0][0, 0].numel() * module.out_channels\n"
        "                      * (module.in_channels // module.groups) * kh * kw)",
    )],
)  # fmt: skip


# The cost kept per module in a dict: a layer that runs twice is counted once.
macs_per_module = wrong_edit(
    "count_macs",
    fails={"test_count_macs"},
    says=r"a layer that runs twice",
    replace=[
        ("    total = 0\n", "    cost = {}\n"),
        ("        nonlocal total\n", ""),
        ("total += output[0].numel() * (module", "cost[module] = output[0].numel() * (module"),
        ("total += output[0].numel() * module.in_features",
         "cost[module] = output[0].numel() * module.in_features"),
        ("    return total\n", "    return sum(cost.values())\n"),
    ],
)  # fmt: skip


# --------------------------------------------------------------------------- pareto_front

# "Beats" read as better on both: a model with the same cost and a higher accuracy no
# longer beats its twin.
front_strictly_both = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"same cost and a higher accuracy",
    replace=[(
        "cost_b <= cost_a and acc_b >= acc_a and (cost_b < cost_a or acc_b > acc_a)",
        "cost_b < cost_a and acc_b > acc_a",
    )],
)  # fmt: skip

# "At least as good on both" without "strictly better in one": identical points knock
# each other out.
front_not_strict = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"two identical points do not beat each other",
    replace=[(" and (cost_b < cost_a or acc_b > acc_a)", "")],
)

# The front in the mapping's order.
front_unsorted = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"sort the names by cost",
    replace=[("return sorted(front, key=lambda name: (points[name][0], name))", "return front")],
)

# Sorted by cost only: equal points stay in the mapping's order.
front_ties_unsorted = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"equal points by name",
    replace=[("key=lambda name: (points[name][0], name)", "key=lambda name: points[name][0]")],
)

# A higher cost taken as better (cost read as "size", "capacity").
front_cost_reversed = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"a lower cost is better",
    replace=[(
        "cost_b <= cost_a and acc_b >= acc_a and (cost_b < cost_a or acc_b > acc_a)",
        "cost_b >= cost_a and acc_b >= acc_a and (cost_b > cost_a or acc_b > acc_a)",
    )],
)  # fmt: skip

# The empty mapping returns an empty front instead of raising.
front_empty_allowed = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"should raise ValueError",
    replace=[(
        'raise ValueError("points: expected at least one {name: (cost, accuracy)} entry")',
        "return []",
    )],
)  # fmt: skip

# Negative costs accepted.
front_negative_allowed = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"should raise ValueError",
    replace=[("        if cost < 0:\n", "        if cost < 0 and False:\n")],
)

# A tuple, not a list.
front_tuple = wrong_edit(
    "pareto_front",
    fails={"test_pareto_front"},
    says=r"return a list",
    replace=[(
        "return sorted(front, key=lambda name: (points[name][0], name))",
        "return tuple(sorted(front, key=lambda name: (points[name][0], name)))",
    )],
)  # fmt: skip


# Beaten points deleted from the caller's mapping as they are found.
@wrong_answer("pareto_front", fails={"test_pareto_front"}, says=r"leave the mapping unchanged")
def front_deletes_beaten(points):
    if not points:
        raise ValueError("points: expected at least one {name: (cost, accuracy)} entry")
    for name, (cost, _) in points.items():
        if cost < 0:
            raise ValueError(f"points[{name!r}]: the cost {cost} is negative")
    for a in list(points):
        cost_a, acc_a = points[a]
        if any(
            cost_b <= cost_a and acc_b >= acc_a and (cost_b < cost_a or acc_b > acc_a)
            for b, (cost_b, acc_b) in points.items()
            if b != a
        ):
            del points[a]
    return sorted(points, key=lambda name: (points[name][0], name))


# The sweep: sort by cost, keep a point if it is more accurate than every cheaper one.
# Fast, and right except for identical points (the second is not "more accurate").
@wrong_answer("pareto_front", fails={"test_pareto_front"}, says=r"identical points")
def front_sweep_strict(points):
    if not points:
        raise ValueError("points: expected at least one {name: (cost, accuracy)} entry")
    for name, (cost, _) in points.items():
        if cost < 0:
            raise ValueError(f"points[{name!r}]: the cost {cost} is negative")
    front, best = [], -float("inf")
    for name in sorted(points, key=lambda n: (points[n][0], -points[n][1], n)):
        if points[name][1] > best:
            front.append(name)
            best = points[name][1]
    return front
