"""Plausible wrong answers for 00_welcome, each swapped into its solution region by
tests/test_wrong_answers.py: exactly the cells in ``fails`` must lose their points, with a
message matching ``says``. The first one also goes through a real nbgrader autograde."""

import torch

from cnncourse.authoring import wrong_answer


@wrong_answer("softmax", fails={"test_softmax_stable"}, says=r"overflow")
def softmax_without_max_shift(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    exps = logits.exp()  # overflows for large logits
    return exps / exps.sum(dim=dim, keepdim=True)


@wrong_answer(
    "softmax", fails={"test_softmax_values", "test_softmax_stable"}, says=r"values differ"
)
def softmax_ignores_dim(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    shifted = logits - logits.max()
    return shifted.exp() / shifted.exp().sum()
